//! The compact and the paged layout are two memory layouts of one commitment: after the same
//! updates they give the same root, byte-identical proofs and the same errors, and `Layout::Auto`
//! moves from compact to paged past `COMPACT_MAX` without changing anything observable.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use bitcoin::OutPoint;
use common::{coins, ground_coins, outpoint, reference_root, rng};
use merkle_proofs::{COMPACT_MAX, Commitment, Layout, LeafCoin, verify};
use proptest::prelude::*;
use rand::Rng;

const LAYOUTS: [Layout; 3] = [Layout::Compact, Layout::Paged, Layout::Auto];

fn assert_same_proofs(
    all: &[Commitment],
    present: &[(OutPoint, LeafCoin)],
    absent: &[OutPoint],
) -> Result<(), TestCaseError> {
    let root = all[0].root();
    for c in all {
        prop_assert_eq!(c.root(), root);
    }
    for (o, k) in present {
        let p = all[0].prove(o, Some(k)).unwrap();
        verify(&root, &p).unwrap();
        for c in &all[1..] {
            prop_assert_eq!(&c.prove(o, Some(k)).unwrap(), &p);
        }
    }
    for o in absent {
        let p = all[0].prove::<LeafCoin>(o, None);
        for c in &all[1..] {
            prop_assert_eq!(&c.prove::<LeafCoin>(o, None), &p);
        }
        if let Ok(p) = p {
            verify(&root, &p).unwrap();
        }
    }
    let queries: Vec<(&OutPoint, Option<&LeafCoin>)> = present
        .iter()
        .take(30)
        .map(|(o, c)| (o, Some(c)))
        .chain(absent.iter().take(10).map(|o| (o, None)))
        .collect();
    if !queries.is_empty() {
        let p = all[0].prove_many(queries.iter().copied());
        for c in &all[1..] {
            prop_assert_eq!(&c.prove_many(queries.iter().copied()), &p);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 10, ..ProptestConfig::default() })]

    /// Random sets (with two over-full pages) and random batches applied to all three layouts.
    #[test]
    fn layouts_agree_on_roots_and_proofs(seed in any::<u64>(), n in 0usize..500, batches in 1usize..4) {
        let mut r = rng(seed);
        let mut set = coins(&mut r, n);
        if seed % 2 == 0 {
            set.extend(ground_coins(&mut r, [0x80, 0x01], 120));
            set.extend(ground_coins(&mut r, [0x80, 0x02], 60));
        }
        let mut all: Vec<Commitment> = LAYOUTS
            .iter()
            .map(|&l| Commitment::from_coins_with_layout(set.iter().map(|(o, c)| (o, c)), l).unwrap())
            .collect();
        prop_assert_eq!(all[0].root(), reference_root(&set));
        let absent: Vec<OutPoint> = (0..20).map(|_| outpoint(&mut r)).collect();
        assert_same_proofs(&all, &set, &absent)?;
        for _ in 0..batches {
            let spent: Vec<(OutPoint, LeafCoin)> = set.iter().filter(|_| r.random_bool(0.3)).cloned().collect();
            let n_new = r.random_range(0..100);
            let created = coins(&mut r, n_new);
            for c in &mut all {
                c.apply_changes(created.iter().map(|(o, c)| (o, c)), spent.iter().map(|(o, c)| (o, c))).unwrap();
            }
            set.retain(|x| !spent.contains(x));
            set.extend(created);
            prop_assert_eq!(all[0].root(), reference_root(&set));
            assert_same_proofs(&all, &set, &absent)?;
            // A failing batch fails alike everywhere and changes nothing.
            if let Some(gone) = spent.first() {
                let before = all[0].root();
                for c in &mut all {
                    let err = c.apply_changes(std::iter::empty::<(&OutPoint, &LeafCoin)>(), [(&gone.0, &gone.1)]);
                    prop_assert!(err.is_err());
                    prop_assert_eq!(c.root(), before);
                }
            }
        }
    }
}

#[test]
fn auto_layout_turns_paged_past_compact_max_and_back_is_not_needed() {
    let mut r = rng(5);
    let set = coins(&mut r, COMPACT_MAX + 500);
    let mut auto = Commitment::new();
    assert!(!auto.is_paged());
    for chunk in set.chunks(1_000) {
        auto.apply_changes(
            chunk.iter().map(|(o, c)| (o, c)),
            std::iter::empty::<(&OutPoint, &LeafCoin)>(),
        )
        .unwrap();
        assert_eq!(auto.is_paged(), auto.len() > COMPACT_MAX);
    }
    assert!(auto.is_paged());
    let compact =
        Commitment::from_coins_with_layout(set.iter().map(|(o, c)| (o, c)), Layout::Compact)
            .unwrap();
    assert!(!compact.is_paged());
    assert_eq!(auto.root(), compact.root());
    assert_eq!(auto.root(), reference_root(&set));
    let (o, k) = &set[17];
    assert_eq!(
        auto.prove(o, Some(k)).unwrap(),
        compact.prove(o, Some(k)).unwrap()
    );
    // Built in one go past the threshold: paged; at or below: compact.
    let built = Commitment::from_coins(set.iter().map(|(o, c)| (o, c))).unwrap();
    assert!(built.is_paged());
    let small = Commitment::from_coins(set[..COMPACT_MAX].iter().map(|(o, c)| (o, c))).unwrap();
    assert!(!small.is_paged());
    // A compact commitment of a small set costs 40 bytes per coin; a paged one megabytes.
    assert_eq!(small.heap_bytes(), COMPACT_MAX * 40);
    assert!(Commitment::with_layout(Layout::Paged).heap_bytes() > 4_000_000);
    assert!(Commitment::new().heap_bytes() < 1_000);
}

/// The streaming builder gives the commitment `from_coins` gives, in any feed order, small or
/// past `COMPACT_MAX`, and names a coin fed twice by its key prefix.
#[test]
fn builder_equals_from_coins_and_refuses_a_coin_twice() {
    use merkle_proofs::{BuildError, Builder};
    let mut r = rng(8);
    for n in [0, 1, 300, COMPACT_MAX + 1_000] {
        let set = coins(&mut r, n);
        let direct = Commitment::from_coins(set.iter().map(|(o, c)| (o, c))).unwrap();
        let mut b = Builder::new();
        for (o, c) in set.iter().rev() {
            b.push(o, c);
        }
        assert_eq!(b.len(), n);
        let built = b.finish().unwrap();
        assert_eq!(built.root(), direct.root());
        assert_eq!(built.is_paged(), direct.is_paged());
        assert_eq!(built.len(), n);
        let mut paged = Builder::with_capacity(n, Layout::Paged);
        for (o, c) in &set {
            paged.push(o, c);
        }
        let paged = paged.finish().unwrap();
        assert!(paged.is_paged());
        assert_eq!(paged.root(), direct.root());
    }
    let set = coins(&mut r, 50);
    let mut b = Builder::new();
    for (o, c) in set.iter().chain(&set[7..8]) {
        b.push(o, c);
    }
    let prefix = merkle_proofs::entry_of(&set[7].0, &set[7].1).key8;
    assert_eq!(
        b.finish().unwrap_err(),
        BuildError::DuplicateEntry { key_prefix: prefix }
    );
}
