//! Chunked snapshot imports: coins are committed every `import_chunk_coins` coins under the meta
//! marker `import_in_progress`, yet no partial import is ever visible. Checked at and past the
//! chunk size, for failures detected at the end of the stream (checksum, MuHash,
//! `hash_serialized_3`) and mid-stream (input error after the first chunk committed), and for a
//! crash at every sync point of an import on the simulated disk (the next open wipes the partial
//! coins). Small chunk sizes stand in for `IMPORT_CHUNK_COINS_MAX`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{self, Read};
use std::path::Path;
use std::sync::Arc;

use bitcoin::hashes::{Hash, sha256d};
use bitcoin::{BlockHash, Network};
use common::{
    Chain, CoreSnapshot, Model, ToyCommitment, append_blocks, assert_snapshot_refused,
    core_snapshot_200, model_stats, store_coins, with_flipped_bit,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use redb::{ReadableDatabase, TableDefinition};
use wal_store::sim::SimDisk;
use wal_store::{IMPORT_CHUNK_COINS_MAX, SnapshotError, Store, StoreError, StoreOptions};

const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const MARKER: &str = "import_in_progress";

fn opts(chunk: usize) -> StoreOptions {
    StoreOptions::new(Network::Regtest).import_chunk_coins(chunk)
}

/// Our snapshot of a seeded 25-block chain, its tip and its set.
fn snapshot() -> (Vec<u8>, BlockHash, Model) {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, _) = Store::open(dir.path(), opts(IMPORT_CHUNK_COINS_MAX)).unwrap();
    let mut chain = Chain::new(5);
    append_blocks(&mut store, &mut chain, 25);
    let mut out = Vec::new();
    let h = store.export_snapshot(&mut out).unwrap();
    (out, h.tip.hash, chain.model)
}

/// Whether the redb file of a closed store in `dir` holds the import marker (read directly).
fn marker_in(dir: &Path) -> bool {
    let db = redb::Database::open(dir.join(wal_store::fs::REDB_FILE)).unwrap();
    let txn = db.begin_read().unwrap();
    let meta = txn.open_table(META).unwrap();
    meta.get(MARKER).unwrap().is_some()
}

/// Reopens `dir` and asserts the store is empty, has no marker, and reports `wiped`.
fn assert_empty_after_reopen(dir: &Path, chunk: usize, wiped: Option<u64>) {
    let (mut store, report) = Store::open(dir, opts(chunk)).unwrap();
    assert_eq!(report.wiped_import_coins, wiped);
    assert_eq!(store.tip(), None);
    assert_eq!(store.coin_count().unwrap(), 0);
    assert_eq!(store.stats().txouts, 0);
    drop(store);
    assert!(!marker_in(dir));
}

#[test]
fn chunk_size_option_is_clamped_to_the_limit() {
    let base = StoreOptions::new(Network::Regtest);
    assert_eq!(base.import_chunk_coins, IMPORT_CHUNK_COINS_MAX);
    assert_eq!(
        opts(IMPORT_CHUNK_COINS_MAX).import_chunk_coins,
        IMPORT_CHUNK_COINS_MAX
    );
    assert_eq!(
        opts(IMPORT_CHUNK_COINS_MAX + 1).import_chunk_coins,
        IMPORT_CHUNK_COINS_MAX
    );
    assert_eq!(opts(0).import_chunk_coins, 1);
}

#[test]
fn chunked_import_at_and_past_the_chunk_size() {
    let (bytes, tip, model) = snapshot();
    let n = model.len();
    assert!(n > 8, "{n} coins");
    // At the chunk size (one full chunk, then a final transaction without coins), one coin past
    // it, many chunks, one coin per chunk, and a chunk larger than the set.
    for chunk in [n, n - 1, 3, 1, n + 1, IMPORT_CHUNK_COINS_MAX] {
        let dir = tempfile::tempdir().unwrap();
        let (mut store, _) = Store::open(dir.path(), opts(chunk)).unwrap();
        let h = store
            .import_snapshot(&bytes[..], |t| t.hash == tip)
            .unwrap();
        assert_eq!(h.coins, n as u64);
        assert_eq!(store.tip().map(|t| t.hash), Some(tip));
        assert_eq!(store.stats(), &model_stats(&model), "chunk {chunk}");
        assert_eq!(store_coins(&mut store), model, "chunk {chunk}");
        drop(store);
        assert!(!marker_in(dir.path()), "chunk {chunk}");
        let (mut store, report) = Store::open(dir.path(), opts(chunk)).unwrap();
        assert_eq!(report.wiped_import_coins, None);
        assert_eq!(store.tip().map(|t| t.hash), Some(tip));
        assert_eq!(store.stats(), &model_stats(&model));
        assert_eq!(store_coins(&mut store), model);
    }
}

#[test]
fn end_of_stream_failures_wipe_the_committed_chunks_before_returning() {
    let (bytes, tip, _) = snapshot();
    let chunk = 3;
    let dir = tempfile::tempdir().unwrap();
    let (mut store, _) = Store::open(dir.path(), opts(chunk)).unwrap();
    // Trailing checksum flipped: every coin was read (and all but the last chunk committed).
    let mut bad_sum = bytes.clone();
    *bad_sum.last_mut().unwrap() ^= 1;
    assert!(matches!(
        store.import_snapshot(&bad_sum[..], |t| t.hash == tip),
        Err(StoreError::Snapshot(SnapshotError::Checksum))
    ));
    assert_eq!(store.tip(), None);
    assert_eq!(store.coin_count().unwrap(), 0);
    // Header MuHash flipped: the checksum is recomputed so only the MuHash check fails.
    let mut bad_muhash = bytes[..bytes.len() - 32].to_vec();
    bad_muhash[60] ^= 1;
    let sum = blake3_of(&bad_muhash);
    bad_muhash.extend_from_slice(&sum);
    assert!(matches!(
        store.import_snapshot(&bad_muhash[..], |t| t.hash == tip),
        Err(StoreError::Snapshot(SnapshotError::MuHashMismatch { .. }))
    ));
    assert_eq!(store.coin_count().unwrap(), 0);
    // Seeded flipped bits anywhere: typed error, nothing left.
    let mut rng = ChaCha8Rng::seed_from_u64(21);
    for _ in 0..24 {
        let byte = rng.random_range(0..bytes.len());
        let b = with_flipped_bit(&bytes, byte, &mut rng);
        let r = store.import_snapshot(&b[..], |t| t.hash == tip);
        assert_snapshot_refused(r, &store, &format!("byte {byte}"));
        assert_eq!(store.coin_count().unwrap(), 0, "byte {byte}");
    }
    drop(store);
    assert!(!marker_in(dir.path()));
    assert_empty_after_reopen(dir.path(), chunk, None);
    // The store is still usable: the good snapshot imports.
    let (mut store, _) = Store::open(dir.path(), opts(chunk)).unwrap();
    store
        .import_snapshot(&bytes[..], |t| t.hash == tip)
        .unwrap();
}

#[test]
fn forged_commitment_root_is_refused_after_the_chunks_committed_and_wiped() {
    let (_, tip, model) = snapshot();
    let root = ToyCommitment::root_of(&model);
    // Re-export the same set as format 2 with its (toy) root.
    let src = tempfile::tempdir().unwrap();
    let (mut store, _) = Store::open(src.path(), opts(IMPORT_CHUNK_COINS_MAX)).unwrap();
    let mut chain = Chain::new(5);
    append_blocks(&mut store, &mut chain, 25);
    let mut good = Vec::new();
    store
        .export_snapshot_with_root(&mut good, Some(root))
        .unwrap();
    // The root field edited and the checksum recomputed: only the root is wrong.
    let mut forged = good[..good.len() - 32].to_vec();
    forged[92] ^= 0x80;
    let sum = blake3_of(&forged);
    forged.extend_from_slice(&sum);
    let chunk = 3;
    let dir = tempfile::tempdir().unwrap();
    let (mut store, _) = Store::open(dir.path(), opts(chunk)).unwrap();
    let mut check = ToyCommitment::default();
    let err = store
        .import_snapshot_checked(&forged[..], |t| t.hash == tip, &mut check)
        .unwrap_err();
    let StoreError::Snapshot(SnapshotError::CommitmentMismatch { file, computed }) = &err else {
        panic!("{err:?}");
    };
    assert_eq!(computed, &hex::encode(root));
    assert_eq!(file, &hex::encode(&forged[92..124]));
    let text = err.to_string();
    assert!(text.contains(file) && text.contains(computed), "{text}");
    // Every coin went through (so chunks were committed), yet nothing is left.
    assert_eq!(check.coins, model.len() as u64);
    assert_eq!(store.tip(), None);
    assert_eq!(store.coin_count().unwrap(), 0);
    assert_eq!(store.snapshot_root().unwrap(), None);
    // A checker that cannot compute a root refuses the import the same way.
    let mut failing = ToyCommitment::failing("out of memory");
    assert!(matches!(
        store.import_snapshot_checked(&good[..], |t| t.hash == tip, &mut failing),
        Err(StoreError::Snapshot(SnapshotError::CommitmentCheck { ref reason })) if reason == "out of memory"
    ));
    assert_eq!(store.coin_count().unwrap(), 0);
    drop(store);
    assert!(!marker_in(dir.path()));
    assert_empty_after_reopen(dir.path(), chunk, None);
    // The genuine file imports, checked, and its root is kept across a reopen.
    let (mut store, _) = Store::open(dir.path(), opts(chunk)).unwrap();
    let info = store
        .import_snapshot_checked(&good[..], |t| t.hash == tip, &mut ToyCommitment::default())
        .unwrap();
    assert_eq!(info.commitment_root, Some(root));
    drop(store);
    let (mut store, _) = Store::open(dir.path(), opts(chunk)).unwrap();
    let (at, kept) = store.snapshot_root().unwrap().unwrap();
    assert_eq!((at.hash, kept), (tip, root));
    assert_eq!(store_coins(&mut store), model);
}

fn blake3_of(b: &[u8]) -> [u8; 32] {
    // The snapshot's trailing checksum: blake3 of everything before it (see FORMAT.md).
    *blake3::hash(b).as_bytes()
}

/// Input that fails with an I/O error after `left` bytes.
struct FailAfter<'a> {
    data: &'a [u8],
    left: usize,
}

impl Read for FailAfter<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Err(io::Error::other("injected read failure"));
        }
        let n = buf.len().min(self.left).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        self.left -= n;
        Ok(n)
    }
}

#[test]
fn input_failure_after_the_first_chunk_leaves_an_empty_store_without_marker() {
    let (bytes, tip, model) = snapshot();
    let chunk = 3;
    // Fail in the middle of the coins: well past the first chunk (3 coins).
    let cut = bytes.len() / 2;
    let dir = tempfile::tempdir().unwrap();
    let (mut store, _) = Store::open(dir.path(), opts(chunk)).unwrap();
    let r = store.import_snapshot(
        FailAfter {
            data: &bytes,
            left: cut,
        },
        |t| t.hash == tip,
    );
    assert!(
        matches!(r, Err(StoreError::Snapshot(SnapshotError::Io(_)))),
        "{:?}",
        r.map(|_| ())
    );
    assert_eq!(store.tip(), None);
    assert_eq!(store.coin_count().unwrap(), 0);
    drop(store);
    assert_empty_after_reopen(dir.path(), chunk, None);
    let (mut store, _) = Store::open(dir.path(), opts(chunk)).unwrap();
    store
        .import_snapshot(&bytes[..], |t| t.hash == tip)
        .unwrap();
    assert_eq!(store_coins(&mut store), model);
}

#[test]
fn crash_at_every_sync_point_of_an_import_never_shows_a_partial_set() {
    let (bytes, tip, model) = snapshot();
    let chunk = 4;
    let mut wiped_on_open = 0;
    let mut n = 1;
    loop {
        let disk = SimDisk::new();
        let (mut store, _) = Store::open_with_io(Arc::new(disk.clone()), opts(chunk)).unwrap();
        disk.crash_at_sync(n);
        let r = store.import_snapshot(&bytes[..], |t| t.hash == tip);
        drop(store);
        let image = disk.crash_image(None);
        let (mut store, report) =
            Store::open_with_io(Arc::new(image.clone()), opts(chunk)).unwrap();
        if store.tip().is_some() {
            // The final transaction became durable (before or at the crash): the whole set.
            assert_eq!(report.wiped_import_coins, None);
            assert_eq!(store_coins(&mut store), model, "sync {n}");
            assert_eq!(store.stats(), &model_stats(&model));
        } else {
            assert!(r.is_err(), "sync {n}");
            assert_eq!(store.coin_count().unwrap(), 0, "sync {n}");
            assert_eq!(store.stats().txouts, 0);
            if let Some(k) = report.wiped_import_coins {
                assert!(k > 0 && k % chunk as u64 == 0, "sync {n}: {k}");
                wiped_on_open += 1;
            }
            drop(store);
            // The marker is gone: a second open finds nothing to wipe.
            let (mut store, report) = Store::open_with_io(Arc::new(image), opts(chunk)).unwrap();
            assert_eq!(report.wiped_import_coins, None);
            assert_eq!(store.coin_count().unwrap(), 0);
            // And the import now succeeds.
            store
                .import_snapshot(&bytes[..], |t| t.hash == tip)
                .unwrap();
            assert_eq!(store_coins(&mut store), model);
        }
        if r.is_ok() {
            break;
        }
        n += 1;
        assert!(n < 1000, "import never completed");
    }
    // Several chunks were durable at some crash point, and open wiped them.
    assert!(wiped_on_open >= 2, "{wiped_on_open}");
}

#[test]
fn core_snapshot_hash_mismatch_wipes_the_committed_chunks() {
    let CoreSnapshot {
        bytes,
        base,
        txoutset_hash: hash,
    } = core_snapshot_200();
    let chunk = 4000; // 15,000 coins: three full chunks are committed before the check fails
    let dir = tempfile::tempdir().unwrap();
    let (mut store, _) = Store::open(dir.path(), opts(chunk)).unwrap();
    let wrong = sha256d::Hash::from_byte_array([7; 32]);
    let r = store.load_core_snapshot(&bytes[..], |h| (*h == base).then_some(200), Some(wrong));
    assert_snapshot_refused(r, &store, "wrong txoutset hash");
    assert_eq!(store.coin_count().unwrap(), 0);
    drop(store);
    assert_empty_after_reopen(dir.path(), chunk, None);
    let (mut store, _) = Store::open(dir.path(), opts(chunk)).unwrap();
    let (h, tip) = store
        .load_core_snapshot(&bytes[..], |h| (*h == base).then_some(200), Some(hash))
        .unwrap();
    assert!(h.coins > chunk as u64 * 2, "{} coins", h.coins);
    assert_eq!(tip.height, 200);
    assert_eq!(store.coin_count().unwrap(), h.coins);
    drop(store);
    assert!(!marker_in(dir.path()));
}
