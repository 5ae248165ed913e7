//! MuHash3072 cost per coin: `utxo_core::muhash::MuHash3072::insert` (and `remove`) of one coin's
//! `TxOutSer` bytes (what Bitcoin Core hashes), beside the baseline of one SHA256 of the same bytes
//! measured in the same run; and the cost of one `finalize` (a modular inversion, once per query).
//! `L2BTC_BENCH_CLOCK=cpu` times in thread CPU time (see `benches::clock`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::Duration;

use benches::clock::Stopwatch;
use bitcoin::hashes::{Hash, sha256};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use utxo_core::muhash::MuHash3072;

/// Coins hashed per iteration.
const COINS: usize = 1_000;

fn muhash_benches(c: &mut Criterion) {
    let serialized: Vec<Vec<u8>> = benches::synth::coins(3, COINS)
        .map(|(op, coin)| {
            let mut buf = Vec::new();
            utxo_core::txout_ser(&op, &coin, &mut buf);
            buf
        })
        .collect();
    let mut group = c.benchmark_group("muhash");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    group.throughput(Throughput::Elements(COINS as u64));
    group.bench_function(BenchmarkId::new("insert", "per_coin"), |b| {
        b.iter_custom(|iters| {
            let start = Stopwatch::start();
            for _ in 0..iters {
                let mut m = MuHash3072::new();
                for bytes in &serialized {
                    m.insert(bytes);
                }
                black_box(m);
            }
            start.elapsed()
        });
    });
    group.bench_function(BenchmarkId::new("remove", "per_coin"), |b| {
        b.iter_custom(|iters| {
            let start = Stopwatch::start();
            for _ in 0..iters {
                let mut m = MuHash3072::new();
                for bytes in &serialized {
                    m.remove(bytes);
                }
                black_box(m);
            }
            start.elapsed()
        });
    });
    group.bench_function(BenchmarkId::new("sha256_baseline", "per_coin"), |b| {
        b.iter_custom(|iters| {
            let start = Stopwatch::start();
            for _ in 0..iters {
                for bytes in &serialized {
                    black_box(sha256::Hash::hash(bytes));
                }
            }
            start.elapsed()
        });
    });
    group.throughput(Throughput::Elements(1));
    let mut m = MuHash3072::new();
    for bytes in &serialized {
        m.insert(bytes);
    }
    m.remove(&serialized[0]);
    group.bench_function(BenchmarkId::new("finalize", "once"), |b| {
        b.iter_custom(|iters| {
            let start = Stopwatch::start();
            for _ in 0..iters {
                black_box(m.finalize());
            }
            start.elapsed()
        });
    });
    group.finish();
}

criterion_group!(benches, muhash_benches);
criterion_main!(benches);
