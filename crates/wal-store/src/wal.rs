//! The write-ahead log: segment files of framed records, a writer with group commit (frames are
//! buffered and one `append` + one `sync` covers them all), and the recovery scan that replays
//! records, discards a torn or corrupt *last* record and rejects corruption anywhere before it.

use std::sync::Arc;

use crate::error::{FrameError, StoreError};
use crate::frame::{
    FRAME_HEADER_LEN, SEGMENT_HEADER_LEN, WAL_FORMAT_VERSION_BYTE, decode_frame,
    decode_segment_header, encode_frame, encode_segment_header,
};
use crate::fs::{StoreIo, WalFile};
use crate::{WAL_FORMAT_VERSION, WAL_RECORD_SIZE_MAX};

/// File name of the segment whose first record has sequence number `first_seq`.
pub fn segment_name(first_seq: u64) -> String {
    format!("wal-{first_seq:016x}.log")
}

/// Inverse of [`segment_name`].
pub fn parse_segment_name(name: &str) -> Option<u64> {
    let hex = name.strip_prefix("wal-")?.strip_suffix(".log")?;
    if hex.len() != 16 {
        return None;
    }
    u64::from_str_radix(hex, 16).ok()
}

/// The appending side of the log.
#[derive(Debug)]
pub(crate) struct WalWriter {
    io: Arc<dyn StoreIo>,
    file: Box<dyn WalFile>,
    /// Name of the active segment.
    pub(crate) name: String,
    /// Bytes in the active segment file (written, synced or not).
    pub(crate) seg_len: u64,
    /// Frames not yet handed to the file.
    buf: Vec<u8>,
    /// Records in `buf`.
    pub(crate) buf_records: usize,
    /// Sequence number the next record gets.
    pub(crate) next_seq: u64,
    /// Every record with a sequence number up to this one is durable.
    pub(crate) durable_seq: u64,
    /// Bytes appended since the last checkpoint (all segments).
    pub(crate) bytes_since_checkpoint: u64,
}

impl WalWriter {
    /// Creates a new segment starting at `first_seq`, durably (file synced, directory synced).
    pub(crate) fn create(io: Arc<dyn StoreIo>, first_seq: u64) -> Result<WalWriter, StoreError> {
        let name = segment_name(first_seq);
        let mut file = io
            .create(&name)
            .map_err(StoreError::io("create wal segment"))?;
        let header = encode_segment_header(first_seq);
        file.append(&header)
            .map_err(StoreError::io("write segment header"))?;
        file.sync().map_err(StoreError::io("sync segment header"))?;
        io.sync_dir().map_err(StoreError::io("sync directory"))?;
        Ok(WalWriter {
            io,
            file,
            name,
            seg_len: SEGMENT_HEADER_LEN as u64,
            buf: Vec::new(),
            buf_records: 0,
            next_seq: first_seq,
            durable_seq: first_seq.saturating_sub(1),
            bytes_since_checkpoint: 0,
        })
    }

    /// A writer that owns no segment yet (used while recovery runs; never written to).
    pub(crate) fn placeholder(io: Arc<dyn StoreIo>) -> WalWriter {
        WalWriter {
            io,
            file: Box::new(NullFile),
            name: String::new(),
            seg_len: 0,
            buf: Vec::new(),
            buf_records: 0,
            next_seq: 1,
            durable_seq: 0,
            bytes_since_checkpoint: 0,
        }
    }

    /// Frames `payload` into the pending buffer and returns its sequence number (not yet durable).
    pub(crate) fn append(&mut self, payload: &[u8]) -> Result<u64, StoreError> {
        let seq = self.next_seq;
        encode_frame(seq, payload, &mut self.buf).map_err(|e| match e {
            FrameError::TooLarge { len, max } => StoreError::RecordTooLarge { len, max },
            other => StoreError::CorruptWal {
                segment: self.name.clone(),
                offset: self.seg_len,
                reason: other,
            },
        })?;
        self.next_seq += 1;
        self.buf_records += 1;
        Ok(seq)
    }

    /// Bytes waiting in the group-commit buffer.
    pub(crate) fn pending_bytes(&self) -> usize {
        self.buf.len()
    }

    /// Writes the buffer and syncs: afterwards every appended record is durable (group commit).
    pub(crate) fn commit(&mut self) -> Result<u64, StoreError> {
        if !self.buf.is_empty() {
            let n = self.buf.len() as u64;
            self.file
                .append(&self.buf)
                .map_err(StoreError::io("append wal"))?;
            self.seg_len += n;
            self.bytes_since_checkpoint += n;
            self.buf.clear();
            self.buf_records = 0;
        }
        if self.durable_seq + 1 < self.next_seq {
            self.file.sync().map_err(StoreError::io("sync wal"))?;
            self.durable_seq = self.next_seq - 1;
        }
        Ok(self.durable_seq)
    }

    /// Starts a new segment at the next sequence number (the buffer must be committed).
    pub(crate) fn rotate(&mut self) -> Result<(), StoreError> {
        debug_assert!(self.buf.is_empty());
        let since = self.bytes_since_checkpoint;
        let durable = self.durable_seq;
        *self = WalWriter::create(Arc::clone(&self.io), self.next_seq)?;
        self.bytes_since_checkpoint = since;
        self.durable_seq = durable;
        Ok(())
    }
}

#[derive(Debug)]
struct NullFile;

impl WalFile for NullFile {
    fn append(&mut self, _data: &[u8]) -> std::io::Result<()> {
        Err(std::io::Error::other("no wal segment open"))
    }
    fn sync(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A torn or corrupt last record that recovery discarded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscardedTail {
    /// Segment file name.
    pub segment: String,
    /// Byte offset where the discarded bytes start.
    pub offset: u64,
    /// How many bytes were discarded.
    pub bytes: u64,
    /// Why the record did not decode.
    pub reason: FrameError,
}

/// What the recovery scan found.
#[derive(Debug, Default)]
pub(crate) struct ScanOutcome {
    /// Highest sequence number seen in a valid record (0 if none).
    pub last_seq: u64,
    /// Records passed to the callback (those after the applied sequence).
    pub replayed: u64,
    /// Their frame bytes.
    pub replayed_bytes: u64,
    /// The discarded tail, if any.
    pub discarded: Option<DiscardedTail>,
    /// Every segment file present (all are folded and deleted by recovery).
    pub segments: Vec<String>,
}

/// Reads every segment in order and calls `f(seq, payload)` for records after `applied_seq`.
pub(crate) fn scan(
    io: &dyn StoreIo,
    applied_seq: u64,
    mut f: impl FnMut(u64, &[u8]) -> Result<(), StoreError>,
) -> Result<ScanOutcome, StoreError> {
    let mut segs: Vec<(u64, String)> = io
        .list()
        .map_err(StoreError::io("list datadir"))?
        .into_iter()
        .filter_map(|n| parse_segment_name(&n).map(|s| (s, n)))
        .collect();
    segs.sort();
    let mut out = ScanOutcome {
        segments: segs.iter().map(|(_, n)| n.clone()).collect(),
        ..ScanOutcome::default()
    };
    // Sequence number the next replayed record must carry.
    let mut expected_next = applied_seq + 1;
    for (i, (name_seq, name)) in segs.iter().enumerate() {
        let is_last = i + 1 == segs.len();
        if !is_last && segs[i + 1].0 <= applied_seq + 1 {
            continue; // every record in it is already in redb
        }
        let bytes = io.read(name).map_err(StoreError::io("read wal segment"))?;
        let header = match decode_segment_header(&bytes) {
            Ok(h) => h,
            Err(reason) => {
                if is_last && !valid_frame_after(&bytes, 0, *name_seq) {
                    out.discarded = Some(discard(name, 0, &bytes, reason));
                    break;
                }
                return Err(StoreError::CorruptWal {
                    segment: name.clone(),
                    offset: 0,
                    reason,
                });
            }
        };
        if header.version > WAL_FORMAT_VERSION {
            return Err(StoreError::NewerFormat {
                what: format!("wal segment {name}"),
                found: header.version,
                supported: WAL_FORMAT_VERSION,
            });
        }
        if header.first_seq != *name_seq {
            return Err(StoreError::WalGap {
                expected: *name_seq,
                found: header.first_seq,
                segment: name.clone(),
            });
        }
        let mut seq_in_seg = header.first_seq;
        let mut offset = SEGMENT_HEADER_LEN;
        while offset < bytes.len() {
            let frame = match decode_frame(&bytes[offset..]) {
                Ok(fr) => fr,
                Err(reason) => {
                    if is_last && !valid_frame_after(&bytes, offset + 1, seq_in_seg) {
                        out.discarded = Some(discard(name, offset, &bytes, reason));
                        break;
                    }
                    return Err(StoreError::CorruptWal {
                        segment: name.clone(),
                        offset: offset as u64,
                        reason,
                    });
                }
            };
            if u32::from(frame.version) > WAL_FORMAT_VERSION {
                return Err(StoreError::NewerFormat {
                    what: format!("wal record in {name}"),
                    found: u32::from(frame.version),
                    supported: WAL_FORMAT_VERSION,
                });
            }
            if frame.seq != seq_in_seg {
                return Err(StoreError::WalGap {
                    expected: seq_in_seg,
                    found: frame.seq,
                    segment: name.clone(),
                });
            }
            if frame.seq > applied_seq {
                if frame.seq != expected_next {
                    return Err(StoreError::WalGap {
                        expected: expected_next,
                        found: frame.seq,
                        segment: name.clone(),
                    });
                }
                f(frame.seq, frame.payload)?;
                expected_next += 1;
                out.replayed += 1;
                out.replayed_bytes += frame.len as u64;
            }
            out.last_seq = out.last_seq.max(frame.seq);
            seq_in_seg += 1;
            offset += frame.len;
        }
    }
    Ok(out)
}

fn discard(name: &str, offset: usize, bytes: &[u8], reason: FrameError) -> DiscardedTail {
    let tail = DiscardedTail {
        segment: name.to_string(),
        offset: offset as u64,
        bytes: (bytes.len() - offset) as u64,
        reason,
    };
    tracing::warn!(
        segment = %tail.segment,
        offset = tail.offset,
        bytes = tail.bytes,
        reason = %tail.reason,
        "discarding torn or corrupt last wal record"
    );
    tail
}

/// Whether any valid frame with a sequence number `>= min_seq` starts at or after `from`: if so, a
/// bad frame before it is corruption in the middle of the log, not a torn tail. Candidates are
/// filtered on the version byte, a plausible sequence number and length before the checksum.
fn valid_frame_after(bytes: &[u8], from: usize, min_seq: u64) -> bool {
    let mut pos = from;
    while pos + FRAME_HEADER_LEN <= bytes.len() {
        let rest = &bytes[pos..];
        let plausible = rest[0] == WAL_FORMAT_VERSION_BYTE && {
            let mut l = [0u8; 4];
            l.copy_from_slice(&rest[1..5]);
            let len = u64::from(u32::from_le_bytes(l));
            let mut s = [0u8; 8];
            s.copy_from_slice(&rest[5..13]);
            let seq = u64::from_le_bytes(s);
            let max_seq = min_seq + (rest.len() / FRAME_HEADER_LEN) as u64;
            len <= WAL_RECORD_SIZE_MAX
                && len <= (rest.len() - FRAME_HEADER_LEN) as u64
                && seq >= min_seq
                && seq <= max_seq
        };
        if plausible && decode_frame(rest).is_ok() {
            return true;
        }
        pos += 1;
    }
    false
}
