//! Our snapshot format: a fixed header (magic, format version, network, tip height and hash, coin
//! count, MuHash of the set), the coins in strictly increasing (txid, vout) order with fixed-width
//! little-endian fields, and a trailing blake3 checksum of everything before it. Written and read
//! as streams in constant memory; see [`crate::format`] for the byte layout.

use std::io::{self, Read, Write};

use bitcoin::hashes::Hash;
use bitcoin::{Amount, BlockHash, Network, OutPoint, ScriptBuf, Txid};
use utxo_core::muhash::MuHash3072;
use utxo_core::{Coin, SCRIPT_SIZE_MAX, txout_ser};

use crate::SNAPSHOT_COINS_MAX;
use crate::error::{SnapshotError, StoreError};
use crate::record::Tip;
use crate::store::Store;

/// Magic bytes at the start of our snapshot.
pub const SNAPSHOT_MAGIC: [u8; 8] = *b"l2btcUTX";
/// Version of our snapshot format this build writes and reads.
pub const SNAPSHOT_FORMAT_VERSION: u32 = 1;
/// Header length in bytes.
pub const SNAPSHOT_HEADER_LEN: usize = 8 + 4 + 4 + 4 + 32 + 8 + 32;
/// Fixed part of one coin record (before the script bytes).
pub const SNAPSHOT_COIN_FIXED_LEN: usize = 32 + 4 + 4 + 8 + 4;

/// What a snapshot header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotHeader {
    /// Network the set belongs to.
    pub network: Network,
    /// Block the set is the state after.
    pub tip: Tip,
    /// Number of coins.
    pub coins: u64,
    /// MuHash3072 digest of the set (as `MuHash3072::finalize` returns it, not byte-reversed).
    pub muhash: [u8; 32],
}

impl SnapshotHeader {
    fn encode(&self) -> [u8; SNAPSHOT_HEADER_LEN] {
        let mut h = [0u8; SNAPSHOT_HEADER_LEN];
        h[0..8].copy_from_slice(&SNAPSHOT_MAGIC);
        h[8..12].copy_from_slice(&SNAPSHOT_FORMAT_VERSION.to_le_bytes());
        h[12..16].copy_from_slice(&self.network.magic().to_bytes());
        h[16..20].copy_from_slice(&self.tip.height.to_le_bytes());
        h[20..52].copy_from_slice(&self.tip.hash.to_byte_array());
        h[52..60].copy_from_slice(&self.coins.to_le_bytes());
        h[60..92].copy_from_slice(&self.muhash);
        h
    }
}

/// A writer that hashes everything it passes on.
struct HashWriter<W> {
    inner: W,
    hasher: blake3::Hasher,
    bytes: u64,
}

impl<W: Write> Write for HashWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Streams a snapshot: header, `coins` (must be in strictly increasing (txid raw, vout) order and
/// exactly `header.coins` of them), trailing checksum. Returns the bytes written.
///
/// # Errors
/// [`SnapshotError::Io`]; [`SnapshotError::CoinCount`] or [`SnapshotError::BadCoin`] if the coins
/// do not match the header (the output is then incomplete and will not verify).
pub fn write_snapshot<W: Write>(
    out: W,
    header: &SnapshotHeader,
    coins: impl IntoIterator<Item = (OutPoint, Coin)>,
) -> Result<u64, SnapshotError> {
    let mut w = HashWriter {
        inner: io::BufWriter::new(out),
        hasher: blake3::Hasher::new(),
        bytes: 0,
    };
    w.write_all(&header.encode())?;
    let mut n = 0u64;
    let mut prev: Option<(Txid, u32)> = None;
    for (op, coin) in coins {
        let key = (op.txid, op.vout);
        if prev.is_some_and(|p| p.0.to_byte_array() > key.0.to_byte_array() || p == key) {
            return Err(SnapshotError::BadCoin {
                index: n,
                reason: "coins out of order".into(),
            });
        }
        prev = Some(key);
        let script = coin.script_pubkey.as_bytes();
        let len = u32::try_from(script.len())
            .ok()
            .filter(|l| *l as usize <= SCRIPT_SIZE_MAX)
            .ok_or(SnapshotError::BadCoin {
                index: n,
                reason: "script too long".into(),
            })?;
        let mut rec = [0u8; SNAPSHOT_COIN_FIXED_LEN];
        rec[0..32].copy_from_slice(&op.txid.to_byte_array());
        rec[32..36].copy_from_slice(&op.vout.to_le_bytes());
        rec[36..40].copy_from_slice(&coin.code().to_le_bytes());
        rec[40..48].copy_from_slice(&coin.amount.to_sat().to_le_bytes());
        rec[48..52].copy_from_slice(&len.to_le_bytes());
        w.write_all(&rec)?;
        w.write_all(script)?;
        n += 1;
    }
    if n != header.coins {
        return Err(SnapshotError::CoinCount {
            reason: format!("header says {}, wrote {n}", header.coins),
        });
    }
    let sum = w.hasher.finalize();
    w.inner.write_all(sum.as_bytes())?;
    w.inner.flush()?;
    Ok(w.bytes + 32)
}

/// Streaming reader of our snapshot format: an iterator of coins that, after the last coin,
/// verifies the count, the MuHash, the trailing checksum and the end of the stream, and yields an
/// error instead of ending if any check fails. Consumers must not commit anything before the
/// iterator has returned `None`.
pub struct SnapshotReader<R> {
    inner: io::BufReader<R>,
    hasher: blake3::Hasher,
    header: SnapshotHeader,
    read: u64,
    muhash: MuHash3072,
    prev: Option<([u8; 32], u32)>,
    done: bool,
    ser: Vec<u8>,
}

impl<R: Read> SnapshotReader<R> {
    /// Reads and checks the header.
    ///
    /// # Errors
    /// [`SnapshotError::BadMagic`], [`SnapshotError::UnsupportedVersion`] (newer format),
    /// [`SnapshotError::WrongNetwork`], [`SnapshotError::CoinCount`], truncation.
    pub fn new(input: R, network: Network) -> Result<SnapshotReader<R>, SnapshotError> {
        let mut inner = io::BufReader::new(input);
        let mut h = [0u8; SNAPSHOT_HEADER_LEN];
        read_exact(&mut inner, &mut h, "header")?;
        if h[0..8] != SNAPSHOT_MAGIC {
            return Err(SnapshotError::BadMagic { format: "l2btc" });
        }
        let version = u32::from_le_bytes(arr(&h[8..12]));
        if version != SNAPSHOT_FORMAT_VERSION {
            return Err(SnapshotError::UnsupportedVersion {
                format: "l2btc",
                found: version,
                supported: SNAPSHOT_FORMAT_VERSION,
            });
        }
        let magic: [u8; 4] = arr(&h[12..16]);
        if magic != network.magic().to_bytes() {
            return Err(SnapshotError::WrongNetwork {
                found: hex_bytes(&magic),
                expected: hex_bytes(&network.magic().to_bytes()),
            });
        }
        let coins = u64::from_le_bytes(arr(&h[52..60]));
        if coins > SNAPSHOT_COINS_MAX {
            return Err(SnapshotError::CoinCount {
                reason: format!("{coins} exceeds the maximum {SNAPSHOT_COINS_MAX}"),
            });
        }
        let header = SnapshotHeader {
            network,
            tip: Tip {
                height: u32::from_le_bytes(arr(&h[16..20])),
                hash: BlockHash::from_byte_array(arr(&h[20..52])),
            },
            coins,
            muhash: arr(&h[60..92]),
        };
        let mut hasher = blake3::Hasher::new();
        hasher.update(&h);
        Ok(SnapshotReader {
            inner,
            hasher,
            header,
            read: 0,
            muhash: MuHash3072::default(),
            prev: None,
            done: false,
            ser: Vec::with_capacity(128),
        })
    }

    /// The header (already checked for magic, version and network).
    pub fn header(&self) -> &SnapshotHeader {
        &self.header
    }

    fn next_coin(&mut self) -> Result<(OutPoint, Coin), SnapshotError> {
        let index = self.read;
        let mut rec = [0u8; SNAPSHOT_COIN_FIXED_LEN];
        read_exact(&mut self.inner, &mut rec, "coin")?;
        self.hasher.update(&rec);
        let txid: [u8; 32] = arr(&rec[0..32]);
        let vout = u32::from_le_bytes(arr(&rec[32..36]));
        let code = u32::from_le_bytes(arr(&rec[36..40]));
        let sat = u64::from_le_bytes(arr(&rec[40..48]));
        let len = u32::from_le_bytes(arr(&rec[48..52])) as usize;
        let bad = |reason: &str| SnapshotError::BadCoin {
            index,
            reason: reason.to_string(),
        };
        if self.prev.is_some_and(|p| p >= (txid, vout)) {
            return Err(bad("coins out of order or duplicated"));
        }
        self.prev = Some((txid, vout));
        if sat > Amount::MAX_MONEY.to_sat() {
            return Err(bad("amount above MAX_MONEY"));
        }
        if len > SCRIPT_SIZE_MAX {
            return Err(bad("script longer than 10,000 bytes"));
        }
        let mut script = vec![0u8; len];
        read_exact(&mut self.inner, &mut script, "script")?;
        self.hasher.update(&script);
        let op = OutPoint {
            txid: Txid::from_byte_array(txid),
            vout,
        };
        let coin = Coin {
            amount: Amount::from_sat(sat),
            height: code >> 1,
            is_coinbase: code & 1 == 1,
            script_pubkey: ScriptBuf::from_bytes(script),
        };
        self.ser.clear();
        txout_ser(&op, &coin, &mut self.ser);
        self.muhash.insert(&self.ser);
        self.read += 1;
        Ok((op, coin))
    }

    fn finish(&mut self) -> Result<(), SnapshotError> {
        let mut sum = [0u8; 32];
        read_exact(&mut self.inner, &mut sum, "checksum")?;
        if self.hasher.finalize().as_bytes() != &sum {
            return Err(SnapshotError::Checksum);
        }
        let mut extra = [0u8; 1];
        if self.inner.read(&mut extra)? != 0 {
            return Err(SnapshotError::TrailingBytes);
        }
        let computed = self.muhash.finalize();
        if computed != self.header.muhash {
            return Err(SnapshotError::MuHashMismatch {
                header: hex_bytes(&self.header.muhash),
                computed: hex_bytes(&computed),
            });
        }
        Ok(())
    }
}

impl<R: Read> Iterator for SnapshotReader<R> {
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

pub(crate) fn read_exact<R: Read>(
    r: &mut R,
    buf: &mut [u8],
    what: &'static str,
) -> Result<(), SnapshotError> {
    r.read_exact(buf).map_err(|e| {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            SnapshotError::Truncated { what }
        } else {
            SnapshotError::Io(e)
        }
    })
}

pub(crate) fn arr<const N: usize>(b: &[u8]) -> [u8; N] {
    let mut a = [0u8; N];
    a.copy_from_slice(b);
    a
}

pub(crate) fn hex_bytes(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl Store {
    /// Writes the set at the tip in our snapshot format (checkpoints first), in constant memory:
    /// the header's MuHash comes from [`Store::stats`] when tracked, else from a first pass.
    ///
    /// # Errors
    /// [`StoreError::Empty`] without a tip, checkpoint/redb errors, [`SnapshotError`] on write.
    pub fn export_snapshot<W: Write>(&mut self, out: W) -> Result<SnapshotHeader, StoreError> {
        let tip = self.tip().ok_or(StoreError::Empty)?;
        // With MuHash tracked, the header comes from the statistics (one pass over the coins);
        // otherwise a first pass computes it.
        let (coins, digest) = match self.stats().muhash.as_ref().map(MuHash3072::finalize) {
            Some(d) => (self.coin_count()?, d),
            None => {
                let mut muhash = MuHash3072::default();
                let mut ser = Vec::with_capacity(128);
                let n = self.for_each_coin(|op, coin| {
                    ser.clear();
                    txout_ser(&op, &coin, &mut ser);
                    muhash.insert(&ser);
                    Ok(())
                })?;
                (n, muhash.finalize())
            }
        };
        let header = SnapshotHeader {
            network: self.network(),
            tip,
            coins,
            muhash: digest,
        };
        self.stream_coins(|coins| write_snapshot(out, &header, coins))?;
        Ok(header)
    }

    /// Loads our snapshot into an empty store, all or nothing as seen by users of the store, in
    /// constant memory: the coins are committed in redb transactions of at most
    /// [`StoreOptions::import_chunk_coins`](crate::StoreOptions::import_chunk_coins) coins under an
    /// `import_in_progress` marker, and the tip, statistics and marker removal go into the last
    /// transaction, after the count, MuHash, checksum and end of stream verified. If a check fails
    /// (or the input errors), the chunks already committed are wiped before the error returns; if
    /// the process dies mid-import, the next [`Store::open`] wipes them
    /// ([`RecoveryReport::wiped_import_coins`](crate::RecoveryReport::wiped_import_coins)).
    /// `is_known(&tip)` must confirm the snapshot's block belongs to the caller's chain.
    ///
    /// # Errors
    /// [`StoreError::NotEmpty`], [`SnapshotError`] (wrong network, unknown block, corrupt, newer
    /// version), redb errors. On any error the store is left empty (after a redb error during the
    /// cleanup the handle is poisoned and the next open finishes the wipe).
    pub fn import_snapshot<R: Read>(
        &mut self,
        input: R,
        is_known: impl FnOnce(&Tip) -> bool,
    ) -> Result<SnapshotHeader, StoreError> {
        let mut reader = SnapshotReader::new(input, self.network())?;
        let header = *reader.header();
        if !is_known(&header.tip) {
            return Err(SnapshotError::UnknownBlock {
                hash: header.tip.hash.to_string(),
            }
            .into());
        }
        let mut iter = reader.by_ref().map(|r| r.map_err(StoreError::from));
        self.bulk_load(header.tip, &mut iter)?;
        Ok(header)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header_with_count(coins: u64) -> Vec<u8> {
        SnapshotHeader {
            network: Network::Regtest,
            tip: Tip {
                height: 1,
                hash: BlockHash::all_zeros(),
            },
            coins,
            muhash: [0; 32],
        }
        .encode()
        .to_vec()
    }

    #[test]
    fn coin_count_limit() {
        // At the limit the header is accepted (the stream then ends early).
        let at = header_with_count(SNAPSHOT_COINS_MAX);
        let mut r = SnapshotReader::new(&at[..], Network::Regtest).unwrap();
        assert!(matches!(
            r.next(),
            Some(Err(SnapshotError::Truncated { .. }))
        ));
        let past = header_with_count(SNAPSHOT_COINS_MAX + 1);
        assert!(matches!(
            SnapshotReader::new(&past[..], Network::Regtest),
            Err(SnapshotError::CoinCount { .. })
        ));
    }

    #[test]
    fn empty_set_roundtrip() {
        let mut out = Vec::new();
        let header = SnapshotHeader {
            network: Network::Regtest,
            tip: Tip {
                height: 0,
                hash: BlockHash::all_zeros(),
            },
            coins: 0,
            muhash: MuHash3072::default().finalize(),
        };
        write_snapshot(&mut out, &header, std::iter::empty()).unwrap();
        assert_eq!(out.len(), SNAPSHOT_HEADER_LEN + 32);
        let mut r = SnapshotReader::new(&out[..], Network::Regtest).unwrap();
        assert!(r.next().is_none());
    }
}
