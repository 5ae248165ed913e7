//! Replays the regtest chain Bitcoin Core v30.0 produced and checks every `gettxoutsetinfo` field
//! Core reported at heights 100 and 200 (`testdata/regtest/chain-a`), then disconnects back and
//! checks the figures again.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_possible_truncation
)]

mod common;

use bitcoin::Network;
use common::{regtest_blocks, testdata};
use utxo_core::{ChainParams, SetOptions, UtxoSet, format_btc, hash_serialized_3};

struct Expected {
    bestblock: String,
    txouts: u64,
    bogosize: u64,
    total_amount: String,
    muhash: String,
    hash_serialized_3: String,
}

fn expected(height: u32) -> Expected {
    let text =
        std::fs::read_to_string(testdata().join("regtest/chain-a/core-utxo-stats.json")).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let at = &json["heights"][height.to_string()];
    let m = &at["muhash"];
    let h = &at["hash_serialized_3"];
    assert_eq!(m["txouts"], h["txouts"], "Core's two calls agree");
    Expected {
        bestblock: m["bestblock"].as_str().unwrap().into(),
        txouts: m["txouts"].as_u64().unwrap(),
        bogosize: m["bogosize"].as_u64().unwrap(),
        total_amount: m["total_amount"].as_str().unwrap().into(),
        muhash: m["muhash"].as_str().unwrap().into(),
        hash_serialized_3: h["hash_serialized_3"].as_str().unwrap().into(),
    }
}

fn check(set: &UtxoSet, height: u32) {
    let want = expected(height);
    let stats = set.stats();
    let (best, best_height) = set.best_block().unwrap();
    assert_eq!(best_height, height);
    assert_eq!(best.to_string(), want.bestblock);
    assert_eq!(stats.txouts, want.txouts, "txouts at {height}");
    assert_eq!(set.len() as u64, want.txouts);
    assert_eq!(stats.bogosize, want.bogosize, "bogosize at {height}");
    assert_eq!(format_btc(stats.total_amount), want.total_amount);
    assert_eq!(
        stats.muhash_hex().unwrap(),
        want.muhash,
        "muhash at {height}"
    );
    let coins = set.sorted_coins();
    let hash = hash_serialized_3(coins.iter().map(|(o, c)| (o, c)));
    assert_eq!(
        hash.to_string(),
        want.hash_serialized_3,
        "hash_serialized_3 at {height}"
    );
}

fn regtest_set() -> UtxoSet {
    UtxoSet::with_options(SetOptions {
        params: ChainParams::for_network(Network::Regtest),
        ..SetOptions::default()
    })
}

#[test]
fn replay_matches_core_at_every_checkpoint_and_disconnects_back() {
    let blocks = regtest_blocks();
    assert_eq!(blocks.len(), 201);
    let set = regtest_set();
    let mut undos = Vec::new();
    for (height, block) in blocks.iter().enumerate() {
        let height = u32::try_from(height).unwrap();
        undos.push(set.apply_block(block, height).unwrap());
        if height == 100 || height == 200 {
            check(&set, height);
        }
    }
    // Disconnect 200..=101 and land exactly on Core's figures at 100.
    for height in (101..=200u32).rev() {
        let h = height as usize;
        set.disconnect_block(&blocks[h], height, &undos[h]).unwrap();
    }
    check(&set, 100);
    // And forward again.
    for height in 101..=200u32 {
        set.apply_block(&blocks[height as usize], height).unwrap();
    }
    check(&set, 200);
}

#[test]
fn muhash_off_the_set_gives_the_same_figures_on_a_pipeline_stage() {
    let blocks = regtest_blocks();
    let set = UtxoSet::with_options(SetOptions {
        params: ChainParams::for_network(Network::Regtest),
        track_muhash: false,
        ..SetOptions::default()
    });
    // The MuHash stage runs on another thread, fed with each block's changes.
    let (tx, rx) = std::sync::mpsc::channel::<utxo_core::ChangeSet>();
    let stage = std::thread::spawn(move || {
        let mut stats = utxo_core::UtxoStats::new(true);
        for changes in rx {
            stats.apply(&changes);
        }
        stats
    });
    for (height, block) in blocks.iter().enumerate() {
        let connected = set
            .connect_block(block, u32::try_from(height).unwrap())
            .unwrap();
        tx.send(connected.changes).unwrap();
    }
    drop(tx);
    let stats = stage.join().unwrap();
    assert_eq!(set.stats().muhash, None);
    assert_eq!(stats.muhash_hex().unwrap(), expected(200).muhash);
    assert_eq!(stats.txouts, set.stats().txouts);
}
