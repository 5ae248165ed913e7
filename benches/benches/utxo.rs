//! UTXO set benchmarks: block application (tx/s and coin-ops/s, 1 and 2 threads), disconnection and
//! lookups of `utxo_core::UtxoSet` on a synthetic mainnet-like chain (`benches::synth`), each beside a
//! naive baseline measured in the same run: `std::collections::HashMap<OutPoint, TxOut>` with SipHash
//! doing the same work (`benches::naive`).
//!
//! Workload: a set pre-loaded with `L2BTC_BENCH_COINS` coins (default 1,000,000; 10,000,000 with
//! `L2BTC_BENCH_FULL=1`), then a segment of `SEGMENT_BLOCKS` blocks of `TXS_PER_BLOCK` transactions
//! spending recent and old coins. One iteration applies the whole segment (timed), then disconnects it
//! again (not timed), so every iteration starts from the same set; the disconnect benchmark times the
//! other half.
//!
//! `set_txids_precomputed/1thread` is `set/1thread` with each block's txids computed before the
//! timer starts (`UtxoSet::apply_block_with_txids`; for `utxo_disconnect`,
//! `UtxoSet::disconnect_prepared`), as a parser computing them while decoding would hand them
//! over; the txid cost itself is `utxo_apply/txid_only/1thread`.
//!
//! Threads: `set/2threads` is utxo-core's own parallel apply (`SetOptions::threads = 2`: txids,
//! prefetch of spent coins and the shard commit on scoped threads). `set_muhash_pipeline/2threads` is
//! the design's pipeline: the set (MuHash not tracked inside it) applies blocks on one core while a
//! second thread keeps the statistics with MuHash3072 from each block's `ChangeSet`; the time is until
//! both have finished the segment. The 1-thread figures are the set
//! alone (the bar, "for the set itself") and the set keeping MuHash inline. For lookups, 2 threads
//! share one batch of reads.
//!
//! Clock: wall time by default; `L2BTC_BENCH_CLOCK=cpu` times single-threaded figures in the applying
//! thread's CPU time (`benches::clock`), so they stay meaningful on a loaded shared machine. The
//! 2-thread figures are always wall time.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::sync::mpsc;
use std::time::Duration;

use benches::clock::Stopwatch;
use benches::naive::NaiveSet;
use benches::synth::{ChainCounts, SynthChain, SynthConfig, TxShape};
use bitcoin::hashes::Hash;
use bitcoin::{Block, OutPoint, Txid};
use criterion::{
    BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
};
use rand::seq::SliceRandom;
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use utxo_core::muhash::MuHash3072;
use utxo_core::{BlockUndo, ChangeSet, PreparedBlock, SetOptions, UtxoSet, UtxoStats};

/// Blocks applied per iteration.
const SEGMENT_BLOCKS: usize = 4;
/// Transactions per block (mainnet averages ~3,000 lately).
const TXS_PER_BLOCK: usize = 2_500;
/// Lookups per iteration.
const LOOKUPS: usize = 100_000;
/// Pre-loaded coins by default and with `L2BTC_BENCH_FULL=1`.
const COINS_DEFAULT: usize = 1_000_000;
const COINS_FULL: usize = 10_000_000;
/// Height of the first block of the segment (subsidy 3.125 BTC).
const START_HEIGHT: u32 = 850_000;

fn preloaded_coins() -> usize {
    if let Some(n) = std::env::var("L2BTC_BENCH_COINS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        return n;
    }
    if std::env::var("L2BTC_BENCH_FULL").is_ok_and(|v| v == "1") {
        COINS_FULL
    } else {
        COINS_DEFAULT
    }
}

/// A pre-loaded set's coins and a segment of blocks spending them.
pub(crate) struct Workload {
    chain: SynthChain,
    first: u32,
    blocks: Vec<Block>,
    /// Each block's txids, computed once beforehand (for `set_txids_precomputed`).
    txids: Vec<Vec<Txid>>,
    /// The blocks with their txids (for `utxo_disconnect/set_txids_precomputed`).
    prepared: Vec<PreparedBlock>,
    counts: ChainCounts,
}

impl Workload {
    pub(crate) fn new(shape: TxShape, seed: u64) -> Workload {
        let mut chain = SynthChain::new(SynthConfig {
            seed,
            txs_per_block: TXS_PER_BLOCK,
            shape,
            initial_coins: preloaded_coins(),
            start_height: START_HEIGHT,
        });
        let (first, blocks) = chain.blocks(SEGMENT_BLOCKS);
        let counts = ChainCounts::of(&blocks);
        eprintln!(
            "workload {shape:?}: {} pre-loaded coins, {} blocks, {} txs, {} spends, {} creations",
            preloaded_coins(),
            counts.blocks,
            counts.txs,
            counts.spent,
            counts.created
        );
        let txids = blocks.iter().map(utxo_core::block_txids).collect();
        let prepared = blocks.iter().cloned().map(PreparedBlock::new).collect();
        Workload {
            chain,
            first,
            blocks,
            txids,
            prepared,
            counts,
        }
    }

    fn set(&self, track_muhash: bool) -> UtxoSet {
        self.set_with(track_muhash, 1)
    }

    /// A pre-loaded set applying blocks on `threads` threads (utxo-core's `SetOptions::threads`).
    fn set_with(&self, track_muhash: bool, threads: usize) -> UtxoSet {
        let set = UtxoSet::with_options(SetOptions {
            track_muhash,
            threads,
            ..SetOptions::default()
        });
        for (op, coin) in self.chain.initial_coins() {
            set.insert(op, coin);
        }
        // The segment is mainnet-like at height 850,000: past BIP34's block, where Core (and the
        // set, told so) skips the BIP30 lookups. `set_txids_precomputed_bip30` keeps them.
        set.set_bip34_block(
            utxo_core::ChainParams::default()
                .bip34
                .map(|(_, hash)| hash),
        );
        set
    }

    fn naive(&self) -> NaiveSet {
        let mut naive = NaiveSet::new();
        for (op, coin) in self.chain.initial_coins() {
            naive.insert(op, coin.to_txout());
        }
        naive
    }

    fn heights(&self) -> impl DoubleEndedIterator<Item = (u32, &Block)> + ExactSizeIterator {
        let end = self.first + u32::try_from(self.blocks.len()).expect("few blocks");
        (self.first..end).zip(&self.blocks)
    }

    fn apply(&self, set: &UtxoSet) -> Vec<BlockUndo> {
        self.heights()
            .map(|(h, b)| set.apply_block(b, h).expect("synthetic block applies"))
            .collect()
    }

    /// Applies with the txids computed beforehand (`UtxoSet::apply_block_with_txids`): the set's
    /// own work without hashing transactions (`txid_only` reports that cost).
    fn apply_with_txids(&self, set: &UtxoSet) -> Vec<BlockUndo> {
        self.heights()
            .zip(&self.txids)
            .map(|((h, b), txids)| {
                set.apply_block_with_txids(b, txids, h)
                    .expect("synthetic block applies")
            })
            .collect()
    }

    fn disconnect(&self, set: &UtxoSet, undos: &[BlockUndo]) {
        for ((h, b), undo) in self.heights().zip(undos).rev() {
            set.disconnect_block(b, h, undo)
                .expect("synthetic block disconnects");
        }
    }

    /// Disconnects with the txids computed beforehand (`UtxoSet::disconnect_prepared`).
    fn disconnect_prepared(&self, set: &UtxoSet, undos: &[BlockUndo]) {
        for ((h, _), (p, undo)) in self.heights().zip(self.prepared.iter().zip(undos)).rev() {
            set.disconnect_prepared(p, h, undo)
                .expect("synthetic block disconnects");
        }
    }

    /// Applies on this thread while a second thread keeps MuHash statistics from the change sets.
    fn apply_pipelined(&self, set: &UtxoSet, base: &UtxoStats) -> (Vec<BlockUndo>, UtxoStats) {
        std::thread::scope(|s| {
            let (send, receive) = mpsc::sync_channel::<ChangeSet>(SEGMENT_BLOCKS);
            let mut stats = base.clone();
            let stage = s.spawn(move || {
                for changes in receive {
                    stats.apply(&changes);
                }
                stats
            });
            let mut undos = Vec::with_capacity(SEGMENT_BLOCKS);
            for (h, b) in self.heights() {
                let connected = set.connect_block(b, h).expect("synthetic block applies");
                undos.push(connected.undo);
                send.send(connected.changes).expect("stats stage alive");
            }
            drop(send);
            (undos, stage.join().expect("stats stage"))
        })
    }

    fn naive_apply(&self, naive: &mut NaiveSet) -> Vec<Vec<Vec<bitcoin::TxOut>>> {
        self.blocks
            .iter()
            .map(|b| naive.apply_block(b).expect("synthetic block applies"))
            .collect()
    }

    fn naive_disconnect(&self, naive: &mut NaiveSet, undos: Vec<Vec<Vec<bitcoin::TxOut>>>) {
        for (b, undo) in self.blocks.iter().zip(undos).rev() {
            naive.disconnect_block(b, undo);
        }
    }
}

/// Statistics to start the MuHash stage from: the set's counts with a MuHash accumulator (its value
/// does not change the cost of the work).
fn stage_base(set: &UtxoSet) -> UtxoStats {
    let mut base = set.stats();
    base.muhash = Some(MuHash3072::new());
    base
}

fn configure(group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>) {
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
}

/// Times `timed` on the set, then runs `untimed` to restore it, `iters` times.
fn timed_set<T>(iters: u64, mut timed: impl FnMut() -> T, mut untimed: impl FnMut(T)) -> Duration {
    timed_on(Stopwatch::start, iters, &mut timed, &mut untimed)
}

/// Like [`timed_set`] on the wall clock, whatever `L2BTC_BENCH_CLOCK` says (multi-threaded work).
fn timed_wall<T>(iters: u64, mut timed: impl FnMut() -> T, mut untimed: impl FnMut(T)) -> Duration {
    timed_on(Stopwatch::wall, iters, &mut timed, &mut untimed)
}

fn timed_on<T>(
    clock: fn() -> Stopwatch,
    iters: u64,
    timed: &mut impl FnMut() -> T,
    untimed: &mut impl FnMut(T),
) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let start = clock();
        let out = timed();
        total += start.elapsed();
        untimed(out);
    }
    total
}

pub(crate) fn apply_group(c: &mut Criterion, name: &str, w: &Workload, extra: bool) {
    let set = w.set(false);
    let mut naive = w.naive();
    let base = stage_base(&set);

    let mut group = c.benchmark_group(name);
    configure(&mut group);
    group.throughput(Throughput::Elements(w.counts.txs));
    group.bench_function(BenchmarkId::new("set", "1thread"), |b| {
        b.iter_custom(|iters| timed_set(iters, || w.apply(&set), |u| w.disconnect(&set, &u)));
    });
    group.bench_function(BenchmarkId::new("set_txids_precomputed", "1thread"), |b| {
        b.iter_custom(|iters| {
            timed_set(
                iters,
                || w.apply_with_txids(&set),
                |u| w.disconnect(&set, &u),
            )
        });
    });
    {
        // utxo-core's parallel apply: txids, prefetch and shard commit on 2 scoped threads.
        let parallel = w.set_with(false, 2);
        group.bench_function(BenchmarkId::new("set", "2threads"), |b| {
            b.iter_custom(|iters| {
                timed_wall(
                    iters,
                    || w.apply(&parallel),
                    |u| w.disconnect(&parallel, &u),
                )
            });
        });
    }
    group.bench_function(BenchmarkId::new("set_muhash_pipeline", "2threads"), |b| {
        b.iter_custom(|iters| {
            timed_wall(
                iters,
                || w.apply_pipelined(&set, &base),
                |(u, stats)| {
                    black_box(stats);
                    w.disconnect(&set, &u);
                },
            )
        });
    });
    group.bench_function(
        BenchmarkId::new("set_txids_precomputed_bip30", "1thread"),
        |b| {
            // BIP30 looked up for every new outpoint, as on regtest, signet and testnet4, or from
            // height 1,983,702 on.
            set.set_bip34_block(None);
            b.iter_custom(|iters| {
                timed_set(
                    iters,
                    || w.apply_with_txids(&set),
                    |u| w.disconnect(&set, &u),
                )
            });
            set.set_bip34_block(
                utxo_core::ChainParams::default()
                    .bip34
                    .map(|(_, hash)| hash),
            );
        },
    );
    group.bench_function(BenchmarkId::new("naive_hashmap", "1thread"), |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let start = Stopwatch::start();
                let undos = w.naive_apply(&mut naive);
                total += start.elapsed();
                w.naive_disconnect(&mut naive, undos);
            }
            total
        });
    });
    if extra {
        group.bench_function(BenchmarkId::new("txid_only", "1thread"), |b| {
            b.iter_custom(|iters| {
                let start = Stopwatch::start();
                for _ in 0..iters {
                    for block in &w.blocks {
                        for tx in &block.txdata {
                            black_box(tx.compute_txid());
                        }
                    }
                }
                start.elapsed()
            });
        });
        drop(group);
        // MuHash inside the set: needs a set that tracks it from the start.
        let tracked = w.set(true);
        let mut group = c.benchmark_group(name);
        configure(&mut group);
        group.throughput(Throughput::Elements(w.counts.txs));
        group.bench_function(BenchmarkId::new("set_muhash_inline", "1thread"), |b| {
            b.iter_custom(|iters| {
                timed_set(iters, || w.apply(&tracked), |u| w.disconnect(&tracked, &u))
            });
        });
        group.finish();

        let mut group = c.benchmark_group("utxo_coinops");
        configure(&mut group);
        group.throughput(Throughput::Elements(w.counts.coin_ops()));
        group.bench_function(BenchmarkId::new("set", "1thread"), |b| {
            b.iter_custom(|iters| timed_set(iters, || w.apply(&set), |u| w.disconnect(&set, &u)));
        });
        group.bench_function(BenchmarkId::new("naive_hashmap", "1thread"), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let start = Stopwatch::start();
                    let undos = w.naive_apply(&mut naive);
                    total += start.elapsed();
                    w.naive_disconnect(&mut naive, undos);
                }
                total
            });
        });
        group.finish();

        let mut group = c.benchmark_group("utxo_disconnect");
        configure(&mut group);
        group.throughput(Throughput::Elements(w.counts.txs));
        group.bench_function(BenchmarkId::new("set", "1thread"), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let undos = w.apply(&set);
                    let start = Stopwatch::start();
                    w.disconnect(&set, &undos);
                    total += start.elapsed();
                }
                total
            });
        });
        group.bench_function(BenchmarkId::new("set_txids_precomputed", "1thread"), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let undos = w.apply_with_txids(&set);
                    let start = Stopwatch::start();
                    w.disconnect_prepared(&set, &undos);
                    total += start.elapsed();
                }
                total
            });
        });
        group.bench_function(BenchmarkId::new("naive_hashmap", "1thread"), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let undos = w.naive_apply(&mut naive);
                    let start = Stopwatch::start();
                    w.naive_disconnect(&mut naive, undos);
                    total += start.elapsed();
                }
                total
            });
        });
        group.finish();

        lookup_group(c, w, &set, &naive);
    } else {
        group.finish();
    }
}

fn lookup_group(c: &mut Criterion, w: &Workload, set: &UtxoSet, naive: &NaiveSet) {
    let mut rng = ChaCha8Rng::seed_from_u64(42);
    let all: Vec<OutPoint> = w.chain.initial_coins().map(|(op, _)| op).collect();
    let mut hits: Vec<OutPoint> = all
        .iter()
        .step_by((all.len() / LOOKUPS).max(1))
        .copied()
        .collect();
    hits.shuffle(&mut rng);
    hits.truncate(LOOKUPS);
    let misses: Vec<OutPoint> = (0..hits.len())
        .map(|i| {
            let mut t = [0u8; 32];
            rng.fill_bytes(&mut t);
            OutPoint::new(Txid::from_byte_array(t), u32::try_from(i % 3).unwrap_or(0))
        })
        .collect();
    let mut group = c.benchmark_group("utxo_lookup");
    configure(&mut group);
    group.throughput(Throughput::Elements(hits.len() as u64));
    group.bench_function(BenchmarkId::new("set", "hit"), |b| {
        b.iter_custom(|iters| {
            let start = Stopwatch::start();
            for _ in 0..iters {
                for op in &hits {
                    black_box(set.get(op));
                }
            }
            start.elapsed()
        });
    });
    group.bench_function(BenchmarkId::new("set", "hit_2threads"), |b| {
        b.iter(|| {
            std::thread::scope(|s| {
                for half in hits.chunks(hits.len().div_ceil(2)) {
                    s.spawn(move || {
                        for op in half {
                            black_box(set.get(op));
                        }
                    });
                }
            });
        });
    });
    group.bench_function(BenchmarkId::new("set", "miss"), |b| {
        b.iter_custom(|iters| {
            let start = Stopwatch::start();
            for _ in 0..iters {
                for op in &misses {
                    black_box(set.get(op));
                }
            }
            start.elapsed()
        });
    });
    group.bench_function(BenchmarkId::new("naive_hashmap", "hit"), |b| {
        b.iter_custom(|iters| {
            let start = Stopwatch::start();
            for _ in 0..iters {
                for op in &hits {
                    black_box(naive.get(op).cloned());
                }
            }
            start.elapsed()
        });
    });
    group.bench_function(BenchmarkId::new("naive_hashmap", "miss"), |b| {
        b.iter_custom(|iters| {
            let start = Stopwatch::start();
            for _ in 0..iters {
                for op in &misses {
                    black_box(naive.get(op).cloned());
                }
            }
            start.elapsed()
        });
    });
    group.finish();
}

fn apply_benches(c: &mut Criterion) {
    let mainnet = Workload::new(TxShape::Mainnet, 1);
    apply_group(c, "utxo_apply", &mainnet, true);
    drop(mainnet);
    let fixed = Workload::new(
        TxShape::Fixed {
            inputs: 2,
            outputs: 2,
        },
        2,
    );
    apply_group(c, "utxo_apply_2in2out", &fixed, false);
}

criterion_group!(benches, apply_benches);
criterion_main!(benches);
