//! Every bookkeeping rule broken on purpose: a typed error naming the offending tx/outpoint, and the set
//! byte-for-byte unchanged. Plus a property test over random chains with invalid blocks injected.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_possible_truncation
)]

mod common;

use bitcoin::{Amount, Block, Network, OutPoint, ScriptBuf, TxOut};
use common::{block, coinbase, coinbase_chain, spend};
use proptest::prelude::*;
use utxo_core::{ApplyError, ChainParams, PreparedBlock, SetOptions, UtxoSet};

const COIN: u64 = 100_000_000;

fn set_with(params: ChainParams) -> UtxoSet {
    UtxoSet::with_options(SetOptions {
        params,
        ..SetOptions::default()
    })
}

/// A set holding a regtest-like chain of `n` coinbase-only blocks.
fn chain(n: u32) -> (UtxoSet, Vec<Block>) {
    let blocks = coinbase_chain(n);
    let set = set_with(ChainParams::for_network(Network::Regtest));
    for (h, b) in blocks.iter().enumerate() {
        set.apply_block(b, h as u32).unwrap();
    }
    (set, blocks)
}

fn cb_out(blocks: &[Block], height: usize) -> OutPoint {
    OutPoint {
        txid: blocks[height].txdata[0].compute_txid(),
        vout: 0,
    }
}

/// Everything observable about a set.
fn snapshot(set: &UtxoSet) -> impl PartialEq + std::fmt::Debug + use<> {
    (set.sorted_coins(), set.stats(), set.best_block())
}

/// Applies `b` at the next height, expects `err`, and checks the set did not change.
fn rejects(set: &UtxoSet, b: &Block, err: ApplyError) {
    let before = snapshot(set);
    let height = set.best_block().unwrap().1 + 1;
    assert_eq!(set.apply_block(b, height), Err(err));
    assert_eq!(snapshot(set), before, "set changed by a rejected block");
}

fn next(set: &UtxoSet, txs: Vec<bitcoin::Transaction>) -> Block {
    let (tip, height) = set.best_block().unwrap();
    let mut all = vec![coinbase(height + 1, 50 * COIN)];
    all.extend(txs);
    block(tip, all)
}

#[test]
fn missing_input() {
    let (set, _) = chain(101);
    let ghost = OutPoint {
        txid: bitcoin::Txid::from_byte_array([9; 32]),
        vout: 3,
    };
    let tx = spend(&[ghost], &[1], 1);
    let txid = tx.compute_txid();
    let b = next(&set, vec![tx]);
    rejects(
        &set,
        &b,
        ApplyError::MissingInput {
            txid,
            outpoint: ghost,
        },
    );
}

use bitcoin::hashes::Hash as _;

#[test]
fn double_spend_within_a_block_and_across_blocks() {
    let (set, blocks) = chain(102);
    let coin = cb_out(&blocks, 1);
    let first = spend(&[coin], &[COIN], 1);
    let second = spend(&[coin], &[2 * COIN], 2);
    let second_id = second.compute_txid();
    let b = next(&set, vec![first.clone(), second]);
    rejects(
        &set,
        &b,
        ApplyError::DoubleSpend {
            txid: second_id,
            outpoint: coin,
        },
    );
    // The same input twice in one transaction.
    let dup = spend(&[coin, coin], &[COIN], 3);
    let dup_id = dup.compute_txid();
    rejects(
        &set,
        &next(&set, vec![dup]),
        ApplyError::DoubleSpend {
            txid: dup_id,
            outpoint: coin,
        },
    );
    // Spent in one block, spent again in the next: missing.
    let b = next(&set, vec![first]);
    set.apply_block(&b, 103).unwrap();
    let again = spend(&[coin], &[COIN], 4);
    let again_id = again.compute_txid();
    rejects(
        &set,
        &next(&set, vec![again]),
        ApplyError::MissingInput {
            txid: again_id,
            outpoint: coin,
        },
    );
}

#[test]
fn coinbase_maturity_is_100_blocks() {
    let (set, blocks) = chain(100);
    // At height 101 the coinbase of height 1 has 100 confirmations (101 - 1 = 100): allowed.
    // The coinbase of height 2 is immature.
    let young = cb_out(&blocks, 2);
    let tx = spend(&[young], &[COIN], 1);
    let txid = tx.compute_txid();
    rejects(
        &set,
        &next(&set, vec![tx]),
        ApplyError::ImmatureCoinbaseSpend {
            txid,
            outpoint: young,
            coin_height: 2,
            spend_height: 101,
        },
    );
    let mature = spend(&[cb_out(&blocks, 1)], &[COIN], 2);
    let b = next(&set, vec![mature]);
    set.apply_block(&b, 101).unwrap();
}

#[test]
fn value_rules_outputs_above_inputs_max_money_and_coinbase_claims() {
    // Past regtest's first halving (150), so the subsidy is 25 BTC.
    let (set, blocks) = chain(149);
    let coin = cb_out(&blocks, 1);
    let over = spend(&[coin], &[50 * COIN + 1], 1);
    let txid = over.compute_txid();
    rejects(
        &set,
        &next(&set, vec![over]),
        ApplyError::OutputsExceedInputs {
            txid,
            inputs: Amount::from_sat(50 * COIN),
            outputs: Amount::from_sat(50 * COIN + 1),
        },
    );
    let huge = spend(&[coin], &[21_000_000 * COIN + 1], 2);
    let txid = huge.compute_txid();
    rejects(
        &set,
        &next(&set, vec![huge]),
        ApplyError::ValueOutOfRange { txid },
    );
    // Two outputs each within range but summing past MAX_MONEY.
    let sum = spend(&[coin], &[21_000_000 * COIN, 1], 3);
    let txid = sum.compute_txid();
    rejects(
        &set,
        &next(&set, vec![sum]),
        ApplyError::ValueOutOfRange { txid },
    );
    // A coinbase may claim subsidy + fees, not a satoshi more.
    let (tip, h) = set.best_block().unwrap();
    let fee_tx = spend(&[coin], &[49 * COIN], 4);
    let greedy = coinbase(h + 1, 25 * COIN + COIN + 1);
    let greedy_id = greedy.compute_txid();
    rejects(
        &set,
        &block(tip, vec![greedy, fee_tx.clone()]),
        ApplyError::CoinbaseTooLarge {
            txid: greedy_id,
            claimed: Amount::from_sat(26 * COIN + 1),
            allowed: Amount::from_sat(26 * COIN),
        },
    );
    set.apply_block(&block(tip, vec![coinbase(h + 1, 26 * COIN), fee_tx]), h + 1)
        .unwrap();
}

#[test]
fn bip30_forbids_overwriting_unspent_outputs_except_the_listed_blocks() {
    let (set, blocks) = chain(3);
    // A block whose coinbase is byte-identical to height 2's (same txid, output still unspent).
    let (tip, h) = set.best_block().unwrap();
    let dup = blocks[2].txdata[0].clone();
    let txid = dup.compute_txid();
    let b = block(tip, vec![dup.clone()]);
    rejects(
        &set,
        &b,
        ApplyError::Bip30Overwrite {
            txid,
            outpoint: OutPoint { txid, vout: 0 },
        },
    );

    // The same block is accepted where the parameters list it as a historic exception: the coin is
    // replaced in place (one coin, new height), as in Core.
    let mut params = ChainParams::for_network(Network::Regtest);
    params.bip30_exceptions.push((h + 1, b.block_hash()));
    let lenient = set_with(params);
    for (height, blk) in blocks.iter().enumerate() {
        lenient.apply_block(blk, height as u32).unwrap();
    }
    let before = lenient.len();
    let undo = lenient.apply_block(&b, h + 1).unwrap();
    assert_eq!(lenient.len(), before);
    assert_eq!(
        lenient.get(&OutPoint { txid, vout: 0 }).unwrap().height,
        h + 1
    );
    lenient.disconnect_block(&b, h + 1, &undo).unwrap();
    assert_eq!(
        lenient.len(),
        before - 1,
        "Core loses the overwritten coin on disconnect too"
    );
}

#[test]
fn unspendable_outputs_never_enter_not_even_for_a_same_block_spend() {
    let (set, blocks) = chain(101);
    let mut tx = spend(&[cb_out(&blocks, 1)], &[COIN, COIN], 1);
    tx.output[0].script_pubkey = ScriptBuf::from_bytes(vec![0x6a, 0x01, 0x02]);
    tx.output.push(TxOut {
        value: Amount::ZERO,
        script_pubkey: ScriptBuf::new(),
    });
    tx.output.push(TxOut {
        value: Amount::ZERO,
        script_pubkey: ScriptBuf::from_bytes(vec![0x51; 10_001]),
    });
    let txid = tx.compute_txid();
    let burn = OutPoint { txid, vout: 0 };
    let child = spend(&[burn], &[1], 2);
    let child_id = child.compute_txid();
    rejects(
        &set,
        &next(&set, vec![tx.clone(), child]),
        ApplyError::MissingInput {
            txid: child_id,
            outpoint: burn,
        },
    );
    let before = set.len();
    set.apply_block(&next(&set, vec![tx]), 102).unwrap();
    // -1 spent, +1 change, +1 empty-script zero-value output (enters), OP_RETURN and oversized do not.
    assert_eq!(set.len(), before + 1 + 1);
    assert!(
        set.contains(&OutPoint { txid, vout: 2 }),
        "empty script, zero value enters"
    );
    assert!(!set.contains(&burn));
    assert!(!set.contains(&OutPoint { txid, vout: 3 }));
}

#[test]
fn child_after_parent_in_one_block_works_child_before_parent_does_not() {
    let (set, blocks) = chain(101);
    let parent = spend(&[cb_out(&blocks, 1)], &[40 * COIN], 1);
    let p_out = OutPoint {
        txid: parent.compute_txid(),
        vout: 0,
    };
    let child = spend(&[p_out], &[39 * COIN], 2);
    let child_id = child.compute_txid();
    rejects(
        &set,
        &next(&set, vec![child.clone(), parent.clone()]),
        ApplyError::MissingInput {
            txid: child_id,
            outpoint: p_out,
        },
    );
    let before = snapshot(&set);
    let b = next(&set, vec![parent, child]);
    let undo = set.apply_block(&b, 102).unwrap();
    assert!(!set.contains(&p_out));
    assert!(set.contains(&OutPoint {
        txid: child_id,
        vout: 0
    }));
    set.disconnect_block(&b, 102, &undo).unwrap();
    assert_eq!(snapshot(&set), before);
}

#[test]
fn structure_rules() {
    let (set, blocks) = chain(101);
    let (tip, h) = set.best_block().unwrap();
    let mut empty = block(tip, vec![coinbase(h + 1, COIN)]);
    empty.txdata.clear();
    let hash = empty.block_hash();
    rejects(&set, &empty, ApplyError::NoTransactions { block: hash });
    let tx = spend(&[cb_out(&blocks, 1)], &[COIN], 1);
    let b = block(tip, vec![tx.clone()]);
    rejects(
        &set,
        &b,
        ApplyError::FirstTxNotCoinbase {
            block: b.block_hash(),
            txid: tx.compute_txid(),
        },
    );
    let extra = coinbase(h + 7, COIN);
    let b = block(tip, vec![coinbase(h + 1, COIN), extra.clone()]);
    rejects(
        &set,
        &b,
        ApplyError::ExtraCoinbase {
            block: b.block_hash(),
            txid: extra.compute_txid(),
        },
    );
    // Not on the tip.
    let stale = block(blocks[50].block_hash(), vec![coinbase(51, COIN)]);
    let before = snapshot(&set);
    assert!(matches!(
        set.apply_block(&stale, 51),
        Err(ApplyError::DoesNotExtendTip { .. })
    ));
    assert!(matches!(
        set.apply_block(&next(&set, vec![]), h + 5),
        Err(ApplyError::DoesNotExtendTip { .. })
    ));
    assert_eq!(snapshot(&set), before);
}

#[test]
fn genesis_coinbase_is_never_added() {
    let set = set_with(ChainParams::for_network(Network::Regtest));
    let genesis = bitcoin::constants::genesis_block(Network::Regtest);
    set.apply_block(&genesis, 0).unwrap();
    assert!(set.is_empty());
    assert!(!set.contains(&OutPoint {
        txid: genesis.txdata[0].compute_txid(),
        vout: 0
    }));
}

/// Txids computed beforehand give the same undo, changes and set as `apply_block`; a wrong count
/// is refused and, in debug builds, so is a wrong txid, the set unchanged either way.
#[test]
fn precomputed_txids_apply_like_apply_block_and_are_checked() {
    let (plain, blocks) = chain(101);
    let (given, _) = chain(101);
    // The third transaction spends an output the first creates (an in-block undo coin).
    let parent = spend(&[cb_out(&blocks, 1)], &[COIN, 2 * COIN], 1);
    let child = spend(
        &[OutPoint {
            txid: parent.compute_txid(),
            vout: 1,
        }],
        &[COIN],
        3,
    );
    let b = next(
        &plain,
        vec![parent, spend(&[cb_out(&blocks, 2)], &[3 * COIN], 2), child],
    );
    let h = plain.best_block().unwrap().1 + 1;
    let txids = utxo_core::block_txids(&b);
    let expected: Vec<_> = b.txdata.iter().map(|tx| tx.compute_txid()).collect();
    assert_eq!(txids, expected);
    let before = snapshot(&given);
    assert_eq!(
        given.connect_block_with_txids(&b, &txids[1..], h),
        Err(ApplyError::TxidCount {
            block: b.block_hash(),
            txids: 3,
            transactions: 4,
        })
    );
    assert_eq!(snapshot(&given), before);
    if cfg!(debug_assertions) {
        let mut wrong = txids.clone();
        wrong.swap(1, 2);
        assert_eq!(
            given.apply_block_with_txids(&b, &wrong, h),
            Err(ApplyError::TxidMismatch {
                block: b.block_hash(),
                index: 1,
                given: txids[2],
                computed: txids[1],
            })
        );
        assert_eq!(snapshot(&given), before);
    }
    let connected = plain.connect_block(&b, h).unwrap();
    assert_eq!(
        given.connect_block_with_txids(&b, &txids, h),
        Ok(connected.clone())
    );
    assert_eq!(snapshot(&given), snapshot(&plain));
    given.disconnect_block(&b, h, &connected.undo).unwrap();
    assert_eq!(snapshot(&given), before);
    // apply_block moves the old coins into the undo data instead of cloning them: same undo.
    assert_eq!(given.apply_block(&b, h), Ok(connected.undo.clone()));
    given.disconnect_block(&b, h, &connected.undo).unwrap();
    assert_eq!(
        given.apply_block_with_txids(&b, &txids, h),
        Ok(connected.undo)
    );
    assert_eq!(snapshot(&given), snapshot(&plain));
}

/// A `PreparedBlock` applies exactly like the plain block: same undo, changes and coins, and a
/// block that breaks a rule is refused with the same error, the set unchanged.
#[test]
fn prepared_blocks_apply_like_plain_blocks() {
    let (plain, blocks) = chain(101);
    let (prepared_set, _) = chain(101);
    let good = next(
        &plain,
        vec![
            spend(&[cb_out(&blocks, 1)], &[COIN, 2 * COIN], 1),
            spend(&[cb_out(&blocks, 2)], &[3 * COIN], 2),
        ],
    );
    let h = plain.best_block().unwrap().1 + 1;
    // Spending the same coin twice in one block.
    let double = next(
        &plain,
        vec![
            spend(&[cb_out(&blocks, 3)], &[COIN], 3),
            spend(&[cb_out(&blocks, 3)], &[COIN], 4),
        ],
    );
    let before = snapshot(&prepared_set);
    let bad = PreparedBlock::new(double.clone());
    assert_eq!(bad.txids(), utxo_core::block_txids(&double));
    assert_eq!(
        prepared_set.apply_prepared(&bad, h),
        Err(plain.apply_block(&double, h).unwrap_err())
    );
    assert_eq!(snapshot(&prepared_set), before);
    let connected = plain.connect_block(&good, h).unwrap();
    let prepared = PreparedBlock::from(good.clone());
    assert_eq!(
        prepared_set.connect_prepared(&prepared, h),
        Ok(connected.clone())
    );
    assert_eq!(snapshot(&prepared_set), snapshot(&plain));
    // Disconnecting with the prepared txids gives the plain disconnect's changes.
    let plain_changes = plain.disconnect_block(&good, h, &connected.undo).unwrap();
    assert_eq!(
        prepared_set.disconnect_prepared(&prepared, h, &connected.undo),
        Ok(plain_changes)
    );
    assert_eq!(snapshot(&prepared_set), before);
    assert_eq!(snapshot(&plain), before);
    plain.apply_block(&good, h).unwrap();
    assert_eq!(
        prepared_set.disconnect_prepared(&prepared, h, &connected.undo),
        Err(utxo_core::DisconnectError::NotTip {
            block: good.block_hash(),
            tip: prepared_set.best_block().unwrap().0,
        })
    );
    assert_eq!(
        prepared_set.apply_prepared(&prepared, h),
        Ok(connected.undo)
    );
    assert_eq!(snapshot(&prepared_set), snapshot(&plain));
    assert_eq!(prepared.into_block(), good);
}

/// One step of a random chain: spend some coins of the model pool, possibly breaking a rule.
#[derive(Debug, Clone)]
struct Step {
    spends: Vec<(usize, u8)>,
    corruption: Option<u8>,
}

fn step() -> impl Strategy<Value = Step> {
    (
        proptest::collection::vec((any::<usize>(), 1u8..4), 0..6),
        proptest::option::weighted(0.3, 0u8..4),
    )
        .prop_map(|(spends, corruption)| Step { spends, corruption })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Random valid chains with invalid blocks injected: every rejection leaves MuHash, count and
    /// coins as they were; disconnecting everything returns to the start.
    #[test]
    fn random_chains_with_invalid_blocks(steps in proptest::collection::vec(step(), 1..12)) {
        let (set, blocks) = chain(130);
        let start = snapshot(&set);
        // Spendable pool: mature coinbases 1..=k and everything created later.
        let mut pool: Vec<(OutPoint, u64)> = (1..=20).map(|h| (cb_out(&blocks, h), 50 * COIN)).collect();
        let mut applied = Vec::new();
        for (i, s) in steps.iter().enumerate() {
            let (tip, h) = set.best_block().unwrap();
            let mut txs = Vec::new();
            let mut created = Vec::new();
            for (j, (pick, outs)) in s.spends.iter().enumerate() {
                if pool.is_empty() { break; }
                let (op, value) = pool.swap_remove(pick % pool.len());
                let each = value / u64::from(*outs) - 1;
                let tx = spend(&[op], &vec![each; usize::from(*outs)], (i * 100 + j) as u32);
                let txid = tx.compute_txid();
                for v in 0..u32::from(*outs) { created.push((OutPoint { txid, vout: v }, each)); }
                txs.push(tx);
            }
            let mut all = vec![coinbase(h + 1, COIN)];
            all.extend(txs.clone());
            if let Some(kind) = s.corruption {
                let mut bad = all.clone();
                match kind {
                    0 => bad.push(spend(&[OutPoint { txid: bitcoin::Txid::from_byte_array([7; 32]), vout: 0 }], &[1], 9)),
                    1 => bad.push(spend(&[cb_out(&blocks, 120)], &[1], 9)),
                    2 => bad.push(spend(&[cb_out(&blocks, 30)], &[51 * COIN], 9)),
                    _ => { let x = spend(&[cb_out(&blocks, 31)], &[1], 9); bad.push(x.clone()); bad.push(spend(&[cb_out(&blocks, 31)], &[2], 10)); }
                }
                let before = snapshot(&set);
                prop_assert!(set.apply_block(&block(tip, bad), h + 1).is_err());
                prop_assert_eq!(snapshot(&set), before);
            }
            let good = block(tip, all);
            let undo = set.apply_block(&good, h + 1).unwrap();
            applied.push((good, h + 1, undo));
            // New outputs become spendable later; the coinbase is immature.
            pool.extend(created);
        }
        for (b, h, undo) in applied.iter().rev() {
            set.disconnect_block(b, *h, undo).unwrap();
        }
        prop_assert_eq!(snapshot(&set), start);
    }
}
