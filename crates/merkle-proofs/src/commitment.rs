//! [`Commitment`]: the prover's side. Holds the set's entries in 65,536 key-prefix pages plus a cache
//! of subtree hashes, updates them per block and builds proofs.

use std::thread;

use bitcoin::OutPoint;

use crate::compact::Compact;
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
/// Queries below which [`Commitment::prove_each`] stays on the calling thread.
pub const PARALLEL_PROOFS_MIN: usize = 1_024;
/// Queries whose memory [`Commitment::prove_each`] fetches together before building their proofs:
/// enough to keep several cache misses in flight, few enough that the group's lines stay cached.
pub const PROOF_GROUP: usize = 8;
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

/// Orders two stored entries as their bytes do, with word loads instead of a `memcmp` call: binary
/// searches in a page are the hot loop of proving and of update validation.
#[inline]
fn cmp_stored(a: &Stored, b: &Stored) -> std::cmp::Ordering {
    #[inline]
    fn word(s: &Stored, at: usize) -> u64 {
        let mut w = [0u8; 8];
        w.copy_from_slice(&s[at..at + 8]);
        u64::from_be_bytes(w)
    }
    // Bytes 0..32 as four words, then the last six bytes (30..38 re-reads two already equal ones).
    for at in [0, 8, 16, 24, 30] {
        match word(a, at).cmp(&word(b, at)) {
            std::cmp::Ordering::Equal => {}
            other => return other,
        }
    }
    std::cmp::Ordering::Equal
}

/// The 48-bit key suffix (bytes 2..8 of the tree key) a stored entry starts with.
#[inline]
fn suffix48(s: &Stored) -> u64 {
    let mut w = [0u8; 8];
    w[2..].copy_from_slice(&s[..6]);
    u64::from_be_bytes(w)
}

/// Position of `needle` in a sorted page (as `slice::binary_search`).
///
/// Tree keys are blake3 outputs, uniform over a page's 48-bit key range, so the needle's position
/// is predicted from its key (interpolation) and then bracketed by doubling steps around the guess:
/// a handful of neighbouring cache lines instead of the ~log2(n) scattered misses of a plain binary
/// search, which dominated proving at 10M coins. Any input order is still searched correctly; only
/// the speed relies on uniform keys.
#[inline]
fn search(entries: &[Stored], needle: &Stored) -> Result<usize, usize> {
    let n = entries.len();
    if n < 16 {
        return entries.binary_search_by(|s| cmp_stored(s, needle));
    }
    let guess = guess(suffix48(needle), n);
    // Bracket [lo, hi) with entries[lo - 1] < needle <= entries[hi] (as far as known).
    let (mut lo, mut hi);
    if cmp_stored(&entries[guess], needle).is_lt() {
        let mut step = 1;
        lo = guess + 1;
        loop {
            let probe = guess + step;
            if probe >= n {
                hi = n;
                break;
            }
            if cmp_stored(&entries[probe], needle).is_lt() {
                lo = probe + 1;
                step *= 2;
            } else {
                hi = probe + 1;
                break;
            }
        }
    } else {
        let mut step = 1;
        hi = guess + 1;
        loop {
            if step > guess {
                lo = 0;
                break;
            }
            let probe = guess - step;
            if cmp_stored(&entries[probe], needle).is_lt() {
                lo = probe + 1;
                break;
            }
            hi = probe + 1;
            step *= 2;
        }
    }
    match entries[lo..hi].binary_search_by(|s| cmp_stored(s, needle)) {
        Ok(i) => Ok(lo + i),
        Err(i) => Err(lo + i),
    }
}

/// What a query looks up: the entry of a coin claimed present, or the key prefix of an outpoint
/// claimed absent.
#[derive(Clone, Copy)]
pub(crate) enum Lookup {
    Present(Entry),
    Absent([u8; 8]),
}

impl Lookup {
    pub(crate) fn of<C: CoinView + ?Sized>(outpoint: &OutPoint, coin: Option<&C>) -> Lookup {
        match coin {
            Some(coin) => Lookup::Present(entry_of(outpoint, coin)),
            None => Lookup::Absent(key8_of(outpoint)),
        }
    }

    fn key8(&self) -> &[u8; 8] {
        match self {
            Lookup::Present(e) => &e.key8,
            Lookup::Absent(k) => k,
        }
    }

    fn page(&self) -> usize {
        page_of(self.key8())
    }

    fn suffix48(&self) -> u64 {
        let k = self.key8();
        u64::from_be_bytes([0, 0, k[2], k[3], k[4], k[5], k[6], k[7]])
    }
}

/// Where a 48-bit key suffix is expected in a page of `n > 0` uniformly keyed entries.
#[inline]
fn guess(suffix48: u64, n: usize) -> usize {
    usize::try_from((u128::from(suffix48) * n as u128) >> 48)
        .unwrap_or(n - 1)
        .min(n - 1)
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

fn stored_bucket_hash(page: usize, slice: &[Stored]) -> [u8; 32] {
    bucket_hash(slice.iter().map(|s| to_entry(page, s)))
}

/// One bucket of a page's tree: its hash, where its entries start in the page, and the composite bit
/// at which the tree splits it from the next bucket (0 after the last one). Byte arrays keep it at
/// 38 bytes with no padding: memory per coin is a bar.
#[derive(Clone, Copy, Default)]
struct Bucket {
    hash: [u8; 32],
    start: [u8; 4],
    split: [u8; 2],
}

impl Bucket {
    fn start(&self) -> usize {
        usize::try_from(u32::from_le_bytes(self.start)).unwrap_or(usize::MAX)
    }
    fn split(&self) -> u16 {
        u16::from_le_bytes(self.split)
    }
}

/// One page: its sorted entries and its tree's buckets, left to right. The buckets and their split
/// bits are the page's whole tree shape, so proving never re-derives it from the entries.
#[derive(Clone, Default)]
struct Page {
    entries: Box<[Stored]>,
    buckets: Box<[Bucket]>,
}

impl Page {
    /// Recomputes `buckets` from `entries`.
    fn rehash(&mut self, page: usize) {
        self.rehash_reusing(page, &[], &[], &[]);
    }

    /// Recomputes `buckets` from `entries`, reusing the hash of any bucket whose entries are
    /// unchanged from the previous version of the page (`old_entries`, `old_buckets`): a batch then
    /// hashes only the buckets it touched.
    ///
    /// `changed` lists the entries the batch removed or inserted (each list sorted): a new bucket
    /// whose key range holds none of them, starting where an old bucket of the same length
    /// started, has exactly that old bucket's entries, so its hash is reused without comparing
    /// them.
    fn rehash_reusing(
        &mut self,
        page: usize,
        old_entries: &[Stored],
        old_buckets: &[Bucket],
        changed: &[&[Stored]],
    ) {
        /// `(start, len, split bit after it)` of each bucket of `slice`, left to right.
        fn layout(slice: &[Stored], lo: usize, out: &mut Vec<(usize, usize, u16)>) {
            if slice.len() <= BUCKET_MAX {
                out.push((lo, slice.len(), 0));
                return;
            }
            let d = first_diff(&slice[0], &slice[slice.len() - 1]);
            let mid = slice.partition_point(|s| !bit(s, d));
            layout(&slice[..mid], lo, out);
            if let Some(last) = out.last_mut() {
                last.2 = u16::try_from(d).unwrap_or(u16::MAX);
            }
            layout(&slice[mid..], lo + mid, out);
        }
        let mut new = Vec::new();
        if !self.entries.is_empty() {
            layout(&self.entries, 0, &mut new);
        }
        let old_len = |k: usize| {
            old_buckets
                .get(k + 1)
                .map_or(old_entries.len(), Bucket::start)
                - old_buckets[k].start()
        };
        let untouched = |first: &Stored, last: &Stored| {
            changed.iter().all(|list| {
                let i = list.partition_point(|c| cmp_stored(c, first).is_lt());
                list.get(i).is_none_or(|c| cmp_stored(c, last).is_gt())
            })
        };
        let mut out = Vec::with_capacity(new.len());
        for (start, len, split) in new {
            let slice = &self.entries[start..start + len];
            let reused = old_buckets
                .binary_search_by(|b| cmp_stored(&old_entries[b.start()], &slice[0]))
                .ok()
                .filter(|&k| old_len(k) == len && untouched(&slice[0], &slice[len - 1]))
                .map(|k| old_buckets[k].hash);
            out.push(Bucket {
                hash: reused.unwrap_or_else(|| stored_bucket_hash(page, slice)),
                start: u32::try_from(start).unwrap_or(u32::MAX).to_le_bytes(),
                split: split.to_le_bytes(),
            });
        }
        self.buckets = out.into_boxed_slice();
    }

    /// Entry range of bucket `k`.
    fn bucket_range(&self, k: usize) -> std::ops::Range<usize> {
        let end = self
            .buckets
            .get(k + 1)
            .map_or(self.entries.len(), Bucket::start);
        self.buckets[k].start()..end
    }

    /// Where the subtree over buckets `lo..hi` (at least two) splits: the last bucket of its left
    /// half. The split bit of a subtree's root is lower than every split inside it.
    fn split_of(&self, lo: usize, hi: usize) -> usize {
        (lo..hi - 1)
            .min_by_key(|&k| self.buckets[k].split())
            .unwrap_or(lo)
    }

    /// Hash of the subtree over buckets `lo..hi` (a subtree of the page's tree).
    fn range_hash(&self, lo: usize, hi: usize) -> [u8; 32] {
        if hi - lo == 1 {
            return self.buckets[lo].hash;
        }
        let k = self.split_of(lo, hi);
        node_hash(&self.range_hash(lo, k + 1), &self.range_hash(k + 1, hi))
    }

    /// Hash of the page's tree (meaningless for an empty page).
    /// The page's root as the upper tree keeps it.
    fn root_node(&self) -> Node {
        Node {
            hash: self.root_hash(),
            count: u32::try_from(self.entries.len()).unwrap_or(u32::MAX),
        }
    }

    fn root_hash(&self) -> [u8; 32] {
        if self.buckets.is_empty() {
            return [0; 32];
        }
        self.range_hash(0, self.buckets.len())
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
    /// The same coin was given twice to a [`crate::Builder`], which keeps no outpoints: the first
    /// 8 bytes of its tree key.
    #[error("a coin with tree key prefix {key_prefix:02x?} given twice")]
    DuplicateEntry {
        /// First 8 bytes of the coin's tree key.
        key_prefix: [u8; 8],
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

/// One update's coins as entries, sorted, checked for duplicates within the batch.
pub(crate) struct Batch {
    pub(crate) removes: Vec<(Entry, OutPoint)>,
    pub(crate) inserts: Vec<(Entry, OutPoint)>,
}

impl Batch {
    /// Hashes and sorts a batch; a coin removed or created twice is an error.
    pub(crate) fn new<'a, C: CoinView + 'a, D: CoinView + 'a>(
        created: impl IntoIterator<Item = (&'a OutPoint, &'a C)>,
        spent: impl IntoIterator<Item = (&'a OutPoint, &'a D)>,
    ) -> Result<Batch, UpdateError> {
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
        Ok(Batch { removes, inserts })
    }

    /// Checks the batch against a set (given by its membership test): every removed coin is
    /// present, every created coin absent (or removed in the same batch).
    pub(crate) fn check(&self, contains: impl Fn(&Entry) -> bool) -> Result<(), UpdateError> {
        for (e, op) in &self.removes {
            if !contains(e) {
                return Err(UpdateError::MissingCoin { outpoint: *op });
            }
        }
        for (e, op) in &self.inserts {
            if contains(e) && self.removes.binary_search_by(|r| r.0.cmp(e)).is_err() {
                return Err(UpdateError::DuplicateCoin { outpoint: *op });
            }
        }
        Ok(())
    }
}

/// What [`fill_proof`] needs of a layout: where entries sit, and the proof tree over positions.
/// Positions are `(page, index)` pairs, ordered as the entries are.
pub(crate) trait Prover {
    /// Coins in the set.
    fn len(&self) -> usize;
    /// Position of an entry in the set.
    fn position(&self, e: &Entry) -> Option<(usize, usize)>;
    /// Positions of the entries just below and just above `key8`; `None` when an entry has that key
    /// prefix.
    fn neighbours(&self, key8: &[u8; 8]) -> Option<[Option<(usize, usize)>; 2]>;
    /// Appends the proof tree revealing the buckets of `targets` (sorted, distinct, non-empty) of a
    /// non-empty set.
    fn build_tree(&self, targets: &[(usize, usize)], proof: &mut Proof);
}

/// Empties `proof` for reuse and hands back the largest buffer of a script it claimed, to be filled
/// again: a server proving one coin after another then allocates nothing per proof.
fn reset(proof: &mut Proof) -> Vec<u8> {
    let mut spare = Vec::new();
    for claim in proof.claims.drain(..) {
        if let Claim::Present { coin, .. } = claim
            && coin.script.capacity() > spare.capacity()
        {
            spare = coin.script;
        }
    }
    proof.nodes.clear();
    proof.entries.clear();
    spare
}

/// Fills `proof` (emptied first, its buffers reused) with the claims of `queries` and the tree
/// that backs them. `targets` is scratch space (emptied first).
pub(crate) fn fill_proof<'a, P: Prover, C: CoinView + 'a>(
    prover: &P,
    queries: impl IntoIterator<Item = (&'a OutPoint, Option<&'a C>, Lookup)>,
    proof: &mut Proof,
    targets: &mut Vec<(usize, usize)>,
) -> Result<(), ProveError> {
    let mut spare = Some(reset(proof));
    let queries = queries.into_iter();
    let hint = queries.size_hint().0.clamp(1, CLAIMS_MAX);
    let claims = &mut proof.claims;
    claims.reserve(hint);
    targets.clear();
    targets.reserve(2 * hint);
    let mut claim_bytes = 0usize;
    for (outpoint, coin, lookup) in queries {
        if claims.len() >= CLAIMS_MAX {
            return Err(ProveError::ClaimCount {
                count: claims.len() + 1,
            });
        }
        let op = outpoint_bytes(outpoint);
        match (coin, lookup) {
            (Some(coin), Lookup::Present(e)) => {
                let target = prover.position(&e).ok_or(ProveError::NotInSet {
                    outpoint: *outpoint,
                })?;
                targets.push(target);
                claim_bytes += 56 + coin.script_bytes().len();
                let mut script = spare.take().unwrap_or_default();
                script.clear();
                script.extend_from_slice(coin.script_bytes());
                claims.push(Claim::Present {
                    outpoint: op,
                    coin: LeafCoin {
                        amount: coin.amount_sat(),
                        height: coin.height(),
                        is_coinbase: coin.is_coinbase(),
                        script,
                    },
                });
            }
            (_, Lookup::Absent(key8)) | (None, Lookup::Present(Entry { key8, .. })) => {
                let neighbours = prover.neighbours(&key8).ok_or(ProveError::PrefixPresent {
                    outpoint: *outpoint,
                })?;
                targets.extend(neighbours.into_iter().flatten());
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
    // A single proof at 10M coins has ~25 nodes and one bucket.
    proof.nodes.reserve(32 * targets.len().min(64));
    proof.entries.reserve(BUCKET_MAX * targets.len().min(64));
    if prover.len() == 0 {
        proof.nodes.push(ProofNode::Empty);
    } else {
        prover.build_tree(targets, proof);
    }
    let bytes = 11 + claim_bytes + proof.nodes.len() * 33 + proof.entries.len() * 40;
    if proof.nodes.len() > PROOF_NODES_MAX || bytes > PROOF_SIZE_MAX {
        return Err(ProveError::TooLarge {
            nodes: proof.nodes.len(),
            bytes,
        });
    }
    Ok(())
}

impl Prover for Paged {
    fn len(&self) -> usize {
        self.len
    }

    fn position(&self, e: &Entry) -> Option<(usize, usize)> {
        let page = page_of(&e.key8);
        search(&self.pages[page].entries, &to_stored(e))
            .ok()
            .map(|idx| (page, idx))
    }

    fn neighbours(&self, key8: &[u8; 8]) -> Option<[Option<(usize, usize)>; 2]> {
        let page = page_of(key8);
        let entries = &self.pages[page].entries;
        let pos = entries.partition_point(|s| s[..6] < key8[2..]);
        if entries.get(pos).is_some_and(|s| s[..6] == key8[2..]) {
            return None;
        }
        let below = if pos > 0 {
            Some((page, pos - 1))
        } else {
            (0..page)
                .rev()
                .find(|&p| !self.pages[p].entries.is_empty())
                .map(|p| (p, self.pages[p].entries.len() - 1))
        };
        let above = if pos < entries.len() {
            Some((page, pos))
        } else {
            (page + 1..PAGES)
                .find(|&p| !self.pages[p].entries.is_empty())
                .map(|p| (p, 0))
        };
        Some([below, above])
    }

    fn build_tree(&self, targets: &[(usize, usize)], proof: &mut Proof) {
        if let [target] = targets[..] {
            self.build_single(target, proof);
        } else {
            self.build(Slot::Upper(1), targets, proof);
        }
    }
}

/// A node of the upper tree, or a page's root: its hash (meaningless where the count is 0) and the
/// coins under it, side by side so that a proof's walk reads one cache line per level.
#[derive(Clone, Copy, Default)]
struct Node {
    hash: [u8; 32],
    count: u32,
}

/// The paged layout (see the crate docs): 65,536 key-prefix pages under a cached upper tree.
#[derive(Clone)]
pub(crate) struct Paged {
    pages: Vec<Page>,
    /// Upper node `i` (`1..PAGES`, index 0 unused), then at `PAGES + p` page `p`'s root.
    nodes: Vec<Node>,
    len: usize,
    threads: usize,
}

/// One page's share of a batch: the page number, entries to remove and entries to add (sorted).
struct PageWork {
    page: usize,
    remove: Vec<Stored>,
    insert: Vec<Stored>,
}

impl Paged {
    /// The commitment to the empty set.
    pub fn new() -> Paged {
        Paged {
            pages: vec![Page::default(); PAGES],
            nodes: vec![Node::default(); 2 * PAGES],
            len: 0,
            threads: 2,
        }
    }

    /// Sets how many threads updates and rebuilds may use (default 2; 1 keeps all work on the
    /// calling thread). Work is split with `std::thread::scope` only above measured thresholds.
    pub fn set_threads(&mut self, threads: usize) {
        self.threads = threads.max(1);
    }

    /// The sorted entries of a set (checked for duplicates). The input order does not matter (the result depends only on
    /// the set), so `UtxoSet::sorted_coins()` or a snapshot's order both work.
    ///
    /// # Errors
    /// [`BuildError::DuplicateCoin`] if a coin appears twice.
    pub fn sorted_entries<'a, C: CoinView + Sync + 'a>(
        coins: impl IntoIterator<Item = (&'a OutPoint, &'a C)>,
        threads: usize,
    ) -> Result<Vec<Entry>, BuildError> {
        let coins: Vec<(&OutPoint, &C)> = coins.into_iter().collect();
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
        if coins.len() >= PARALLEL_BUILD_MIN && threads > 1 {
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
        Ok(entries.into_iter().map(|(e, _)| e).collect())
    }

    /// The paged commitment of sorted, distinct entries.
    pub fn from_sorted_entries(entries: &[Entry], threads: usize) -> Paged {
        let mut c = Paged::new();
        c.threads = threads;
        // Distribute into pages (entries are sorted, so each page is a contiguous run).
        let mut start = 0;
        while start < entries.len() {
            let page = page_of(&entries[start].key8);
            let end = start + entries[start..].partition_point(|e| page_of(&e.key8) == page);
            c.pages[page].entries = entries[start..end].iter().map(to_stored).collect();
            start = end;
        }
        c.len = entries.len();
        let rehash_all = |pages: &mut [Page], roots: &mut [Node], base: usize| {
            for (k, (p, root)) in pages.iter_mut().zip(roots).enumerate() {
                if !p.entries.is_empty() {
                    p.rehash(base + k);
                    *root = p.root_node();
                }
            }
        };
        let roots = &mut c.nodes[PAGES..];
        if c.len >= PARALLEL_BUILD_MIN && threads > 1 {
            let (a, b) = c.pages.split_at_mut(PAGES / 2);
            let (ra, rb) = roots.split_at_mut(PAGES / 2);
            thread::scope(|s| {
                s.spawn(|| rehash_all(a, ra, 0));
                rehash_all(b, rb, PAGES / 2);
            });
        } else {
            rehash_all(&mut c.pages, roots, 0);
        }
        for i in (1..PAGES).rev() {
            c.recompute(i);
        }
        c
    }

    /// Number of coins committed to.
    pub fn len(&self) -> usize {
        self.len
    }

    /// The root: 32 bytes that depend only on the set.
    pub fn root(&self) -> Root {
        if self.len == 0 {
            Root::empty()
        } else {
            Root(self.nodes[1].hash)
        }
    }

    /// Bytes of heap the commitment holds, counted from its buffers' capacities (allocator
    /// overhead not included; the benchmarks also measure resident memory).
    pub fn heap_bytes(&self) -> usize {
        let pages = self.pages.capacity() * std::mem::size_of::<Page>();
        let inner: usize = self
            .pages
            .iter()
            .map(|p| {
                p.entries.len() * std::mem::size_of::<Stored>()
                    + p.buckets.len() * std::mem::size_of::<Bucket>()
            })
            .sum();
        pages + inner + self.nodes.capacity() * std::mem::size_of::<Node>()
    }

    fn count(&self, slot: Slot) -> usize {
        match slot {
            Slot::Upper(i) => usize::try_from(self.nodes[i].count).unwrap_or(usize::MAX),
            Slot::Page(p) => usize::try_from(self.nodes[PAGES + p].count).unwrap_or(usize::MAX),
        }
    }

    fn hash(&self, slot: Slot) -> [u8; 32] {
        match slot {
            Slot::Upper(i) => self.nodes[i].hash,
            Slot::Page(p) => self.nodes[PAGES + p].hash,
        }
    }

    /// The entries under upper node `i` (used when it holds at most `BUCKET_MAX`), skipping empty
    /// subtrees by their counts.
    fn gather(&self, i: usize) -> Vec<Entry> {
        fn rec(c: &Paged, slot: Slot, out: &mut Vec<Entry>) {
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
        self.nodes[i].count = u32::try_from(count).unwrap_or(u32::MAX);
        if count <= BUCKET_MAX {
            self.nodes[i].hash = if i == 1 && count > 0 {
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
                self.nodes[j].hash = bucket_hash(self.gather(j).into_iter());
            }
        }
        self.nodes[i].hash = if cl == 0 {
            self.hash(r)
        } else if cr == 0 {
            self.hash(l)
        } else {
            node_hash(&self.hash(l), &self.hash(r))
        };
    }

    /// Whether the set holds exactly this entry.
    pub fn contains(&self, e: &Entry) -> bool {
        search(&self.pages[page_of(&e.key8)].entries, &to_stored(e)).is_ok()
    }

    /// Applies a batch already checked against this set ([`Batch::check`]).
    pub fn apply_batch(&mut self, batch: &Batch) {
        let (removes, inserts) = (&batch.removes, &batch.inserts);
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
        self.len = self.len + inserts.len() - removes.len();
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
    }

    fn apply_pages(&mut self, work: &[PageWork]) {
        fn apply_one(page: &mut Page, root: &mut Node, w: &PageWork) {
            let old = &page.entries;
            let mut merged: Vec<Stored> =
                Vec::with_capacity(old.len() + w.insert.len() - w.remove.len());
            // Walk the changes (a few per page), not the page: each is located by a search and
            // the untouched runs between them are copied whole.
            let mut at = 0;
            let mut ins = w.insert.iter().peekable();
            let mut rem = w.remove.iter().peekable();
            loop {
                // A removal goes first, also before an equal insertion: an entry removed and
                // re-inserted by one batch is dropped here and pushed again next.
                let removal_first = match (rem.peek(), ins.peek()) {
                    (None, None) => break,
                    (Some(r), Some(n)) => cmp_stored(r, n).is_le(),
                    (Some(_), None) => true,
                    (None, Some(_)) => false,
                };
                if removal_first {
                    if let Some(r) = rem.next() {
                        let (pos, found) = match search(old, r) {
                            Ok(pos) => (pos.max(at), true),
                            Err(pos) => (pos.max(at), false),
                        };
                        merged.extend_from_slice(&old[at..pos]);
                        at = if found { pos + 1 } else { pos };
                    }
                } else if let Some(n) = ins.next() {
                    let pos = search(old, n).unwrap_or_else(|pos| pos).max(at);
                    merged.extend_from_slice(&old[at..pos]);
                    merged.push(*n);
                    at = pos;
                }
            }
            merged.extend_from_slice(&old[at..]);
            let old_entries = std::mem::replace(&mut page.entries, merged.into_boxed_slice());
            let old_buckets = std::mem::take(&mut page.buckets);
            page.rehash_reusing(w.page, &old_entries, &old_buckets, &[&w.remove, &w.insert]);
            *root = page.root_node();
        }
        let run = |pages: &mut [Page], roots: &mut [Node], base: usize, work: &[PageWork]| {
            for w in work {
                apply_one(&mut pages[w.page - base], &mut roots[w.page - base], w);
            }
        };
        let roots = &mut self.nodes[PAGES..];
        if self.threads > 1 && work.len() >= PARALLEL_PAGES_MIN {
            let half = work.len() / 2;
            let split_page = work[half].page;
            let (a, b) = self.pages.split_at_mut(split_page);
            let (ra, rb) = roots.split_at_mut(split_page);
            let (wa, wb) = work.split_at(half);
            thread::scope(|s| {
                s.spawn(|| run(a, ra, 0, wa));
                run(b, rb, split_page, wb);
            });
        } else {
            run(&mut self.pages, roots, 0, work);
        }
    }

    /// See [`Commitment::prove_each`].
    pub fn prove_each<C, F>(&self, queries: &[(OutPoint, Option<C>)], sink: F)
    where
        C: CoinView + Sync,
        F: Fn(usize, Result<&Proof, ProveError>) + Sync,
    {
        let threads = if queries.len() >= PARALLEL_PROOFS_MIN {
            self.threads
        } else {
            1
        };
        // Phase 1: hash every query (its tree key and coin body), on all threads.
        let mut lookups: Vec<(Lookup, usize)> = vec![(Lookup::Absent([0; 8]), 0); queries.len()];
        let hash = |out: &mut [(Lookup, usize)], base: usize| {
            for (k, slot) in out.iter_mut().enumerate() {
                let (outpoint, coin) = &queries[base + k];
                *slot = (Lookup::of(outpoint, coin.as_ref()), base + k);
            }
        };
        let per = queries.len().div_ceil(threads).max(1);
        if threads > 1 {
            thread::scope(|s| {
                let mut chunks = lookups.chunks_mut(per).enumerate();
                let first = chunks.next();
                for (t, chunk) in chunks {
                    s.spawn(move || hash(chunk, t * per));
                }
                if let Some((_, chunk)) = first {
                    hash(chunk, 0);
                }
            });
        } else {
            hash(&mut lookups, 0);
        }
        // Phase 2: thread t proves the queries of the t-th key range, in key order, so each
        // thread walks its own part of the tree forwards and neighbouring proofs share nodes.
        let mut parts: Vec<Vec<(Lookup, usize)>> = vec![Vec::with_capacity(per); threads];
        for item in lookups {
            let part = usize::from(item.0.key8()[0]) * threads / 256;
            parts[part].push(item);
        }
        let run = |part: Vec<(Lookup, usize)>| {
            let part = by_page(part);
            let mut proof = Proof {
                claims: Vec::new(),
                nodes: Vec::new(),
                entries: Vec::new(),
            };
            let mut targets = Vec::new();
            let mut group_lookups = [Lookup::Absent([0; 8]); PROOF_GROUP];
            let mut warmth = 0u64;
            for group in part.chunks(PROOF_GROUP) {
                for (slot, &(lookup, i)) in group_lookups.iter_mut().zip(group) {
                    *slot = lookup;
                    // The query itself (read again for its claim), now in key order.
                    let (outpoint, coin) = &queries[i];
                    warmth ^= u64::from(outpoint.vout);
                    if let Some(coin) = coin {
                        warmth ^= u64::from(coin.script_bytes().first().copied().unwrap_or(0));
                    }
                }
                warmth ^= self.warm(&group_lookups[..group.len()]);
                for &(lookup, i) in group {
                    let (outpoint, coin) = &queries[i];
                    let query = (outpoint, coin.as_ref(), lookup);
                    let result = fill_proof(self, [query], &mut proof, &mut targets);
                    sink(i, result.map(|()| &proof));
                }
            }
            std::hint::black_box(warmth);
        };
        if threads > 1 {
            thread::scope(|s| {
                let mut parts = parts.into_iter();
                let first = parts.next();
                for part in parts {
                    s.spawn(|| run(part));
                }
                if let Some(part) = first {
                    run(part);
                }
            });
        } else {
            for part in parts {
                run(part);
            }
        }
    }

    /// Reads, for each lookup of a group, the memory its proof will need (page header, the entry
    /// where the key should sit, the first bucket, the bucket around that entry, the low sibling
    /// hashes of the upper tree), so the misses of the whole group are in flight together. Returns a
    /// value folded from the loads so they are not optimised away.
    fn warm(&self, lookups: &[Lookup]) -> u64 {
        // Short loops of independent loads, one kind at a time, so that the misses of the whole
        // group are in flight together instead of queuing behind one long loop body.
        let mut acc = 0u64;
        // The page records.
        for l in lookups {
            acc ^= self.pages[l.page()].entries.len() as u64;
        }
        // The upper tree's siblings (their addresses need no load). The top levels (below node
        // 512: 18 KiB of nodes) stay cached anyway.
        for l in lookups {
            let mut node = PAGES + l.page();
            while node >= 512 {
                acc ^= u64::from(self.nodes[node ^ 1].count);
                node >>= 1;
            }
        }
        // The entry where each key should sit, and the page's bucket records (its tree shape).
        let mut spots = [(0usize, 0usize); PROOF_GROUP];
        for (l, spot) in lookups.iter().zip(&mut spots) {
            let page = &self.pages[l.page()];
            let n = page.entries.len();
            if n > 0 {
                let g = guess(l.suffix48(), n);
                *spot = (l.page(), g);
                acc ^= u64::from(page.entries[g][0]);
            }
            for b in page.buckets.iter().step_by(2) {
                acc ^= u64::from(b.split[0]);
            }
        }
        // The bucket around that entry: it is copied into the proof.
        for &(p, g) in &spots[..lookups.len()] {
            let page = &self.pages[p];
            if page.buckets.is_empty() {
                continue;
            }
            let k = page.buckets.partition_point(|b| b.start() <= g).max(1) - 1;
            for i in page.bucket_range(k) {
                acc ^= u64::from(page.entries[i][0]);
            }
        }
        acc
    }

    fn push_bucket(proof: &mut Proof, entries: impl ExactSizeIterator<Item = Entry>) {
        proof.nodes.push(ProofNode::Bucket(
            u8::try_from(entries.len()).unwrap_or(u8::MAX),
        ));
        proof.entries.extend(entries);
    }

    /// [`Commitment::build`] from the root for one target, as a loop: the usual case (an inclusion
    /// proof) walks 16 upper levels, where recursion and target splitting cost as much as the work.
    fn build_single(&self, target: (usize, usize), proof: &mut Proof) {
        let (page, _) = target;
        // Right siblings of the path, appended after it (pre-order), deepest first.
        let mut pending = [[0u8; 32]; PAGE_BITS];
        let mut held = 0;
        let mut i = 1;
        let mut depth = 0;
        loop {
            if self.count(Slot::Upper(i)) <= BUCKET_MAX {
                let entries = self.gather(i);
                Self::push_bucket(proof, entries.into_iter());
                break;
            }
            let (l, r) = children(i);
            let go_right = (page >> (PAGE_BITS - 1 - depth)) & 1 == 1;
            depth += 1;
            if self.count(l) != 0 && self.count(r) != 0 {
                proof.nodes.push(ProofNode::Inner);
                if go_right {
                    proof.nodes.push(ProofNode::Hash(self.hash(l)));
                } else {
                    pending[held] = self.hash(r);
                    held += 1;
                }
            }
            match if go_right { r } else { l } {
                Slot::Upper(j) => i = j,
                Slot::Page(p) => {
                    let page = &self.pages[p];
                    self.build_page(p, page, 0, page.buckets.len(), &[target], proof);
                    break;
                }
            }
        }
        for h in pending[..held].iter().rev() {
            proof.nodes.push(ProofNode::Hash(*h));
        }
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
                self.build_page(p, page, 0, page.buckets.len(), targets, proof);
            }
        }
    }

    /// Page part of [`Commitment::build`]: the subtree over buckets `lo..hi` of page `p`;
    /// `targets` are the `(page, index)` positions inside it, sorted.
    fn build_page(
        &self,
        p: usize,
        page: &Page,
        lo: usize,
        hi: usize,
        targets: &[(usize, usize)],
        proof: &mut Proof,
    ) {
        if targets.is_empty() {
            proof.nodes.push(ProofNode::Hash(page.range_hash(lo, hi)));
            return;
        }
        if hi - lo == 1 {
            let range = page.bucket_range(lo);
            Self::push_bucket(proof, page.entries[range].iter().map(|s| to_entry(p, s)));
            return;
        }
        let k = page.split_of(lo, hi);
        let right_start = page.buckets[k + 1].start();
        let cut = targets.partition_point(|&(_, t)| t < right_start);
        proof.nodes.push(ProofNode::Inner);
        self.build_page(p, page, lo, k + 1, &targets[..cut], proof);
        self.build_page(p, page, k + 1, hi, &targets[cut..], proof);
    }
}

/// `items` in page order (a counting sort on the page number: one pass to count, one to place,
/// where a comparison sort of these 56-byte items took ~5% of proving).
fn by_page(items: Vec<(Lookup, usize)>) -> Vec<(Lookup, usize)> {
    if items.len() < 256 {
        let mut items = items;
        items.sort_unstable_by_key(|(lookup, _)| lookup.page());
        return items;
    }
    let mut next = vec![0usize; PAGES + 1];
    for (lookup, _) in &items {
        next[lookup.page() + 1] += 1;
    }
    for p in 0..PAGES {
        next[p + 1] += next[p];
    }
    let mut out = vec![(Lookup::Absent([0; 8]), 0); items.len()];
    for item in items {
        let slot = &mut next[item.0.page()];
        out[*slot] = item;
        *slot += 1;
    }
    out
}

/// Coins up to which [`Layout::Auto`] keeps a commitment compact: there an update rehashes the
/// whole set (≤ 4,096 × 40 bytes, tens of microseconds) and memory is 40 bytes per coin, against
/// the paged layout's fixed ~8.5 MB.
pub const COMPACT_MAX: usize = 4_096;

/// How a [`Commitment`] lays out its entries in memory. Roots and proofs do not depend on it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Layout {
    /// Compact up to [`COMPACT_MAX`] coins, paged from the update (or build) that goes beyond.
    #[default]
    Auto,
    /// Always compact: one sorted vector of entries, O(n) hashing per update. For small sets.
    Compact,
    /// Always paged: a fixed ~8.5 MB of pages and upper tree, O(changes · log n) updates, fast
    /// proofs. For the UTXO set.
    Paged,
}

#[derive(Clone)]
enum Inner {
    Compact(Compact),
    Paged(Box<Paged>),
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
    inner: Inner,
    layout: Layout,
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
            .field("len", &self.len())
            .field("paged", &self.is_paged())
            .field("root", &self.root())
            .finish()
    }
}

impl Commitment {
    /// The commitment to the empty set ([`Layout::Auto`]).
    pub fn new() -> Commitment {
        Commitment::with_layout(Layout::Auto)
    }

    /// The commitment to the empty set, laid out as `layout`.
    pub fn with_layout(layout: Layout) -> Commitment {
        Commitment::from_sorted_entries(Vec::new(), layout, 2)
    }

    /// The commitment of sorted, distinct entries (see [`crate::Builder`]).
    pub(crate) fn from_entries(entries: Vec<Entry>, layout: Layout) -> Commitment {
        Commitment::from_sorted_entries(entries, layout, 2)
    }

    fn from_sorted_entries(entries: Vec<Entry>, layout: Layout, threads: usize) -> Commitment {
        let paged = match layout {
            Layout::Paged => true,
            Layout::Compact => false,
            Layout::Auto => entries.len() > COMPACT_MAX,
        };
        let inner = if paged {
            Inner::Paged(Box::new(Paged::from_sorted_entries(&entries, threads)))
        } else {
            Inner::Compact(Compact::from_sorted_entries(entries))
        };
        Commitment {
            inner,
            layout,
            threads,
        }
    }

    /// The layout asked for.
    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// Whether the entries are paged now (always for [`Layout::Paged`], above [`COMPACT_MAX`] coins
    /// for [`Layout::Auto`]).
    pub fn is_paged(&self) -> bool {
        matches!(self.inner, Inner::Paged(_))
    }

    /// Sets how many threads updates, rebuilds and [`Commitment::prove_each`] may use (default 2; 1
    /// keeps all work on the calling thread). Work is split with `std::thread::scope` only above
    /// measured thresholds.
    pub fn set_threads(&mut self, threads: usize) {
        self.threads = threads.max(1);
        if let Inner::Paged(p) = &mut self.inner {
            p.set_threads(self.threads);
        }
    }

    /// Builds the commitment of a set ([`Layout::Auto`]). The input order does not matter (the
    /// result depends only on the set), so `UtxoSet::sorted_coins()` or a snapshot's order both
    /// work.
    ///
    /// # Errors
    /// [`BuildError::DuplicateCoin`] if a coin appears twice.
    pub fn from_coins<'a, C: CoinView + Sync + 'a>(
        coins: impl IntoIterator<Item = (&'a OutPoint, &'a C)>,
    ) -> Result<Commitment, BuildError> {
        Commitment::from_coins_with_layout(coins, Layout::Auto)
    }

    /// [`Commitment::from_coins`] laid out as `layout`.
    ///
    /// # Errors
    /// As [`Commitment::from_coins`].
    pub fn from_coins_with_layout<'a, C: CoinView + Sync + 'a>(
        coins: impl IntoIterator<Item = (&'a OutPoint, &'a C)>,
        layout: Layout,
    ) -> Result<Commitment, BuildError> {
        let entries = Paged::sorted_entries(coins, 2)?;
        Ok(Commitment::from_sorted_entries(entries, layout, 2))
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
        match &self.inner {
            Inner::Compact(c) => c.len(),
            Inner::Paged(p) => p.len(),
        }
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The root: 32 bytes that depend only on the set.
    pub fn root(&self) -> Root {
        match &self.inner {
            Inner::Compact(c) => c.root(),
            Inner::Paged(p) => p.root(),
        }
    }

    /// Bytes of heap the commitment holds, counted from its buffers' capacities (allocator
    /// overhead not included; the benchmarks also measure resident memory).
    pub fn heap_bytes(&self) -> usize {
        match &self.inner {
            Inner::Compact(c) => c.heap_bytes(),
            Inner::Paged(p) => std::mem::size_of::<Paged>() + p.heap_bytes(),
        }
    }

    /// Applies a block's net change: removes `spent`, then adds `created`. All-or-nothing: on error
    /// the commitment is unchanged. Paged: O(changes · (page size + log n)); compact: O(n).
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
        let batch = Batch::new(created, spent)?;
        match &mut self.inner {
            Inner::Compact(c) => {
                batch.check(|e| c.contains(e))?;
                c.apply_batch(&batch);
                if self.layout == Layout::Auto && c.len() > COMPACT_MAX {
                    let paged = Paged::from_sorted_entries(c.entries(), self.threads);
                    self.inner = Inner::Paged(Box::new(paged));
                }
            }
            Inner::Paged(p) => {
                batch.check(|e| p.contains(e))?;
                p.apply_batch(&batch);
            }
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
        let mut proof = Proof {
            claims: Vec::new(),
            nodes: Vec::new(),
            entries: Vec::new(),
        };
        self.prove_many_into(queries, &mut proof)?;
        Ok(proof)
    }

    /// [`Commitment::prove_many`] into a caller's `proof`, reusing its buffers: a server answering
    /// many requests keeps one `Proof` per thread and encodes each answer from it, with no
    /// allocation per proof beyond the claimed scripts.
    ///
    /// # Errors
    /// As [`Commitment::prove_many`]; `proof` is then left empty.
    pub fn prove_many_into<'a, C: CoinView + 'a>(
        &self,
        queries: impl IntoIterator<Item = (&'a OutPoint, Option<&'a C>)>,
        proof: &mut Proof,
    ) -> Result<(), ProveError> {
        let queries = queries
            .into_iter()
            .map(|(outpoint, coin)| (outpoint, coin, Lookup::of(outpoint, coin)));
        let mut targets = Vec::new();
        let result = match &self.inner {
            Inner::Compact(c) => fill_proof(c, queries, proof, &mut targets),
            Inner::Paged(p) => fill_proof(p.as_ref(), queries, proof, &mut targets),
        };
        if result.is_err() {
            proof.claims.clear();
            proof.nodes.clear();
            proof.entries.clear();
        }
        result
    }

    /// Proves each query on its own (one single-outpoint proof per query, as a server answering
    /// many independent requests does) and hands each result to `sink` with the query's index.
    /// Runs on up to [`Commitment::set_threads`] threads (above [`PARALLEL_PROOFS_MIN`] queries),
    /// each with one reused [`Proof`] buffer, so `sink` sees results in no fixed order and must copy
    /// or encode what it keeps.
    ///
    /// At 10M coins a proof is bound by cache misses (the page, the entry, the bucket, the upper
    /// tree's siblings). So the queries are hashed first (on all threads), then each thread takes
    /// one key range and proves its queries in key order (neighbouring proofs share upper-tree
    /// nodes, and the page table is walked forwards), [`PROOF_GROUP`] at a time with the group's
    /// loads issued before any of its proofs is built, so the misses overlap instead of queuing.
    /// The larger the batch, the more its proofs share.
    ///
    /// ```
    /// use bitcoin::{OutPoint, Txid, hashes::Hash};
    /// use merkle_proofs::{Commitment, LeafCoin, verify};
    ///
    /// let coins: Vec<(OutPoint, LeafCoin)> = (0..100u8)
    ///     .map(|i| {
    ///         let op = OutPoint { txid: Txid::from_byte_array([i; 32]), vout: 0 };
    ///         (op, LeafCoin { amount: 1_000, height: 1, is_coinbase: false, script: vec![0x51] })
    ///     })
    ///     .collect();
    /// let c = Commitment::from_coins(coins.iter().map(|(o, c)| (o, c))).unwrap();
    /// let queries: Vec<(OutPoint, Option<LeafCoin>)> =
    ///     coins.iter().map(|(o, c)| (*o, Some(c.clone()))).collect();
    /// let root = c.root();
    /// let verified = std::sync::atomic::AtomicUsize::new(0);
    /// c.prove_each(&queries, |_, proof| {
    ///     verify(&root, proof.unwrap()).unwrap();
    ///     verified.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    /// });
    /// assert_eq!(verified.into_inner(), 100);
    /// ```
    pub fn prove_each<C, F>(&self, queries: &[(OutPoint, Option<C>)], sink: F)
    where
        C: CoinView + Sync,
        F: Fn(usize, Result<&Proof, ProveError>) + Sync,
    {
        match &self.inner {
            Inner::Paged(p) => p.prove_each(queries, sink),
            Inner::Compact(c) => {
                let mut proof = Proof {
                    claims: Vec::new(),
                    nodes: Vec::new(),
                    entries: Vec::new(),
                };
                let mut targets = Vec::new();
                for (i, (outpoint, coin)) in queries.iter().enumerate() {
                    let lookup = Lookup::of(outpoint, coin.as_ref());
                    let query = (outpoint, coin.as_ref(), lookup);
                    let result = fill_proof(c, [query], &mut proof, &mut targets);
                    sink(i, result.map(|()| &proof));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn stored(rng: &mut ChaCha8Rng, skew: u32) -> Stored {
        let mut s: Stored = [0; 38];
        rng.fill(&mut s[..]);
        // Skewed key suffixes: the top `skew` bits cleared (or set), so interpolation guesses far off.
        let top = u64::from_be_bytes([0, 0, s[0], s[1], s[2], s[3], s[4], s[5]]);
        let shifted = if skew.is_multiple_of(2) {
            top >> skew
        } else {
            top | (((1u64 << skew) - 1) << (48 - skew))
        };
        s[..6].copy_from_slice(&shifted.to_be_bytes()[2..]);
        s
    }

    /// The interpolation search agrees with `binary_search` on hits and misses, for uniform and
    /// badly skewed pages of every size up to a few hundred entries.
    #[test]
    fn interpolation_search_equals_binary_search() {
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        for n in (0..300).step_by(7) {
            for skew in [0, 1, 8, 9, 30, 31, 47] {
                let mut page: Vec<Stored> = (0..n).map(|_| stored(&mut rng, skew)).collect();
                page.sort_unstable();
                page.dedup();
                for probe in page
                    .iter()
                    .copied()
                    .chain((0..50).map(|_| stored(&mut rng, skew)))
                {
                    assert_eq!(
                        search(&page, &probe),
                        page.binary_search(&probe),
                        "n={n} skew={skew}"
                    );
                }
                assert_eq!(search(&page, &[0; 38]), page.binary_search(&[0; 38]));
                assert_eq!(search(&page, &[0xff; 38]), page.binary_search(&[0xff; 38]));
            }
        }
    }

    /// The word-wise comparison orders entries exactly as their bytes do.
    #[test]
    fn cmp_stored_is_byte_order() {
        let mut rng = ChaCha8Rng::seed_from_u64(12);
        for _ in 0..10_000 {
            let a = stored(&mut rng, 0);
            let mut b = a;
            let i = rng.random_range(0..38);
            b[i] = rng.random();
            assert_eq!(cmp_stored(&a, &b), a.cmp(&b));
            assert_eq!(cmp_stored(&a, &a), std::cmp::Ordering::Equal);
        }
    }
}
