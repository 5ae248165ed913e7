//! The commitment over `utxo_core::Coin`s: same root as over the equivalent `LeafCoin`s, and
//! `apply_change_set` / `revert_change_set` follow a `ChangeSet`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use bitcoin::{Amount, OutPoint, ScriptBuf};
use merkle_proofs::{Commitment, LeafCoin, verify};
use utxo_core::{ChangeSet, Coin};

fn to_core(c: &LeafCoin) -> Coin {
    Coin {
        amount: Amount::from_sat(c.amount),
        height: c.height,
        is_coinbase: c.is_coinbase,
        script_pubkey: ScriptBuf::from_bytes(c.script.clone()),
    }
}

#[test]
fn utxo_core_coins_and_change_sets() {
    let mut r = common::rng(21);
    let leaf = common::coins(&mut r, 400);
    let core: Vec<(OutPoint, Coin)> = leaf.iter().map(|(o, c)| (*o, to_core(c))).collect();
    let a = Commitment::from_coins(leaf.iter().map(|(o, c)| (o, c))).unwrap();
    let mut b = Commitment::from_sorted_coins(core.iter().map(|(o, c)| (o, c))).unwrap();
    assert_eq!(a.root(), b.root());
    let (o, c) = &core[7];
    verify(&b.root(), &b.prove(o, Some(c)).unwrap()).unwrap();

    let created: Vec<(OutPoint, Coin)> = common::coins(&mut r, 50)
        .iter()
        .map(|(o, c)| (*o, to_core(c)))
        .collect();
    let changes = ChangeSet {
        created: created.clone(),
        spent: core[..30].to_vec(),
    };
    let before = b.root();
    b.apply_change_set(&changes).unwrap();
    let mut after: Vec<(OutPoint, Coin)> = core[30..].to_vec();
    after.extend(created);
    assert_eq!(
        b.root(),
        Commitment::from_coins(after.iter().map(|(o, c)| (o, c)))
            .unwrap()
            .root()
    );
    b.revert_change_set(&changes).unwrap();
    assert_eq!(b.root(), before);
}
