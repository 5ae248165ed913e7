//! Bad input: a flipped bit anywhere in a WAL segment or a snapshot, truncated WAL segments (last
//! and not last), truncated snapshots, newer snapshot versions. Each is either a typed error that
//! leaves no partial state, or (only for the WAL's last record, which was never acknowledged if it
//! is torn) a reported discard of exactly that record. Positions are seeded and reproducible.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use bitcoin::{BlockHash, Network};
use common::{
    Chain, CoreSnapshot, Model, ToyCommitment, append_blocks, assert_snapshot_refused,
    core_snapshot_200, store_coins, with_flipped_bit,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use wal_store::sim::SimDisk;
use wal_store::{SnapshotError, Store, StoreError, StoreOptions};

fn opts() -> StoreOptions {
    StoreOptions::new(Network::Regtest)
}

/// A disk whose WAL holds `n` committed block records (not checkpointed), and the model after
/// each record (states[0] = empty).
fn wal_disk(n: usize, o: StoreOptions) -> (SimDisk, Vec<(Option<BlockHash>, Model)>) {
    let disk = SimDisk::new();
    let (mut store, _) = Store::open_with_io(Arc::new(disk.clone()), o).unwrap();
    let mut chain = Chain::new(77);
    let mut states = vec![(None, Model::new())];
    for _ in 0..n {
        let _ = store.append_block(&chain.next_block().record()).unwrap();
        store.commit_pending().unwrap();
        states.push((chain.tip.map(|t| t.1), chain.model.clone()));
    }
    drop(store);
    (disk, states)
}

fn segments(disk: &SimDisk) -> Vec<String> {
    let mut v: Vec<String> = disk
        .file_names()
        .into_iter()
        .filter(|n| wal_store::parse_segment_name(n).is_some())
        .collect();
    v.sort();
    v
}

fn state_of(store: &mut Store) -> (Option<BlockHash>, Model) {
    (store.tip().map(|t| t.hash), store_coins(store))
}

#[test]
fn flipped_bit_anywhere_in_a_wal_segment() {
    let (disk, states) = wal_disk(6, opts());
    let seg = segments(&disk).pop().unwrap();
    let len = disk.file_len(&seg).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let (mut errors, mut discards) = (0, 0);
    for byte in 0..len {
        let bit = (byte * 8 + rng.random_range(0..8usize)) as u64;
        let copy = disk.crash_image(None);
        assert!(copy.flip_bit(&seg, bit));
        match Store::open_with_io(Arc::new(copy.clone()), opts()) {
            Ok((mut store, report)) => {
                // Only the last record may be dropped, and it is reported.
                assert!(
                    report.discarded_tail.is_some(),
                    "byte {byte}: silent change"
                );
                assert_eq!(state_of(&mut store), states[5], "byte {byte}");
                discards += 1;
            }
            Err(e) => {
                assert!(
                    matches!(e, StoreError::CorruptWal { .. } | StoreError::WalGap { .. }),
                    "byte {byte}: {e:?}"
                );
                // No partial state: with the bit flipped back, everything is there.
                assert!(copy.flip_bit(&seg, bit));
                let (mut store, report) = Store::open_with_io(Arc::new(copy), opts()).unwrap();
                assert_eq!(report.discarded_tail, None);
                assert_eq!(state_of(&mut store), states[6], "byte {byte}");
                errors += 1;
            }
        }
    }
    assert!(
        errors > 0 && discards > 0,
        "{errors} errors, {discards} discards"
    );
}

#[test]
fn truncated_last_segment_keeps_exactly_the_complete_records() {
    let (disk, states) = wal_disk(5, opts());
    let seg = segments(&disk).pop().unwrap();
    let len = disk.file_len(&seg).unwrap();
    let mut boundaries = Vec::new();
    for cut in 0..=len {
        let copy = disk.crash_image(None);
        copy.truncate(&seg, cut);
        let (mut store, report) = Store::open_with_io(Arc::new(copy), opts()).unwrap();
        let (tip, coins) = state_of(&mut store);
        let j = states
            .iter()
            .position(|s| s.0 == tip && s.1 == coins)
            .unwrap_or_else(|| panic!("cut {cut}: not a prefix state"));
        if report.discarded_tail.is_none() {
            boundaries.push((cut, j));
        }
    }
    // Clean cuts happen exactly at frame boundaries; a cut inside the header discards the segment.
    assert_eq!(boundaries.len(), 6, "{boundaries:?}"); // the header, then each of 5 records
    assert_eq!(boundaries.last().unwrap(), &(len, 5));
}

#[test]
fn truncated_or_missing_earlier_segment_is_a_typed_error() {
    let o = opts().segment_bytes(300);
    let (disk, states) = wal_disk(8, o.clone());
    let segs = segments(&disk);
    assert!(segs.len() >= 3, "{segs:?}");
    let first = &segs[0];
    let len = disk.file_len(first).unwrap();
    for cut in [len - 1, len - 40, 60] {
        let copy = disk.crash_image(None);
        copy.truncate(first, cut);
        let r = Store::open_with_io(Arc::new(copy), o.clone());
        assert!(
            matches!(
                r,
                Err(StoreError::CorruptWal { .. } | StoreError::WalGap { .. })
            ),
            "cut {cut}: {:?}",
            r.map(|_| ())
        );
    }
    let copy = disk.crash_image(None);
    wal_store::fs::StoreIo::remove(&copy, &segs[1]).unwrap();
    assert!(matches!(
        Store::open_with_io(Arc::new(copy), o.clone()),
        Err(StoreError::WalGap { .. })
    ));
    let (mut store, _) = Store::open_with_io(Arc::new(disk), o).unwrap();
    assert_eq!(state_of(&mut store), states[8]);
}

fn snapshot_bytes() -> (Vec<u8>, BlockHash) {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, _) = Store::open(dir.path(), opts()).unwrap();
    let mut chain = Chain::new(5);
    append_blocks(&mut store, &mut chain, 25);
    let mut out = Vec::new();
    let h = store.export_snapshot(&mut out).unwrap();
    (out, h.tip.hash)
}

#[test]
fn flipped_bit_anywhere_in_our_snapshot_is_rejected_without_partial_state() {
    let (bytes, tip) = snapshot_bytes();
    let dir = tempfile::tempdir().unwrap();
    let (mut store, _) = Store::open(dir.path(), opts()).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    for byte in 0..bytes.len() {
        let b = with_flipped_bit(&bytes, byte, &mut rng);
        let r = store.import_snapshot(&b[..], |t| t.hash == tip);
        assert_snapshot_refused(r, &store, &format!("byte {byte}"));
    }
    assert_eq!(store.coin_count().unwrap(), 0);
    // Truncated at a few lengths, and a newer format version.
    for cut in [0, 10, 91, bytes.len() / 2, bytes.len() - 1] {
        assert!(matches!(
            store.import_snapshot(&bytes[..cut], |_| true),
            Err(StoreError::Snapshot(SnapshotError::Truncated { .. }))
        ));
    }
    let mut newer = bytes.clone();
    newer[8] = 3;
    assert!(matches!(
        store.import_snapshot(&newer[..], |_| true),
        Err(StoreError::Snapshot(SnapshotError::UnsupportedVersion {
            found: 3,
            ..
        }))
    ));
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(matches!(
        store.import_snapshot(&longer[..], |_| true),
        Err(StoreError::Snapshot(SnapshotError::TrailingBytes))
    ));
    assert_eq!(store.coin_count().unwrap(), 0);
    store
        .import_snapshot(&bytes[..], |t| t.hash == tip)
        .unwrap();
}

#[test]
fn flipped_bit_in_the_commitment_root_of_a_format_2_snapshot_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let (mut src, _) = Store::open(dir.path(), opts()).unwrap();
    let mut chain = Chain::new(5);
    append_blocks(&mut src, &mut chain, 25);
    let root = ToyCommitment::root_of(&chain.model);
    let mut bytes = Vec::new();
    let info = src
        .export_snapshot_with_root(&mut bytes, Some(root))
        .unwrap();
    let tip = info.header.tip.hash;
    assert_eq!(bytes[92..124], root);
    let dir2 = tempfile::tempdir().unwrap();
    let (mut store, _) = Store::open(dir2.path(), opts()).unwrap();
    // Every bit of the root field: the trailing checksum covers it.
    for bit in 0..256 {
        let mut b = bytes.clone();
        b[92 + bit / 8] ^= 1 << (bit % 8);
        let r =
            store.import_snapshot_checked(&b[..], |t| t.hash == tip, &mut ToyCommitment::default());
        assert!(
            matches!(r, Err(StoreError::Snapshot(SnapshotError::Checksum))),
            "bit {bit}: {:?}",
            r.map(|_| ())
        );
        // The unchecked import refuses it too (checksum).
        assert!(store.import_snapshot(&b[..], |t| t.hash == tip).is_err());
        assert_eq!(store.tip(), None);
    }
    // Seeded flips anywhere else.
    let mut rng = ChaCha8Rng::seed_from_u64(13);
    for _ in 0..64 {
        let byte = rng.random_range(0..bytes.len());
        let b = with_flipped_bit(&bytes, byte, &mut rng);
        let r =
            store.import_snapshot_checked(&b[..], |t| t.hash == tip, &mut ToyCommitment::default());
        assert_snapshot_refused(r, &store, &format!("byte {byte}"));
    }
    // Cut inside the root: truncated, not misread as format 1.
    assert!(matches!(
        store.import_snapshot(&bytes[..110], |_| true),
        Err(StoreError::Snapshot(SnapshotError::Truncated {
            what: "header"
        }))
    ));
    assert_eq!(store.coin_count().unwrap(), 0);
    let got = store
        .import_snapshot_checked(&bytes[..], |t| t.hash == tip, &mut ToyCommitment::default())
        .unwrap();
    assert_eq!(got, info);
    assert_eq!(store_coins(&mut store), chain.model);
}

#[test]
fn flipped_bits_in_cores_snapshot_are_caught_by_the_assumeutxo_hash() {
    let CoreSnapshot {
        bytes,
        base,
        txoutset_hash: hash,
    } = core_snapshot_200();
    let dir = tempfile::tempdir().unwrap();
    let (mut store, _) = Store::open(dir.path(), opts()).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(12);
    // The header bytes, then seeded positions in the coins.
    let mut positions: Vec<usize> = (0..51).step_by(5).collect();
    positions.extend((0..12).map(|_| rng.random_range(51..bytes.len())));
    for byte in positions {
        let b = with_flipped_bit(&bytes, byte, &mut rng);
        let r = store.load_core_snapshot(&b[..], |h| (*h == base).then_some(200), Some(hash));
        assert_snapshot_refused(r, &store, &format!("byte {byte}"));
    }
    assert!(matches!(
        store.load_core_snapshot(&bytes[..bytes.len() - 3], |_| Some(200), Some(hash)),
        Err(StoreError::Snapshot(SnapshotError::Truncated { .. }))
    ));
    assert_eq!(store.coin_count().unwrap(), 0);
}
