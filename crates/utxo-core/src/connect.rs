//! The block-connection and disconnection rules, over any coin source.
//!
//! Both functions only *read* the underlying set (through a lookup function) and return the net diff
//! they would make; the caller commits it. So a failing block leaves every set exactly as it was, and
//! the same rules serve the in-memory [`crate::UtxoSet`] and the bounded [`crate::CoinCache`].

use std::cell::Cell;

use bitcoin::hashes::{Hash, sha256d};
use bitcoin::{Amount, Block, OutPoint, Transaction, TxOut, Txid};

use crate::changes::ChangeSet;
use crate::coin::{Coin, CoinParts, is_unspendable};
use crate::error::{ApplyError, DisconnectError};
use crate::params::{COINBASE_MATURITY, ChainParams};
use crate::shard::Key;
use crate::stats::write_compact_size;
use crate::undo::{BlockUndo, TxUndo};

/// A rule violation, or a failure of the coin source.
#[derive(Debug)]
pub(crate) enum Failure<E, R> {
    /// The block breaks a rule.
    Rule(R),
    /// The coin source failed.
    Lookup(E),
}

/// One touched outpoint: its coin before the block and after it (96 bytes: a block's slots are
/// read and written by every pass, so they are kept small).
struct Slot {
    outpoint: OutPoint,
    before: Option<Coin>,
    after: After,
    /// Its entry in the diff's table.
    entry: u32,
    /// Once the changes are drawn: the index in [`Drawn::spent`] its old coin moved to, or
    /// [`NOT_SPENT`].
    spent_at: u32,
}

/// A slot's coin after the block so far.
#[derive(Clone, Copy)]
enum After {
    /// Unchanged: the coin is `before` (which saves cloning every coin read).
    Same,
    /// No coin: spent by an input of this block (in a connection, the only way a slot loses its
    /// coin, which tells a double spend from a missing coin), or removed by a disconnect.
    Gone,
    /// Output `vout` of the block's transaction `tx`, created by this block: a reference, so
    /// its script is not copied until a caller asks for an owned coin.
    Output { tx: u32, vout: u32 },
    /// An owned coin restored by a disconnect: this entry of the diff's `restored`.
    Coin(u32),
}

/// The net effect of a block on the outpoints it touches, in first-touch order: the touched slots
/// in a vector, found through a small open-addressing table of 8-byte entries (slot position and
/// 32 hash bits), so one touch costs one probe of a table that stays in cache, and drawing the
/// changes out removes nothing.
pub(crate) struct Diff<'b> {
    /// Power-of-two sized, at most half full: `(position + 1) << 32 | hash bits`, 0 when empty.
    table: Vec<u64>,
    slots: Vec<Slot>,
    /// The coins `After::Coin` names.
    restored: Vec<Coin>,
    /// The block's other temporary vectors, lent out while in use (a `Cell`: they come back
    /// from [`PendingUndo::finish`], which only reads the diff).
    scratch: Cell<Scratch>,
    /// The block whose outputs `After::Output` names (empty for a disconnect), and its height.
    txs: &'b [Transaction],
    height: u32,
}

/// The overlay's hash of an outpoint: the set's seeded hash of 8 txid bytes and the vout.
fn overlay_hash(outpoint: &OutPoint) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = BuildOutPointHasher.build_hasher();
    std::hash::Hash::hash(&Key::of(outpoint), &mut hasher);
    hasher.finish()
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

/// A coin entering the set: an output of the block (borrowed) or an owned coin.
#[derive(Debug)]
pub(crate) enum NewCoin<'b> {
    /// A block's output and its `height * 2 + coinbase` code.
    Output(&'b TxOut, u32),
    /// An owned coin.
    Owned(Coin),
}

impl crate::coin::AsParts for NewCoin<'_> {
    fn as_parts(&self) -> CoinParts<'_> {
        self.parts()
    }
}

impl NewCoin<'_> {
    /// The coin's fields.
    pub(crate) fn parts(&self) -> CoinParts<'_> {
        match self {
            NewCoin::Output(txout, code) => CoinParts {
                amount: txout.value,
                code: *code,
                script: &txout.script_pubkey,
            },
            NewCoin::Owned(coin) => coin.parts(),
        }
    }

    /// An owned coin (a block's output copied).
    pub(crate) fn into_coin(self) -> Coin {
        match self {
            NewCoin::Output(..) => self.parts().to_coin(),
            NewCoin::Owned(coin) => coin,
        }
    }
}

/// A diff's allocations, kept between blocks by a caller that applies many (so a block neither
/// allocates nor zero-fills fresh pages for its diff). The table is all empty: a diff gives it
/// back with only its own entries cleared.
#[derive(Default)]
pub(crate) struct DiffBuffers {
    table: Vec<u64>,
    slots: Vec<Slot>,
    restored: Vec<Coin>,
    scratch: Scratch,
}

/// The per-block vectors of a connection besides the diff's own, all empty between uses: each is
/// taken out where the block needs it and given back once it is done with (a block that fails,
/// or a caller that keeps the drawn changes, keeps them and the next block allocates afresh).
#[derive(Default)]
struct Scratch {
    /// The slots of the inputs, then of the outputs, in the rules pass's order (`prefill`).
    input_slots: Vec<usize>,
    output_slots: Vec<usize>,
    /// [`PendingUndo::spent`].
    undo: Vec<UndoCoin>,
    /// [`Drawn::spent`] and [`Drawn::created`] (its borrow of the block ended).
    spent: Vec<(OutPoint, Coin)>,
    created: Vec<(OutPoint, NewCoin<'static>)>,
}

/// Makes room for `additional` elements in `v`, which is empty: a new allocation when the old one
/// is too small (growing it would copy the old allocation's bytes, all of them stale).
fn reserve_empty<T>(v: &mut Vec<T>, additional: usize) {
    debug_assert!(v.is_empty());
    if v.capacity() < additional {
        let capacity = additional.max(2 * v.capacity());
        *v = Vec::new();
        *v = Vec::with_capacity(capacity);
    }
}

/// `v`'s allocation, emptied, for elements borrowing for another lifetime (collected in place:
/// the same size and alignment, so no allocation).
fn relabel<'x>(mut v: Vec<(OutPoint, NewCoin<'_>)>) -> Vec<(OutPoint, NewCoin<'x>)> {
    v.clear();
    // No element reaches the closure (`filter_map`, not a panicking `map`, to say so).
    #[allow(clippy::unnecessary_filter_map)]
    v.into_iter().filter_map(|_| None).collect()
}

impl<'b> Diff<'b> {
    /// A diff for `capacity` touches of the block `txs` at `height` (`txs` empty for a
    /// disconnect, which only sets owned coins), in `buffers`.
    fn new(capacity: usize, txs: &'b [Transaction], height: u32, buffers: DiffBuffers) -> Diff<'b> {
        let DiffBuffers {
            mut table,
            mut slots,
            mut restored,
            scratch,
        } = buffers;
        restored.clear();
        let size = (2 * capacity).next_power_of_two().max(16);
        if table.len() != size {
            table = vec![0; size];
        }
        slots.clear();
        reserve_empty(&mut slots, capacity);
        Diff {
            table,
            slots,
            restored,
            scratch: Cell::new(scratch),
            txs,
            height,
        }
    }

    /// The allocations back, emptied, for the next block.
    pub(crate) fn into_buffers(self) -> DiffBuffers {
        let Diff {
            mut table,
            mut slots,
            mut restored,
            scratch,
            ..
        } = self;
        restored.clear();
        for slot in &slots {
            table[slot.entry as usize] = 0;
        }
        slots.clear();
        DiffBuffers {
            table,
            slots,
            restored,
            scratch: scratch.into_inner(),
        }
    }

    /// The slot of `outpoint`, reading its coin through `lookup` on first touch.
    fn touch<E>(
        &mut self,
        outpoint: &OutPoint,
        lookup: &mut impl FnMut(&OutPoint) -> Result<Option<Coin>, E>,
    ) -> Result<usize, E> {
        let hash = overlay_hash(outpoint);
        let bits = hash & 0xffff_ffff;
        let mask = self.table.len() - 1;
        // The low bits pick the home; the high bits are kept in the entry (the table is far
        // smaller than 2^32 entries, so they are independent of the home).
        #[allow(clippy::cast_possible_truncation)] // Masked to the table's size.
        let mut i = (hash >> 32) as usize & mask;
        loop {
            let entry = self.table[i];
            if entry == 0 {
                break;
            }
            if entry & 0xffff_ffff == bits {
                #[allow(clippy::cast_possible_truncation)] // Positions were stored from a usize.
                let position = (entry >> 32) as usize - 1;
                if self.slots[position].outpoint == *outpoint {
                    return Ok(position);
                }
            }
            i = (i + 1) & mask;
        }
        let before = lookup(outpoint)?;
        let position = self.slots.len();
        self.slots.push(Slot {
            outpoint: *outpoint,
            before,
            after: After::Same,
            #[allow(clippy::cast_possible_truncation)] // The table is far below 2^32 entries.
            entry: i as u32,
            spent_at: NOT_SPENT,
        });
        self.table[i] = ((position as u64 + 1) << 32) | bits;
        if 2 * self.slots.len() > self.table.len() {
            self.grow();
        }
        Ok(position)
    }

    /// Doubles the table and places every slot again.
    fn grow(&mut self) {
        let size = 2 * self.table.len();
        self.table = vec![0; size];
        let mask = size - 1;
        for (position, slot) in self.slots.iter_mut().enumerate() {
            let hash = overlay_hash(&slot.outpoint);
            #[allow(clippy::cast_possible_truncation)] // Masked to the table's size.
            let mut i = (hash >> 32) as usize & mask;
            while self.table[i] != 0 {
                i = (i + 1) & mask;
            }
            self.table[i] = ((position as u64 + 1) << 32) | (hash & 0xffff_ffff);
            #[allow(clippy::cast_possible_truncation)] // The table is far below 2^32 entries.
            {
                slot.entry = i as u32;
            }
        }
    }

    /// The coin an `After` stands for, if any (`before`: the slot's coin before the block).
    #[inline]
    fn coin_of<'a>(&'a self, after: &'a After, before: Option<&'a Coin>) -> Option<CoinParts<'a>> {
        match after {
            After::Same => before.map(Coin::parts),
            After::Gone => None,
            After::Output { tx, vout } => Some(CoinParts::of_txout(
                &self.txs[*tx as usize].output[*vout as usize],
                self.height,
                *tx == 0,
            )),
            After::Coin(i) => self.restored.get(*i as usize).map(Coin::parts),
        }
    }

    /// The current coin of a touched slot.
    fn current(&self, position: usize) -> Option<CoinParts<'_>> {
        let slot = &self.slots[position];
        self.coin_of(&slot.after, slot.before.as_ref())
    }

    /// Sets the coin of a touched slot.
    fn set(&mut self, position: usize, after: After) {
        self.slots[position].after = after;
    }

    /// Removes the coin of a touched slot (which has one), as spent by an input of this block, and
    /// says where its undo entry is: a coin created earlier in the block is copied out of the block
    /// (or moved out of its slot), a coin from before the block stays in the slot until the changes
    /// are drawn (no clone).
    fn spend(&mut self, position: usize) -> UndoCoin {
        let after = std::mem::replace(&mut self.slots[position].after, After::Gone);
        match after {
            After::Coin(i) => UndoCoin::Owned(take_restored(&mut self.restored, i)),
            After::Output { .. } => UndoCoin::Owned(
                self.coin_of(&after, None)
                    .map_or_else(empty_coin, CoinParts::to_coin),
            ),
            #[allow(clippy::cast_possible_truncation)] // A block touches far fewer than 2^32 slots.
            After::Same | After::Gone => UndoCoin::Slot(position as u32),
        }
    }

    /// Restores the coin of a slot (a disconnect's).
    fn restore(&mut self, position: usize, coin: Coin) {
        #[allow(clippy::cast_possible_truncation)] // A block touches far fewer than 2^32 slots.
        let i = self.restored.len() as u32;
        self.restored.push(coin);
        self.set(position, After::Coin(i));
    }

    /// The net changes: coins that leave (with their old value) and coins that enter.
    pub(crate) fn into_changes(mut self) -> ChangeSet {
        self.take_changes().into_changes()
    }

    /// Moves the net changes out: coins that leave (with their old value) and coins that enter
    /// (the block's outputs borrowed), with where each slot's old coin went and whether any
    /// outpoint is both spent and created.
    pub(crate) fn take_changes(&mut self) -> Drawn<'b> {
        let scratch = self.scratch.get_mut();
        let mut drawn = Drawn {
            spent: std::mem::take(&mut scratch.spent),
            created: relabel(std::mem::take(&mut scratch.created)),
            replaced: false,
        };
        reserve_empty(&mut drawn.spent, self.slots.len() / 2);
        reserve_empty(&mut drawn.created, self.slots.len() / 2);
        let txs = self.txs;
        let code_base = self.height << 1;
        for slot in &mut self.slots {
            let after = std::mem::replace(&mut slot.after, After::Same);
            let new = match after {
                After::Same => continue,
                After::Gone => None,
                After::Output { tx, vout } => Some(NewCoin::Output(
                    &txs[tx as usize].output[vout as usize],
                    code_base | u32::from(tx == 0),
                )),
                After::Coin(i) => Some(NewCoin::Owned(take_restored(&mut self.restored, i))),
            };
            let unchanged = match (&slot.before, &new) {
                (None, None) => true,
                (Some(old), Some(new)) => old.parts() == new.parts(),
                _ => false,
            };
            if unchanged {
                // Put an owned coin back where `before` is read (the undo of a spend may).
                if let (Some(NewCoin::Owned(coin)), After::Coin(i)) = (new, after)
                    && let Some(place) = self.restored.get_mut(i as usize)
                {
                    *place = coin;
                    slot.after = after;
                }
                continue;
            }
            drawn.replaced |= slot.before.is_some() && new.is_some();
            if let Some(old) = slot.before.take() {
                #[allow(clippy::cast_possible_truncation)] // Fewer spends than slots.
                let at = drawn.spent.len() as u32;
                slot.spent_at = at;
                drawn.spent.push((slot.outpoint, old));
            }
            if let Some(new) = new {
                drawn.created.push((slot.outpoint, new));
            }
        }
        drawn
    }
}

/// `Slot::spent_at` of a slot whose old coin stayed in it.
const NOT_SPENT: u32 = u32::MAX;

/// A diff's changes, drawn out by [`Diff::take_changes`].
pub(crate) struct Drawn<'b> {
    /// Coins that leave the set, with their values before the block.
    pub(crate) spent: Vec<(OutPoint, Coin)>,
    /// Coins that enter the set.
    pub(crate) created: Vec<(OutPoint, NewCoin<'b>)>,
    /// Whether an outpoint is both spent and created (BIP30's exception blocks only).
    pub(crate) replaced: bool,
}

impl Drawn<'_> {
    /// The old coin of slot `position` of `diff`: moved out of `spent` (`take`) or cloned.
    fn old_coin(&mut self, diff: &Diff<'_>, position: usize, take: bool) -> Coin {
        let slot = &diff.slots[position];
        match slot.spent_at {
            NOT_SPENT => slot.before.clone().unwrap_or_else(empty_coin),
            at => {
                let old = &mut self.spent[at as usize].1;
                if take {
                    // Only the script is moved out (the rest is copied).
                    Coin {
                        amount: old.amount,
                        height: old.height,
                        is_coinbase: old.is_coinbase,
                        script_pubkey: std::mem::take(&mut old.script_pubkey),
                    }
                } else {
                    old.clone()
                }
            }
        }
    }

    /// The changes as a [`ChangeSet`] (created coins copied out of the block).
    pub(crate) fn into_changes(self) -> ChangeSet {
        ChangeSet {
            created: self
                .created
                .into_iter()
                .map(|(op, new)| (op, new.into_coin()))
                .collect(),
            spent: self.spent,
        }
    }
}

/// Where one input's undo coin is until the block's undo data is built.
pub(crate) enum UndoCoin {
    /// A coin created earlier in the block, copied or moved out of its slot when spent.
    Owned(Coin),
    /// The old coin of this slot (moved into the drawn changes' spent list).
    Slot(u32),
}

/// A block's undo data before the changes are drawn: the spent coins of every non-coinbase
/// transaction, in order.
pub(crate) struct PendingUndo {
    spent: Vec<UndoCoin>,
}

impl PendingUndo {
    /// The block's undo data, its old coins cloned out of `drawn` (`take`: moved out, for callers
    /// that do not return the changes: `drawn` is left empty, its vectors given back to `diff` for
    /// the next block).
    pub(crate) fn finish(
        self,
        block: &Block,
        diff: &Diff<'_>,
        drawn: &mut Drawn<'_>,
        take: bool,
    ) -> BlockUndo {
        let mut spent = self.spent;
        let mut entries = spent.drain(..);
        let mut txs = Vec::with_capacity(block.txdata.len().saturating_sub(1));
        for tx in block.txdata.iter().skip(1) {
            let mut coins = Vec::with_capacity(tx.input.len());
            for entry in entries.by_ref().take(tx.input.len()) {
                coins.push(match entry {
                    UndoCoin::Owned(coin) => coin,
                    UndoCoin::Slot(position) => drawn.old_coin(diff, position as usize, take),
                });
            }
            txs.push(TxUndo { spent: coins });
        }
        drop(entries);
        let mut scratch = diff.scratch.take();
        scratch.undo = spent;
        if take {
            scratch.spent = std::mem::take(&mut drawn.spent);
            scratch.spent.clear();
            scratch.created = relabel(std::mem::take(&mut drawn.created));
        }
        diff.scratch.set(scratch);
        BlockUndo { txs }
    }
}

/// Moves restored coin `i` out of `restored`.
fn take_restored(restored: &mut [Coin], i: u32) -> Coin {
    restored
        .get_mut(i as usize)
        .map_or_else(empty_coin, |coin| std::mem::replace(coin, empty_coin()))
}

/// A coin without a heap script, left where one was moved out.
fn empty_coin() -> Coin {
    Coin {
        amount: Amount::ZERO,
        height: 0,
        is_coinbase: false,
        script_pubkey: bitcoin::ScriptBuf::new(),
    }
}

/// The block's transaction ids, in order: the same as [`Transaction::compute_txid`] of each, each
/// serialized into one reused buffer and hashed in one call. Compute them where the block is
/// parsed (on another thread, say) and hand them to
/// [`UtxoSet::apply_block_with_txids`](crate::UtxoSet::apply_block_with_txids).
///
/// ```
/// let block = bitcoin::constants::genesis_block(bitcoin::Network::Bitcoin);
/// assert_eq!(utxo_core::block_txids(&block), [block.txdata[0].compute_txid()]);
/// ```
pub fn txids(block: &Block) -> Vec<Txid> {
    let mut buf = Vec::with_capacity(1024);
    block.txdata.iter().map(|tx| txid(tx, &mut buf)).collect()
}

/// `tx`'s id, serialized without witness into `buf` (reused) and hashed in one call: the same
/// bytes and hash as [`Transaction::compute_txid`], without its per-field hash-engine writes.
pub(crate) fn txid(tx: &Transaction, buf: &mut Vec<u8>) -> Txid {
    buf.clear();
    buf.extend_from_slice(&tx.version.0.to_le_bytes());
    write_compact_size(tx.input.len() as u64, buf);
    for input in &tx.input {
        buf.extend_from_slice(input.previous_output.txid.as_byte_array());
        buf.extend_from_slice(&input.previous_output.vout.to_le_bytes());
        write_compact_size(input.script_sig.len() as u64, buf);
        buf.extend_from_slice(input.script_sig.as_bytes());
        buf.extend_from_slice(&input.sequence.0.to_le_bytes());
    }
    write_compact_size(tx.output.len() as u64, buf);
    for output in &tx.output {
        buf.extend_from_slice(&output.value.to_sat().to_le_bytes());
        write_compact_size(output.script_pubkey.len() as u64, buf);
        buf.extend_from_slice(output.script_pubkey.as_bytes());
    }
    buf.extend_from_slice(&tx.lock_time.to_consensus_u32().to_le_bytes());
    Txid::from_byte_array(sha256d::Hash::hash(buf).to_byte_array())
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

/// Checks `block` at `height` against every bookkeeping rule and returns its diff and undo data
/// (to finish once the diff's changes are drawn).
///
/// `txids` are the block's transaction ids in order (see [`txids`]). With `prefill`, every coin
/// the rules will read (spent outpoints, then new outpoints for BIP30) is looked up first in one
/// tight pass, so the lookups' cache misses overlap; the rules then find them in the diff. The
/// result is the same either way (the lookups read the set as it was before the block, and the
/// spent and created slots keep their relative order). Without `check_bip30` (see
/// [`ChainParams::checks_bip30`]) new outpoints are not looked up: as in Core, where BIP34 rules
/// out a repeated txid, an output is written without asking whether its outpoint is taken.
#[allow(clippy::too_many_arguments)] // The rules' inputs; one caller each in set and cache.
pub(crate) fn connect<'b, E>(
    block: &'b Block,
    txids: &[Txid],
    height: u32,
    params: &ChainParams,
    prefill: bool,
    check_bip30: bool,
    buffers: DiffBuffers,
    mut lookup: impl FnMut(&OutPoint) -> Result<Option<Coin>, E>,
) -> Result<(Diff<'b>, PendingUndo), Failure<E, ApplyError>> {
    check_structure(block).map_err(Failure::Rule)?;
    assert_eq!(txids.len(), block.txdata.len(), "one txid per transaction");
    let may_overwrite = params.is_bip30_exception(height, &block.block_hash());
    let mut diff = Diff::new(block.txdata.len() * 4, &block.txdata, height, buffers);
    // With `prefill`: the slot of every input, then of every new output, in the order the rules
    // pass takes them (so it need not find them again).
    let scratch = diff.scratch.get_mut();
    let mut input_slots = std::mem::take(&mut scratch.input_slots);
    let mut output_slots = std::mem::take(&mut scratch.output_slots);
    let mut undo = PendingUndo {
        spent: std::mem::take(&mut scratch.undo),
    };
    reserve_empty(
        &mut undo.spent,
        block.txdata.iter().skip(1).map(|tx| tx.input.len()).sum(),
    );
    if prefill {
        reserve_empty(
            &mut input_slots,
            block.txdata.iter().skip(1).map(|tx| tx.input.len()).sum(),
        );
        reserve_empty(
            &mut output_slots,
            block.txdata.iter().map(|tx| tx.output.len()).sum(),
        );
        for tx in block.txdata.iter().skip(1) {
            for input in &tx.input {
                input_slots.push(
                    diff.touch(&input.previous_output, &mut lookup)
                        .map_err(Failure::Lookup)?,
                );
            }
        }
        for (tx, &txid) in block.txdata.iter().zip(txids) {
            if !check_bip30 {
                break;
            }
            for (vout, txout) in tx.output.iter().enumerate() {
                let Ok(vout) = u32::try_from(vout) else { break };
                if !is_unspendable(&txout.script_pubkey) {
                    output_slots.push(
                        diff.touch(&OutPoint { txid, vout }, &mut lookup)
                            .map_err(Failure::Lookup)?,
                    );
                }
            }
        }
    }
    let mut inputs = input_slots.drain(..);
    let mut outputs = output_slots.drain(..);
    let mut fees = Amount::ZERO;
    for (index, (tx, &txid)) in block.txdata.iter().zip(txids).enumerate() {
        let is_coinbase = index == 0;
        if tx.input.is_empty() || tx.output.is_empty() {
            return Err(Failure::Rule(ApplyError::EmptyTransaction { txid }));
        }
        let value_out = output_value(tx, txid).map_err(Failure::Rule)?;
        if !is_coinbase {
            let mut value_in = Amount::ZERO;
            for input in &tx.input {
                let outpoint = input.previous_output;
                let position = match inputs.next() {
                    Some(position) => position,
                    None => diff
                        .touch(&outpoint, &mut lookup)
                        .map_err(Failure::Lookup)?,
                };
                debug_assert_eq!(diff.slots[position].outpoint, outpoint);
                let coin = match diff.current(position) {
                    Some(coin) => coin,
                    None => {
                        let err = if matches!(diff.slots[position].after, After::Gone) {
                            ApplyError::DoubleSpend { txid, outpoint }
                        } else {
                            ApplyError::MissingInput { txid, outpoint }
                        };
                        return Err(Failure::Rule(err));
                    }
                };
                if coin.is_coinbase() && height.saturating_sub(coin.height()) < COINBASE_MATURITY {
                    return Err(Failure::Rule(ApplyError::ImmatureCoinbaseSpend {
                        txid,
                        outpoint,
                        coin_height: coin.height(),
                        spend_height: height,
                    }));
                }
                value_in = add_money(value_in, coin.amount)
                    .ok_or(Failure::Rule(ApplyError::ValueOutOfRange { txid }))?;
                undo.spent.push(diff.spend(position));
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
        }
        for (vout, txout) in tx.output.iter().enumerate() {
            if is_unspendable(&txout.script_pubkey) {
                continue;
            }
            let vout = u32::try_from(vout)
                .map_err(|_| Failure::Rule(ApplyError::EmptyTransaction { txid }))?;
            let outpoint = OutPoint { txid, vout };
            let position = match outputs.next() {
                Some(position) => position,
                None if check_bip30 => diff
                    .touch(&outpoint, &mut lookup)
                    .map_err(Failure::Lookup)?,
                // Only this block's own coins are seen (a repeated outpoint within the block).
                None => diff
                    .touch(&outpoint, &mut |_| Ok(None))
                    .map_err(Failure::Lookup)?,
            };
            debug_assert_eq!(diff.slots[position].outpoint, outpoint);
            if diff.current(position).is_some() && !(is_coinbase && may_overwrite) {
                return Err(Failure::Rule(ApplyError::Bip30Overwrite { txid, outpoint }));
            }
            #[allow(clippy::cast_possible_truncation)] // Block positions fit 32 bits.
            diff.set(
                position,
                After::Output {
                    tx: index as u32,
                    vout,
                },
            );
        }
    }
    drop((inputs, outputs));
    let scratch = diff.scratch.get_mut();
    scratch.input_slots = input_slots;
    scratch.output_slots = output_slots;
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
/// diff that does it. `txids` are the block's transaction ids when the caller has them (else each
/// transaction is hashed here).
pub(crate) fn disconnect<E>(
    block: &Block,
    txids: Option<&[Txid]>,
    height: u32,
    undo: &BlockUndo,
    buffers: DiffBuffers,
    mut lookup: impl FnMut(&OutPoint) -> Result<Option<Coin>, E>,
) -> Result<Diff<'static>, Failure<E, DisconnectError>> {
    let hash = block.block_hash();
    let mismatch = || Failure::Rule(DisconnectError::UndoMismatch { block: hash });
    if undo.txs.len() != block.txdata.len().saturating_sub(1) {
        return Err(mismatch());
    }
    let mut diff = Diff::new(block.txdata.len() * 4, &[], height, buffers);
    let mut buf = Vec::with_capacity(1024);
    for (index, tx) in block.txdata.iter().enumerate().rev() {
        let is_coinbase = index == 0;
        let txid = match txids.and_then(|ids| ids.get(index)) {
            Some(&id) => id,
            None => txid(tx, &mut buf),
        };
        for (vout, txout) in tx.output.iter().enumerate().rev() {
            if is_unspendable(&txout.script_pubkey) {
                continue;
            }
            let Ok(vout) = u32::try_from(vout) else {
                return Err(mismatch());
            };
            let outpoint = OutPoint { txid, vout };
            let expected = CoinParts::of_txout(txout, height, is_coinbase);
            let position = diff
                .touch(&outpoint, &mut lookup)
                .map_err(Failure::Lookup)?;
            match diff.current(position) {
                Some(coin) if coin == expected => diff.set(position, After::Gone),
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
            let position = diff
                .touch(&outpoint, &mut lookup)
                .map_err(Failure::Lookup)?;
            if diff.current(position).is_some() {
                return Err(Failure::Rule(DisconnectError::InputAlreadyPresent {
                    outpoint,
                }));
            }
            diff.restore(position, coin.clone());
        }
    }
    Ok(diff)
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::collections::HashMap;

    use bitcoin::{ScriptBuf, Sequence, TxIn, TxOut, Witness, absolute, transaction};
    use proptest::prelude::*;

    #[allow(clippy::unwrap_used)] // A test helper outside `#[test]`.
    fn tx(inputs: usize, outputs: usize, script_len: usize, witness: bool) -> Transaction {
        let input = (0..inputs)
            .map(|i| TxIn {
                previous_output: OutPoint::new(
                    Txid::from_byte_array([u8::try_from(i % 251).unwrap(); 32]),
                    u32::try_from(i).unwrap(),
                ),
                script_sig: ScriptBuf::from_bytes(vec![0x51; script_len]),
                sequence: Sequence(0xffff_fffd),
                witness: if witness {
                    Witness::from_slice(&[vec![1u8; 72], vec![2u8; 33]])
                } else {
                    Witness::new()
                },
            })
            .collect();
        let output = (0..outputs)
            .map(|o| TxOut {
                value: Amount::from_sat(u64::try_from(o).unwrap() * 1_000 + 1),
                script_pubkey: ScriptBuf::from_bytes(vec![0x52; script_len]),
            })
            .collect();
        Transaction {
            version: transaction::Version(-3),
            lock_time: absolute::LockTime::from_consensus(840_000),
            input,
            output,
        }
    }

    /// Our one-shot txid is `compute_txid` at every CompactSize boundary, with and without
    /// witnesses (which the txid leaves out).
    #[test]
    fn txid_matches_compute_txid_at_compact_size_boundaries() {
        let mut buf = Vec::new();
        for (inputs, outputs, script_len) in [
            (1, 1, 0),
            (252, 1, 1),
            (253, 2, 2),
            (1, 253, 252),
            (1, 1, 253),
            (1, 1, 0xffff),
            (1, 1, 0x1_0000),
        ] {
            for witness in [false, true] {
                let t = tx(inputs, outputs, script_len, witness);
                assert_eq!(txid(&t, &mut buf), t.compute_txid());
            }
        }
    }

    /// The overlay finds every touched outpoint again across its growth, including outpoints whose
    /// txids share their first 8 bytes (equal overlay hashes for equal vouts), and looks each up once.
    #[test]
    fn diff_finds_every_touched_outpoint_across_growth() {
        let mut diff = Diff::new(1, &[], 0, DiffBuffers::default());
        let mut lookups = 0;
        let outpoints: Vec<OutPoint> = (0..300u32)
            .map(|i| {
                let mut txid = [0u8; 32];
                txid[31] = u8::try_from(i % 7).unwrap();
                OutPoint::new(Txid::from_byte_array(txid), i / 7)
            })
            .collect();
        for round in 0..2 {
            for (n, op) in outpoints.iter().enumerate() {
                let position = diff
                    .touch(op, &mut |_| {
                        lookups += 1;
                        Ok::<_, ()>(None)
                    })
                    .unwrap();
                assert_eq!(position, n, "round {round}");
                assert_eq!(diff.slots[position].outpoint, *op);
            }
        }
        assert_eq!(lookups, outpoints.len());
        assert!(diff.table.len() >= 2 * outpoints.len());
    }

    /// A diff's buffers come back with an empty table (across growth too), and a diff made in
    /// them looks every outpoint up afresh.
    #[test]
    fn diff_buffers_come_back_empty_and_serve_the_next_diff() {
        let outpoints: Vec<OutPoint> = (0..300u32)
            .map(|i| OutPoint::new(Txid::from_byte_array([u8::try_from(i % 7).unwrap(); 32]), i))
            .collect();
        let mut buffers = DiffBuffers::default();
        for capacity in [1, 1, 600, 600] {
            let mut diff = Diff::new(capacity, &[], 0, buffers);
            let mut lookups = 0;
            for op in outpoints.iter().chain(&outpoints) {
                diff.touch(op, &mut |_| {
                    lookups += 1;
                    Ok::<_, ()>(None)
                })
                .unwrap();
            }
            assert_eq!(lookups, outpoints.len(), "capacity {capacity}");
            buffers = diff.into_buffers();
            assert!(buffers.table.iter().all(|&e| e == 0));
            assert!(buffers.slots.is_empty());
        }
    }

    /// A block of a coinbase, a transaction spending a coin from before the block, and one
    /// spending that transaction's first output.
    fn chained_block() -> (Block, Vec<Txid>, OutPoint, Coin) {
        let old = OutPoint::new(Txid::from_byte_array([3; 32]), 1);
        let old_coin = Coin {
            amount: Amount::from_sat(10_000),
            height: 5,
            is_coinbase: false,
            script_pubkey: ScriptBuf::from_bytes(vec![0x51; 22]),
        };
        let coinbase = Transaction {
            input: vec![TxIn::default()],
            ..tx(1, 1, 3, false)
        };
        let mut parent = tx(1, 2, 22, false);
        parent.input[0].previous_output = old;
        let mut child = tx(1, 1, 25, false);
        child.input[0].previous_output = OutPoint::new(parent.compute_txid(), 0);
        let block = Block {
            header: bitcoin::constants::genesis_block(bitcoin::Network::Regtest).header,
            txdata: vec![coinbase, parent, child],
        };
        let ids = txids(&block);
        (block, ids, old, old_coin)
    }

    /// Created coins stay references to the block's outputs until a caller asks for owned coins;
    /// the owned changes and undo are what the block's own description says
    /// (`ChangeSet::from_block`), and a coin created and spent in the block is undone from the
    /// block's output.
    #[test]
    fn created_coins_are_borrowed_from_the_block_until_drawn_as_owned() {
        let (block, ids, old, old_coin) = chained_block();
        let height = 900_000;
        let lookup = |op: &OutPoint| Ok::<_, ()>((*op == old).then(|| old_coin.clone()));
        let (mut diff, pending) = connect(
            &block,
            &ids,
            height,
            &ChainParams::default(),
            true,
            true,
            DiffBuffers::default(),
            lookup,
        )
        .unwrap();
        let mut drawn = diff.take_changes();
        assert_eq!(drawn.spent, vec![(old, old_coin.clone())]);
        // Parent output 1 and the child's output: borrowed from the block, not copied.
        let borrowed: Vec<*const TxOut> = drawn
            .created
            .iter()
            .filter_map(|(_, new)| match new {
                NewCoin::Output(txout, _) => Some(std::ptr::from_ref(*txout)),
                NewCoin::Owned(_) => None,
            })
            .collect();
        let expected: Vec<*const TxOut> = [&block.txdata[0].output[0], &block.txdata[1].output[1]]
            .into_iter()
            .chain(&block.txdata[2].output)
            .map(std::ptr::from_ref)
            .collect();
        assert_eq!(borrowed, expected);
        let undo = pending.finish(&block, &diff, &mut drawn, false);
        let in_block = Coin::from_txout(&block.txdata[1].output[0], height, false);
        assert_eq!(undo.txs[0].spent, vec![old_coin]);
        assert_eq!(undo.txs[1].spent, vec![in_block]);
        assert_eq!(
            drawn.into_changes(),
            ChangeSet::from_block(&block, height, &undo)
        );
    }

    /// Coins at height 1 and blocks from height 2 spending them, 2-in/2-out, about a third of the
    /// inputs spending an output of the same block (some outputs unspendable).
    #[allow(clippy::unwrap_used)] // A test helper outside `#[test]`.
    fn random_blocks(seed: u64, count: usize, txs: usize) -> (HashMap<OutPoint, Coin>, Vec<Block>) {
        let mut rng = crate::test_rng::Rng(seed);
        let mut pool: Vec<(OutPoint, u64)> = Vec::new();
        let mut coins = HashMap::new();
        for i in 0..u32::try_from(count * txs * 2).unwrap() {
            let op = OutPoint::new(Txid::from_byte_array([0xc0; 32]), i);
            let coin = Coin {
                amount: Amount::from_sat(10_000),
                height: 1,
                is_coinbase: false,
                script_pubkey: ScriptBuf::from_bytes(vec![0x51; rng.below(40)]),
            };
            pool.push((op, coin.amount.to_sat()));
            coins.insert(op, coin);
        }
        let blocks = (0..count)
            .map(|k| {
                let mut cb = tx(1, 1, 3, false);
                cb.input[0] = TxIn {
                    script_sig: ScriptBuf::from_bytes(k.to_le_bytes().to_vec()),
                    ..TxIn::default()
                };
                let mut txdata = vec![cb];
                let mut fresh: Vec<(OutPoint, u64)> = Vec::new();
                for _ in 0..txs {
                    let mut t = tx(2, 2, 0, false);
                    let mut value = 0;
                    for input in &mut t.input {
                        let (op, v) = if !fresh.is_empty() && rng.below(3) == 0 {
                            fresh.swap_remove(rng.below(fresh.len()))
                        } else {
                            pool.swap_remove(rng.below(pool.len()))
                        };
                        input.previous_output = op;
                        value += v;
                    }
                    for output in &mut t.output {
                        output.value = Amount::from_sat(value / 2);
                        output.script_pubkey = if rng.below(10) == 0 {
                            ScriptBuf::from_bytes(vec![0x6a, 1])
                        } else {
                            ScriptBuf::from_bytes(vec![0x52; rng.below(40)])
                        };
                    }
                    let txid = t.compute_txid();
                    for (vout, output) in (0..).zip(&t.output) {
                        if !is_unspendable(&output.script_pubkey) {
                            fresh.push((OutPoint::new(txid, vout), value / 2));
                        }
                    }
                    txdata.push(t);
                }
                pool.extend(fresh);
                Block {
                    header: bitcoin::constants::genesis_block(bitcoin::Network::Regtest).header,
                    txdata,
                }
            })
            .collect();
        (coins, blocks)
    }

    /// What one attempt of `apply_all` gave: the undo data and the drawn changes, or the error.
    type Outcome = Result<(BlockUndo, ChangeSet), ApplyError>;

    /// Connects `blocks` from height 2 to `coins` as the set does (the drawn changes committed,
    /// then the undo data finished with `take`), a rejected block leaving the height and coins as
    /// they were, each accepted block disconnected and connected again right away; with `reuse`
    /// one `DiffBuffers` serves every block, else each gets fresh ones.
    #[allow(clippy::unwrap_used)] // A test helper outside `#[test]`.
    fn apply_all(
        blocks: &[Block],
        mut coins: HashMap<OutPoint, Coin>,
        reuse: bool,
        take: bool,
    ) -> Vec<Outcome> {
        let mut buffers = DiffBuffers::default();
        let mut height = 2;
        let mut outcomes = Vec::new();
        let fresh = |buffers: &mut DiffBuffers| {
            if reuse {
                std::mem::take(buffers)
            } else {
                DiffBuffers::default()
            }
        };
        for block in blocks {
            for again in [false, true] {
                let ids = txids(block);
                let lookup = |op: &OutPoint| Ok::<_, ()>(coins.get(op).cloned());
                let result = connect(
                    block,
                    &ids,
                    height,
                    &ChainParams::default(),
                    true,
                    true,
                    fresh(&mut buffers),
                    lookup,
                );
                let (mut diff, pending) = match result {
                    Ok(ok) => ok,
                    Err(Failure::Rule(e)) => {
                        outcomes.push(Err(e));
                        break;
                    }
                    Err(Failure::Lookup(())) => unreachable!(),
                };
                let mut drawn = diff.take_changes();
                let changes = ChangeSet {
                    created: drawn
                        .created
                        .iter()
                        .map(|(op, new)| (*op, new.parts().to_coin()))
                        .collect(),
                    spent: drawn.spent.clone(),
                };
                let undo = pending.finish(block, &diff, &mut drawn, take);
                if take {
                    assert!(drawn.spent.is_empty() && drawn.created.is_empty());
                } else {
                    assert_eq!(drawn.into_changes(), changes);
                }
                buffers = diff.into_buffers();
                let DiffBuffers {
                    table,
                    slots,
                    restored,
                    scratch,
                } = &buffers;
                assert!(table.iter().all(|&e| e == 0) && slots.is_empty() && restored.is_empty());
                let Scratch {
                    input_slots,
                    output_slots,
                    undo: pending,
                    spent,
                    created,
                } = scratch;
                assert!(input_slots.is_empty() && output_slots.is_empty());
                assert!(pending.is_empty() && spent.is_empty() && created.is_empty());
                if reuse {
                    // Kept, not dropped (the drawn changes only when taken).
                    assert!(input_slots.capacity() > 0 && output_slots.capacity() > 0);
                    assert!(pending.capacity() > 0);
                    assert_eq!(take, spent.capacity() > 0 && created.capacity() > 0);
                }
                for (op, _) in &changes.spent {
                    coins.remove(op);
                }
                coins.extend(changes.created.iter().cloned());
                outcomes.push(Ok((undo.clone(), changes)));
                if again {
                    height += 1;
                    break;
                }
                // Disconnect it (in the same buffers) and connect it again.
                let diff = disconnect(block, None, height, &undo, fresh(&mut buffers), |op| {
                    Ok::<_, ()>(coins.get(op).cloned())
                })
                .map_err(|_| "disconnects")
                .unwrap();
                let mut diff = diff;
                let inverse = diff.take_changes().into_changes();
                buffers = diff.into_buffers();
                assert!(buffers.restored.is_empty());
                assert!(buffers.restored.capacity() > 0);
                for (op, _) in &inverse.spent {
                    coins.remove(op);
                }
                coins.extend(inverse.created);
            }
        }
        outcomes
    }

    /// One `DiffBuffers` serving every block (connects, disconnects, and a block rejected late in
    /// its rules pass) comes back empty after each and gives the same undo data and changes as
    /// fresh buffers, whether the drawn changes are kept or moved into the undo data.
    #[test]
    fn reused_buffers_serve_every_block_as_fresh_ones() {
        let (coins, mut blocks) = random_blocks(7, 5, 300);
        // Block 2 again with a last transaction spending a coin that does not exist, tried first.
        let mut bad = blocks[2].clone();
        let mut missing = tx(1, 1, 5, false);
        missing.input[0].previous_output = OutPoint::new(Txid::from_byte_array([0xee; 32]), 0);
        bad.txdata.push(missing);
        blocks.insert(2, bad);
        for take in [true, false] {
            let fresh = apply_all(&blocks, coins.clone(), false, take);
            assert!(matches!(fresh[4], Err(ApplyError::MissingInput { .. })));
            assert_eq!(fresh.iter().filter(|o| o.is_ok()).count(), 10);
            assert_eq!(apply_all(&blocks, coins.clone(), true, take), fresh);
        }
    }

    /// A slot stays small.
    #[test]
    fn slot_size() {
        assert!(std::mem::size_of::<Slot>() <= 96);
    }

    /// An empty vector large enough keeps its allocation; one too small gets a new one, of at
    /// least twice its old capacity.
    #[test]
    fn reserve_empty_keeps_or_replaces() {
        let mut v: Vec<u64> = Vec::with_capacity(100);
        let ptr = v.as_ptr();
        reserve_empty(&mut v, 100);
        assert_eq!(v.as_ptr(), ptr);
        reserve_empty(&mut v, 101);
        assert!(v.is_empty() && v.capacity() >= 200);
        reserve_empty(&mut v, 1_000);
        assert!(v.capacity() >= 1_000);
    }

    /// A recycled vector keeps its allocation.
    #[test]
    fn relabel_keeps_the_allocation() {
        let txout = TxOut {
            value: Amount::ONE_SAT,
            script_pubkey: ScriptBuf::new(),
        };
        let mut v: Vec<_> = (0..100)
            .map(|_| (OutPoint::null(), NewCoin::Output(&txout, 0)))
            .collect();
        v.truncate(3);
        let (ptr, capacity) = (v.as_ptr().cast::<u8>(), v.capacity());
        let w: Vec<(OutPoint, NewCoin<'static>)> = relabel(v);
        assert!(w.is_empty());
        assert_eq!((w.as_ptr().cast::<u8>(), w.capacity()), (ptr, capacity));
    }

    proptest! {
        #[test]
        fn txid_matches_compute_txid(inputs in 1usize..4, outputs in 1usize..4,
                                     script_len in 0usize..300, witness in any::<bool>()) {
            let t = tx(inputs, outputs, script_len, witness);
            prop_assert_eq!(txid(&t, &mut Vec::new()), t.compute_txid());
        }
    }
}
