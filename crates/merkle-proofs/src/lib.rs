//! An authenticated commitment over the Bitcoin UTXO set: a 32-byte blake3 root that depends only on
//! the set, updated per block from its change set, with inclusion proofs (this coin, with exactly
//! these fields, is in the set), exclusion proofs (this outpoint is not) and multi-proofs, a
//! versioned binary encoding, a JSON form, and a standalone verifier ([`mod@verify`] module: `core` +
//! `alloc` + `blake3` only, builds without the `std` feature).
//!
//! ```
//! use bitcoin::{OutPoint, Txid, hashes::Hash};
//! use merkle_proofs::{Commitment, LeafCoin, Proof, Root, verify};
//!
//! let coins: Vec<(OutPoint, LeafCoin)> = (0..1000u32)
//!     .map(|i| {
//!         let op = OutPoint { txid: Txid::from_byte_array([(i % 251) as u8; 32]), vout: i };
//!         (op, LeafCoin { amount: 1_000 + u64::from(i), height: i, is_coinbase: false, script: vec![0x51] })
//!     })
//!     .collect();
//! let mut c = Commitment::from_coins(coins.iter().map(|(o, c)| (o, c))).unwrap();
//! let root: Root = c.root();
//!
//! // Inclusion, carried as bytes and checked by the verifier alone.
//! let (op, coin) = &coins[17];
//! let bytes = c.prove(op, Some(coin)).unwrap().encode();
//! merkle_proofs::verify::verify_encoded(&root, &bytes).unwrap();
//!
//! // A block spends coin 17: the root moves, and 17 now proves absent.
//! c.apply_changes(std::iter::empty::<(&OutPoint, &LeafCoin)>(), [(op, coin)]).unwrap();
//! let proof = c.prove::<LeafCoin>(op, None).unwrap();
//! verify(&c.root(), &proof).unwrap();
//! assert!(verify(&root, &proof).is_err());
//! # let _ = Proof::decode(&bytes).unwrap();
//! ```
//!
//! # The tree
//!
//! Each coin becomes an **entry** `(key8, body)`:
//! - `key = blake3::keyed_hash(DOMAIN_KEY, txid ‖ vout u32 LE)` (32 bytes) and `key8` its first 8
//!   bytes. Keys are hashes, so an attacker choosing txids cannot unbalance the tree.
//! - `body = blake3::keyed_hash(DOMAIN_COIN, txid ‖ vout u32 LE ‖ amount u64 LE ‖ height u32 LE ‖
//!   coinbase u8 ‖ script_len u32 LE ‖ script)`: the whole coin.
//!
//! Entries are ordered by the 320-bit **composite key** `key8 ‖ body` (bytewise). The tree over a
//! set S of entries, all sharing their first `d` composite bits, is defined recursively:
//! - `|S| ≤ BUCKET_MAX` (48): a **bucket**, `blake3::keyed_hash(DOMAIN_BUCKET, count u8 ‖ (key8 ‖
//!   body) × count)` over the entries in order;
//! - otherwise split S at the first bit where its entries differ (its lowest and highest entry
//!   differ there first): those with a 0 go left, 1 right, and the node is
//!   `blake3::keyed_hash(DOMAIN_NODE, left ‖ right)`.
//!
//! This is a binary radix (Patricia) trie with compressed paths and flat buckets of up to 48
//! coins at the bottom. The root of the empty set is `blake3::keyed_hash(DOMAIN_EMPTY, "")`. The six
//! `DOMAIN_*` keys are distinct 32-byte ASCII tags (see [`mod@verify`]), so keys, bodies, buckets, nodes,
//! the empty root and the checksum live in separate blake3 domains.
//!
//! **Invariants** (tests in `tests/properties.rs` check them on random histories):
//! 1. The root is a function of the set alone: the shape is fixed by the keys, never by insertion
//!    order, so the incremental root equals a from-scratch rebuild.
//! 2. Entries appear in the tree in strictly increasing composite order (in-order traversal).
//! 3. Every path has at most `PROOF_DEPTH_MAX` (320) inner nodes; with random keys the depth is about
//!    log₂(n / 30) (≈ 18 at 10M coins).
//!
//! **Proofs** are one shape for everything: the claims, then the tree in pre-order with the
//! buckets that matter revealed and every other subtree pruned to its hash. A present-claim holds
//! iff its entry is in a revealed bucket. An absent-claim for key prefix `k` holds iff the revealed
//! entries just below and just above `k` are side by side (no pruned subtree between them, or the
//! start/end of the set) and none has prefix `k`: by invariant 2 nothing can hide between them.
//! Multi-proofs reveal several buckets and share their common nodes. A proof carries O(log n)
//! hashes plus at most two buckets per claim (each ≤ 48 × 40 bytes).
//!
//! **Known limit (by design):** an outpoint whose 8-byte key prefix equals that of a coin in the set
//! cannot be proved absent ([`ProveError::PrefixPresent`]; never a false proof). For a random
//! outpoint this happens with probability n/2⁶⁴ (5·10⁻¹³ at 10M coins); an attacker who wants to
//! block the exclusion proof of one given outpoint needs ~2⁶⁴ work to grind a colliding coin into the
//! set. Storing only 8 key bytes per coin (not 32) is what keeps memory under 40 bytes per coin.
//!
//! # Memory and speed (the prover's data structure)
//!
//! A [`Commitment`] has two memory layouts ([`Layout`]); roots and proofs do not depend on which.
//! **Compact** (small sets, up to [`COMPACT_MAX`] coins under [`Layout::Auto`]): the sorted 40-byte
//! entries in one vector, the tree derived on demand; a channel ledger of tens of outputs costs a
//! few kilobytes. **Paged** (the UTXO set): 65,536 pages selected by the first two key bytes. A
//! page holds its entries, sorted, as 38-byte records (key bytes 2..8 and the body) in one
//! exactly-sized allocation, plus its buckets as 38-byte records (hash, first entry, the key bit at
//! which the tree splits it from the next bucket): the page's whole tree shape, so proving never
//! re-derives it from the entries. An upper tree over the pages (65,535 nodes in heap order, then
//! one per page root) keeps each node's hash and coin count side by side. So a coin costs 38 bytes
//! plus its share of the bucket records (~1 per 30 coins) and of the fixed page/upper overhead
//! (~6.8 MB, 0.7 B/coin at 10M; more per coin for small sets). [`Builder`] builds either from
//! coins streamed one at a time, holding only their 40-byte entries meanwhile.
//!
//! Proving hashes only the claimed coin (its key and body) and at most a few page-level nodes from
//! cached bucket hashes; the rest is memory traffic, and at 10M coins nearly every step is a cache
//! miss (page record, entries, bucket records, the upper tree's lower levels). Three things keep it
//! short: keys are uniform blake3 outputs, so a page is searched by interpolation (one or two
//! neighbouring lines, not ~8 scattered ones); an inclusion proof walks the upper tree in a loop,
//! one cache line per level; and [`Commitment::prove_each`] takes independent queries
//! [`PROOF_GROUP`] at a time, issuing the loads of the whole group before building any of its
//! proofs, so the misses overlap, on up to [`Commitment::set_threads`] threads with one reused
//! [`Proof`] buffer each ([`Commitment::prove_many_into`] reuses a caller's buffer the same way).
//!
//! Updates ([`Commitment::apply_changes`]) validate the whole batch first (all-or-nothing), merge
//! each touched page (the changes located by the page search, untouched runs copied whole), rehash
//! only the buckets whose entries changed, then recompute each touched upper node once, bottom-up:
//! O(changes · (page + log n)). When a batch touches at least [`PARALLEL_PAGES_MIN`] pages and
//! [`Commitment::set_threads`] allows it (default 2), the pages are split between two threads with
//! `std::thread::scope` (no thread outlives the call).
//!
//! Measured at 10M coins (`L2BTC_MERKLE_SIZES=10000000 cargo bench -p benches --bench merkle`,
//! two runs on an idle 2-core machine, 2026-11-25, wall clock; batches of 10,000 random inclusion
//! queries unless said otherwise):
//!
//! | | ours | rustreexo | rs_merkle |
//! |---|---|---|---|
//! | inclusion proofs, `prove_each`, 2 threads | 1.04–1.32M/s | – | – |
//! | the same over 100,000-request queues, 2 threads | 1.55–1.64M/s | – | – |
//! | inclusion proofs, `prove_each`, 1 thread | 690–700k/s | 105–110k/s | 160–169k/s |
//! | inclusion proofs, one `prove` call each | 460–475k/s | 105–110k/s | 160–169k/s |
//! | exclusion proofs | 330–340k/s | none | none |
//! | proofs verified | 202k/s | 84k/s | 94k/s |
//! | changed coins applied, 1 / 2 threads | 181k / 276k/s | 460k/s | static |
//! | heap per coin (RSS delta) | 39.7 B (39.9 B) | 306 B (RSS) | 165 B (RSS) |
//! | inclusion proof size | 2,198 B with its claim | 733 B | 757 B |
//! | rebuild from coins (one shot) | 3.9 s | – | – |
//!
//! Both bars are met: ≤ 40 B/coin, and ≥ 1,000,000 proofs/s at 10M coins on two threads in every
//! idle run (the smallest figure, 1.01M/s, with 10,000-query batches; larger batches share more of
//! the tree and give 1.35–1.64M/s). Proving is bound by cache misses, so a busy second core or a
//! loaded machine takes it below the bar. Before this layout (one `prove` call, recursive walk,
//! binary search, page tree re-derived per proof) the same workload gave ~185k/s per core.
//!
//! The price of the 40-byte budget is proof size: a proof reveals whole buckets (≈ 30–48 entries of
//! 40 bytes) instead of one leaf, so it is ~3× a plain Merkle path, in exchange for a prover that
//! never hashes coins and for exclusion proofs, which rustreexo and rs_merkle do not offer.
//!
//! # Surviving restarts
//!
//! The commitment is derived data. At open the node rebuilds it from its coins with
//! [`Commitment::from_sorted_coins`] (any order gives the same root; deterministic), and checks the
//! result against the root its WAL record / snapshot carries; after that it follows each block's
//! change set ([`Commitment::apply_change_set`], and [`Commitment::revert_change_set`] on a reorg).
//! The rebuild hashes every coin once, sorts, and hashes the pages, on two threads: measured 1.9 s
//! for 1M coins (`merkle_rebuild/ours/1000000`, ~535k coins/s) and 17.4 s for 10M, on the shared
//! 2-core machine above; at mainnet's ~175M coins expect ~5 minutes, which is why the node should
//! store the root with each WAL record and snapshot and only rebuild to check it.
//!
//! # Binary encoding (version 1)
//!
//! All integers are fixed-width little-endian. Offsets are relative to the field's start.
//!
//! | bytes | field |
//! |---|---|
//! | 1 | version = `1` ([`PROOF_VERSION`]) |
//! | 2 | claim count `c`, u16, `1..=CLAIMS_MAX` (1,024) |
//! | … | `c` claims, each: kind u8 (`0` absent, `1` present), txid 32 bytes (internal order), vout u32; if present also amount u64 (≤ `AMOUNT_MAX`), height u32, coinbase u8 (`0`/`1`), script length u16 (≤ `SCRIPT_SIZE_MAX`, 10,000), script bytes |
//! | 4 | node count `m`, u32, `1..=PROOF_NODES_MAX` (65,535) |
//! | … | `m` nodes in pre-order, each a kind byte: `0` empty set (only as the single node), `1` pruned subtree + 32-byte hash, `2` inner node (its left then right subtree follow; at most `PROOF_DEPTH_MAX` = 320 nested), `3` bucket + count u8 (`1..=BUCKET_MAX` = 48) + count × (key8 8 bytes ‖ body 32 bytes) |
//! | 4 | checksum: first 4 bytes of `blake3::keyed_hash(DOMAIN_CHECKSUM, all preceding bytes)` |
//!
//! The whole encoding is at most `PROOF_SIZE_MAX` (8 MiB); nothing may follow the checksum. The
//! checksum catches accidental corruption; security comes from the root. A fixture
//! (`testdata/proof_v1.bin`) is read back by a test, so the format cannot change by accident.
//! [`Proof::to_json`] / [`Proof::from_json`] give the same content as JSON.
#![cfg_attr(not(feature = "std"), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod verify;

#[cfg(feature = "std")]
mod builder;
#[cfg(feature = "std")]
mod commitment;
#[cfg(feature = "std")]
mod compact;
#[cfg(feature = "std")]
pub mod json;

#[cfg(feature = "std")]
pub use builder::Builder;
#[cfg(feature = "std")]
pub use commitment::{
    BuildError, COMPACT_MAX, CoinView, Commitment, Layout, PARALLEL_PAGES_MIN, PARALLEL_PROOFS_MIN,
    PROOF_GROUP, ProveError, UpdateError, entry_of, leaf_coin, outpoint_bytes,
};
pub use verify::{
    AMOUNT_MAX, BUCKET_MAX, CLAIMS_MAX, Claim, DecodeError, Entry, LeafCoin, OutPointBytes,
    PROOF_DEPTH_MAX, PROOF_NODES_MAX, PROOF_SIZE_MAX, PROOF_VERSION, Proof, ProofNode, Root,
    SCRIPT_SIZE_MAX, VerifyError, verify,
};
