//! Seeded deterministic simulation: 2–4 nodes share a channel; messages are dropped, reordered and
//! duplicated; persistence completes asynchronously; nodes crash and restart from their last
//! persisted record; blocks arrive at random. After every step: value is conserved in every node's
//! ledger, nodes at the same version agree on the root, no node is more than one version ahead.
//! Each run ends with a cooperative close, an honest unilateral close, or a cheater publishing a
//! revoked commitment, which must always be penalized, with no honest participant losing funds.
//!
//! A failing seed is printed; replay it with `SIM_SEED=<seed> cargo test -p channel-fsm --test simulation`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::needless_range_loop)]

mod common;

use bitcoin::Amount;
use channel_fsm::channel::{ChainEvent, Channel, Event, Phase};
use channel_fsm::signer::InMemorySigner;
use channel_fsm::tx;
use common::net::{Network, create_network, sat};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Seeds run by default (each is a full scenario).
const SEEDS: u64 = 24;
/// Random steps per seed.
const STEPS: usize = 500;

fn check_invariants(net: &Network, total: Amount, seed: u64, step: usize) {
    let mut versions = Vec::new();
    for (i, node) in net.nodes.iter().enumerate() {
        let Some(ch) = &node.channel else { continue };
        let ledger = ch.ledger();
        assert_eq!(
            ledger.total(),
            total,
            "seed {seed} step {step}: node {i} value not conserved"
        );
        let sum: Amount = ledger.balances().iter().copied().sum();
        assert_eq!(sum, total, "seed {seed} step {step}: node {i} balances");
        versions.push((ledger.version, ch.state_root(), i));
    }
    for a in &versions {
        for b in &versions {
            if a.0 == b.0 {
                assert_eq!(
                    a.1, b.1,
                    "seed {seed} step {step}: nodes {} and {} disagree at version {}",
                    a.2, b.2, a.0
                );
            }
            assert!(
                a.0.abs_diff(b.0) <= 1,
                "seed {seed} step {step}: versions {} and {} too far apart",
                a.0,
                b.0
            );
        }
    }
}

/// Completes every persistence, re-sends and delivers until nothing changes.
fn quiesce(net: &mut Network) {
    for _ in 0..50 {
        for i in 0..net.n() {
            while net.complete_persist(i) {}
        }
        for i in 0..net.n() {
            let resend = net.nodes[i]
                .channel
                .as_ref()
                .map(Channel::resend)
                .unwrap_or_default();
            net.apply(i, resend);
        }
        net.deliver_all();
        for i in 0..net.n() {
            while net.complete_persist(i) {}
        }
        net.deliver_all();
        let versions: Vec<u64> = net
            .nodes
            .iter()
            .map(|n| n.channel.as_ref().unwrap().ledger().version)
            .collect();
        let settled = net.nodes.iter().all(|n| {
            let c = n.channel.as_ref().unwrap();
            c.pending_version().is_none() && c.revocations_complete() && !c.has_held()
        });
        if settled && versions.iter().all(|v| *v == versions[0]) && net.queue.is_empty() {
            return;
        }
    }
    panic!("network did not converge");
}

fn drain_events(net: &mut Network) -> Vec<Vec<Event>> {
    (0..net.n()).map(|i| net.take_events(i)).collect()
}

fn run(seed: u64) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let n = rng.random_range(2..=4usize);
    let mut net = create_network(n);
    let balances: Vec<Amount> = (0..n)
        .map(|_| sat(rng.random_range(1_000_000..4_000_000)))
        .collect();
    let cfg = net.open_channel(&balances);
    let total = cfg.params.funding_amount - tx::commitment_fee(&cfg.params);
    net.sync_persist = false;
    let mut snapshots: Vec<(usize, Channel<InMemorySigner>)> = Vec::new();

    for step in 0..STEPS {
        match rng.random_range(0..100u32) {
            0..6 => {
                let from = rng.random_range(0..n);
                let to = (from + rng.random_range(1..n)) % n;
                if let Some(ch) = net.nodes[from].channel.as_mut() {
                    let amount = sat(rng.random_range(1_000..400_000));
                    if let Ok(t) = ch.make_transfer(u16::try_from(to).unwrap(), amount) {
                        match ch.propose(vec![t]) {
                            Ok(actions) => net.apply(from, actions),
                            Err(_) => net.errors += 1,
                        }
                    }
                }
            }
            6..56 if !net.queue.is_empty() => {
                let i = rng.random_range(0..net.queue.len());
                match rng.random_range(0..20u32) {
                    0..2 => {
                        net.queue.remove(i); // dropped
                    }
                    2 => {
                        let copy = net.queue[i].clone(); // duplicated
                        net.queue.push_back(copy);
                        net.deliver_at(i);
                    }
                    _ => net.deliver_at(i), // delivered out of order
                }
            }
            56..76 => {
                // Group commit: one fsync makes every pending record of the node durable.
                let node = rng.random_range(0..n);
                while net.complete_persist(node) {}
            }
            76..78 => {
                let node = rng.random_range(0..n);
                net.restart(node);
            }
            78..86 => {
                let node = rng.random_range(0..n);
                let resend = net.nodes[node]
                    .channel
                    .as_ref()
                    .map(Channel::resend)
                    .unwrap_or_default();
                net.apply(node, resend);
            }
            86..92 => net.mine(),
            92..98 => {
                let node = rng.random_range(0..n);
                if let Some(ch) = &net.nodes[node].channel
                    && ch.ledger().version > 0
                {
                    snapshots.push((node, ch.clone()));
                }
            }
            _ => {}
        }
        check_invariants(&net, total, seed, step);
        if std::env::var("SIM_VERBOSE").is_ok() && step % 25 == 0 {
            let st: Vec<String> = net
                .nodes
                .iter()
                .map(|x| {
                    let c = x.channel.as_ref().unwrap();
                    format!(
                        "v{} p{:?} r{} h{} u{}",
                        c.ledger().version,
                        c.pending_version(),
                        c.revocations_complete(),
                        c.has_held(),
                        x.unpersisted.len()
                    )
                })
                .collect();
            eprintln!(
                "step {step}: q={} {st:?} last_err={:?}",
                net.queue.len(),
                net.error_log.last()
            );
        }
        for node in &net.nodes {
            assert_eq!(
                node.channel.as_ref().unwrap().phase(),
                Phase::Active,
                "seed {seed} step {step}"
            );
        }
    }
    net.sync_persist = true;
    quiesce(&mut net);
    check_invariants(&net, total, seed, STEPS);
    drain_events(&mut net);
    let version = net.nodes[0].channel.as_ref().unwrap().ledger().version;
    let latest = net.nodes[0].channel.as_ref().unwrap().ledger().balances();
    let payout = |i: usize| tx::payout_script(&cfg.params.participants, i).unwrap();

    let revoked: Vec<_> = snapshots
        .into_iter()
        .filter(|(_, s)| s.ledger().version < version)
        .collect();
    let ending = rng.random_range(0..3u32);
    eprintln!(
        "seed {seed}: n={n} version={version} errors={} revoked_snapshots={} ending={ending}",
        net.errors,
        revoked.len()
    );
    if std::env::var("SIM_VERBOSE").is_ok() {
        let mut h = std::collections::BTreeMap::new();
        for e in &net.error_log {
            *h.entry(e.clone()).or_insert(0) += 1;
        }
        eprintln!("{h:#?}");
    }
    if ending == 0 && !revoked.is_empty() {
        // A cheater publishes a revoked commitment.
        let (cheater, old) = &revoked[rng.random_range(0..revoked.len())];
        let cheater = *cheater;
        let commitment = old.signed_commitment().unwrap();
        net.chain.broadcast(commitment.clone()).unwrap();
        // Some honest nodes watch the mempool and answer before the commitment confirms.
        for i in (0..n).filter(|i| *i != cheater) {
            if rng.random_bool(0.5) {
                let height = net.chain.height;
                let ch = net.nodes[i].channel.as_mut().unwrap();
                let actions = ch
                    .handle_chain(ChainEvent::Seen {
                        height,
                        tx: commitment.clone(),
                    })
                    .unwrap();
                net.apply(i, actions);
            }
        }
        let had_delayed = {
            let c = tx::build_commitment(
                &cfg.params,
                cheater,
                old.ledger().version,
                &Channel::<InMemorySigner>::commitment_balances(old.ledger(), &cfg.params),
                &InMemorySignerExt::point(&net.nodes[cheater].signer, old.ledger().version),
            )
            .unwrap();
            c.delayed.is_some()
        };
        for b in 0..6 {
            if b > 0 && rng.random_bool(0.3) {
                let honest = (cheater + rng.random_range(1..n)) % n;
                net.restart(honest);
            }
            net.mine();
            net.broadcasts.clear();
        }
        drain_events(&mut net);
        for i in (0..n).filter(|i| *i != cheater) {
            let phase = net.nodes[i].channel.as_ref().unwrap().phase();
            let want = if had_delayed {
                Phase::Penalized
            } else {
                Phase::Resolved
            };
            assert_eq!(
                phase, want,
                "seed {seed}: honest node {i} after cheat by {cheater}"
            );
            let got = net.chain.balance_of(&payout(i));
            assert!(
                got + sat(5_000) >= latest[i],
                "seed {seed}: honest {i} got {got}, owed {}",
                latest[i]
            );
        }
    } else if ending == 1 {
        // An honest unilateral close; the holder sweeps after to_self_delay.
        let holder = rng.random_range(0..n);
        let actions = net.nodes[holder]
            .channel
            .as_mut()
            .unwrap()
            .force_close()
            .unwrap();
        net.apply(holder, actions);
        for _ in 0..(cfg.params.to_self_delay + 3) {
            net.mine();
        }
        net.broadcasts.clear();
        drain_events(&mut net);
        for i in 0..n {
            assert_eq!(
                net.nodes[i].channel.as_ref().unwrap().phase(),
                Phase::Resolved,
                "seed {seed}: node {i}"
            );
            let got = net.chain.balance_of(&payout(i));
            assert!(
                got + sat(5_000) >= latest[i],
                "seed {seed}: {i} got {got}, owed {}",
                latest[i]
            );
        }
    } else {
        let initiator = rng.random_range(0..n);
        let close = net.close(initiator);
        for i in 0..n {
            let got: Amount = close
                .output
                .iter()
                .filter(|o| o.script_pubkey == payout(i))
                .map(|o| o.value)
                .sum();
            if latest[i] >= tx::DUST_LIMIT {
                assert_eq!(got, latest[i], "seed {seed}: close pays participant {i}");
            }
        }
    }
    net.queue.clear();
    net.broadcasts.clear();
    drain_events(&mut net);
}

/// Per-commitment point lookups for the cheater check.
trait InMemorySignerExt {
    fn point(&self, version: u64) -> bitcoin::secp256k1::PublicKey;
}
impl InMemorySignerExt for InMemorySigner {
    fn point(&self, version: u64) -> bitcoin::secp256k1::PublicKey {
        channel_fsm::signer::Signer::per_commitment_point(self, version).unwrap()
    }
}

#[test]
fn seeded_simulation() {
    let seeds: Vec<u64> = match std::env::var("SIM_SEED") {
        Ok(s) => vec![s.parse().expect("SIM_SEED is a u64")],
        Err(_) => (0..SEEDS).collect(),
    };
    for seed in seeds {
        let result = std::panic::catch_unwind(|| run(seed));
        if let Err(e) = result {
            eprintln!("simulation failed at seed {seed}; replay with SIM_SEED={seed}");
            std::panic::resume_unwind(e);
        }
    }
}
