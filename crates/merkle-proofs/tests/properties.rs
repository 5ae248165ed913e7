//! Property tests of the commitment: incremental updates equal a from-scratch rebuild and the
//! definition's reference root; present coins prove inclusion, absent outpoints exclusion;
//! multi-proofs verify; tampered proofs and foreign roots fail.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;

use bitcoin::OutPoint;
use common::{coin, coins, ground_coins, outpoint, reference_root, rng};
use merkle_proofs::{
    Claim, Commitment, LeafCoin, Proof, ProofNode, Root, UpdateError, VerifyError, verify,
};
use proptest::prelude::*;
use rand::Rng;

fn build(set: &BTreeMap<OutPoint, LeafCoin>) -> Commitment {
    Commitment::from_coins(set.iter()).unwrap()
}

fn as_vec(set: &BTreeMap<OutPoint, LeafCoin>) -> Vec<(OutPoint, LeafCoin)> {
    set.iter().map(|(o, c)| (*o, c.clone())).collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    /// Random batches of inserts and removals: after each, the incremental root equals the rebuild
    /// and the reference; reverting every batch returns to the empty root.
    #[test]
    fn incremental_root_equals_rebuild(seed in any::<u64>(), start in 0usize..300, batches in 1usize..6) {
        let mut r = rng(seed);
        let mut model: BTreeMap<OutPoint, LeafCoin> = coins(&mut r, start).into_iter().collect();
        let mut c = build(&model);
        c.set_threads(if seed % 2 == 0 { 1 } else { 2 });
        prop_assert_eq!(c.root(), reference_root(&as_vec(&model)));
        let mut history = Vec::new();
        for _ in 0..batches {
            let n_spend = r.random_range(0..=model.len().min(80));
            let spent: Vec<(OutPoint, LeafCoin)> = model.iter().take(n_spend * 7 / 8)
                .filter(|_| r.random_bool(0.5)).map(|(o, c)| (*o, c.clone())).collect();
            let n_new = r.random_range(0..120);
            let created = coins(&mut r, n_new);
            c.apply_changes(created.iter().map(|(o, c)| (o, c)), spent.iter().map(|(o, c)| (o, c))).unwrap();
            for (o, _) in &spent { model.remove(o); }
            for (o, k) in &created { model.insert(*o, k.clone()); }
            prop_assert_eq!(c.len(), model.len());
            prop_assert_eq!(c.root(), build(&model).root());
            prop_assert_eq!(c.root(), reference_root(&as_vec(&model)));
            history.push((created, spent));
        }
        for (created, spent) in history.iter().rev() {
            c.revert_changes(created.iter().map(|(o, c)| (o, c)), spent.iter().map(|(o, c)| (o, c))).unwrap();
        }
        prop_assert_eq!(c.root(), reference_root(&coins(&mut rng(seed), start)));
    }

    /// Every present coin proves inclusion, random absent outpoints prove exclusion, through the
    /// binary and JSON forms; against another root both fail.
    #[test]
    fn inclusion_and_exclusion(seed in any::<u64>(), n in 0usize..400) {
        let mut r = rng(seed);
        let set = coins(&mut r, n);
        let c = Commitment::from_coins(set.iter().map(|(o, c)| (o, c))).unwrap();
        let root = c.root();
        let other = Root([0xab; 32]);
        for (o, k) in set.iter().take(60) {
            let p = c.prove(o, Some(k)).unwrap();
            verify(&root, &p).unwrap();
            let decoded = Proof::decode(&p.encode()).unwrap();
            prop_assert_eq!(&decoded, &p);
            prop_assert_eq!(&Proof::from_json(&p.to_json()).unwrap(), &p);
            let is_mismatch = matches!(verify(&other, &p), Err(VerifyError::RootMismatch { .. }));
            prop_assert!(is_mismatch);
            // The same outpoint with any other field value is not proved.
            let mut wrong = k.clone();
            wrong.amount ^= 1;
            let mut forged = p.clone();
            forged.claims[0] = Claim::Present { outpoint: merkle_proofs::outpoint_bytes(o), coin: wrong };
            prop_assert!(verify(&root, &forged).is_err());
        }
        for _ in 0..40 {
            let o = outpoint(&mut r);
            let p = c.prove::<LeafCoin>(&o, None).unwrap();
            verify(&root, &Proof::decode(&p.encode()).unwrap()).unwrap();
            prop_assert!(verify(&other, &p).is_err());
            // An absent outpoint has no inclusion proof.
            prop_assert!(c.prove(&o, Some(&coin(&mut r))).is_err());
        }
    }

    /// A proof with any single byte changed fails to decode or to verify.
    #[test]
    fn any_flipped_byte_fails(seed in any::<u64>(), n in 1usize..200, flip in any::<u8>()) {
        let mut r = rng(seed);
        let set = coins(&mut r, n);
        let c = Commitment::from_coins(set.iter().map(|(o, c)| (o, c))).unwrap();
        let root = c.root();
        let (o, k) = &set[r.random_range(0..set.len())];
        let absent = outpoint(&mut r);
        let proof = c.prove_many([(o, Some(k)), (&absent, None)]).unwrap();
        let bytes = proof.encode();
        merkle_proofs::verify::verify_encoded(&root, &bytes).unwrap();
        let flip = if flip == 0 { 1 } else { flip };
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= flip;
            prop_assert!(merkle_proofs::verify::verify_encoded(&root, &b).is_err(), "byte {} flipped still verifies", i);
        }
    }

    /// Multi-proofs verify, are no larger than separate proofs, and fail when tampered with (a
    /// revealed entry, a pruned hash, a claimed coin) even without the checksum.
    #[test]
    fn multi_proofs(seed in any::<u64>(), n in 1usize..600, k in 1usize..40) {
        let mut r = rng(seed);
        let set = coins(&mut r, n);
        let c = Commitment::from_coins(set.iter().map(|(o, c)| (o, c))).unwrap();
        let root = c.root();
        let absent: Vec<OutPoint> = (0..k / 2 + 1).map(|_| outpoint(&mut r)).collect();
        let mut queries: Vec<(&OutPoint, Option<&LeafCoin>)> = set.iter().take(k).map(|(o, c)| (o, Some(c))).collect();
        queries.extend(absent.iter().map(|o| (o, None)));
        let p = c.prove_many(queries.iter().copied()).unwrap();
        verify(&root, &p).unwrap();
        let separate: usize = queries.iter().map(|q| c.prove_many([*q]).unwrap().encode().len()).sum();
        prop_assert!(p.encode().len() <= separate);
        let mut t = p.clone();
        let i = r.random_range(0..t.entries.len());
        t.entries[i].body[r.random_range(0..32)] ^= 1;
        prop_assert!(verify(&root, &t).is_err());
        if let Some(pos) = p.nodes.iter().position(|n| matches!(n, ProofNode::Hash(_))) {
            let mut t = p.clone();
            if let ProofNode::Hash(h) = &mut t.nodes[pos] { h[r.random_range(0..32)] ^= 0x80; }
            prop_assert!(verify(&root, &t).is_err());
        }
        let mut t = p.clone();
        if let Claim::Present { coin, .. } = &mut t.claims[0] { coin.height ^= 1; }
        prop_assert!(verify(&root, &t).is_err());
    }
}

/// Pages holding more than a bucket (ground keys), so in-page splits, page neighbours and
/// pass-through nodes are all exercised against the reference definition.
#[test]
fn full_pages_match_reference() {
    let mut r = rng(7);
    let mut set = ground_coins(&mut r, [0x12, 0x34], 110);
    set.extend(ground_coins(&mut r, [0x12, 0x35], 55));
    set.extend(coins(&mut r, 50));
    let c = Commitment::from_coins(set.iter().map(|(o, c)| (o, c))).unwrap();
    assert_eq!(c.root(), reference_root(&set));
    for (o, k) in &set {
        verify(&c.root(), &c.prove(o, Some(k)).unwrap()).unwrap();
    }
    // Absent outpoints landing in the full pages (ground too).
    let absent = ground_coins(&mut r, [0x12, 0x34], 8);
    for (o, _) in &absent {
        verify(&c.root(), &c.prove::<LeafCoin>(o, None).unwrap()).unwrap();
    }
    let all: Vec<_> = set
        .iter()
        .map(|(o, c)| (o, Some(c)))
        .chain(absent.iter().map(|(o, _)| (o, None)))
        .collect();
    verify(&c.root(), &c.prove_many(all).unwrap()).unwrap();
    // Incremental: remove half of the big page, add more, compare again.
    let mut inc = c.clone();
    let (gone, kept): (Vec<_>, Vec<_>) = set
        .iter()
        .cloned()
        .enumerate()
        .partition(|(i, _)| i % 2 == 0);
    let gone: Vec<_> = gone.into_iter().map(|(_, x)| x).collect();
    let mut now: Vec<_> = kept.into_iter().map(|(_, x)| x).collect();
    inc.apply_changes(
        absent.iter().map(|(o, c)| (o, c)),
        gone.iter().map(|(o, c)| (o, c)),
    )
    .unwrap();
    now.extend(absent.iter().cloned());
    assert_eq!(inc.root(), reference_root(&now));
}

/// Entries sharing all 64 prefix bits (the same outpoint with different coins) split on body bits:
/// the composite key keeps the shape defined, down to depth > 64.
#[test]
fn shared_prefix_splits_on_body_bits() {
    let mut r = rng(9);
    let o = outpoint(&mut r);
    let set: Vec<(OutPoint, LeafCoin)> = (0..100).map(|_| (o, coin(&mut r))).collect();
    let c = Commitment::from_coins(set.iter().map(|(o, c)| (o, c))).unwrap();
    assert_eq!(c.root(), reference_root(&set));
    for (o, k) in &set {
        verify(&c.root(), &c.prove(o, Some(k)).unwrap()).unwrap();
    }
    // Its own outpoint cannot be proved absent: its key prefix is present.
    assert!(matches!(
        c.prove::<LeafCoin>(&o, None),
        Err(merkle_proofs::ProveError::PrefixPresent { .. })
    ));
}

#[test]
fn root_is_order_independent_and_empty_is_defined() {
    let mut r = rng(3);
    let mut set = coins(&mut r, 500);
    let a = Commitment::from_coins(set.iter().map(|(o, c)| (o, c)))
        .unwrap()
        .root();
    set.reverse();
    let b = Commitment::from_sorted_coins(set.iter().map(|(o, c)| (o, c)))
        .unwrap()
        .root();
    assert_eq!(a, b);
    let mut one_by_one = Commitment::new();
    for (o, k) in &set {
        one_by_one
            .apply_changes([(o, k)], std::iter::empty::<(&OutPoint, &LeafCoin)>())
            .unwrap();
    }
    assert_eq!(one_by_one.root(), a);
    assert_eq!(Commitment::new().root(), Root::empty());
    let empty = Commitment::new();
    let p = empty.prove::<LeafCoin>(&set[0].0, None).unwrap();
    verify(&Root::empty(), &Proof::decode(&p.encode()).unwrap()).unwrap();
    assert_ne!(Root::empty(), a);
}

#[test]
fn bad_updates_leave_the_commitment_unchanged() {
    let mut r = rng(4);
    let set = coins(&mut r, 200);
    let mut c = Commitment::from_coins(set.iter().map(|(o, c)| (o, c))).unwrap();
    let before = c.root();
    let fresh = coins(&mut r, 3);
    let mut wrong = set[5].1.clone();
    wrong.height += 1;
    let err = c
        .apply_changes(fresh.iter().map(|(o, c)| (o, c)), [(&set[5].0, &wrong)])
        .unwrap_err();
    assert_eq!(err, UpdateError::MissingCoin { outpoint: set[5].0 });
    let err = c
        .apply_changes(
            [(&set[6].0, &set[6].1)],
            std::iter::empty::<(&OutPoint, &LeafCoin)>(),
        )
        .unwrap_err();
    assert_eq!(err, UpdateError::DuplicateCoin { outpoint: set[6].0 });
    assert_eq!(c.root(), before);
    assert_eq!(c.len(), 200);
    let dup = [set[0].clone(), set[0].clone()];
    assert!(Commitment::from_coins(dup.iter().map(|(o, c)| (o, c))).is_err());
}
