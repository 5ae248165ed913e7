//! The standalone verifier: proof types, the hash functions that define the commitment, the binary
//! encoding (encode/decode) and [`verify`].
//!
//! **Module invariant:** this module uses only `core`, `alloc` and `blake3`, so it builds without the
//! crate's `std` feature (`--no-default-features`) and can be copied into a `no_std` light client.
//! It contains no `unsafe` (the crate is `#![forbid(unsafe_code)]`).

use alloc::vec::Vec;
use core::fmt;

/// The encoding version this verifier reads and writes (the first byte of every encoded proof).
pub const PROOF_VERSION: u8 = 1;
/// Most entries (coins) one bucket of the tree holds. This is part of the commitment's definition:
/// a subtree with at most this many coins is hashed flat as one bucket.
pub const BUCKET_MAX: usize = 48;
/// Most nested inner nodes on any path of a proof's tree (the composite sort key has 320 bits, so an
/// honest tree never needs more).
pub const PROOF_DEPTH_MAX: usize = 320;
/// Most nodes (inner nodes, pruned hashes and buckets) in one proof's tree.
pub const PROOF_NODES_MAX: usize = 65_535;
/// Most claims (outpoints proved present or absent) in one proof.
pub const CLAIMS_MAX: usize = 1_024;
/// Longest script a claimed coin may carry (Bitcoin Core's `MAX_SCRIPT_SIZE`: longer scripts are
/// unspendable and never enter the set).
pub const SCRIPT_SIZE_MAX: usize = 10_000;
/// Largest amount a claimed coin may carry, in satoshis (21 million BTC, `MAX_MONEY`).
pub const AMOUNT_MAX: u64 = 21_000_000 * 100_000_000;
/// Largest encoded proof [`Proof::decode`] accepts, in bytes.
pub const PROOF_SIZE_MAX: usize = 8 << 20;
/// Length of the trailing checksum of the encoding.
pub const CHECKSUM_LEN: usize = 4;

const fn tag(s: &str) -> [u8; 32] {
    let bytes = s.as_bytes();
    let mut out = [0u8; 32];
    let mut i = 0;
    while i < bytes.len() {
        out[i] = bytes[i];
        i += 1;
    }
    out
}

/// blake3 key (domain) for outpoint → tree key.
pub const DOMAIN_KEY: [u8; 32] = tag("l2btc/merkle-proofs/v1/key");
/// blake3 key (domain) for a coin's body (outpoint and all coin fields).
pub const DOMAIN_COIN: [u8; 32] = tag("l2btc/merkle-proofs/v1/coin");
/// blake3 key (domain) for a bucket.
pub const DOMAIN_BUCKET: [u8; 32] = tag("l2btc/merkle-proofs/v1/bucket");
/// blake3 key (domain) for an inner node.
pub const DOMAIN_NODE: [u8; 32] = tag("l2btc/merkle-proofs/v1/node");
/// blake3 key (domain) for the root of the empty set.
pub const DOMAIN_EMPTY: [u8; 32] = tag("l2btc/merkle-proofs/v1/empty");
/// blake3 key (domain) for the encoding's checksum.
pub const DOMAIN_CHECKSUM: [u8; 32] = tag("l2btc/merkle-proofs/v1/checksum");

/// The 32-byte commitment to a UTXO set.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Root(pub [u8; 32]);

impl Root {
    /// The root of the empty set: `blake3::keyed_hash(DOMAIN_EMPTY, "")`.
    pub fn empty() -> Root {
        Root(*blake3::keyed_hash(&DOMAIN_EMPTY, &[]).as_bytes())
    }

    /// Parses 64 hex digits (either case).
    ///
    /// # Errors
    /// [`RootParseError`] when the text is not exactly 64 hex digits.
    pub fn from_hex(text: &str) -> Result<Root, RootParseError> {
        let bytes = text.as_bytes();
        if bytes.len() != 64 {
            return Err(RootParseError { len: bytes.len() });
        }
        let mut out = [0u8; 32];
        for (i, pair) in bytes.chunks_exact(2).enumerate() {
            let hi = hex_val(pair[0]).ok_or(RootParseError { len: bytes.len() })?;
            let lo = hex_val(pair[1]).ok_or(RootParseError { len: bytes.len() })?;
            out[i] = (hi << 4) | lo;
        }
        Ok(Root(out))
    }
}

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

impl fmt::Display for Root {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Root {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Root({self})")
    }
}

impl core::str::FromStr for Root {
    type Err = RootParseError;
    fn from_str(s: &str) -> Result<Root, RootParseError> {
        Root::from_hex(s)
    }
}

/// A root given as text was not 64 hex digits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RootParseError {
    /// Length of the rejected text.
    pub len: usize,
}

impl fmt::Display for RootParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "root must be 64 hex digits (got {} characters)",
            self.len
        )
    }
}

/// An outpoint as raw bytes: the txid in internal byte order (as serialized in transactions, the
/// reverse of the usual display order) and the output index.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct OutPointBytes {
    /// Transaction id, internal byte order.
    pub txid: [u8; 32],
    /// Output index.
    pub vout: u32,
}

/// The fields of a coin the commitment binds: everything Bitcoin Core keeps for an unspent output.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct LeafCoin {
    /// Value in satoshis.
    pub amount: u64,
    /// Height of the block that created the output.
    pub height: u32,
    /// Whether the creating transaction is a coinbase.
    pub is_coinbase: bool,
    /// The output's scriptPubKey.
    pub script: Vec<u8>,
}

/// One revealed coin of a bucket: the first 8 bytes of its tree key and its 32-byte body.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct Entry {
    /// First 8 bytes of [`outpoint_key`] (the sort prefix).
    pub key8: [u8; 8],
    /// [`coin_body`] of the outpoint and coin.
    pub body: [u8; 32],
}

/// What a proof asserts about one outpoint.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Claim {
    /// This outpoint is in the set with exactly these coin fields.
    Present {
        /// The outpoint.
        outpoint: OutPointBytes,
        /// Its coin.
        coin: LeafCoin,
    },
    /// This outpoint is not in the set.
    Absent {
        /// The outpoint.
        outpoint: OutPointBytes,
    },
}

impl Claim {
    /// The outpoint the claim is about.
    pub fn outpoint(&self) -> &OutPointBytes {
        match self {
            Claim::Present { outpoint, .. } | Claim::Absent { outpoint } => outpoint,
        }
    }
}

/// One node of a proof's tree, in pre-order.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ProofNode {
    /// The whole set is empty (only as the single node of the tree).
    Empty,
    /// A pruned subtree, given by its hash.
    Hash([u8; 32]),
    /// An inner node; its left then right subtree follow.
    Inner,
    /// A bucket of this many entries, taken in order from [`Proof::entries`].
    Bucket(u8),
}

/// A proof: claims about outpoints and the part of the tree that backs them (one or more buckets
/// revealed, everything else pruned to hashes). Single proofs and multi-proofs have the same shape.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Proof {
    /// What the proof asserts.
    pub claims: Vec<Claim>,
    /// The tree in pre-order.
    pub nodes: Vec<ProofNode>,
    /// The entries of all revealed buckets, in tree order.
    pub entries: Vec<Entry>,
}

/// The tree key of an outpoint: `blake3::keyed_hash(DOMAIN_KEY, txid ‖ vout as u32 LE)`.
pub fn outpoint_key(outpoint: &OutPointBytes) -> [u8; 32] {
    let mut buf = [0u8; 36];
    buf[..32].copy_from_slice(&outpoint.txid);
    buf[32..].copy_from_slice(&outpoint.vout.to_le_bytes());
    *blake3::keyed_hash(&DOMAIN_KEY, &buf).as_bytes()
}

/// The body of a coin: `blake3::keyed_hash(DOMAIN_COIN, txid ‖ vout u32 LE ‖ amount u64 LE ‖
/// height u32 LE ‖ is_coinbase u8 ‖ script length u32 LE ‖ script)`.
pub fn coin_body(
    outpoint: &OutPointBytes,
    amount: u64,
    height: u32,
    is_coinbase: bool,
    script: &[u8],
) -> [u8; 32] {
    let mut head = [0u8; 57];
    head[..32].copy_from_slice(&outpoint.txid);
    head[32..36].copy_from_slice(&outpoint.vout.to_le_bytes());
    head[36..44].copy_from_slice(&amount.to_le_bytes());
    head[44..48].copy_from_slice(&height.to_le_bytes());
    head[48] = u8::from(is_coinbase);
    let len = u32::try_from(script.len()).unwrap_or(u32::MAX);
    head[49..53].copy_from_slice(&len.to_le_bytes());
    // The common case (every standard output script) in one call on a stack buffer: the same
    // bytes, so the same hash, without setting up an incremental hasher.
    const INLINE_SCRIPT_MAX: usize = 75;
    if script.len() <= INLINE_SCRIPT_MAX {
        let mut buf = [0u8; 53 + INLINE_SCRIPT_MAX];
        buf[..53].copy_from_slice(&head[..53]);
        buf[53..53 + script.len()].copy_from_slice(script);
        return *blake3::keyed_hash(&DOMAIN_COIN, &buf[..53 + script.len()]).as_bytes();
    }
    let mut hasher = blake3::Hasher::new_keyed(&DOMAIN_COIN);
    hasher.update(&head[..53]);
    hasher.update(script);
    *hasher.finalize().as_bytes()
}

/// The entry (sort prefix and body) of a coin.
pub fn leaf_entry(outpoint: &OutPointBytes, coin: &LeafCoin) -> Entry {
    let key = outpoint_key(outpoint);
    let mut key8 = [0u8; 8];
    key8.copy_from_slice(&key[..8]);
    Entry {
        key8,
        body: coin_body(
            outpoint,
            coin.amount,
            coin.height,
            coin.is_coinbase,
            &coin.script,
        ),
    }
}

/// The hash of an inner node: `blake3::keyed_hash(DOMAIN_NODE, left ‖ right)`.
pub fn node_hash(left: &[u8; 32], right: &[u8; 32]) -> [u8; 32] {
    let mut buf = [0u8; 64];
    buf[..32].copy_from_slice(left);
    buf[32..].copy_from_slice(right);
    *blake3::keyed_hash(&DOMAIN_NODE, &buf).as_bytes()
}

/// The hash of a bucket: `blake3::keyed_hash(DOMAIN_BUCKET, count u8 ‖ (key8 ‖ body) × count)`.
/// Callers keep `entries.len()` within `1..=BUCKET_MAX`.
pub fn bucket_hash(entries: impl ExactSizeIterator<Item = Entry>) -> [u8; 32] {
    let mut buf = [0u8; 1 + BUCKET_MAX * 40];
    buf[0] = u8::try_from(entries.len()).unwrap_or(u8::MAX);
    let mut at = 1;
    for e in entries {
        if at + 40 > buf.len() {
            break;
        }
        buf[at..at + 8].copy_from_slice(&e.key8);
        buf[at + 8..at + 40].copy_from_slice(&e.body);
        at += 40;
    }
    *blake3::keyed_hash(&DOMAIN_BUCKET, &buf[..at]).as_bytes()
}

/// Why bytes are not a well-formed proof.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// More than [`PROOF_SIZE_MAX`] bytes.
    TooLarge {
        /// Input length.
        len: usize,
    },
    /// The input ended inside a field.
    Truncated {
        /// Offset where more bytes were needed.
        at: usize,
    },
    /// Unknown version byte.
    Version {
        /// The version found.
        found: u8,
    },
    /// Claim count outside `1..=CLAIMS_MAX`.
    ClaimCount {
        /// The count found.
        count: usize,
    },
    /// Unknown claim kind byte.
    ClaimKind {
        /// The byte found.
        kind: u8,
    },
    /// The coinbase flag is neither 0 nor 1.
    CoinbaseFlag {
        /// The byte found.
        value: u8,
    },
    /// A script longer than [`SCRIPT_SIZE_MAX`].
    ScriptTooLong {
        /// Declared length.
        len: usize,
    },
    /// An amount above [`AMOUNT_MAX`].
    AmountTooLarge {
        /// Declared amount in satoshis.
        sat: u64,
    },
    /// Node count outside `1..=PROOF_NODES_MAX`.
    NodeCount {
        /// The count found.
        count: usize,
    },
    /// Unknown node kind byte.
    NodeKind {
        /// The byte found.
        kind: u8,
    },
    /// A bucket size outside `1..=BUCKET_MAX`.
    BucketSize {
        /// The size found.
        count: usize,
    },
    /// The tree nests deeper than [`PROOF_DEPTH_MAX`].
    TooDeep,
    /// The tree's shape does not match its declared node count, or `Empty` is not alone.
    Shape,
    /// Bytes left after the checksum.
    TrailingBytes {
        /// How many.
        count: usize,
    },
    /// The checksum does not match the content.
    Checksum,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::TooLarge { len } => write!(
                f,
                "proof of {len} bytes exceeds PROOF_SIZE_MAX ({PROOF_SIZE_MAX})"
            ),
            DecodeError::Truncated { at } => write!(f, "proof truncated at byte {at}"),
            DecodeError::Version { found } => write!(
                f,
                "unknown proof version {found} (expected {PROOF_VERSION})"
            ),
            DecodeError::ClaimCount { count } => {
                write!(f, "claim count {count} outside 1..={CLAIMS_MAX}")
            }
            DecodeError::ClaimKind { kind } => write!(f, "unknown claim kind {kind}"),
            DecodeError::CoinbaseFlag { value } => write!(f, "coinbase flag {value} is not 0 or 1"),
            DecodeError::ScriptTooLong { len } => write!(
                f,
                "script of {len} bytes exceeds SCRIPT_SIZE_MAX ({SCRIPT_SIZE_MAX})"
            ),
            DecodeError::AmountTooLarge { sat } => write!(f, "amount {sat} sat exceeds MAX_MONEY"),
            DecodeError::NodeCount { count } => {
                write!(f, "node count {count} outside 1..={PROOF_NODES_MAX}")
            }
            DecodeError::NodeKind { kind } => write!(f, "unknown node kind {kind}"),
            DecodeError::BucketSize { count } => {
                write!(f, "bucket of {count} entries outside 1..={BUCKET_MAX}")
            }
            DecodeError::TooDeep => {
                write!(f, "tree deeper than PROOF_DEPTH_MAX ({PROOF_DEPTH_MAX})")
            }
            DecodeError::Shape => write!(f, "tree shape does not match the node count"),
            DecodeError::TrailingBytes { count } => {
                write!(f, "{count} bytes after the end of the proof")
            }
            DecodeError::Checksum => write!(f, "checksum mismatch"),
        }
    }
}

/// Why a well-formed proof does not establish its claims under a root.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum VerifyError {
    /// The proof makes no claim.
    NoClaims,
    /// The proof is structurally invalid (would not decode): what is wrong.
    Malformed(DecodeError),
    /// The revealed entries are not in strictly increasing order.
    Unsorted,
    /// The tree hashes to another root.
    RootMismatch {
        /// The root the proof was checked against.
        expected: Root,
        /// The root the proof's tree hashes to.
        computed: Root,
    },
    /// A present-claim's coin is not among the revealed entries.
    NotIncluded {
        /// Index of the claim.
        claim: usize,
    },
    /// An absent-claim's outpoint is not shown absent: its neighbours are not revealed side by side,
    /// or an entry with its key prefix is present.
    NotExcluded {
        /// Index of the claim.
        claim: usize,
    },
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VerifyError::NoClaims => write!(f, "proof makes no claim"),
            VerifyError::Malformed(e) => write!(f, "malformed proof: {e}"),
            VerifyError::Unsorted => write!(f, "revealed entries are not sorted"),
            VerifyError::RootMismatch { expected, computed } => {
                write!(f, "proof is for root {computed}, not {expected}")
            }
            VerifyError::NotIncluded { claim } => {
                write!(f, "claim {claim}: coin not in the revealed buckets")
            }
            VerifyError::NotExcluded { claim } => {
                write!(f, "claim {claim}: outpoint not shown absent")
            }
        }
    }
}

impl From<DecodeError> for VerifyError {
    fn from(e: DecodeError) -> VerifyError {
        VerifyError::Malformed(e)
    }
}

/// What the tree walk produced: the root and the revealed entries in order, each flagged with
/// whether a pruned subtree sits between it and the previous revealed entry.
struct Walk {
    root: Root,
    /// (index into entries, pruned subtree before it)
    seq: Vec<(usize, bool)>,
    gap_at_end: bool,
}

struct Walker<'a> {
    nodes: &'a [ProofNode],
    entries: &'a [Entry],
    ni: usize,
    ei: usize,
    seq: Vec<(usize, bool)>,
    gap: bool,
}

impl Walker<'_> {
    fn eval(&mut self, depth: usize) -> Result<[u8; 32], DecodeError> {
        let node = *self.nodes.get(self.ni).ok_or(DecodeError::Shape)?;
        self.ni += 1;
        match node {
            ProofNode::Empty => Err(DecodeError::Shape),
            ProofNode::Hash(h) => {
                self.gap = true;
                Ok(h)
            }
            ProofNode::Bucket(count) => {
                let count = usize::from(count);
                if count == 0 || count > BUCKET_MAX {
                    return Err(DecodeError::BucketSize { count });
                }
                let end = self.ei + count;
                let slice = self.entries.get(self.ei..end).ok_or(DecodeError::Shape)?;
                for i in self.ei..end {
                    self.seq.push((i, self.gap));
                    self.gap = false;
                }
                self.ei = end;
                Ok(bucket_hash(slice.iter().copied()))
            }
            ProofNode::Inner => {
                if depth >= PROOF_DEPTH_MAX {
                    return Err(DecodeError::TooDeep);
                }
                let left = self.eval(depth + 1)?;
                let right = self.eval(depth + 1)?;
                Ok(node_hash(&left, &right))
            }
        }
    }
}

fn walk(proof: &Proof) -> Result<Walk, DecodeError> {
    if proof.nodes.is_empty() || proof.nodes.len() > PROOF_NODES_MAX {
        return Err(DecodeError::NodeCount {
            count: proof.nodes.len(),
        });
    }
    if proof.nodes[0] == ProofNode::Empty {
        if proof.nodes.len() != 1 || !proof.entries.is_empty() {
            return Err(DecodeError::Shape);
        }
        return Ok(Walk {
            root: Root::empty(),
            seq: Vec::new(),
            gap_at_end: false,
        });
    }
    let mut w = Walker {
        nodes: &proof.nodes,
        entries: &proof.entries,
        ni: 0,
        ei: 0,
        seq: Vec::new(),
        gap: false,
    };
    let root = w.eval(0)?;
    if w.ni != proof.nodes.len() || w.ei != proof.entries.len() {
        return Err(DecodeError::Shape);
    }
    Ok(Walk {
        root: Root(root),
        seq: w.seq,
        gap_at_end: w.gap,
    })
}

/// Checks that `proof` establishes all its claims under `root`.
///
/// Soundness rests on blake3's collision resistance and on the honest tree's invariant that its
/// entries appear in strictly increasing `(key8, body)` order (see the crate docs): a present-claim
/// holds iff its entry is revealed; an absent-claim holds iff the revealed entries just below and
/// just above its key prefix sit side by side with no pruned subtree between them (or the set's
/// start/end), and no revealed entry has its key prefix.
///
/// # Errors
/// [`VerifyError`] saying which check failed.
pub fn verify(root: &Root, proof: &Proof) -> Result<(), VerifyError> {
    if proof.claims.is_empty() {
        return Err(VerifyError::NoClaims);
    }
    let walk = walk(proof)?;
    if walk.root != *root {
        return Err(VerifyError::RootMismatch {
            expected: *root,
            computed: walk.root,
        });
    }
    let entries = &proof.entries;
    for pair in walk.seq.windows(2) {
        if entries[pair[0].0] >= entries[pair[1].0] {
            return Err(VerifyError::Unsorted);
        }
    }
    for (i, claim) in proof.claims.iter().enumerate() {
        match claim {
            Claim::Present { outpoint, coin } => {
                let e = leaf_entry(outpoint, coin);
                let found = walk
                    .seq
                    .binary_search_by(|&(j, _)| entries[j].cmp(&e))
                    .is_ok();
                if !found {
                    return Err(VerifyError::NotIncluded { claim: i });
                }
            }
            Claim::Absent { outpoint } => {
                let key = outpoint_key(outpoint);
                let mut key8 = [0u8; 8];
                key8.copy_from_slice(&key[..8]);
                let pos = walk.seq.partition_point(|&(j, _)| entries[j].key8 < key8);
                let closed = match walk.seq.get(pos) {
                    Some(&(j, gap_before)) => entries[j].key8 > key8 && !gap_before,
                    None => !walk.gap_at_end,
                };
                if !closed {
                    return Err(VerifyError::NotExcluded { claim: i });
                }
            }
        }
    }
    Ok(())
}

/// Decodes `bytes` and verifies the proof against `root`.
///
/// # Errors
/// [`VerifyError::Malformed`] if the bytes do not decode, else as [`verify`].
pub fn verify_encoded(root: &Root, bytes: &[u8]) -> Result<Proof, VerifyError> {
    let proof = Proof::decode(bytes)?;
    verify(root, &proof)?;
    Ok(proof)
}

const NODE_EMPTY: u8 = 0;
const NODE_HASH: u8 = 1;
const NODE_INNER: u8 = 2;
const NODE_BUCKET: u8 = 3;
const CLAIM_ABSENT: u8 = 0;
const CLAIM_PRESENT: u8 = 1;

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self
            .at
            .checked_add(n)
            .ok_or(DecodeError::Truncated { at: self.at })?;
        let s = self
            .bytes
            .get(self.at..end)
            .ok_or(DecodeError::Truncated { at: self.at })?;
        self.at = end;
        Ok(s)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }
    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }
    fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_le_bytes(self.array()?))
    }
    fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.array()?))
    }
}

impl Proof {
    /// The binary encoding (layout in the crate docs): version, claims, tree in pre-order,
    /// 4-byte checksum. A proof built by this crate within the `*_MAX` bounds round-trips through
    /// [`Proof::decode`].
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + self.entries.len() * 40 + self.nodes.len() * 33);
        self.encode_into(&mut out);
        out
    }

    /// Appends the encoding to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.push(PROOF_VERSION);
        let claims = u16::try_from(self.claims.len()).unwrap_or(u16::MAX);
        out.extend_from_slice(&claims.to_le_bytes());
        for claim in &self.claims {
            match claim {
                Claim::Absent { outpoint } => {
                    out.push(CLAIM_ABSENT);
                    out.extend_from_slice(&outpoint.txid);
                    out.extend_from_slice(&outpoint.vout.to_le_bytes());
                }
                Claim::Present { outpoint, coin } => {
                    out.push(CLAIM_PRESENT);
                    out.extend_from_slice(&outpoint.txid);
                    out.extend_from_slice(&outpoint.vout.to_le_bytes());
                    out.extend_from_slice(&coin.amount.to_le_bytes());
                    out.extend_from_slice(&coin.height.to_le_bytes());
                    out.push(u8::from(coin.is_coinbase));
                    let len = u16::try_from(coin.script.len()).unwrap_or(u16::MAX);
                    out.extend_from_slice(&len.to_le_bytes());
                    out.extend_from_slice(&coin.script);
                }
            }
        }
        let nodes = u32::try_from(self.nodes.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&nodes.to_le_bytes());
        let mut entries = self.entries.iter();
        for node in &self.nodes {
            match node {
                ProofNode::Empty => out.push(NODE_EMPTY),
                ProofNode::Hash(h) => {
                    out.push(NODE_HASH);
                    out.extend_from_slice(h);
                }
                ProofNode::Inner => out.push(NODE_INNER),
                ProofNode::Bucket(count) => {
                    out.push(NODE_BUCKET);
                    out.push(*count);
                    for e in entries.by_ref().take(usize::from(*count)) {
                        out.extend_from_slice(&e.key8);
                        out.extend_from_slice(&e.body);
                    }
                }
            }
        }
        let sum = blake3::keyed_hash(&DOMAIN_CHECKSUM, &out[start..]);
        out.extend_from_slice(&sum.as_bytes()[..CHECKSUM_LEN]);
    }

    /// Decodes a proof, checking every bound (`*_MAX`), the tree's shape and the checksum. Does not
    /// verify the claims (see [`verify`]).
    ///
    /// # Errors
    /// [`DecodeError`] naming the first problem found.
    pub fn decode(bytes: &[u8]) -> Result<Proof, DecodeError> {
        if bytes.len() > PROOF_SIZE_MAX {
            return Err(DecodeError::TooLarge { len: bytes.len() });
        }
        let mut r = Reader { bytes, at: 0 };
        let version = r.u8()?;
        if version != PROOF_VERSION {
            return Err(DecodeError::Version { found: version });
        }
        let count = usize::from(r.u16()?);
        if count == 0 || count > CLAIMS_MAX {
            return Err(DecodeError::ClaimCount { count });
        }
        let mut claims = Vec::with_capacity(count);
        for _ in 0..count {
            let kind = r.u8()?;
            let txid = r.array::<32>()?;
            let vout = r.u32()?;
            let outpoint = OutPointBytes { txid, vout };
            match kind {
                CLAIM_ABSENT => claims.push(Claim::Absent { outpoint }),
                CLAIM_PRESENT => {
                    let amount = r.u64()?;
                    if amount > AMOUNT_MAX {
                        return Err(DecodeError::AmountTooLarge { sat: amount });
                    }
                    let height = r.u32()?;
                    let is_coinbase = match r.u8()? {
                        0 => false,
                        1 => true,
                        value => return Err(DecodeError::CoinbaseFlag { value }),
                    };
                    let len = usize::from(r.u16()?);
                    if len > SCRIPT_SIZE_MAX {
                        return Err(DecodeError::ScriptTooLong { len });
                    }
                    let script = r.take(len)?.to_vec();
                    claims.push(Claim::Present {
                        outpoint,
                        coin: LeafCoin {
                            amount,
                            height,
                            is_coinbase,
                            script,
                        },
                    });
                }
                kind => return Err(DecodeError::ClaimKind { kind }),
            }
        }
        let node_count = usize::try_from(r.u32()?).unwrap_or(usize::MAX);
        if node_count == 0 || node_count > PROOF_NODES_MAX {
            return Err(DecodeError::NodeCount { count: node_count });
        }
        // Every node takes at least one byte: don't trust the count for allocation beyond the input.
        let mut nodes = Vec::with_capacity(node_count.min(bytes.len() - r.at));
        let mut entries = Vec::new();
        // Pre-order shape check: `open` counts subtrees still to read.
        let mut open: usize = 1;
        // Depth tracking: a stack of "children still expected" per open inner node.
        let mut stack: Vec<u8> = Vec::new();
        for _ in 0..node_count {
            if open == 0 {
                return Err(DecodeError::Shape);
            }
            let kind = r.u8()?;
            let node = match kind {
                NODE_EMPTY => {
                    if node_count != 1 {
                        return Err(DecodeError::Shape);
                    }
                    ProofNode::Empty
                }
                NODE_HASH => ProofNode::Hash(r.array()?),
                NODE_INNER => ProofNode::Inner,
                NODE_BUCKET => {
                    let count = r.u8()?;
                    if count == 0 || usize::from(count) > BUCKET_MAX {
                        return Err(DecodeError::BucketSize {
                            count: usize::from(count),
                        });
                    }
                    for _ in 0..count {
                        let key8 = r.array()?;
                        let body = r.array()?;
                        entries.push(Entry { key8, body });
                    }
                    ProofNode::Bucket(count)
                }
                kind => return Err(DecodeError::NodeKind { kind }),
            };
            // This node fills one open slot.
            open -= 1;
            if node == ProofNode::Inner {
                // `stack` holds the inner ancestors whose subtrees are still open.
                if stack.len() >= PROOF_DEPTH_MAX {
                    return Err(DecodeError::TooDeep);
                }
                stack.push(2);
                open += 2;
            } else {
                // A leaf completes; completion propagates to ancestors whose both children are done.
                while let Some(top) = stack.last_mut() {
                    *top -= 1;
                    if *top == 0 {
                        stack.pop();
                    } else {
                        break;
                    }
                }
            }
            nodes.push(node);
        }
        if open != 0 {
            return Err(DecodeError::Shape);
        }
        let content_end = r.at;
        let sum: [u8; CHECKSUM_LEN] = r.array()?;
        if r.at != bytes.len() {
            return Err(DecodeError::TrailingBytes {
                count: bytes.len() - r.at,
            });
        }
        let want = blake3::keyed_hash(&DOMAIN_CHECKSUM, &bytes[..content_end]);
        // Fuzz builds skip the checksum so the fuzzer reaches the verifier with arbitrary trees.
        if sum[..] != want.as_bytes()[..CHECKSUM_LEN] && !cfg!(fuzzing) {
            return Err(DecodeError::Checksum);
        }
        Ok(Proof {
            claims,
            nodes,
            entries,
        })
    }
}

#[cfg(test)]
mod coin_body_tests {
    use super::*;

    /// Both paths of `coin_body` (stack buffer for short scripts, incremental hasher for long ones)
    /// hash exactly the bytes the docs define, at every script length around the switch.
    #[test]
    fn coin_body_hashes_the_defined_bytes_at_every_script_length() {
        let op = OutPointBytes {
            txid: [0x5a; 32],
            vout: 7,
        };
        for len in 0..=200usize {
            let script: Vec<u8> = (0..len)
                .map(|i| u8::try_from(i * 31 % 251).unwrap())
                .collect();
            let mut bytes = Vec::new();
            bytes.extend_from_slice(&op.txid);
            bytes.extend_from_slice(&op.vout.to_le_bytes());
            bytes.extend_from_slice(&1_234_567u64.to_le_bytes());
            bytes.extend_from_slice(&800_000u32.to_le_bytes());
            bytes.push(1);
            bytes.extend_from_slice(&u32::try_from(len).unwrap().to_le_bytes());
            bytes.extend_from_slice(&script);
            let expected = *blake3::keyed_hash(&DOMAIN_COIN, &bytes).as_bytes();
            assert_eq!(
                coin_body(&op, 1_234_567, 800_000, true, &script),
                expected,
                "len {len}"
            );
        }
    }
}
