//! A set driven by random blocks (many-output transactions, random spend orders, in-block
//! chains, every script class) against a `HashMap` model and against a twin set that never sees
//! the invalid blocks the first one rejects; disconnects of up to three blocks on the way.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_possible_truncation
)]

mod common;

use std::collections::HashMap;

use bitcoin::absolute::LockTime;
use bitcoin::hashes::Hash;
use bitcoin::{Amount, Block, BlockHash, Network, OutPoint, ScriptBuf, Transaction, TxOut};
use common::{Rng, block, coinbase, spend_into};
use utxo_core::{BlockUndo, ChainParams, Coin, SetOptions, UtxoSet, UtxoStats, is_unspendable};

const G: &str = "0479be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798\
                 483ada7726a3c4655da4fbfc0e1108a8fd17b448a68554199c47d08ffb10d4b8";

/// A script of any compression class, and unspendable ones.
fn script(rng: &mut Rng) -> ScriptBuf {
    let fill = (rng.next() & 0xff) as u8 | 1;
    let g: Vec<u8> = (0..65)
        .map(|i| u8::from_str_radix(&G[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    let b = match rng.below(40) {
        0 => [&[0xa9, 0x14][..], &[fill; 20], &[0x87]].concat(),
        1 => [&[0x21, 0x02][..], &[fill; 32], &[0xac]].concat(),
        2 => [&[0x21, 0x03][..], &[fill; 32], &[0xac]].concat(),
        3 => [&[0x41][..], &g, &[0xac]].concat(),
        4 => [&[0x41, 0x04][..], &[fill; 64], &[0xac]].concat(),
        5 => Vec::new(),
        6 => vec![fill; 121],
        7 => vec![fill; 122],
        8 => vec![0x51; utxo_core::SCRIPT_SIZE_MAX],
        9 => vec![0x51; utxo_core::SCRIPT_SIZE_MAX + 1], // Unspendable: never enters.
        10 => vec![0x6a, fill],                          // OP_RETURN: never enters.
        11 => vec![fill; rng.below(200)],
        n if n % 2 == 0 => [&[0x76, 0xa9, 0x14][..], &[fill; 20], &[0x88, 0xac]].concat(),
        _ => [&[0x00, 0x14][..], &[fill; 20]].concat(),
    };
    ScriptBuf::from_bytes(b)
}

fn tx(inputs: &[OutPoint], outputs: Vec<TxOut>, tag: u32) -> Transaction {
    spend_into(inputs, outputs, LockTime::from_consensus(tag))
}

/// Outputs worth at most `value` in total: `n` of them, some zero, one possibly all of it.
fn outputs(rng: &mut Rng, value: u64, n: usize) -> Vec<TxOut> {
    let mut left = value;
    (0..n)
        .map(|i| {
            let v = match rng.below(6) {
                _ if i == n - 1 => left, // No fee: fees stay within MAX_MONEY.
                0 => 0,
                _ => left / (n as u64 * 2).max(1),
            };
            left -= v;
            TxOut {
                value: Amount::from_sat(v),
                script_pubkey: script(rng),
            }
        })
        .collect()
}

type Model = HashMap<OutPoint, Coin>;

fn sorted(model: &Model) -> Vec<(OutPoint, Coin)> {
    let mut v: Vec<_> = model.iter().map(|(o, c)| (*o, c.clone())).collect();
    v.sort_by_key(|(o, _)| (o.txid.to_byte_array(), o.vout));
    v
}

fn stats_of(model: &Model) -> UtxoStats {
    let mut stats = UtxoStats::new(true);
    let mut buf = Vec::new();
    for (o, c) in sorted(model) {
        stats.add_coin(&o, &c, &mut buf);
    }
    stats
}

fn new_set(threads: usize, shards: usize) -> UtxoSet {
    UtxoSet::with_options(SetOptions {
        params: ChainParams::for_network(Network::Regtest),
        threads,
        shards,
        ..SetOptions::default()
    })
}

/// The model after `block` at `height`.
fn apply_model(model: &mut Model, block: &Block, height: u32) {
    for (i, t) in block.txdata.iter().enumerate() {
        if i > 0 {
            for input in &t.input {
                model
                    .remove(&input.previous_output)
                    .expect("spent coin in the model");
            }
        }
        let txid = t.compute_txid();
        for (vout, out) in t.output.iter().enumerate() {
            if !is_unspendable(&out.script_pubkey) {
                model.insert(
                    OutPoint {
                        txid,
                        vout: vout as u32,
                    },
                    Coin::from_txout(out, height, i == 0),
                );
            }
        }
    }
}

/// A valid block at `height` on `prev`, spending coins of `model` in random orders.
fn valid_block(rng: &mut Rng, model: &Model, prev: BlockHash, height: u32) -> Block {
    let mut spendable: Vec<OutPoint> = model
        .iter()
        .filter(|(_, c)| !c.is_coinbase || height - c.height >= 100)
        .map(|(o, _)| *o)
        .collect();
    spendable.sort();
    // Group by txid so a transaction's outputs can be spent together, in a random order.
    let mut txs = Vec::new();
    let mut created: Vec<(OutPoint, u64)> = Vec::new();
    let n_txs = 1 + rng.below(6);
    for t in 0..n_txs {
        let mut inputs = Vec::new();
        let mut value = 0u64;
        let from_block = !created.is_empty() && rng.below(4) == 0;
        for _ in 0..1 + rng.below(4) {
            let op = if from_block {
                if created.is_empty() {
                    break;
                }
                let i = rng.below(created.len());
                if value + created[i].1 > Amount::MAX_MONEY.to_sat() {
                    continue;
                }
                let (op, v) = created.swap_remove(i);
                value += v;
                op
            } else {
                if spendable.is_empty() {
                    break;
                }
                // Neighbours in txid order: often outputs of one transaction.
                let i = match rng.below(4) {
                    0 => 0,
                    1 => spendable.len() - 1,
                    _ => rng.below(spendable.len()),
                };
                let v = model[&spendable[i]].amount.to_sat();
                if value + v > Amount::MAX_MONEY.to_sat() {
                    continue; // Inputs above MAX_MONEY: invalid.
                }
                value += v;
                spendable.remove(i)
            };
            inputs.push(op);
        }
        if inputs.is_empty() {
            break;
        }
        let n_out = match rng.below(5) {
            0 => 60 + rng.below(150), // Across output groups.
            1 => 1,
            _ => 1 + rng.below(8),
        };
        let outs = outputs(rng, value, n_out);
        let t = tx(&inputs, outs, (height << 8) | t as u32);
        let txid = t.compute_txid();
        for (vout, o) in t.output.iter().enumerate() {
            if !is_unspendable(&o.script_pubkey) {
                created.push((
                    OutPoint {
                        txid,
                        vout: vout as u32,
                    },
                    o.value.to_sat(),
                ));
            }
        }
        txs.push(t);
    }
    let mut cb = coinbase(height, 0);
    let n = 1 + rng.below(3);
    cb.output = outputs(rng, 1_000, n);
    let mut all = vec![cb];
    all.extend(txs);
    block(prev, all)
}

/// `good` broken by one more transaction: a double spend, a missing coin, an overspend, or a
/// spend of an immature coinbase.
fn invalid_variant(rng: &mut Rng, good: &Block, model: &Model, height: u32) -> Block {
    let mut txs = good.txdata.clone();
    let bad = match rng.below(4) {
        0 if txs.len() > 1 => {
            let op = txs[1].input[0].previous_output;
            tx(
                &[op],
                vec![TxOut {
                    value: Amount::ZERO,
                    script_pubkey: script(rng),
                }],
                7,
            )
        }
        1 => tx(
            &[OutPoint::new(bitcoin::Txid::from_byte_array([0xee; 32]), 3)],
            vec![TxOut {
                value: Amount::ZERO,
                script_pubkey: script(rng),
            }],
            8,
        ),
        2 => {
            let op = txs.last().unwrap().compute_txid();
            let op = OutPoint { txid: op, vout: 0 };
            // Outputs above MAX_MONEY: invalid whatever the input holds.
            let outs = vec![
                TxOut {
                    value: Amount::MAX_MONEY,
                    script_pubkey: script(rng),
                },
                TxOut {
                    value: Amount::from_sat(1),
                    script_pubkey: script(rng),
                },
            ];
            tx(&[op], outs, 9)
        }
        _ => {
            let immature = model
                .iter()
                .find(|(_, c)| c.is_coinbase && height - c.height < 100)
                .map(|(o, _)| *o)
                .unwrap_or(OutPoint::new(bitcoin::Txid::from_byte_array([0xed; 32]), 0));
            tx(
                &[immature],
                vec![TxOut {
                    value: Amount::ZERO,
                    script_pubkey: script(rng),
                }],
                10,
            )
        }
    };
    // Outputs before the failure, so the failed block wrote into the diff buffers.
    txs.push(bad);
    block(good.header.prev_blockhash, txs)
}

fn run(seed: u64, steps: usize, threads: usize, shards: usize) {
    let mut rng = Rng(seed);
    let (a, b) = (new_set(threads, shards), new_set(1, 1));
    let mut model = Model::new();
    // Seed coins: many outputs of a few txids (amounts up to MAX_MONEY), at height 1.
    for t in 0..6u8 {
        let txid = bitcoin::Txid::from_byte_array([t + 1; 32]);
        for vout in 0..(1 + rng.below(140)) as u32 {
            let sat = if t == 0 && vout == 0 {
                Amount::MAX_MONEY.to_sat()
            } else {
                1_000_000_000 + rng.next() % 1_000_000
            };
            let coin = Coin {
                amount: Amount::from_sat(sat),
                height: 1,
                is_coinbase: false,
                script_pubkey: script(&mut rng),
            };
            if is_unspendable(&coin.script_pubkey) {
                continue;
            }
            let op = OutPoint { txid, vout };
            a.insert(op, coin.clone());
            b.insert(op, coin.clone());
            model.insert(op, coin);
        }
    }
    let genesis = BlockHash::from_byte_array([0x42; 32]);
    a.set_best_block(Some((genesis, 1)));
    b.set_best_block(Some((genesis, 1)));
    let mut chain: Vec<(Block, u32, BlockUndo, Model)> = Vec::new();
    for step in 0..steps {
        let (tip, height) = a.best_block().unwrap();
        let height = height + 1;
        let good = valid_block(&mut rng, &model, tip, height);
        if rng.below(3) == 0 {
            let bad = invalid_variant(&mut rng, &good, &model, height);
            let before = (a.sorted_coins(), a.stats(), a.len());
            if a.apply_block(&bad, height).is_ok() {
                let last = bad.txdata.last().unwrap();
                panic!(
                    "seed {seed} step {step}: bad block accepted; last tx {:?}; spent coin {:?}",
                    last,
                    model.get(&last.input[0].previous_output)
                );
            }
            assert_eq!(
                (a.sorted_coins(), a.stats(), a.len()),
                before,
                "step {step}"
            );
        }
        let keep = rng.below(2) == 0;
        let (undo_a, changes_a) = if keep {
            let c = a.connect_block(&good, height).unwrap();
            (c.undo, Some(c.changes))
        } else {
            (a.apply_block(&good, height).unwrap(), None)
        };
        let undo_b = b.apply_block(&good, height).unwrap();
        assert_eq!(undo_a, undo_b, "step {step}: undo");
        let before = model.clone();
        apply_model(&mut model, &good, height);
        if let Some(changes) = changes_a {
            // The net changes take the model from before to after.
            let mut m = before.clone();
            for (o, _) in &changes.spent {
                m.remove(o).unwrap();
            }
            for (o, c) in &changes.created {
                m.insert(*o, c.clone());
            }
            assert_eq!(sorted(&m), sorted(&model), "step {step}: changes");
        }
        chain.push((good, height, undo_a, before));
        assert_eq!(a.len(), model.len(), "step {step}: len");
        assert_eq!(a.sorted_coins(), sorted(&model), "step {step}: coins");
        assert_eq!(a.stats(), b.stats(), "step {step}: twin stats");
        assert_eq!(
            a.stats(),
            stats_of(&model),
            "step {step}: stats of the model"
        );
        for (o, c) in model.iter().take(50) {
            assert_eq!(a.get(o).as_ref(), Some(c));
        }
        // Now and then disconnect up to three blocks from both sets.
        if rng.below(5) == 0 {
            for _ in 0..1 + rng.below(3) {
                let Some((blk, h, undo, prev_model)) = chain.pop() else {
                    break;
                };
                // A tampered undo is refused and changes nothing; the next disconnect then
                // works as on a set that never saw it.
                let mut bad = undo.clone();
                if let Some(t) = bad.txs.last_mut() {
                    // One spent coin short: the undo does not match the block.
                    t.spent.pop();
                    let before = (a.sorted_coins(), a.stats(), a.best_block());
                    assert!(a.disconnect_block(&blk, h, &bad).is_err());
                    assert_eq!((a.sorted_coins(), a.stats(), a.best_block()), before);
                }
                a.disconnect_block(&blk, h, &undo).unwrap();
                b.disconnect_block(&blk, h, &undo).unwrap();
                model = prev_model;
                assert_eq!(a.sorted_coins(), sorted(&model), "step {step}: disconnect");
                assert_eq!(a.stats(), stats_of(&model), "step {step}: disconnect stats");
                assert_eq!(a.stats(), b.stats());
            }
        }
    }
}

#[test]
fn random_blocks_agree_with_a_model_and_a_twin_that_never_saw_the_failures() {
    for seed in 1..=12u64 {
        run(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15), 60, 1, 4);
    }
}

#[test]
fn random_blocks_with_threads_and_one_shard() {
    for seed in 1..=4u64 {
        run(seed.wrapping_mul(0x1234_5678_9abc_def1), 60, 2, 1);
    }
}
