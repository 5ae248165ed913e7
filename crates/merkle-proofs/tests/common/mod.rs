//! Shared helpers of the integration tests: seeded coin generators and an independent, naive
//! implementation of the tree's definition (the crate docs) to check the paged prover against.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use bitcoin::hashes::Hash as _;
use bitcoin::{OutPoint, Txid};
use merkle_proofs::verify::{bucket_hash, node_hash};
use merkle_proofs::{BUCKET_MAX, Entry, LeafCoin, Root, entry_of};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

pub fn outpoint(rng: &mut ChaCha8Rng) -> OutPoint {
    OutPoint {
        txid: Txid::from_byte_array(rng.random()),
        vout: rng.random_range(0..4),
    }
}

pub fn coin(rng: &mut ChaCha8Rng) -> LeafCoin {
    let len = rng.random_range(0..40);
    LeafCoin {
        amount: rng.random_range(0..=2_100_000_000_000_000),
        height: rng.random_range(0..900_000),
        is_coinbase: rng.random_bool(0.1),
        script: (0..len).map(|_| rng.random()).collect(),
    }
}

pub fn coins(rng: &mut ChaCha8Rng, n: usize) -> Vec<(OutPoint, LeafCoin)> {
    (0..n).map(|_| (outpoint(rng), coin(rng))).collect()
}

/// Outpoints whose key starts with the two bytes `page` (ground: ~65,536 tries each), so one page
/// holds more than a bucket and the in-page tree is exercised.
pub fn ground_coins(rng: &mut ChaCha8Rng, page: [u8; 2], n: usize) -> Vec<(OutPoint, LeafCoin)> {
    let txid = Txid::from_byte_array(rng.random());
    let mut out = Vec::new();
    let mut vout = 0u32;
    while out.len() < n {
        let op = OutPoint { txid, vout };
        let key = merkle_proofs::verify::outpoint_key(&merkle_proofs::outpoint_bytes(&op));
        if key[..2] == page {
            out.push((op, coin(rng)));
        }
        vout += 1;
    }
    out
}

fn bit(e: &[u8; 40], d: usize) -> bool {
    (e[d / 8] >> (7 - d % 8)) & 1 == 1
}

fn composite(e: &Entry) -> [u8; 40] {
    let mut c = [0u8; 40];
    c[..8].copy_from_slice(&e.key8);
    c[8..].copy_from_slice(&e.body);
    c
}

fn subtree(entries: &[Entry]) -> [u8; 32] {
    if entries.len() <= BUCKET_MAX {
        return bucket_hash(entries.iter().copied());
    }
    let (a, b) = (
        composite(&entries[0]),
        composite(&entries[entries.len() - 1]),
    );
    let d = (0..320).find(|&d| bit(&a, d) != bit(&b, d)).unwrap();
    let mid = entries.iter().position(|e| bit(&composite(e), d)).unwrap();
    node_hash(&subtree(&entries[..mid]), &subtree(&entries[mid..]))
}

/// The root by the definition, straight from the entries (no pages, no caches).
pub fn reference_root(coins: &[(OutPoint, LeafCoin)]) -> Root {
    let mut entries: Vec<Entry> = coins.iter().map(|(o, c)| entry_of(o, c)).collect();
    entries.sort();
    entries.dedup();
    if entries.is_empty() {
        Root::empty()
    } else {
        Root(subtree(&entries))
    }
}
