//! [`Commitment`]: the prover's side. Holds the set's entries in 65,536 key-prefix pages plus a cache
//! of subtree hashes, updates them per block and builds proofs.

use std::thread;

use bitcoin::OutPoint;

use crate::verify::{
    BUCKET_MAX, CLAIMS_MAX, Claim, Entry, LeafCoin, OutPointBytes, PROOF_NODES_MAX, PROOF_SIZE_MAX,
    Proof, ProofNode, Root, bucket_hash, coin_body, node_hash, outpoint_key,
};

/// Key-prefix bits that select a page.
const PAGE_BITS: usize = 16;
/// Number of pages (and of upper-tree slots: nodes `1..PAGES`).
const PAGES: usize = 1 << PAGE_BITS;
/// Touched pages below which an update stays on the calling thread: spawning a scoped thread costs
/// tens of microseconds, a page merge and rehash a few, so small batches are not worth splitting.
pub const PARALLEL_PAGES_MIN: usize = 64;
/// Coins below which a rebuild stays on the calling thread.
const PARALLEL_BUILD_MIN: usize = 50_000;

/// A stored entry: key bytes 2..8 (bytes 0..2 are the page number) then the 32-byte body.
type Stored = [u8; 38];

/// The coin fields the commitment binds, read from whatever coin type the caller has.
pub trait CoinView {
    /// Value in satoshis.
    fn amount_sat(&self) -> u64;
    /// Height of the creating block.
    fn height(&self) -> u32;
    /// Whether the creating transaction is a coinbase.
    fn is_coinbase(&self) -> bool;
    /// The scriptPubKey bytes.
    fn script_bytes(&self) -> &[u8];
}

impl CoinView for LeafCoin {
    fn amount_sat(&self) -> u64 {
        self.amount
    }
    fn height(&self) -> u32 {
        self.height
    }
    fn is_coinbase(&self) -> bool {
        self.is_coinbase
    }
    fn script_bytes(&self) -> &[u8] {
        &self.script
    }
}

impl CoinView for utxo_core::Coin {
    fn amount_sat(&self) -> u64 {
        self.amount.to_sat()
    }
    fn height(&self) -> u32 {
        self.height
    }
    fn is_coinbase(&self) -> bool {
        self.is_coinbase
    }
    fn script_bytes(&self) -> &[u8] {
        self.script_pubkey.as_bytes()
    }
}

impl<T: CoinView + ?Sized> CoinView for &T {
    fn amount_sat(&self) -> u64 {
        (**self).amount_sat()
    }
    fn height(&self) -> u32 {
        (**self).height()
    }
    fn is_coinbase(&self) -> bool {
        (**self).is_coinbase()
    }
    fn script_bytes(&self) -> &[u8] {
        (**self).script_bytes()
    }
}

/// The raw outpoint of a rust-bitcoin outpoint (txid in internal byte order).
pub fn outpoint_bytes(outpoint: &OutPoint) -> OutPointBytes {
    use bitcoin::hashes::Hash as _;
    OutPointBytes {
        txid: outpoint.txid.to_byte_array(),
        vout: outpoint.vout,
    }
}

/// The verifier's copy of a coin's fields.
pub fn leaf_coin<C: CoinView + ?Sized>(coin: &C) -> LeafCoin {
    LeafCoin {
        amount: coin.amount_sat(),
        height: coin.height(),
        is_coinbase: coin.is_coinbase(),
        script: coin.script_bytes().to_vec(),
    }
}

/// The entry (sort prefix and body) the commitment stores for a coin.
pub fn entry_of<C: CoinView + ?Sized>(outpoint: &OutPoint, coin: &C) -> Entry {
    let op = outpoint_bytes(outpoint);
    let key = outpoint_key(&op);
    let mut key8 = [0u8; 8];
    key8.copy_from_slice(&key[..8]);
    Entry {
        key8,
        body: coin_body(
            &op,
            coin.amount_sat(),
            coin.height(),
            coin.is_coinbase(),
            coin.script_bytes(),
        ),
    }
}

fn key8_of(outpoint: &OutPoint) -> [u8; 8] {
    let key = outpoint_key(&outpoint_bytes(outpoint));
    let mut key8 = [0u8; 8];
    key8.copy_from_slice(&key[..8]);
    key8
}

fn page_of(key8: &[u8; 8]) -> usize {
    usize::from(u16::from_be_bytes([key8[0], key8[1]]))
}

fn to_stored(e: &Entry) -> Stored {
    let mut s = [0u8; 38];
    s[..6].copy_from_slice(&e.key8[2..]);
    s[6..].copy_from_slice(&e.body);
    s
}

fn to_entry(page: usize, s: &Stored) -> Entry {
    let mut key8 = [0u8; 8];
    key8[..2].copy_from_slice(&u16::try_from(page).unwrap_or(u16::MAX).to_be_bytes());
    key8[2..].copy_from_slice(&s[..6]);
    let mut body = [0u8; 32];
    body.copy_from_slice(&s[6..]);
    Entry { key8, body }
}

/// Bit `d` (counted from the most significant bit of the composite key `key8 ‖ body`, `d ≥ 16`) of
/// a stored entry.
fn bit(s: &Stored, d: usize) -> bool {
    let b = d - PAGE_BITS;
    (s[b / 8] >> (7 - b % 8)) & 1 == 1
}

/// First differing composite bit of two distinct stored entries of one page.
fn first_diff(a: &Stored, b: &Stored) -> usize {
    for i in 0..38 {
        let x = a[i] ^ b[i];
        if x != 0 {
            return PAGE_BITS + i * 8 + usize::try_from(x.leading_zeros()).unwrap_or(0);
        }
    }
    // Equal entries never share a page (the set holds each entry once).
    PAGE_BITS + 38 * 8
}

/// Splits a sorted page slice of more than `BUCKET_MAX` entries where the tree splits it.
fn split_point(slice: &[Stored]) -> usize {
    let d = first_diff(&slice[0], &slice[slice.len() - 1]);
    slice.partition_point(|s| !bit(s, d))
}

fn stored_bucket_hash(page: usize, slice: &[Stored]) -> [u8; 32] {
    bucket_hash(slice.iter().map(|s| to_entry(page, s)))
}

/// One page: its sorted entries and the hashes of its tree's buckets, left to right.
#[derive(Clone, Default)]
struct Page {
    entries: Box<[Stored]>,
    buckets: Box<[[u8; 32]]>,
}

impl Page {
    /// Recomputes `buckets` from `entries`.
    fn rehash(&mut self, page: usize) {
        self.rehash_reusing(page, &[], &[]);
    }

    /// Recomputes `buckets` from `entries`, reusing the hash of any bucket whose entries are
    /// unchanged from the previous version of the page (`old_entries`, `old_buckets`): a batch then
    /// hashes only the buckets it touched.
    fn rehash_reusing(&mut self, page: usize, old_entries: &[Stored], old_buckets: &[[u8; 32]]) {
        fn ranges(slice: &[Stored], lo: usize, out: &mut Vec<(usize, usize)>) {
            if slice.len() <= BUCKET_MAX {
                out.push((lo, slice.len()));
                return;
            }
            let mid = split_point(slice);
            ranges(&slice[..mid], lo, out);
            ranges(&slice[mid..], lo + mid, out);
        }
        let mut old = Vec::new();
        if !old_entries.is_empty() && !old_buckets.is_empty() {
            ranges(old_entries, 0, &mut old);
        }
        let mut new = Vec::new();
        if !self.entries.is_empty() {
            ranges(&self.entries, 0, &mut new);
        }
        let mut out = Vec::with_capacity(new.len());
        for (start, len) in new {
            let slice = &self.entries[start..start + len];
            let reused = old
                .binary_search_by(|&(os, _)| old_entries[os].cmp(&slice[0]))
                .ok()
                .filter(|&k| old[k].1 == len && &old_entries[old[k].0..old[k].0 + len] == slice)
                .and_then(|k| old_buckets.get(k).copied());
            out.push(reused.unwrap_or_else(|| stored_bucket_hash(page, slice)));
        }
        self.buckets = out.into_boxed_slice();
    }

    /// Hash of the subtree over `slice` (part of this page's tree), consuming cached bucket hashes
    /// from `cursor` on.
    fn cached_hash(&self, slice: &[Stored], cursor: &mut usize) -> [u8; 32] {
        if slice.len() <= BUCKET_MAX {
            let h = self.buckets.get(*cursor).copied().unwrap_or([0; 32]);
            *cursor += 1;
            return h;
        }
        let mid = split_point(slice);
        let l = self.cached_hash(&slice[..mid], cursor);
        let r = self.cached_hash(&slice[mid..], cursor);
        node_hash(&l, &r)
    }

    fn root_hash(&self) -> [u8; 32] {
        self.cached_hash(&self.entries, &mut 0)
    }
}

/// A node of the tree as stored: an upper node (index `1..PAGES`, heap order) or a page.
#[derive(Clone, Copy, Debug)]
enum Slot {
    Upper(usize),
    Page(usize),
}

fn children(i: usize) -> (Slot, Slot) {
    let l = 2 * i;
    if l >= PAGES {
        (Slot::Page(l - PAGES), Slot::Page(l + 1 - PAGES))
    } else {
        (Slot::Upper(l), Slot::Upper(l + 1))
    }
}

/// First page and page count covered by upper node `i`.
fn page_range(i: usize) -> (usize, usize) {
    let depth = usize::try_from(i.ilog2()).unwrap_or(0);
    let span = 1 << (PAGE_BITS - depth);
    ((i - (1 << depth)) * span, span)
}

/// Errors of [`Commitment::from_coins`].
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum BuildError {
    /// The same coin was given twice.
    #[error("coin {outpoint} given twice")]
    DuplicateCoin {
        /// The outpoint.
        outpoint: OutPoint,
    },
}

/// Errors of [`Commitment::apply_changes`]; on error the commitment is unchanged.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum UpdateError {
    /// A spent coin (with exactly these fields) is not in the set.
    #[error("spent coin {outpoint} is not in the commitment (or its fields differ)")]
    MissingCoin {
        /// The outpoint.
        outpoint: OutPoint,
    },
    /// A created coin is already in the set, or created twice in the batch.
    #[error("created coin {outpoint} is already in the commitment")]
    DuplicateCoin {
        /// The outpoint.
        outpoint: OutPoint,
    },
}

/// Errors of [`Commitment::prove`] and [`Commitment::prove_many`].
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProveError {
    /// An inclusion was asked for a coin that is not in the set with these fields.
    #[error("coin {outpoint} is not in the commitment (or its fields differ)")]
    NotInSet {
        /// The outpoint.
        outpoint: OutPoint,
    },
    /// An exclusion was asked for an outpoint whose 8-byte key prefix some coin in the set shares:
    /// the outpoint itself is present, or (probability ≈ n/2⁶⁴) another coin collides with it.
    #[error(
        "outpoint {outpoint} cannot be proved absent: a coin with its key prefix is in the set"
    )]
    PrefixPresent {
        /// The outpoint.
        outpoint: OutPoint,
    },
    /// No queries, or more than [`CLAIMS_MAX`].
    #[error("{count} queries outside 1..={CLAIMS_MAX}")]
    ClaimCount {
        /// Number of queries.
        count: usize,
    },
    /// The proof would exceed [`PROOF_NODES_MAX`] nodes or [`PROOF_SIZE_MAX`] bytes.
    #[error(
        "proof would have {nodes} nodes and {bytes} bytes, beyond PROOF_NODES_MAX or PROOF_SIZE_MAX"
    )]
    TooLarge {
        /// Node count.
        nodes: usize,
        /// Approximate encoded size.
        bytes: usize,
    },
}

/// The commitment to a UTXO set (see the crate docs for the tree, its invariants and its memory).
///
/// ```
/// use bitcoin::{OutPoint, Txid, hashes::Hash};
/// use merkle_proofs::{Commitment, LeafCoin, verify};
///
/// let op = OutPoint { txid: Txid::from_byte_array([7; 32]), vout: 1 };
/// let coin = LeafCoin { amount: 5_000, height: 100, is_coinbase: false, script: vec![0x51] };
/// let mut c = Commitment::new();
/// c.apply_changes([(&op, &coin)], std::iter::empty::<(&OutPoint, &LeafCoin)>()).unwrap();
/// let proof = c.prove(&op, Some(&coin)).unwrap();
/// verify(&c.root(), &proof).unwrap();
///
/// let absent = OutPoint { txid: Txid::from_byte_array([8; 32]), vout: 0 };
/// let proof = c.prove::<LeafCoin>(&absent, None).unwrap();
/// verify(&c.root(), &Proof::decode(&proof.encode()).unwrap()).unwrap();
/// # use merkle_proofs::Proof;
/// ```
#[derive(Clone)]
pub struct Commitment {
    pages: Vec<Page>,
    /// Coins under upper node `i` (index 0 unused).
    counts: Vec<u32>,
    /// Hash of upper node `i` (meaningless where the count is 0).
    hashes: Vec<[u8; 32]>,
    len: usize,
    threads: usize,
}

impl Default for Commitment {
    fn default() -> Self {
        Commitment::new()
    }
}

impl std::fmt::Debug for Commitment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Commitment")
            .field("len", &self.len)
            .field("root", &self.root())
            .finish()
    }
}

/// One page's share of a batch: the page number, entries to remove and entries to add (sorted).
struct PageWork {
    page: usize,
    remove: Vec<Stored>,
    insert: Vec<Stored>,
}

impl Commitment {
    /// The commitment to the empty set.
    pub fn new() -> Commitment {
        Commitment {
            pages: vec![Page::default(); PAGES],
            counts: vec![0; PAGES],
            hashes: vec![[0; 32]; PAGES],
            len: 0,
            threads: 2,
        }
    }

    /// Sets how many threads updates and rebuilds may use (default 2; 1 keeps all work on the
    /// calling thread). Work is split with `std::thread::scope` only above measured thresholds.
    pub fn set_threads(&mut self, threads: usize) {
        self.threads = threads.max(1);
    }

    /// Builds the commitment of a set. The input order does not matter (the result depends only on
    /// the set), so `UtxoSet::sorted_coins()` or a snapshot's order both work.
    ///
    /// # Errors
    /// [`BuildError::DuplicateCoin`] if a coin appears twice.
    pub fn from_coins<'a, C: CoinView + Sync + 'a>(
        coins: impl IntoIterator<Item = (&'a OutPoint, &'a C)>,
    ) -> Result<Commitment, BuildError> {
        let coins: Vec<(&OutPoint, &C)> = coins.into_iter().collect();
        let mut c = Commitment::new();
        let mut entries: Vec<(Entry, u32)> = vec![
            (
                Entry {
                    key8: [0; 8],
                    body: [0; 32]
                },
                0
            );
            coins.len()
        ];
        let hash_chunk = |out: &mut [(Entry, u32)], base: usize| {
            for (k, slot) in out.iter_mut().enumerate() {
                let (op, coin) = coins[base + k];
                *slot = (
                    entry_of(op, coin),
                    u32::try_from(base + k).unwrap_or(u32::MAX),
                );
            }
        };
        if coins.len() >= PARALLEL_BUILD_MIN && c.threads > 1 {
            let half = coins.len() / 2;
            let (a, b) = entries.split_at_mut(half);
            thread::scope(|s| {
                s.spawn(|| hash_chunk(a, 0));
                hash_chunk(b, half);
            });
        } else {
            hash_chunk(&mut entries, 0);
        }
        entries.sort_unstable_by_key(|a| a.0);
        if let Some(w) = entries.windows(2).find(|w| w[0].0 == w[1].0) {
            let idx = usize::try_from(w[1].1).unwrap_or(0);
            return Err(BuildError::DuplicateCoin {
                outpoint: *coins[idx].0,
            });
        }
        drop(coins);
        // Distribute into pages (entries are sorted, so each page is a contiguous run).
        let mut start = 0;
        while start < entries.len() {
            let page = page_of(&entries[start].0.key8);
            let end = start + entries[start..].partition_point(|e| page_of(&e.0.key8) == page);
            c.pages[page].entries = entries[start..end]
                .iter()
                .map(|e| to_stored(&e.0))
                .collect();
            start = end;
        }
        c.len = entries.len();
        drop(entries);
        let threads = c.threads;
        let rehash_all = |pages: &mut [Page], base: usize| {
            for (k, p) in pages.iter_mut().enumerate() {
                if !p.entries.is_empty() {
                    p.rehash(base + k);
                }
            }
        };
        if c.len >= PARALLEL_BUILD_MIN && threads > 1 {
            let (a, b) = c.pages.split_at_mut(PAGES / 2);
            thread::scope(|s| {
                s.spawn(|| rehash_all(a, 0));
                rehash_all(b, PAGES / 2);
            });
        } else {
            rehash_all(&mut c.pages, 0);
        }
        for i in (1..PAGES).rev() {
            c.recompute(i);
        }
        Ok(c)
    }

    /// Alias of [`Commitment::from_coins`] for a set given in any deterministic order (e.g.
    /// `UtxoSet::sorted_coins()` at open): the rebuild the node uses after a restart.
    ///
    /// # Errors
    /// As [`Commitment::from_coins`].
    pub fn from_sorted_coins<'a, C: CoinView + Sync + 'a>(
        coins: impl IntoIterator<Item = (&'a OutPoint, &'a C)>,
    ) -> Result<Commitment, BuildError> {
        Commitment::from_coins(coins)
    }

    /// Number of coins committed to.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The root: 32 bytes that depend only on the set.
    pub fn root(&self) -> Root {
        if self.len == 0 {
            Root::empty()
        } else {
            Root(self.hashes[1])
        }
    }

    /// Bytes of heap the commitment holds, counted from its buffers' capacities (allocator
    /// overhead not included; the benchmarks also measure resident memory).
    pub fn heap_bytes(&self) -> usize {
        let pages = self.pages.capacity() * std::mem::size_of::<Page>();
        let inner: usize = self
            .pages
            .iter()
            .map(|p| p.entries.len() * std::mem::size_of::<Stored>() + p.buckets.len() * 32)
            .sum();
        pages + inner + self.counts.capacity() * 4 + self.hashes.capacity() * 32
    }

    fn count(&self, slot: Slot) -> usize {
        match slot {
            Slot::Upper(i) => usize::try_from(self.counts[i]).unwrap_or(usize::MAX),
            Slot::Page(p) => self.pages[p].entries.len(),
        }
    }

    fn hash(&self, slot: Slot) -> [u8; 32] {
        match slot {
            Slot::Upper(i) => self.hashes[i],
            Slot::Page(p) => self.pages[p].root_hash(),
        }
    }

    /// The entries under upper node `i` (used when it holds at most `BUCKET_MAX`), skipping empty
    /// subtrees by their counts.
    fn gather(&self, i: usize) -> Vec<Entry> {
        fn rec(c: &Commitment, slot: Slot, out: &mut Vec<Entry>) {
            if c.count(slot) == 0 {
                return;
            }
            match slot {
                Slot::Page(p) => out.extend(c.pages[p].entries.iter().map(|s| to_entry(p, s))),
                Slot::Upper(i) => {
                    let (l, r) = children(i);
                    rec(c, l, out);
                    rec(c, r, out);
                }
            }
        }
        let mut out = Vec::with_capacity(BUCKET_MAX);
        let (l, r) = children(i);
        rec(self, l, &mut out);
        rec(self, r, &mut out);
        out
    }

    /// Recomputes upper node `i` from its children. A node holding at most `BUCKET_MAX` coins is
    /// part of a bucket: its hash is computed only by the ancestor that holds more (for its child) or
    /// at the root, so a change under a small subtree rehashes its bucket once, not once per level.
    fn recompute(&mut self, i: usize) {
        let (l, r) = children(i);
        let (cl, cr) = (self.count(l), self.count(r));
        let count = cl + cr;
        self.counts[i] = u32::try_from(count).unwrap_or(u32::MAX);
        if count <= BUCKET_MAX {
            self.hashes[i] = if i == 1 && count > 0 {
                bucket_hash(self.gather(i).into_iter())
            } else {
                [0; 32]
            };
            return;
        }
        for (child, n) in [(l, cl), (r, cr)] {
            if let Slot::Upper(j) = child
                && n > 0
                && n <= BUCKET_MAX
            {
                self.hashes[j] = bucket_hash(self.gather(j).into_iter());
            }
        }
        self.hashes[i] = if cl == 0 {
            self.hash(r)
        } else if cr == 0 {
            self.hash(l)
        } else {
            node_hash(&self.hash(l), &self.hash(r))
        };
    }

    /// Applies a block's net change: removes `spent`, then adds `created`. All-or-nothing: on error
    /// the commitment is unchanged. Cost O(changes · (page size + log n)).
    ///
    /// To undo a block (reorg), call it with the lists swapped.
    ///
    /// # Errors
    /// [`UpdateError::MissingCoin`] if a spent coin is not present with exactly these fields,
    /// [`UpdateError::DuplicateCoin`] if a created coin is already present or given twice.
    pub fn apply_changes<'a, C: CoinView + 'a, D: CoinView + 'a>(
        &mut self,
        created: impl IntoIterator<Item = (&'a OutPoint, &'a C)>,
        spent: impl IntoIterator<Item = (&'a OutPoint, &'a D)>,
    ) -> Result<(), UpdateError> {
        let mut removes: Vec<(Entry, OutPoint)> = spent
            .into_iter()
            .map(|(o, c)| (entry_of(o, c), *o))
            .collect();
        let mut inserts: Vec<(Entry, OutPoint)> = created
            .into_iter()
            .map(|(o, c)| (entry_of(o, c), *o))
            .collect();
        removes.sort_unstable_by_key(|a| a.0);
        inserts.sort_unstable_by_key(|a| a.0);
        // Validate everything before touching anything.
        for w in removes.windows(2) {
            if w[0].0 == w[1].0 {
                return Err(UpdateError::MissingCoin { outpoint: w[1].1 });
            }
        }
        for w in inserts.windows(2) {
            if w[0].0 == w[1].0 {
                return Err(UpdateError::DuplicateCoin { outpoint: w[1].1 });
            }
        }
        for (e, op) in &removes {
            let page = &self.pages[page_of(&e.key8)];
            if page.entries.binary_search(&to_stored(e)).is_err() {
                return Err(UpdateError::MissingCoin { outpoint: *op });
            }
        }
        for (e, op) in &inserts {
            let page = &self.pages[page_of(&e.key8)];
            let present = page.entries.binary_search(&to_stored(e)).is_ok();
            if present && removes.binary_search_by(|r| r.0.cmp(e)).is_err() {
                return Err(UpdateError::DuplicateCoin { outpoint: *op });
            }
        }
        // Group by page.
        let mut work: Vec<PageWork> = Vec::new();
        let (mut ri, mut ii) = (0, 0);
        while ri < removes.len() || ii < inserts.len() {
            let page = match (removes.get(ri), inserts.get(ii)) {
                (Some(r), Some(n)) => page_of(&r.0.key8).min(page_of(&n.0.key8)),
                (Some(r), None) => page_of(&r.0.key8),
                (None, Some(n)) => page_of(&n.0.key8),
                (None, None) => break,
            };
            let mut w = PageWork {
                page,
                remove: Vec::new(),
                insert: Vec::new(),
            };
            while let Some(r) = removes.get(ri).filter(|r| page_of(&r.0.key8) == page) {
                w.remove.push(to_stored(&r.0));
                ri += 1;
            }
            while let Some(n) = inserts.get(ii).filter(|n| page_of(&n.0.key8) == page) {
                w.insert.push(to_stored(&n.0));
                ii += 1;
            }
            work.push(w);
        }
        self.len = self.len - removes.len() + inserts.len();
        self.apply_pages(&work);
        // Upper tree, bottom-up, each touched node once.
        let mut level: Vec<usize> = work.iter().map(|w| (PAGES + w.page) / 2).collect();
        level.dedup();
        while !level.is_empty() {
            for &i in &level {
                self.recompute(i);
            }
            let mut next: Vec<usize> = level.iter().map(|&i| i / 2).filter(|&i| i >= 1).collect();
            next.dedup();
            level = next;
        }
        Ok(())
    }

    /// Applies one block's [`utxo_core::ChangeSet`] (see [`Commitment::apply_changes`]).
    ///
    /// # Errors
    /// As [`Commitment::apply_changes`].
    pub fn apply_change_set(&mut self, changes: &utxo_core::ChangeSet) -> Result<(), UpdateError> {
        self.apply_changes(
            changes.created.iter().map(|(o, c)| (o, c)),
            changes.spent.iter().map(|(o, c)| (o, c)),
        )
    }

    /// Undoes [`Commitment::apply_change_set`] of the same change set (a block disconnected).
    ///
    /// # Errors
    /// As [`Commitment::apply_changes`].
    pub fn revert_change_set(&mut self, changes: &utxo_core::ChangeSet) -> Result<(), UpdateError> {
        self.apply_changes(
            changes.spent.iter().map(|(o, c)| (o, c)),
            changes.created.iter().map(|(o, c)| (o, c)),
        )
    }

    /// Undoes [`Commitment::apply_changes`] of the same lists (removes `created`, restores `spent`).
    ///
    /// # Errors
    /// As [`Commitment::apply_changes`].
    pub fn revert_changes<'a, C: CoinView + 'a, D: CoinView + 'a>(
        &mut self,
        created: impl IntoIterator<Item = (&'a OutPoint, &'a C)>,
        spent: impl IntoIterator<Item = (&'a OutPoint, &'a D)>,
    ) -> Result<(), UpdateError> {
        self.apply_changes(spent, created)
    }

    fn apply_pages(&mut self, work: &[PageWork]) {
        fn apply_one(page: &mut Page, w: &PageWork) {
            let old = &page.entries;
            let mut merged: Vec<Stored> =
                Vec::with_capacity(old.len() + w.insert.len() - w.remove.len());
            let mut ins = w.insert.iter().peekable();
            let mut rem = w.remove.iter().peekable();
            for s in old.iter() {
                while let Some(n) = ins.next_if(|n| *n < s) {
                    merged.push(*n);
                }
                if rem.next_if(|r| *r == s).is_some() {
                    // A removed entry re-inserted in the same batch.
                    if let Some(n) = ins.next_if(|n| *n == s) {
                        merged.push(*n);
                    }
                    continue;
                }
                merged.push(*s);
            }
            merged.extend(ins);
            let old_entries = std::mem::replace(&mut page.entries, merged.into_boxed_slice());
            let old_buckets = std::mem::take(&mut page.buckets);
            page.rehash_reusing(w.page, &old_entries, &old_buckets);
        }
        let run = |pages: &mut [Page], base: usize, work: &[PageWork]| {
            for w in work {
                apply_one(&mut pages[w.page - base], w);
            }
        };
        if self.threads > 1 && work.len() >= PARALLEL_PAGES_MIN {
            let half = work.len() / 2;
            let split_page = work[half].page;
            let (a, b) = self.pages.split_at_mut(split_page);
            let (wa, wb) = work.split_at(half);
            thread::scope(|s| {
                s.spawn(|| run(a, 0, wa));
                run(b, split_page, wb);
            });
        } else {
            run(&mut self.pages, 0, work);
        }
    }

    /// A proof about one outpoint: inclusion of `coin` when given, else exclusion.
    ///
    /// # Errors
    /// As [`Commitment::prove_many`].
    pub fn prove<C: CoinView>(
        &self,
        outpoint: &OutPoint,
        coin: Option<&C>,
    ) -> Result<Proof, ProveError> {
        self.prove_many([(outpoint, coin)])
    }

    /// One multi-proof about many outpoints (inclusion where a coin is given, else exclusion); shared
    /// parts of the tree appear once.
    ///
    /// # Errors
    /// [`ProveError::NotInSet`] for an inclusion of a coin not in the set with these fields,
    /// [`ProveError::PrefixPresent`] for an exclusion that cannot be shown (see its docs),
    /// [`ProveError::ClaimCount`] for 0 or more than [`CLAIMS_MAX`] queries,
    /// [`ProveError::TooLarge`] if the proof would exceed the decoder's bounds.
    pub fn prove_many<'a, C: CoinView + 'a>(
        &self,
        queries: impl IntoIterator<Item = (&'a OutPoint, Option<&'a C>)>,
    ) -> Result<Proof, ProveError> {
        let mut claims = Vec::new();
        let mut targets: Vec<(usize, usize)> = Vec::new();
        let mut claim_bytes = 0usize;
        for (outpoint, coin) in queries {
            if claims.len() >= CLAIMS_MAX {
                return Err(ProveError::ClaimCount {
                    count: claims.len() + 1,
                });
            }
            let op = outpoint_bytes(outpoint);
            match coin {
                Some(coin) => {
                    let e = entry_of(outpoint, coin);
                    let page = page_of(&e.key8);
                    let idx = self.pages[page]
                        .entries
                        .binary_search(&to_stored(&e))
                        .map_err(|_| ProveError::NotInSet {
                            outpoint: *outpoint,
                        })?;
                    targets.push((page, idx));
                    claim_bytes += 56 + coin.script_bytes().len();
                    claims.push(Claim::Present {
                        outpoint: op,
                        coin: leaf_coin(coin),
                    });
                }
                None => {
                    let key8 = key8_of(outpoint);
                    let page = page_of(&key8);
                    let entries = &self.pages[page].entries;
                    let pos = entries.partition_point(|s| s[..6] < key8[2..]);
                    if entries.get(pos).is_some_and(|s| s[..6] == key8[2..]) {
                        return Err(ProveError::PrefixPresent {
                            outpoint: *outpoint,
                        });
                    }
                    if pos > 0 {
                        targets.push((page, pos - 1));
                    } else if let Some(p) =
                        (0..page).rev().find(|&p| !self.pages[p].entries.is_empty())
                    {
                        targets.push((p, self.pages[p].entries.len() - 1));
                    }
                    if pos < entries.len() {
                        targets.push((page, pos));
                    } else if let Some(p) =
                        (page + 1..PAGES).find(|&p| !self.pages[p].entries.is_empty())
                    {
                        targets.push((p, 0));
                    }
                    claim_bytes += 37;
                    claims.push(Claim::Absent { outpoint: op });
                }
            }
        }
        if claims.is_empty() {
            return Err(ProveError::ClaimCount { count: 0 });
        }
        targets.sort_unstable();
        targets.dedup();
        let mut proof = Proof {
            claims,
            nodes: Vec::new(),
            entries: Vec::new(),
        };
        if self.len == 0 {
            proof.nodes.push(ProofNode::Empty);
        } else {
            self.build(Slot::Upper(1), &targets, &mut proof);
        }
        let bytes = 11 + claim_bytes + proof.nodes.len() * 33 + proof.entries.len() * 40;
        if proof.nodes.len() > PROOF_NODES_MAX || bytes > PROOF_SIZE_MAX {
            return Err(ProveError::TooLarge {
                nodes: proof.nodes.len(),
                bytes,
            });
        }
        Ok(proof)
    }

    fn push_bucket(proof: &mut Proof, entries: impl ExactSizeIterator<Item = Entry>) {
        proof.nodes.push(ProofNode::Bucket(
            u8::try_from(entries.len()).unwrap_or(u8::MAX),
        ));
        proof.entries.extend(entries);
    }

    /// Appends the pre-order nodes of `slot`'s subtree, revealing the buckets of `targets`
    /// (global `(page, index)` positions, sorted, all under `slot`).
    fn build(&self, slot: Slot, targets: &[(usize, usize)], proof: &mut Proof) {
        if targets.is_empty() {
            proof.nodes.push(ProofNode::Hash(self.hash(slot)));
            return;
        }
        let count = self.count(slot);
        match slot {
            Slot::Upper(i) => {
                if count <= BUCKET_MAX {
                    let entries = self.gather(i);
                    Self::push_bucket(proof, entries.into_iter());
                    return;
                }
                let (l, r) = children(i);
                if self.count(l) == 0 {
                    return self.build(r, targets, proof);
                }
                if self.count(r) == 0 {
                    return self.build(l, targets, proof);
                }
                let (first, span) = page_range(i);
                let mid = first + span / 2;
                let cut = targets.partition_point(|t| t.0 < mid);
                proof.nodes.push(ProofNode::Inner);
                self.build(l, &targets[..cut], proof);
                self.build(r, &targets[cut..], proof);
            }
            Slot::Page(p) => {
                let page = &self.pages[p];
                let idx: Vec<usize> = targets.iter().map(|t| t.1).collect();
                self.build_page(p, page, 0, &page.entries, &idx, &mut 0, proof);
            }
        }
    }

    /// Page part of [`Commitment::build`]: `slice` starts at index `lo` of the page; `targets` are
    /// page indices inside it.
    #[allow(clippy::too_many_arguments)]
    fn build_page(
        &self,
        p: usize,
        page: &Page,
        lo: usize,
        slice: &[Stored],
        targets: &[usize],
        cursor: &mut usize,
        proof: &mut Proof,
    ) {
        if targets.is_empty() {
            proof
                .nodes
                .push(ProofNode::Hash(page.cached_hash(slice, cursor)));
            return;
        }
        if slice.len() <= BUCKET_MAX {
            *cursor += 1;
            Self::push_bucket(proof, slice.iter().map(|s| to_entry(p, s)));
            return;
        }
        let mid = split_point(slice);
        let cut = targets.partition_point(|&t| t < lo + mid);
        proof.nodes.push(ProofNode::Inner);
        self.build_page(p, page, lo, &slice[..mid], &targets[..cut], cursor, proof);
        self.build_page(
            p,
            page,
            lo + mid,
            &slice[mid..],
            &targets[cut..],
            cursor,
            proof,
        );
    }
}
