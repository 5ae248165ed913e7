//! Backward compatibility: versioned fixture files in `testdata/` (a WAL segment of format 1 with
//! every record kind, and a snapshot of format 1) are read back by today's code, and today's
//! writer still produces them byte for byte. Regenerate (only with a format version bump) with
//! `WAL_STORE_WRITE_FIXTURES=1 cargo test -p wal-store --test fixture`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;
use std::sync::Arc;

use bitcoin::Network;
use common::Chain;
use utxo_core::{CoinStore, FlushBatch};
use wal_store::fs::StoreIo;
use wal_store::sim::SimDisk;
use wal_store::{Store, StoreOptions};

const SEGMENT: &str = "wal-0000000000000001.log";
const SEGMENT_FIXTURE: &str = "wal-format-1.log";
const SNAPSHOT_FIXTURE: &str = "snapshot-format-1.l2utxo";
/// Height of the fixtures' tip.
const TIP_HEIGHT: u32 = 3;

fn testdata() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata")
}

fn opts() -> StoreOptions {
    StoreOptions::new(Network::Regtest)
}

/// The deterministic workload behind the fixtures: blocks, a disconnect, a raw batch.
fn write_fixtures() -> (Vec<u8>, Vec<u8>) {
    let disk = SimDisk::new();
    let (mut store, _) = Store::open_with_io(Arc::new(disk.clone()), opts()).unwrap();
    let mut chain = Chain::new(1);
    let mut last = None;
    for _ in 0..4 {
        let b = chain.next_block();
        let _ = store.append_block(&b.record()).unwrap();
        last = Some(b);
    }
    let (_, d) = store.disconnect_tip().unwrap();
    chain.undo_block(last.as_ref().unwrap());
    assert_eq!(d.height, 3);
    let b = chain.next_block();
    let _ = store.append_block(&b.record()).unwrap();
    let (op, coin) = b.changes.created[0].clone();
    let mut moved = op;
    moved.vout += 1000;
    store
        .write(FlushBatch {
            upserts: vec![(moved, coin)],
            deletes: vec![op],
            best_block: None,
        })
        .unwrap();
    store.commit_pending().unwrap();
    let segment = disk.read(SEGMENT).unwrap();
    let mut snapshot = Vec::new();
    store.export_snapshot(&mut snapshot).unwrap();
    (segment, snapshot)
}

#[test]
fn format_1_fixtures_read_back_and_are_reproduced_byte_for_byte() {
    let (segment, snapshot) = write_fixtures();
    if std::env::var_os("WAL_STORE_WRITE_FIXTURES").is_some() {
        std::fs::write(testdata().join(SEGMENT_FIXTURE), &segment).unwrap();
        std::fs::write(testdata().join(SNAPSHOT_FIXTURE), &snapshot).unwrap();
    }
    let seg_fixture = std::fs::read(testdata().join(SEGMENT_FIXTURE)).unwrap();
    let snap_fixture = std::fs::read(testdata().join(SNAPSHOT_FIXTURE)).unwrap();
    assert!(
        seg_fixture == segment,
        "the WAL writer's bytes changed: bump the format version"
    );
    assert!(
        snap_fixture == snapshot,
        "the snapshot writer's bytes changed: bump the version"
    );

    // A datadir holding only the fixture segment replays it.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(SEGMENT), &seg_fixture).unwrap();
    let (mut store, report) = Store::open(dir.path(), opts()).unwrap();
    assert_eq!(report.replayed_records, 7);
    assert_eq!(report.discarded_tail, None);
    let tip = store.tip().unwrap();
    assert_eq!(tip.height, TIP_HEIGHT);
    let mut from_wal = Vec::new();
    let header = store.export_snapshot(&mut from_wal).unwrap();
    assert!(
        from_wal == snap_fixture,
        "replaying the fixture gives another set"
    );

    // The snapshot fixture imports into an empty store with the same header.
    let dir2 = tempfile::tempdir().unwrap();
    let (mut store2, _) = Store::open(dir2.path(), opts()).unwrap();
    let h2 = store2
        .import_snapshot(&snap_fixture[..], |t| *t == tip)
        .unwrap();
    assert_eq!(h2, header);
    assert_eq!(store2.stats(), store.stats());
}
