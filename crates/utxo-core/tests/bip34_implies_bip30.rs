//! BIP30's lookups are skipped where Core skips them: on a chain holding BIP34's block, below
//! `BIP34_IMPLIES_BIP30_LIMIT`. Everywhere else (and whenever that block is unknown) they apply,
//! and skipping them never changes the result of a valid chain.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_possible_truncation
)]

mod common;

use bitcoin::hashes::Hash;
use bitcoin::{Network, OutPoint};
use common::{block, coinbase, coinbase_chain, regtest_blocks};
use utxo_core::{ApplyError, BIP34_IMPLIES_BIP30_LIMIT, ChainParams, Coin, SetOptions, UtxoSet};

fn set_with(params: ChainParams) -> UtxoSet {
    UtxoSet::with_options(SetOptions {
        params,
        ..SetOptions::default()
    })
}

/// Regtest parameters with BIP34's block at `height` with `hash`.
fn with_bip34(height: u32, hash: bitcoin::BlockHash) -> ChainParams {
    let mut params = ChainParams::for_network(Network::Regtest);
    params.bip34 = Some((height, hash));
    params
}

#[test]
fn the_bip34_block_is_recorded_when_connected_and_forgotten_when_disconnected() {
    let blocks = coinbase_chain(4);
    let set = set_with(with_bip34(2, blocks[2].block_hash()));
    let mut undos = Vec::new();
    for (h, b) in blocks.iter().enumerate() {
        undos.push(set.apply_block(b, h as u32).unwrap());
        let expected = (h >= 2).then(|| blocks[2].block_hash());
        assert_eq!(set.bip34_block(), expected, "after connecting height {h}");
    }
    set.disconnect_block(&blocks[4], 4, &undos[4]).unwrap();
    set.disconnect_block(&blocks[3], 3, &undos[3]).unwrap();
    assert_eq!(set.bip34_block(), Some(blocks[2].block_hash()));
    set.disconnect_block(&blocks[2], 2, &undos[2]).unwrap();
    assert_eq!(set.bip34_block(), None);
    // Another block at that height is recorded as it is; it does not switch the check off.
    set.apply_block(&blocks[2], 2).unwrap();
    assert_eq!(set.bip34_block(), Some(blocks[2].block_hash()));
}

#[test]
fn a_repeated_coinbase_is_rejected_unless_the_chain_holds_bip34s_block() {
    let blocks = coinbase_chain(3);
    let dup = blocks[2].txdata[0].clone();
    let txid = dup.compute_txid();
    let outpoint = OutPoint { txid, vout: 0 };
    let b = block(blocks[3].block_hash(), vec![dup]);
    let overwrite = Err(ApplyError::Bip30Overwrite { txid, outpoint });

    // BIP34's block is another block at height 1: checked.
    let other = set_with(with_bip34(1, blocks[2].block_hash()));
    for (h, blk) in blocks.iter().enumerate() {
        other.apply_block(blk, h as u32).unwrap();
    }
    assert_eq!(other.apply_block(&b, 4), overwrite);

    // The chain holds BIP34's block: as in Core, the repeated coinbase is not looked for and its
    // output is written over the old one (which a BIP34 chain cannot produce below the limit).
    let skipping = set_with(with_bip34(1, blocks[1].block_hash()));
    for (h, blk) in blocks.iter().enumerate() {
        skipping.apply_block(blk, h as u32).unwrap();
    }
    let len = skipping.len();
    skipping.apply_block(&b, 4).unwrap();
    assert_eq!(skipping.len(), len);
    assert_eq!(skipping.get(&outpoint).unwrap().height, 4);
}

#[test]
fn bip30_applies_from_the_limit_on_and_wherever_bip34s_block_is_unknown() {
    // A set loaded past BIP34's block, with an unspent coin at the outpoint a block's coinbase
    // creates again: (height, whether the set is told its BIP34 block, whether BIP30 rejects).
    for (height, told, rejected) in [
        (BIP34_IMPLIES_BIP30_LIMIT - 1, true, false),
        (BIP34_IMPLIES_BIP30_LIMIT, true, true),
        (BIP34_IMPLIES_BIP30_LIMIT - 1, false, true),
    ] {
        let bip34 = coinbase_chain(1)[1].block_hash();
        let set = set_with(with_bip34(1, bip34));
        if told {
            set.set_bip34_block(Some(bip34));
        }
        let cb = coinbase(height, 0);
        let txid = cb.compute_txid();
        let outpoint = OutPoint { txid, vout: 0 };
        set.insert(
            outpoint,
            Coin {
                amount: bitcoin::Amount::ZERO,
                height: 7,
                is_coinbase: true,
                script_pubkey: cb.output[0].script_pubkey.clone(),
            },
        );
        let tip = bitcoin::BlockHash::from_byte_array([7; 32]);
        set.set_best_block(Some((tip, height - 1)));
        let result = set.apply_block(&block(tip, vec![cb]), height);
        if rejected {
            assert_eq!(
                result,
                Err(ApplyError::Bip30Overwrite { txid, outpoint }),
                "height {height}, told {told}"
            );
        } else {
            result.unwrap();
            assert_eq!(set.get(&outpoint).unwrap().height, height);
        }
    }
}

#[test]
fn skipping_bip30_on_core_s_regtest_chain_changes_nothing() {
    let blocks = regtest_blocks();
    let checking = set_with(ChainParams::for_network(Network::Regtest));
    // BIP34's block at height 1 of this very chain: every later block skips the lookups.
    let skipping = set_with(with_bip34(1, blocks[1].block_hash()));
    for (h, b) in blocks.iter().enumerate() {
        let a = checking.connect_block(b, h as u32).unwrap();
        let s = skipping.connect_block(b, h as u32).unwrap();
        assert_eq!(a, s, "undo data and changes at height {h}");
        assert_eq!(
            checking.stats(),
            skipping.stats(),
            "statistics at height {h}"
        );
    }
    assert_eq!(checking.sorted_coins(), skipping.sorted_coins());
    assert_eq!(skipping.bip34_block(), Some(blocks[1].block_hash()));
}
