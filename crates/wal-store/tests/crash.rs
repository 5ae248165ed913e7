//! Simulated-disk crash test: a seeded workload (blocks, group commits, automatic and explicit
//! checkpoints, segment rotation, disconnects) runs on the fault-injecting disk of
//! `wal_store::sim`, which crashes at every sync point in turn (WAL syncs, directory syncs and
//! redb's syncs through its `StorageBackend`). Each crash image loses every unsynced byte, once
//! cleanly and once with a seeded torn tail; reopening must give exactly the reference model's state
//! at some point between the last acknowledged record and the last appended one.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use bitcoin::BlockHash;
use bitcoin::Network;
use common::{Chain, GenBlock, Model, model_stats, store_coins};
use wal_store::sim::SimDisk;
use wal_store::{Store, StoreError, StoreOptions};

type State = (Option<BlockHash>, Model);

fn options() -> StoreOptions {
    StoreOptions::new(Network::Regtest)
        .group_commit(3, 1 << 20)
        .segment_bytes(700)
        .checkpoint_wal_bytes(1_500)
}

/// What the workload got to: states[i] is the model after WAL record i (states[0] = empty).
#[derive(Default)]
struct History {
    states: Vec<State>,
    acked: usize,
}

fn workload(disk: &SimDisk, h: &mut History) -> Result<(), StoreError> {
    h.states = vec![(None, Model::new())];
    h.acked = 0;
    let (mut store, _) = Store::open_with_io(Arc::new(disk.clone()), options())?;
    let mut chain = Chain::new(2024);
    let mut blocks: Vec<GenBlock> = Vec::new();
    for i in 0..18 {
        // The model records the attempted state first: a record can be durable even when the
        // call that wrote it failed later (e.g. in the segment rotation after the sync).
        let b = chain.next_block();
        h.states.push((chain.tip.map(|t| t.1), chain.model.clone()));
        let ack = store.append_block(&b.record())?;
        blocks.push(b);
        assert_eq!(usize::try_from(ack.seq).unwrap(), h.states.len() - 1);
        h.acked = usize::try_from(store.durable_seq()).unwrap();
        if i % 4 == 3 {
            store.commit_pending()?;
            h.acked = usize::try_from(store.durable_seq()).unwrap();
        }
        if i == 9 || i == 14 {
            for _ in 0..2 {
                let b = blocks.pop().unwrap();
                chain.undo_block(&b);
                h.states.push((chain.tip.map(|t| t.1), chain.model.clone()));
                let (_, d) = store.disconnect_tip()?;
                assert_eq!(d.hash, b.hash);
            }
            store.commit_pending()?;
            h.acked = usize::try_from(store.durable_seq()).unwrap();
        }
        if i == 12 {
            store.checkpoint()?;
            h.acked = usize::try_from(store.durable_seq()).unwrap();
        }
    }
    store.commit_pending()?;
    h.acked = usize::try_from(store.durable_seq()).unwrap();
    Ok(())
}

fn recovered_state(image: SimDisk) -> (State, Store) {
    let (mut store, _) = Store::open_with_io(Arc::new(image), options()).expect("reopen");
    let coins = store_coins(&mut store);
    ((store.tip().map(|t| t.hash), coins), store)
}

#[test]
fn crash_at_every_sync_point_recovers_a_durable_prefix() {
    let clean = SimDisk::new();
    let mut h = History::default();
    workload(&clean, &mut h).unwrap();
    let total = clean.sync_points();
    let full = h.states.len() - 1;
    assert_eq!(h.acked, full);
    assert!(total > 0);
    let mut visited = 0u64;
    let mut torn_recoveries = 0u64;
    for k in 1..=total {
        for tear in [None, Some(k * 7919)] {
            let disk = SimDisk::new();
            disk.crash_at_sync(k);
            let mut h = History::default();
            let r = workload(&disk, &mut h);
            // A crash at redb's final sync (when the store is dropped) has no caller to tell.
            assert!(
                r.is_err() || h.acked == full,
                "crash at sync {k} went unreported"
            );
            assert!(disk.crashed());
            let appended = h.states.len() - 1;
            let ((tip, coins), mut store) = recovered_state(disk.crash_image(tear));
            if store.recovery_report().discarded_tail.is_some() {
                torn_recoveries += 1;
            }
            let found =
                (h.acked..=appended).find(|j| h.states[*j].0 == tip && h.states[*j].1 == coins);
            let Some(j) = found else {
                panic!(
                    "sync point {k} tear {tear:?}: recovered state (tip {tip:?}, {} coins) is \
                     not one between acked {} and appended {appended}",
                    coins.len(),
                    h.acked
                );
            };
            assert_eq!(
                store.stats(),
                &model_stats(&h.states[j].1),
                "stats at sync {k}"
            );
            // The recovered store takes writes again.
            let mut chain = Chain::new(k);
            chain.model = coins;
            chain.tip = store.tip().map(|t| (t.height, t.hash));
            let b = chain.next_block();
            let _ = store.append_block(&b.record()).unwrap();
            store.commit_pending().unwrap();
            visited += 1;
        }
    }
    eprintln!(
        "crash test: {total} sync points, {visited} crash images checked, \
         {torn_recoveries} recoveries discarded a torn tail"
    );
    assert!(visited > 0, "visited no sync point");
}
