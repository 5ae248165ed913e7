//! Undo data: the coins each transaction of a block spent, enough to disconnect it again.

use crate::coin::Coin;
use crate::compress::{DecodeError, decode_coin, encode_coin, read_varint, write_varint};

/// Most transactions a block's undo data may describe when decoded (a 4 MWU block holds fewer
/// than 25,000 transactions; spends are bounded by [`UNDO_SPENDS_MAX`]).
pub const UNDO_TXS_MAX: u64 = 100_000;
/// Most spent coins one transaction's undo data may hold when decoded.
pub const UNDO_SPENDS_MAX: u64 = 100_000;

/// The coins spent by one block, per non-coinbase transaction in block order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BlockUndo {
    /// One entry per non-coinbase transaction, in block order.
    pub txs: Vec<TxUndo>,
}

/// The coins one transaction's inputs spent, in input order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TxUndo {
    /// Spent coins, one per input.
    pub spent: Vec<Coin>,
}

impl BlockUndo {
    /// Appends the encoding: `VARINT(tx count)`, then per tx `VARINT(coin count)` and each coin in
    /// Core's compressed coin serialization.
    ///
    /// ```
    /// use utxo_core::{BlockUndo, TxUndo};
    /// let undo = BlockUndo { txs: vec![TxUndo::default()] };
    /// let mut bytes = Vec::new();
    /// undo.encode(&mut bytes);
    /// assert_eq!(BlockUndo::decode(&mut &bytes[..]), Ok(undo));
    /// ```
    pub fn encode(&self, out: &mut Vec<u8>) {
        write_varint(self.txs.len() as u64, out);
        for tx in &self.txs {
            write_varint(tx.spent.len() as u64, out);
            for coin in &tx.spent {
                encode_coin(coin, out);
            }
        }
    }

    /// Reads undo data written by [`BlockUndo::encode`].
    ///
    /// # Errors
    /// Truncated or malformed input, or counts above [`UNDO_TXS_MAX`] / [`UNDO_SPENDS_MAX`].
    pub fn decode(input: &mut &[u8]) -> Result<BlockUndo, DecodeError> {
        let count = bounded(read_varint(input)?, UNDO_TXS_MAX)?;
        let mut txs = Vec::with_capacity(count.min(1024));
        for _ in 0..count {
            let spends = bounded(read_varint(input)?, UNDO_SPENDS_MAX)?;
            let mut spent = Vec::with_capacity(spends.min(1024));
            for _ in 0..spends {
                spent.push(decode_coin(input)?);
            }
            txs.push(TxUndo { spent });
        }
        Ok(BlockUndo { txs })
    }

    /// Number of spent coins in the block.
    pub fn spent_count(&self) -> usize {
        self.txs.iter().map(|t| t.spent.len()).sum()
    }
}

fn bounded(count: u64, max: u64) -> Result<usize, DecodeError> {
    if count > max {
        return Err(DecodeError::CountTooLarge { count, max });
    }
    usize::try_from(count).map_err(|_| DecodeError::CountTooLarge { count, max })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_at_and_past_the_limit() {
        let mut at = Vec::new();
        write_varint(UNDO_TXS_MAX, &mut at);
        // At the limit the count is accepted and decoding proceeds (then runs out of input).
        assert_eq!(
            BlockUndo::decode(&mut &at[..]),
            Err(DecodeError::UnexpectedEnd)
        );
        let mut past = Vec::new();
        write_varint(UNDO_TXS_MAX + 1, &mut past);
        assert!(matches!(
            BlockUndo::decode(&mut &past[..]),
            Err(DecodeError::CountTooLarge { .. })
        ));
        let mut spends = Vec::new();
        write_varint(1, &mut spends);
        write_varint(UNDO_SPENDS_MAX + 1, &mut spends);
        assert!(matches!(
            BlockUndo::decode(&mut &spends[..]),
            Err(DecodeError::CountTooLarge { .. })
        ));
    }
}
