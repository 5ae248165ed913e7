//! Readers on other threads never miss (or misread) a coin the writer does not touch,
//! while blocks cut its siblings out of their shared record, move records out of evacuated
//! chunks, and fail half-way.
#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)]

mod common;

use std::sync::atomic::{AtomicBool, Ordering};

use bitcoin::hashes::Hash;
use bitcoin::{Amount, BlockHash, Network, OutPoint, ScriptBuf, Txid};
use common::{block, coinbase, spend};
use utxo_core::{ChainParams, Coin, SetOptions, UtxoSet};

#[test]
fn readers_see_untouched_siblings_throughout_commits() {
    for threads in [1, 2] {
        let set = UtxoSet::with_options(SetOptions {
            params: ChainParams::for_network(Network::Regtest),
            shards: 2,
            threads,
            ..SetOptions::default()
        });
        // 300 transactions of 64 outputs: even vouts are watched, odd ones get spent.
        let coin = |t: u32, v: u32| Coin {
            amount: Amount::from_sat(1_000 + u64::from(v)),
            height: 1,
            is_coinbase: false,
            script_pubkey: ScriptBuf::from_bytes(vec![(t % 200) as u8 + 1; 1 + (v as usize % 40)]),
        };
        let txid = |t: u32| {
            let mut b = [0u8; 32];
            b[..4].copy_from_slice(&t.to_le_bytes());
            b[31] = 0x77;
            Txid::from_byte_array(b)
        };
        for t in 0..300 {
            for v in 0..64 {
                set.insert(
                    OutPoint {
                        txid: txid(t),
                        vout: v,
                    },
                    coin(t, v),
                );
            }
        }
        set.set_best_block(Some((BlockHash::from_byte_array([1; 32]), 1)));
        let done = AtomicBool::new(false);
        std::thread::scope(|scope| {
            for r in 0..3u32 {
                let (set, done) = (&set, &done);
                scope.spawn(move || {
                    let mut i = r;
                    while !done.load(Ordering::Relaxed) {
                        let (t, v) = (i % 300, 2 * ((i / 300) % 32));
                        let op = OutPoint {
                            txid: txid(t),
                            vout: v,
                        };
                        assert_eq!(set.get(&op), Some(coin(t, v)), "watched {t}:{v}");
                        i = i.wrapping_add(7);
                    }
                });
            }
            // Spend the odd vouts in a scrambled order, with a failed block
            // (a double spend at its end) before every other block.
            let mut odd: Vec<(u32, u32)> = (0..300)
                .flat_map(|t| (0..32).map(move |k| (t, 2 * k + 1)))
                .collect();
            let mut x = 12_345u64;
            for i in (1..odd.len()).rev() {
                x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                odd.swap(i, (x >> 33) as usize % (i + 1));
            }
            // Blocks of 300 spends with two threads: the parallel apply and commit paths.
            let per_block = if threads == 1 { 40 } else { 300 };
            for (n, batch) in odd.chunks(per_block).enumerate() {
                let (tip, h) = set.best_block().unwrap();
                let mut txs = vec![coinbase(h + 1, 0)];
                for (j, &(t, v)) in batch.iter().enumerate() {
                    txs.push(spend(
                        &[OutPoint {
                            txid: txid(t),
                            vout: v,
                        }],
                        &[500],
                        (n * 100 + j) as u32,
                    ));
                }
                if n % 2 == 0 {
                    let mut bad = txs.clone();
                    bad.push(spend(&[bad[1].input[0].previous_output], &[1], 99_999));
                    assert!(set.apply_block(&block(tip, bad), h + 1).is_err());
                }
                set.apply_block(&block(tip, txs), h + 1).unwrap();
            }
            done.store(true, Ordering::Relaxed);
        });
        for t in 0..300 {
            for k in 0..32 {
                assert_eq!(
                    set.get(&OutPoint {
                        txid: txid(t),
                        vout: 2 * k
                    }),
                    Some(coin(t, 2 * k))
                );
                assert_eq!(
                    set.get(&OutPoint {
                        txid: txid(t),
                        vout: 2 * k + 1
                    }),
                    None
                );
            }
        }
    }
}
