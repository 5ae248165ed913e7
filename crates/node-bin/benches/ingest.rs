//! `l2btc verify-chain` end to end on a synthetic regtest chain: the ingest pipeline (a reader
//! thread decoding and hashing blocks, the applying thread, and MuHash on a stage of its own)
//! against the same command on one thread (`L2BTC_PIPELINE=off`), in the same run.
//!
//! The chain (written once to a temporary `blk` file): 100 blocks whose coinbases pay
//! [`COINBASE_OUTPUTS`] P2WPKH-like outputs each, then [`SPEND_BLOCKS`] blocks of [`TXS_PER_BLOCK`]
//! 2-in/2-out segwit transactions spending random mature coins (old coinbase outputs and the
//! outputs of recent transactions alike). Throughput counts every transaction of the chain;
//! each run includes process start, reading the file and the final report (hash_serialized_3 and
//! the commitment over every coin), the same for both variants.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../src/testutil.rs"]
#[allow(dead_code)]
mod testutil;

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use bitcoin::absolute::LockTime;
use bitcoin::consensus::serialize;
use bitcoin::hashes::Hash;
use bitcoin::transaction::Version;
use bitcoin::{
    Amount, Block, Network, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxOut, Witness,
};
use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Outputs of each of the first 100 coinbases (the coins the spending blocks start from).
const COINBASE_OUTPUTS: usize = 4_000;
/// Blocks of spending transactions after the coinbase blocks.
const SPEND_BLOCKS: u32 = 100;
/// 2-in/2-out transactions per spending block.
const TXS_PER_BLOCK: usize = 2_500;
/// Regtest's subsidy halving interval and coinbase maturity.
const HALVING: u32 = 150;
const MATURITY: u32 = 100;
/// Regtest's network magic (blk file framing).
const MAGIC: [u8; 4] = [0xfa, 0xbf, 0xb5, 0xda];

fn subsidy(height: u32) -> u64 {
    (50 * 100_000_000u64) >> (height / HALVING)
}

fn p2wpkh(rng: &mut ChaCha8Rng) -> ScriptBuf {
    let mut bytes = vec![0x00, 0x14];
    bytes.extend(rng.random::<[u8; 20]>());
    ScriptBuf::from_bytes(bytes)
}

/// A witness shaped like a P2WPKH spend (72-byte signature, 33-byte key).
fn witness(rng: &mut ChaCha8Rng) -> Witness {
    let sig: Vec<u8> = (0..72).map(|_| rng.random()).collect();
    let key: Vec<u8> = (0..33).map(|_| rng.random()).collect();
    Witness::from_slice(&[sig, key])
}

/// The synthetic chain from genesis and its transaction count (coinbases included).
fn synthetic_chain() -> (Vec<Block>, u64) {
    let mut rng = ChaCha8Rng::seed_from_u64(0x1b7c_0000_2026_1202);
    let mut blocks = vec![bitcoin::constants::genesis_block(Network::Regtest)];
    let mut coinbase_outputs: Vec<Vec<(OutPoint, u64)>> = Vec::new();
    let mut pool: Vec<(OutPoint, u64)> = Vec::new();
    let mut txs_total = 1u64;
    for height in 1..=MATURITY + SPEND_BLOCKS {
        // Block k's coinbase (index k - 1) can be spent from height k + MATURITY.
        if let Some(index) = height.checked_sub(MATURITY + 1) {
            let index = usize::try_from(index).unwrap();
            if let Some(outputs) = coinbase_outputs.get_mut(index) {
                pool.append(outputs);
            }
        }
        let mut txs = Vec::new();
        if height > MATURITY {
            for _ in 0..TXS_PER_BLOCK {
                let tx = spend_two(&mut rng, &mut pool);
                let txid = tx.compute_txid();
                for (vout, out) in tx.output.iter().enumerate() {
                    pool.push((
                        OutPoint::new(txid, u32::try_from(vout).unwrap()),
                        out.value.to_sat(),
                    ));
                }
                txs.push(tx);
            }
        }
        let mut block = testutil::mine_block(&blocks[blocks.len() - 1], height, 0, txs);
        if height <= MATURITY {
            block.txdata[0].output = wide_coinbase_outputs(height, &mut rng);
            let coinbase = &block.txdata[0];
            let txid = coinbase.compute_txid();
            let outputs = coinbase.output.iter().enumerate();
            coinbase_outputs.push(
                outputs
                    .map(|(vout, o)| {
                        (
                            OutPoint::new(txid, u32::try_from(vout).unwrap()),
                            o.value.to_sat(),
                        )
                    })
                    .collect(),
            );
        } else {
            commit_witnesses(&mut block);
        }
        reseal(&mut block);
        txs_total += block.txdata.len() as u64;
        blocks.push(block);
    }
    (blocks, txs_total)
}

/// The subsidy at `height` paid in [`COINBASE_OUTPUTS`] outputs.
fn wide_coinbase_outputs(height: u32, rng: &mut ChaCha8Rng) -> Vec<TxOut> {
    let each = subsidy(height) / COINBASE_OUTPUTS as u64;
    (0..COINBASE_OUTPUTS)
        .map(|_| TxOut {
            value: Amount::from_sat(each),
            script_pubkey: p2wpkh(rng),
        })
        .collect()
}

/// Adds BIP141's witness commitment to the coinbase (reserved value all zeros).
fn commit_witnesses(block: &mut Block) {
    let root = block.witness_root().expect("a coinbase");
    let reserved = [0u8; 32];
    let commitment = Block::compute_witness_commitment(&root, &reserved);
    let mut script = vec![0x6a, 0x24, 0xaa, 0x21, 0xa9, 0xed];
    script.extend_from_slice(commitment.as_byte_array());
    let coinbase = &mut block.txdata[0];
    coinbase.input[0].witness = Witness::from_slice(&[reserved]);
    coinbase.output.push(TxOut {
        value: Amount::ZERO,
        script_pubkey: ScriptBuf::from_bytes(script),
    });
}

/// Recomputes the merkle root and finds a nonce again after the coinbase changed.
fn reseal(block: &mut Block) {
    block.header.merkle_root = block.compute_merkle_root().expect("a coinbase");
    block.header.nonce = 0;
    while block.header.validate_pow(block.header.target()).is_err() {
        block.header.nonce += 1;
    }
}

/// A 2-in/2-out transaction spending two random coins of `pool` (removed from it), fee-free.
fn spend_two(rng: &mut ChaCha8Rng, pool: &mut Vec<(OutPoint, u64)>) -> Transaction {
    let mut input = Vec::with_capacity(2);
    let mut value = 0u64;
    for _ in 0..2 {
        let (outpoint, amount) = pool.swap_remove(rng.random_range(0..pool.len()));
        value += amount;
        input.push(TxIn {
            previous_output: outpoint,
            script_sig: ScriptBuf::new(),
            sequence: Sequence::MAX,
            witness: witness(rng),
        });
    }
    let first = value / 2;
    Transaction {
        version: Version::TWO,
        lock_time: LockTime::ZERO,
        input,
        output: vec![
            TxOut {
                value: Amount::from_sat(first),
                script_pubkey: p2wpkh(rng),
            },
            TxOut {
                value: Amount::from_sat(value - first),
                script_pubkey: p2wpkh(rng),
            },
        ],
    }
}

fn write_blk(path: &Path, blocks: &[Block]) {
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    for block in blocks {
        let bytes = serialize(block);
        file.write_all(&MAGIC).unwrap();
        file.write_all(&u32::try_from(bytes.len()).unwrap().to_le_bytes())
            .unwrap();
        file.write_all(&bytes).unwrap();
    }
    file.flush().unwrap();
}

fn verify_chain(file: &Path, pipeline: &str) {
    let out = Command::new(env!("CARGO_BIN_EXE_l2btc"))
        .args(["verify-chain", "--network", "regtest", "--json"])
        .arg(file)
        .env("L2BTC_PIPELINE", pipeline)
        .output()
        .expect("run l2btc");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn ingest(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let (blocks, txs) = synthetic_chain();
    let file = dir.path().join("blk00000.dat");
    write_blk(&file, &blocks);
    drop(blocks);
    let mut group = c.benchmark_group("l2btc_verify_chain");
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_millis(1))
        .measurement_time(Duration::from_secs(20))
        .throughput(Throughput::Elements(txs));
    group.bench_function("pipeline/2threads", |b| {
        b.iter(|| verify_chain(&file, "on"));
    });
    group.bench_function("one_thread/1thread", |b| {
        b.iter(|| verify_chain(&file, "off"));
    });
    group.finish();
}

criterion_group!(benches, ingest);
criterion_main!(benches);
