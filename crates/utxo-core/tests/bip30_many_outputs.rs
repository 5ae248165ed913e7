//! A BIP30 exception block re-creating a 70-output coinbase (two output groups) whose
//! outputs were partly spent (last, first, middle): every output at the new height, statistics
//! as from scratch; disconnecting it drops them all (as Core does); reconnecting brings them back.
#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)]

mod common;

use std::collections::BTreeMap;

use bitcoin::hashes::Hash;
use bitcoin::{Amount, Block, Network, OutPoint, ScriptBuf, TxOut};
use common::{block, coinbase, spend};
use utxo_core::{ChainParams, Coin, SetOptions, UtxoSet, UtxoStats, is_unspendable};

fn stats_of(model: &BTreeMap<(Vec<u8>, u32), (OutPoint, Coin)>) -> UtxoStats {
    let mut stats = UtxoStats::new(true);
    let mut buf = Vec::new();
    for (o, c) in model.values() {
        stats.add_coin(o, c, &mut buf);
    }
    stats
}

#[test]
fn bip30_overwrite_of_a_partly_spent_many_output_coinbase() {
    let g = "0479be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798\
             483ada7726a3c4655da4fbfc0e1108a8fd17b448a68554199c47d08ffb10d4b8";
    let g: Vec<u8> = (0..65)
        .map(|i| u8::from_str_radix(&g[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    let script = |v: u8| -> ScriptBuf {
        ScriptBuf::from_bytes(match v % 7 {
            0 => [&[0x76, 0xa9, 0x14][..], &[v; 20], &[0x88, 0xac]].concat(),
            1 => [&[0xa9, 0x14][..], &[v; 20], &[0x87]].concat(),
            2 => [&[0x21, 0x02][..], &[v; 32], &[0xac]].concat(),
            3 => [&[0x41][..], &g, &[0xac]].concat(),
            4 => Vec::new(),
            5 => vec![v; 122],
            _ => vec![0x6a, v], // Unspendable: never enters.
        })
    };
    let mut blocks = vec![bitcoin::constants::genesis_block(Network::Regtest)];
    let mut big = coinbase(2, 0);
    big.output = (0..70u8)
        .map(|v| TxOut {
            value: Amount::from_sat(if v == 0 { 0 } else { 70_000_000 }),
            script_pubkey: script(v),
        })
        .collect();
    for height in 1..=103u32 {
        let prev = blocks.last().unwrap().block_hash();
        let mut txs = vec![if height == 2 {
            big.clone()
        } else {
            coinbase(height, 50 * 100_000_000)
        }];
        if height == 103 {
            let x = big.compute_txid();
            let ins: Vec<OutPoint> = [68, 0, 35, 64, 63]
                .iter()
                .map(|&v| OutPoint { txid: x, vout: v })
                .collect();
            txs.push(spend(&ins, &[1_000], 1));
        }
        blocks.push(block(prev, txs));
    }
    let exception = block(blocks[103].block_hash(), vec![big.clone()]);
    let mut params = ChainParams::for_network(Network::Regtest);
    params.bip30_exceptions.push((104, exception.block_hash()));
    let set = UtxoSet::with_options(SetOptions {
        params,
        shards: 2,
        ..SetOptions::default()
    });
    let mut model = BTreeMap::new();
    let apply = |set: &UtxoSet, model: &mut BTreeMap<_, _>, b: &Block, h: u32| {
        let undo = set.apply_block(b, h).unwrap();
        if h > 0 {
            for (i, t) in b.txdata.iter().enumerate() {
                for input in t.input.iter().filter(|_| i > 0) {
                    let o = input.previous_output;
                    model
                        .remove(&(o.txid.to_byte_array().to_vec(), o.vout))
                        .unwrap();
                }
                let txid = t.compute_txid();
                for (v, out) in t
                    .output
                    .iter()
                    .enumerate()
                    .filter(|(_, o)| !is_unspendable(&o.script_pubkey))
                {
                    let o = OutPoint {
                        txid,
                        vout: v as u32,
                    };
                    model.insert(
                        (txid.to_byte_array().to_vec(), v as u32),
                        (o, Coin::from_txout(out, h, i == 0)),
                    );
                }
            }
        }
        undo
    };
    for (h, b) in blocks.iter().enumerate() {
        apply(&set, &mut model, b, h as u32);
    }
    let check = |set: &UtxoSet, model: &BTreeMap<(Vec<u8>, u32), (OutPoint, Coin)>| {
        let expected: Vec<(OutPoint, Coin)> = model.values().cloned().collect();
        assert_eq!(set.sorted_coins(), expected);
        assert_eq!(set.len(), model.len());
        assert_eq!(set.stats(), stats_of(model));
    };
    check(&set, &model);
    let before_exception = model.clone();
    let undo = apply(&set, &mut model, &exception, 104);
    check(&set, &model);
    let x = big.compute_txid();
    assert_eq!(
        set.get(&OutPoint { txid: x, vout: 68 }).unwrap().height,
        104
    );
    assert_eq!(set.get(&OutPoint { txid: x, vout: 1 }).unwrap().height, 104);
    // Disconnecting drops every output of the re-created coinbase.
    set.disconnect_block(&exception, 104, &undo).unwrap();
    let mut dropped = before_exception.clone();
    dropped.retain(|_, (o, _)| o.txid != x);
    check(&set, &dropped);
    // And connecting it again re-creates all of them.
    let mut again = dropped.clone();
    apply(&set, &mut again, &exception, 104);
    check(&set, &again);
    assert_eq!(again, model);
}
