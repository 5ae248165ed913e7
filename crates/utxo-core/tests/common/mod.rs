//! Shared helpers of the integration tests: the regtest chain and a tiny block builder.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_possible_truncation
)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;

use bitcoin::absolute::LockTime;
use bitcoin::block::{Header, Version};
use bitcoin::hashes::Hash;
use bitcoin::transaction::Version as TxVersion;
use bitcoin::{
    Amount, Block, BlockHash, CompactTarget, OutPoint, ScriptBuf, Sequence, Transaction, TxIn,
    TxMerkleNode, TxOut, Witness, consensus,
};

/// The repository's testdata folder.
pub fn testdata() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata")
}

/// Bitcoin Core's regtest chain-a, heights 0..=200.
pub fn regtest_blocks() -> Vec<Block> {
    let file = std::fs::File::open(testdata().join("regtest/chain-a/blocks-0-200.hex.gz")).unwrap();
    BufReader::new(flate2::read::GzDecoder::new(file))
        .lines()
        .map(|line| consensus::deserialize(&hex::decode(line.unwrap().trim()).unwrap()).unwrap())
        .collect()
}

/// A coinbase for `height` paying `value` to a script unique to the height.
pub fn coinbase(height: u32, value: u64) -> Transaction {
    let mut sig = ScriptBuf::builder()
        .push_int(i64::from(height))
        .into_script()
        .into_bytes();
    sig.push(0x51);
    Transaction {
        version: TxVersion::TWO,
        lock_time: LockTime::ZERO,
        input: vec![TxIn {
            previous_output: OutPoint::null(),
            script_sig: ScriptBuf::from_bytes(sig),
            sequence: Sequence::MAX,
            witness: Witness::new(),
        }],
        output: vec![TxOut {
            value: Amount::from_sat(value),
            script_pubkey: p2wpkh(height),
        }],
    }
}

/// A P2WPKH-shaped script derived from `n`.
pub fn p2wpkh(n: u32) -> ScriptBuf {
    let mut b = vec![0x00, 0x14];
    b.extend_from_slice(&[0u8; 16]);
    b.extend_from_slice(&n.to_le_bytes());
    ScriptBuf::from_bytes(b)
}

/// A small deterministic generator (xorshift64*).
pub struct Rng(pub u64);

impl Rng {
    /// The next 64 random bits.
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number below `n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// A transaction spending `inputs` into outputs of the given values.
pub fn spend(inputs: &[OutPoint], values: &[u64], tag: u32) -> Transaction {
    let outputs = values
        .iter()
        .enumerate()
        .map(|(i, v)| TxOut {
            value: Amount::from_sat(*v),
            script_pubkey: p2wpkh(tag.wrapping_mul(1000).wrapping_add(i as u32)),
        })
        .collect();
    spend_into(inputs, outputs, LockTime::ZERO)
}

/// A version-2 transaction spending `inputs` (empty scripts and witnesses) into `outputs`.
pub fn spend_into(inputs: &[OutPoint], outputs: Vec<TxOut>, lock_time: LockTime) -> Transaction {
    Transaction {
        version: TxVersion::TWO,
        lock_time,
        input: inputs
            .iter()
            .map(|op| TxIn {
                previous_output: *op,
                script_sig: ScriptBuf::new(),
                sequence: Sequence::MAX,
                witness: Witness::new(),
            })
            .collect(),
        output: outputs,
    }
}

/// A block on `prev` holding `txdata` with a correct merkle root (no proof of work: the set does
/// not check it).
pub fn block(prev: BlockHash, txdata: Vec<Transaction>) -> Block {
    let mut block = Block {
        header: Header {
            version: Version::TWO,
            prev_blockhash: prev,
            merkle_root: TxMerkleNode::all_zeros(),
            time: 0,
            bits: CompactTarget::from_consensus(0x207f_ffff),
            nonce: 0,
        },
        txdata,
    };
    block.header.merkle_root = block.compute_merkle_root().unwrap();
    block
}

/// A chain of `n` blocks after regtest genesis, each with only a coinbase of 50 BTC.
pub fn coinbase_chain(n: u32) -> Vec<Block> {
    let mut blocks = vec![bitcoin::constants::genesis_block(bitcoin::Network::Regtest)];
    for height in 1..=n {
        let prev = blocks.last().unwrap().block_hash();
        blocks.push(block(prev, vec![coinbase(height, 50 * 100_000_000)]));
    }
    blocks
}
