//! WAL framing: the segment header and the record frame (version, length, sequence number, blake3
//! checksum, payload). Pure functions over byte slices; the layout is documented in the crate docs.

use crate::error::FrameError;
use crate::{WAL_FORMAT_VERSION, WAL_RECORD_SIZE_MAX};

/// Magic bytes at the start of every WAL segment file.
pub const SEGMENT_MAGIC: [u8; 8] = *b"l2btcWAL";
/// Size of a segment header in bytes.
pub const SEGMENT_HEADER_LEN: usize = 8 + 4 + 8 + 32;
/// Size of a record frame header in bytes (before the payload).
pub const FRAME_HEADER_LEN: usize = 1 + 4 + 8 + 32;

/// A decoded segment header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentHeader {
    /// Format version of the segment.
    pub version: u32,
    /// Sequence number of the first record in the segment.
    pub first_seq: u64,
}

/// Encodes a segment header.
pub fn encode_segment_header(first_seq: u64) -> [u8; SEGMENT_HEADER_LEN] {
    let mut out = [0u8; SEGMENT_HEADER_LEN];
    out[0..8].copy_from_slice(&SEGMENT_MAGIC);
    out[8..12].copy_from_slice(&WAL_FORMAT_VERSION.to_le_bytes());
    out[12..20].copy_from_slice(&first_seq.to_le_bytes());
    let sum = blake3::hash(&out[0..20]);
    out[20..52].copy_from_slice(sum.as_bytes());
    out
}

/// Decodes a segment header. The version is returned as found; the caller rejects newer ones.
///
/// # Errors
/// [`FrameError`] if the header is short, has bad magic or a bad checksum.
pub fn decode_segment_header(bytes: &[u8]) -> Result<SegmentHeader, FrameError> {
    if bytes.len() < SEGMENT_HEADER_LEN {
        return Err(FrameError::TruncatedHeader {
            available: bytes.len(),
            needed: SEGMENT_HEADER_LEN,
        });
    }
    if bytes[0..8] != SEGMENT_MAGIC {
        return Err(FrameError::BadMagic);
    }
    if blake3::hash(&bytes[0..20]).as_bytes()[..] != bytes[20..52] {
        return Err(FrameError::Checksum);
    }
    Ok(SegmentHeader {
        version: u32::from_le_bytes(le4(&bytes[8..12])),
        first_seq: u64::from_le_bytes(le8(&bytes[12..20])),
    })
}

fn le4(b: &[u8]) -> [u8; 4] {
    let mut a = [0u8; 4];
    a.copy_from_slice(b);
    a
}
fn le8(b: &[u8]) -> [u8; 8] {
    let mut a = [0u8; 8];
    a.copy_from_slice(b);
    a
}

fn checksum(header13: &[u8], payload: &[u8]) -> blake3::Hash {
    let mut h = blake3::Hasher::new();
    h.update(header13);
    h.update(payload);
    h.finalize()
}

/// Appends one framed record to `out`.
///
/// # Errors
/// [`FrameError::TooLarge`] if the payload exceeds [`WAL_RECORD_SIZE_MAX`]; `out` is unchanged then.
pub fn encode_frame(seq: u64, payload: &[u8], out: &mut Vec<u8>) -> Result<(), FrameError> {
    let len = u32::try_from(payload.len())
        .ok()
        .filter(|l| u64::from(*l) <= WAL_RECORD_SIZE_MAX);
    let Some(len) = len else {
        return Err(FrameError::TooLarge {
            len: payload.len() as u64,
            max: WAL_RECORD_SIZE_MAX,
        });
    };
    let start = out.len();
    out.push(WAL_FORMAT_VERSION_BYTE);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
    let sum = checksum(&out[start..start + 13], payload);
    out.extend_from_slice(sum.as_bytes());
    out.extend_from_slice(payload);
    Ok(())
}

/// The record-frame version byte this build writes.
pub const WAL_FORMAT_VERSION_BYTE: u8 = 1;
const _: () = assert!(WAL_FORMAT_VERSION_BYTE as u32 == WAL_FORMAT_VERSION);

/// A decoded frame borrowing its payload.
#[derive(Debug, PartialEq, Eq)]
pub struct Frame<'a> {
    /// Frame version byte.
    pub version: u8,
    /// Sequence number.
    pub seq: u64,
    /// The payload bytes (checksum verified).
    pub payload: &'a [u8],
    /// Total frame length in bytes (header + payload).
    pub len: usize,
}

/// Decodes the frame at the start of `bytes`. Does not allocate, whatever the announced length.
///
/// # Errors
/// [`FrameError`] if the bytes are short, announce too much, or fail the checksum.
pub fn decode_frame(bytes: &[u8]) -> Result<Frame<'_>, FrameError> {
    if bytes.len() < FRAME_HEADER_LEN {
        return Err(FrameError::TruncatedHeader {
            available: bytes.len(),
            needed: FRAME_HEADER_LEN,
        });
    }
    let version = bytes[0];
    let len = u32::from_le_bytes(le4(&bytes[1..5]));
    let seq = u64::from_le_bytes(le8(&bytes[5..13]));
    if u64::from(len) > WAL_RECORD_SIZE_MAX {
        return Err(FrameError::TooLarge {
            len: u64::from(len),
            max: WAL_RECORD_SIZE_MAX,
        });
    }
    let len = len as usize;
    let available = bytes.len() - FRAME_HEADER_LEN;
    if available < len {
        return Err(FrameError::TruncatedPayload {
            available,
            needed: len,
        });
    }
    let payload = &bytes[FRAME_HEADER_LEN..FRAME_HEADER_LEN + len];
    if checksum(&bytes[0..13], payload).as_bytes()[..] != bytes[13..45] {
        return Err(FrameError::Checksum);
    }
    Ok(Frame {
        version,
        seq,
        payload,
        len: FRAME_HEADER_LEN + len,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_roundtrip_and_limits() {
        let mut out = Vec::new();
        encode_frame(7, b"hello", &mut out).unwrap();
        let f = decode_frame(&out).unwrap();
        assert_eq!((f.seq, f.payload, f.len), (7, &b"hello"[..], out.len()));
        // At the limit: accepted; one past: rejected without touching `out`.
        let big = vec![0xabu8; usize::try_from(WAL_RECORD_SIZE_MAX).unwrap()];
        let mut out = Vec::new();
        encode_frame(1, &big, &mut out).unwrap();
        assert_eq!(decode_frame(&out).unwrap().payload.len(), big.len());
        let bigger = vec![0u8; big.len() + 1];
        let mut out2 = Vec::new();
        assert!(matches!(
            encode_frame(1, &bigger, &mut out2),
            Err(FrameError::TooLarge { .. })
        ));
        assert!(out2.is_empty());
        // A header announcing one byte past the limit is rejected before any read of the payload.
        let mut hdr = out[..FRAME_HEADER_LEN].to_vec();
        let past = u32::try_from(WAL_RECORD_SIZE_MAX + 1).unwrap();
        hdr[1..5].copy_from_slice(&past.to_le_bytes());
        assert!(matches!(
            decode_frame(&hdr),
            Err(FrameError::TooLarge { .. })
        ));
    }

    #[test]
    fn segment_header_roundtrip() {
        let h = encode_segment_header(42);
        assert_eq!(
            decode_segment_header(&h).unwrap(),
            SegmentHeader {
                version: WAL_FORMAT_VERSION,
                first_seq: 42
            }
        );
        let mut bad = h;
        bad[13] ^= 1;
        assert_eq!(decode_segment_header(&bad), Err(FrameError::Checksum));
    }
}
