//! [`CoinCache`]: a bounded coin cache over a backing [`CoinStore`], like Bitcoin Core's `dbcache`.
//!
//! Entries carry Core's two flags. *Dirty*: differs from the store. *Fresh*: the store does not have
//! it. A fresh coin that is spent is simply forgotten, so a coin created and spent between flushes
//! never reaches the store. A flush writes dirty entries only, then clean entries are evicted while
//! the cache is over its memory budget.
//!
//! Flush protocol (model-checked with loom): the entry map is behind one mutex that is never held
//! across store I/O. A flush (1) snapshots the dirty entries with their versions, (2) writes them to
//! the store without the lock, (3) re-locks and marks clean, or forgets, only entries whose version
//! is unchanged; entries changed meanwhile stay dirty for the next flush. A reader that misses the
//! cache reads the store, and caches what it read only if no flush completed in between (the flush
//! epoch is unchanged) and no writer has touched the entry, so a stale store read never shadows a
//! newer write.

use std::collections::HashMap;

use bitcoin::{Block, BlockHash, OutPoint};

use crate::changes::ChangeSet;
use crate::coin::Coin;
use crate::connect::{self, Failure};
use crate::error::{ApplyError, DisconnectError};
use crate::params::ChainParams;
use crate::set::Connected;
use crate::sync::{Mutex, lock};
use crate::undo::BlockUndo;

/// The backing store under a [`CoinCache`] (redb in `wal-store`, or [`MemoryStore`]).
pub trait CoinStore {
    /// The store's error type.
    type Error: std::error::Error + Send + Sync + 'static;

    /// The coin at `outpoint`, if the store has it.
    ///
    /// # Errors
    /// The store's own failure (I/O, corruption).
    fn get(&self, outpoint: &OutPoint) -> Result<Option<Coin>, Self::Error>;

    /// Writes one flush atomically: all of it or none.
    ///
    /// # Errors
    /// The store's own failure; the cache then keeps every entry dirty.
    fn write(&mut self, batch: FlushBatch) -> Result<(), Self::Error>;
}

/// One flush: coins to write, outpoints to delete, and the best block the store then reflects.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FlushBatch {
    /// Coins to insert or overwrite.
    pub upserts: Vec<(OutPoint, Coin)>,
    /// Outpoints to delete.
    pub deletes: Vec<OutPoint>,
    /// The best block after this batch, if known.
    pub best_block: Option<(BlockHash, u32)>,
}

/// A [`CoinStore`] in memory (tests, and a reference model for real stores).
#[derive(Clone, Debug, Default)]
pub struct MemoryStore {
    coins: HashMap<OutPoint, Coin>,
    best_block: Option<(BlockHash, u32)>,
    writes: u64,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    /// Number of coins stored.
    pub fn len(&self) -> usize {
        self.coins.len()
    }

    /// Whether no coin is stored.
    pub fn is_empty(&self) -> bool {
        self.coins.is_empty()
    }

    /// The best block of the last flush.
    pub fn best_block(&self) -> Option<(BlockHash, u32)> {
        self.best_block
    }

    /// How many coin upserts and deletes have been written in total.
    pub fn writes(&self) -> u64 {
        self.writes
    }
}

impl CoinStore for MemoryStore {
    type Error = std::convert::Infallible;

    fn get(&self, outpoint: &OutPoint) -> Result<Option<Coin>, Self::Error> {
        Ok(self.coins.get(outpoint).cloned())
    }

    fn write(&mut self, batch: FlushBatch) -> Result<(), Self::Error> {
        self.writes += (batch.upserts.len() + batch.deletes.len()) as u64;
        for op in batch.deletes {
            self.coins.remove(&op);
        }
        self.coins.extend(batch.upserts);
        if batch.best_block.is_some() {
            self.best_block = batch.best_block;
        }
        Ok(())
    }
}

/// Why a cache operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CacheError<E: std::error::Error + 'static> {
    /// The block breaks a rule; nothing changed.
    #[error(transparent)]
    Apply(#[from] ApplyError),
    /// The block cannot be disconnected; nothing changed.
    #[error(transparent)]
    Disconnect(#[from] DisconnectError),
    /// The backing store failed; the cache is unchanged (a failed flush keeps entries dirty).
    #[error("coin store failed: {0}")]
    Store(#[source] E),
}

#[derive(Clone, Debug)]
struct Entry {
    coin: Option<Coin>,
    dirty: bool,
    fresh: bool,
    /// Bumped on every write, so a flush can tell whether an entry changed while it wrote.
    version: u64,
}

#[derive(Debug, Default)]
struct Inner {
    entries: HashMap<OutPoint, Entry>,
    usage: usize,
    /// Counts completed flushes (see the module docs).
    epoch: u64,
    next_version: u64,
    best_block: Option<(BlockHash, u32)>,
}

/// Approximate heap and table bytes of one cached entry.
fn entry_usage(coin: Option<&Coin>) -> usize {
    std::mem::size_of::<(OutPoint, Entry)>() + 16 + coin.map_or(0, |c| c.script_pubkey.len())
}

impl Inner {
    fn put(&mut self, outpoint: OutPoint, coin: Option<Coin>, dirty: bool, fresh: bool) {
        self.next_version += 1;
        self.usage += entry_usage(coin.as_ref());
        let old = self.entries.insert(
            outpoint,
            Entry {
                coin,
                dirty,
                fresh,
                version: self.next_version,
            },
        );
        if let Some(old) = old {
            self.usage -= entry_usage(old.coin.as_ref());
        }
    }

    fn forget(&mut self, outpoint: &OutPoint) {
        if let Some(old) = self.entries.remove(outpoint) {
            self.usage -= entry_usage(old.coin.as_ref());
        }
    }

    /// Writes a block's net changes with Core's flag rules.
    fn commit(&mut self, changes: &ChangeSet) {
        for (op, _) in &changes.spent {
            match self.entries.get(op) {
                Some(e) if e.fresh => self.forget(op),
                _ => self.put(*op, None, true, false),
            }
        }
        for (op, coin) in &changes.created {
            // Fresh unless the store may still hold a spent-but-unflushed older coin here.
            let fresh = match self.entries.get(op) {
                Some(e) => e.coin.is_none() && !e.dirty,
                None => true,
            };
            self.put(*op, Some(coin.clone()), true, fresh);
        }
    }
}

/// A bounded cache of coins over a [`CoinStore`].
///
/// ```
/// use utxo_core::{CoinCache, MemoryStore};
///
/// let cache = CoinCache::new(MemoryStore::new(), 64 << 20, utxo_core::ChainParams::default());
/// let genesis = bitcoin::constants::genesis_block(bitcoin::Network::Bitcoin);
/// cache.apply_block(&genesis, 0).unwrap();
/// cache.flush().unwrap();
/// assert_eq!(cache.with_store(|s| s.best_block()), Some((genesis.block_hash(), 0)));
/// ```
pub struct CoinCache<S: CoinStore> {
    inner: Mutex<Inner>,
    store: Mutex<S>,
    /// Serialises writers (block application, flush).
    writer: Mutex<()>,
    budget: usize,
    params: ChainParams,
}

impl<S: CoinStore> std::fmt::Debug for CoinCache<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inner = lock(&self.inner);
        f.debug_struct("CoinCache")
            .field("entries", &inner.entries.len())
            .field("usage", &inner.usage)
            .field("budget", &self.budget)
            .finish()
    }
}

impl<S: CoinStore> CoinCache<S> {
    /// A cache of at most about `budget` bytes over `store`.
    pub fn new(store: S, budget: usize, params: ChainParams) -> CoinCache<S> {
        CoinCache {
            inner: Mutex::new(Inner::default()),
            store: Mutex::new(store),
            writer: Mutex::new(()),
            budget,
            params,
        }
    }

    /// Runs `f` with the backing store (e.g. to inspect it).
    pub fn with_store<R>(&self, f: impl FnOnce(&S) -> R) -> R {
        f(&lock(&self.store))
    }

    /// Gives the store back (unflushed changes are dropped: flush first).
    pub fn into_store(self) -> S {
        #[cfg(not(loom))]
        let store = self
            .store
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        #[cfg(loom)]
        let store = self.store.into_inner().unwrap_or_else(|e| e.into_inner());
        store
    }

    /// Approximate bytes the cache holds.
    pub fn usage(&self) -> usize {
        lock(&self.inner).usage
    }

    /// Number of cached entries (including spent-but-unflushed ones).
    pub fn cached_entries(&self) -> usize {
        lock(&self.inner).entries.len()
    }

    /// Number of entries that differ from the store.
    pub fn dirty_entries(&self) -> usize {
        lock(&self.inner)
            .entries
            .values()
            .filter(|e| e.dirty)
            .count()
    }

    /// The best block applied through this cache.
    pub fn best_block(&self) -> Option<(BlockHash, u32)> {
        lock(&self.inner).best_block
    }

    /// Sets the best block (e.g. the store's, when opening).
    pub fn set_best_block(&self, best: Option<(BlockHash, u32)>) {
        lock(&self.inner).best_block = best;
    }

    /// The coin at `outpoint`: from the cache, else from the store (then cached clean).
    ///
    /// # Errors
    /// [`CacheError::Store`] when the store fails.
    pub fn get(&self, outpoint: &OutPoint) -> Result<Option<Coin>, CacheError<S::Error>> {
        let epoch = {
            let inner = lock(&self.inner);
            if let Some(e) = inner.entries.get(outpoint) {
                return Ok(e.coin.clone());
            }
            inner.epoch
        };
        let coin = lock(&self.store).get(outpoint).map_err(CacheError::Store)?;
        let mut inner = lock(&self.inner);
        if let Some(e) = inner.entries.get(outpoint) {
            // A writer got there first: its value is newer than our store read.
            return Ok(e.coin.clone());
        }
        if inner.epoch == epoch && coin.is_some() {
            inner.put(*outpoint, coin.clone(), false, false);
        }
        Ok(coin)
    }

    /// Connects `block` at `height` with every bookkeeping rule (see [`crate::UtxoSet::apply_block`]),
    /// then flushes and evicts if the cache is over budget.
    ///
    /// # Errors
    /// A rule violation or a store failure; the cache's contents are then unchanged.
    pub fn apply_block(
        &self,
        block: &Block,
        height: u32,
    ) -> Result<Connected, CacheError<S::Error>> {
        let _writer = lock(&self.writer);
        let best = self.best_block();
        if let Some((tip, tip_height)) = best
            && (block.header.prev_blockhash != tip || Some(height) != tip_height.checked_add(1))
        {
            return Err(ApplyError::DoesNotExtendTip {
                block: block.block_hash(),
                height,
                tip,
                tip_height,
            }
            .into());
        }
        let (undo, changes) = if height == 0 {
            (BlockUndo::default(), ChangeSet::default())
        } else {
            let (mut diff, pending) = connect::connect(
                block,
                &connect::txids(block),
                height,
                &self.params,
                false,
                // The cache does not track its chain's BIP34 block: BIP30 is always checked.
                true,
                connect::DiffBuffers::default(),
                |op| self.get(op),
            )
            .map_err(|f| match f {
                Failure::Rule(e) => CacheError::Apply(e),
                Failure::Lookup(e) => e,
            })?;
            let mut drawn = diff.take_changes();
            let undo = pending.finish(block, &diff, &mut drawn, false);
            (undo, drawn.into_changes())
        };
        {
            let mut inner = lock(&self.inner);
            inner.commit(&changes);
            inner.best_block = Some((block.block_hash(), height));
        }
        self.trim_locked()?;
        Ok(Connected { undo, changes })
    }

    /// Disconnects the tip `block` at `height` with its undo data.
    ///
    /// # Errors
    /// [`CacheError::Disconnect`] when the block is not the tip or the undo does not match, or a
    /// store failure; nothing changes then.
    pub fn disconnect_block(
        &self,
        block: &Block,
        height: u32,
        undo: &BlockUndo,
    ) -> Result<ChangeSet, CacheError<S::Error>> {
        let _writer = lock(&self.writer);
        let hash = block.block_hash();
        if let Some((tip, tip_height)) = self.best_block()
            && (tip != hash || tip_height != height)
        {
            return Err(DisconnectError::NotTip { block: hash, tip }.into());
        }
        let changes = if height == 0 {
            ChangeSet::default()
        } else {
            connect::disconnect(
                block,
                None,
                height,
                undo,
                connect::DiffBuffers::default(),
                |op| self.get(op),
            )
            .map_err(|f| match f {
                Failure::Rule(e) => CacheError::Disconnect(e),
                Failure::Lookup(e) => e,
            })?
            .into_changes()
        };
        let mut inner = lock(&self.inner);
        inner.commit(&changes);
        inner.best_block = height
            .checked_sub(1)
            .map(|h| (block.header.prev_blockhash, h));
        Ok(changes)
    }

    /// Writes every dirty entry to the store in one batch; clean entries stay cached.
    ///
    /// # Errors
    /// [`CacheError::Store`]; every entry then stays dirty and nothing is lost.
    pub fn flush(&self) -> Result<(), CacheError<S::Error>> {
        let _writer = lock(&self.writer);
        self.flush_locked()
    }

    fn flush_locked(&self) -> Result<(), CacheError<S::Error>> {
        // (1) Snapshot the dirty entries and their versions.
        let (batch, versions) = {
            let inner = lock(&self.inner);
            let mut batch = FlushBatch {
                best_block: inner.best_block,
                ..FlushBatch::default()
            };
            let mut versions = Vec::new();
            for (op, e) in inner.entries.iter().filter(|(_, e)| e.dirty) {
                match &e.coin {
                    Some(coin) => batch.upserts.push((*op, coin.clone())),
                    None => batch.deletes.push(*op),
                }
                versions.push((*op, e.version));
            }
            (batch, versions)
        };
        // (2) Write without holding the entry lock.
        lock(&self.store).write(batch).map_err(CacheError::Store)?;
        // (3) Mark clean what did not change meanwhile; forget flushed spends.
        let mut inner = lock(&self.inner);
        for (op, version) in versions {
            let Some(e) = inner.entries.get_mut(&op) else {
                continue;
            };
            if e.version != version {
                continue;
            }
            if e.coin.is_none() {
                inner.forget(&op);
            } else {
                e.dirty = false;
                e.fresh = false;
            }
        }
        inner.epoch += 1;
        Ok(())
    }

    /// Flushes and then evicts clean entries while over budget (down to half of it).
    fn trim_locked(&self) -> Result<(), CacheError<S::Error>> {
        if self.usage() <= self.budget {
            return Ok(());
        }
        self.flush_locked()?;
        let mut inner = lock(&self.inner);
        let target = self.budget / 2;
        let clean: Vec<OutPoint> = inner
            .entries
            .iter()
            .filter(|(_, e)| !e.dirty)
            .map(|(op, _)| *op)
            .collect();
        for op in clean {
            if inner.usage <= target {
                break;
            }
            inner.forget(&op);
        }
        inner.epoch += 1;
        Ok(())
    }
}

/// Loom models of the flush protocol (`cargo xtask loom`).
#[cfg(all(test, loom))]
mod loom_models {
    use super::*;
    use bitcoin::{Amount, ScriptBuf};
    use loom::sync::Arc;

    fn coin() -> Coin {
        Coin {
            amount: Amount::from_sat(7),
            height: 1,
            is_coinbase: false,
            script_pubkey: ScriptBuf::new(),
        }
    }

    /// A reader that misses the cache while a writer spends the coin and flushes never leaves a stale
    /// store read cached: afterwards the coin is gone from cache and store alike.
    #[test]
    fn loom_stale_store_read_never_shadows_a_flushed_spend() {
        loom::model(|| {
            let x = OutPoint::null();
            let mut store = MemoryStore::new();
            store
                .write(FlushBatch {
                    upserts: vec![(x, coin())],
                    ..FlushBatch::default()
                })
                .unwrap_or_else(|never| match never {});
            let cache = Arc::new(CoinCache::new(store, usize::MAX, ChainParams::default()));
            let writer = {
                let cache = Arc::clone(&cache);
                loom::thread::spawn(move || {
                    let _w = lock(&cache.writer);
                    let changes = ChangeSet {
                        created: vec![],
                        spent: vec![(x, coin())],
                    };
                    lock(&cache.inner).commit(&changes);
                    cache.flush_locked().expect("memory store");
                })
            };
            let _ = cache.get(&x).expect("memory store");
            writer.join().expect("writer");
            assert_eq!(cache.get(&x).expect("memory store"), None);
            assert_eq!(cache.with_store(|s| s.len()), 0);
        });
    }

    /// Readers running during a flush (cache hits on dirty entries, misses that read the store)
    /// always see the current value, and the flush leaves cache and store in agreement.
    #[test]
    fn loom_readers_during_a_flush_see_current_values() {
        loom::model(|| {
            let x = OutPoint::null();
            let y = OutPoint { vout: 1, ..x };
            let mut store = MemoryStore::new();
            store
                .write(FlushBatch {
                    upserts: vec![(y, coin())],
                    ..FlushBatch::default()
                })
                .unwrap_or_else(|never| match never {});
            let cache = Arc::new(CoinCache::new(store, usize::MAX, ChainParams::default()));
            lock(&cache.inner).commit(&ChangeSet {
                created: vec![(x, coin())],
                spent: vec![],
            });
            let flusher = {
                let cache = Arc::clone(&cache);
                loom::thread::spawn(move || cache.flush().expect("memory store"))
            };
            assert_eq!(cache.get(&x).expect("memory store"), Some(coin()));
            assert_eq!(cache.get(&y).expect("memory store"), Some(coin()));
            flusher.join().expect("flusher");
            assert_eq!(cache.dirty_entries(), 0);
            assert_eq!(cache.with_store(|s| s.len()), 2);
        });
    }
}
