//! Test helper shared by unit and integration tests: valid regtest blocks mined on the spot (regtest
//! proof of work is trivial, so a nonce loop finds one in a few tries).

use bitcoin::absolute::LockTime;
use bitcoin::block::{Header, Version};
use bitcoin::hashes::Hash;
use bitcoin::script::Builder;
use bitcoin::transaction::Version as TxVersion;
use bitcoin::{
    Amount, Block, CompactTarget, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxMerkleNode,
    TxOut, Witness,
};

/// Regtest's difficulty bits.
pub const REGTEST_BITS: u32 = 0x207f_ffff;

/// A coinbase for `height` (BIP34 height push, then `tag` so that branches differ) paying `value` sat
/// to `OP_TRUE`.
pub fn coinbase(height: u32, tag: u32, value: u64) -> Transaction {
    let script_sig = Builder::new()
        .push_int(i64::from(height))
        .push_int(i64::from(tag))
        .into_script();
    Transaction {
        version: TxVersion::TWO,
        lock_time: LockTime::ZERO,
        input: vec![TxIn {
            previous_output: OutPoint::null(),
            script_sig,
            sequence: Sequence::MAX,
            witness: Witness::new(),
        }],
        output: vec![TxOut {
            value: Amount::from_sat(value),
            script_pubkey: ScriptBuf::from_bytes(vec![0x51]),
        }],
    }
}

/// A valid regtest block on `prev` (at `height`) with a coinbase and `txs`, time `prev.time + 1`.
pub fn mine_block(prev: &Block, height: u32, tag: u32, txs: Vec<Transaction>) -> Block {
    let mut txdata = vec![coinbase(height, tag, 100_000_000)];
    txdata.extend(txs);
    let mut block = Block {
        header: Header {
            version: Version::from_consensus(0x2000_0000),
            prev_blockhash: prev.block_hash(),
            merkle_root: TxMerkleNode::all_zeros(),
            time: prev.header.time + 1,
            bits: CompactTarget::from_consensus(REGTEST_BITS),
            nonce: 0,
        },
        txdata,
    };
    if let Some(root) = block.compute_merkle_root() {
        block.header.merkle_root = root;
    }
    while block.header.validate_pow(block.header.target()).is_err() {
        block.header.nonce += 1;
    }
    block
}

/// `n` coinbase-only blocks on `parent` (at `parent_height`).
pub fn mine_chain(parent: &Block, parent_height: u32, n: u32, tag: u32) -> Vec<Block> {
    let mut out: Vec<Block> = Vec::new();
    for i in 1..=n {
        let prev = out.last().unwrap_or(parent);
        let b = mine_block(prev, parent_height + i, tag, vec![]);
        out.push(b);
    }
    out
}
