//! One shard of the UTXO set: per-transaction records in a chunked [`Arena`], found through an
//! [`Index`] of 4-byte handles (6 bytes per slot; hashes are recomputed from the records when it
//! grows).
//!
//! A record holds the unspent outputs `64 * group ..= 64 * group + 63` of one transaction (almost
//! always group 0), so the outputs of a transaction share one copy of its txid and height:
//!
//! ```text
//! txid [32]
//! mask VARINT     live << 2 | per-output codes << 1 | group follows; bit i of the 64-bit `live`
//!                 is set when vout 64 * group + i is unspent (one byte while vouts are below 5)
//! group VARINT    only with its flag (group = vout / 64, not 0)
//! code VARINT     height * 2 + coinbase, only without per-output codes
//! outputs, one per bit of `live`, ascending by vout:
//!   code VARINT   only with per-output codes
//!   amount        VARINT(CompressAmount(value)), as in Core's chainstate; above MAX_MONEY
//!                 (only through `UtxoSet::insert`) VARINT(u64::MAX) then VARINT(value)
//!   script        Core's ScriptCompression
//! ```
//!
//! Outputs of one txid with different heights or coinbase flags (BIP30's duplicate coinbases, or
//! [`crate::UtxoSet::insert`] used freely) switch the record to per-output codes: nothing is lost.
//! Spending an output rewrites the record in place without it; spending the last frees the record.

use crate::arena::{Arena, Handle};
use crate::coin::{Coin, CoinParts};
use crate::compress::{
    compress_amount, decompress_amount, read_compressed_script, write_compressed_script,
    write_varint, write_varint_wide,
};
use crate::index::Index;
use bitcoin::Amount;

/// Outputs per record (vouts `64 * group ..= 64 * group + 63`).
pub(crate) const GROUP_OUTPUTS: u32 = 1 << GROUP_SHIFT;
const GROUP_SHIFT: u32 = 6;
/// Mask flag: a group follows.
const FLAG_GROUP: u128 = 1;
/// Mask flag: each output has its own code.
const FLAG_CODES: u128 = 2;
const MASK_FLAGS: u32 = 2;
const TXID_LEN: usize = 32;

/// A coin's outpoint as the set keys it: the raw txid and the vout.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct Key {
    pub(crate) txid: [u8; 32],
    pub(crate) vout: u32,
}

impl Key {
    /// The record group of this outpoint.
    pub(crate) fn group(&self) -> u32 {
        self.vout >> GROUP_SHIFT
    }

    /// The position inside the group.
    #[allow(clippy::cast_possible_truncation)] // Masked to 6 bits.
    fn low(&self) -> u8 {
        (self.vout & (GROUP_OUTPUTS - 1)) as u8
    }
}

/// Folded 64×64→128-bit multiply: a fast, well-mixing step (as in ahash's fallback).
#[allow(clippy::cast_possible_truncation)] // Taking the low and high halves on purpose.
pub(crate) fn fold_mul(a: u64, b: u64) -> u64 {
    let p = u128::from(a) * u128::from(b);
    (p as u64) ^ ((p >> 64) as u64)
}

/// The hash of a record key (txid and group), keyed by `seed`. Bits 32.. pick the shard; the table
/// uses the low bits and the top 7.
pub(crate) fn key_hash(seed: u64, txid: &[u8; 32], group: u32) -> u64 {
    let mut prefix = [0u8; 8];
    prefix.copy_from_slice(&txid[..8]);
    let word = u64::from_le_bytes(prefix) ^ u64::from(group).rotate_left(29);
    fold_mul(
        fold_mul(seed ^ word, 0x5851_f42d_4c95_7f2d),
        0x9e37_79b9_7f4a_7c15,
    )
}

/// The amount code that announces a raw amount (never `CompressAmount` of an amount up to
/// MAX_MONEY, whose codes stay below 2^55).
const AMOUNT_RAW: u64 = u64::MAX;

/// Appends an output's amount: Core's compressed form, or for amounts above MAX_MONEY (which
/// compression may not round-trip) [`AMOUNT_RAW`] and the raw value.
fn write_amount(sat: u64, out: &mut Vec<u8>) {
    if sat <= Amount::MAX_MONEY.to_sat() {
        write_varint(compress_amount(sat), out);
    } else {
        write_varint(AMOUNT_RAW, out);
        write_varint(sat, out);
    }
}

/// Reads an amount written by [`write_amount`] at `*pos`.
fn read_amount(b: &[u8], pos: &mut usize) -> u64 {
    match varint(b, pos) {
        AMOUNT_RAW => varint(b, pos),
        code => decompress_amount(code),
    }
}

/// Steps over an amount written by [`write_amount`] at `*pos` without decompressing it.
#[inline]
fn skip_amount(b: &[u8], pos: &mut usize) {
    // A compressed amount up to MAX_MONEY is below 2^55: at most 8 VARINT bytes. Only a longer
    // one can be AMOUNT_RAW, and only that one is decoded.
    let start = *pos;
    let mut end = start;
    while b[end] & 0x80 != 0 {
        end += 1;
    }
    if end - start < AMOUNT_VARINT_MAX {
        *pos = end + 1;
    } else if varint(b, pos) == AMOUNT_RAW {
        varint(b, pos);
    }
}

/// Bytes of the longest VARINT of a compressed amount up to MAX_MONEY (below 2^55).
const AMOUNT_VARINT_MAX: usize = 8;

/// Reads a Core `VARINT` at `*pos` of a record this module wrote.
fn varint(b: &[u8], pos: &mut usize) -> u64 {
    let first = b[*pos];
    if first < 0x80 {
        *pos += 1;
        return u64::from(first);
    }
    let mut n: u64 = 0;
    loop {
        let byte = b[*pos];
        *pos += 1;
        n = (n << 7) | u64::from(byte & 0x7f);
        if byte & 0x80 == 0 {
            return n;
        }
        n = n.wrapping_add(1);
    }
}

/// Reads a Core-style `VARINT` of up to 128 bits (the mask) at `*pos`.
fn varint128(b: &[u8], pos: &mut usize) -> u128 {
    let first = b[*pos];
    if first < 0x80 {
        *pos += 1;
        return u128::from(first);
    }
    let mut n: u128 = 0;
    loop {
        let byte = b[*pos];
        *pos += 1;
        n = (n << 7) | u128::from(byte & 0x7f);
        if byte & 0x80 == 0 {
            return n;
        }
        n = n.wrapping_add(1);
    }
}

/// A 32-bit field (codes, groups) read as a `VARINT`; this module writes them from `u32`s.
fn varint32(b: &[u8], pos: &mut usize) -> u32 {
    u32::try_from(varint(b, pos)).unwrap_or(u32::MAX)
}

/// Position after the compressed script starting at `pos`.
fn script_end(b: &[u8], mut pos: usize) -> usize {
    match b[pos] {
        0 | 1 => return pos + 21,
        2..=5 => return pos + 33,
        _ => {}
    }
    let size = varint(b, &mut pos);
    let len = match size {
        0 | 1 => 20,
        2..=5 => 32,
        raw => usize::try_from(raw - 6).unwrap_or(usize::MAX),
    };
    pos.saturating_add(len)
}

/// A record's fixed part.
struct Head {
    /// Bit i set: output `64 * group + i` is unspent.
    live: u64,
    per_output_codes: bool,
    group: u32,
    /// The shared code (without per-output codes).
    code: u32,
    /// Offset of the first output.
    outputs: usize,
}

impl Head {
    fn count(&self) -> u32 {
        self.live.count_ones()
    }
}

#[allow(clippy::cast_possible_truncation)] // The mask holds 64 bits of `live` above the flags.
fn head(b: &[u8]) -> Head {
    let mut pos = TXID_LEN;
    let mask = varint128(b, &mut pos);
    let group = if mask & FLAG_GROUP != 0 {
        varint32(b, &mut pos)
    } else {
        0
    };
    let per_output_codes = mask & FLAG_CODES != 0;
    let code = if per_output_codes {
        0
    } else {
        varint32(b, &mut pos)
    };
    Head {
        live: (mask >> MASK_FLAGS) as u64,
        per_output_codes,
        group,
        code,
        outputs: pos,
    }
}

/// Writes a record's fixed part.
fn write_head(txid: &[u8; 32], live: u64, group: u32, code: Option<u32>, out: &mut Vec<u8>) {
    out.extend_from_slice(txid);
    let mut mask = u128::from(live) << MASK_FLAGS;
    if group != 0 {
        mask |= FLAG_GROUP;
    }
    if code.is_none() {
        mask |= FLAG_CODES;
    }
    write_varint_wide(mask, out);
    if group != 0 {
        write_varint(u64::from(group), out);
    }
    if let Some(code) = code {
        write_varint(u64::from(code), out);
    }
}

/// One output of a record.
#[derive(Clone, Copy)]
struct Out {
    low: u8,
    code: u32,
    /// Offset of its first byte (its code, or its amount).
    start: usize,
    /// Offset of its amount.
    value: usize,
    /// Offset after its script.
    end: usize,
}

/// The outputs of a record, in order.
#[allow(clippy::cast_possible_truncation)] // A bit index of a u64: below 64.
fn outputs<'a>(b: &'a [u8], head: &Head) -> impl Iterator<Item = Out> + 'a {
    let mut pos = head.outputs;
    let per_output_codes = head.per_output_codes;
    let shared = head.code;
    let mut live = head.live;
    std::iter::from_fn(move || {
        if live == 0 {
            return None;
        }
        let low = live.trailing_zeros() as u8;
        live &= live - 1;
        let start = pos;
        let code = if per_output_codes {
            varint32(b, &mut pos)
        } else {
            shared
        };
        let value = pos;
        skip_amount(b, &mut pos);
        pos = script_end(b, pos);
        Some(Out {
            low,
            code,
            start,
            value,
            end: pos,
        })
    })
}

/// Length of the record's encoding (its allocation may be longer).
fn live_len(b: &[u8]) -> usize {
    let h = head(b);
    outputs(b, &h).last().map_or(h.outputs, |o| o.end)
}

fn txid_of(b: &[u8]) -> &[u8; 32] {
    b[..TXID_LEN].try_into().unwrap_or(&[0; 32])
}

/// The hash of the record's key.
fn record_hash(seed: u64, b: &[u8]) -> u64 {
    key_hash(seed, txid_of(b), head(b).group)
}

/// Whether record `b` holds `txid`'s outputs of `group`.
fn matches(b: &[u8], txid: &[u8; 32], group: u32) -> bool {
    if b[..TXID_LEN] != txid[..] {
        return false;
    }
    let mut pos = TXID_LEN;
    if varint128(b, &mut pos) & FLAG_GROUP == 0 {
        group == 0
    } else {
        varint32(b, &mut pos) == group
    }
}

/// The coin of output `out` of record `b`.
fn decode(b: &[u8], out: &Out) -> Option<Coin> {
    let mut pos = out.value;
    let sat = read_amount(b, &mut pos);
    let script_pubkey = read_compressed_script(&mut &b[pos..out.end]).ok()?;
    Some(Coin {
        amount: Amount::from_sat(sat),
        height: out.code >> 1,
        is_coinbase: out.code & 1 == 1,
        script_pubkey,
    })
}

/// Where an output of a record being rebuilt comes from.
#[derive(Clone, Copy)]
struct Part {
    low: u8,
    code: u32,
    /// Its amount and script bytes: in the old record (`old`) or in the new-coin buffer.
    old: bool,
    start: usize,
    end: usize,
}

/// One shard: records, their index, and reusable buffers for writers.
pub(crate) struct Shard {
    table: Index,
    arena: Arena,
    coins: usize,
    seed: u64,
    /// Writers' scratch space (a record being built, encoded new coins, parts, handles).
    record: Vec<u8>,
    fresh: Vec<u8>,
    parts: Vec<Part>,
    handles: Vec<(Handle, u64)>,
    chunk_records: Vec<Handle>,
}

impl Shard {
    /// An empty shard whose keys hash with `seed`.
    pub(crate) fn new(seed: u64) -> Shard {
        Shard {
            table: Index::default(),
            arena: Arena::default(),
            coins: 0,
            seed,
            record: Vec::new(),
            fresh: Vec::new(),
            parts: Vec::new(),
            handles: Vec::new(),
            chunk_records: Vec::new(),
        }
    }

    /// Number of coins.
    pub(crate) fn len(&self) -> usize {
        self.coins
    }

    /// The index slot and handle of the record holding `key` (whose hash is `hash`).
    fn find(&self, hash: u64, key: &Key) -> Option<(usize, Handle)> {
        let group = key.group();
        let slot = self
            .table
            .find(hash, |h| matches(self.arena.get(h), &key.txid, group))?;
        Some((slot, self.table.handle(slot)))
    }

    /// The output `key` of the record `b`, with the record's head.
    fn locate(b: &[u8], key: &Key) -> Option<Out> {
        Self::locate_in(b, &head(b), key)
    }

    /// The output `key` of the record `b` whose head is `h`: the live mask says whether it is
    /// there and how many outputs precede it, which are stepped over without being described.
    fn locate_in(b: &[u8], h: &Head, key: &Key) -> Option<Out> {
        let low = key.low();
        let bit = 1u64 << low;
        if h.live & bit == 0 {
            return None;
        }
        let mut pos = h.outputs;
        for _ in 0..(h.live & (bit - 1)).count_ones() {
            if h.per_output_codes {
                varint(b, &mut pos);
            }
            skip_amount(b, &mut pos);
            pos = script_end(b, pos);
        }
        let start = pos;
        let code = if h.per_output_codes {
            varint32(b, &mut pos)
        } else {
            h.code
        };
        let value = pos;
        skip_amount(b, &mut pos);
        Some(Out {
            low,
            code,
            start,
            value,
            end: script_end(b, pos),
        })
    }

    /// The coin at `key`.
    pub(crate) fn get(&self, hash: u64, key: &Key) -> Option<Coin> {
        let b = self.arena.get(self.find(hash, key)?.1);
        decode(b, &Self::locate(b, key)?)
    }

    /// Brings what a lookup of `key` reads into the cache: the index slots (`record` false), or
    /// also the record (`record` true; the slots should be cached by then). Returns a byte read,
    /// which the caller folds into a `black_box`, so the loads are made.
    pub(crate) fn touch(&self, hash: u64, key: &Key, record: bool) -> u8 {
        if !record {
            return self.table.touch(hash);
        }
        match self.find(hash, key) {
            Some((_, handle)) => self.arena.get(handle).first().copied().unwrap_or(0),
            None => 0,
        }
    }

    /// Whether `key` is unspent.
    pub(crate) fn contains(&self, hash: u64, key: &Key) -> bool {
        self.find(hash, key)
            .is_some_and(|(_, h)| Self::locate(self.arena.get(h), key).is_some())
    }

    /// Calls `f` with every coin.
    pub(crate) fn for_each(&self, mut f: impl FnMut(Key, Coin)) {
        for handle in self.table.iter() {
            let b = self.arena.get(handle);
            let h = head(b);
            let txid = *txid_of(b);
            for out in outputs(b, &h) {
                if let Some(coin) = decode(b, &out) {
                    let vout = (h.group << GROUP_SHIFT) | u32::from(out.low);
                    f(Key { txid, vout }, coin);
                }
            }
        }
    }

    /// Writes `coins` (all of one txid and group, as `key`, ascending by vout) into the record of
    /// their group, replacing coins at the same outpoints. Returns the coin replaced at the first
    /// outpoint when `want_old`.
    pub(crate) fn put(
        &mut self,
        hash: u64,
        key: &Key,
        coins: &[(u32, CoinParts<'_>)],
        want_old: bool,
    ) -> Option<Coin> {
        if coins.is_empty() {
            return None;
        }
        let group = key.group();
        if self.put_new(hash, key, coins) {
            return None;
        }
        // New coins' amount and script bytes.
        self.fresh.clear();
        self.parts.clear();
        let mut new_parts = 0;
        for &(vout, coin) in coins {
            let low = Key { vout, ..*key }.low();
            let start = self.fresh.len();
            write_amount(coin.amount.to_sat(), &mut self.fresh);
            write_compressed_script(coin.script, &mut self.fresh);
            let part = Part {
                low,
                code: coin.code,
                old: false,
                start,
                end: self.fresh.len(),
            };
            // Sorted input; a repeated vout keeps the last coin.
            match self.parts.last_mut() {
                Some(last) if last.low == low => *last = part,
                Some(last) if last.low > low => {
                    let at = self.parts.partition_point(|p| p.low < low);
                    if self.parts[at].low == low {
                        self.parts[at] = part;
                    } else {
                        self.parts.insert(at, part);
                        new_parts += 1;
                    }
                }
                _ => {
                    self.parts.push(part);
                    new_parts += 1;
                }
            }
        }
        let existing = self.find(hash, key);
        let mut old_coin = None;
        let mut old_live = 0;
        let mut added = new_parts;
        if let Some((_, handle)) = existing {
            // Merge the record's outputs under the new ones.
            let b = self.arena.get(handle);
            let h = head(b);
            let first_low = key.low();
            let mut merged = Vec::with_capacity(h.live.count_ones() as usize + self.parts.len());
            let mut news = self.parts.iter().copied().peekable();
            for out in outputs(b, &h) {
                while let Some(n) = news.next_if(|n| n.low < out.low) {
                    merged.push(n);
                }
                if news.peek().is_some_and(|n| n.low == out.low) {
                    added -= 1;
                    if want_old && out.low == first_low {
                        old_coin = decode(b, &out);
                    }
                    continue;
                }
                merged.push(Part {
                    low: out.low,
                    code: out.code,
                    old: true,
                    start: out.value,
                    end: out.end,
                });
            }
            merged.extend(news);
            old_live = live_len(b);
            self.parts = merged;
        }
        // Build the record.
        let b_old: &[u8] = existing.map_or(&[], |(_, h)| self.arena.get(h));
        let record = &mut self.record;
        record.clear();
        let shared = self.parts[0].code;
        let per_output_codes = self.parts.iter().any(|p| p.code != shared);
        let live = self.parts.iter().fold(0u64, |m, p| m | 1 << p.low);
        let code = (!per_output_codes).then_some(shared);
        write_head(&key.txid, live, group, code, record);
        for p in &self.parts {
            if per_output_codes {
                write_varint(u64::from(p.code), record);
            }
            let src = if p.old { b_old } else { &self.fresh[..] };
            record.extend_from_slice(&src[p.start..p.end]);
        }
        match existing {
            Some((slot, handle)) => {
                let moved = self.arena.replace(handle, old_live, &self.record);
                if moved != handle {
                    self.table.set_handle(slot, moved);
                }
            }
            None => {
                let handle = self.arena.alloc(&self.record);
                let (arena, seed) = (&self.arena, self.seed);
                self.table
                    .insert(hash, handle, |h| record_hash(seed, arena.get(h)));
            }
        }
        self.coins += added;
        old_coin
    }

    /// The common case of [`Shard::put`]: coins of one code at ascending vouts whose record
    /// does not exist yet, written straight into a new record. False (nothing changed) otherwise.
    fn put_new(&mut self, hash: u64, key: &Key, coins: &[(u32, CoinParts<'_>)]) -> bool {
        let code = coins[0].1.code;
        let ascending = coins.windows(2).all(|w| w[0].0 < w[1].0);
        if !ascending || coins.iter().any(|(_, c)| c.code != code) || self.find(hash, key).is_some()
        {
            return false;
        }
        let live = coins
            .iter()
            .fold(0u64, |m, &(vout, _)| m | 1 << Key { vout, ..*key }.low());
        self.record.clear();
        write_head(&key.txid, live, key.group(), Some(code), &mut self.record);
        for (_, coin) in coins {
            write_amount(coin.amount.to_sat(), &mut self.record);
            write_compressed_script(coin.script, &mut self.record);
        }
        let handle = self.arena.alloc(&self.record);
        let (arena, seed) = (&self.arena, self.seed);
        self.table
            .insert(hash, handle, |h| record_hash(seed, arena.get(h)));
        self.coins += coins.len();
        true
    }

    /// Removes the coin at `key`; `None` when there is none, else the coin when `want_old`.
    pub(crate) fn remove(&mut self, hash: u64, key: &Key, want_old: bool) -> Option<Option<Coin>> {
        let (slot, handle) = self.find(hash, key)?;
        let b = self.arena.get(handle);
        let h = head(b);
        // The outputs after this one are not read: only a rebuilt record needs its end.
        let out = Self::locate_in(b, &h, key)?;
        let old = if want_old { decode(b, &out) } else { None };
        if h.count() == 1 {
            self.table.remove_at(slot);
            // Its only output is the last: the record ends with it.
            self.arena.free(handle, out.end);
        } else if self.cut_in_place(handle, &h, &out) {
            // Done: the output's bytes were cut out where the record lies.
        } else {
            // The record without the output: never longer, so rewritten in place.
            let b = self.arena.get(handle);
            let end = live_len(b);
            self.record.clear();
            let code = (!h.per_output_codes).then_some(h.code);
            let live = h.live & !(1 << out.low);
            write_head(txid_of(b), live, h.group, code, &mut self.record);
            self.record.extend_from_slice(&b[h.outputs..out.start]);
            self.record.extend_from_slice(&b[out.end..end]);
            let moved = self.arena.replace(handle, end, &self.record);
            if moved != handle {
                self.table.set_handle(slot, moved);
            }
        }
        self.coins -= 1;
        Some(old)
    }

    /// Cuts output `out` out of the chunk record at `handle` (head `h`) where it lies: the new mask is written over the old one when it has the same length
    /// (almost always) and the outputs after `out` move down. False (nothing changed) for a side
    /// record or a mask that would change length.
    fn cut_in_place(&mut self, handle: Handle, h: &Head, out: &Out) -> bool {
        let mut flags = 0;
        if h.group != 0 {
            flags |= FLAG_GROUP;
        }
        if h.per_output_codes {
            flags |= FLAG_CODES;
        }
        let live = h.live & !(1 << out.low);
        self.record.clear();
        write_varint_wide((u128::from(live) << MASK_FLAGS) | flags, &mut self.record);
        let Some(b) = self.arena.get_mut(handle) else {
            return false;
        };
        let mut mask_end = TXID_LEN;
        varint128(b, &mut mask_end);
        if mask_end - TXID_LEN != self.record.len() {
            return false;
        }
        b[TXID_LEN..mask_end].copy_from_slice(&self.record);
        // The whole allocation moves down: bytes past the record's end are dead either way.
        let len = b.len();
        b.copy_within(out.end..len, out.start);
        self.arena.shrunk(handle, out.end - out.start);
        true
    }

    /// Moves the live records out of chunks the arena queued, releasing them.
    pub(crate) fn maintain(&mut self) {
        while let Some(chunk) = self.arena.take_pending() {
            self.arena.records_in(chunk, &mut self.chunk_records);
            // Hash every record first: the chunk is released as its last live record leaves.
            self.handles.clear();
            for &handle in &self.chunk_records {
                self.handles
                    .push((handle, record_hash(self.seed, self.arena.get(handle))));
            }
            for &(handle, hash) in &self.handles {
                let Some(slot) = self.table.find(hash, |h| h == handle) else {
                    continue; // A dead record.
                };
                let b = self.arena.get(handle);
                let live = live_len(b);
                self.record.clear();
                self.record.extend_from_slice(&b[..live]);
                self.arena.free(handle, live);
                let moved = self.arena.alloc(&self.record);
                self.table.set_handle(slot, moved);
            }
        }
    }

    /// (bytes the arena holds, bytes of live records, bytes of the table's allocation).
    #[cfg(all(test, not(loom)))]
    pub(crate) fn memory(&self) -> (usize, usize, usize) {
        (
            self.arena.allocated_bytes(),
            self.arena.live_bytes(),
            self.table.allocation_size(),
        )
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use bitcoin::ScriptBuf;

    fn coin(sat: u64, height: u32, script_len: usize) -> Coin {
        Coin {
            amount: Amount::from_sat(sat),
            height,
            is_coinbase: false,
            script_pubkey: ScriptBuf::from_bytes(vec![0x51; script_len]),
        }
    }

    fn key(txid: u8, vout: u32) -> Key {
        Key {
            txid: [txid; 32],
            vout,
        }
    }

    fn put(shard: &mut Shard, k: Key, c: &Coin) -> Option<Coin> {
        let hash = key_hash(shard.seed, &k.txid, k.group());
        shard.put(hash, &k, &[(k.vout, c.parts())], true)
    }

    fn get(shard: &Shard, k: Key) -> Option<Coin> {
        shard.get(key_hash(shard.seed, &k.txid, k.group()), &k)
    }

    fn remove(shard: &mut Shard, k: Key) -> Option<Coin> {
        let hash = key_hash(shard.seed, &k.txid, k.group());
        shard.remove(hash, &k, true).flatten()
    }

    /// Every amount, up to the raw ones above MAX_MONEY, is stepped over to where reading it
    /// ends, and so is every compressed script size.
    #[test]
    fn amounts_and_scripts_are_stepped_over_exactly() {
        let max = Amount::MAX_MONEY.to_sat();
        let mut sats = vec![0, 1, 9, 10, 100_000_000, max - 1, max, max + 1, u64::MAX];
        sats.extend((0..64).map(|s| (1u64 << s) - 1));
        for sat in sats {
            let mut b = Vec::new();
            write_amount(sat, &mut b);
            b.push(0x80); // A following byte stays unread.
            let (mut read, mut skipped) = (0, 0);
            assert_eq!(read_amount(&b, &mut read), sat);
            skip_amount(&b, &mut skipped);
            assert_eq!((read, skipped), (b.len() - 1, b.len() - 1), "{sat}");
        }
        for script in [vec![], vec![0x51; 25], vec![0x51; 200], vec![0x52; 5_000]] {
            let mut b = Vec::new();
            write_compressed_script(bitcoin::Script::from_bytes(&script), &mut b);
            assert_eq!(script_end(&b, 0), b.len(), "{} bytes", script.len());
        }
        let p2pkh = [&[0x76, 0xa9, 0x14][..], &[7; 20], &[0x88, 0xac]].concat();
        let p2sh = [&[0xa9, 0x14][..], &[7; 20], &[0x87]].concat();
        let p2pk = [&[0x21, 0x02][..], &[7; 32], &[0xac]].concat();
        for script in [p2pkh, p2sh, p2pk] {
            let mut b = Vec::new();
            write_compressed_script(bitcoin::Script::from_bytes(&script), &mut b);
            assert_eq!(script_end(&b, 0), b.len());
        }
    }

    /// The record readers (with their one-byte fast path) read what the writer wrote, at the
    /// one/two-byte boundary, at the widths' ends and at random.
    #[test]
    fn record_varints_read_what_was_written() {
        let mut values: Vec<u128> =
            vec![0, 1, 0x7f, 0x80, 0x81, 0x407f, 0x4080, u128::from(u64::MAX)];
        values.extend((1..=127).map(|s| (1u128 << s) - 1));
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..1_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            values.push(u128::from(x) >> (x % 64));
        }
        for &n in &values {
            let mut b = Vec::new();
            write_varint_wide(n, &mut b);
            b.push(0xff); // A following byte stays unread.
            let mut pos = 0;
            assert_eq!(varint128(&b, &mut pos), n);
            assert_eq!(pos, b.len() - 1);
            if let Ok(n64) = u64::try_from(n) {
                let mut pos = 0;
                assert_eq!(varint(&b, &mut pos), n64);
                assert_eq!(pos, b.len() - 1);
            }
        }
    }

    #[test]
    fn outputs_of_a_tx_share_one_record_and_codes_split_when_they_differ() {
        let mut shard = Shard::new(7);
        let a = coin(1_000, 10, 22);
        let b = coin(2_000, 10, 34);
        put(&mut shard, key(1, 0), &a);
        put(&mut shard, key(1, 2), &b);
        assert_eq!(shard.table.len(), 1);
        let b_other_height = coin(2_000, 11, 34);
        assert_eq!(put(&mut shard, key(1, 2), &b_other_height), Some(b));
        put(&mut shard, key(1, 1), &a);
        assert_eq!(shard.table.len(), 1);
        assert_eq!(shard.len(), 3);
        assert_eq!(get(&shard, key(1, 2)), Some(b_other_height.clone()));
        assert_eq!(get(&shard, key(1, 0)), Some(a.clone()));
        assert_eq!(get(&shard, key(1, 3)), None);
        // A group of its own for vout 64.
        put(&mut shard, key(1, 64), &a);
        assert_eq!(shard.table.len(), 2);
        assert_eq!(get(&shard, key(1, 64)), Some(a.clone()));
        assert_eq!(remove(&mut shard, key(1, 1)), Some(a.clone()));
        assert_eq!(remove(&mut shard, key(1, 1)), None);
        assert_eq!(remove(&mut shard, key(1, 0)), Some(a.clone()));
        assert_eq!(remove(&mut shard, key(1, 2)), Some(b_other_height));
        assert_eq!(shard.table.len(), 1);
        assert_eq!(remove(&mut shard, key(1, 64)), Some(a));
        assert_eq!(shard.table.len(), 0);
        assert_eq!(shard.len(), 0);
    }

    /// The live bytes of `key`'s record.
    fn record_bytes(shard: &Shard, k: Key) -> Vec<u8> {
        let hash = key_hash(shard.seed, &k.txid, k.group());
        let (_, handle) = shard.find(hash, &k).expect("the record exists");
        let b = shard.arena.get(handle);
        b[..live_len(b)].to_vec()
    }

    /// Locating an output by the live mask finds what walking every output finds, for every
    /// position of the group (present or not), with shared and per-output codes.
    #[test]
    fn locating_by_mask_equals_walking_the_outputs() {
        for heights in [[7, 7, 7, 7], [7, 8, 7, 9]] {
            let mut shard = Shard::new(2);
            for (&v, &h) in [0u32, 3, 17, 63].iter().zip(&heights) {
                put(
                    &mut shard,
                    key(1, v),
                    &coin(u64::from(v) + 5, h, 20 + v as usize),
                );
            }
            let k = key(1, 0);
            let b = record_bytes(&shard, k);
            let h = head(&b);
            for vout in 0..GROUP_OUTPUTS {
                let k = key(1, vout);
                let walked = outputs(&b, &h).find(|o| o.low == k.low());
                let located = Shard::locate_in(&b, &h, &k);
                assert_eq!(
                    located.map(|o| (o.low, o.code, o.start, o.value, o.end)),
                    walked.map(|o| (o.low, o.code, o.start, o.value, o.end)),
                    "vout {vout}"
                );
            }
        }
    }

    /// A new record written in one go (the fast path) has the bytes of one grown coin by coin
    /// (the merging path); mixed codes or a repeated vout take the merging path and still
    /// agree with the one-by-one record.
    #[test]
    fn new_records_written_at_once_equal_records_grown_coin_by_coin() {
        let same = [coin(1, 7, 22), coin(2, 7, 25), coin(3, 7, 300)];
        let mixed = [coin(1, 7, 22), coin(2, 8, 25), coin(3, 7, 3)];
        for (base, coins) in [(0, &same), (64, &same), (0, &mixed)] {
            let k = key(9, base);
            let hash = key_hash(5, &k.txid, k.group());
            let at_once: Vec<(u32, CoinParts<'_>)> =
                (base..).zip(coins.iter().map(Coin::parts)).collect();
            let mut one_go = Shard::new(5);
            assert_eq!(one_go.put(hash, &k, &at_once, true), None);
            let mut grown = Shard::new(5);
            for (v, c) in (base..).zip(coins.iter()) {
                put(&mut grown, key(9, v), c);
            }
            assert_eq!(
                record_bytes(&one_go, k),
                record_bytes(&grown, k),
                "base {base}"
            );
            assert_eq!(one_go.len(), 3);
            for (v, c) in (base..).zip(coins.iter()) {
                assert_eq!(get(&one_go, key(9, v)), Some(c.clone()));
            }
        }
        // A repeated vout: the last coin wins, as on the merging path.
        let mut shard = Shard::new(5);
        let k = key(3, 0);
        let twice = [(0, same[0].parts()), (0, same[1].parts())];
        shard.put(key_hash(5, &k.txid, 0), &k, &twice, false);
        assert_eq!((shard.len(), get(&shard, k)), (1, Some(same[1].clone())));
    }

    /// Cutting outputs out in place leaves the very bytes a record written afresh with the
    /// remaining outputs has (shared and per-output codes, group 0 and others, every position).
    #[test]
    fn cutting_in_place_equals_writing_the_rest_afresh() {
        // Six outputs: cutting the last one shortens the mask (the rebuilding path).
        for (base, heights) in [(0, [7, 7, 7, 7, 7, 7]), (64, [7, 7, 8, 7, 9, 7])] {
            let coins: Vec<Coin> = heights
                .iter()
                .zip(0u64..)
                .map(|(&h, i)| coin(1_000 * (i + 1), h, 20 + 3 * usize::try_from(i).unwrap()))
                .collect();
            for cut in 0..coins.len() {
                let mut shard = Shard::new(5);
                for (v, c) in (base..).zip(&coins) {
                    put(&mut shard, key(4, v), c);
                }
                let target = key(4, base + u32::try_from(cut).unwrap());
                assert_eq!(remove(&mut shard, target), Some(coins[cut].clone()));
                let mut fresh = Shard::new(5);
                for (v, c) in (base..).zip(&coins).filter(|(v, _)| *v != target.vout) {
                    put(&mut fresh, key(4, v), c);
                }
                let any = key(4, if cut == 0 { base + 1 } else { base });
                assert_eq!(
                    record_bytes(&shard, any),
                    record_bytes(&fresh, any),
                    "cut {cut}"
                );
                assert_eq!(shard.len(), coins.len() - 1);
            }
        }
    }

    #[test]
    fn a_group_holds_64_outputs_at_the_limit() {
        let mut shard = Shard::new(1);
        let c = coin(5, 1, 3);
        let all: Vec<(u32, CoinParts<'_>)> = (0..GROUP_OUTPUTS).map(|v| (v, c.parts())).collect();
        let k = key(9, 0);
        shard.put(key_hash(1, &k.txid, 0), &k, &all, false);
        assert_eq!(shard.len(), 64);
        assert_eq!(shard.table.len(), 1);
        // One past the group is the next group's record.
        put(&mut shard, key(9, GROUP_OUTPUTS), &c);
        assert_eq!(shard.table.len(), 2);
        for v in 0..=GROUP_OUTPUTS {
            assert_eq!(get(&shard, key(9, v)), Some(c.clone()), "vout {v}");
        }
    }

    #[test]
    fn long_scripts_live_in_the_side_store() {
        let mut shard = Shard::new(3);
        let long = coin(1, 5, 5_000);
        put(&mut shard, key(2, 0), &long);
        put(&mut shard, key(2, 1), &coin(1, 5, 3));
        assert_eq!(get(&shard, key(2, 0)), Some(long.clone()));
        assert_eq!(remove(&mut shard, key(2, 0)), Some(long));
        assert_eq!(get(&shard, key(2, 1)), Some(coin(1, 5, 3)));
    }
}
/// A shard against a `HashMap` model over records of many outputs, spent in every
/// order, with every script compression class, amounts and codes at VARINT boundaries, and the
/// arena's dead-byte accounting checked against the records after every step.
#[cfg(all(test, not(loom)))]
#[allow(clippy::unwrap_used, clippy::cast_possible_truncation)]
mod model_tests {
    use super::*;
    use crate::compress::decompress_amount;
    use bitcoin::ScriptBuf;
    use std::collections::HashMap;

    use crate::test_rng::Rng;

    const G: &str = "0479be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798\
                     483ada7726a3c4655da4fbfc0e1108a8fd17b448a68554199c47d08ffb10d4b8";

    /// A script of every compression class, raw sizes at the size VARINT's boundaries.
    fn script(rng: &mut Rng) -> ScriptBuf {
        let fill = (rng.next() & 0xff) as u8;
        let g: Vec<u8> = (0..65)
            .map(|i| u8::from_str_radix(&G[2 * i..2 * i + 2], 16).unwrap())
            .collect();
        let b = match rng.below(400) {
            0 => [&[0x76, 0xa9, 0x14][..], &[fill; 20], &[0x88, 0xac]].concat(),
            1 => [&[0xa9, 0x14][..], &[fill; 20], &[0x87]].concat(),
            2 => [&[0x21, 0x02][..], &[fill; 32], &[0xac]].concat(),
            3 => [&[0x21, 0x03][..], &[fill; 32], &[0xac]].concat(),
            4 => [&[0x41][..], &g, &[0xac]].concat(),
            // Uncompressed key off the curve: raw.
            5 => [&[0x41, 0x04][..], &[fill; 64], &[0xac]].concat(),
            6 => Vec::new(),
            7 => vec![fill],
            // Size VARINT 127 / 128 (len + 6).
            8 => vec![fill; 121],
            9 => vec![fill; 122],
            10 => [&[0x00, 0x14][..], &[fill; 20]].concat(),
            11 => vec![fill; SCRIPT_MAX_TEST],
            12 => vec![fill; 4_000 + rng.below(200)],
            13 => vec![fill; rng.below(300)],
            n if n % 3 == 0 => vec![fill; rng.below(40)],
            n if n % 3 == 1 => [&[0x76, 0xa9, 0x14][..], &[fill; 20], &[0x88, 0xac]].concat(),
            _ => [&[0x00, 0x14][..], &[fill; 20]].concat(),
        };
        ScriptBuf::from_bytes(b)
    }

    const SCRIPT_MAX_TEST: usize = crate::coin::SCRIPT_SIZE_MAX;

    fn amount(rng: &mut Rng) -> u64 {
        let max = Amount::MAX_MONEY.to_sat();
        match rng.below(10) {
            0 => 0,
            1 => max,
            2 => max - 1,
            3 => decompress_amount(127),
            4 => decompress_amount(128),
            5 => decompress_amount(16_383),
            6 => decompress_amount(16_384),
            7 => max + 1 + rng.next() % 1000,
            8 => u64::MAX,
            _ => rng.next() % (max + 1),
        }
    }

    fn code(rng: &mut Rng, shared: u32) -> u32 {
        match rng.below(8) {
            0 => 127,
            1 => 128,
            2 => 16_383,
            3 => 16_384,
            4 => u32::MAX,
            5 => rng.next() as u32,
            _ => shared,
        }
    }

    fn coin(rng: &mut Rng, shared: u32) -> Coin {
        let code = code(rng, shared);
        Coin {
            amount: Amount::from_sat(amount(rng)),
            height: code >> 1,
            is_coinbase: code & 1 == 1,
            script_pubkey: script(rng),
        }
    }

    /// What a coin reads back as (scripts past SCRIPT_SIZE_MAX: OP_RETURN, as in Core).
    fn stored(c: &Coin) -> Coin {
        let mut c = c.clone();
        if c.script_pubkey.len() > crate::coin::SCRIPT_SIZE_MAX {
            c.script_pubkey = ScriptBuf::from_bytes(vec![0x6a]);
        }
        c
    }

    /// The arena's live bytes as the records say: headers and encodings of chunk records, whole
    /// side records.
    fn live_bytes_of_records(shard: &Shard) -> usize {
        shard
            .table
            .iter()
            .map(|handle| {
                let b = shard.arena.get(handle);
                if handle & (1 << 31) != 0 {
                    b.len()
                } else {
                    usize::from(b.len() >= 0x80) + 1 + live_len(b)
                }
            })
            .sum()
    }

    fn check_all(shard: &Shard, model: &HashMap<Key2, Coin>, step: usize) {
        assert_eq!(shard.len(), model.len(), "step {step}: len");
        let mut seen = 0;
        shard.for_each(|k, c| {
            seen += 1;
            assert_eq!(model.get(&(k.txid, k.vout)), Some(&c), "step {step}: {k:?}");
        });
        assert_eq!(seen, model.len(), "step {step}: for_each count");
        assert_eq!(
            shard.memory().1,
            live_bytes_of_records(shard),
            "step {step}: dead-byte accounting"
        );
    }

    type Key2 = ([u8; 32], u32);

    fn hash(shard: &Shard, k: &Key) -> u64 {
        key_hash(shard.seed, &k.txid, k.group())
    }

    fn run(seed: u64, txids: usize, steps: usize, vout_range: u32) {
        let mut rng = Rng(seed);
        let mut shard = Shard::new(seed);
        let mut model: HashMap<Key2, Coin> = HashMap::new();
        let ids: Vec<[u8; 32]> = (0..txids)
            .map(|i| {
                let mut t = [0u8; 32];
                for c in t.chunks_mut(8) {
                    c.copy_from_slice(&rng.next().to_le_bytes());
                }
                // Some txids share their first 8 bytes (the hashed ones).
                if i % 5 == 1 {
                    t[..8].copy_from_slice(&[0x11; 8]);
                }
                t
            })
            .collect();
        for step in 0..steps {
            let txid = ids[rng.below(ids.len())];
            match rng.below(10) {
                // A batch of coins for one group: a whole transaction's outputs or a few.
                0..=3 => {
                    let group = rng.below(vout_range.div_ceil(64) as usize) as u32;
                    let shared = rng.next() as u32;
                    let most = if rng.below(3) == 0 { 64 } else { 8 };
                    let n = 1 + rng.below(most);
                    // Half the batches have one code (a transaction's outputs).
                    let uniform = rng.below(2) == 0;
                    let mut coins: Vec<(u32, Coin)> = (0..n)
                        .map(|_| {
                            let vout = group * 64 + rng.below(64) as u32;
                            let mut c = coin(&mut rng, shared);
                            if uniform {
                                c.height = shared >> 1;
                                c.is_coinbase = shared & 1 == 1;
                            }
                            (vout, c)
                        })
                        .collect();
                    if rng.below(4) != 0 {
                        coins.sort_by_key(|(v, _)| *v);
                        if rng.below(2) == 0 {
                            coins.dedup_by_key(|(v, _)| *v);
                        }
                    }
                    let key = Key {
                        txid,
                        vout: coins[0].0,
                    };
                    let parts: Vec<(u32, CoinParts<'_>)> =
                        coins.iter().map(|(v, c)| (*v, c.parts())).collect();
                    let want_old = rng.below(2) == 0;
                    let old = shard.put(hash(&shard, &key), &key, &parts, want_old);
                    let expected_old = model.get(&(txid, coins[0].0)).cloned();
                    if want_old {
                        assert_eq!(old, expected_old, "step {step}: put old");
                    }
                    for (v, c) in &coins {
                        model.insert((txid, *v), stored(c));
                    }
                }
                // Spend one of the txid's coins: first, last, middle or random.
                4..=8 => {
                    let mut vouts: Vec<u32> = model
                        .keys()
                        .filter(|(t, _)| *t == txid)
                        .map(|(_, v)| *v)
                        .collect();
                    if vouts.is_empty() {
                        continue;
                    }
                    vouts.sort_unstable();
                    let vout = match rng.below(4) {
                        0 => vouts[0],
                        1 => *vouts.last().unwrap(),
                        2 => vouts[vouts.len() / 2],
                        _ => vouts[rng.below(vouts.len())],
                    };
                    let key = Key { txid, vout };
                    let want_old = rng.below(2) == 0;
                    let got = shard.remove(hash(&shard, &key), &key, want_old);
                    let expected = model.remove(&(txid, vout));
                    assert!(got.is_some(), "step {step}: remove found nothing");
                    if want_old {
                        assert_eq!(got.unwrap(), expected, "step {step}: removed coin");
                    }
                }
                // A lookup (often of a missing coin; then its remove finds nothing).
                _ => {
                    let key = Key {
                        txid,
                        vout: rng.below(vout_range as usize) as u32,
                    };
                    let expected = model.get(&(txid, key.vout)).cloned();
                    assert_eq!(shard.get(hash(&shard, &key), &key), expected, "step {step}");
                    if expected.is_none() {
                        assert_eq!(shard.remove(hash(&shard, &key), &key, true), None);
                    }
                }
            }
            shard.maintain();
            if step % 16 == 0 || step + 1 == steps {
                check_all(&shard, &model, step);
            }
        }
    }

    #[test]
    fn many_output_records_agree_with_a_model_under_random_spend_orders() {
        for seed in 1..=40u64 {
            run(seed * 0x9e37_79b9, 4, 1_500, 130);
        }
    }

    #[test]
    fn many_records_churn_through_chunk_evacuation() {
        for seed in 1..=2u64 {
            run(seed * 0x1234_5677, 400, 8_000, 200);
        }
    }
}
