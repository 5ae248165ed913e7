//! Durable storage for a Bitcoin UTXO set: a checksummed write-ahead log with group commit in
//! front of [redb](https://docs.rs/redb), crash recovery, undo data for reorgs across restarts,
//! snapshots in our own format (which carries the caller's commitment root, checked against the
//! coins on import) and in Bitcoin Core's `dumptxoutset` format (byte-identical to Core's, so
//! without a root).
//!
//! # Data flow
//! `utxo_core::UtxoSet::apply_block` → [`Store::append_block`] (framed, checksummed WAL record:
//! height, hash, parent, net coin changes, undo, optional commitment root) →
//! [`Store::commit_pending`] (one `fdatasync` for every record appended since the last one: group
//! commit) → the block is **acknowledged** ([`Store::is_durable`]) → later
//! [`Store::checkpoint`] folds many records into redb in one write transaction, records the last
//! applied WAL sequence number there, and deletes the fully applied segments.
//!
//! [`Store::open`] recovers: it replays records after redb's applied sequence number; a torn or
//! corrupt *last* record (one that was never acknowledged) is discarded and reported in the
//! [`RecoveryReport`]; corruption anywhere before the tail is [`StoreError::CorruptWal`], never
//! skipped. After an I/O error (full disk, failed sync) the handle refuses writes
//! ([`StoreError::Poisoned`]) until reopened; reopening recovers the last durable state.
//!
//! ```
//! use bitcoin::{BlockHash, Network, hashes::Hash};
//! use utxo_core::{BlockUndo, ChangeSet};
//! use wal_store::{BlockRecord, Store, StoreOptions};
//!
//! let dir = tempfile::tempdir()?;
//! let options = StoreOptions::new(Network::Regtest).undo_depth(288);
//! let (mut store, _report) = Store::open(dir.path(), options.clone())?;
//! let (changes, undo) = (ChangeSet::default(), BlockUndo::default());
//! let hash = BlockHash::from_byte_array([7; 32]);
//! let ack = store.append_block(&BlockRecord {
//!     height: 0, hash, prev_hash: BlockHash::all_zeros(),
//!     changes: &changes, undo: &undo, commitment_root: None,
//! })?;
//! store.commit_pending()?;
//! assert!(store.is_durable(ack));
//! drop(store); // like a crash: nothing more was written
//! let (store, report) = Store::open(dir.path(), options)?;
//! assert_eq!(report.replayed_records, 1);
//! assert_eq!(store.tip().map(|t| t.hash), Some(hash));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The on-disk and snapshot formats are documented byte by byte in [`format`](mod@format).
//!
//! What this crate deliberately does not do: validate blocks (that is `utxo_core`), spawn threads
//! (group commit is driven by the caller's `commit_pending`), know about Merkle trees or channels.
#![forbid(unsafe_code)]

pub mod core_snapshot;
mod error;
pub mod frame;
pub mod fs;
mod record;
pub mod sim;
pub mod snapshot;
mod store;
mod wal;

/// The byte-level formats: datadir, WAL, redb tables, snapshots.
pub mod format {
    #![doc = include_str!("../docs/FORMAT.md")]
}

pub use error::{FrameError, SnapshotError, StoreError};
pub use record::Tip;
pub use store::{
    Ack, BlockRecord, CheckpointReport, RecoveryReport, Store, StoreOptions, StoredBlock,
};
pub use wal::{DiscardedTail, parse_segment_name, segment_name};

/// Version of the WAL segment and record format this build writes (and the newest it reads).
pub const WAL_FORMAT_VERSION: u32 = 1;
/// Version of the redb layout (meta key `format_version`) this build writes and reads.
pub const STORE_FORMAT_VERSION: u32 = 1;
/// Largest WAL record payload in bytes (a 4 MWU block's changes and undo fit many times over).
pub const WAL_RECORD_SIZE_MAX: u64 = 32 << 20;
/// Undo data kept for this many blocks by default (Bitcoin Core keeps at least 288 blocks).
pub const UNDO_DEPTH_DEFAULT: u32 = 288;
/// Largest configurable undo depth.
pub const UNDO_DEPTH_MAX: u32 = 100_000;
/// Most coins a snapshot header may announce (mainnet holds ~180 million).
pub const SNAPSHOT_COINS_MAX: u64 = 4_000_000_000;
/// Most coins a snapshot import writes in one redb write transaction, so what redb keeps per
/// transaction does not grow with the snapshot (its page data is bounded by its cache either
/// way). The default and the upper clamp of [`StoreOptions::import_chunk_coins`].
pub const IMPORT_CHUNK_COINS_MAX: usize = 100_000;
