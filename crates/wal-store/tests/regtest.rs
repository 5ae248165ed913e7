//! Against Bitcoin Core's own figures (testdata/regtest/chain-a, Core v30.0): loading Core's
//! `dumptxoutset` reproduces `txouts`, `total_amount`, `muhash` and `hash_serialized_3`; ingesting
//! the chain durably through the WAL gives the same statistics, and our `dump-core` of that tip is
//! byte-identical to Core's file; our own snapshot round-trips; a `CoinCache` flushes into the store.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::str::FromStr;

use bitcoin::hashes::{Hash, sha256d};
use bitcoin::{Block, BlockHash, Network, OutPoint};
use utxo_core::{ChainParams, Coin, CoinCache, SetOptions, UtxoSet, UtxoStats, format_btc};
use wal_store::core_snapshot::CoreSnapshotReader;
use wal_store::{BlockRecord, SnapshotError, Store, StoreError, StoreOptions};

fn testdata(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/regtest/chain-a")
        .join(name)
}

fn core_snapshot() -> Vec<u8> {
    std::fs::read(testdata("utxo-snapshot-200.dat")).unwrap()
}

struct Expected {
    base: BlockHash,
    txouts: u64,
    total: String,
    muhash: String,
    hash3: String,
}

fn expected() -> Expected {
    let stats: serde_json::Value =
        serde_json::from_slice(&std::fs::read(testdata("core-utxo-stats.json")).unwrap()).unwrap();
    let snap: serde_json::Value =
        serde_json::from_slice(&std::fs::read(testdata("utxo-snapshot-200.json")).unwrap())
            .unwrap();
    let h = &stats["heights"]["200"];
    assert_eq!(
        snap["txoutset_hash"],
        h["hash_serialized_3"]["hash_serialized_3"]
    );
    Expected {
        base: BlockHash::from_str(snap["base_hash"].as_str().unwrap()).unwrap(),
        txouts: snap["coins_written"].as_u64().unwrap(),
        total: h["muhash"]["total_amount"].as_str().unwrap().to_string(),
        muhash: h["muhash"]["muhash"].as_str().unwrap().to_string(),
        hash3: snap["txoutset_hash"].as_str().unwrap().to_string(),
    }
}

fn blocks() -> Vec<Block> {
    let f = std::fs::File::open(testdata("blocks-0-200.hex.gz")).unwrap();
    BufReader::new(flate2::read::GzDecoder::new(f))
        .lines()
        .map(|l| {
            let bytes = hex::decode(l.unwrap().trim()).unwrap();
            bitcoin::consensus::deserialize(&bytes).unwrap()
        })
        .collect()
}

fn stats_of(coins: &[(OutPoint, Coin)]) -> UtxoStats {
    let mut s = UtxoStats::new(true);
    let mut buf = Vec::new();
    for (op, c) in coins {
        s.add_coin(op, c, &mut buf);
    }
    s
}

fn opts() -> StoreOptions {
    StoreOptions::new(Network::Regtest)
}

#[test]
fn core_snapshot_reproduces_cores_statistics() {
    let e = expected();
    let bytes = core_snapshot();
    let mut reader = CoreSnapshotReader::new(&bytes[..], Network::Regtest).unwrap();
    assert_eq!(reader.header().base_hash, e.base);
    assert_eq!(reader.header().coins, e.txouts);
    let coins: Vec<(OutPoint, Coin)> = reader.by_ref().map(|r| r.unwrap()).collect();
    assert_eq!(coins.len() as u64, e.txouts);
    let stats = stats_of(&coins);
    assert_eq!(stats.txouts, 15_000);
    assert_eq!(format_btc(stats.total_amount), e.total);
    assert_eq!(stats.muhash_hex().unwrap(), e.muhash);
    assert_eq!(reader.hash_serialized_3().unwrap().to_string(), e.hash3);
    let mut sorted = coins.clone();
    sorted.sort_by(|a, b| {
        (a.0.txid.to_byte_array(), a.0.vout).cmp(&(b.0.txid.to_byte_array(), b.0.vout))
    });
    let h3 = utxo_core::hash_serialized_3(sorted.iter().map(|(o, c)| (o, c)));
    assert_eq!(h3.to_string(), e.hash3);
}

#[test]
fn load_core_then_dump_core_is_byte_identical_and_our_snapshot_roundtrips() {
    let e = expected();
    let bytes = core_snapshot();
    let dir = tempfile::tempdir().unwrap();
    let (mut store, _) = Store::open(dir.path(), opts()).unwrap();
    let expected_hash = sha256d::Hash::from_str(&e.hash3).unwrap();
    let (header, tip) = store
        .load_core_snapshot(
            &bytes[..],
            |h| (*h == e.base).then_some(200),
            Some(expected_hash),
        )
        .unwrap();
    assert_eq!((header.coins, tip.height), (15_000, 200));
    assert_eq!(store.stats().muhash_hex().unwrap(), e.muhash);
    assert_eq!(format_btc(store.stats().total_amount), e.total);
    // Core's format carries no commitment root.
    assert_eq!(store.snapshot_root().unwrap(), None);
    let mut out = Vec::new();
    store.dump_core_snapshot(&mut out).unwrap();
    assert!(out == bytes, "dump-core differs from Core's file");

    // Our format: export, import into a fresh store, same coins and stats.
    let mut ours = Vec::new();
    let h = store.export_snapshot(&mut ours).unwrap();
    let mut digest = h.muhash;
    digest.reverse();
    assert_eq!(hex::encode(digest), e.muhash);
    let dir2 = tempfile::tempdir().unwrap();
    let (mut store2, _) = Store::open(dir2.path(), opts()).unwrap();
    store2
        .import_snapshot(&ours[..], |t| t.hash == e.base)
        .unwrap();
    assert_eq!(store2.stats(), store.stats());
    let mut again = Vec::new();
    store2.dump_core_snapshot(&mut again).unwrap();
    assert!(again == bytes);
    drop(store2);
    let (store2, _) = Store::open(dir2.path(), opts()).unwrap();
    assert_eq!(store2.tip().unwrap().height, 200);
    assert_eq!(store2.stats().muhash_hex().unwrap(), e.muhash);
}

#[test]
fn snapshot_of_unknown_block_or_other_network_leaves_the_store_empty() {
    let e = expected();
    let bytes = core_snapshot();
    let dir = tempfile::tempdir().unwrap();
    let (mut store, _) = Store::open(dir.path(), opts()).unwrap();
    assert!(matches!(
        store.load_core_snapshot(&bytes[..], |_| None, None),
        Err(StoreError::Snapshot(SnapshotError::UnknownBlock { .. }))
    ));
    let dir2 = tempfile::tempdir().unwrap();
    let (mut signet, _) = Store::open(dir2.path(), StoreOptions::new(Network::Signet)).unwrap();
    assert!(matches!(
        signet.load_core_snapshot(&bytes[..], |_| Some(200), None),
        Err(StoreError::Snapshot(SnapshotError::WrongNetwork { .. }))
    ));
    // A wrong expected hash: nothing committed.
    assert!(matches!(
        store.load_core_snapshot(&bytes[..], |_| Some(200), Some(sha256d::Hash::all_zeros())),
        Err(StoreError::Snapshot(SnapshotError::HashMismatch { .. }))
    ));
    assert_eq!(store.tip(), None);
    assert_eq!(store.coin_count().unwrap(), 0);
    // Our format: same checks.
    let (mut full, _) = Store::open(tempfile::tempdir().unwrap().path(), opts()).unwrap();
    full.load_core_snapshot(&bytes[..], |h| (*h == e.base).then_some(200), None)
        .unwrap();
    let mut ours = Vec::new();
    full.export_snapshot(&mut ours).unwrap();
    assert!(matches!(
        store.import_snapshot(&ours[..], |_| false),
        Err(StoreError::Snapshot(SnapshotError::UnknownBlock { .. }))
    ));
    assert!(matches!(
        signet.import_snapshot(&ours[..], |_| true),
        Err(StoreError::Snapshot(SnapshotError::WrongNetwork { .. }))
    ));
    assert_eq!(store.coin_count().unwrap(), 0);
    // Into a store that already has a tip: refused.
    assert!(matches!(
        full.import_snapshot(&ours[..], |_| true),
        Err(StoreError::NotEmpty { .. })
    ));
}

#[test]
fn durable_ingest_of_the_regtest_chain_matches_core() {
    let e = expected();
    let blocks = blocks();
    let dir = tempfile::tempdir().unwrap();
    let (mut store, _) = Store::open(dir.path(), opts().checkpoint_wal_bytes(256 << 10)).unwrap();
    let set = UtxoSet::with_options(SetOptions {
        track_muhash: false,
        params: ChainParams::for_network(Network::Regtest),
        ..SetOptions::default()
    });
    for (height, block) in blocks.iter().enumerate() {
        let height = u32::try_from(height).unwrap();
        let c = set.connect_block(block, height).unwrap();
        let _ = store
            .append_block(&BlockRecord {
                height,
                hash: block.block_hash(),
                prev_hash: block.header.prev_blockhash,
                changes: &c.changes,
                undo: &c.undo,
                commitment_root: None,
            })
            .unwrap();
        if height % 16 == 0 {
            store.commit_pending().unwrap();
        }
    }
    store.commit_pending().unwrap();
    assert_eq!(store.tip().unwrap().hash, e.base);
    assert_eq!(store.stats().txouts, e.txouts);
    assert_eq!(store.stats().muhash_hex().unwrap(), e.muhash);
    drop(store);
    let (mut store, _) = Store::open(dir.path(), opts()).unwrap();
    assert_eq!(store.stats().muhash_hex().unwrap(), e.muhash);
    let mut out = Vec::new();
    store.dump_core_snapshot(&mut out).unwrap();
    assert!(
        out == core_snapshot(),
        "our dump of the same tip differs from Core's"
    );
    // Disconnect back to 100 after the restart: Core's figures at 100.
    store.rollback_to(100).unwrap();
    let stats: serde_json::Value =
        serde_json::from_slice(&std::fs::read(testdata("core-utxo-stats.json")).unwrap()).unwrap();
    assert_eq!(
        store.stats().muhash_hex().unwrap(),
        stats["heights"]["100"]["muhash"]["muhash"]
            .as_str()
            .unwrap()
    );
}

#[test]
fn a_coin_cache_flushes_into_the_store() {
    let blocks = blocks();
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = Store::open(dir.path(), opts()).unwrap();
    // A small budget forces several flushes through CoinStore::write.
    let cache = CoinCache::new(store, 256 << 10, ChainParams::for_network(Network::Regtest));
    for (height, block) in blocks.iter().enumerate() {
        cache
            .apply_block(block, u32::try_from(height).unwrap())
            .unwrap();
    }
    cache.flush().unwrap();
    let store = cache.into_store();
    assert_eq!(store.tip().unwrap().hash, expected().base);
    let bytes = core_snapshot();
    let mut reader = CoreSnapshotReader::new(&bytes[..], Network::Regtest).unwrap();
    let core: Vec<(OutPoint, Coin)> = reader.by_ref().map(|r| r.unwrap()).collect();
    drop(store);
    let (mut store, _) = Store::open(dir.path(), opts()).unwrap();
    assert_eq!(store.coin_count().unwrap(), core.len() as u64);
    for (op, c) in &core {
        assert_eq!(store.get_coin(op).unwrap().as_ref(), Some(c));
    }
}
