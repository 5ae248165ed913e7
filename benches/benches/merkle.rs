//! Merkle commitment benchmarks: `merkle_proofs::Commitment` beside rustreexo (`MemForest`, the
//! Utreexo accumulator with inclusion proofs only) on the same add/delete/prove/verify workload, and
//! rs_merkle (a static SHA-256 Merkle tree) for static proofs, all measured in the same run.
//!
//! Sizes: 1,000,000 coins; also 10,000,000 with `L2BTC_BENCH_FULL=1` (or any list with
//! `L2BTC_MERKLE_SIZES=100000,1000000`). Workload per size:
//! - update: one block's change set, `BLOCK_SPENDS` spends of random existing coins and
//!   `BLOCK_CREATES` new coins; timed apply, untimed revert (so every iteration starts from the same
//!   set); rate = changed coins per second. Ours on 1 and 2 threads; rustreexo `MemForest::modify`.
//! - prove: `PROOFS` inclusion proofs of random present coins (ours also exclusion proofs of random
//!   absent outpoints, and 2 threads); rustreexo `MemForest::prove`; rs_merkle `MerkleTree::proof`.
//! - prove_queue: `prove_each` over `QUEUE_BATCH` (100,000) requests per call, 1 and 2 threads:
//!   a proof server draining a queue (larger batches share more of the tree's memory).
//! - verify: the same proofs checked against the root.
//! - rebuild: `Commitment::from_sorted_coins` at 1M coins (the restart path).
//!
//! Non-time figures go to `bench-figures/merkle.tsv`: memory per coin (exact heap of our buffers,
//! and resident-memory deltas for all three), proof sizes, and a one-shot rebuild time per size.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use benches::figures::{self, Figure};
use bitcoin::hashes::Hash;
use bitcoin::{OutPoint, Txid};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use merkle_proofs::{Commitment, LeafCoin, Proof, Root, entry_of, verify};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rs_merkle::algorithms::Sha256;
use rs_merkle::{MerkleProof, MerkleTree};
use rustreexo::mem_forest::MemForest;
use rustreexo::node_hash::BitcoinNodeHash;
use rustreexo::proof::Proof as UtreexoProof;

const BLOCK_SPENDS: usize = 2_000;
/// Requests per `prove_each` call in the queue benchmark (`merkle_prove_queue`).
const QUEUE_BATCH: usize = 100_000;
const BLOCK_CREATES: usize = 2_000;
const PROOFS: usize = 10_000;

fn sizes() -> Vec<usize> {
    if let Ok(list) = std::env::var("L2BTC_MERKLE_SIZES") {
        return list
            .split(',')
            .filter_map(|s| s.trim().parse().ok())
            .collect();
    }
    if std::env::var("L2BTC_BENCH_FULL").is_ok_and(|v| v == "1") {
        vec![1_000_000, 10_000_000]
    } else {
        vec![1_000_000]
    }
}

fn coin(rng: &mut ChaCha8Rng) -> (OutPoint, LeafCoin) {
    let op = OutPoint {
        txid: Txid::from_byte_array(rng.random()),
        vout: rng.random_range(0..3),
    };
    // P2WPKH-shaped script: the most common output type.
    let mut script = vec![0x00, 0x14];
    script.extend((0..20).map(|_| rng.random::<u8>()));
    let c = LeafCoin {
        amount: rng.random_range(546..100_000_000),
        height: rng.random_range(0..870_000),
        is_coinbase: rng.random_bool(0.01),
        script,
    };
    (op, c)
}

fn leaf(op: &OutPoint, c: &LeafCoin) -> [u8; 32] {
    entry_of(op, c).body
}

/// On-CPU time of the calling thread in nanoseconds (`/proc/thread-self/schedstat`, first field):
/// unlike wall time it does not count time the thread waited for a core, so it stays meaningful on a
/// machine shared with other jobs.
fn cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

/// Runs `f` once and returns (operations per wall second, operations per on-CPU second).
fn rates(ops: usize, f: impl FnOnce()) -> (f64, f64) {
    let (t, c) = (Instant::now(), cpu_ns());
    f();
    let (wall, cpu) = (t.elapsed().as_secs_f64(), (cpu_ns() - c) as f64 / 1e9);
    (ops as f64 / wall, ops as f64 / cpu.max(1e-9))
}

fn rate_figure(label: String, (wall, cpu): (f64, f64), baseline: String, bar: &str) -> Figure {
    Figure {
        label,
        value: format!("{cpu:.0}"),
        unit: format!("/s of CPU time (wall: {wall:.0}/s)"),
        baseline,
        bar: bar.into(),
    }
}

fn rss() -> u64 {
    figures::rss_bytes().unwrap_or(0)
}

struct Setup {
    n: usize,
    coins: Vec<(OutPoint, LeafCoin)>,
    created: Vec<(OutPoint, LeafCoin)>,
    spent: Vec<(OutPoint, LeafCoin)>,
    sample: Vec<usize>,
    absent: Vec<OutPoint>,
}

fn setup(n: usize) -> Setup {
    let mut rng = ChaCha8Rng::seed_from_u64(n as u64);
    let coins: Vec<_> = (0..n).map(|_| coin(&mut rng)).collect();
    let created = (0..BLOCK_CREATES).map(|_| coin(&mut rng)).collect();
    let mut idx: Vec<usize> = (0..BLOCK_SPENDS).map(|_| rng.random_range(0..n)).collect();
    idx.sort_unstable();
    idx.dedup();
    let spent = idx.iter().map(|&i| coins[i].clone()).collect();
    let sample = (0..PROOFS).map(|_| rng.random_range(0..n)).collect();
    let absent = (0..PROOFS).map(|_| coin(&mut rng).0).collect();
    Setup {
        n,
        coins,
        created,
        spent,
        sample,
        absent,
    }
}

fn bench_size(c: &mut Criterion, s: &Setup, figs: &mut Vec<Figure>) {
    let n = s.n;
    let per_coin = |bytes: u64| format!("{:.1}", bytes as f64 / n as f64);

    // --- ours: build (one shot, with memory) ---
    let before = rss();
    let t = Instant::now();
    let mut ours = Commitment::from_sorted_coins(s.coins.iter().map(|(o, c)| (o, c))).unwrap();
    let rebuild = t.elapsed();
    let ours_rss = rss().saturating_sub(before);
    let heap = ours.heap_bytes() as u64;
    let root: Root = ours.root();

    // --- rustreexo: build ---
    let before = rss();
    let leaves: Vec<BitcoinNodeHash> = s
        .coins
        .iter()
        .map(|(o, c)| BitcoinNodeHash::from(leaf(o, c)))
        .collect();
    let leaves_rss = rss().saturating_sub(before);
    let before = rss();
    let mut forest = MemForest::new();
    for chunk in leaves.chunks(100_000) {
        forest.modify(chunk, &[]).unwrap();
    }
    let forest_rss = rss().saturating_sub(before);

    // --- rs_merkle: static tree ---
    let before = rss();
    let static_tree = MerkleTree::<Sha256>::from_leaves(
        &s.coins.iter().map(|(o, c)| leaf(o, c)).collect::<Vec<_>>(),
    );
    let static_rss = rss().saturating_sub(before).saturating_sub(leaves_rss);
    let static_root = static_tree.root().unwrap();

    figs.push(Figure {
        label: format!("merkle memory per coin, heap of our buffers ({n} coins)"),
        value: per_coin(heap),
        unit: "B/coin".into(),
        baseline: format!("rustreexo MemForest {} B/coin (RSS)", per_coin(forest_rss)),
        bar: "≤ 40 B at 10M".into(),
    });
    figs.push(Figure {
        label: format!("merkle memory per coin, RSS delta of our build ({n} coins)"),
        value: per_coin(ours_rss),
        unit: "B/coin".into(),
        baseline: format!("rs_merkle (static) {} B/coin (RSS)", per_coin(static_rss)),
        bar: "≤ 40 B at 10M".into(),
    });
    figs.push(Figure {
        label: format!("merkle rebuild from coins, one shot ({n} coins)"),
        value: format!("{:.2}", rebuild.as_secs_f64()),
        unit: "s".into(),
        baseline: String::new(),
        bar: "stated in docs".into(),
    });

    // --- update ---
    let mut g = c.benchmark_group("merkle_update");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    g.throughput(Throughput::Elements(
        (s.created.len() + s.spent.len()) as u64,
    ));
    for threads in [1usize, 2] {
        ours.set_threads(threads);
        g.bench_function(BenchmarkId::new(format!("ours_{threads}t"), n), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let t = Instant::now();
                    ours.apply_changes(
                        s.created.iter().map(|(o, c)| (o, c)),
                        s.spent.iter().map(|(o, c)| (o, c)),
                    )
                    .unwrap();
                    total += t.elapsed();
                    ours.revert_changes(
                        s.created.iter().map(|(o, c)| (o, c)),
                        s.spent.iter().map(|(o, c)| (o, c)),
                    )
                    .unwrap();
                }
                total
            });
        });
    }
    assert_eq!(ours.root(), root);
    let adds: Vec<BitcoinNodeHash> = s
        .created
        .iter()
        .map(|(o, c)| BitcoinNodeHash::from(leaf(o, c)))
        .collect();
    let dels: Vec<BitcoinNodeHash> = s
        .spent
        .iter()
        .map(|(o, c)| BitcoinNodeHash::from(leaf(o, c)))
        .collect();
    g.bench_function(BenchmarkId::new("rustreexo", n), |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let t = Instant::now();
                forest.modify(&adds, &dels).unwrap();
                total += t.elapsed();
                forest.modify(&dels, &adds).unwrap();
            }
            total
        });
    });
    g.finish();

    // --- prove ---
    let mut g = c.benchmark_group("merkle_prove");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    g.throughput(Throughput::Elements(s.sample.len() as u64));
    // Requests as a server holds them: each outpoint with its coin (looked up in the UTXO set), side
    // by side, as the baselines get their leaf hashes or indices.
    let queries: Vec<(OutPoint, Option<LeafCoin>)> = s
        .sample
        .iter()
        .map(|&i| (s.coins[i].0, Some(s.coins[i].1.clone())))
        .collect();
    g.bench_function(BenchmarkId::new("ours", n), |b| {
        b.iter(|| {
            for (o, k) in &queries {
                black_box(ours.prove(o, k.as_ref()).unwrap());
            }
        });
    });
    for threads in [1usize, 2] {
        ours.set_threads(threads);
        g.bench_function(BenchmarkId::new(format!("ours_each_{threads}t"), n), |b| {
            b.iter(|| {
                ours.prove_each(&queries, |_, p| {
                    black_box(p.unwrap());
                });
            });
        });
    }
    g.bench_function(BenchmarkId::new("ours_exclusion", n), |b| {
        b.iter(|| {
            for o in &s.absent {
                black_box(ours.prove::<LeafCoin>(o, None).unwrap());
            }
        });
    });
    let sample_leaves: Vec<BitcoinNodeHash> = s.sample.iter().map(|&i| leaves[i]).collect();
    g.bench_function(BenchmarkId::new("rustreexo", n), |b| {
        b.iter(|| {
            for h in &sample_leaves {
                black_box(forest.prove(std::slice::from_ref(h)).unwrap());
            }
        });
    });
    g.bench_function(BenchmarkId::new("rs_merkle", n), |b| {
        b.iter(|| {
            for &i in &s.sample {
                black_box(static_tree.proof(&[i]));
            }
        });
    });
    g.finish();

    // --- prove_each on a server's queue: QUEUE_BATCH independent requests per call ---
    // Larger batches share more (sorted queries reuse upper-tree nodes, page records and buckets),
    // so the rate depends on the batch: 10,000 above is about one block's inputs, this is a queue.
    let mut g = c.benchmark_group("merkle_prove_queue");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(6));
    g.throughput(Throughput::Elements(QUEUE_BATCH as u64));
    let mut rng = ChaCha8Rng::seed_from_u64(s.n as u64 ^ 0x0051_7e0e);
    let queue: Vec<(OutPoint, Option<LeafCoin>)> = (0..QUEUE_BATCH)
        .map(|_| {
            let (o, c) = &s.coins[rng.random_range(0..s.n)];
            (*o, Some(c.clone()))
        })
        .collect();
    for threads in [1usize, 2] {
        ours.set_threads(threads);
        g.bench_function(
            BenchmarkId::new(format!("ours_each_{threads}t"), s.n),
            |b| {
                b.iter(|| {
                    ours.prove_each(&queue, |_, p| {
                        black_box(p.unwrap());
                    });
                });
            },
        );
    }
    g.finish();

    // --- proofs for verification and sizes ---
    let our_proofs: Vec<Proof> = s
        .sample
        .iter()
        .map(|&i| ours.prove(&s.coins[i].0, Some(&s.coins[i].1)).unwrap())
        .collect();
    let our_excl: Vec<Proof> = s
        .absent
        .iter()
        .map(|o| ours.prove::<LeafCoin>(o, None).unwrap())
        .collect();
    let utreexo_proofs: Vec<UtreexoProof> = sample_leaves
        .iter()
        .map(|h| forest.prove(std::slice::from_ref(h)).unwrap())
        .collect();
    let static_proofs: Vec<MerkleProof<Sha256>> =
        s.sample.iter().map(|&i| static_tree.proof(&[i])).collect();
    let avg = |total: usize, k: usize| format!("{:.0}", total as f64 / k as f64);
    let incl_bytes: usize = our_proofs.iter().map(|p| p.encode().len()).sum();
    let excl_bytes: usize = our_excl.iter().map(|p| p.encode().len()).sum();
    // Utreexo: 32 bytes per hash plus 8 per target position (its own serialization's payload).
    let utreexo_bytes: usize = utreexo_proofs
        .iter()
        .map(|p| p.hashes.len() * 32 + p.targets.len() * 8)
        .sum();
    let static_bytes: usize = static_proofs.iter().map(|p| p.to_bytes().len()).sum();
    // Our proofs carry the claim (outpoint and the coin's fields, ~70 bytes here); the baselines carry
    // only hashes and positions.
    figs.push(Figure {
        label: format!("merkle inclusion proof size, ours incl. claim ({n} coins)"),
        value: avg(incl_bytes, our_proofs.len()),
        unit: "B".into(),
        baseline: format!(
            "rustreexo {} B, rs_merkle {} B (hashes only)",
            avg(utreexo_bytes, utreexo_proofs.len()),
            avg(static_bytes, static_proofs.len())
        ),
        bar: "O(log n)".into(),
    });
    figs.push(Figure {
        label: format!("merkle exclusion proof size, ours ({n} coins)"),
        value: avg(excl_bytes, our_excl.len()),
        unit: "B".into(),
        baseline: "rustreexo, rs_merkle: no exclusion proofs".into(),
        bar: "O(log n)".into(),
    });

    // --- one-shot rates in on-CPU time (single thread; see `cpu_ns`) ---
    let k = s.sample.len();
    let prove_ours = rates(k, || {
        for (o, c) in &queries {
            black_box(ours.prove(o, c.as_ref()).unwrap());
        }
    });
    ours.set_threads(1);
    let prove_each = rates(k, || {
        ours.prove_each(&queries, |_, p| {
            black_box(p.unwrap());
        });
    });
    // Both threads, wall time over 10 passes of the queries (~0.1-0.2 s): the figure the bar is
    // about on an idle machine (thread CPU time would count one thread only).
    ours.set_threads(2);
    let passes = 10;
    let prove_each_2t = rates(k * passes, || {
        for _ in 0..passes {
            ours.prove_each(&queries, |_, p| {
                black_box(p.unwrap());
            });
        }
    });
    let prove_utreexo = rates(k, || {
        for h in &sample_leaves {
            black_box(forest.prove(std::slice::from_ref(h)).unwrap());
        }
    });
    let prove_static = rates(k, || {
        for &i in &s.sample {
            black_box(static_tree.proof(&[i]));
        }
    });
    figs.push(rate_figure(
        format!("merkle inclusion proofs generated, 1 thread ({n} coins)"),
        prove_ours,
        format!(
            "rustreexo {:.0}/s, rs_merkle {:.0}/s (CPU time)",
            prove_utreexo.1, prove_static.1
        ),
        "≥ 1,000,000/s at 10M",
    ));
    figs.push(rate_figure(
        format!("merkle inclusion proofs generated, prove_each, 1 thread ({n} coins)"),
        prove_each,
        String::new(),
        "≥ 1,000,000/s at 10M (2 threads: see table)",
    ));
    figs.push(Figure {
        label: format!("merkle inclusion proofs generated, prove_each, 2 threads ({n} coins)"),
        value: format!("{:.0}", prove_each_2t.0),
        unit: "/s wall time (idle machine needed)".into(),
        baseline: String::new(),
        bar: "≥ 1,000,000/s at 10M".into(),
    });
    let verify_ours = rates(k, || {
        for p in &our_proofs {
            verify(&root, p).unwrap();
        }
    });
    figs.push(rate_figure(
        format!("merkle proofs verified, 1 thread ({n} coins)"),
        verify_ours,
        String::new(),
        "–",
    ));
    let mut update_cpu = |threads: usize| {
        ours.set_threads(threads);
        let r = rates(s.created.len() + s.spent.len(), || {
            ours.apply_changes(
                s.created.iter().map(|(o, c)| (o, c)),
                s.spent.iter().map(|(o, c)| (o, c)),
            )
            .unwrap();
        });
        ours.revert_changes(
            s.created.iter().map(|(o, c)| (o, c)),
            s.spent.iter().map(|(o, c)| (o, c)),
        )
        .unwrap();
        r
    };
    let update_ours = update_cpu(1);
    let update_utreexo = rates(s.created.len() + s.spent.len(), || {
        forest.modify(&adds, &dels).unwrap()
    });
    forest.modify(&dels, &adds).unwrap();
    figs.push(rate_figure(
        format!("merkle update, changed coins, 1 thread ({n} coins)"),
        update_ours,
        format!("rustreexo {:.0}/s (CPU time)", update_utreexo.1),
        "–",
    ));

    // The one-shot update above moved leaves in the forest: prove again for the verify runs.
    let utreexo_proofs: Vec<UtreexoProof> = sample_leaves
        .iter()
        .map(|h| forest.prove(std::slice::from_ref(h)).unwrap())
        .collect();

    // --- verify ---
    let mut g = c.benchmark_group("merkle_verify");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    g.throughput(Throughput::Elements(s.sample.len() as u64));
    g.bench_function(BenchmarkId::new("ours", n), |b| {
        b.iter(|| {
            for p in &our_proofs {
                verify(&root, p).unwrap();
            }
        });
    });
    g.bench_function(BenchmarkId::new("ours_exclusion", n), |b| {
        b.iter(|| {
            for p in &our_excl {
                verify(&root, p).unwrap();
            }
        });
    });
    let roots = forest
        .get_roots()
        .iter()
        .map(|r| r.get_data())
        .collect::<Vec<_>>();
    let forest_leaves = forest.leaves;
    g.bench_function(BenchmarkId::new("rustreexo", n), |b| {
        b.iter(|| {
            for (p, h) in utreexo_proofs.iter().zip(&sample_leaves) {
                assert!(
                    p.verify(std::slice::from_ref(h), &roots, forest_leaves)
                        .unwrap()
                );
            }
        });
    });
    let static_leaves: Vec<[u8; 32]> = s
        .sample
        .iter()
        .map(|&i| leaf(&s.coins[i].0, &s.coins[i].1))
        .collect();
    g.bench_function(BenchmarkId::new("rs_merkle", n), |b| {
        b.iter(|| {
            for ((p, &i), l) in static_proofs.iter().zip(&s.sample).zip(&static_leaves) {
                assert!(p.verify(static_root, &[i], &[*l], n));
            }
        });
    });
    g.finish();

    // --- rebuild (the restart path), at 1M only: at 10M the one-shot figure above stands ---
    if n <= 1_000_000 {
        drop(forest);
        drop(static_tree);
        let mut g = c.benchmark_group("merkle_rebuild");
        g.sample_size(10)
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(8));
        g.throughput(Throughput::Elements(n as u64));
        g.bench_function(BenchmarkId::new("ours", n), |b| {
            b.iter(|| {
                black_box(
                    Commitment::from_sorted_coins(s.coins.iter().map(|(o, c)| (o, c))).unwrap(),
                )
            });
        });
        g.finish();
    }
}

fn benches(c: &mut Criterion) {
    let mut figs = Vec::new();
    for n in sizes() {
        let s = setup(n);
        bench_size(c, &s, &mut figs);
    }
    figures::write("merkle", &figs).unwrap();
}

criterion_group!(merkle, benches);
criterion_main!(merkle);
