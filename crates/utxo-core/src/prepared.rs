//! A block together with its transaction ids, hashed once where the block was parsed.

use bitcoin::{Block, Txid};

/// A block and its transaction ids, computed when it was made (as Bitcoin Core hashes a
/// transaction when it deserializes it). Make it on the thread that parses blocks and hand it to
/// [`UtxoSet::apply_prepared`](crate::UtxoSet::apply_prepared): the set then spends no time
/// hashing, and the ids are the block's by construction (the fields are private, so they can't
/// drift apart).
///
/// ```
/// use utxo_core::{PreparedBlock, UtxoSet};
///
/// let genesis = bitcoin::constants::genesis_block(bitcoin::Network::Regtest);
/// let prepared = PreparedBlock::new(genesis.clone());
/// assert_eq!(prepared.txids(), [genesis.txdata[0].compute_txid()]);
/// let set = UtxoSet::new();
/// set.apply_prepared(&prepared, 0).unwrap();
/// assert_eq!(set.best_block(), Some((genesis.block_hash(), 0)));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreparedBlock {
    block: Block,
    txids: Vec<Txid>,
}

impl PreparedBlock {
    /// Hashes every transaction of `block` (the serialization the set uses, one reused buffer).
    pub fn new(block: Block) -> PreparedBlock {
        let txids = crate::connect::txids(&block);
        PreparedBlock { block, txids }
    }

    /// The block.
    pub fn block(&self) -> &Block {
        &self.block
    }

    /// Its transaction ids, in block order.
    pub fn txids(&self) -> &[Txid] {
        &self.txids
    }

    /// The block back, e.g. to keep it for a later disconnect.
    pub fn into_block(self) -> Block {
        self.block
    }
}

impl From<Block> for PreparedBlock {
    fn from(block: Block) -> PreparedBlock {
        PreparedBlock::new(block)
    }
}
