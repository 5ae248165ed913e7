//! Our snapshot format: a fixed header (magic, format version, network, tip height and hash, coin
//! count, MuHash of the set, and since version 2 the caller's commitment root), the coins in
//! strictly increasing (txid, vout) order with fixed-width little-endian fields, and a trailing
//! blake3 checksum of everything before it. Written and read as streams in constant memory; see
//! [`crate::format`] for the byte layout.
//!
//! The commitment root is opaque here (32 bytes the caller computes, e.g. the `merkle-proofs`
//! root): this crate stores and returns it, and [`Store::import_snapshot_checked`] compares it with
//! the root a caller-supplied [`CommitmentCheck`] computes over the coins before the import
//! completes.

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
/// Newest version of our snapshot format: version 1 plus the commitment root in the header. This
/// build writes it for every snapshot that has a root, and reads it.
pub const SNAPSHOT_FORMAT_VERSION: u32 = 2;
/// The previous version (no commitment root field). Still read (the root is then absent), and
/// written, byte for byte as before, for a snapshot without a root.
pub const SNAPSHOT_FORMAT_VERSION_V1: u32 = 1;
/// Header length in bytes (version 2).
pub const SNAPSHOT_HEADER_LEN: usize = SNAPSHOT_HEADER_LEN_V1 + 32;
/// Header length in bytes of version 1.
pub const SNAPSHOT_HEADER_LEN_V1: usize = 8 + 4 + 4 + 4 + 32 + 8 + 32;
/// Fixed part of one coin record (before the script bytes).
pub const SNAPSHOT_COIN_FIXED_LEN: usize = 32 + 4 + 4 + 8 + 4;

/// What a snapshot header says about the set (every version).
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

/// Everything a snapshot file's header says: its format version, the set's header, and the
/// commitment root (present in version 2, absent in version 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct SnapshotInfo {
    /// Format version of the file ([`SNAPSHOT_FORMAT_VERSION`] or [`SNAPSHOT_FORMAT_VERSION_V1`]).
    pub version: u32,
    /// Network, tip, coin count, MuHash.
    pub header: SnapshotHeader,
    /// The commitment root the writer gave (opaque to this crate); `None` in a version-1 file.
    pub commitment_root: Option<[u8; 32]>,
}

impl SnapshotHeader {
    /// The header bytes: version 2 with `root`, version 1 without.
    fn encode(&self, root: Option<&[u8; 32]>) -> Vec<u8> {
        let version = match root {
            Some(_) => SNAPSHOT_FORMAT_VERSION,
            None => SNAPSHOT_FORMAT_VERSION_V1,
        };
        let mut h = Vec::with_capacity(SNAPSHOT_HEADER_LEN);
        h.extend_from_slice(&SNAPSHOT_MAGIC);
        h.extend_from_slice(&version.to_le_bytes());
        h.extend_from_slice(&self.network.magic().to_bytes());
        h.extend_from_slice(&self.tip.height.to_le_bytes());
        h.extend_from_slice(&self.tip.hash.to_byte_array());
        h.extend_from_slice(&self.coins.to_le_bytes());
        h.extend_from_slice(&self.muhash);
        if let Some(r) = root {
            h.extend_from_slice(r);
        }
        h
    }
}

/// Computes the commitment root of a snapshot's coins while [`Store::import_snapshot_checked`]
/// streams them, so the import can refuse a snapshot whose coins do not commit to the root its
/// header carries. This crate does not know how the root is computed (that is the Merkle layer's).
pub trait CommitmentCheck {
    /// Sees one coin, in file order, after it decoded and passed the order and limit checks.
    /// Called only for a snapshot that carries a root.
    fn add_coin(&mut self, outpoint: &OutPoint, coin: &Coin);
    /// The root of every coin seen. Called once, after the last coin, the count, MuHash, checksum
    /// and end of stream verified, and only for a snapshot that carries a root.
    ///
    /// # Errors
    /// Any reason the root cannot be computed; the import is then refused
    /// ([`SnapshotError::CommitmentCheck`]).
    fn root(&mut self) -> Result<[u8; 32], String>;
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

/// Streams a snapshot without a commitment root (format version 1; see
/// [`write_snapshot_with_root`]). Returns the bytes written.
///
/// # Errors
/// As [`write_snapshot_with_root`].
pub fn write_snapshot<W: Write>(
    out: W,
    header: &SnapshotHeader,
    coins: impl IntoIterator<Item = (OutPoint, Coin)>,
) -> Result<u64, SnapshotError> {
    write_snapshot_with_root(out, header, None, coins)
}

/// Streams a snapshot: header (format version 2 carrying `commitment_root` when it is `Some`,
/// version 1 otherwise), `coins` (must be in strictly increasing (txid raw, vout) order and exactly
/// `header.coins` of them), trailing checksum. Returns the bytes written.
///
/// ```
/// use bitcoin::{BlockHash, Network, hashes::Hash};
/// use utxo_core::muhash::MuHash3072;
/// use wal_store::Tip;
/// use wal_store::snapshot::{SnapshotHeader, SnapshotReader, write_snapshot_with_root};
///
/// let header = SnapshotHeader {
///     network: Network::Regtest,
///     tip: Tip { height: 0, hash: BlockHash::all_zeros() },
///     coins: 0,
///     muhash: MuHash3072::default().finalize(),
/// };
/// let mut file = Vec::new();
/// write_snapshot_with_root(&mut file, &header, Some([7; 32]), std::iter::empty())?;
/// let reader = SnapshotReader::new(&file[..], Network::Regtest)?;
/// assert_eq!(reader.info().version, 2);
/// assert_eq!(reader.info().commitment_root, Some([7; 32]));
/// # Ok::<(), wal_store::SnapshotError>(())
/// ```
///
/// # Errors
/// [`SnapshotError::Io`]; [`SnapshotError::CoinCount`] or [`SnapshotError::BadCoin`] if the coins
/// do not match the header (the output is then incomplete and will not verify).
pub fn write_snapshot_with_root<W: Write>(
    out: W,
    header: &SnapshotHeader,
    commitment_root: Option<[u8; 32]>,
    coins: impl IntoIterator<Item = (OutPoint, Coin)>,
) -> Result<u64, SnapshotError> {
    let mut w = HashWriter {
        inner: io::BufWriter::new(out),
        hasher: blake3::Hasher::new(),
        bytes: 0,
    };
    w.write_all(&header.encode(commitment_root.as_ref()))?;
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
    info: SnapshotInfo,
    read: u64,
    muhash: MuHash3072,
    prev: Option<([u8; 32], u32)>,
    done: bool,
    ser: Vec<u8>,
}

impl<R: Read> SnapshotReader<R> {
    /// Reads and checks the header (format version 2, or version 1 without a root).
    ///
    /// # Errors
    /// [`SnapshotError::BadMagic`], [`SnapshotError::UnsupportedVersion`] (newer format),
    /// [`SnapshotError::WrongNetwork`], [`SnapshotError::CoinCount`], truncation.
    pub fn new(input: R, network: Network) -> Result<SnapshotReader<R>, SnapshotError> {
        let mut inner = io::BufReader::new(input);
        let mut h = [0u8; SNAPSHOT_HEADER_LEN];
        read_exact(&mut inner, &mut h[..12], "header")?;
        if h[0..8] != SNAPSHOT_MAGIC {
            return Err(SnapshotError::BadMagic { format: "l2btc" });
        }
        let version = u32::from_le_bytes(arr(&h[8..12]));
        let len = match version {
            SNAPSHOT_FORMAT_VERSION => SNAPSHOT_HEADER_LEN,
            SNAPSHOT_FORMAT_VERSION_V1 => SNAPSHOT_HEADER_LEN_V1,
            _ => {
                return Err(SnapshotError::UnsupportedVersion {
                    format: "l2btc",
                    found: version,
                    supported: SNAPSHOT_FORMAT_VERSION,
                });
            }
        };
        let h = &mut h[..len];
        read_exact(&mut inner, &mut h[12..], "header")?;
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
        let commitment_root =
            (version == SNAPSHOT_FORMAT_VERSION).then(|| arr(&h[92..SNAPSHOT_HEADER_LEN]));
        let mut hasher = blake3::Hasher::new();
        hasher.update(h);
        Ok(SnapshotReader {
            inner,
            hasher,
            info: SnapshotInfo {
                version,
                header,
                commitment_root,
            },
            read: 0,
            muhash: MuHash3072::default(),
            prev: None,
            done: false,
            ser: Vec::with_capacity(128),
        })
    }

    /// The header (already checked for magic, version and network).
    pub fn header(&self) -> &SnapshotHeader {
        &self.info.header
    }

    /// Format version, header and commitment root. The root is covered by the trailing checksum
    /// like every header byte, so it is trustworthy only once the iterator has ended without error.
    pub fn info(&self) -> &SnapshotInfo {
        &self.info
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
        if computed != self.info.header.muhash {
            return Err(SnapshotError::MuHashMismatch {
                header: hex_bytes(&self.info.header.muhash),
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
        if self.read < self.info.header.coins {
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
    /// Writes the set at the tip in our snapshot format without a commitment root (format version
    /// 1, byte for byte as before version 2 existed); see [`Store::export_snapshot_with_root`].
    ///
    /// # Errors
    /// As [`Store::export_snapshot_with_root`].
    pub fn export_snapshot<W: Write>(&mut self, out: W) -> Result<SnapshotHeader, StoreError> {
        Ok(self.export_snapshot_with_root(out, None)?.header)
    }

    /// Writes the set at the tip in our snapshot format (checkpoints first), in constant memory:
    /// format version 2 carrying `commitment_root` (the caller's root of this set, opaque here)
    /// when it is `Some`, version 1 otherwise. The header's MuHash comes from [`Store::stats`]
    /// when tracked, else from a first pass.
    ///
    /// # Errors
    /// [`StoreError::Empty`] without a tip, checkpoint/redb errors, [`SnapshotError`] on write.
    pub fn export_snapshot_with_root<W: Write>(
        &mut self,
        out: W,
        commitment_root: Option<[u8; 32]>,
    ) -> Result<SnapshotInfo, StoreError> {
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
        self.stream_coins(|coins| write_snapshot_with_root(out, &header, commitment_root, coins))?;
        Ok(SnapshotInfo {
            version: if commitment_root.is_some() {
                SNAPSHOT_FORMAT_VERSION
            } else {
                SNAPSHOT_FORMAT_VERSION_V1
            },
            header,
            commitment_root,
        })
    }

    /// Loads our snapshot (either version) into an empty store without checking its commitment
    /// root against the coins (see [`Store::import_snapshot_checked`]); otherwise the same.
    ///
    /// # Errors
    /// As [`Store::import_snapshot_checked`].
    pub fn import_snapshot<R: Read>(
        &mut self,
        input: R,
        is_known: impl FnOnce(&Tip) -> bool,
    ) -> Result<SnapshotHeader, StoreError> {
        Ok(self.import_impl(input, is_known, None)?.header)
    }

    /// Loads our snapshot into an empty store, all or nothing as seen by users of the store, in
    /// constant memory (plus what `check` keeps): the coins are committed in redb transactions of
    /// at most [`StoreOptions::import_chunk_coins`](crate::StoreOptions::import_chunk_coins) coins
    /// under an `import_in_progress` marker, and the tip, statistics, commitment root and marker
    /// removal go into the last transaction, after the count, MuHash, checksum and end of stream
    /// verified and, for a file carrying a commitment root (version 2), after `check` computed the
    /// same root over the coins. If a check fails (or the input errors), the chunks already
    /// committed are wiped before the error returns; if the process dies mid-import, the next
    /// [`Store::open`] wipes them
    /// ([`RecoveryReport::wiped_import_coins`](crate::RecoveryReport::wiped_import_coins)).
    /// `is_known(&tip)` must confirm the snapshot's block belongs to the caller's chain. A
    /// version-1 file (no root) imports unchecked: the returned [`SnapshotInfo::commitment_root`]
    /// is `None`, and `check` is never called. The root of a completed import is kept and returned
    /// by [`Store::snapshot_root`].
    ///
    /// # Errors
    /// [`StoreError::NotEmpty`], [`SnapshotError`] (wrong network, unknown block, corrupt, newer
    /// version, [`SnapshotError::CommitmentMismatch`], [`SnapshotError::CommitmentCheck`]), redb
    /// errors. On any error the store is left empty (after a redb error during the cleanup the
    /// handle is poisoned and the next open finishes the wipe).
    pub fn import_snapshot_checked<R: Read>(
        &mut self,
        input: R,
        is_known: impl FnOnce(&Tip) -> bool,
        check: &mut dyn CommitmentCheck,
    ) -> Result<SnapshotInfo, StoreError> {
        self.import_impl(input, is_known, Some(check))
    }

    fn import_impl<R: Read>(
        &mut self,
        input: R,
        is_known: impl FnOnce(&Tip) -> bool,
        mut check: Option<&mut dyn CommitmentCheck>,
    ) -> Result<SnapshotInfo, StoreError> {
        let mut reader = SnapshotReader::new(input, self.network())?;
        let info = *reader.info();
        if !is_known(&info.header.tip) {
            return Err(SnapshotError::UnknownBlock {
                hash: info.header.tip.hash.to_string(),
            }
            .into());
        }
        // The checker only runs for a file that carries a root.
        if info.commitment_root.is_none() {
            check = None;
        }
        let mut ended = false;
        let mut iter = std::iter::from_fn(|| {
            if ended {
                return None;
            }
            match reader.next() {
                Some(Ok((op, coin))) => {
                    if let Some(c) = check.as_mut() {
                        c.add_coin(&op, &coin);
                    }
                    Some(Ok((op, coin)))
                }
                Some(Err(e)) => {
                    ended = true;
                    Some(Err(e.into()))
                }
                None => {
                    // Everything in the file verified; compare the roots before the last commit.
                    ended = true;
                    let (c, expected) = (check.as_mut()?, info.commitment_root?);
                    match c.root() {
                        Ok(computed) if computed == expected => None,
                        Ok(computed) => Some(Err(SnapshotError::CommitmentMismatch {
                            file: hex_bytes(&expected),
                            computed: hex_bytes(&computed),
                        }
                        .into())),
                        Err(reason) => Some(Err(SnapshotError::CommitmentCheck { reason }.into())),
                    }
                }
            }
        });
        self.bulk_load(info.header.tip, info.commitment_root, &mut iter)?;
        Ok(info)
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
        .encode(Some(&[9; 32]))
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
    fn empty_set_roundtrip_in_both_versions() {
        let header = SnapshotHeader {
            network: Network::Regtest,
            tip: Tip {
                height: 0,
                hash: BlockHash::all_zeros(),
            },
            coins: 0,
            muhash: MuHash3072::default().finalize(),
        };
        let mut v1 = Vec::new();
        write_snapshot(&mut v1, &header, std::iter::empty()).unwrap();
        assert_eq!(v1.len(), SNAPSHOT_HEADER_LEN_V1 + 32);
        let mut r = SnapshotReader::new(&v1[..], Network::Regtest).unwrap();
        assert_eq!(r.info().version, SNAPSHOT_FORMAT_VERSION_V1);
        assert_eq!(r.info().commitment_root, None);
        assert!(r.next().is_none());

        let mut v2 = Vec::new();
        write_snapshot_with_root(&mut v2, &header, Some([3; 32]), std::iter::empty()).unwrap();
        assert_eq!(v2.len(), SNAPSHOT_HEADER_LEN + 32);
        assert_eq!(
            v2[..92],
            {
                let mut v = v1[..92].to_vec();
                v[8] = 2;
                v
            }[..]
        );
        assert_eq!(v2[92..124], [3; 32]);
        let mut r = SnapshotReader::new(&v2[..], Network::Regtest).unwrap();
        assert_eq!(r.info().version, SNAPSHOT_FORMAT_VERSION);
        assert_eq!(r.info().commitment_root, Some([3; 32]));
        assert_eq!(r.header(), &header);
        assert!(r.next().is_none());
        // A version-2 header cut inside the root is truncated, not read as version 1.
        assert!(matches!(
            SnapshotReader::new(&v2[..100], Network::Regtest),
            Err(SnapshotError::Truncated { what: "header" })
        ));
    }
}
