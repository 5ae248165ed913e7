//! Backward compatibility: versioned fixture files in `testdata/` (a WAL segment of format 1 with
//! every record kind, a snapshot of format 1 and one of format 2 with a commitment root) are read
//! back by today's code, and today's writer still produces them byte for byte. Regenerate (only with a format version bump) with
//! `WAL_STORE_WRITE_FIXTURES=1 cargo test -p wal-store --test fixture`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;
use std::sync::Arc;

use bitcoin::Network;
use bitcoin::hashes::Hash;
use common::{Chain, ToyCommitment};
use utxo_core::{CoinStore, FlushBatch};
use wal_store::fs::StoreIo;
use wal_store::sim::SimDisk;
use wal_store::snapshot::{
    SNAPSHOT_FORMAT_VERSION, SNAPSHOT_FORMAT_VERSION_V1, SNAPSHOT_HEADER_LEN,
    SNAPSHOT_HEADER_LEN_V1, SnapshotReader,
};
use wal_store::{Store, StoreOptions};

const SEGMENT: &str = "wal-0000000000000001.log";
const SEGMENT_FIXTURE: &str = "wal-format-1.log";
const SNAPSHOT_FIXTURE: &str = "snapshot-format-1.l2utxo";
const SNAPSHOT_2_FIXTURE: &str = "snapshot-format-2.l2utxo";
/// The commitment root in the format-2 fixture: `ToyCommitment` (blake3 of the coins' `txout_ser`
/// bytes in order) of the fixture's set, pinned.
const PINNED_ROOT: [u8; 32] = [
    0x90, 0x84, 0xda, 0x13, 0x9c, 0x49, 0x0d, 0x66, 0x12, 0xf4, 0x4e, 0xea, 0xaf, 0xb1, 0x18, 0x8c,
    0x37, 0x31, 0x38, 0xe6, 0x1f, 0x0c, 0x20, 0x3e, 0xa3, 0x7a, 0x24, 0xd3, 0x67, 0x05, 0x5f, 0x91,
];
/// Height of the fixtures' tip.
const TIP_HEIGHT: u32 = 3;

fn testdata() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata")
}

fn opts() -> StoreOptions {
    StoreOptions::new(Network::Regtest)
}

/// The deterministic workload behind the fixtures: blocks, a disconnect, a raw batch. Returns the
/// segment, the format-1 snapshot and the format-2 snapshot (root: [`ToyCommitment`] of the set).
fn write_fixtures() -> (Vec<u8>, Vec<u8>, Vec<u8>) {
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
    let root = ToyCommitment::root_of(&common::store_coins(&mut store));
    let mut snapshot2 = Vec::new();
    store
        .export_snapshot_with_root(&mut snapshot2, Some(root))
        .unwrap();
    (segment, snapshot, snapshot2)
}

#[test]
fn format_1_fixtures_read_back_and_are_reproduced_byte_for_byte() {
    let (segment, snapshot, _) = write_fixtures();
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
    assert_eq!(store2.snapshot_root().unwrap(), None);

    // Through the checked import too: a format-1 file has no root, the check is never consulted.
    let dir3 = tempfile::tempdir().unwrap();
    let (mut store3, _) = Store::open(dir3.path(), opts()).unwrap();
    let mut check = ToyCommitment::failing("must not be called");
    let info = store3
        .import_snapshot_checked(&snap_fixture[..], |t| *t == tip, &mut check)
        .unwrap();
    assert_eq!(info.version, SNAPSHOT_FORMAT_VERSION_V1);
    assert_eq!(info.commitment_root, None);
    assert_eq!(info.header, header);
    assert_eq!(check.coins, 0);
    assert_eq!(store3.snapshot_root().unwrap(), None);
}

#[test]
fn format_2_snapshot_fixture_reads_back_with_its_root() {
    let (_, _, snapshot2) = write_fixtures();
    if std::env::var_os("WAL_STORE_WRITE_FIXTURES").is_some() {
        std::fs::write(testdata().join(SNAPSHOT_2_FIXTURE), &snapshot2).unwrap();
    }
    let fixture = std::fs::read(testdata().join(SNAPSHOT_2_FIXTURE)).unwrap();
    let v1 = std::fs::read(testdata().join(SNAPSHOT_FIXTURE)).unwrap();
    assert!(
        fixture == snapshot2,
        "the snapshot writer's bytes changed: bump the version"
    );

    // Byte-exact header fields. The set is the format-1 fixture's: same fields before the root,
    // same coins after it.
    assert_eq!(SNAPSHOT_HEADER_LEN, 124);
    assert_eq!(&fixture[0..8], b"l2btcUTX");
    assert_eq!(fixture[8..12], [2, 0, 0, 0]);
    assert_eq!(fixture[12..16], [0xfa, 0xbf, 0xb5, 0xda]);
    assert_eq!(fixture[16..20], TIP_HEIGHT.to_le_bytes());
    assert_eq!(fixture[20..92], v1[20..92]);
    assert_eq!(fixture[92..124], PINNED_ROOT);
    assert_eq!(
        fixture[124..fixture.len() - 32],
        v1[SNAPSHOT_HEADER_LEN_V1..v1.len() - 32]
    );
    assert_eq!(
        &fixture[fixture.len() - 32..],
        blake3::hash(&fixture[..fixture.len() - 32]).as_bytes()
    );

    let reader = SnapshotReader::new(&fixture[..], Network::Regtest).unwrap();
    let info = *reader.info();
    assert_eq!(info.version, SNAPSHOT_FORMAT_VERSION);
    assert_eq!(info.commitment_root, Some(PINNED_ROOT));
    assert_eq!(info.header.tip.height, TIP_HEIGHT);
    assert_eq!(info.header.tip.hash.to_byte_array()[..], fixture[20..52]);
    assert_eq!(
        info.header.coins,
        u64::from_le_bytes(fixture[52..60].try_into().unwrap())
    );
    assert_eq!(info.header.muhash[..], fixture[60..92]);
    assert_eq!(reader.count(), usize::try_from(info.header.coins).unwrap());

    // It imports, checked, and the store keeps its root.
    let dir = tempfile::tempdir().unwrap();
    let (mut store, _) = Store::open(dir.path(), opts()).unwrap();
    let mut check = ToyCommitment::default();
    let got = store
        .import_snapshot_checked(&fixture[..], |t| t.height == TIP_HEIGHT, &mut check)
        .unwrap();
    assert_eq!(got, info);
    assert_eq!(check.coins, info.header.coins);
    assert_eq!(
        store.snapshot_root().unwrap(),
        Some((info.header.tip, PINNED_ROOT))
    );
    // And today's export of that store with the same root reproduces the fixture.
    let mut again = Vec::new();
    store
        .export_snapshot_with_root(&mut again, Some(PINNED_ROOT))
        .unwrap();
    assert!(again == fixture);
}
