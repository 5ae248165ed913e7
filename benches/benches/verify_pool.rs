//! The speedup of verifying a state's signatures on a 2-thread `StateVerifier` pool over one
//! thread, measured as an interleaved A/B: each round times a run of one-thread calls and a run of
//! pool calls back to back (the order alternating between rounds), and the figure is the median of
//! the per-round ratios. Criterion's rows in `channel.rs` measure the two one after the other,
//! seconds apart, so on a shared machine a change of host load between them moves their ratio by
//! ±20%; within one round both sides see the same machine.
//!
//! Results go to `target/bench-figures/channel-verify-ab.tsv` (see `benches::figures`), beside the
//! bar ≥ 1.8x from issue 5. Runs when the bench filter is empty or matches "channel_verify_ab".
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use benches::figures::{self, Figure};
use channel_fsm::ledger::{self, StateVerifier};
use channel_fsm::sig::{DefaultBackend, SigBackend};
use channel_fsm::signer::{InMemorySigner, Signer};

const NAME: &str = "channel_verify_ab";
/// Rounds per figure (odd, for a plain median).
const ROUNDS: usize = 21;
/// Calls per side per round (~20-100 ms of work per side).
const CALLS: usize = 100;
/// Distinct states cycled through (different digests, as real calls have).
const STATES: usize = 16;

/// Keys and `STATES` signed states of `n` participants.
type States = (
    Vec<<DefaultBackend as SigBackend>::XOnlyPublic>,
    Vec<([u8; 32], Vec<[u8; 64]>)>,
);

fn states(n: usize) -> States {
    let signers: Vec<InMemorySigner> = (0..n)
        .map(|i| InMemorySigner::from_seed([u8::try_from(i).unwrap() + 1; 32]))
        .collect();
    let keys = signers
        .iter()
        .map(|s| DefaultBackend::parse_xonly_public(&s.keys().state_key.serialize()).unwrap())
        .collect();
    let states = (0..STATES)
        .map(|v| {
            let root = [u8::try_from(v).unwrap(); 32];
            let digest = ledger::state_digest(&ID, v as u64, &root);
            (
                root,
                signers.iter().map(|s| s.sign_state(&digest)).collect(),
            )
        })
        .collect();
    (keys, states)
}

const ID: [u8; 32] = [4; 32];

/// Seconds per call of `CALLS` calls of `verify`.
fn time_calls(mut verify: impl FnMut(usize)) -> f64 {
    let start = Instant::now();
    for v in 0..CALLS {
        verify(v % STATES);
    }
    start.elapsed().as_secs_f64() / CALLS as f64
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

/// (median µs per call on one thread, on the pool, median per-round speedup).
fn measure(n: usize, pool: &StateVerifier) -> (f64, f64, f64) {
    let (keys, states) = states(n);
    let serial = |v: usize| {
        let (root, sigs) = &states[v];
        ledger::verify_state_signatures_parallel(&ID, v as u64, root, &keys, sigs, 1).unwrap();
    };
    let parallel = |v: usize| {
        let (root, sigs) = &states[v];
        pool.verify(&ID, v as u64, root, &keys, sigs).unwrap();
    };
    // Warm both paths (the pool's thread, caches, the CPU's clock).
    time_calls(serial);
    time_calls(parallel);
    let (mut one, mut two, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        let (a, b) = if round % 2 == 0 {
            let a = time_calls(serial);
            (a, time_calls(parallel))
        } else {
            let b = time_calls(parallel);
            (time_calls(serial), b)
        };
        one.push(a);
        two.push(b);
        ratios.push(a / b);
    }
    (median(one) * 1e6, median(two) * 1e6, median(ratios))
}

fn main() {
    // Criterion-style filter: run when no filter is given or one matches our name.
    if !figures::selected(NAME) {
        return;
    }
    let pool = StateVerifier::new(2).unwrap();
    let mut rows = Vec::new();
    for n in [8usize, 16] {
        let (one, two, speedup) = measure(n, &pool);
        println!(
            "{NAME}: {n} signatures: 1 thread {one:.0} µs, pool of 2 {two:.0} µs, speedup {speedup:.2}x (median of {ROUNDS} interleaved rounds)"
        );
        rows.push(Figure {
            label: format!(
                "state verification, {n} signatures, pool of 2 vs 1 thread, interleaved A/B (median of {ROUNDS} rounds of {CALLS} calls)"
            ),
            value: format!("{speedup:.2}"),
            unit: "x".into(),
            baseline: format!("1 thread {one:.0} µs per state; pool {two:.0} µs"),
            bar: "≥ 1.8x on 2 threads".into(),
        });
    }
    let path = figures::write("channel-verify-ab", &rows).expect("figures written");
    println!("{NAME}: wrote {}", path.display());
}
