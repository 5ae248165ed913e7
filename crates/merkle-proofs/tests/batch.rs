//! `Commitment::prove_each` (grouped, multi-threaded proving) gives every query exactly the proof
//! (or the error) `Commitment::prove` gives it, and those proofs verify: on a set large enough for
//! the upper tree, pages holding several buckets, and small subtrees hashed flat.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Mutex;

use bitcoin::OutPoint;
use merkle_proofs::{Commitment, LeafCoin, PARALLEL_PROOFS_MIN, Proof, ProveError, verify};

type Answer = Result<Proof, ProveError>;

fn answers(c: &Commitment, queries: &[(OutPoint, Option<LeafCoin>)]) -> Vec<Option<Answer>> {
    let slots: Vec<Mutex<Option<Answer>>> = queries.iter().map(|_| Mutex::new(None)).collect();
    c.prove_each(queries, |i, result| {
        let mut slot = slots[i].lock().unwrap();
        assert!(slot.is_none(), "query {i} answered twice");
        *slot = Some(result.cloned());
    });
    slots.into_iter().map(|s| s.into_inner().unwrap()).collect()
}

#[test]
fn prove_each_matches_prove_on_one_and_two_threads() {
    let mut rng = common::rng(21);
    let mut coins = common::coins(&mut rng, 60_000);
    // Two pages of 300 coins: several buckets each, so the in-page tree is walked.
    coins.extend(common::ground_coins(&mut rng, [0x12, 0x34], 300));
    coins.extend(common::ground_coins(&mut rng, [0x12, 0x35], 300));
    let mut c = Commitment::from_coins(coins.iter().map(|(o, c)| (o, c))).unwrap();
    let root = c.root();

    let mut queries: Vec<(OutPoint, Option<LeafCoin>)> = Vec::new();
    for (i, (op, coin)) in coins.iter().enumerate() {
        if i % 23 == 0 || i >= 60_000 {
            queries.push((*op, Some(coin.clone())));
        }
    }
    for _ in 0..400 {
        queries.push((common::outpoint(&mut rng), None));
    }
    // Errors: a present coin with another amount, and an outpoint that is present claimed absent.
    let mut wrong = coins[5].1.clone();
    wrong.amount ^= 1;
    queries.push((coins[5].0, Some(wrong)));
    queries.push((coins[6].0, None));
    assert!(queries.len() > 2 * PARALLEL_PROOFS_MIN);

    for threads in [1, 2] {
        c.set_threads(threads);
        let got = answers(&c, &queries);
        for (i, ((op, coin), answer)) in queries.iter().zip(got).enumerate() {
            let answer = answer.unwrap_or_else(|| panic!("query {i} not answered"));
            let expected = c.prove(op, coin.as_ref());
            assert_eq!(answer, expected, "query {i}, {threads} threads");
            if let Ok(proof) = answer {
                verify(&root, &proof).unwrap();
            }
        }
    }
    let n = queries.len();
    assert!(matches!(
        c.prove(&queries[n - 2].0, queries[n - 2].1.as_ref()),
        Err(ProveError::NotInSet { .. })
    ));
    assert!(matches!(
        c.prove::<LeafCoin>(&queries[n - 1].0, None),
        Err(ProveError::PrefixPresent { .. })
    ));
}

#[test]
fn prove_many_into_reuses_the_buffer_and_clears_it_on_error() {
    let mut rng = common::rng(22);
    let coins = common::coins(&mut rng, 2_000);
    let c = Commitment::from_coins(coins.iter().map(|(o, c)| (o, c))).unwrap();
    let mut proof = c.prove(&coins[0].0, Some(&coins[0].1)).unwrap();
    for (op, coin) in coins.iter().skip(1).take(200) {
        c.prove_many_into([(op, Some(coin))], &mut proof).unwrap();
        assert_eq!(proof, c.prove(op, Some(coin)).unwrap());
        verify(&c.root(), &proof).unwrap();
    }
    let absent = common::outpoint(&mut rng);
    c.prove_many_into([(&absent, Some(&coins[0].1))], &mut proof)
        .unwrap_err();
    assert!(proof.claims.is_empty() && proof.nodes.is_empty() && proof.entries.is_empty());
    // A buffer that held a multi-proof, then an exclusion, then an inclusion again: each equals a
    // fresh proof (claimed scripts' buffers are reused, never leaked into the next answer).
    let many: Vec<_> = coins[300..340].iter().map(|(o, c)| (o, Some(c))).collect();
    c.prove_many_into(many.iter().copied(), &mut proof).unwrap();
    assert_eq!(proof, c.prove_many(many.iter().copied()).unwrap());
    c.prove_many_into([(&absent, None::<&LeafCoin>)], &mut proof)
        .unwrap();
    assert_eq!(proof, c.prove::<LeafCoin>(&absent, None).unwrap());
    let (op, coin) = &coins[1_999];
    c.prove_many_into([(op, Some(coin))], &mut proof).unwrap();
    assert_eq!(proof, c.prove(op, Some(coin)).unwrap());
}

#[test]
fn a_batch_that_spends_and_recreates_coins_in_one_page_equals_a_rebuild() {
    let mut rng = common::rng(24);
    let mut coins = common::coins(&mut rng, 20_000);
    // One page of 300 coins (several buckets), where most of the batch lands.
    coins.extend(common::ground_coins(&mut rng, [0x12, 0x34], 300));
    let mut c = Commitment::from_coins(coins.iter().map(|(o, c)| (o, c))).unwrap();
    assert!(c.is_paged());

    // Spent: 60 coins of the dense page and 40 elsewhere. Created: 10 of them again unchanged
    // (removed and re-inserted by the same batch), 10 outpoints again with another amount, 30 new
    // coins in the dense page and 30 elsewhere.
    let spent: Vec<(OutPoint, LeafCoin)> = coins[20_000..20_060]
        .iter()
        .chain(&coins[..40])
        .cloned()
        .collect();
    let mut created: Vec<(OutPoint, LeafCoin)> = spent[..10].to_vec();
    for (o, coin) in &spent[10..20] {
        let mut changed = coin.clone();
        changed.amount += 1;
        created.push((*o, changed));
    }
    created.extend(common::ground_coins(&mut rng, [0x12, 0x34], 30));
    created.extend(common::coins(&mut rng, 30));
    c.apply_changes(
        created.iter().map(|(o, c)| (o, c)),
        spent.iter().map(|(o, c)| (o, c)),
    )
    .unwrap();

    let mut after: Vec<(OutPoint, LeafCoin)> = coins
        .iter()
        .filter(|(o, _)| !spent.iter().any(|(s, _)| s == o))
        .cloned()
        .collect();
    after.extend(created.iter().cloned());
    assert_eq!(c.len(), after.len());
    assert_eq!(c.root(), common::reference_root(&after));
    let rebuilt = Commitment::from_coins(after.iter().map(|(o, c)| (o, c))).unwrap();
    assert_eq!(c.root(), rebuilt.root());
    for (o, coin) in created.iter().chain(&coins[20_060..20_080]) {
        verify(&c.root(), &c.prove(o, Some(coin)).unwrap()).unwrap();
    }
    for (o, _) in &spent[20..] {
        verify(&c.root(), &c.prove::<LeafCoin>(o, None).unwrap()).unwrap();
    }
}
