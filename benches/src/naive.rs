//! The naive baseline: a `std::collections::HashMap<OutPoint, TxOut>` with the default SipHash, doing
//! the same block application as the UTXO set (spend inputs, add spendable outputs, keep undo data),
//! without its bookkeeping rules (no maturity, value or BIP30 checks) and without compact coins.

use std::collections::HashMap;

use bitcoin::{Block, OutPoint, TxOut};

/// The naive map.
#[derive(Debug, Default, Clone)]
pub struct NaiveSet {
    map: HashMap<OutPoint, TxOut>,
}

/// An input whose coin is not in the naive map.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("missing input {outpoint}")]
pub struct NaiveMissingError {
    /// The outpoint that was not found.
    pub outpoint: OutPoint,
}

impl NaiveSet {
    /// An empty map.
    pub fn new() -> NaiveSet {
        NaiveSet::default()
    }

    /// Coins in the map.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether the map is empty.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Inserts one coin.
    pub fn insert(&mut self, outpoint: OutPoint, txout: TxOut) -> Option<TxOut> {
        self.map.insert(outpoint, txout)
    }

    /// Looks one coin up.
    pub fn get(&self, outpoint: &OutPoint) -> Option<&TxOut> {
        self.map.get(outpoint)
    }

    /// Applies `block`: returns the spent coins per non-coinbase transaction (undo data).
    ///
    /// # Errors
    /// [`NaiveMissingError`] when an input is missing; the map is then left half-applied (the naive
    /// baseline is not all-or-nothing).
    pub fn apply_block(&mut self, block: &Block) -> Result<Vec<Vec<TxOut>>, NaiveMissingError> {
        let mut undo = Vec::with_capacity(block.txdata.len().saturating_sub(1));
        for tx in &block.txdata {
            let txid = tx.compute_txid();
            if !tx.is_coinbase() {
                let mut spent = Vec::with_capacity(tx.input.len());
                for input in &tx.input {
                    let outpoint = input.previous_output;
                    let coin = self
                        .map
                        .remove(&outpoint)
                        .ok_or(NaiveMissingError { outpoint })?;
                    spent.push(coin);
                }
                undo.push(spent);
            }
            for (vout, out) in (0u32..).zip(&tx.output) {
                if !out.script_pubkey.is_op_return() {
                    self.map.insert(OutPoint::new(txid, vout), out.clone());
                }
            }
        }
        Ok(undo)
    }

    /// Undoes [`NaiveSet::apply_block`] with its undo data (transactions in reverse order).
    pub fn disconnect_block(&mut self, block: &Block, undo: Vec<Vec<TxOut>>) {
        let mut undo = undo;
        for tx in block.txdata.iter().rev() {
            let txid = tx.compute_txid();
            for (vout, out) in (0u32..).zip(&tx.output) {
                if !out.script_pubkey.is_op_return() {
                    self.map.remove(&OutPoint::new(txid, vout));
                }
            }
            if !tx.is_coinbase() {
                let spent = undo.pop().unwrap_or_default();
                for (input, coin) in tx.input.iter().zip(spent) {
                    self.map.insert(input.previous_output, coin);
                }
            }
        }
    }
}
