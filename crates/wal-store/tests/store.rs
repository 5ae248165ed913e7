//! Store behaviour through the public API: group commit and acknowledgement, replay on reopen,
//! checkpoints, reorgs across restarts, undo depth, limits, full disk, newer formats, networks.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use bitcoin::hashes::Hash;
use bitcoin::{Amount, BlockHash, Network, OutPoint, ScriptBuf};
use common::{Chain, append_blocks, model_stats, store_coins};
use utxo_core::{BlockUndo, ChangeSet, Coin, CoinStore, FlushBatch};
use wal_store::sim::SimDisk;
use wal_store::{
    BlockRecord, STORE_FORMAT_VERSION, Store, StoreError, StoreOptions, UNDO_DEPTH_MAX,
    WAL_RECORD_SIZE_MAX,
};

fn opts() -> StoreOptions {
    StoreOptions::new(Network::Regtest)
}

#[test]
fn acknowledged_only_after_group_commit_and_replayed_on_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, report) = Store::open(dir.path(), opts()).unwrap();
    assert_eq!(report.replayed_records, 0);
    let mut chain = Chain::new(1);
    let mut acks = Vec::new();
    for _ in 0..10 {
        let b = chain.next_block();
        acks.push(store.append_block(&b.record()).unwrap());
    }
    assert!(acks.iter().all(|a| !store.is_durable(*a)));
    assert_eq!(store.pending_records(), 10);
    assert_eq!(store.durable_tip(), None);
    store.commit_pending().unwrap();
    assert_eq!(store.durable_tip().unwrap().height, 9);
    assert!(acks.iter().all(|a| store.is_durable(*a)));
    assert_eq!(store.stats(), &model_stats(&chain.model));
    drop(store);
    let (mut store, report) = Store::open(dir.path(), opts()).unwrap();
    assert_eq!(report.replayed_records, 10);
    assert_eq!(report.discarded_tail, None);
    assert_eq!(store.tip().unwrap().height, 9);
    assert_eq!(store.stats(), &model_stats(&chain.model));
    for (op, c) in &chain.model {
        assert_eq!(store.get_coin(op).unwrap().as_ref(), Some(c));
    }
    assert_eq!(store_coins(&mut store), chain.model);
}

#[test]
fn group_commit_syncs_by_itself_at_the_record_threshold() {
    let disk = SimDisk::new();
    let (mut store, _) =
        Store::open_with_io(Arc::new(disk.clone()), opts().group_commit(4, 1 << 30)).unwrap();
    let before = disk.sync_points();
    let mut chain = Chain::new(2);
    let mut acks = Vec::new();
    for _ in 0..8 {
        acks.push(store.append_block(&chain.next_block().record()).unwrap());
    }
    // Two syncs for eight records: one per group of four.
    assert_eq!(disk.sync_points() - before, 2);
    assert!(acks.iter().all(|a| store.is_durable(*a)));
}

#[test]
fn checkpoint_folds_into_redb_and_removes_old_segments() {
    let disk = SimDisk::new();
    let io = Arc::new(disk.clone());
    let (mut store, _) = Store::open_with_io(io.clone(), opts()).unwrap();
    let mut chain = Chain::new(3);
    append_blocks(&mut store, &mut chain, 30);
    let report = store.checkpoint().unwrap();
    assert_eq!(report.applied_seq, 30);
    assert_eq!(
        disk.file_names()
            .iter()
            .filter(|n| wal_store::parse_segment_name(n).is_some())
            .count(),
        1
    );
    drop(store);
    let (mut store, report) = Store::open_with_io(io, opts()).unwrap();
    assert_eq!(report.replayed_records, 0);
    assert_eq!(report.applied_seq, 30);
    assert_eq!(store.stats(), &model_stats(&chain.model));
    assert_eq!(store_coins(&mut store), chain.model);
}

#[test]
fn automatic_checkpoint_and_segment_rotation() {
    let disk = SimDisk::new();
    let io = Arc::new(disk.clone());
    let o = opts()
        .segment_bytes(600)
        .checkpoint_wal_bytes(4000)
        .group_commit(2, 1 << 20);
    let (mut store, _) = Store::open_with_io(io.clone(), o.clone()).unwrap();
    let mut chain = Chain::new(4);
    let mut max_segments = 0;
    for _ in 0..60 {
        let _ = store.append_block(&chain.next_block().record()).unwrap();
        let n = disk
            .file_names()
            .iter()
            .filter(|n| wal_store::parse_segment_name(n).is_some())
            .count();
        max_segments = max_segments.max(n);
    }
    store.commit_pending().unwrap();
    assert!(max_segments > 1, "segments rotated");
    assert!(max_segments < 20, "checkpoints removed old segments");
    drop(store);
    let (mut store, _) = Store::open_with_io(io, o).unwrap();
    assert_eq!(store_coins(&mut store), chain.model);
}

#[test]
fn reorg_after_restart_uses_stored_undo() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, _) = Store::open(dir.path(), opts()).unwrap();
    let mut chain = Chain::new(5);
    let mut blocks = Vec::new();
    let mut models = Vec::new();
    for _ in 0..20 {
        let b = chain.next_block();
        let _ = store.append_block(&b.record()).unwrap();
        blocks.push(b);
        models.push(chain.model.clone());
    }
    store.checkpoint().unwrap();
    // A few more only in the WAL.
    for _ in 0..3 {
        let b = chain.next_block();
        let _ = store.append_block(&b.record()).unwrap();
        blocks.push(b);
        models.push(chain.model.clone());
    }
    store.close().unwrap();
    let (mut store, _) = Store::open(dir.path(), opts()).unwrap();
    let undone = store.rollback_to(14).unwrap();
    assert_eq!(undone.len(), 8);
    for (d, b) in undone.iter().zip(blocks.iter().rev()) {
        assert_eq!((d.height, d.hash), (b.height, b.hash));
        assert_eq!(d.undo, b.undo);
        assert_eq!(d.changes, b.changes);
        assert_eq!(d.commitment_root, Some([b.height.to_le_bytes()[0]; 32]));
    }
    store.commit_pending().unwrap();
    assert_eq!(store.tip().unwrap().hash, blocks[14].hash);
    assert_eq!(store.stats(), &model_stats(&models[14]));
    drop(store);
    let (mut store, _) = Store::open(dir.path(), opts()).unwrap();
    assert_eq!(store.tip().unwrap().hash, blocks[14].hash);
    assert_eq!(store_coins(&mut store), models[14]);
    // A competing block on top of 14 connects.
    let mut fork = Chain::new(99);
    fork.model = models[14].clone();
    fork.tip = Some((14, blocks[14].hash));
    let b = fork.next_block();
    let _ = store.append_block(&b.record()).unwrap();
    store.commit_pending().unwrap();
    assert_eq!(store_coins(&mut store), fork.model);
}

#[test]
fn undo_is_kept_for_the_configured_depth_only() {
    let dir = tempfile::tempdir().unwrap();
    let o = opts().undo_depth(5);
    let (mut store, _) = Store::open(dir.path(), o.clone()).unwrap();
    let mut chain = Chain::new(6);
    append_blocks(&mut store, &mut chain, 20);
    store.checkpoint().unwrap();
    assert!(store.undo_for(15).unwrap().is_some());
    assert!(store.undo_for(14).unwrap().is_none());
    drop(store);
    let (mut store, _) = Store::open(dir.path(), o).unwrap();
    store.rollback_to(14).unwrap();
    assert!(matches!(
        store.disconnect_tip(),
        Err(StoreError::UndoUnavailable { height: 14 })
    ));
    // The limit: clamped at UNDO_DEPTH_MAX, one past is clamped too.
    assert_eq!(opts().undo_depth(UNDO_DEPTH_MAX).undo_depth, UNDO_DEPTH_MAX);
    assert_eq!(
        opts().undo_depth(UNDO_DEPTH_MAX + 1).undo_depth,
        UNDO_DEPTH_MAX
    );
}

#[test]
fn blocks_that_do_not_extend_the_tip_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, _) = Store::open(dir.path(), opts()).unwrap();
    let mut chain = Chain::new(7);
    let b0 = chain.next_block();
    let _ = store.append_block(&b0.record()).unwrap();
    let mut b1 = chain.next_block();
    b1.prev_hash = BlockHash::from_byte_array([9; 32]);
    assert!(matches!(
        store.append_block(&b1.record()),
        Err(StoreError::NotOnTip { height: 1, .. })
    ));
    b1.prev_hash = b0.hash;
    b1.height = 5;
    assert!(matches!(
        store.append_block(&b1.record()),
        Err(StoreError::NotOnTip { height: 5, .. })
    ));
    assert_eq!(store.tip().unwrap().height, 0);
}

fn big_block(total_script_bytes: usize) -> (ChangeSet, BlockUndo) {
    let mut created = Vec::new();
    let mut left = total_script_bytes;
    let mut vout = 0;
    while left > 0 {
        let n = left.min(10_000);
        created.push((
            OutPoint {
                txid: bitcoin::Txid::from_byte_array([1; 32]),
                vout,
            },
            Coin {
                amount: Amount::from_sat(1),
                height: 0,
                is_coinbase: false,
                script_pubkey: ScriptBuf::from_bytes(vec![0x51; n]),
            },
        ));
        left -= n;
        vout += 1;
    }
    (
        ChangeSet {
            created,
            spent: vec![],
        },
        BlockUndo::default(),
    )
}

#[test]
fn record_size_limit_is_enforced_and_leaves_the_store_usable() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, _) = Store::open(dir.path(), opts()).unwrap();
    let limit = usize::try_from(WAL_RECORD_SIZE_MAX).unwrap();
    // Just under the limit (payload overhead is a few bytes per coin): accepted.
    let (changes, undo) = big_block(limit - 300_000);
    fn rec<'a>(changes: &'a ChangeSet, undo: &'a BlockUndo) -> BlockRecord<'a> {
        BlockRecord {
            height: 0,
            hash: BlockHash::from_byte_array([2; 32]),
            prev_hash: BlockHash::all_zeros(),
            changes,
            undo,
            commitment_root: None,
        }
    }
    // Past the limit: a typed error, nothing logged, the store still writable.
    let (big, big_undo) = big_block(limit + 1);
    assert!(matches!(
        store.append_block(&rec(&big, &big_undo)),
        Err(StoreError::RecordTooLarge { .. })
    ));
    assert_eq!(store.tip(), None);
    let _ = store.append_block(&rec(&changes, &undo)).unwrap();
    store.commit_pending().unwrap();
    assert_eq!(store.tip().unwrap().height, 0);
}

#[test]
fn full_disk_poisons_the_store_until_reopened() {
    let disk = SimDisk::new();
    let io = Arc::new(disk.clone());
    let (mut store, _) = Store::open_with_io(io.clone(), opts()).unwrap();
    let mut chain = Chain::new(8);
    append_blocks(&mut store, &mut chain, 5);
    store.commit_pending().unwrap();
    let durable = chain.model.clone();
    disk.fail_writes_after(Some(10)); // ENOSPC after 10 more bytes
    let _ = store.append_block(&chain.next_block().record()).unwrap();
    let err = store.commit_pending().unwrap_err();
    match &err {
        StoreError::Io { source, .. } => {
            assert_eq!(source.kind(), std::io::ErrorKind::StorageFull)
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(matches!(
        store.append_block(&chain.next_block().record()),
        Err(StoreError::Poisoned { .. })
    ));
    assert!(matches!(
        store.checkpoint(),
        Err(StoreError::Poisoned { .. })
    ));
    drop(store);
    disk.fail_writes_after(None);
    let (mut store, report) = Store::open_with_io(io, opts()).unwrap();
    assert!(
        report.discarded_tail.is_some(),
        "the torn write is discarded"
    );
    assert_eq!(store.tip().unwrap().height, 4);
    assert_eq!(store_coins(&mut store), durable);
}

#[test]
fn datadir_of_a_newer_format_version_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    drop(Store::open(dir.path(), opts()).unwrap());
    {
        let db = redb::Database::open(dir.path().join("coins.redb")).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut meta = txn
                .open_table(redb::TableDefinition::<&str, &[u8]>::new("meta"))
                .unwrap();
            meta.insert(
                "format_version",
                &(STORE_FORMAT_VERSION + 1).to_le_bytes()[..],
            )
            .unwrap();
        }
        txn.commit().unwrap();
    }
    assert!(matches!(
        Store::open(dir.path(), opts()),
        Err(StoreError::NewerFormat { found, .. }) if found == STORE_FORMAT_VERSION + 1
    ));
}

#[test]
fn wal_segment_of_a_newer_format_version_is_rejected() {
    let disk = SimDisk::new();
    let io = Arc::new(disk.clone());
    let (mut store, _) = Store::open_with_io(io.clone(), opts()).unwrap();
    let mut chain = Chain::new(9);
    let _ = store.append_block(&chain.next_block().record()).unwrap();
    store.commit_pending().unwrap();
    drop(store);
    let name = disk
        .file_names()
        .into_iter()
        .find(|n| n.starts_with("wal-"))
        .unwrap();
    // Rewrite the header's version (byte 8) to 2 with a valid header checksum.
    let mut bytes = wal_store::fs::StoreIo::read(&disk, &name).unwrap();
    bytes[8] = 2;
    let sum = blake3::hash(&bytes[0..20]);
    bytes[20..52].copy_from_slice(sum.as_bytes());
    let mut f = wal_store::fs::StoreIo::create(&disk, &name).unwrap();
    f.append(&bytes).unwrap();
    f.sync().unwrap();
    assert!(matches!(
        Store::open_with_io(io, opts()),
        Err(StoreError::NewerFormat { found: 2, .. })
    ));
}

#[test]
fn datadir_of_another_network_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    drop(Store::open(dir.path(), opts()).unwrap());
    assert!(matches!(
        Store::open(dir.path(), StoreOptions::new(Network::Signet)),
        Err(StoreError::NetworkMismatch { .. })
    ));
}

#[test]
fn coin_store_batches_are_durable_and_readable() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, _) = Store::open(dir.path(), opts()).unwrap();
    let mut chain = Chain::new(10);
    let b = chain.next_block();
    let batch = FlushBatch {
        upserts: b.changes.created.clone(),
        deletes: vec![],
        best_block: Some((b.hash, 0)),
    };
    CoinStore::write(&mut store, batch).unwrap();
    drop(store);
    let (mut store, _) = Store::open(dir.path(), opts()).unwrap();
    for (op, c) in &b.changes.created {
        assert_eq!(CoinStore::get(&store, op).unwrap().as_ref(), Some(c));
    }
    assert_eq!(store.tip().unwrap().hash, b.hash);
    let (op, _) = b.changes.created[0].clone();
    CoinStore::write(
        &mut store,
        FlushBatch {
            upserts: vec![],
            deletes: vec![op],
            best_block: None,
        },
    )
    .unwrap();
    assert_eq!(store.get_coin(&op).unwrap(), None);
    store.checkpoint().unwrap();
    assert_eq!(store.get_coin(&op).unwrap(), None);
}

#[test]
fn muhash_tracking_can_be_turned_off_and_on_again() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, _) = Store::open(dir.path(), opts().track_muhash(false)).unwrap();
    let mut chain = Chain::new(12);
    append_blocks(&mut store, &mut chain, 12);
    store.checkpoint().unwrap();
    append_blocks(&mut store, &mut chain, 3);
    assert!(store.stats().muhash.is_none());
    let expected = model_stats(&chain.model);
    assert_eq!(store.stats().txouts, expected.txouts);
    store.close().unwrap();
    // On again: recomputed from redb's coins on open, then the WAL's 3 records replayed on top.
    let (store, report) = Store::open(dir.path(), opts()).unwrap();
    assert_eq!(report.replayed_records, 3);
    assert_eq!(store.stats(), &expected);
}
