//! [`Store`]: the WAL in front of redb. Blocks are logged (group commit), kept in an in-memory
//! overlay until a checkpoint folds them into redb in one write transaction; recovery on open
//! replays the log after redb's applied sequence number.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;

use bitcoin::hashes::Hash;
use bitcoin::{BlockHash, Network, OutPoint};
use redb::{ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};
use utxo_core::compress::{decode_coin, encode_coin};
use utxo_core::muhash::MuHash3072;
use utxo_core::{BlockUndo, ChangeSet, Coin, CoinStore, FlushBatch, UtxoStats};

use crate::error::{FrameError, SnapshotError, StoreError};
use crate::fs::{DirIo, MARKER_FILE, StoreIo};
use crate::record::{BlockEntry, Payload, RawCoin, RawOutPoint, Tip};
use crate::wal::{self, DiscardedTail, WalWriter};
use crate::{IMPORT_CHUNK_COINS_MAX, STORE_FORMAT_VERSION, UNDO_DEPTH_DEFAULT, UNDO_DEPTH_MAX};

pub(crate) const COINS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("coins");
pub(crate) const UNDO: TableDefinition<u32, &[u8]> = TableDefinition::new("undo");
pub(crate) const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

const META_FORMAT: &str = "format_version";
const META_NETWORK: &str = "network";
const META_APPLIED: &str = "applied_seq";
const META_TIP: &str = "tip";
const META_STATS: &str = "stats";
/// Set (to the snapshot's tip) by the first transaction of a chunked snapshot import and removed
/// by its last one: while present, the coins table holds a partial import.
pub(crate) const META_IMPORTING: &str = "import_in_progress";
/// The tip and commitment root of the snapshot (format version 2) the store was loaded from.
const META_SNAPSHOT_ROOT: &str = "snapshot_root";
const STATS_LEN: usize = 24 + 768;

/// How a [`Store`] behaves. `StoreOptions::new(network)` gives the defaults.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct StoreOptions {
    /// Network the datadir belongs to (checked on every open).
    pub network: Network,
    /// Blocks whose undo data is kept (reorgs deeper than this need a resync). Default 288.
    pub undo_depth: u32,
    /// A WAL segment is closed and a new one started once it holds this many bytes.
    pub segment_bytes: u64,
    /// Group commit: `append_block` syncs by itself once this many records are pending.
    pub group_commit_records: usize,
    /// Group commit: `append_block` syncs by itself once this many bytes are pending.
    pub group_commit_bytes: usize,
    /// `commit_pending` checkpoints into redb once the WAL holds this many bytes.
    pub checkpoint_wal_bytes: u64,
    /// redb's page cache.
    pub redb_cache_bytes: usize,
    /// Keep the MuHash3072 of the set in [`Store::stats`] (default true). Costs a 3072-bit
    /// multiplication per coin change; turn it off when the caller's `UtxoSet` already keeps it.
    /// Turning it on again recomputes it from the coins once, on open.
    pub track_muhash: bool,
    /// Snapshot imports commit the coins in redb write transactions of at most this many coins
    /// (constant memory); see [`Store::import_snapshot`]. Default and maximum
    /// [`IMPORT_CHUNK_COINS_MAX`]; at least 1.
    pub import_chunk_coins: usize,
}

impl StoreOptions {
    /// Defaults for `network`.
    pub fn new(network: Network) -> StoreOptions {
        StoreOptions {
            network,
            undo_depth: UNDO_DEPTH_DEFAULT,
            segment_bytes: 64 << 20,
            group_commit_records: 256,
            group_commit_bytes: 8 << 20,
            checkpoint_wal_bytes: 128 << 20,
            redb_cache_bytes: 64 << 20,
            track_muhash: true,
            import_chunk_coins: IMPORT_CHUNK_COINS_MAX,
        }
    }
    /// Sets [`StoreOptions::import_chunk_coins`] (clamped to `1..=`[`IMPORT_CHUNK_COINS_MAX`]).
    pub fn import_chunk_coins(mut self, coins: usize) -> Self {
        self.import_chunk_coins = coins.clamp(1, IMPORT_CHUNK_COINS_MAX);
        self
    }
    /// Sets [`StoreOptions::track_muhash`].
    pub fn track_muhash(mut self, on: bool) -> Self {
        self.track_muhash = on;
        self
    }
    /// Sets [`StoreOptions::undo_depth`] (clamped to [`UNDO_DEPTH_MAX`]).
    pub fn undo_depth(mut self, depth: u32) -> Self {
        self.undo_depth = depth.min(UNDO_DEPTH_MAX);
        self
    }
    /// Sets [`StoreOptions::checkpoint_wal_bytes`].
    pub fn checkpoint_wal_bytes(mut self, bytes: u64) -> Self {
        self.checkpoint_wal_bytes = bytes;
        self
    }
    /// Sets [`StoreOptions::segment_bytes`].
    pub fn segment_bytes(mut self, bytes: u64) -> Self {
        self.segment_bytes = bytes;
        self
    }
    /// Sets both group-commit thresholds (records, bytes).
    pub fn group_commit(mut self, records: usize, bytes: usize) -> Self {
        self.group_commit_records = records.max(1);
        self.group_commit_bytes = bytes;
        self
    }
}

/// One block to log: its place in the chain, its net coin changes and its undo data.
#[derive(Debug, Clone, Copy)]
pub struct BlockRecord<'a> {
    /// Height of the block.
    pub height: u32,
    /// Its hash.
    pub hash: BlockHash,
    /// Its parent's hash (must be the store's tip, unless the store is empty).
    pub prev_hash: BlockHash,
    /// The block's net effect on the set.
    pub changes: &'a ChangeSet,
    /// The undo data `apply_block` returned.
    pub undo: &'a BlockUndo,
    /// The commitment root after the block, if the Merkle layer computes one.
    pub commitment_root: Option<[u8; 32]>,
}

/// A stored block (for reorgs): what [`Store::undo_for`] and [`Store::disconnect_tip`] return.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredBlock {
    /// Height of the block.
    pub height: u32,
    /// Its hash.
    pub hash: BlockHash,
    /// Its parent's hash.
    pub prev_hash: BlockHash,
    /// Its net changes.
    pub changes: ChangeSet,
    /// Its undo data (for `UtxoSet::disconnect_block`).
    pub undo: BlockUndo,
    /// The commitment root logged with it.
    pub commitment_root: Option<[u8; 32]>,
}

/// Receipt for a logged record: durable once [`Store::is_durable`] says so (after a group commit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub struct Ack {
    /// WAL sequence number of the record.
    pub seq: u64,
    /// Height the tip has after the record.
    pub height: Option<u32>,
}

/// What [`Store::open`] found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecoveryReport {
    /// Sequence number redb had applied before the replay.
    pub applied_seq: u64,
    /// WAL records replayed on top of redb.
    pub replayed_records: u64,
    /// Their bytes.
    pub replayed_bytes: u64,
    /// A torn or corrupt last record that was discarded (it was never acknowledged).
    pub discarded_tail: Option<DiscardedTail>,
    /// WAL segment files folded into redb and removed.
    pub segments_removed: usize,
    /// Tip after recovery.
    pub tip: Option<Tip>,
    /// A snapshot import had been interrupted (crash, or an error whose cleanup failed): its
    /// partial coins were found under the `import_in_progress` marker and wiped, leaving the
    /// store empty. Holds the number of coins removed.
    pub wiped_import_coins: Option<u64>,
}

/// What one checkpoint did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CheckpointReport {
    /// Coins written or deleted in redb.
    pub coin_writes: u64,
    /// Sequence number now applied in redb.
    pub applied_seq: u64,
    /// Segment files removed.
    pub segments_removed: usize,
}

/// One coin's change since the last checkpoint.
#[derive(Debug, Clone)]
enum Slot {
    /// Created since the checkpoint and known absent from redb (Core's FRESH): deleting it just
    /// forgets it, so coins created and spent between two checkpoints never touch redb.
    Fresh(RawCoin),
    /// Written: redb gets this value.
    Put(RawCoin),
    /// Deleted: redb loses the key.
    Deleted,
}

impl Slot {
    fn coin(&self) -> Option<&RawCoin> {
        match self {
            Slot::Fresh(c) | Slot::Put(c) => Some(c),
            Slot::Deleted => None,
        }
    }
}

/// The durable UTXO store. Single writer (`&mut self`); wrap it in a mutex to share.
///
/// ```
/// use bitcoin::{BlockHash, Network, hashes::Hash};
/// use utxo_core::{BlockUndo, ChangeSet};
/// use wal_store::{BlockRecord, Store, StoreOptions};
///
/// let dir = tempfile::tempdir()?;
/// let (mut store, report) = Store::open(dir.path(), StoreOptions::new(Network::Regtest))?;
/// assert_eq!(report.replayed_records, 0);
/// let changes = ChangeSet::default();
/// let undo = BlockUndo::default();
/// let hash = BlockHash::from_byte_array([1; 32]);
/// let ack = store.append_block(&BlockRecord {
///     height: 0, hash, prev_hash: BlockHash::all_zeros(),
///     changes: &changes, undo: &undo, commitment_root: None,
/// })?;
/// assert!(!store.is_durable(ack));
/// store.commit_pending()?; // one fsync for everything appended so far
/// assert!(store.is_durable(ack));
/// assert_eq!(store.tip().map(|t| t.height), Some(0));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Store {
    io: Arc<dyn StoreIo>,
    pub(crate) db: redb::Database,
    options: StoreOptions,
    wal: WalWriter,
    /// Coin changes logged since the last checkpoint.
    overlay: HashMap<RawOutPoint, Slot>,
    /// Undo entries logged since the last checkpoint (`None` = disconnected).
    undo_overlay: BTreeMap<u32, Option<BlockEntry>>,
    tip: Option<Tip>,
    /// The tip as of the last group commit (what a crash now would recover at least).
    durable_tip: Option<Tip>,
    stats: UtxoStats,
    applied_seq: u64,
    poisoned: Option<String>,
    report: RecoveryReport,
}

impl Store {
    /// Opens (or creates) the store in `dir` and recovers it: replays WAL records newer than
    /// redb's applied sequence, discards a torn or corrupt last record, folds the result into redb.
    ///
    /// # Errors
    /// [`StoreError::NewerFormat`], [`StoreError::NetworkMismatch`], [`StoreError::CorruptWal`]
    /// (corruption before the tail), [`StoreError::WalGap`], I/O and redb errors.
    pub fn open(
        dir: impl AsRef<Path>,
        options: StoreOptions,
    ) -> Result<(Store, RecoveryReport), StoreError> {
        let io = DirIo::new(dir).map_err(StoreError::io("create datadir"))?;
        Store::open_with_io(Arc::new(io), options)
    }

    /// [`Store::open`] over any [`StoreIo`] (e.g. the simulated disk of [`crate::sim`]).
    ///
    /// # Errors
    /// As [`Store::open`].
    pub fn open_with_io(
        io: Arc<dyn StoreIo>,
        options: StoreOptions,
    ) -> Result<(Store, RecoveryReport), StoreError> {
        let initialized = io
            .list()
            .map_err(StoreError::io("list datadir"))?
            .iter()
            .any(|n| n == MARKER_FILE);
        if !initialized {
            // Remains of an interrupted first open (no marker was synced): start over.
            io.reset_redb().map_err(StoreError::io("reset redb"))?;
        }
        let mut builder = redb::Builder::new();
        builder.set_cache_size(options.redb_cache_bytes);
        let db = io
            .open_redb(&builder)
            .map_err(StoreError::redb("open redb"))?;
        let (applied_seq, tip, mut stats) = init_meta(&db, options.network)?;
        // A snapshot import that never finished: its coins are wiped before anything reads them
        // (it wrote no tip, stats or applied_seq, so those read above stay valid).
        let wiped_import_coins = if import_marker_set(&db)? {
            Some(wipe_import(&db)?)
        } else {
            None
        };
        if !options.track_muhash {
            stats.muhash = None;
        } else if stats.muhash.is_none() {
            stats = stats_from_db(&db)?;
        }
        if !initialized {
            let mut marker = io
                .create(MARKER_FILE)
                .map_err(StoreError::io("create marker"))?;
            marker
                .append(format!("wal-store {STORE_FORMAT_VERSION}\n").as_bytes())
                .map_err(StoreError::io("write marker"))?;
            marker.sync().map_err(StoreError::io("sync marker"))?;
            io.sync_dir().map_err(StoreError::io("sync directory"))?;
        }
        // A placeholder writer; replaced after the scan. It never writes.
        let mut store = Store {
            io: Arc::clone(&io),
            db,
            options,
            wal: WalWriter::placeholder(Arc::clone(&io)),
            overlay: HashMap::new(),
            undo_overlay: BTreeMap::new(),
            tip,
            durable_tip: tip,
            stats,
            applied_seq,
            poisoned: None,
            report: RecoveryReport::default(),
        };
        let outcome = wal::scan(io.as_ref(), applied_seq, |seq, payload| {
            let p: Payload = postcard::from_bytes(payload)
                .map_err(|e| wal_payload_error(format!("record {seq}"), 0, &e))?;
            store.apply_payload(p)
        })?;
        let last_seq = applied_seq.max(outcome.last_seq);
        // Fold everything replayed into redb, then drop every old segment (a discarded tail must
        // never become a non-last segment), then start a fresh segment.
        if outcome.replayed > 0 {
            store.write_checkpoint(last_seq)?;
        }
        for name in &outcome.segments {
            io.remove(name)
                .map_err(StoreError::io("remove wal segment"))?;
        }
        if !outcome.segments.is_empty() {
            io.sync_dir().map_err(StoreError::io("sync directory"))?;
        }
        store.wal = WalWriter::create(Arc::clone(&io), last_seq + 1)?;
        store.report = RecoveryReport {
            applied_seq,
            replayed_records: outcome.replayed,
            replayed_bytes: outcome.replayed_bytes,
            discarded_tail: outcome.discarded,
            segments_removed: outcome.segments.len(),
            tip: store.tip,
            wiped_import_coins,
        };
        store.durable_tip = store.tip;
        let report = store.report.clone();
        Ok((store, report))
    }

    /// The report of the recovery done when this handle was opened.
    pub fn recovery_report(&self) -> &RecoveryReport {
        &self.report
    }

    /// The network this datadir belongs to.
    pub fn network(&self) -> Network {
        self.options.network
    }

    /// The tip after every record logged so far (durable or not).
    pub fn tip(&self) -> Option<Tip> {
        self.tip
    }

    /// Bitcoin Core-compatible statistics of the set at [`Store::tip`] (txouts, bogosize,
    /// total_amount, MuHash), kept incrementally from block and disconnect records: O(1).
    /// Raw [`CoinStore::write`] batches do not change them.
    pub fn stats(&self) -> &UtxoStats {
        &self.stats
    }

    /// The tip as of the last group commit: every block up to it is acknowledged and survives a
    /// crash (report heights as durable from here).
    pub fn durable_tip(&self) -> Option<Tip> {
        self.durable_tip
    }

    /// Highest WAL sequence number that is durable.
    pub fn durable_seq(&self) -> u64 {
        self.wal.durable_seq
    }

    /// Whether the record behind `ack` is durable (synced).
    pub fn is_durable(&self, ack: Ack) -> bool {
        ack.seq <= self.wal.durable_seq
    }

    /// Records appended but not yet synced.
    pub fn pending_records(&self) -> usize {
        self.wal.buf_records
    }

    fn check_writable(&self) -> Result<(), StoreError> {
        match &self.poisoned {
            Some(first_error) => Err(StoreError::Poisoned {
                first_error: first_error.clone(),
            }),
            None => Ok(()),
        }
    }

    fn poison_on<T>(&mut self, r: Result<T, StoreError>) -> Result<T, StoreError> {
        if let Err(e) = &r
            && e.poisons()
            && self.poisoned.is_none()
        {
            self.poisoned = Some(e.to_string());
        }
        r
    }

    /// Logs a block on top of the tip. The block is *acknowledged* only once
    /// [`Store::is_durable`] holds for the returned [`Ack`]: call [`Store::commit_pending`] (one
    /// sync for every record appended so far) before reporting it durable. The store syncs by
    /// itself when the group-commit thresholds of [`StoreOptions`] are reached.
    ///
    /// # Errors
    /// [`StoreError::NotOnTip`] if the block does not extend the tip, [`StoreError::RecordTooLarge`],
    /// [`StoreError::Poisoned`] after an earlier I/O error, I/O errors (which poison the store).
    pub fn append_block(&mut self, block: &BlockRecord<'_>) -> Result<Ack, StoreError> {
        self.check_writable()?;
        if let Some(tip) = self.tip {
            if block.height != tip.height.wrapping_add(1) {
                return Err(StoreError::NotOnTip {
                    height: block.height,
                    reason: "height is not tip + 1",
                });
            }
            if block.prev_hash != tip.hash {
                return Err(StoreError::NotOnTip {
                    height: block.height,
                    reason: "parent is not the tip",
                });
            }
        }
        let mut undo = Vec::new();
        block.undo.encode(&mut undo);
        let entry = BlockEntry {
            height: block.height,
            hash: block.hash.to_byte_array(),
            prev_hash: block.prev_hash.to_byte_array(),
            created: raw_pairs(&block.changes.created),
            spent: raw_pairs(&block.changes.spent),
            undo,
            commitment_root: block.commitment_root,
        };
        self.log(Payload::Block(entry))
    }

    /// Logs and applies one payload; syncs when the group-commit thresholds are reached.
    fn log(&mut self, payload: Payload) -> Result<Ack, StoreError> {
        let bytes = postcard::to_stdvec(&payload)
            .map_err(|e| wal_payload_error(self.wal.name.clone(), self.wal.seg_len, &e))?;
        let r = self.wal.append(&bytes);
        let seq = self.poison_on(r)?;
        let r = self.apply_payload(payload);
        self.poison_on(r)?;
        if self.wal.buf_records >= self.options.group_commit_records
            || self.wal.pending_bytes() >= self.options.group_commit_bytes
        {
            self.commit_pending()?;
        }
        Ok(Ack {
            seq,
            height: self.tip.map(|t| t.height),
        })
    }

    /// Group commit: writes every pending record and syncs once; returns the durable sequence
    /// number. Rotates the segment and checkpoints when their thresholds are reached.
    ///
    /// # Errors
    /// [`StoreError::Poisoned`], or the I/O error that now poisons the store.
    pub fn commit_pending(&mut self) -> Result<u64, StoreError> {
        self.check_writable()?;
        let r = self.wal.commit();
        let durable = self.poison_on(r)?;
        self.durable_tip = self.tip;
        if self.wal.bytes_since_checkpoint >= self.options.checkpoint_wal_bytes {
            self.checkpoint()?;
        } else if self.wal.seg_len >= self.options.segment_bytes {
            let r = self.wal.rotate();
            self.poison_on(r)?;
        }
        Ok(durable)
    }

    /// Folds every logged record into redb in one write transaction (recording the applied
    /// sequence number there), prunes undo data older than `undo_depth`, then deletes the WAL
    /// segments that are fully applied.
    ///
    /// # Errors
    /// [`StoreError::Poisoned`], or the I/O / redb error that now poisons the store.
    pub fn checkpoint(&mut self) -> Result<CheckpointReport, StoreError> {
        self.check_writable()?;
        let r = self.checkpoint_inner();
        self.poison_on(r)
    }

    fn checkpoint_inner(&mut self) -> Result<CheckpointReport, StoreError> {
        let durable = self.wal.commit()?;
        self.durable_tip = self.tip;
        let coin_writes = self.overlay.len() as u64;
        self.write_checkpoint(durable)?;
        // New segment first, then remove the old ones: the log always has a live segment.
        let old: Vec<String> = self
            .io
            .list()
            .map_err(StoreError::io("list datadir"))?
            .into_iter()
            .filter(|n| wal::parse_segment_name(n).is_some())
            .collect();
        self.wal.rotate()?;
        self.wal.bytes_since_checkpoint = 0;
        let mut removed = 0;
        for name in old.iter().filter(|n| **n != self.wal.name) {
            self.io
                .remove(name)
                .map_err(StoreError::io("remove wal segment"))?;
            removed += 1;
        }
        self.io
            .sync_dir()
            .map_err(StoreError::io("sync directory"))?;
        Ok(CheckpointReport {
            coin_writes,
            applied_seq: durable,
            segments_removed: removed,
        })
    }

    /// One redb write transaction: overlay → coins, undo overlay → undo (pruned), meta.
    fn write_checkpoint(&mut self, applied_seq: u64) -> Result<(), StoreError> {
        let txn = self
            .db
            .begin_write()
            .map_err(StoreError::redb("begin checkpoint"))?;
        {
            let mut coins = txn
                .open_table(COINS)
                .map_err(StoreError::redb("open coins"))?;
            let mut buf = Vec::with_capacity(64);
            // In key order: sequential B-tree access.
            let mut entries: Vec<(&RawOutPoint, &Slot)> = self.overlay.iter().collect();
            entries.sort_unstable_by_key(|(op, _)| **op);
            for (op, slot) in entries {
                let key = op.key();
                match slot.coin() {
                    Some(c) => {
                        buf.clear();
                        encode_coin(&Coin::from(c), &mut buf);
                        coins
                            .insert(&key[..], &buf[..])
                            .map_err(StoreError::redb("write coin"))?;
                    }
                    None => {
                        coins
                            .remove(&key[..])
                            .map_err(StoreError::redb("delete coin"))?;
                    }
                }
            }
            let mut undo = txn
                .open_table(UNDO)
                .map_err(StoreError::redb("open undo"))?;
            for (height, entry) in &self.undo_overlay {
                match entry {
                    Some(e) => {
                        let bytes = postcard::to_stdvec(e).map_err(corrupt_db("undo entry"))?;
                        undo.insert(*height, &bytes[..])
                            .map_err(StoreError::redb("write undo"))?;
                    }
                    None => {
                        undo.remove(*height)
                            .map_err(StoreError::redb("delete undo"))?;
                    }
                }
            }
            if let Some(tip) = self.tip
                && tip.height >= self.options.undo_depth
            {
                let cutoff = tip.height - self.options.undo_depth;
                undo.retain_in(..=cutoff, |_, _| false)
                    .map_err(StoreError::redb("prune undo"))?;
            }
            let mut meta = txn
                .open_table(META)
                .map_err(StoreError::redb("open meta"))?;
            write_state_meta(&mut meta, applied_seq, &self.stats, self.tip)?;
        }
        txn.commit()
            .map_err(StoreError::redb("commit checkpoint"))?;
        self.overlay.clear();
        self.undo_overlay.clear();
        self.applied_seq = applied_seq;
        Ok(())
    }

    /// Applies a logged payload to the in-memory overlay (used by logging and by replay alike).
    fn apply_payload(&mut self, payload: Payload) -> Result<(), StoreError> {
        let payload = match payload {
            Payload::Block(entry) => {
                let mut buf = Vec::with_capacity(128);
                self.remove_coins(&entry.spent, &mut buf);
                // A coinbase may overwrite an unspent duplicate (the BIP30 exceptions): never
                // fresh. Other new coins cannot exist unspent in redb (BIP30).
                self.add_coins(&entry.created, |coin| coin.code & 1 == 0, &mut buf);
                self.tip = Some(Tip {
                    height: entry.height,
                    hash: BlockHash::from_byte_array(entry.hash),
                });
                self.undo_overlay.insert(entry.height, Some(entry));
                return Ok(());
            }
            other => other,
        };
        match &payload {
            Payload::Block(_) => {}
            Payload::Disconnect { height, hash } => {
                let entry = self
                    .undo_entry(*height)?
                    .filter(|e| e.hash == *hash)
                    .ok_or(StoreError::CorruptDb {
                        what: "undo entry",
                        reason: format!("disconnect of height {height} without its undo data"),
                    })?;
                let mut buf = Vec::with_capacity(128);
                self.remove_coins(&entry.created, &mut buf);
                self.add_coins(&entry.spent, |_| false, &mut buf);
                self.undo_overlay.insert(*height, None);
                self.tip = height.checked_sub(1).map(|h| Tip {
                    height: h,
                    hash: BlockHash::from_byte_array(entry.prev_hash),
                });
            }
            Payload::Batch {
                upserts,
                deletes,
                best_block,
            } => {
                // Statistics follow raw batches too: the previous value of each touched coin
                // is read (overlay or redb) before it is replaced.
                let mut buf = Vec::with_capacity(128);
                for op in deletes {
                    let outpoint = OutPoint::from(*op);
                    if let Some(old) = self.get_coin(&outpoint)? {
                        self.stats.remove_coin(&outpoint, &old, &mut buf);
                    }
                    self.delete_coin(*op);
                }
                for (op, coin) in upserts {
                    let outpoint = OutPoint::from(*op);
                    if let Some(old) = self.get_coin(&outpoint)? {
                        self.stats.remove_coin(&outpoint, &old, &mut buf);
                    }
                    self.stats.add_coin(&outpoint, &Coin::from(coin), &mut buf);
                    self.put_coin(*op, coin.clone(), false);
                }
                if let Some((hash, height)) = best_block {
                    self.tip = Some(Tip {
                        height: *height,
                        hash: BlockHash::from_byte_array(*hash),
                    });
                }
            }
        }
        Ok(())
    }

    /// Records a coin write; `fresh` if the key is known absent from redb when not in the overlay.
    fn put_coin(&mut self, op: RawOutPoint, coin: RawCoin, fresh: bool) {
        let slot = match self.overlay.get(&op) {
            Some(Slot::Fresh(_)) => Slot::Fresh(coin),
            None if fresh => Slot::Fresh(coin),
            _ => Slot::Put(coin),
        };
        self.overlay.insert(op, slot);
    }

    /// Records a coin deletion (a fresh coin is simply forgotten).
    fn delete_coin(&mut self, op: RawOutPoint) {
        if matches!(self.overlay.get(&op), Some(Slot::Fresh(_))) {
            self.overlay.remove(&op);
        } else {
            self.overlay.insert(op, Slot::Deleted);
        }
    }

    /// Adds `coins` to the overlay and the statistics; `fresh` says, per coin, whether it is known
    /// absent from redb (see [`Store::put_coin`]).
    fn add_coins(
        &mut self,
        coins: &[(RawOutPoint, RawCoin)],
        fresh: impl Fn(&RawCoin) -> bool,
        buf: &mut Vec<u8>,
    ) {
        for (op, coin) in coins {
            self.put_coin(*op, coin.clone(), fresh(coin));
            self.stats
                .add_coin(&OutPoint::from(*op), &Coin::from(coin), buf);
        }
    }

    /// Removes `coins` from the overlay and the statistics.
    fn remove_coins(&mut self, coins: &[(RawOutPoint, RawCoin)], buf: &mut Vec<u8>) {
        for (op, coin) in coins {
            self.delete_coin(*op);
            self.stats
                .remove_coin(&OutPoint::from(*op), &Coin::from(coin), buf);
        }
    }

    fn undo_entry(&self, height: u32) -> Result<Option<BlockEntry>, StoreError> {
        if let Some(e) = self.undo_overlay.get(&height) {
            return Ok(e.clone());
        }
        let table = read_table(&self.db, UNDO, "open undo")?;
        let Some(v) = table.get(height).map_err(StoreError::redb("read undo"))? else {
            return Ok(None);
        };
        postcard::from_bytes(v.value())
            .map(Some)
            .map_err(corrupt_db("undo entry"))
    }

    /// The stored block at `height` with its undo data, if still kept (the last `undo_depth`).
    ///
    /// # Errors
    /// redb errors, [`StoreError::CorruptDb`] if the stored bytes do not decode.
    pub fn undo_for(&self, height: u32) -> Result<Option<StoredBlock>, StoreError> {
        self.undo_entry(height)?.map(stored_block).transpose()
    }

    /// Disconnects the tip block using its stored undo data (logged like a block; durable after
    /// the next group commit). Returns the disconnected block, whose `undo` feeds
    /// `UtxoSet::disconnect_block`.
    ///
    /// # Errors
    /// [`StoreError::Empty`], [`StoreError::UndoUnavailable`] if the tip's undo was pruned or never
    /// stored (e.g. the tip came from a snapshot), [`StoreError::Poisoned`], I/O errors.
    pub fn disconnect_tip(&mut self) -> Result<(Ack, StoredBlock), StoreError> {
        self.check_writable()?;
        let tip = self.tip.ok_or(StoreError::Empty)?;
        let entry = self
            .undo_entry(tip.height)?
            .filter(|e| e.hash == tip.hash.to_byte_array())
            .ok_or(StoreError::UndoUnavailable { height: tip.height })?;
        let stored = stored_block(entry)?;
        let ack = self.log(Payload::Disconnect {
            height: tip.height,
            hash: tip.hash.to_byte_array(),
        })?;
        Ok((ack, stored))
    }

    /// Disconnects blocks until the tip is at `height`.
    ///
    /// # Errors
    /// As [`Store::disconnect_tip`]; blocks disconnected before an error stay disconnected.
    pub fn rollback_to(&mut self, height: u32) -> Result<Vec<StoredBlock>, StoreError> {
        let mut out = Vec::new();
        while self.tip.is_some_and(|t| t.height > height) {
            out.push(self.disconnect_tip()?.1);
        }
        Ok(out)
    }

    /// The coin at `outpoint`, as of every record logged so far.
    ///
    /// # Errors
    /// redb errors, [`StoreError::CorruptDb`].
    pub fn get_coin(&self, outpoint: &OutPoint) -> Result<Option<Coin>, StoreError> {
        let raw = RawOutPoint::from(outpoint);
        if let Some(slot) = self.overlay.get(&raw) {
            return Ok(slot.coin().map(Coin::from));
        }
        let table = read_table(&self.db, COINS, "open coins")?;
        let Some(v) = table
            .get(&raw.key()[..])
            .map_err(StoreError::redb("read coin"))?
        else {
            return Ok(None);
        };
        decode_coin(&mut v.value())
            .map(Some)
            .map_err(corrupt_db("coin"))
    }

    /// Checkpoints, then calls `f` for every coin in key order (txid raw bytes, then vout).
    /// Constant memory: coins are streamed from one redb read transaction.
    ///
    /// # Errors
    /// Checkpoint errors, redb errors, [`StoreError::CorruptDb`], or `f`'s error.
    pub fn for_each_coin(
        &mut self,
        mut f: impl FnMut(OutPoint, Coin) -> Result<(), StoreError>,
    ) -> Result<u64, StoreError> {
        let mut n = 0u64;
        for item in self.coin_iter()? {
            let (op, coin) = item?;
            f(op, coin)?;
            n += 1;
        }
        Ok(n)
    }

    /// Streams every stored coin, in key order, into `write` (a snapshot writer); a read error stops
    /// the stream and is returned in place of `write`'s result.
    pub(crate) fn stream_coins<T>(
        &mut self,
        write: impl FnOnce(&mut dyn Iterator<Item = (OutPoint, Coin)>) -> Result<T, SnapshotError>,
    ) -> Result<T, StoreError> {
        let mut err = None;
        let mut coins = self.coin_iter()?.map_while(|r| match r {
            Ok(c) => Some(c),
            Err(e) => {
                err = Some(e);
                None
            }
        });
        let written = write(&mut coins);
        drop(coins);
        if let Some(e) = err {
            return Err(e);
        }
        Ok(written?)
    }

    /// Checkpoints, then returns an iterator over every coin in key order (txid raw bytes, then
    /// vout), streamed from one redb read transaction (constant memory).
    ///
    /// # Errors
    /// Checkpoint and redb errors.
    pub fn coin_iter(&mut self) -> Result<CoinIter, StoreError> {
        self.checkpoint_if_dirty()?;
        coins_in(&self.db)
    }

    /// Checkpoints if anything was logged since the last checkpoint, so that redb holds everything.
    fn checkpoint_if_dirty(&mut self) -> Result<(), StoreError> {
        if !self.overlay.is_empty() || !self.undo_overlay.is_empty() {
            self.checkpoint()?;
        }
        Ok(())
    }

    /// Number of coins (checkpoints first so redb holds everything).
    ///
    /// # Errors
    /// Checkpoint and redb errors.
    pub fn coin_count(&mut self) -> Result<u64, StoreError> {
        self.checkpoint_if_dirty()?;
        read_table(&self.db, COINS, "open coins")?
            .len()
            .map_err(StoreError::redb("count coins"))
    }

    /// Loads coins into an empty store and sets the tip, all or nothing as seen by users of the
    /// store, in constant memory: the coins are committed in redb write transactions of at most
    /// [`StoreOptions::import_chunk_coins`] coins. The first transaction sets the meta key
    /// `import_in_progress`; the last one writes tip, stats and `applied_seq` and removes it.
    /// `coins` yields `Err` to abort: the chunks already committed are then wiped before the error
    /// is returned; if that cleanup fails too (or the process dies mid-import), the marker stays
    /// and the next [`Store::open`] wipes them (see [`RecoveryReport::wiped_import_coins`]).
    pub(crate) fn bulk_load(
        &mut self,
        tip: Tip,
        commitment_root: Option<[u8; 32]>,
        coins: &mut dyn Iterator<Item = Result<(OutPoint, Coin), StoreError>>,
    ) -> Result<u64, StoreError> {
        self.check_writable()?;
        if let Some(t) = self.tip {
            return Err(StoreError::NotEmpty { height: t.height });
        }
        if self.coin_count()? != 0 {
            return Err(StoreError::NotEmpty { height: 0 });
        }
        let chunk = self
            .options
            .import_chunk_coins
            .clamp(1, IMPORT_CHUNK_COINS_MAX);
        let mut load = ChunkedLoad {
            stats: UtxoStats::new(self.options.track_muhash),
            coins: 0,
            commits_attempted: 0,
        };
        let applied = self.wal.durable_seq;
        match load.run(&self.db, tip, commitment_root, applied, chunk, coins) {
            Ok(()) => {
                self.tip = Some(tip);
                self.durable_tip = Some(tip);
                self.stats = load.stats;
                Ok(load.coins)
            }
            Err(e) => {
                if load.commits_attempted > 0
                    && let Err(wipe) = wipe_import(&self.db)
                {
                    // The marker stays in redb: the next open wipes the partial import. Until
                    // then this handle refuses to write (its coins table is not empty).
                    self.poisoned
                        .get_or_insert_with(|| format!("wiping a failed import: {wipe}"));
                }
                self.poison_on(Err(e))
            }
        }
    }

    /// The block and commitment root of the snapshot this store was loaded from, when it was
    /// loaded from one that carries a root (our format version 2); the root is the caller's
    /// (opaque here), verified against the coins only by [`Store::import_snapshot_checked`]. Kept
    /// after later blocks: compare the block with [`Store::tip`] before relying on the root.
    ///
    /// # Errors
    /// redb errors, [`StoreError::CorruptDb`] for a malformed value.
    pub fn snapshot_root(&self) -> Result<Option<(Tip, [u8; 32])>, StoreError> {
        let meta = read_table(&self.db, META, "open meta")?;
        let Some(v) = meta
            .get(META_SNAPSHOT_ROOT)
            .map_err(StoreError::redb("read meta"))?
        else {
            return Ok(None);
        };
        let v = v.value();
        let bad = || StoreError::CorruptDb {
            what: "snapshot root",
            reason: format!("{} bytes", v.len()),
        };
        if v.len() != 36 + 32 {
            return Err(bad());
        }
        let tip = Tip::decode(&v[..36]).ok_or_else(bad)?;
        let mut root = [0u8; 32];
        root.copy_from_slice(&v[36..]);
        Ok(Some((tip, root)))
    }

    /// Makes everything durable and closes the store.
    ///
    /// # Errors
    /// The I/O error of the final sync.
    pub fn close(mut self) -> Result<(), StoreError> {
        if self.poisoned.is_none() {
            self.commit_pending()?;
        }
        Ok(())
    }
}

impl CoinStore for Store {
    type Error = StoreError;

    fn get(&self, outpoint: &OutPoint) -> Result<Option<Coin>, StoreError> {
        self.get_coin(outpoint)
    }

    /// Logs the batch as one WAL record and syncs before returning (a flush is durable).
    fn write(&mut self, batch: FlushBatch) -> Result<(), StoreError> {
        self.check_writable()?;
        let payload = Payload::Batch {
            upserts: raw_pairs(&batch.upserts),
            deletes: batch.deletes.iter().map(RawOutPoint::from).collect(),
            best_block: batch.best_block.map(|(h, n)| (h.to_byte_array(), n)),
        };
        let _ack = self.log(payload)?;
        self.commit_pending()?;
        Ok(())
    }
}

/// Iterator over the stored coins, from [`Store::coin_iter`].
pub struct CoinIter {
    range: redb::Range<'static, &'static [u8], &'static [u8]>,
}

impl std::fmt::Debug for CoinIter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CoinIter").finish_non_exhaustive()
    }
}

impl Iterator for CoinIter {
    type Item = Result<(OutPoint, Coin), StoreError>;
    fn next(&mut self) -> Option<Self::Item> {
        let item = self.range.next()?;
        Some(
            item.map_err(StoreError::redb("iterate coins"))
                .and_then(|(k, v)| {
                    let op = RawOutPoint::from_key(k.value()).ok_or(StoreError::CorruptDb {
                        what: "coin key",
                        reason: format!("{} bytes", k.value().len()),
                    })?;
                    let coin = decode_coin(&mut v.value()).map_err(corrupt_db("coin"))?;
                    Ok((op.into(), coin))
                }),
        )
    }
}

fn raw_pairs(v: &[(OutPoint, Coin)]) -> Vec<(RawOutPoint, RawCoin)> {
    v.iter()
        .map(|(op, c)| (RawOutPoint::from(op), RawCoin::from(c)))
        .collect()
}

fn stored_block(e: BlockEntry) -> Result<StoredBlock, StoreError> {
    let undo = BlockUndo::decode(&mut &e.undo[..]).map_err(corrupt_db("block undo"))?;
    let conv = |v: &[(RawOutPoint, RawCoin)]| -> Vec<(OutPoint, Coin)> {
        v.iter()
            .map(|(op, c)| (OutPoint::from(*op), Coin::from(c)))
            .collect()
    };
    Ok(StoredBlock {
        height: e.height,
        hash: BlockHash::from_byte_array(e.hash),
        prev_hash: BlockHash::from_byte_array(e.prev_hash),
        changes: ChangeSet {
            created: conv(&e.created),
            spent: conv(&e.spent),
        },
        undo,
        commitment_root: e.commitment_root,
    })
}

/// State of one chunked snapshot import ([`Store::bulk_load`]).
struct ChunkedLoad {
    stats: UtxoStats,
    coins: u64,
    commits_attempted: u64,
}

impl ChunkedLoad {
    fn run(
        &mut self,
        db: &redb::Database,
        tip: Tip,
        commitment_root: Option<[u8; 32]>,
        applied: u64,
        chunk: usize,
        coins: &mut dyn Iterator<Item = Result<(OutPoint, Coin), StoreError>>,
    ) -> Result<(), StoreError> {
        let mut buf = Vec::with_capacity(64);
        loop {
            let txn = db
                .begin_write()
                .map_err(StoreError::redb("begin snapshot load"))?;
            let mut ended = false;
            {
                let mut table = txn
                    .open_table(COINS)
                    .map_err(StoreError::redb("open coins"))?;
                let mut meta = txn
                    .open_table(META)
                    .map_err(StoreError::redb("open meta"))?;
                if self.commits_attempted == 0 {
                    meta.insert(META_IMPORTING, &tip.encode()[..])
                        .map_err(StoreError::redb("write meta"))?;
                }
                let mut in_txn = 0usize;
                while in_txn < chunk {
                    let Some(item) = coins.next() else {
                        ended = true;
                        break;
                    };
                    let (op, coin) = item?; // dropping `txn` on error aborts this chunk
                    self.stats.add_coin(&op, &coin, &mut buf);
                    buf.clear();
                    encode_coin(&coin, &mut buf);
                    table
                        .insert(&RawOutPoint::from(&op).key()[..], &buf[..])
                        .map_err(StoreError::redb("write coin"))?;
                    in_txn += 1;
                    self.coins += 1;
                }
                if ended {
                    write_state_meta(&mut meta, applied, &self.stats, Some(tip))?;
                    match commitment_root {
                        Some(root) => {
                            let mut v = tip.encode().to_vec();
                            v.extend_from_slice(&root);
                            meta.insert(META_SNAPSHOT_ROOT, &v[..])
                        }
                        None => meta.remove(META_SNAPSHOT_ROOT),
                    }
                    .map_err(StoreError::redb("write meta"))?;
                    meta.remove(META_IMPORTING)
                        .map_err(StoreError::redb("write meta"))?;
                }
            }
            self.commits_attempted += 1;
            txn.commit()
                .map_err(StoreError::redb("commit snapshot load"))?;
            if ended {
                return Ok(());
            }
        }
    }
}

/// Whether the `import_in_progress` marker is set (a snapshot import did not finish).
pub(crate) fn import_marker_set(db: &redb::Database) -> Result<bool, StoreError> {
    let txn = db.begin_read().map_err(StoreError::redb("begin read"))?;
    let meta = match txn.open_table(META) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(false),
        Err(e) => return Err(StoreError::redb("open meta")(e)),
    };
    Ok(meta
        .get(META_IMPORTING)
        .map_err(StoreError::redb("read meta"))?
        .is_some())
}

/// Removes every coin and the `import_in_progress` marker in one transaction (only ever called on
/// a store that was empty before the import: no tip, no undo data). Returns the coins removed.
fn wipe_import(db: &redb::Database) -> Result<u64, StoreError> {
    let txn = db.begin_write().map_err(StoreError::redb("begin wipe"))?;
    let n = {
        let n = txn
            .open_table(COINS)
            .map_err(StoreError::redb("open coins"))?
            .len()
            .map_err(StoreError::redb("count coins"))?;
        // Dropping the table frees its pages without loading the coins.
        txn.delete_table(COINS)
            .map_err(StoreError::redb("delete coins"))?;
        txn.open_table(COINS)
            .map_err(StoreError::redb("open coins"))?;
        txn.open_table(META)
            .map_err(StoreError::redb("open meta"))?
            .remove(META_IMPORTING)
            .map_err(StoreError::redb("write meta"))?;
        n
    };
    txn.commit().map_err(StoreError::redb("commit wipe"))?;
    Ok(n)
}

/// Creates the tables on first open, checks format version and network; returns (applied, tip).
fn init_meta(
    db: &redb::Database,
    network: Network,
) -> Result<(u64, Option<Tip>, UtxoStats), StoreError> {
    let txn = db.begin_write().map_err(StoreError::redb("begin open"))?;
    let magic = network.magic().to_bytes();
    let (applied, tip, stats, fresh) = {
        txn.open_table(COINS)
            .map_err(StoreError::redb("open coins"))?;
        txn.open_table(UNDO)
            .map_err(StoreError::redb("open undo"))?;
        let mut meta = txn
            .open_table(META)
            .map_err(StoreError::redb("open meta"))?;
        let version = meta
            .get(META_FORMAT)
            .map_err(StoreError::redb("read meta"))?
            .map(|v| le_u32(v.value()));
        match version {
            None => {
                meta.insert(META_FORMAT, &STORE_FORMAT_VERSION.to_le_bytes()[..])
                    .map_err(StoreError::redb("write meta"))?;
                meta.insert(META_NETWORK, &magic[..])
                    .map_err(StoreError::redb("write meta"))?;
                (0, None, UtxoStats::new(true), true)
            }
            Some(found) => {
                let found = found.ok_or(StoreError::CorruptDb {
                    what: "format version",
                    reason: "not 4 bytes".into(),
                })?;
                if found > STORE_FORMAT_VERSION {
                    return Err(StoreError::NewerFormat {
                        what: "datadir".into(),
                        found,
                        supported: STORE_FORMAT_VERSION,
                    });
                }
                let stored = meta
                    .get(META_NETWORK)
                    .map_err(StoreError::redb("read meta"))?
                    .map(|v| v.value().to_vec())
                    .unwrap_or_default();
                if stored != magic {
                    let name = <[u8; 4]>::try_from(&stored[..])
                        .ok()
                        .and_then(|m| Network::from_magic(bitcoin::p2p::Magic::from_bytes(m)))
                        .map_or_else(|| format!("magic {stored:02x?}"), |n| n.to_string());
                    return Err(StoreError::NetworkMismatch {
                        stored: name,
                        requested: network.to_string(),
                    });
                }
                let applied = meta
                    .get(META_APPLIED)
                    .map_err(StoreError::redb("read meta"))?
                    .map(|v| le_u64(v.value()))
                    .unwrap_or(Some(0))
                    .ok_or(StoreError::CorruptDb {
                        what: "applied_seq",
                        reason: "not 8 bytes".into(),
                    })?;
                let tip = match meta.get(META_TIP).map_err(StoreError::redb("read meta"))? {
                    Some(v) => Some(Tip::decode(v.value()).ok_or(StoreError::CorruptDb {
                        what: "tip",
                        reason: "not 36 bytes".into(),
                    })?),
                    None => None,
                };
                let stats = match meta
                    .get(META_STATS)
                    .map_err(StoreError::redb("read meta"))?
                {
                    Some(v) => decode_stats(v.value()).ok_or(StoreError::CorruptDb {
                        what: "stats",
                        reason: "bad length".into(),
                    })?,
                    None => UtxoStats::new(true),
                };
                // (a store written without MuHash stores only the first 24 bytes)
                (applied, tip, stats, false)
            }
        }
    };
    if fresh {
        txn.commit().map_err(StoreError::redb("commit open"))?;
    } else {
        txn.abort().map_err(StoreError::redb("abort open"))?;
    }
    Ok((applied, tip, stats))
}

/// txouts, bogosize, total (u64 LE each), then the 768-byte MuHash state if tracked.
fn encode_stats(s: &UtxoStats) -> Vec<u8> {
    let mut out = Vec::with_capacity(STATS_LEN);
    out.extend_from_slice(&s.txouts.to_le_bytes());
    out.extend_from_slice(&s.bogosize.to_le_bytes());
    out.extend_from_slice(&s.total_amount.to_sat().to_le_bytes());
    if let Some(m) = &s.muhash {
        out.extend_from_slice(&m.to_bytes());
    }
    out
}

fn decode_stats(b: &[u8]) -> Option<UtxoStats> {
    let muhash = match b.len() {
        24 => None,
        STATS_LEN => {
            let m: &[u8; 768] = b[24..].try_into().ok()?;
            Some(MuHash3072::from_bytes(m))
        }
        _ => return None,
    };
    Some(UtxoStats {
        txouts: le_u64(&b[0..8])?,
        bogosize: le_u64(&b[8..16])?,
        total_amount: bitcoin::Amount::from_sat(le_u64(&b[16..24])?),
        muhash,
    })
}

/// Statistics recomputed from every coin in redb (when MuHash tracking is turned on again).
fn stats_from_db(db: &redb::Database) -> Result<UtxoStats, StoreError> {
    let mut stats = UtxoStats::new(true);
    let mut buf = Vec::with_capacity(128);
    for item in coins_in(db)? {
        let (op, coin) = item?;
        stats.add_coin(&op, &coin, &mut buf);
    }
    Ok(stats)
}

/// Opens `table` in a new read transaction (the table keeps the transaction alive); `open` names
/// the step in the error.
fn read_table<K: redb::Key + 'static, V: redb::Value + 'static>(
    db: &redb::Database,
    table: TableDefinition<'_, K, V>,
    open: &'static str,
) -> Result<redb::ReadOnlyTable<K, V>, StoreError> {
    let txn = db.begin_read().map_err(StoreError::redb("begin read"))?;
    txn.open_table(table).map_err(StoreError::redb(open))
}

/// Every coin in redb, in key order, from one read transaction.
fn coins_in(db: &redb::Database) -> Result<CoinIter, StoreError> {
    let range = read_table(db, COINS, "open coins")?
        .range::<&[u8]>(..)
        .map_err(StoreError::redb("iterate coins"))?;
    Ok(CoinIter { range })
}

/// Writes the state a checkpoint leaves behind into `meta`: the applied sequence number, the
/// statistics and the tip (removed when there is none).
fn write_state_meta(
    meta: &mut redb::Table<&str, &[u8]>,
    applied_seq: u64,
    stats: &UtxoStats,
    tip: Option<Tip>,
) -> Result<(), StoreError> {
    meta.insert(META_APPLIED, &applied_seq.to_le_bytes()[..])
        .map_err(StoreError::redb("write meta"))?;
    meta.insert(META_STATS, &encode_stats(stats)[..])
        .map_err(StoreError::redb("write meta"))?;
    match tip {
        Some(tip) => meta.insert(META_TIP, &tip.encode()[..]),
        None => meta.remove(META_TIP),
    }
    .map_err(StoreError::redb("write meta"))?;
    Ok(())
}

/// [`StoreError::CorruptDb`] for stored bytes (`what`) that do not decode.
fn corrupt_db<E: std::fmt::Display>(what: &'static str) -> impl FnOnce(E) -> StoreError {
    move |e| StoreError::CorruptDb {
        what,
        reason: e.to_string(),
    }
}

/// [`StoreError::CorruptWal`] for a WAL payload that does not (de)serialise.
fn wal_payload_error(segment: String, offset: u64, e: &postcard::Error) -> StoreError {
    StoreError::CorruptWal {
        segment,
        offset,
        reason: FrameError::Payload {
            reason: e.to_string(),
        },
    }
}

fn le_u32(b: &[u8]) -> Option<u32> {
    <[u8; 4]>::try_from(b).ok().map(u32::from_le_bytes)
}
fn le_u64(b: &[u8]) -> Option<u64> {
    <[u8; 8]>::try_from(b).ok().map(u64::from_le_bytes)
}
