//! Memory per UTXO, measured: the resident set size (RSS, `/proc/self/status`) a child process gains
//! while `utxo_core::UtxoSet` is populated with N coins of `benches::synth::coins` (the outpoint
//! list is not kept), and the same for the naive baseline `HashMap<OutPoint, TxOut>` (SipHash). Each
//! runs in a fresh child process, so memory freed by one measurement cannot hide growth in another.
//!
//! `benches::synth::coins` draws each coin's height and coinbase flag on its own, so outputs of one
//! transaction usually differ in height, which no valid chain produces and which costs utxo-core's
//! per-transaction records about 3 bytes per extra output (the height is then kept per output). A
//! second `UtxoSet` figure gives every output the height and flag of its transaction's first output,
//! as on mainnet; the bar is judged on the first (the plain synthetic stream).
//!
//! N is 10,000,000 (the size DESIGN.md asks for) unless `L2BTC_BENCH_MEMORY_COINS` says otherwise.
//! Results go to `target/bench-figures/utxo-memory.tsv` (see `benches::figures`) with Bitcoin Core's
//! ~150 B per cached coin as the baseline text and the bar ≤ 64 B. The set is built without MuHash
//! tracking (the accumulator is a fixed 768 bytes; tracking it only costs time).
//!
//! Runs when the bench filter is empty or matches "utxo_memory" (e.g. `cargo xtask bench utxo`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;
use std::time::Instant;

use benches::figures::{self, Figure, rss_bytes};
use benches::naive::NaiveSet;
use utxo_core::{SetOptions, UtxoSet};

/// Coins measured by default.
const COINS_DEFAULT: usize = 10_000_000;
/// Environment variable naming the structure a child process measures.
const CHILD_ENV: &str = "L2BTC_UTXO_MEMORY_CHILD";
const NAME: &str = "utxo_memory";

fn coins() -> usize {
    std::env::var("L2BTC_BENCH_MEMORY_COINS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(COINS_DEFAULT)
}

/// In a child: populate one structure, print `rss_delta_bytes len seconds`.
fn child(which: &str, n: usize) {
    let before = rss_bytes().expect("RSS readable");
    let start = Instant::now();
    let len = match which {
        "set" | "set_tx_height" => {
            let set = UtxoSet::with_options(SetOptions {
                track_muhash: false,
                ..SetOptions::default()
            });
            let tx_height = which == "set_tx_height";
            let mut first: Option<(bitcoin::Txid, u32, bool)> = None;
            for (op, mut coin) in benches::synth::coins(1, n) {
                if tx_height {
                    match first {
                        Some((txid, height, is_coinbase)) if txid == op.txid => {
                            coin.height = height;
                            coin.is_coinbase = is_coinbase;
                        }
                        _ => first = Some((op.txid, coin.height, coin.is_coinbase)),
                    }
                }
                set.insert(op, coin);
            }
            let len = set.len();
            // The process ends now: skip the teardown, and keep the set alive until RSS is read.
            std::mem::forget(set);
            len
        }
        "naive" => {
            let mut naive = NaiveSet::new();
            for (op, coin) in benches::synth::coins(1, n) {
                naive.insert(op, coin.to_txout());
            }
            let len = naive.len();
            std::mem::forget(naive);
            len
        }
        other => panic!("unknown child {other}"),
    };
    let after = rss_bytes().expect("RSS readable");
    println!(
        "{} {len} {:.1}",
        after - before,
        start.elapsed().as_secs_f64()
    );
}

/// Runs a child measuring `which`; returns (bytes per coin, seconds).
fn measure(which: &str, n: usize) -> (f64, f64) {
    let exe = std::env::current_exe().expect("own path");
    let out = Command::new(exe)
        .env(CHILD_ENV, which)
        .env("L2BTC_BENCH_MEMORY_COINS", n.to_string())
        .output()
        .expect("child runs");
    assert!(out.status.success(), "child {which} failed: {out:?}");
    let text = String::from_utf8(out.stdout).expect("utf-8");
    let fields: Vec<&str> = text.split_whitespace().collect();
    let delta: f64 = fields[0].parse().expect("rss delta");
    let len: usize = fields[1].parse().expect("len");
    let secs: f64 = fields[2].parse().expect("seconds");
    assert_eq!(len, n, "every coin is distinct");
    (delta / n as f64, secs)
}

fn main() {
    let n = coins();
    if let Ok(which) = std::env::var(CHILD_ENV) {
        child(&which, n);
        return;
    }
    // Criterion-style filter: run when no filter is given or one matches our name.
    if !figures::selected(NAME) {
        return;
    }
    let (set, set_secs) = measure("set", n);
    let (tx_height, _) = measure("set_tx_height", n);
    let (naive, naive_secs) = measure("naive", n);
    let millions = n as f64 / 1e6;
    println!("{NAME}: UtxoSet {set:.1} B/coin ({set_secs:.1} s to insert {millions}M coins)");
    println!("{NAME}: UtxoSet, outputs of a tx at one height {tx_height:.1} B/coin");
    println!("{NAME}: naive HashMap<OutPoint, TxOut> {naive:.1} B/coin ({naive_secs:.1} s)");
    let rows = [
        Figure {
            label: format!("memory per UTXO, UtxoSet (RSS at {millions}M coins)"),
            value: format!("{set:.1}"),
            unit: "B".into(),
            baseline: format!(
                "Bitcoin Core ~150 B per cached coin; naive HashMap {naive:.1} B (measured)"
            ),
            bar: "≤ 64 B".into(),
        },
        Figure {
            label: format!(
                "memory per UTXO, UtxoSet, outputs of a tx at one height as on mainnet (RSS at {millions}M coins)"
            ),
            value: format!("{tx_height:.1}"),
            unit: "B".into(),
            baseline: format!("UtxoSet on the plain synthetic stream {set:.1} B"),
            bar: "–".into(),
        },
        Figure {
            label: format!(
                "memory per UTXO, naive HashMap<OutPoint, TxOut> (RSS at {millions}M coins)"
            ),
            value: format!("{naive:.1}"),
            unit: "B".into(),
            baseline: "baseline".into(),
            bar: "–".into(),
        },
    ];
    let path = figures::write("utxo-memory", &rows).expect("figures written");
    println!("{NAME}: wrote {}", path.display());
}
