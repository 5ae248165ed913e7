//! Durable storage benchmarks (`wal_store`): durable ingest of the regtest chain (Bitcoin Core's,
//! testdata/regtest/chain-a) and of a synthetic mainnet-like chain, each as
//! - WAL with group commit (one fsync per acknowledged batch of `GROUP` blocks),
//! - WAL with one fsync per block,
//! - baseline: one redb write transaction (durability `Immediate`) per block on the same table
//!   layout (coins + undo), measured in the same run;
//!
//! plus recovery (replay + fold into redb) per WAL byte, snapshot export/import (our format) and
//! Bitcoin Core `dumptxoutset` dump/load, in bytes/s. Blocks' changes and undo are computed up
//! front by `utxo_core::UtxoSet` (not timed): only the storage is measured. Every WAL variant ends
//! with a checkpoint into redb, so all variants finish with everything in redb.
//!
//! Sizes: synthetic chain of `SYNTH_BLOCKS` blocks × `SYNTH_TXS` transactions on `SYNTH_COINS`
//! pre-existing coins (×10 coins with `L2BTC_BENCH_FULL=1`). Blocks/s are written to
//! `target/bench-figures/wal.tsv` (criterion's throughput is tx/s or bytes/s).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use benches::figures::{self, Figure};
use benches::synth::{SynthChain, SynthConfig, TxShape};
use bitcoin::hashes::Hash;
use bitcoin::{Block, Network};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use redb::TableDefinition;
use utxo_core::compress::encode_coin;
use utxo_core::{ChainParams, Connected, SetOptions, UtxoSet};
use wal_store::snapshot::{SnapshotHeader, write_snapshot};
use wal_store::{BlockRecord, Store, StoreOptions, Tip};

/// Blocks per acknowledged batch in the group-commit variant.
const GROUP: usize = 16;
const SYNTH_BLOCKS: usize = 24;
const SYNTH_TXS: usize = 1_000;
const SYNTH_COINS: usize = 200_000;

struct Chain {
    name: &'static str,
    network: Network,
    blocks: Vec<(u32, Block, Connected)>,
    /// Coins that exist before the first block (loaded from our snapshot, not timed).
    base_snapshot: Option<Vec<u8>>,
    txs: u64,
}

fn regtest_chain() -> Chain {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../testdata/regtest/chain-a/blocks-0-200.hex.gz");
    let f = std::fs::File::open(path).unwrap();
    let blocks: Vec<Block> = BufReader::new(flate2::read::GzDecoder::new(f))
        .lines()
        .map(|l| bitcoin::consensus::deserialize(&hex::decode(l.unwrap().trim()).unwrap()).unwrap())
        .collect();
    let set = UtxoSet::with_options(SetOptions {
        track_muhash: false,
        params: ChainParams::for_network(Network::Regtest),
        ..SetOptions::default()
    });
    let mut out = Vec::new();
    let mut txs = 0;
    for (h, b) in blocks.into_iter().enumerate() {
        let h = u32::try_from(h).unwrap();
        let c = set.connect_block(&b, h).unwrap();
        txs += b.txdata.len() as u64;
        out.push((h, b, c));
    }
    Chain {
        name: "regtest",
        network: Network::Regtest,
        blocks: out,
        base_snapshot: None,
        txs,
    }
}

fn synthetic_chain() -> Chain {
    let full = std::env::var("L2BTC_BENCH_FULL").is_ok_and(|v| v == "1");
    let coins = if full { SYNTH_COINS * 10 } else { SYNTH_COINS };
    let mut synth = SynthChain::new(SynthConfig {
        seed: 7,
        txs_per_block: SYNTH_TXS,
        shape: TxShape::Mainnet,
        initial_coins: coins,
        start_height: 850_000,
    });
    let set = UtxoSet::with_options(SetOptions {
        track_muhash: false,
        ..SetOptions::default()
    });
    let mut initial: Vec<_> = synth.initial_coins().collect();
    for (op, c) in &initial {
        set.insert(*op, c.clone());
    }
    initial.sort_by(|a, b| {
        (a.0.txid.to_byte_array(), a.0.vout).cmp(&(b.0.txid.to_byte_array(), b.0.vout))
    });
    let (first, blocks) = synth.blocks(SYNTH_BLOCKS);
    let base_tip = Tip {
        height: first - 1,
        hash: blocks[0].header.prev_blockhash,
    };
    let mut muhash = utxo_core::muhash::MuHash3072::default();
    let mut buf = Vec::new();
    for (op, c) in &initial {
        buf.clear();
        utxo_core::txout_ser(op, c, &mut buf);
        muhash.insert(&buf);
    }
    let header = SnapshotHeader {
        network: Network::Bitcoin,
        tip: base_tip,
        coins: initial.len() as u64,
        muhash: muhash.finalize(),
    };
    let mut snap = Vec::new();
    write_snapshot(&mut snap, &header, initial).unwrap();
    let mut out = Vec::new();
    let mut txs = 0;
    for (i, b) in blocks.into_iter().enumerate() {
        let h = first + u32::try_from(i).unwrap();
        let c = set.connect_block(&b, h).unwrap();
        txs += b.txdata.len() as u64;
        out.push((h, b, c));
    }
    Chain {
        name: "synthetic",
        network: Network::Bitcoin,
        blocks: out,
        base_snapshot: Some(snap),
        txs,
    }
}

fn fresh_store(chain: &Chain, dir: &Path, checkpoint_bytes: u64) -> Store {
    // MuHash is the UtxoSet's (or a pipeline stage's) job; the store is measured as storage only,
    // like the redb baseline.
    let opts = StoreOptions::new(chain.network)
        .track_muhash(false)
        .checkpoint_wal_bytes(checkpoint_bytes)
        .group_commit(usize::MAX, usize::MAX);
    let (mut store, _) = Store::open(dir, opts).unwrap();
    if let Some(snap) = &chain.base_snapshot {
        store.import_snapshot(&snap[..], |_| true).unwrap();
    }
    store
}

fn ingest_wal(chain: &Chain, store: &mut Store, group: usize) {
    for (i, (h, b, c)) in chain.blocks.iter().enumerate() {
        let _ = store
            .append_block(&BlockRecord {
                height: *h,
                hash: b.block_hash(),
                prev_hash: b.header.prev_blockhash,
                changes: &c.changes,
                undo: &c.undo,
                commitment_root: None,
            })
            .unwrap();
        if (i + 1) % group == 0 {
            store.commit_pending().unwrap();
        }
    }
    store.commit_pending().unwrap();
    store.checkpoint().unwrap();
}

const COINS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("coins");
const UNDO: TableDefinition<u32, &[u8]> = TableDefinition::new("undo");

/// Baseline: one durable redb transaction per block, same key/value layout as the store.
fn ingest_redb_per_block(chain: &Chain, db: &redb::Database) {
    let mut buf = Vec::new();
    for (h, _, c) in &chain.blocks {
        let txn = db.begin_write().unwrap();
        {
            let mut coins = txn.open_table(COINS).unwrap();
            for (op, _) in &c.changes.spent {
                coins.remove(&key(op)[..]).unwrap();
            }
            for (op, coin) in &c.changes.created {
                buf.clear();
                encode_coin(coin, &mut buf);
                coins.insert(&key(op)[..], &buf[..]).unwrap();
            }
            let mut undo = txn.open_table(UNDO).unwrap();
            buf.clear();
            c.undo.encode(&mut buf);
            undo.insert(*h, &buf[..]).unwrap();
        }
        txn.commit().unwrap();
    }
}

fn key(op: &bitcoin::OutPoint) -> [u8; 36] {
    let mut k = [0u8; 36];
    k[..32].copy_from_slice(&op.txid.to_byte_array());
    k[32..].copy_from_slice(&op.vout.to_be_bytes());
    k
}

/// Accumulated (time, blocks) per variant, for the blocks/s figures.
static TIMES: Mutex<Vec<(String, Duration, u64)>> = Mutex::new(Vec::new());

fn record(name: String, d: Duration, blocks: u64) {
    let mut t = TIMES.lock().unwrap();
    if let Some(e) = t.iter_mut().find(|e| e.0 == name) {
        e.1 += d;
        e.2 += blocks;
    } else {
        t.push((name, d, blocks));
    }
}

fn bench_ingest(c: &mut Criterion, chain: &Chain) {
    let mut g = c.benchmark_group(format!("wal_ingest_{}", chain.name));
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(8));
    g.throughput(Throughput::Elements(chain.txs));
    let nblocks = chain.blocks.len() as u64;
    for (func, group) in [("wal_group_commit", GROUP), ("wal_fsync_per_block", 1)] {
        let label = format!("{} {func}", chain.name);
        g.bench_function(BenchmarkId::new(func, group), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let dir = tempfile::tempdir().unwrap();
                    let mut store = fresh_store(chain, dir.path(), 1 << 40);
                    let t = Instant::now();
                    ingest_wal(chain, &mut store, group);
                    total += t.elapsed();
                }
                record(label.clone(), total, nblocks * iters);
                total
            });
        });
    }
    let label = format!("{} redb_commit_per_block", chain.name);
    g.bench_function(BenchmarkId::new("redb_commit_per_block", 1), |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let dir = tempfile::tempdir().unwrap();
                // Same starting coins as the WAL variants (loaded through a store, not timed).
                drop(fresh_store(chain, dir.path(), 1 << 40));
                let db = redb::Builder::new()
                    .set_cache_size(64 << 20)
                    .create(dir.path().join("coins.redb"))
                    .unwrap();
                let t = Instant::now();
                ingest_redb_per_block(chain, &db);
                total += t.elapsed();
            }
            record(label.clone(), total, nblocks * iters);
            total
        });
    });
    g.finish();
}

fn bench_recovery_and_snapshots(c: &mut Criterion, chain: &Chain) {
    // A datadir whose WAL holds the whole chain (never checkpointed), copied per iteration.
    let src = tempfile::tempdir().unwrap();
    let mut store = fresh_store(chain, src.path(), 1 << 40);
    for (h, b, cn) in &chain.blocks {
        let _ = store
            .append_block(&BlockRecord {
                height: *h,
                hash: b.block_hash(),
                prev_hash: b.header.prev_blockhash,
                changes: &cn.changes,
                undo: &cn.undo,
                commitment_root: None,
            })
            .unwrap();
    }
    store.commit_pending().unwrap();
    drop(store);
    let wal_bytes: u64 = std::fs::read_dir(src.path())
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| wal_store::parse_segment_name(e.file_name().to_str().unwrap()).is_some())
        .map(|e| e.metadata().unwrap().len())
        .sum();
    let mut g = c.benchmark_group("wal_recovery");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(wal_bytes));
    g.bench_function(BenchmarkId::new("replay_and_fold", chain.name), |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let dir = tempfile::tempdir().unwrap();
                for e in std::fs::read_dir(src.path()).unwrap() {
                    let e = e.unwrap();
                    std::fs::copy(e.path(), dir.path().join(e.file_name())).unwrap();
                }
                let t = Instant::now();
                let (store, report) = Store::open(
                    dir.path(),
                    StoreOptions::new(chain.network).track_muhash(false),
                )
                .unwrap();
                total += t.elapsed();
                assert_eq!(report.replayed_records, chain.blocks.len() as u64);
                drop(store);
            }
            total
        });
    });
    g.finish();

    // Snapshots of the chain's final set.
    let (mut store, _) = Store::open(
        src.path(),
        StoreOptions::new(chain.network).track_muhash(false),
    )
    .unwrap();
    let mut ours = Vec::new();
    store.export_snapshot(&mut ours).unwrap();
    let mut core = Vec::new();
    store.dump_core_snapshot(&mut core).unwrap();
    let tip = store.tip().unwrap();
    let mut g = c.benchmark_group("wal_snapshot");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(ours.len() as u64));
    g.bench_function(BenchmarkId::new("export_ours", chain.name), |b| {
        b.iter(|| {
            let mut out = Vec::with_capacity(ours.len());
            store.export_snapshot(&mut out).unwrap();
            out
        });
    });
    g.bench_function(BenchmarkId::new("import_ours", chain.name), |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let dir = tempfile::tempdir().unwrap();
                let (mut s, _) = Store::open(
                    dir.path(),
                    StoreOptions::new(chain.network).track_muhash(false),
                )
                .unwrap();
                let t = Instant::now();
                s.import_snapshot(&ours[..], |t| t.hash == tip.hash)
                    .unwrap();
                total += t.elapsed();
            }
            total
        });
    });
    g.throughput(Throughput::Bytes(core.len() as u64));
    g.bench_function(BenchmarkId::new("dump_core", chain.name), |b| {
        b.iter(|| {
            let mut out = Vec::with_capacity(core.len());
            store.dump_core_snapshot(&mut out).unwrap();
            out
        });
    });
    g.bench_function(BenchmarkId::new("load_core", chain.name), |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let dir = tempfile::tempdir().unwrap();
                let (mut s, _) = Store::open(
                    dir.path(),
                    StoreOptions::new(chain.network).track_muhash(false),
                )
                .unwrap();
                let t = Instant::now();
                s.load_core_snapshot(&core[..], |_| Some(tip.height), None)
                    .unwrap();
                total += t.elapsed();
            }
            total
        });
    });
    g.finish();
}

fn write_figures() {
    let t = TIMES.lock().unwrap();
    let rate = |name: &str| {
        t.iter()
            .find(|e| e.0 == name)
            .map(|e| e.2 as f64 / e.1.as_secs_f64())
    };
    let mut figs = Vec::new();
    for chain in ["regtest", "synthetic"] {
        let base = rate(&format!("{chain} redb_commit_per_block"));
        for func in [
            "wal_group_commit",
            "wal_fsync_per_block",
            "redb_commit_per_block",
        ] {
            if let Some(r) = rate(&format!("{chain} {func}")) {
                figs.push(Figure {
                    label: format!("durable ingest, {chain} chain, {func} (blocks/s)"),
                    value: format!("{r:.0}"),
                    unit: "blocks/s".into(),
                    baseline: base.map_or("–".into(), |b| {
                        format!("redb commit per block {b:.0} blocks/s (×{:.2})", r / b)
                    }),
                    bar: "faster than Core reindex-chainstate".into(),
                });
            }
        }
    }
    if !figs.is_empty() {
        figures::write("wal", &figs).unwrap();
    }
}

fn benches(c: &mut Criterion) {
    let regtest = regtest_chain();
    bench_ingest(c, &regtest);
    bench_recovery_and_snapshots(c, &regtest);
    let synthetic = synthetic_chain();
    bench_ingest(c, &synthetic);
    bench_recovery_and_snapshots(c, &synthetic);
    write_figures();
}

criterion_group!(wal, benches);
criterion_main!(wal);
