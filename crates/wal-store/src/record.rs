//! The postcard payloads of WAL records and of the redb undo table, in plain serde types (raw
//! byte arrays and integers) so the on-disk layout does not depend on other crates' types.

use bitcoin::hashes::Hash;
use bitcoin::{Amount, BlockHash, OutPoint, ScriptBuf, Txid};
use serde::{Deserialize, Serialize};
use utxo_core::Coin;

/// An outpoint as stored: raw txid bytes (internal order) and vout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RawOutPoint {
    /// Txid in internal byte order.
    pub txid: [u8; 32],
    /// Output index.
    pub vout: u32,
}

impl RawOutPoint {
    /// The redb key: txid raw bytes then vout big-endian (so keys sort as `hash_serialized_3` does).
    pub fn key(&self) -> [u8; 36] {
        let mut k = [0u8; 36];
        k[..32].copy_from_slice(&self.txid);
        k[32..].copy_from_slice(&self.vout.to_be_bytes());
        k
    }
    /// Inverse of [`RawOutPoint::key`]; `None` if the key is not 36 bytes.
    pub fn from_key(k: &[u8]) -> Option<RawOutPoint> {
        if k.len() != 36 {
            return None;
        }
        let mut txid = [0u8; 32];
        txid.copy_from_slice(&k[..32]);
        let mut v = [0u8; 4];
        v.copy_from_slice(&k[32..]);
        Some(RawOutPoint {
            txid,
            vout: u32::from_be_bytes(v),
        })
    }
}

impl From<&OutPoint> for RawOutPoint {
    fn from(o: &OutPoint) -> Self {
        RawOutPoint {
            txid: o.txid.to_byte_array(),
            vout: o.vout,
        }
    }
}
impl From<RawOutPoint> for OutPoint {
    fn from(o: RawOutPoint) -> Self {
        OutPoint {
            txid: Txid::from_byte_array(o.txid),
            vout: o.vout,
        }
    }
}

/// A coin as stored in WAL records and undo entries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RawCoin {
    /// `height * 2 + is_coinbase`.
    pub code: u32,
    /// Value in satoshis.
    pub amount: u64,
    /// scriptPubKey bytes.
    pub script: Vec<u8>,
}

impl From<&Coin> for RawCoin {
    fn from(c: &Coin) -> Self {
        RawCoin {
            code: c.height.wrapping_mul(2) | u32::from(c.is_coinbase),
            amount: c.amount.to_sat(),
            script: c.script_pubkey.as_bytes().to_vec(),
        }
    }
}
impl From<&RawCoin> for Coin {
    fn from(c: &RawCoin) -> Self {
        Coin {
            amount: Amount::from_sat(c.amount),
            height: c.code >> 1,
            is_coinbase: c.code & 1 == 1,
            script_pubkey: ScriptBuf::from_bytes(c.script.clone()),
        }
    }
}

/// One connected block: what the WAL logs and the undo table keeps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockEntry {
    /// Block height.
    pub height: u32,
    /// Block hash (internal byte order).
    pub hash: [u8; 32],
    /// Parent hash (internal byte order).
    pub prev_hash: [u8; 32],
    /// Coins the block created (net: not those it also spent).
    pub created: Vec<(RawOutPoint, RawCoin)>,
    /// Coins the block spent that existed before it.
    pub spent: Vec<(RawOutPoint, RawCoin)>,
    /// utxo-core's `BlockUndo` encoding (per-transaction spent coins, for `disconnect_block`).
    pub undo: Vec<u8>,
    /// Commitment root after this block, filled by the Merkle layer when present.
    pub commitment_root: Option<[u8; 32]>,
}

/// A WAL record payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Payload {
    /// A block connected on top of the tip.
    Block(BlockEntry),
    /// The tip block was disconnected (its undo is applied on replay).
    Disconnect {
        /// Height of the disconnected block.
        height: u32,
        /// Its hash.
        hash: [u8; 32],
    },
    /// A raw batch of coin writes (from a `CoinCache` flush through `CoinStore::write`).
    Batch {
        /// Coins written.
        upserts: Vec<(RawOutPoint, RawCoin)>,
        /// Coins deleted.
        deletes: Vec<RawOutPoint>,
        /// The best block the store reflects after the batch (hash, height), if the writer knows it.
        best_block: Option<([u8; 32], u32)>,
    },
}

/// The tip the store stands on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tip {
    /// Height of the tip block.
    pub height: u32,
    /// Hash of the tip block.
    pub hash: BlockHash,
}

impl Tip {
    pub(crate) fn encode(&self) -> [u8; 36] {
        let mut out = [0u8; 36];
        out[..4].copy_from_slice(&self.height.to_le_bytes());
        out[4..].copy_from_slice(&self.hash.to_byte_array());
        out
    }
    pub(crate) fn decode(b: &[u8]) -> Option<Tip> {
        if b.len() != 36 {
            return None;
        }
        let mut h = [0u8; 4];
        h.copy_from_slice(&b[..4]);
        let mut hash = [0u8; 32];
        hash.copy_from_slice(&b[4..]);
        Some(Tip {
            height: u32::from_le_bytes(h),
            hash: BlockHash::from_byte_array(hash),
        })
    }
}
