//! Error types: one enum per operation family (opening/recovery, writing, snapshots) folded into
//! the umbrella [`StoreError`], all `#[non_exhaustive]` with context in each variant.

use std::io;

/// Why a WAL record or segment could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// Fewer bytes than a frame header.
    #[error("truncated frame header: {available} of {needed} bytes")]
    TruncatedHeader {
        /// Bytes present.
        available: usize,
        /// Bytes a header needs.
        needed: usize,
    },
    /// The header announces more payload than is present.
    #[error("truncated frame payload: {available} of {needed} bytes")]
    TruncatedPayload {
        /// Bytes present.
        available: usize,
        /// Bytes the header announced.
        needed: usize,
    },
    /// The announced payload length is above [`crate::WAL_RECORD_SIZE_MAX`].
    #[error("record payload of {len} bytes exceeds the maximum {max}")]
    TooLarge {
        /// Announced or attempted length.
        len: u64,
        /// The limit.
        max: u64,
    },
    /// The blake3 checksum does not match the bytes.
    #[error("checksum mismatch")]
    Checksum,
    /// Bad magic bytes at the start of a segment.
    #[error("bad segment magic")]
    BadMagic,
    /// The postcard payload does not decode.
    #[error("payload does not decode: {reason}")]
    Payload {
        /// postcard's message.
        reason: String,
    },
}

/// Errors of [`crate::Store`] operations.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// An I/O operation failed; the store now refuses writes until reopened.
    #[error("i/o error during {op}: {source}")]
    Io {
        /// What the store was doing.
        op: &'static str,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// redb reported an error; the store now refuses writes until reopened.
    #[error("redb error during {op}: {source}")]
    Redb {
        /// What the store was doing.
        op: &'static str,
        /// redb's error.
        #[source]
        source: Box<redb::Error>,
    },
    /// An earlier I/O error poisoned this handle: reopen the store to recover the last durable state.
    #[error("store refuses writes after an earlier i/o error ({first_error}); reopen it")]
    Poisoned {
        /// The error that poisoned the store.
        first_error: String,
    },
    /// The datadir (or one of its files) was written by a newer, unknown format version.
    #[error("{what} has format version {found}, this build supports up to {supported}")]
    NewerFormat {
        /// Which file or structure.
        what: String,
        /// Version found on disk.
        found: u32,
        /// Highest version this build reads.
        supported: u32,
    },
    /// The datadir belongs to another network.
    #[error("datadir is for network {stored}, opened as {requested}")]
    NetworkMismatch {
        /// Network recorded in the datadir.
        stored: String,
        /// Network asked for.
        requested: String,
    },
    /// A WAL record before the tail of the log is corrupt (never skipped silently).
    #[error("corrupt wal record in {segment} at offset {offset}: {reason}")]
    CorruptWal {
        /// Segment file name.
        segment: String,
        /// Byte offset of the bad record in the segment.
        offset: u64,
        /// What is wrong.
        reason: FrameError,
    },
    /// WAL records are missing (a gap in sequence numbers, a lost segment).
    #[error("wal sequence gap: expected record {expected}, found {found} in {segment}")]
    WalGap {
        /// Next sequence number expected.
        expected: u64,
        /// Sequence number found.
        found: u64,
        /// Segment file name.
        segment: String,
    },
    /// A WAL record is larger than [`crate::WAL_RECORD_SIZE_MAX`].
    #[error("wal record of {len} bytes exceeds the maximum {max}")]
    RecordTooLarge {
        /// Encoded payload length.
        len: u64,
        /// The limit.
        max: u64,
    },
    /// A block does not extend the stored tip.
    #[error("block {height} does not extend the tip ({reason})")]
    NotOnTip {
        /// Height of the offered block.
        height: u32,
        /// What does not match.
        reason: &'static str,
    },
    /// Undo data for a height is not (or no longer) stored.
    #[error("no undo data stored for height {height}")]
    UndoUnavailable {
        /// The height asked for.
        height: u32,
    },
    /// The store holds no blocks, so there is nothing to disconnect or export.
    #[error("the store is empty")]
    Empty,
    /// Snapshot import needs an empty store.
    #[error("snapshot import needs an empty store (tip at height {height})")]
    NotEmpty {
        /// Current tip height.
        height: u32,
    },
    /// Stored bytes in redb do not decode (the database was altered outside this crate).
    #[error("stored {what} does not decode: {reason}")]
    CorruptDb {
        /// Which table or key.
        what: &'static str,
        /// The decoder's message.
        reason: String,
    },
    /// A snapshot could not be read or written.
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
}

/// Errors reading or writing a snapshot (ours or Bitcoin Core's).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SnapshotError {
    /// Reading or writing the stream failed.
    #[error("snapshot i/o error: {0}")]
    Io(#[from] io::Error),
    /// The stream ended early.
    #[error("snapshot truncated while reading {what}")]
    Truncated {
        /// What was being read.
        what: &'static str,
    },
    /// Wrong magic bytes.
    #[error("not a {format} snapshot (bad magic)")]
    BadMagic {
        /// Which format was expected.
        format: &'static str,
    },
    /// A version this build does not read.
    #[error("{format} snapshot version {found} is not supported (supported: {supported})")]
    UnsupportedVersion {
        /// Which format.
        format: &'static str,
        /// Version in the file.
        found: u32,
        /// Version this build reads.
        supported: u32,
    },
    /// The snapshot belongs to another network.
    #[error("snapshot is for network magic {found}, expected {expected}")]
    WrongNetwork {
        /// Network magic in the file (hex).
        found: String,
        /// Network magic expected (hex).
        expected: String,
    },
    /// The snapshot's base block is not known to the caller's chain.
    #[error("snapshot base block {hash} is unknown")]
    UnknownBlock {
        /// Base block hash (display order).
        hash: String,
    },
    /// The trailing checksum does not match.
    #[error("snapshot checksum mismatch")]
    Checksum,
    /// The MuHash of the coins differs from the header.
    #[error("snapshot muhash mismatch: header {header}, coins {computed}")]
    MuHashMismatch {
        /// From the header.
        header: String,
        /// Computed over the coins.
        computed: String,
    },
    /// The coins' `hash_serialized_3` differs from the one expected (Core's assumeutxo check).
    #[error("snapshot hash_serialized_3 mismatch: expected {expected}, coins {computed}")]
    HashMismatch {
        /// Expected (display order).
        expected: String,
        /// Computed over the coins (display order).
        computed: String,
    },
    /// A coin record does not decode or breaks a rule (order, duplicates, limits).
    #[error("bad coin #{index} in snapshot: {reason}")]
    BadCoin {
        /// Index of the coin in the file.
        index: u64,
        /// What is wrong.
        reason: String,
    },
    /// The coin count in the header is above [`crate::SNAPSHOT_COINS_MAX`] or does not match the file.
    #[error("snapshot coin count: {reason}")]
    CoinCount {
        /// What is wrong.
        reason: String,
    },
    /// Bytes follow the end of the snapshot.
    #[error("trailing bytes after the snapshot")]
    TrailingBytes,
    /// The snapshot's coins do not commit to the root its header carries (a forged or wrong
    /// root: the checksum covers the header, so a damaged one is [`SnapshotError::Checksum`]).
    #[error(
        "snapshot commitment root mismatch: the file says {file}, its coins commit to {computed}"
    )]
    CommitmentMismatch {
        /// Root in the file's header (hex of the 32 bytes).
        file: String,
        /// Root the caller's [`crate::snapshot::CommitmentCheck`] computed over the coins (hex).
        computed: String,
    },
    /// The caller's [`crate::snapshot::CommitmentCheck`] could not compute a root.
    #[error("snapshot commitment root could not be computed: {reason}")]
    CommitmentCheck {
        /// Its reason.
        reason: String,
    },
}

impl StoreError {
    pub(crate) fn io(op: &'static str) -> impl FnOnce(io::Error) -> StoreError {
        move |source| StoreError::Io { op, source }
    }
    pub(crate) fn redb<E: Into<redb::Error>>(op: &'static str) -> impl FnOnce(E) -> StoreError {
        move |e| StoreError::Redb {
            op,
            source: Box::new(e.into()),
        }
    }
    /// True if this error came from the disk (I/O or redb) and so poisons the handle.
    pub(crate) fn poisons(&self) -> bool {
        matches!(self, StoreError::Io { .. } | StoreError::Redb { .. })
    }
}
