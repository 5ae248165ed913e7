//! The block-connection and disconnection rules, over any coin source.
//!
//! Both functions only *read* the underlying set (through a lookup function) and return the net diff
//! they would make; the caller commits it. So a failing block leaves every set exactly as it was, and
//! the same rules serve the in-memory [`crate::UtxoSet`] and the bounded [`crate::CoinCache`].

use std::collections::HashMap;

use bitcoin::{Amount, Block, OutPoint, Transaction, Txid};

use crate::changes::ChangeSet;
use crate::coin::{Coin, is_unspendable};
use crate::error::{ApplyError, DisconnectError};
use crate::params::{COINBASE_MATURITY, ChainParams};
use crate::undo::{BlockUndo, TxUndo};

/// A rule violation, or a failure of the coin source.
#[derive(Debug)]
pub(crate) enum Failure<E, R> {
    /// The block breaks a rule.
    Rule(R),
    /// The coin source failed.
    Lookup(E),
}

/// One touched outpoint: its coin before the block and after it.
struct Slot {
    before: Option<Coin>,
    after: Option<Coin>,
    /// Spent by an input of this block (to tell a double spend from a missing coin).
    spent_here: bool,
}

/// The net effect of a block on the outpoints it touches, in first-touch order.
pub(crate) struct Diff {
    order: Vec<OutPoint>,
    slots: HashMap<OutPoint, Slot, BuildOutPointHasher>,
}

/// A fast hasher for the per-block overlay: 8 txid bytes and the vout, folded and keyed with a
/// per-process seed (the overlay is small and lives for one block; SipHash dominated its cost).
#[derive(Clone, Default)]
pub(crate) struct BuildOutPointHasher;

impl std::hash::BuildHasher for BuildOutPointHasher {
    type Hasher = crate::set::KeyHasher;
    fn build_hasher(&self) -> Self::Hasher {
        crate::set::KeyHasher::seeded()
    }
}

impl Diff {
    fn new(capacity: usize) -> Diff {
        Diff {
            order: Vec::with_capacity(capacity),
            slots: HashMap::with_capacity_and_hasher(capacity, BuildOutPointHasher),
        }
    }

    /// The current coin at `outpoint`, reading through to `lookup` on first touch.
    fn get<E>(
        &mut self,
        outpoint: &OutPoint,
        lookup: &mut impl FnMut(&OutPoint) -> Result<Option<Coin>, E>,
    ) -> Result<Option<&Coin>, E> {
        if !self.slots.contains_key(outpoint) {
            let before = lookup(outpoint)?;
            self.order.push(*outpoint);
            self.slots.insert(
                *outpoint,
                Slot {
                    after: before.clone(),
                    before,
                    spent_here: false,
                },
            );
        }
        Ok(self.slots.get(outpoint).and_then(|s| s.after.as_ref()))
    }

    /// Sets the coin at an outpoint already read with [`Diff::get`].
    fn set(&mut self, outpoint: &OutPoint, coin: Option<Coin>) {
        if let Some(slot) = self.slots.get_mut(outpoint) {
            slot.after = coin;
        }
    }

    /// Removes the coin at an outpoint already read, as spent by an input of this block.
    fn spend(&mut self, outpoint: &OutPoint) {
        if let Some(slot) = self.slots.get_mut(outpoint) {
            slot.after = None;
            slot.spent_here = true;
        }
    }

    /// The net changes: coins that leave (with their old value) and coins that enter.
    pub(crate) fn into_changes(mut self) -> ChangeSet {
        let mut changes = ChangeSet::default();
        for outpoint in self.order {
            let Some(slot) = self.slots.remove(&outpoint) else {
                continue;
            };
            if slot.before == slot.after {
                continue;
            }
            if let Some(old) = slot.before {
                changes.spent.push((outpoint, old));
            }
            if let Some(new) = slot.after {
                changes.created.push((outpoint, new));
            }
        }
        changes
    }
}

/// The block's transaction ids, in order.
pub(crate) fn txids(block: &Block) -> Vec<Txid> {
    block.txdata.iter().map(Transaction::compute_txid).collect()
}

fn add_money(a: Amount, b: Amount) -> Option<Amount> {
    a.checked_add(b).filter(|sum| *sum <= Amount::MAX_MONEY)
}

fn check_structure(block: &Block) -> Result<(), ApplyError> {
    let hash = block.block_hash();
    let first = block
        .txdata
        .first()
        .ok_or(ApplyError::NoTransactions { block: hash })?;
    if !first.is_coinbase() {
        return Err(ApplyError::FirstTxNotCoinbase {
            block: hash,
            txid: first.compute_txid(),
        });
    }
    for tx in &block.txdata[1..] {
        if tx.is_coinbase() {
            return Err(ApplyError::ExtraCoinbase {
                block: hash,
                txid: tx.compute_txid(),
            });
        }
    }
    Ok(())
}

/// Sum of a transaction's outputs, each and all within MAX_MONEY.
fn output_value(tx: &Transaction, txid: Txid) -> Result<Amount, ApplyError> {
    tx.output.iter().try_fold(Amount::ZERO, |sum, out| {
        if out.value > Amount::MAX_MONEY {
            return Err(ApplyError::ValueOutOfRange { txid });
        }
        add_money(sum, out.value).ok_or(ApplyError::ValueOutOfRange { txid })
    })
}

/// Checks `block` at `height` against every bookkeeping rule and returns its diff and undo data.
///
/// `txids` are the block's transaction ids in order (see [`txids`]).
pub(crate) fn connect<E>(
    block: &Block,
    txids: &[Txid],
    height: u32,
    params: &ChainParams,
    mut lookup: impl FnMut(&OutPoint) -> Result<Option<Coin>, E>,
) -> Result<(Diff, BlockUndo), Failure<E, ApplyError>> {
    check_structure(block).map_err(Failure::Rule)?;
    assert_eq!(txids.len(), block.txdata.len(), "one txid per transaction");
    let may_overwrite = params.is_bip30_exception(height, &block.block_hash());
    let mut diff = Diff::new(block.txdata.len() * 4);
    let mut undo = BlockUndo {
        txs: Vec::with_capacity(block.txdata.len().saturating_sub(1)),
    };
    let mut fees = Amount::ZERO;
    for (index, (tx, &txid)) in block.txdata.iter().zip(txids).enumerate() {
        let is_coinbase = index == 0;
        if tx.input.is_empty() || tx.output.is_empty() {
            return Err(Failure::Rule(ApplyError::EmptyTransaction { txid }));
        }
        let value_out = output_value(tx, txid).map_err(Failure::Rule)?;
        if !is_coinbase {
            let mut value_in = Amount::ZERO;
            let mut spent = Vec::with_capacity(tx.input.len());
            for input in &tx.input {
                let outpoint = input.previous_output;
                let coin = match diff.get(&outpoint, &mut lookup).map_err(Failure::Lookup)? {
                    Some(coin) => coin.clone(),
                    None => {
                        let spent_here = diff.slots.get(&outpoint).is_some_and(|s| s.spent_here);
                        let err = if spent_here {
                            ApplyError::DoubleSpend { txid, outpoint }
                        } else {
                            ApplyError::MissingInput { txid, outpoint }
                        };
                        return Err(Failure::Rule(err));
                    }
                };
                if coin.is_coinbase && height.saturating_sub(coin.height) < COINBASE_MATURITY {
                    return Err(Failure::Rule(ApplyError::ImmatureCoinbaseSpend {
                        txid,
                        outpoint,
                        coin_height: coin.height,
                        spend_height: height,
                    }));
                }
                value_in = add_money(value_in, coin.amount)
                    .ok_or(Failure::Rule(ApplyError::ValueOutOfRange { txid }))?;
                diff.spend(&outpoint);
                spent.push(coin);
            }
            if value_in < value_out {
                return Err(Failure::Rule(ApplyError::OutputsExceedInputs {
                    txid,
                    inputs: value_in,
                    outputs: value_out,
                }));
            }
            fees = add_money(fees, value_in - value_out)
                .ok_or(Failure::Rule(ApplyError::ValueOutOfRange { txid }))?;
            undo.txs.push(TxUndo { spent });
        }
        for (vout, txout) in tx.output.iter().enumerate() {
            if is_unspendable(&txout.script_pubkey) {
                continue;
            }
            let vout = u32::try_from(vout)
                .map_err(|_| Failure::Rule(ApplyError::EmptyTransaction { txid }))?;
            let outpoint = OutPoint { txid, vout };
            let existing = diff.get(&outpoint, &mut lookup).map_err(Failure::Lookup)?;
            if existing.is_some() && !(is_coinbase && may_overwrite) {
                return Err(Failure::Rule(ApplyError::Bip30Overwrite { txid, outpoint }));
            }
            diff.set(
                &outpoint,
                Some(Coin::from_txout(txout, height, is_coinbase)),
            );
        }
    }
    let coinbase = &block.txdata[0];
    let claimed = output_value(coinbase, txids[0]).map_err(Failure::Rule)?;
    let allowed = add_money(params.subsidy(height), fees).unwrap_or(Amount::MAX_MONEY);
    if claimed > allowed {
        return Err(Failure::Rule(ApplyError::CoinbaseTooLarge {
            txid: txids[0],
            claimed,
            allowed,
        }));
    }
    Ok((diff, undo))
}

/// Checks that `undo` disconnects `block` (at `height`) from a set whose tip it is, and returns the
/// diff that does it.
pub(crate) fn disconnect<E>(
    block: &Block,
    height: u32,
    undo: &BlockUndo,
    mut lookup: impl FnMut(&OutPoint) -> Result<Option<Coin>, E>,
) -> Result<Diff, Failure<E, DisconnectError>> {
    let hash = block.block_hash();
    let mismatch = || Failure::Rule(DisconnectError::UndoMismatch { block: hash });
    if undo.txs.len() != block.txdata.len().saturating_sub(1) {
        return Err(mismatch());
    }
    let mut diff = Diff::new(block.txdata.len() * 4);
    for (index, tx) in block.txdata.iter().enumerate().rev() {
        let is_coinbase = index == 0;
        let txid = tx.compute_txid();
        for (vout, txout) in tx.output.iter().enumerate().rev() {
            if is_unspendable(&txout.script_pubkey) {
                continue;
            }
            let Ok(vout) = u32::try_from(vout) else {
                return Err(mismatch());
            };
            let outpoint = OutPoint { txid, vout };
            let expected = Coin::from_txout(txout, height, is_coinbase);
            match diff.get(&outpoint, &mut lookup).map_err(Failure::Lookup)? {
                Some(coin) if *coin == expected => diff.set(&outpoint, None),
                _ => return Err(Failure::Rule(DisconnectError::OutputMismatch { outpoint })),
            }
        }
        if is_coinbase {
            continue;
        }
        let tx_undo = undo.txs.get(index - 1).ok_or_else(mismatch)?;
        if tx_undo.spent.len() != tx.input.len() {
            return Err(mismatch());
        }
        for (input, coin) in tx.input.iter().zip(&tx_undo.spent).rev() {
            let outpoint = input.previous_output;
            if diff
                .get(&outpoint, &mut lookup)
                .map_err(Failure::Lookup)?
                .is_some()
            {
                return Err(Failure::Rule(DisconnectError::InputAlreadyPresent {
                    outpoint,
                }));
            }
            diff.set(&outpoint, Some(coin.clone()));
        }
    }
    Ok(diff)
}
