//! The bounded coin cache over a store: Core's fresh/dirty rules, flushing, eviction under a memory
//! budget, and store failures, checked against the in-memory set on Core's regtest chain.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_possible_truncation
)]

mod common;

use std::collections::HashMap;

use bitcoin::{Network, OutPoint};
use common::{block, coinbase, coinbase_chain, regtest_blocks, spend};
use utxo_core::{
    CacheError, ChainParams, Coin, CoinCache, CoinStore, FlushBatch, MemoryStore, SetOptions,
    UtxoSet,
};

fn regtest() -> ChainParams {
    ChainParams::for_network(Network::Regtest)
}

#[test]
fn coin_created_and_spent_between_flushes_never_reaches_the_store() {
    let mut blocks = coinbase_chain(101);
    let cache = CoinCache::new(MemoryStore::new(), usize::MAX, regtest());
    for (h, b) in blocks.iter().enumerate() {
        cache.apply_block(b, h as u32).unwrap();
    }
    cache.flush().unwrap();
    let writes_after_first_flush = cache.with_store(MemoryStore::writes);
    assert_eq!(cache.with_store(MemoryStore::len), 101);

    // Block 102 spends coinbase 1 into a new coin; block 103 spends that new coin.
    let cb1 = OutPoint {
        txid: blocks[1].txdata[0].compute_txid(),
        vout: 0,
    };
    let a = spend(&[cb1], &[49 * 100_000_000], 1);
    let a_out = OutPoint {
        txid: a.compute_txid(),
        vout: 0,
    };
    let b102 = block(
        blocks[101].block_hash(),
        vec![coinbase(102, 50 * 100_000_000), a],
    );
    cache.apply_block(&b102, 102).unwrap();
    blocks.push(b102);
    let b = spend(&[a_out], &[48 * 100_000_000], 2);
    let b_out = OutPoint {
        txid: b.compute_txid(),
        vout: 0,
    };
    let b103 = block(
        blocks[102].block_hash(),
        vec![coinbase(103, 50 * 100_000_000), b],
    );
    cache.apply_block(&b103, 103).unwrap();

    cache.flush().unwrap();
    // Written: delete cb1, two coinbases, b's output. Never a_out.
    assert_eq!(
        cache.with_store(MemoryStore::writes) - writes_after_first_flush,
        4
    );
    assert_eq!(cache.with_store(|s| s.get(&a_out).unwrap()), None);
    assert!(cache.with_store(|s| s.get(&b_out).unwrap()).is_some());
    assert_eq!(cache.dirty_entries(), 0);
    // A flush with nothing dirty writes nothing.
    cache.flush().unwrap();
    assert_eq!(
        cache.with_store(MemoryStore::writes) - writes_after_first_flush,
        4
    );
}

#[test]
fn a_tiny_budget_evicts_yet_agrees_with_the_in_memory_set_on_core_regtest() {
    let blocks = regtest_blocks();
    let set = UtxoSet::with_options(SetOptions {
        params: regtest(),
        ..SetOptions::default()
    });
    let budget = 64 * 1024;
    let cache = CoinCache::new(MemoryStore::new(), budget, regtest());
    let mut peak_entries = 0;
    let mut undos = Vec::new();
    for (h, b) in blocks.iter().enumerate() {
        let from_set = set.connect_block(b, h as u32).unwrap();
        let from_cache = cache.apply_block(b, h as u32).unwrap();
        assert_eq!(from_set, from_cache, "same undo and changes at {h}");
        undos.push(from_cache.undo);
        peak_entries = peak_entries.max(cache.cached_entries());
        assert!(cache.usage() <= budget * 2, "usage stays bounded");
    }
    assert!(cache.cached_entries() < set.len(), "the cache evicted");
    cache.flush().unwrap();
    let store: HashMap<OutPoint, Coin> = set
        .sorted_coins()
        .into_iter()
        .filter(|(op, coin)| cache.with_store(|s| s.get(op).unwrap()).as_ref() != Some(coin))
        .collect();
    assert!(
        store.is_empty(),
        "store equals the set after a flush; differs at {store:?}"
    );
    assert_eq!(cache.with_store(MemoryStore::len), set.len());

    // Reorg through the cache: disconnect the last 20 blocks and compare again.
    for h in (181..=200usize).rev() {
        set.disconnect_block(&blocks[h], h as u32, &undos[h])
            .unwrap();
        cache
            .disconnect_block(&blocks[h], h as u32, &undos[h])
            .unwrap();
    }
    cache.flush().unwrap();
    assert_eq!(cache.with_store(MemoryStore::len), set.len());
    for (op, coin) in set.sorted_coins() {
        assert_eq!(cache.get(&op).unwrap(), Some(coin));
    }
}

/// A store whose writes fail while its shared flag is set.
#[derive(Default)]
struct FlakyStore {
    inner: MemoryStore,
    fail: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

#[derive(Debug, thiserror::Error)]
#[error("injected write failure")]
struct Injected;

impl CoinStore for FlakyStore {
    type Error = Injected;
    fn get(&self, op: &OutPoint) -> Result<Option<Coin>, Injected> {
        Ok(self.inner.get(op).unwrap_or_else(|never| match never {}))
    }
    fn write(&mut self, batch: FlushBatch) -> Result<(), Injected> {
        if self.fail.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(Injected);
        }
        self.inner
            .write(batch)
            .unwrap_or_else(|never| match never {});
        Ok(())
    }
}

#[test]
fn a_failed_flush_keeps_everything_dirty_and_the_next_one_writes_it() {
    let blocks = coinbase_chain(10);
    let store = FlakyStore::default();
    let fail = store.fail.clone();
    let cache = CoinCache::new(store, usize::MAX, regtest());
    for (h, b) in blocks.iter().enumerate() {
        cache.apply_block(b, h as u32).unwrap();
    }
    assert_eq!(cache.dirty_entries(), 10);
    fail.store(true, std::sync::atomic::Ordering::SeqCst);
    assert!(matches!(cache.flush(), Err(CacheError::Store(Injected))));
    assert_eq!(cache.dirty_entries(), 10);
    assert_eq!(cache.with_store(|s| s.inner.len()), 0);
    fail.store(false, std::sync::atomic::Ordering::SeqCst);
    cache.flush().unwrap();
    assert_eq!(cache.dirty_entries(), 0);
    assert_eq!(cache.with_store(|s| s.inner.len()), 10);
}
