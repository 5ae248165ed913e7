//! [`UtxoSet`]: the concurrent, sharded in-memory UTXO set.
//!
//! Layout: `SHARDS_DEFAULT` shards, each behind its own `RwLock`, each holding per-transaction
//! records (the txid and height once, then every unspent output in Core's compressed form) in a
//! chunked byte arena, found through a hash table of 4-byte handles (see `shard.rs` and `arena.rs`).
//! Keys hash with a per-process seeded mix of 8 txid bytes and the output group (vout / 64), so all
//! outputs of a transaction land in one shard and one record; the seed stops ground txids from
//! colliding. Measured at 10M coins of the synthetic mainnet-like mix: see
//! `benches/benches/utxo_memory.rs`.
//!
//! Writers (block application) are serialised by one mutex; they compute a block's whole diff with
//! read locks only, then commit it shard by shard, **all inserts before any delete**, holding each
//! shard's write lock only for that shard's changes. So readers are never blocked for a whole block,
//! and a reader that finds an old coin gone will find the coins created alongside its removal.

use std::collections::HashMap;
use std::convert::Infallible;
use std::hash::{BuildHasher, Hash, Hasher};

use bitcoin::hashes::Hash as _;
use bitcoin::{Block, BlockHash, OutPoint, Txid};

use crate::changes::ChangeSet;
use crate::coin::{AsParts, Coin, CoinParts};
use crate::connect::{self, BuildOutPointHasher, DiffBuffers, Failure};
use crate::error::{ApplyError, DisconnectError};
use crate::params::ChainParams;
use crate::prepared::PreparedBlock;
use crate::shard::{Key, Shard, fold_mul, key_hash};
use crate::stats::UtxoStats;
use crate::sync::{Mutex, RwLock, lock, read, write};
use crate::undo::BlockUndo;

/// Default number of shards (a power of two).
pub const SHARDS_DEFAULT: usize = 64;
/// Most shards a set may be built with.
pub const SHARDS_MAX: usize = 4096;
/// Most threads a set may use for one block.
pub const THREADS_MAX: usize = 64;
/// How many lookups ahead a block's lookup warms a spent coin's index slot.
const WARM_INDEX_AHEAD: usize = 16;
/// How many lookups ahead it warms the coin's record (its index slot is cached by then).
const WARM_RECORD_AHEAD: usize = 8;

/// Smallest block (in transactions) worth spreading over threads.
pub const PARALLEL_MIN_TXS: usize = 256;

impl Key {
    pub(crate) fn of(outpoint: &OutPoint) -> Key {
        Key {
            txid: outpoint.txid.to_byte_array(),
            vout: outpoint.vout,
        }
    }

    pub(crate) fn outpoint(&self) -> OutPoint {
        OutPoint {
            txid: Txid::from_byte_array(self.txid),
            vout: self.vout,
        }
    }
}

impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        let mut prefix = [0u8; 8];
        prefix.copy_from_slice(&self.txid[..8]);
        state.write_u64(u64::from_le_bytes(prefix) ^ u64::from(self.vout).rotate_left(29));
    }
}

/// Builds seeded [`KeyHasher`]s.
#[derive(Clone, Debug)]
pub(crate) struct SeededState {
    seed: u64,
}

impl SeededState {
    /// A seed drawn from the process's random hash keys (std's `RandomState`).
    fn random() -> SeededState {
        let seed = std::collections::hash_map::RandomState::new().hash_one(0x006c_3262_7463_u64);
        SeededState { seed }
    }
}

impl BuildHasher for SeededState {
    type Hasher = KeyHasher;
    fn build_hasher(&self) -> KeyHasher {
        KeyHasher { state: self.seed }
    }
}

/// A hasher for [`Key`]s and outpoints: one folded multiply per word, keyed by the seed.
pub(crate) struct KeyHasher {
    state: u64,
}

impl KeyHasher {
    /// A hasher keyed with this process's seed (drawn once).
    pub(crate) fn seeded() -> KeyHasher {
        static SEED: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
        let seed = *SEED.get_or_init(|| SeededState::random().seed);
        KeyHasher { state: seed }
    }
}

impl Hasher for KeyHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }

    fn write_u64(&mut self, x: u64) {
        self.state = fold_mul(self.state ^ x, 0x5851_f42d_4c95_7f2d);
    }

    fn finish(&self) -> u64 {
        fold_mul(self.state, 0x9e37_79b9_7f4a_7c15)
    }
}

/// How a [`UtxoSet`] is built.
#[derive(Clone, Debug)]
pub struct SetOptions {
    /// Number of shards; rounded up to a power of two, at most [`SHARDS_MAX`].
    pub shards: usize,
    /// Whether the set keeps the MuHash3072 accumulator itself. Turn it off to run MuHash on a
    /// pipeline stage of your own (feed [`UtxoStats::apply`] with each block's [`ChangeSet`]).
    pub track_muhash: bool,
    /// The consensus parameters (subsidy schedule, BIP30 exceptions).
    pub params: ChainParams,
    /// Threads a block's application may use (1 = the calling thread only). With more, blocks of at
    /// least [`PARALLEL_MIN_TXS`] transactions compute txids, prefetch spent coins and commit shards
    /// on scoped threads; the rules still run in one deterministic pass.
    ///
    /// Measured on this layout (per-transaction records, `cargo bench -p benches --bench utxo`,
    /// 1M pre-loaded coins, 2026-11-25, 2-core machine with another agent's work on it, load
    /// 1.1-1.8; 1 thread on its CPU clock, 2 threads on the wall clock), a second thread does **not**
    /// reliably pay for the apply itself: 2-in/2-out 0.58-0.67× of one thread (418k → 282k and
    /// 421k → 242k tx/s), mainnet mix 0.77-1.09× (303k → 329k, 246k → 191k tx/s), because the
    /// spawns, the prefetch map and the shard hand-off cost about what the txids and lookups they
    /// spread save, and the one-thread path looks its coins up in one tight pass instead (measured
    /// then with a warm-up pass; since 2026-12-02 the one-thread path is faster still). On
    /// 2026-12-02 (third session) 2 threads gave 1.28x on 2-in/2-out (664k against 519k tx/s,
    /// both hashing txids) and 1.02x on the mainnet mix, but one thread with txids computed
    /// beforehand (`apply_prepared`, as `l2btc` does on its reader thread) ran 786k. Hence the
    /// default of 1. The second core pays elsewhere: as a MuHash pipeline stage
    /// (`track_muhash: false`) and for concurrent readers.
    pub threads: usize,
}

impl Default for SetOptions {
    fn default() -> Self {
        SetOptions {
            shards: SHARDS_DEFAULT,
            track_muhash: true,
            params: ChainParams::default(),
            threads: 1,
        }
    }
}

/// What connecting a block produced: its undo data and its net changes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Connected {
    /// Undo data to disconnect the block again.
    pub undo: BlockUndo,
    /// The block's net changes (for statistics, WAL records, Merkle updates).
    pub changes: ChangeSet,
}

/// State that changes once per block, under one lock so readers see it consistently.
struct Summary {
    stats: UtxoStats,
    best: Option<(BlockHash, u32)>,
    /// The hash of the block at BIP34's height on this set's chain, if known (see
    /// [`UtxoSet::bip34_block`]).
    bip34_block: Option<BlockHash>,
}

/// The concurrent, sharded UTXO set.
///
/// ```
/// use utxo_core::UtxoSet;
///
/// let set = UtxoSet::new();
/// let genesis = bitcoin::constants::genesis_block(bitcoin::Network::Regtest);
/// set.apply_block(&genesis, 0).unwrap();
/// // The genesis coinbase never enters the set.
/// assert_eq!(set.len(), 0);
/// assert_eq!(set.best_block(), Some((genesis.block_hash(), 0)));
/// ```
pub struct UtxoSet {
    shards: Box<[RwLock<Shard>]>,
    state: SeededState,
    /// Serialises writers; holds the diff allocations blocks reuse.
    writer: Mutex<WriterBuffers>,
    summary: Mutex<Summary>,
    params: ChainParams,
    threads: usize,
}

impl Default for UtxoSet {
    fn default() -> Self {
        UtxoSet::new()
    }
}

impl std::fmt::Debug for UtxoSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UtxoSet")
            .field("shards", &self.shards.len())
            .field("len", &self.len())
            .finish()
    }
}

impl UtxoSet {
    /// An empty set with default options (mainnet parameters, MuHash tracked).
    pub fn new() -> UtxoSet {
        UtxoSet::with_options(SetOptions::default())
    }

    /// An empty set built with `options`.
    pub fn with_options(options: SetOptions) -> UtxoSet {
        let shards = options.shards.clamp(1, SHARDS_MAX).next_power_of_two();
        let state = SeededState::random();
        UtxoSet {
            shards: (0..shards)
                .map(|_| RwLock::new(Shard::new(state.seed)))
                .collect(),
            state,
            writer: Mutex::new(WriterBuffers::default()),
            summary: Mutex::new(Summary {
                stats: UtxoStats::new(options.track_muhash),
                best: None,
                bip34_block: None,
            }),
            params: options.params,
            threads: options.threads.clamp(1, THREADS_MAX),
        }
    }

    /// The key's hash (txid and output group).
    fn hash_of(&self, key: &Key) -> u64 {
        key_hash(self.state.seed, &key.txid, key.group())
    }

    /// The shard of a key hash.
    fn shard_index(&self, hash: u64) -> usize {
        // Bits 32.. pick the shard; the table inside uses the low bits and the top 7 bits.
        ((hash >> 32) as usize) & (self.shards.len() - 1)
    }

    #[cfg(loom)]
    fn shard_of(&self, key: &Key) -> usize {
        self.shard_index(self.hash_of(key))
    }

    /// The coin at `outpoint`, if unspent.
    pub fn get(&self, outpoint: &OutPoint) -> Option<Coin> {
        let key = Key::of(outpoint);
        let hash = self.hash_of(&key);
        read(&self.shards[self.shard_index(hash)]).get(hash, &key)
    }

    /// Whether `outpoint` is unspent.
    pub fn contains(&self, outpoint: &OutPoint) -> bool {
        let key = Key::of(outpoint);
        let hash = self.hash_of(&key);
        read(&self.shards[self.shard_index(hash)]).contains(hash, &key)
    }

    /// Number of unspent outputs.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| read(s).len()).sum()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The statistics of the set (O(1): kept incrementally).
    pub fn stats(&self) -> UtxoStats {
        lock(&self.summary).stats.clone()
    }

    /// The last connected block and its height, if any.
    pub fn best_block(&self) -> Option<(BlockHash, u32)> {
        lock(&self.summary).best
    }

    /// Sets the best block (after loading a snapshot with [`UtxoSet::insert`]).
    pub fn set_best_block(&self, best: Option<(BlockHash, u32)>) {
        lock(&self.summary).best = best;
    }

    /// The hash of the block at [`ChainParams::bip34`]'s height on the chain this set follows, if
    /// known: recorded when the set connects a block at that height (forgotten when it
    /// disconnects it), or told by [`UtxoSet::set_bip34_block`]. While it is BIP34's block,
    /// blocks below [`crate::BIP34_IMPLIES_BIP30_LIMIT`] skip the BIP30 lookups, as in Core
    /// ([`ChainParams::checks_bip30`]).
    pub fn bip34_block(&self) -> Option<BlockHash> {
        lock(&self.summary).bip34_block
    }

    /// Tells a set that did not connect the block at BIP34's height itself (one loaded from a
    /// snapshot or a store past it) which block its chain holds there, as Core reads it from its
    /// block index. Unknown (`None`, the default) is always safe: BIP30 is then checked at every
    /// height.
    ///
    /// Told wrongly (a chain that does not hold BIP34's block there), a repeated txid would be
    /// written over an unspent coin without the check, as Core's `AddCoin` does when it skips
    /// BIP30; the incremental statistics would then still count the overwritten coin.
    ///
    /// ```
    /// let set = utxo_core::UtxoSet::new();
    /// let (_, hash) = utxo_core::ChainParams::default().bip34.unwrap();
    /// set.set_bip34_block(Some(hash));
    /// assert_eq!(set.bip34_block(), Some(hash));
    /// ```
    pub fn set_bip34_block(&self, hash: Option<BlockHash>) {
        lock(&self.summary).bip34_block = hash;
    }

    /// Inserts a coin directly, bypassing the block rules (snapshot loading); returns the coin it
    /// replaced. Statistics follow.
    ///
    /// Coins are stored as Bitcoin Core's chainstate stores them, so a script longer than
    /// [`crate::SCRIPT_SIZE_MAX`] (unspendable by consensus, and never added by block application)
    /// reads back as a lone `OP_RETURN`, as Core's `ScriptCompression` does. Amounts above
    /// MAX_MONEY (which no block can create) are kept exactly.
    pub fn insert(&self, outpoint: OutPoint, coin: Coin) -> Option<Coin> {
        let _writer = lock(&self.writer);
        let key = Key::of(&outpoint);
        let hash = self.hash_of(&key);
        let old = {
            let mut shard = write(&self.shards[self.shard_index(hash)]);
            let old = shard.put(hash, &key, &[(key.vout, coin.parts())], true);
            shard.maintain();
            old
        };
        let mut buf = Vec::with_capacity(64);
        let mut summary = lock(&self.summary);
        if let Some(old) = &old {
            summary.stats.remove_coin(&outpoint, old, &mut buf);
        }
        summary.stats.add_coin(&outpoint, &coin, &mut buf);
        old
    }

    /// Removes a coin directly, bypassing the block rules; statistics follow.
    pub fn remove(&self, outpoint: &OutPoint) -> Option<Coin> {
        let _writer = lock(&self.writer);
        let key = Key::of(outpoint);
        let hash = self.hash_of(&key);
        let old = {
            let mut shard = write(&self.shards[self.shard_index(hash)]);
            let old = shard.remove(hash, &key, true)?;
            shard.maintain();
            old?
        };
        lock(&self.summary)
            .stats
            .remove_coin(outpoint, &old, &mut Vec::new());
        Some(old)
    }

    /// Every coin, in Bitcoin Core's chainstate order (txid raw bytes, then vout): the order
    /// `hash_serialized_3` and snapshots need.
    pub fn sorted_coins(&self) -> Vec<(OutPoint, Coin)> {
        let mut all: Vec<(Key, Coin)> = Vec::with_capacity(self.len());
        for shard in self.shards.iter() {
            read(shard).for_each(|key, coin| all.push((key, coin)));
        }
        all.sort_unstable_by_key(|(key, _)| (key.txid, key.vout));
        all.into_iter().map(|(k, c)| (k.outpoint(), c)).collect()
    }

    /// Memory the shards hold: (arena bytes, live record bytes, index bytes), summed.
    #[cfg(all(test, not(loom)))]
    pub(crate) fn memory(&self) -> (usize, usize, usize) {
        self.shards.iter().fold((0, 0, 0), |acc, s| {
            let m = read(s).memory();
            (acc.0 + m.0, acc.1 + m.1, acc.2 + m.2)
        })
    }

    /// Connects `block` at `height` with every bookkeeping rule and returns its undo data.
    ///
    /// All or nothing: on error the set is exactly as before. The block must extend the best block
    /// (when there is one) and the genesis block (height 0) adds nothing, as in Bitcoin Core.
    ///
    /// # Errors
    /// [`ApplyError`] naming the offending block, transaction or outpoint.
    pub fn apply_block(&self, block: &Block, height: u32) -> Result<BlockUndo, ApplyError> {
        self.connect_inner(block, None, height, false)
            .map(|c| c.undo)
    }

    /// Like [`UtxoSet::apply_block`], also returning the block's net [`ChangeSet`].
    ///
    /// # Errors
    /// See [`UtxoSet::apply_block`].
    pub fn connect_block(&self, block: &Block, height: u32) -> Result<Connected, ApplyError> {
        self.connect_inner(block, None, height, true)
    }

    /// Like [`UtxoSet::apply_block`] with the block's transaction ids computed beforehand (as
    /// Bitcoin Core does when it deserializes a transaction), e.g. by the parser on another
    /// thread with [`block_txids`](crate::block_txids). The set then spends no time hashing.
    ///
    /// The caller vouches for `txids`: `txids[i]` must be the id of `block.txdata[i]`. Their
    /// count is always checked; in debug builds each is recomputed and compared as well. Wrong
    /// ids in a release build would file the block's new coins under those ids.
    ///
    /// # Errors
    /// See [`UtxoSet::apply_block`]; [`ApplyError::TxidCount`] when `txids` does not have one id
    /// per transaction, and (debug builds) [`ApplyError::TxidMismatch`] for a wrong id.
    pub fn apply_block_with_txids(
        &self,
        block: &Block,
        txids: &[Txid],
        height: u32,
    ) -> Result<BlockUndo, ApplyError> {
        self.check_txids(block, txids)?;
        self.connect_inner(block, Some(txids), height, false)
            .map(|c| c.undo)
    }

    /// Like [`UtxoSet::connect_block`] with the transaction ids computed beforehand; see
    /// [`UtxoSet::apply_block_with_txids`].
    ///
    /// # Errors
    /// See [`UtxoSet::apply_block_with_txids`].
    pub fn connect_block_with_txids(
        &self,
        block: &Block,
        txids: &[Txid],
        height: u32,
    ) -> Result<Connected, ApplyError> {
        self.check_txids(block, txids)?;
        self.connect_inner(block, Some(txids), height, true)
    }

    /// Like [`UtxoSet::apply_block`] for a [`PreparedBlock`], whose transaction ids were computed
    /// when it was made (e.g. by the parser on another thread): the set spends no time hashing, and
    /// unlike [`UtxoSet::apply_block_with_txids`] there is nothing for the caller to vouch for.
    ///
    /// # Errors
    /// See [`UtxoSet::apply_block`].
    pub fn apply_prepared(
        &self,
        prepared: &PreparedBlock,
        height: u32,
    ) -> Result<BlockUndo, ApplyError> {
        self.connect_inner(prepared.block(), Some(prepared.txids()), height, false)
            .map(|c| c.undo)
    }

    /// Like [`UtxoSet::connect_block`] for a [`PreparedBlock`]; see [`UtxoSet::apply_prepared`].
    ///
    /// # Errors
    /// See [`UtxoSet::apply_block`].
    pub fn connect_prepared(
        &self,
        prepared: &PreparedBlock,
        height: u32,
    ) -> Result<Connected, ApplyError> {
        self.connect_inner(prepared.block(), Some(prepared.txids()), height, true)
    }

    /// One txid per transaction (and, in debug builds, each the transaction's).
    #[allow(clippy::unused_self)] // A method beside the ones it serves.
    fn check_txids(&self, block: &Block, txids: &[Txid]) -> Result<(), ApplyError> {
        if txids.len() != block.txdata.len() {
            return Err(ApplyError::TxidCount {
                block: block.block_hash(),
                txids: txids.len(),
                transactions: block.txdata.len(),
            });
        }
        #[cfg(debug_assertions)]
        {
            let computed = connect::txids(block);
            if let Some(index) = (0..txids.len()).find(|&i| txids[i] != computed[i]) {
                return Err(ApplyError::TxidMismatch {
                    block: block.block_hash(),
                    index,
                    given: txids[index],
                    computed: computed[index],
                });
            }
        }
        Ok(())
    }

    /// Connects `block`, with its txids when the caller has them. Without `keep_changes` the
    /// returned changes are empty (their old coins moved into the undo data instead of cloned).
    fn connect_inner(
        &self,
        block: &Block,
        given: Option<&[Txid]>,
        height: u32,
        keep_changes: bool,
    ) -> Result<Connected, ApplyError> {
        let mut buffers = lock(&self.writer);
        let hash = block.block_hash();
        if let Some((best, best_height)) = self.best_block()
            && (block.header.prev_blockhash != best || Some(height) != best_height.checked_add(1))
        {
            return Err(ApplyError::DoesNotExtendTip {
                block: hash,
                height,
                tip: best,
                tip_height: best_height,
            });
        }
        if height == 0 {
            // Core never connects the genesis block's transactions.
            self.commit(
                &mut buffers.commit,
                &ChangeSet::default(),
                Some((hash, height)),
            );
            return Ok(Connected {
                undo: BlockUndo::default(),
                changes: ChangeSet::default(),
            });
        }
        {
            let parallel = self.threads > 1 && block.txdata.len() >= PARALLEL_MIN_TXS;
            let computed;
            let (txids, mut prefetched) = if parallel {
                computed = match given {
                    Some(_) => Vec::new(),
                    None => self.parallel_txids(block),
                };
                (given.unwrap_or(&computed), self.prefetch(block))
            } else {
                computed = match given {
                    Some(_) => Vec::new(),
                    None => connect::txids(block),
                };
                // The rules pass looks every coin up first, in one tight pass (`prefill`).
                (given.unwrap_or(&computed), HashMap::default())
            };
            // One thread: every shard read-locked once for the block's lookups instead of once
            // per lookup (readers are not blocked; only writers, and the writer is this call).
            // Released before the commit takes write locks.
            let held: Vec<_> = if parallel {
                Vec::new()
            } else {
                self.shards.iter().map(read).collect()
            };
            // The spent coins' keys and hashes, in the order the rules' first pass looks them
            // up: each lookup warms the index slot of the key `WARM_INDEX_AHEAD` later and the
            // record of the key `WARM_RECORD_AHEAD` later, so their cache misses overlap with
            // the lookups in between instead of each lookup waiting for its own.
            let mut warm_keys = std::mem::take(&mut buffers.warm);
            let keys = &mut warm_keys;
            keys.clear();
            if !held.is_empty() {
                for tx in block.txdata.iter().skip(1) {
                    for input in &tx.input {
                        let key = Key::of(&input.previous_output);
                        keys.push((self.hash_of(&key), key));
                    }
                }
                // Each new transaction's index slot (BIP30's lookup, or the commit's insert).
                let mut sink = 0u8;
                for &txid in txids {
                    let key = Key {
                        txid: txid.to_byte_array(),
                        vout: 0,
                    };
                    let hash = self.hash_of(&key);
                    sink ^= held[self.shard_index(hash)].touch(hash, &key, false);
                }
                std::hint::black_box(sink);
            }
            let keys = &keys[..];
            let mut next_key = 0;
            let mut sink = 0u8;
            let lookup = |op: &OutPoint| {
                Ok::<_, Infallible>(if let Some(first) = held.first() {
                    let key = Key::of(op);
                    let shard = |hash: u64| held.get(self.shard_index(hash)).unwrap_or(first);
                    let hash = match keys.get(next_key) {
                        Some((hash, k)) if *k == key => {
                            if let Some((h, k)) = keys.get(next_key + WARM_INDEX_AHEAD) {
                                sink ^= shard(*h).touch(*h, k, false);
                            }
                            if let Some((h, k)) = keys.get(next_key + WARM_RECORD_AHEAD) {
                                sink ^= shard(*h).touch(*h, k, true);
                            }
                            next_key += 1;
                            *hash
                        }
                        _ => self.hash_of(&key),
                    };
                    shard(hash).get(hash, &key)
                } else if prefetched.is_empty() {
                    self.get(op)
                } else {
                    match prefetched.remove(op) {
                        Some(coin) => coin,
                        None => self.get(op),
                    }
                })
            };
            let check_bip30 = self
                .params
                .checks_bip30(height, self.bip34_block().as_ref());
            let (mut diff, pending) = connect::connect(
                block,
                txids,
                height,
                &self.params,
                !parallel,
                check_bip30,
                std::mem::take(&mut buffers.diff),
                lookup,
            )
            .map_err(|f| match f {
                Failure::Rule(e) => e,
                Failure::Lookup(never) => match never {},
            })?;
            std::hint::black_box(sink);
            buffers.warm = warm_keys;
            drop(held);
            let mut drawn = diff.take_changes();
            self.commit_with(
                &mut buffers.commit,
                &drawn.created,
                &drawn.spent,
                drawn.replaced,
                Some((hash, height)),
            );
            if self.params.bip34.is_some_and(|(h, _)| h == height) {
                self.set_bip34_block(Some(hash));
            }
            let undo = pending.finish(block, &diff, &mut drawn, !keep_changes);
            buffers.diff = diff.into_buffers();
            let changes = if keep_changes {
                drawn.into_changes()
            } else {
                ChangeSet::default()
            };
            Ok(Connected { undo, changes })
        }
    }

    /// Disconnects the tip `block` (at `height`) using the undo data its connection returned.
    ///
    /// # Errors
    /// [`DisconnectError`] when the block is not the tip or the undo data does not match; the set
    /// is then unchanged.
    pub fn disconnect_block(
        &self,
        block: &Block,
        height: u32,
        undo: &BlockUndo,
    ) -> Result<ChangeSet, DisconnectError> {
        self.disconnect_inner(block, None, height, undo)
    }

    /// Like [`UtxoSet::disconnect_block`] for a [`PreparedBlock`]: its transaction ids are not
    /// computed again.
    ///
    /// ```
    /// use utxo_core::{PreparedBlock, UtxoSet};
    ///
    /// let set = UtxoSet::new();
    /// let genesis = PreparedBlock::new(bitcoin::constants::genesis_block(bitcoin::Network::Regtest));
    /// let undo = set.apply_prepared(&genesis, 0).unwrap();
    /// set.disconnect_prepared(&genesis, 0, &undo).unwrap();
    /// assert_eq!(set.best_block(), None);
    /// ```
    ///
    /// # Errors
    /// See [`UtxoSet::disconnect_block`].
    pub fn disconnect_prepared(
        &self,
        prepared: &PreparedBlock,
        height: u32,
        undo: &BlockUndo,
    ) -> Result<ChangeSet, DisconnectError> {
        self.disconnect_inner(prepared.block(), Some(prepared.txids()), height, undo)
    }

    /// Disconnects the tip `block`, with its txids when the caller has them.
    fn disconnect_inner(
        &self,
        block: &Block,
        txids: Option<&[Txid]>,
        height: u32,
        undo: &BlockUndo,
    ) -> Result<ChangeSet, DisconnectError> {
        let mut buffers = lock(&self.writer);
        let hash = block.block_hash();
        if let Some((best, best_height)) = self.best_block()
            && (best != hash || best_height != height)
        {
            return Err(DisconnectError::NotTip {
                block: hash,
                tip: best,
            });
        }
        let changes = if height == 0 {
            ChangeSet::default()
        } else {
            let mut diff = connect::disconnect(
                block,
                txids,
                height,
                undo,
                std::mem::take(&mut buffers.diff),
                |op| Ok::<_, Infallible>(self.get(op)),
            )
            .map_err(|f| match f {
                Failure::Rule(e) => e,
                Failure::Lookup(never) => match never {},
            })?;
            let changes = diff.take_changes().into_changes();
            buffers.diff = diff.into_buffers();
            changes
        };
        let prev = height
            .checked_sub(1)
            .map(|h| (block.header.prev_blockhash, h));
        self.commit(&mut buffers.commit, &changes, prev);
        if self.params.bip34.is_some_and(|(h, _)| h == height) {
            self.set_bip34_block(None);
        }
        Ok(changes)
    }

    /// Computes the block's txids on up to `threads` scoped threads.
    fn parallel_txids(&self, block: &Block) -> Vec<Txid> {
        let chunk = block.txdata.len().div_ceil(self.threads);
        std::thread::scope(|scope| {
            let handles: Vec<_> = block
                .txdata
                .chunks(chunk)
                .map(|txs| {
                    scope.spawn(move || {
                        let mut buf = Vec::with_capacity(1024);
                        txs.iter()
                            .map(|tx| connect::txid(tx, &mut buf))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| {
                    h.join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
                })
                .collect()
        })
    }

    /// Reads every coin the block spends, on up to `threads` scoped threads.
    fn prefetch(&self, block: &Block) -> HashMap<OutPoint, Option<Coin>, BuildOutPointHasher> {
        let spends: Vec<OutPoint> = block
            .txdata
            .iter()
            .skip(1)
            .flat_map(|tx| tx.input.iter().map(|i| i.previous_output))
            .collect();
        let chunk = spends.len().div_ceil(self.threads).max(1);
        let mut map = HashMap::with_capacity_and_hasher(spends.len(), BuildOutPointHasher);
        std::thread::scope(|scope| {
            let handles: Vec<_> = spends
                .chunks(chunk)
                .map(|ops| {
                    scope
                        .spawn(move || ops.iter().map(|op| (*op, self.get(op))).collect::<Vec<_>>())
                })
                .collect();
            for handle in handles {
                map.extend(
                    handle
                        .join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
                );
            }
        });
        map
    }

    /// Writes a diff: inserts first, then deletes, one shard lock at a time (shards spread over
    /// threads when the set has more than one); then the statistics.
    fn commit(
        &self,
        buffers: &mut CommitBuffers,
        changes: &ChangeSet,
        best: Option<(BlockHash, u32)>,
    ) {
        self.commit_with(buffers, &changes.created, &changes.spent, true, best);
    }

    /// [`UtxoSet::commit`] with buffers of its own (for tests that commit directly).
    #[cfg(test)]
    fn commit_fresh(&self, changes: &ChangeSet, best: Option<(BlockHash, u32)>) {
        self.commit(&mut CommitBuffers::default(), changes, best);
    }

    /// [`UtxoSet::commit`]; `may_replace` false promises that no outpoint is both spent and
    /// created (true of every block but BIP30's exceptions), which saves looking for them.
    ///
    /// The changes are ordered by shard as 12-byte (hash, position) pairs in `buffers`, kept
    /// from block to block, so a block neither copies its coins around nor faults in fresh pages.
    fn commit_with<C: AsParts + Sync>(
        &self,
        buffers: &mut CommitBuffers,
        created: &[(OutPoint, C)],
        spent: &[(OutPoint, Coin)],
        may_replace: bool,
        best: Option<(BlockHash, u32)>,
    ) {
        let shards = self.shards.len();
        let CommitBuffers {
            changes,
            sorted,
            starts,
        } = buffers;
        changes.clear();
        for (position, (op, _)) in created.iter().enumerate() {
            changes.push(Change {
                hash: self.hash_of(&Key::of(op)),
                position: position_of(position),
            });
        }
        let created_keys: std::collections::HashSet<Key, SeededState> = if may_replace {
            let mut keys = std::collections::HashSet::with_capacity_and_hasher(
                created.len(),
                self.state.clone(),
            );
            keys.extend(created.iter().map(|(op, _)| Key::of(op)));
            keys
        } else {
            std::collections::HashSet::with_hasher(self.state.clone())
        };
        for (position, (op, _)) in spent.iter().enumerate() {
            let key = Key::of(op);
            // A coin replaced in place (BIP30 exception) is written by its insert.
            if may_replace && created_keys.contains(&key) {
                continue;
            }
            changes.push(Change {
                hash: self.hash_of(&key),
                position: DELETE | position_of(position),
            });
        }
        // A stable counting sort by (phase, shard): inserts before deletes, the outputs of one
        // transaction together in vout order.
        let bucket =
            |c: &Change| usize::from(c.position & DELETE != 0) * shards + self.shard_index(c.hash);
        starts.clear();
        starts.resize(2 * shards + 1, 0);
        for change in changes.iter() {
            starts[bucket(change) + 1] += 1;
        }
        for b in 0..2 * shards {
            starts[b + 1] += starts[b];
        }
        sorted.clear();
        sorted.resize(changes.len(), Change::default());
        // `starts[b]` walks up to `starts[b + 1]`, then is restored below.
        for change in changes.iter() {
            let b = bucket(change);
            sorted[starts[b]] = *change;
            starts[b] += 1;
        }
        for b in (1..2 * shards).rev() {
            starts[b] = starts[b - 1];
        }
        starts[0] = 0;
        let sorted = &sorted[..];
        let starts = &starts[..];
        let parallel = self.threads > 1 && sorted.len() >= PARALLEL_MIN_TXS;
        // All inserts complete before any delete starts.
        for phase in [0, 1] {
            let write = |lane: usize, lanes: usize| {
                self.write_shards(
                    sorted,
                    &starts[phase * shards..],
                    created,
                    spent,
                    lane,
                    lanes,
                );
            };
            if parallel {
                std::thread::scope(|scope| {
                    for lane in 0..self.threads {
                        scope.spawn(move || write(lane, self.threads));
                    }
                });
            } else {
                write(0, 1);
            }
        }
        let mut buf = Vec::with_capacity(128);
        let mut summary = lock(&self.summary);
        for (op, coin) in spent {
            summary.stats.remove_coin(op, coin, &mut buf);
        }
        for (op, coin) in created {
            summary.stats.add_parts(op, coin.as_parts(), &mut buf);
        }
        summary.best = best;
    }

    /// Writes the changes of the shards `lane`, `lane + lanes`, … (`starts[s]..starts[s + 1]` of
    /// `sorted` are shard `s`'s): the coins of one transaction (and output group) in one record
    /// write, deletes one by one.
    fn write_shards<C: AsParts>(
        &self,
        sorted: &[Change],
        starts: &[usize],
        created: &[(OutPoint, C)],
        spent: &[(OutPoint, Coin)],
        lane: usize,
        lanes: usize,
    ) {
        let mut coins: Vec<(u32, CoinParts<'_>)> = Vec::new();
        for (shard_index, shard_lock) in self.shards.iter().enumerate().skip(lane).step_by(lanes) {
            let changes = &sorted[starts[shard_index]..starts[shard_index + 1]];
            if changes.is_empty() {
                continue;
            }
            let mut shard = write(shard_lock);
            let mut rest = changes;
            while let Some((first, tail)) = rest.split_first() {
                if first.position & DELETE != 0 {
                    let key = Key::of(&spent[(first.position & !DELETE) as usize].0);
                    shard.remove(first.hash, &key, false);
                    rest = tail;
                    continue;
                }
                let (op, coin) = &created[first.position as usize];
                let key = Key::of(op);
                coins.clear();
                coins.push((key.vout, coin.as_parts()));
                let mut run = 1;
                for next in tail {
                    let (next_op, next_coin) = &created[next.position as usize];
                    if next.hash != first.hash
                        || next_op.txid != op.txid
                        || Key::of(next_op).group() != key.group()
                    {
                        break;
                    }
                    coins.push((next_op.vout, next_coin.as_parts()));
                    run += 1;
                }
                shard.put(first.hash, &key, &coins, false);
                rest = &rest[run..];
            }
            shard.maintain();
        }
    }
}

/// One change of a commit: its key's hash and its position among the created coins, or
/// [`DELETE`] `|` its position among the spent ones.
#[derive(Clone, Copy, Default)]
pub(crate) struct Change {
    hash: u64,
    position: u32,
}

/// The bit of [`Change::position`] that marks a delete.
const DELETE: u32 = 1 << 31;

/// A change's position (a block holds far fewer than 2^31 coins).
#[allow(clippy::cast_possible_truncation)]
fn position_of(position: usize) -> u32 {
    debug_assert!(position < DELETE as usize);
    position as u32
}

/// The commit's allocations, kept between blocks.
#[derive(Default)]
pub(crate) struct CommitBuffers {
    changes: Vec<Change>,
    sorted: Vec<Change>,
    starts: Vec<usize>,
}

/// What the set's writer keeps between blocks.
#[derive(Default)]
struct WriterBuffers {
    diff: DiffBuffers,
    commit: CommitBuffers,
    /// The warm-up pass's keys.
    warm: Vec<(u64, Key)>,
}

#[cfg(all(test, not(loom)))]
#[allow(clippy::unwrap_used)] // Helpers of the tests below, outside `#[test]` functions.
mod tests {
    use super::*;

    use crate::arena::CHUNK_SIZE;
    use bitcoin::{Amount, ScriptBuf};
    use proptest::prelude::*;
    use std::collections::HashMap as Model;

    use crate::test_rng::Rng;

    /// A mainnet-like coin: P2WPKH, P2TR, P2PKH or P2SH.
    fn synth_coin(rng: &mut Rng) -> Coin {
        let payload = rng.next().to_le_bytes().repeat(4);
        let script = match rng.below(4) {
            0 => [&[0x00, 0x14][..], &payload[..20]].concat(),
            1 => [&[0x51, 0x20][..], &payload[..]].concat(),
            2 => [&[0x76, 0xa9, 0x14][..], &payload[..20], &[0x88, 0xac]].concat(),
            _ => [&[0xa9, 0x14][..], &payload[..20], &[0x87]].concat(),
        };
        Coin {
            amount: Amount::from_sat(rng.next() % 100_000_000),
            height: u32::try_from(rng.below(900_000)).unwrap(),
            is_coinbase: false,
            script_pubkey: ScriptBuf::from_bytes(script),
        }
    }

    fn synth_txid(rng: &mut Rng) -> Txid {
        let mut t = [0u8; 32];
        for chunk in t.chunks_mut(8) {
            chunk.copy_from_slice(&rng.next().to_le_bytes());
        }
        Txid::from_byte_array(t)
    }

    /// Insert/remove churn (blocks that create 1–3 output transactions and spend a random half of
    /// the set) keeps the record arena within a small factor of its live bytes, and an emptied set
    /// gives every chunk back but the heads.
    #[test]
    fn churn_keeps_the_arena_within_twice_its_live_bytes() {
        let shards = 2;
        let set = UtxoSet::with_options(SetOptions {
            shards,
            track_muhash: false,
            ..SetOptions::default()
        });
        let mut rng = Rng(0x5eed_1234_abcd_0001);
        let mut live: Vec<OutPoint> = Vec::new();
        for cycle in 0..40 {
            let mut created = Vec::new();
            for _ in 0..2_000 {
                let txid = synth_txid(&mut rng);
                let outputs = 1 + rng.below(3);
                let height = u32::try_from(cycle).unwrap();
                for vout in 0..outputs {
                    let op = OutPoint::new(txid, u32::try_from(vout).unwrap());
                    created.push((
                        op,
                        Coin {
                            height,
                            ..synth_coin(&mut rng)
                        },
                    ));
                    live.push(op);
                }
            }
            set.commit_fresh(
                &ChangeSet {
                    created,
                    spent: Vec::new(),
                },
                None,
            );
            let mut spent = Vec::new();
            for _ in 0..live.len() / 2 {
                let op = live.swap_remove(rng.below(live.len()));
                spent.push((op, set.get(&op).unwrap()));
            }
            set.commit_fresh(
                &ChangeSet {
                    created: Vec::new(),
                    spent,
                },
                None,
            );
            assert_eq!(set.len(), live.len());
            let (arena, bytes, _) = set.memory();
            assert!(
                arena <= 2 * bytes + shards * 2 * CHUNK_SIZE,
                "cycle {cycle}: arena {arena} B for {bytes} live B"
            );
        }
        for op in &live {
            assert!(set.remove(op).is_some());
        }
        let (arena, bytes, _) = set.memory();
        assert_eq!(bytes, 0);
        assert!(
            arena <= shards * CHUNK_SIZE,
            "only the head chunks remain: {arena}"
        );
    }

    /// Outpoints drawn from a few txids (two share their first 8 bytes, so their hashes collide)
    /// and vouts at the output-group edges.
    fn outpoint() -> impl Strategy<Value = OutPoint> {
        let vouts = [
            0u32,
            1,
            2,
            3,
            62,
            63,
            64,
            65,
            127,
            128,
            1000,
            u32::MAX - 1,
            u32::MAX,
        ];
        (0..5usize, proptest::sample::select(vouts.to_vec())).prop_map(|(t, vout)| {
            let mut txid = [0u8; 32];
            txid[0] = 0xab;
            // Txids 3 and 4 differ only in their last byte.
            txid[31] = u8::try_from(t).unwrap();
            txid[1] = if t >= 3 { 3 } else { u8::try_from(t).unwrap() };
            OutPoint::new(Txid::from_byte_array(txid), vout)
        })
    }

    fn script() -> impl Strategy<Value = ScriptBuf> {
        let generator = "0479be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798\
                         483ada7726a3c4655da4fbfc0e1108a8fd17b448a68554199c47d08ffb10d4b8";
        let g: Vec<u8> = (0..65)
            .map(|i| u8::from_str_radix(&generator[2 * i..2 * i + 2], 16).unwrap())
            .collect();
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..80),
            any::<[u8; 20]>().prop_map(|h| [&[0x76, 0xa9, 0x14][..], &h, &[0x88, 0xac]].concat()),
            any::<[u8; 20]>().prop_map(|h| [&[0xa9, 0x14][..], &h, &[0x87]].concat()),
            any::<[u8; 32]>().prop_map(|k| [&[0x21, 0x02][..], &k, &[0xac]].concat()),
            Just([&[0x41][..], &g, &[0xac]].concat()),
            (1usize..3).prop_map(|n| vec![0x51; n * crate::arena::ARENA_RECORD_MAX]),
        ]
        .prop_map(ScriptBuf::from_bytes)
    }

    fn coin() -> impl Strategy<Value = Coin> {
        (
            0..=Amount::MAX_MONEY.to_sat(),
            prop_oneof![0u32..3, 0u32..(1 << 31)],
            any::<bool>(),
            script(),
        )
            .prop_map(|(sat, height, is_coinbase, script_pubkey)| Coin {
                amount: Amount::from_sat(sat),
                height,
                is_coinbase,
                script_pubkey,
            })
    }

    #[derive(Debug, Clone)]
    enum Op {
        Insert(OutPoint, Coin),
        Remove(OutPoint),
        Get(OutPoint),
        /// A commit: coins created (duplicates in one batch: the last wins, as in a model map)
        /// and the model's coins at the chosen indices spent.
        Commit(Vec<(OutPoint, Coin)>, Vec<usize>),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => (outpoint(), coin()).prop_map(|(o, c)| Op::Insert(o, c)),
            2 => outpoint().prop_map(Op::Remove),
            1 => outpoint().prop_map(Op::Get),
            2 => (
                proptest::collection::vec((outpoint(), coin()), 0..6),
                proptest::collection::vec(any::<usize>(), 0..4)
            )
                .prop_map(|(c, s)| Op::Commit(c, s)),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Random inserts, removes, lookups and commits agree with a `HashMap` model, coin for coin.
        #[test]
        fn set_agrees_with_a_hash_map_model(ops in proptest::collection::vec(op(), 1..60),
                                            shards in prop_oneof![Just(1usize), Just(4)]) {
            let set = UtxoSet::with_options(SetOptions {
                shards,
                track_muhash: false,
                ..SetOptions::default()
            });
            let mut model: Model<OutPoint, Coin> = Model::new();
            for op in ops {
                match op {
                    Op::Insert(o, c) => {
                        prop_assert_eq!(set.insert(o, c.clone()), model.insert(o, c));
                    }
                    Op::Remove(o) => prop_assert_eq!(set.remove(&o), model.remove(&o)),
                    Op::Get(o) => {
                        prop_assert_eq!(set.get(&o), model.get(&o).cloned());
                        prop_assert_eq!(set.contains(&o), model.contains_key(&o));
                    }
                    Op::Commit(created, spend) => {
                        // Net changes as a block makes them: each outpoint once, a spend of an
                        // outpoint also created is a replacement.
                        let mut dedup: Vec<(OutPoint, Coin)> = Vec::new();
                        for (o, c) in created {
                            dedup.retain(|(p, _)| *p != o);
                            dedup.push((o, c));
                        }
                        let mut keys: Vec<OutPoint> = model.keys().copied().collect();
                        keys.sort();
                        let mut spent = Vec::new();
                        for i in spend {
                            if keys.is_empty() {
                                break;
                            }
                            let o = keys.swap_remove(i % keys.len());
                            spent.push((o, model[&o].clone()));
                        }
                        for (o, _) in &spent {
                            model.remove(o);
                        }
                        for (o, c) in &dedup {
                            model.insert(*o, c.clone());
                        }
                        set.commit_fresh(&ChangeSet { created: dedup, spent }, None);
                    }
                }
                prop_assert_eq!(set.len(), model.len());
            }
            let mut expected: Vec<(OutPoint, Coin)> = model.into_iter().collect();
            expected.sort_by_key(|(o, _)| (o.txid.to_byte_array(), o.vout));
            prop_assert_eq!(set.sorted_coins(), expected);
        }
    }

    /// `insert` takes any amount without panicking and gives it back exactly.
    #[test]
    fn amounts_above_max_money_round_trip_through_insert() {
        let set = UtxoSet::new();
        let max_money = Amount::MAX_MONEY.to_sat();
        for (vout, sat) in [(0, max_money), (1, max_money + 1), (2, u64::MAX)] {
            let op = OutPoint::new(Txid::from_byte_array([9; 32]), vout);
            let coin = Coin {
                amount: Amount::from_sat(sat),
                height: 1,
                is_coinbase: false,
                script_pubkey: ScriptBuf::from_bytes(vec![0x51]),
            };
            assert_eq!(set.insert(op, coin.clone()), None);
            assert_eq!(set.get(&op), Some(coin.clone()));
            assert_eq!(set.remove(&op), Some(coin));
        }
        assert!(set.is_empty());
    }

    /// As in Core's `ScriptCompression`, a script over `SCRIPT_SIZE_MAX` bytes is kept as a lone
    /// `OP_RETURN`; at the limit it is kept whole.
    #[test]
    fn oversized_scripts_read_back_as_op_return_like_core() {
        let set = UtxoSet::new();
        for (vout, len) in [(0, crate::SCRIPT_SIZE_MAX), (1, crate::SCRIPT_SIZE_MAX + 1)] {
            let op = OutPoint::new(Txid::from_byte_array([8; 32]), vout);
            let coin = Coin {
                amount: Amount::from_sat(1),
                height: 1,
                is_coinbase: false,
                script_pubkey: ScriptBuf::from_bytes(vec![0x51; len]),
            };
            set.insert(op, coin.clone());
            let back = set.get(&op).unwrap();
            if len > crate::SCRIPT_SIZE_MAX {
                assert_eq!(back.script_pubkey.as_bytes(), [0x6a]);
            } else {
                assert_eq!(back, coin);
            }
        }
    }

    #[test]
    fn hasher_depends_on_seed_and_vout() {
        let a = SeededState { seed: 1 };
        let b = SeededState { seed: 2 };
        let k0 = Key {
            txid: [7; 32],
            vout: 0,
        };
        let k1 = Key {
            txid: [7; 32],
            vout: 1,
        };
        assert_ne!(a.hash_one(k0), b.hash_one(k0));
        assert_ne!(a.hash_one(k0), a.hash_one(k1));
    }

    #[test]
    fn long_scripts_live_in_the_side_store() {
        let set = UtxoSet::with_options(SetOptions {
            shards: 1,
            ..SetOptions::default()
        });
        let coin = Coin {
            amount: bitcoin::Amount::from_sat(1),
            height: 5,
            is_coinbase: false,
            script_pubkey: bitcoin::ScriptBuf::from_bytes(vec![
                0x51;
                crate::arena::ARENA_RECORD_MAX
            ]),
        };
        let op = OutPoint::null();
        assert_eq!(set.insert(op, coin.clone()), None);
        let (arena, live, _) = set.memory();
        assert_eq!(arena, live, "one side record, no chunk");
        assert!(live > crate::arena::ARENA_RECORD_MAX);
        assert_eq!(set.get(&op), Some(coin.clone()));
        assert_eq!(set.remove(&op), Some(coin));
        assert_eq!(set.memory().1, 0);
        assert!(set.is_empty());
        assert_eq!(set.stats(), UtxoStats::new(true));
    }
}

/// Loom models of the shard protocol (`cargo xtask loom`).
#[cfg(all(test, loom))]
mod loom_models {
    use super::*;
    use bitcoin::Amount;
    use loom::sync::Arc;

    fn coin(n: u64) -> Coin {
        Coin {
            amount: Amount::from_sat(n),
            height: 1,
            is_coinbase: false,
            script_pubkey: bitcoin::ScriptBuf::new(),
        }
    }

    /// A reader that finds the spent coin gone always finds the coin created with its removal: the
    /// commit writes inserts before deletes, shard by shard, and never holds two shard locks.
    #[test]
    fn loom_reader_never_sees_a_moved_coin_vanish() {
        loom::model(|| {
            let set = Arc::new(UtxoSet::with_options(SetOptions {
                shards: 2,
                track_muhash: false,
                ..SetOptions::default()
            }));
            let a = OutPoint::null();
            let a = OutPoint { vout: 0, ..a };
            // Pick b in the other shard than a (another output group: vout / 64 differs).
            let b = (1..64)
                .map(|group| OutPoint {
                    vout: group * 64,
                    ..a
                })
                .find(|b| set.shard_of(&Key::of(b)) != set.shard_of(&Key::of(&a)))
                .expect("some vout lands in the other shard");
            set.insert(a, coin(5));
            let writer = {
                let set = Arc::clone(&set);
                loom::thread::spawn(move || {
                    let changes = ChangeSet {
                        created: vec![(b, coin(5))],
                        spent: vec![(a, coin(5))],
                    };
                    set.commit_fresh(&changes, None);
                })
            };
            let saw_a = set.get(&a).is_some();
            let saw_b = set.get(&b).is_some();
            assert!(saw_a || saw_b, "the coin vanished mid-commit");
            writer.join().expect("writer");
            assert_eq!(set.len(), 1);
            assert_eq!(set.stats().txouts, 1);
        });
    }

    /// Statistics and the best block change together, once per block.
    #[test]
    fn loom_stats_and_best_block_are_published_together() {
        loom::model(|| {
            let set = Arc::new(UtxoSet::with_options(SetOptions {
                shards: 1,
                track_muhash: false,
                ..SetOptions::default()
            }));
            let hash = bitcoin::BlockHash::from_byte_array([1; 32]);
            let writer = {
                let set = Arc::clone(&set);
                loom::thread::spawn(move || {
                    let changes = ChangeSet {
                        created: vec![(OutPoint::null(), coin(1))],
                        spent: vec![],
                    };
                    set.commit_fresh(&changes, Some((hash, 1)));
                })
            };
            let summary = lock(&set.summary);
            let consistent = (summary.best.is_some()) == (summary.stats.txouts == 1);
            drop(summary);
            assert!(consistent);
            writer.join().expect("writer");
        });
    }
}
