//! The multi-threaded block application path (`SetOptions::threads`) gives exactly the results of the
//! single-threaded one, for valid and invalid blocks.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_possible_truncation
)]

mod common;

use bitcoin::{Network, OutPoint};
use common::{block, coinbase, coinbase_chain, spend};
use utxo_core::{ApplyError, ChainParams, PARALLEL_MIN_TXS, SetOptions, UtxoSet};

fn set(threads: usize) -> UtxoSet {
    UtxoSet::with_options(SetOptions {
        // Mainnet subsidy schedule: the coinbase-only chain pays 50 BTC past regtest's halving.
        params: ChainParams::for_network(Network::Bitcoin),
        threads,
        ..SetOptions::default()
    })
}

#[test]
fn two_threads_agree_with_one_on_large_blocks() {
    let n = PARALLEL_MIN_TXS + 44;
    let blocks = coinbase_chain(n as u32 + 100);
    let (one, two) = (set(1), set(2));
    for (h, b) in blocks.iter().enumerate() {
        one.apply_block(b, h as u32).unwrap();
        two.apply_block(b, h as u32).unwrap();
    }
    let tip = blocks.last().unwrap().block_hash();
    let height = blocks.len() as u32;
    // n transactions, each spending one mature coinbase; the second half also spends a parent from
    // the first half (in-block chains cross thread chunks).
    let mut txs = vec![coinbase(height, 50 * 100_000_000)];
    for i in 0..n {
        let cb = OutPoint {
            txid: blocks[i + 1].txdata[0].compute_txid(),
            vout: 0,
        };
        txs.push(spend(
            &[cb],
            &[20 * 100_000_000, 20 * 100_000_000],
            i as u32,
        ));
    }
    for i in 0..n / 2 {
        let parent = OutPoint {
            txid: txs[i + 1].compute_txid(),
            vout: 1,
        };
        txs.push(spend(&[parent], &[100_000_000], (n + i) as u32));
    }
    let good = block(tip, txs.clone());

    // An invalid variant: the last transaction double-spends the first coinbase spend's input.
    let mut bad_txs = txs;
    let first_input = bad_txs[1].input[0].previous_output;
    let thief = spend(&[first_input], &[1], 999_999);
    let thief_id = thief.compute_txid();
    bad_txs.push(thief);
    let bad = block(tip, bad_txs);
    for s in [&one, &two] {
        let before = (s.sorted_coins(), s.stats());
        assert_eq!(
            s.apply_block(&bad, height),
            Err(ApplyError::DoubleSpend {
                txid: thief_id,
                outpoint: first_input
            })
        );
        assert_eq!((s.sorted_coins(), s.stats()), before);
    }

    let a = one.connect_block(&good, height).unwrap();
    let b = two.connect_block(&good, height).unwrap();
    assert_eq!(a, b);
    assert_eq!(one.sorted_coins(), two.sorted_coins());
    assert_eq!(one.stats(), two.stats());
    two.disconnect_block(&good, height, &b.undo).unwrap();
    one.disconnect_block(&good, height, &a.undo).unwrap();
    assert_eq!(one.sorted_coins(), two.sorted_coins());
}
