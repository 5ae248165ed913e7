//! [`ChangeSet`]: the net effect of one block on the set (coins created and coins spent, with
//! in-block create-then-spend pairs cancelled), the unit that statistics, WAL records and the Merkle
//! commitment consume.

use std::collections::HashMap;

use bitcoin::{Block, OutPoint};

use crate::coin::{Coin, is_unspendable};
use crate::undo::BlockUndo;

/// The net change a block makes to the set.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChangeSet {
    /// Coins that enter the set.
    pub created: Vec<(OutPoint, Coin)>,
    /// Coins that leave the set, with their values before the block.
    pub spent: Vec<(OutPoint, Coin)>,
}

impl ChangeSet {
    /// The net changes of `block` at `height`, given the undo data its application returned.
    ///
    /// Coins created and spent within the block appear in neither list. The undo data must belong
    /// to the block (as returned by [`crate::UtxoSet::apply_block`]); spends without an undo entry
    /// are skipped.
    pub fn from_block(block: &Block, height: u32, undo: &BlockUndo) -> ChangeSet {
        let mut created: HashMap<OutPoint, Coin> = HashMap::new();
        let mut order: Vec<OutPoint> = Vec::new();
        let mut spent = Vec::new();
        let mut undo_txs = undo.txs.iter();
        for (index, tx) in block.txdata.iter().enumerate() {
            let is_coinbase = index == 0;
            if !is_coinbase {
                let Some(tx_undo) = undo_txs.next() else {
                    break;
                };
                for (input, coin) in tx.input.iter().zip(&tx_undo.spent) {
                    if created.remove(&input.previous_output).is_none() {
                        spent.push((input.previous_output, coin.clone()));
                    }
                }
            }
            let txid = tx.compute_txid();
            for (vout, txout) in tx.output.iter().enumerate() {
                if is_unspendable(&txout.script_pubkey) {
                    continue;
                }
                let Ok(vout) = u32::try_from(vout) else { break };
                let outpoint = OutPoint { txid, vout };
                if created
                    .insert(outpoint, Coin::from_txout(txout, height, is_coinbase))
                    .is_none()
                {
                    order.push(outpoint);
                }
            }
        }
        let created = order
            .into_iter()
            .filter_map(|op| created.remove(&op).map(|coin| (op, coin)))
            .collect();
        ChangeSet { created, spent }
    }

    /// The same change in the other direction (what disconnecting the block does).
    pub fn inverse(&self) -> ChangeSet {
        ChangeSet {
            created: self.spent.clone(),
            spent: self.created.clone(),
        }
    }
}
