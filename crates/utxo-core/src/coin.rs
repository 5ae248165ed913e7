//! [`Coin`]: one unspent transaction output with the metadata Bitcoin Core keeps for it.

use bitcoin::{Amount, ScriptBuf, TxOut};

/// Scripts longer than this are provably unspendable and never enter the set (Core's
/// `MAX_SCRIPT_SIZE`).
pub const SCRIPT_SIZE_MAX: usize = 10_000;

/// One unspent output: its value and script, the height of the block that created it, and whether it
/// came from a coinbase transaction.
///
/// ```
/// use bitcoin::{Amount, ScriptBuf, TxOut};
/// use utxo_core::Coin;
///
/// let txout = TxOut { value: Amount::from_sat(5_000), script_pubkey: ScriptBuf::new() };
/// let coin = Coin::from_txout(&txout, 7, false);
/// assert_eq!(coin.to_txout(), txout);
/// assert_eq!(coin.height, 7);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Coin {
    /// The output's value.
    pub amount: Amount,
    /// Height of the block whose transaction created this output.
    pub height: u32,
    /// Whether the creating transaction was a coinbase (spendable only after maturity).
    pub is_coinbase: bool,
    /// The output's locking script.
    pub script_pubkey: ScriptBuf,
}

impl Coin {
    /// A coin for `txout`, created at `height`.
    pub fn from_txout(txout: &TxOut, height: u32, is_coinbase: bool) -> Coin {
        Coin {
            amount: txout.value,
            height,
            is_coinbase,
            script_pubkey: txout.script_pubkey.clone(),
        }
    }

    /// The output this coin holds.
    pub fn to_txout(&self) -> TxOut {
        TxOut {
            value: self.amount,
            script_pubkey: self.script_pubkey.clone(),
        }
    }

    /// Core's `height * 2 + coinbase` code, as serialized in `TxOutSer` and the chainstate.
    pub fn code(&self) -> u32 {
        (self.height << 1) | u32::from(self.is_coinbase)
    }
}

/// A coin's fields, borrowed: from an owned [`Coin`] or straight from a block's output (so a
/// created coin is written into the set without copying its script first).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct CoinParts<'a> {
    pub(crate) amount: Amount,
    /// Core's `height * 2 + coinbase`.
    pub(crate) code: u32,
    pub(crate) script: &'a bitcoin::Script,
}

impl CoinParts<'_> {
    /// The output of a block at `height` (`is_coinbase`: of its first transaction).
    pub(crate) fn of_txout(txout: &TxOut, height: u32, is_coinbase: bool) -> CoinParts<'_> {
        CoinParts {
            amount: txout.value,
            code: (height << 1) | u32::from(is_coinbase),
            script: &txout.script_pubkey,
        }
    }

    pub(crate) fn height(&self) -> u32 {
        self.code >> 1
    }

    pub(crate) fn is_coinbase(&self) -> bool {
        self.code & 1 == 1
    }

    /// An owned coin (the script copied).
    pub(crate) fn to_coin(self) -> Coin {
        Coin {
            amount: self.amount,
            height: self.height(),
            is_coinbase: self.is_coinbase(),
            script_pubkey: self.script.to_owned(),
        }
    }
}

impl Coin {
    /// The coin's fields, borrowed.
    pub(crate) fn parts(&self) -> CoinParts<'_> {
        CoinParts {
            amount: self.amount,
            code: self.code(),
            script: &self.script_pubkey,
        }
    }
}

/// Anything that lends its coin's fields (an owned coin, or a coin entering the set).
pub(crate) trait AsParts {
    fn as_parts(&self) -> CoinParts<'_>;
}

impl AsParts for Coin {
    fn as_parts(&self) -> CoinParts<'_> {
        self.parts()
    }
}

/// Whether an output can never be spent and so never enters the UTXO set: its script starts with
/// `OP_RETURN` or is longer than [`SCRIPT_SIZE_MAX`] (Core's `CScript::IsUnspendable`).
pub fn is_unspendable(script: &bitcoin::Script) -> bool {
    script.as_bytes().first() == Some(&0x6a) || script.len() > SCRIPT_SIZE_MAX
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unspendable_rules_match_core() {
        assert!(is_unspendable(&ScriptBuf::from_bytes(vec![0x6a])));
        assert!(is_unspendable(&ScriptBuf::from_bytes(vec![0x6a, 0x00])));
        assert!(
            !is_unspendable(&ScriptBuf::new()),
            "empty scripts enter the set"
        );
        assert!(!is_unspendable(&ScriptBuf::from_bytes(vec![
            0x51;
            SCRIPT_SIZE_MAX
        ])));
        assert!(is_unspendable(&ScriptBuf::from_bytes(vec![
            0x51;
            SCRIPT_SIZE_MAX
                + 1
        ])));
    }
}
