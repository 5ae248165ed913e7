//! Bitcoin Core's `dumptxoutset` format (snapshot metadata version 2), read and written
//! byte-compatibly, streamed in constant memory (one transaction's outputs at a time).
//!
//! Layout (Core `src/node/utxo_snapshot.h` `SnapshotMetadata`, `rpc/blockchain.cpp`
//! `WriteUTXOSnapshot`): magic `'u' 't' 'x' 'o' 0xff`, `u16` LE version (2), 4-byte network magic,
//! 32-byte base block hash (internal order), `u64` LE coin count; then the coins grouped by txid in
//! chainstate key order (txid raw bytes, then the vout's `VARINT` bytes): txid, `CompactSize`
//! number of coins in the group, and per coin `CompactSize` vout followed by Core's `Coin`
//! serialization (`VARINT` code, `VARINT` compressed amount, compressed script). Nothing follows.

use std::io::{self, BufReader, BufWriter, Read, Write};

use bitcoin::hashes::{Hash, HashEngine, sha256d};
use bitcoin::{BlockHash, Network, OutPoint, Txid};
use utxo_core::compress::{decode_coin, encode_coin, write_varint};
use utxo_core::{Coin, SCRIPT_SIZE_MAX, txout_ser};

use crate::SNAPSHOT_COINS_MAX;
use crate::error::{SnapshotError, StoreError};
use crate::record::Tip;
use crate::snapshot::{arr, hex_bytes, read_exact};
use crate::store::Store;

/// Core's snapshot magic bytes.
pub const CORE_SNAPSHOT_MAGIC: [u8; 5] = *b"utxo\xff";
/// The metadata version this build reads and writes.
pub const CORE_SNAPSHOT_VERSION: u16 = 2;
/// Metadata length in bytes.
pub const CORE_SNAPSHOT_HEADER_LEN: usize = 5 + 2 + 4 + 32 + 8;
/// Largest `CompactSize` Core's deserializer accepts (`MAX_SIZE`).
pub const COMPACT_SIZE_MAX: u64 = 0x0200_0000;

/// Core snapshot metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CoreSnapshotHeader {
    /// Network (from the magic).
    pub network: Network,
    /// Base block hash.
    pub base_hash: BlockHash,
    /// Number of coins.
    pub coins: u64,
}

fn write_compact_size(n: u64, out: &mut Vec<u8>) {
    if let Ok(b) = u8::try_from(n)
        .map_err(drop)
        .and_then(|b| if b < 0xfd { Ok(b) } else { Err(()) })
    {
        out.push(b);
    } else if let Ok(v) = u16::try_from(n) {
        out.push(0xfd);
        out.extend_from_slice(&v.to_le_bytes());
    } else if let Ok(v) = u32::try_from(n) {
        out.push(0xfe);
        out.extend_from_slice(&v.to_le_bytes());
    } else {
        out.push(0xff);
        out.extend_from_slice(&n.to_le_bytes());
    }
}

/// Reads a canonical `CompactSize` no larger than [`COMPACT_SIZE_MAX`] (Core's rules).
fn read_compact_size<R: Read>(r: &mut R, what: &'static str) -> Result<u64, SnapshotError> {
    let mut b = [0u8; 1];
    read_exact(r, &mut b, what)?;
    let (n, min) = match b[0] {
        0xfd => {
            let mut x = [0u8; 2];
            read_exact(r, &mut x, what)?;
            (u64::from(u16::from_le_bytes(x)), 0xfd)
        }
        0xfe => {
            let mut x = [0u8; 4];
            read_exact(r, &mut x, what)?;
            (u64::from(u32::from_le_bytes(x)), 0x1_0000)
        }
        0xff => {
            let mut x = [0u8; 8];
            read_exact(r, &mut x, what)?;
            (u64::from_le_bytes(x), 0x1_0000_0000)
        }
        v => (u64::from(v), 0),
    };
    if n < min || n > COMPACT_SIZE_MAX {
        return Err(SnapshotError::BadCoin {
            index: 0,
            reason: format!("non-canonical or oversized CompactSize {n} in {what}"),
        });
    }
    Ok(n)
}

/// Reads one Core `VARINT` from a stream, appending its bytes to `raw`.
fn read_varint_raw<R: Read>(r: &mut R, raw: &mut Vec<u8>) -> Result<u64, SnapshotError> {
    let mut n: u64 = 0;
    for _ in 0..10 {
        let mut b = [0u8; 1];
        read_exact(r, &mut b, "coin")?;
        raw.push(b[0]);
        n = (n << 7) | u64::from(b[0] & 0x7f);
        if b[0] & 0x80 == 0 {
            return Ok(n);
        }
        n = n.checked_add(1).ok_or(SnapshotError::BadCoin {
            index: 0,
            reason: "varint overflow".into(),
        })?;
    }
    Err(SnapshotError::BadCoin {
        index: 0,
        reason: "varint too long".into(),
    })
}

/// Reads the bytes of one serialized Core `Coin` from a stream (so it can be decoded from a slice).
fn read_coin_bytes<R: Read>(r: &mut R, raw: &mut Vec<u8>) -> Result<(), SnapshotError> {
    raw.clear();
    read_varint_raw(r, raw)?; // code
    read_varint_raw(r, raw)?; // compressed amount
    let size = read_varint_raw(r, raw)?;
    let extra = match size {
        0 | 1 => 20,
        2..=5 => 32,
        n => usize::try_from(n - 6)
            .ok()
            .filter(|len| *len <= SCRIPT_SIZE_MAX)
            .ok_or_else(|| SnapshotError::BadCoin {
                index: 0,
                reason: format!("script of {} bytes exceeds {SCRIPT_SIZE_MAX}", n - 6),
            })?,
    };
    let start = raw.len();
    raw.resize(start + extra, 0);
    read_exact(r, &mut raw[start..], "script")
}

/// Streaming reader of a Core snapshot: an iterator of coins that, after the last one, checks the
/// stream ends there (and yields an error instead of ending if not).
pub struct CoreSnapshotReader<R> {
    inner: BufReader<R>,
    header: CoreSnapshotHeader,
    read: u64,
    group_txid: Txid,
    group_left: u64,
    prev: Option<(Txid, Vec<u8>)>,
    raw: Vec<u8>,
    done: bool,
    /// `hash_serialized_3` engine; a txid's coins are fed in numeric vout order once complete.
    engine: bitcoin::hashes::sha256::HashEngine,
    group_ser: Vec<(u32, Vec<u8>)>,
    expected: Option<sha256d::Hash>,
    computed: Option<sha256d::Hash>,
}

impl<R: Read> CoreSnapshotReader<R> {
    /// Makes the reader fail at the end unless the coins' `hash_serialized_3` equals `expected`
    /// (what Core checks against its assumeutxo parameters).
    pub fn expect_hash_serialized_3(&mut self, expected: sha256d::Hash) {
        self.expected = Some(expected);
    }

    /// The coins' `hash_serialized_3`, once every coin was read.
    pub fn hash_serialized_3(&self) -> Option<sha256d::Hash> {
        self.computed
    }

    fn end_of_group(&mut self) {
        self.group_ser.sort_by_key(|(vout, _)| *vout);
        for (_, ser) in self.group_ser.drain(..) {
            self.engine.input(&ser);
        }
    }

    fn finish(&mut self) -> Result<(), SnapshotError> {
        let mut extra = [0u8; 1];
        if self.inner.read(&mut extra)? != 0 {
            return Err(SnapshotError::TrailingBytes);
        }
        let computed = sha256d::Hash::from_engine(std::mem::take(&mut self.engine));
        self.computed = Some(computed);
        if let Some(expected) = self.expected
            && expected != computed
        {
            return Err(SnapshotError::HashMismatch {
                expected: expected.to_string(),
                computed: computed.to_string(),
            });
        }
        Ok(())
    }

    /// Reads the metadata; the network magic must be `network`'s.
    ///
    /// # Errors
    /// [`SnapshotError::BadMagic`], [`SnapshotError::UnsupportedVersion`],
    /// [`SnapshotError::WrongNetwork`], [`SnapshotError::CoinCount`], truncation.
    pub fn new(input: R, network: Network) -> Result<CoreSnapshotReader<R>, SnapshotError> {
        let mut inner = BufReader::new(input);
        let mut h = [0u8; CORE_SNAPSHOT_HEADER_LEN];
        read_exact(&mut inner, &mut h, "metadata")?;
        if h[0..5] != CORE_SNAPSHOT_MAGIC {
            return Err(SnapshotError::BadMagic {
                format: "bitcoin core",
            });
        }
        let version = u16::from_le_bytes(arr(&h[5..7]));
        if version != CORE_SNAPSHOT_VERSION {
            return Err(SnapshotError::UnsupportedVersion {
                format: "bitcoin core",
                found: u32::from(version),
                supported: u32::from(CORE_SNAPSHOT_VERSION),
            });
        }
        let magic: [u8; 4] = arr(&h[7..11]);
        if magic != network.magic().to_bytes() {
            return Err(SnapshotError::WrongNetwork {
                found: hex_bytes(&magic),
                expected: hex_bytes(&network.magic().to_bytes()),
            });
        }
        let coins = u64::from_le_bytes(arr(&h[43..51]));
        if coins > SNAPSHOT_COINS_MAX {
            return Err(SnapshotError::CoinCount {
                reason: format!("{coins} exceeds the maximum {SNAPSHOT_COINS_MAX}"),
            });
        }
        Ok(CoreSnapshotReader {
            inner,
            header: CoreSnapshotHeader {
                network,
                base_hash: BlockHash::from_byte_array(arr(&h[11..43])),
                coins,
            },
            read: 0,
            group_txid: Txid::all_zeros(),
            group_left: 0,
            prev: None,
            raw: Vec::with_capacity(64),
            done: false,
            engine: sha256d::Hash::engine(),
            group_ser: Vec::new(),
            expected: None,
            computed: None,
        })
    }

    /// The metadata.
    pub fn header(&self) -> &CoreSnapshotHeader {
        &self.header
    }

    fn next_coin(&mut self) -> Result<(OutPoint, Coin), SnapshotError> {
        let index = self.read;
        let with_index = |e: SnapshotError| match e {
            SnapshotError::BadCoin { reason, .. } => SnapshotError::BadCoin { index, reason },
            other => other,
        };
        if self.group_left == 0 {
            let mut txid = [0u8; 32];
            read_exact(&mut self.inner, &mut txid, "txid")?;
            self.group_txid = Txid::from_byte_array(txid);
            let n = read_compact_size(&mut self.inner, "coins per txid").map_err(with_index)?;
            if n == 0 || n > self.header.coins - self.read {
                return Err(SnapshotError::BadCoin {
                    index,
                    reason: format!(
                        "txid group of {n} coins with {} left",
                        self.header.coins - self.read
                    ),
                });
            }
            self.group_left = n;
        }
        let vout = read_compact_size(&mut self.inner, "vout").map_err(with_index)?;
        let vout = u32::try_from(vout).map_err(|_| SnapshotError::BadCoin {
            index,
            reason: "vout above u32".into(),
        })?;
        read_coin_bytes(&mut self.inner, &mut self.raw).map_err(with_index)?;
        let mut slice = &self.raw[..];
        let coin = decode_coin(&mut slice).map_err(|e| SnapshotError::BadCoin {
            index,
            reason: e.to_string(),
        })?;
        // Chainstate key order: txid raw bytes, then VARINT(vout) bytes; strictly increasing.
        let mut key = Vec::with_capacity(5);
        write_varint(u64::from(vout), &mut key);
        let cur = (self.group_txid, key);
        if let Some(prev) = &self.prev {
            let ord = prev
                .0
                .to_byte_array()
                .cmp(&cur.0.to_byte_array())
                .then_with(|| prev.1.cmp(&cur.1));
            if ord != std::cmp::Ordering::Less {
                return Err(SnapshotError::BadCoin {
                    index,
                    reason: "coins out of chainstate order or duplicated".into(),
                });
            }
        }
        self.prev = Some(cur);
        self.group_left -= 1;
        self.read += 1;
        let op = OutPoint {
            txid: self.group_txid,
            vout,
        };
        let mut ser = Vec::with_capacity(64);
        txout_ser(&op, &coin, &mut ser);
        self.group_ser.push((vout, ser));
        if self.group_left == 0 {
            self.end_of_group();
        }
        Ok((op, coin))
    }
}

impl<R: Read> Iterator for CoreSnapshotReader<R> {
    type Item = Result<(OutPoint, Coin), SnapshotError>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        if self.read < self.header.coins {
            let r = self.next_coin();
            if r.is_err() {
                self.done = true;
            }
            return Some(r);
        }
        self.done = true;
        self.finish().err().map(Err)
    }
}

/// Writes a Core snapshot of `coins`, which must come sorted by (txid raw bytes, vout) — the order
/// of [`Store::coin_iter`] — and number exactly `header.coins`. Within a txid, outputs are
/// reordered into Core's `VARINT(vout)` byte order. Returns the bytes written.
///
/// # Errors
/// [`SnapshotError::Io`]; [`SnapshotError::CoinCount`] / [`SnapshotError::BadCoin`] if the coins do
/// not match the header or are out of order.
pub fn write_core_snapshot<W: Write>(
    out: W,
    header: &CoreSnapshotHeader,
    coins: impl IntoIterator<Item = (OutPoint, Coin)>,
) -> Result<u64, SnapshotError> {
    let mut w = BufWriter::new(out);
    let mut h = Vec::with_capacity(CORE_SNAPSHOT_HEADER_LEN);
    h.extend_from_slice(&CORE_SNAPSHOT_MAGIC);
    h.extend_from_slice(&CORE_SNAPSHOT_VERSION.to_le_bytes());
    h.extend_from_slice(&header.network.magic().to_bytes());
    h.extend_from_slice(&header.base_hash.to_byte_array());
    h.extend_from_slice(&header.coins.to_le_bytes());
    w.write_all(&h)?;
    let mut written = h.len() as u64;
    let mut group: Vec<(Vec<u8>, u32, Coin)> = Vec::new();
    let mut group_txid: Option<Txid> = None;
    let mut n = 0u64;
    let mut buf = Vec::with_capacity(256);
    let mut flush = |txid: Txid,
                     group: &mut Vec<(Vec<u8>, u32, Coin)>,
                     w: &mut BufWriter<W>|
     -> io::Result<u64> {
        group.sort_by(|a, b| a.0.cmp(&b.0));
        buf.clear();
        buf.extend_from_slice(&txid.to_byte_array());
        write_compact_size(group.len() as u64, &mut buf);
        for (_, vout, coin) in group.iter() {
            write_compact_size(u64::from(*vout), &mut buf);
            encode_coin(coin, &mut buf);
        }
        w.write_all(&buf)?;
        group.clear();
        Ok(buf.len() as u64)
    };
    for (op, coin) in coins {
        if let Some(t) = group_txid.filter(|t| *t != op.txid) {
            if t.to_byte_array() > op.txid.to_byte_array() {
                return Err(SnapshotError::BadCoin {
                    index: n,
                    reason: "coins not sorted by txid".into(),
                });
            }
            written += flush(t, &mut group, &mut w)?;
        }
        group_txid = Some(op.txid);
        let mut key = Vec::with_capacity(5);
        write_varint(u64::from(op.vout), &mut key);
        group.push((key, op.vout, coin));
        n += 1;
    }
    if let Some(t) = group_txid {
        written += flush(t, &mut group, &mut w)?;
    }
    if n != header.coins {
        return Err(SnapshotError::CoinCount {
            reason: format!("header says {}, wrote {n}", header.coins),
        });
    }
    w.flush()?;
    Ok(written)
}

impl Store {
    /// Writes the set at the tip as Bitcoin Core's `dumptxoutset` would (checkpoints first). The
    /// file stays byte-identical to Core's, so it cannot carry a commitment root (use our format,
    /// [`Store::export_snapshot_with_root`], for that).
    ///
    /// # Errors
    /// [`StoreError::Empty`] without a tip, checkpoint/redb errors, [`SnapshotError`] on write.
    pub fn dump_core_snapshot<W: Write>(
        &mut self,
        out: W,
    ) -> Result<CoreSnapshotHeader, StoreError> {
        let tip = self.tip().ok_or(StoreError::Empty)?;
        let header = CoreSnapshotHeader {
            network: self.network(),
            base_hash: tip.hash,
            coins: self.coin_count()?,
        };
        self.stream_coins(|coins| write_core_snapshot(out, &header, coins))?;
        Ok(header)
    }

    /// Loads a Core snapshot into an empty store, all or nothing as seen by users of the store,
    /// in constant memory (chunked commits under an `import_in_progress` marker, exactly as
    /// [`Store::import_snapshot`] describes). `height_of(hash)` resolves the base block in the
    /// caller's header chain; `None` means the block is unknown. With `expected_hash` (Core's
    /// assumeutxo `hash_serialized_3` for that block), the load completes only if the coins hash to
    /// it — Core's format has no checksum of its own; on a mismatch the committed chunks are wiped
    /// before the error returns. Core's format has no commitment root, so none is stored
    /// ([`Store::snapshot_root`] stays `None`).
    ///
    /// # Errors
    /// [`StoreError::NotEmpty`], [`SnapshotError`] (wrong network, unknown block, corrupt,
    /// unsupported version), redb errors. On any error the store is left empty (after a redb error
    /// during the cleanup the handle is poisoned and the next open finishes the wipe).
    pub fn load_core_snapshot<R: Read>(
        &mut self,
        input: R,
        height_of: impl FnOnce(&BlockHash) -> Option<u32>,
        expected_hash: Option<sha256d::Hash>,
    ) -> Result<(CoreSnapshotHeader, Tip), StoreError> {
        let mut reader = CoreSnapshotReader::new(input, self.network())?;
        if let Some(h) = expected_hash {
            reader.expect_hash_serialized_3(h);
        }
        let header = *reader.header();
        let height = height_of(&header.base_hash).ok_or_else(|| SnapshotError::UnknownBlock {
            hash: header.base_hash.to_string(),
        })?;
        let tip = Tip {
            height,
            hash: header.base_hash,
        };
        let mut iter = reader.by_ref().map(|r| r.map_err(StoreError::from));
        self.bulk_load(tip, None, &mut iter)?;
        Ok((header, tip))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_size_roundtrip_and_limits() {
        for n in [0u64, 0xfc, 0xfd, 0xffff, 0x1_0000, COMPACT_SIZE_MAX] {
            let mut b = Vec::new();
            write_compact_size(n, &mut b);
            assert_eq!(read_compact_size(&mut &b[..], "t").unwrap(), n);
        }
        let mut past = Vec::new();
        write_compact_size(COMPACT_SIZE_MAX + 1, &mut past);
        assert!(read_compact_size(&mut &past[..], "t").is_err());
        // Non-canonical: 5 encoded with the 0xfd prefix.
        assert!(read_compact_size(&mut &[0xfd, 5, 0][..], "t").is_err());
    }
}
