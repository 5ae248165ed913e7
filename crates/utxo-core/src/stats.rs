//! Bitcoin Core-compatible UTXO statistics (`gettxoutsetinfo`): `txouts`, `bogosize`,
//! `total_amount`, MuHash3072 and `hash_serialized_3`, kept incrementally from [`ChangeSet`]s.

use bitcoin::hashes::{Hash, HashEngine, sha256d};
use bitcoin::{Amount, OutPoint};

use crate::changes::ChangeSet;
use crate::coin::{Coin, CoinParts};
use crate::muhash::MuHash3072;

/// Appends Core's `TxOutSer` of one coin: txid (raw order), vout (u32 LE), `height * 2 + coinbase`
/// (u32 LE), amount (i64 LE), CompactSize script length and script. MuHash and
/// `hash_serialized_3` hash exactly these bytes.
pub fn txout_ser(outpoint: &OutPoint, coin: &Coin, out: &mut Vec<u8>) {
    txout_ser_parts(outpoint, coin.parts(), out);
}

/// [`txout_ser`] of borrowed coin fields.
fn txout_ser_parts(outpoint: &OutPoint, coin: CoinParts<'_>, out: &mut Vec<u8>) {
    out.extend_from_slice(outpoint.txid.as_byte_array());
    out.extend_from_slice(&outpoint.vout.to_le_bytes());
    out.extend_from_slice(&coin.code.to_le_bytes());
    out.extend_from_slice(&coin.amount.to_sat().to_le_bytes());
    let script = coin.script.as_bytes();
    write_compact_size(script.len() as u64, out);
    out.extend_from_slice(script);
}

/// Bitcoin's `CompactSize` length prefix (also used to serialize transactions for their txids).
#[allow(clippy::cast_possible_truncation)] // Each arm's range fits its width.
pub(crate) fn write_compact_size(n: u64, out: &mut Vec<u8>) {
    match n {
        0..=0xfc => out.push(n as u8),
        0xfd..=0xffff => {
            out.push(0xfd);
            out.extend_from_slice(&(n as u16).to_le_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            out.push(0xfe);
            out.extend_from_slice(&(n as u32).to_le_bytes());
        }
        _ => {
            out.push(0xff);
            out.extend_from_slice(&n.to_le_bytes());
        }
    }
}

/// Core's per-coin size estimate: 32 (txid) + 4 (vout) + 4 (height) + 8 (amount) + 2 + script.
pub fn bogosize(coin: &Coin) -> u64 {
    50 + coin.script_pubkey.len() as u64
}

/// `hash_serialized_3`: one double-SHA256 over every coin's [`txout_ser`], the coins in Core's
/// chainstate order (txid raw bytes, then vout ascending). The caller supplies that order, e.g. from
/// [`crate::UtxoSet::sorted_coins`]. Display it with `to_string()` for Core's byte-reversed hex.
pub fn hash_serialized_3<'a>(
    sorted: impl IntoIterator<Item = (&'a OutPoint, &'a Coin)>,
) -> sha256d::Hash {
    let mut engine = sha256d::Hash::engine();
    let mut buf = Vec::with_capacity(128);
    for (outpoint, coin) in sorted {
        buf.clear();
        txout_ser(outpoint, coin, &mut buf);
        engine.input(&buf);
    }
    sha256d::Hash::from_engine(engine)
}

/// Formats an amount as Core prints BTC: integer part, a dot, exactly 8 decimals (no float).
///
/// ```
/// use bitcoin::Amount;
/// assert_eq!(utxo_core::format_btc(Amount::from_sat(872_498_074_106)), "8724.98074106");
/// assert_eq!(utxo_core::format_btc(Amount::from_sat(5)), "0.00000005");
/// ```
pub fn format_btc(amount: Amount) -> String {
    let sat = amount.to_sat();
    format!("{}.{:08}", sat / 100_000_000, sat % 100_000_000)
}

/// The running statistics of a UTXO set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UtxoStats {
    /// Number of unspent outputs.
    pub txouts: u64,
    /// Core's `bogosize`: the sum of [`bogosize`] over all coins.
    pub bogosize: u64,
    /// Sum of all coin values.
    pub total_amount: Amount,
    /// The MuHash3072 accumulator of all coins, when tracked.
    pub muhash: Option<MuHash3072>,
}

impl Default for UtxoStats {
    fn default() -> Self {
        UtxoStats::new(true)
    }
}

impl UtxoStats {
    /// Statistics of the empty set; `track_muhash` decides whether the MuHash accumulator is kept.
    pub fn new(track_muhash: bool) -> UtxoStats {
        UtxoStats {
            txouts: 0,
            bogosize: 0,
            total_amount: Amount::ZERO,
            muhash: track_muhash.then(MuHash3072::new),
        }
    }

    /// The MuHash digest in Core's display order (byte-reversed hex), if tracked.
    pub fn muhash_hex(&self) -> Option<String> {
        self.muhash.as_ref().map(|m| {
            let mut digest = m.finalize();
            digest.reverse();
            digest.iter().map(|b| format!("{b:02x}")).collect()
        })
    }

    /// Adds one coin.
    ///
    /// The counters are kept modulo 2^64, so adding and removing are exact inverses and never
    /// panic. Every figure is exact while its true value stays below 2^64, which a set built by
    /// valid blocks always does (its total is at most `MAX_MONEY`); only coins inserted by hand
    /// with amounts far above `MAX_MONEY` can wrap `total_amount`.
    pub fn add_coin(&mut self, outpoint: &OutPoint, coin: &Coin, buf: &mut Vec<u8>) {
        self.add_parts(outpoint, coin.parts(), buf);
    }

    /// [`UtxoStats::add_coin`] of borrowed coin fields.
    pub(crate) fn add_parts(
        &mut self,
        outpoint: &OutPoint,
        coin: CoinParts<'_>,
        buf: &mut Vec<u8>,
    ) {
        self.txouts = self.txouts.wrapping_add(1);
        self.bogosize = self.bogosize.wrapping_add(50 + coin.script.len() as u64);
        self.total_amount = Amount::from_sat(
            self.total_amount
                .to_sat()
                .wrapping_add(coin.amount.to_sat()),
        );
        if let Some(m) = &mut self.muhash {
            buf.clear();
            txout_ser_parts(outpoint, coin, buf);
            m.insert(buf);
        }
    }

    /// Removes one coin (which should have been added; see [`UtxoStats::add_coin`] on wrapping).
    pub fn remove_coin(&mut self, outpoint: &OutPoint, coin: &Coin, buf: &mut Vec<u8>) {
        self.txouts = self.txouts.wrapping_sub(1);
        self.bogosize = self.bogosize.wrapping_sub(bogosize(coin));
        self.total_amount = Amount::from_sat(
            self.total_amount
                .to_sat()
                .wrapping_sub(coin.amount.to_sat()),
        );
        if let Some(m) = &mut self.muhash {
            buf.clear();
            txout_ser(outpoint, coin, buf);
            m.remove(buf);
        }
    }

    /// Applies a block's net changes.
    pub fn apply(&mut self, changes: &ChangeSet) {
        let mut buf = Vec::with_capacity(128);
        for (op, coin) in &changes.spent {
            self.remove_coin(op, coin, &mut buf);
        }
        for (op, coin) in &changes.created {
            self.add_coin(op, coin, &mut buf);
        }
    }

    /// Reverts a block's net changes (disconnecting it).
    pub fn revert(&mut self, changes: &ChangeSet) {
        self.apply(&changes.inverse());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bitcoin::ScriptBuf;

    #[test]
    fn hand_inserted_amounts_past_u64_neither_panic_nor_drift() {
        let set = crate::UtxoSet::new();
        let start = set.stats();
        let huge = Coin {
            amount: Amount::from_sat(u64::MAX),
            height: 1,
            is_coinbase: false,
            script_pubkey: ScriptBuf::from_bytes(vec![0x51]),
        };
        let outpoints: Vec<OutPoint> = (0..3)
            .map(|vout| OutPoint {
                txid: bitcoin::Txid::from_byte_array([7; 32]),
                vout,
            })
            .collect();
        for op in &outpoints {
            set.insert(*op, huge.clone());
        }
        assert_eq!(set.stats().txouts, 3);
        // 3 × (2^64 − 1) modulo 2^64.
        assert_eq!(set.stats().total_amount.to_sat(), u64::MAX - 2);
        for op in &outpoints {
            assert_eq!(set.remove(op), Some(huge.clone()));
        }
        assert_eq!(set.stats(), start, "adding and removing are exact inverses");

        // Removing a coin that was never counted does not panic either.
        let mut stats = UtxoStats::new(false);
        stats.remove_coin(&outpoints[0], &huge, &mut Vec::new());
        stats.add_coin(&outpoints[0], &huge, &mut Vec::new());
        assert_eq!(stats, UtxoStats::new(false));
    }

    #[test]
    fn compact_size_boundaries() {
        for (n, len) in [
            (0xfcu64, 1),
            (0xfd, 3),
            (0xffff, 3),
            (0x1_0000, 5),
            (0x1_0000_0000, 9),
        ] {
            let mut out = Vec::new();
            write_compact_size(n, &mut out);
            assert_eq!(out.len(), len, "{n}");
        }
    }

    #[test]
    fn add_then_remove_returns_to_empty() {
        let mut stats = UtxoStats::new(true);
        let coin = Coin {
            amount: Amount::from_sat(7),
            height: 1,
            is_coinbase: false,
            script_pubkey: ScriptBuf::from_bytes(vec![0x51]),
        };
        let op = OutPoint::null();
        let mut buf = Vec::new();
        stats.add_coin(&op, &coin, &mut buf);
        assert_eq!((stats.txouts, stats.bogosize), (1, 51));
        stats.remove_coin(&op, &coin, &mut buf);
        assert_eq!(stats, UtxoStats::new(true));
    }
}
