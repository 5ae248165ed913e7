//! Crash safety of `l2btc import-blocks`: the process is SIGKILLed at seeded random moments (at least
//! [`KILLS_MIN`] times) while importing the Bitcoin Core regtest chain, and restarted each time. After
//! every kill the stored state (read by a fresh `l2btc utxo-stats`, which recovers the store) must equal
//! the state of a clean replay at the recovered height, and every height the killed process had
//! reported as durable (`durable <height> <hash>` on stdout) must be there.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use bitcoin::Network;
use common::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use utxo_core::{ChainParams, SetOptions, UtxoSet};

/// Kills the test must do.
const KILLS_MIN: u32 = 50;
/// The seed: change it to explore, report it to reproduce.
const SEED: u64 = 0x6b69_6c6c;

/// A clean replay's statistics at one height.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Expected {
    hash: String,
    txouts: u64,
    bogosize: u64,
    total_sat: u64,
    muhash: String,
    hash_serialized_3: String,
}

/// Replays the chain in memory (utxo-core directly, not the binary) and records every height.
fn clean_run(blocks: &[bitcoin::Block]) -> Vec<Expected> {
    let set = UtxoSet::with_options(SetOptions {
        params: ChainParams::for_network(Network::Regtest),
        ..SetOptions::default()
    });
    let mut out = Vec::new();
    for (h, b) in blocks.iter().enumerate() {
        set.apply_block(b, u32::try_from(h).unwrap()).unwrap();
        let s = set.stats();
        let sorted = set.sorted_coins();
        out.push(Expected {
            hash: b.block_hash().to_string(),
            txouts: s.txouts,
            bogosize: s.bogosize,
            total_sat: s.total_amount.to_sat(),
            muhash: s.muhash_hex().unwrap(),
            hash_serialized_3: utxo_core::hash_serialized_3(sorted.iter().map(|(o, c)| (o, c)))
                .to_string(),
        });
    }
    out
}

/// The stored state after a restart: `None` when no block was stored yet.
fn recovered(datadir: &std::path::Path) -> Option<(u32, Expected)> {
    let out = l2btc_in(datadir, &["utxo-stats", "--json"]);
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("holds no blocks"),
            "utxo-stats failed after a kill: {err}"
        );
        return None;
    }
    let text = String::from_utf8(out.stdout).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let height = u32::try_from(v["height"].as_u64().unwrap()).unwrap();
    Some((
        height,
        Expected {
            hash: v["bestblock"].as_str().unwrap().to_string(),
            txouts: v["txouts"].as_u64().unwrap(),
            bogosize: v["bogosize"].as_u64().unwrap(),
            total_sat: sats(&raw_number(&text, "total_amount")),
            muhash: v["muhash"].as_str().unwrap().to_string(),
            hash_serialized_3: v["hash_serialized_3"].as_str().unwrap().to_string(),
        },
    ))
}

#[test]
fn sigkill_during_import_loses_nothing_acknowledged() {
    let blocks = regtest_blocks();
    let expected = clean_run(&blocks);
    let tip = u32::try_from(blocks.len() - 1).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let blk = blk_file(tmp.path());
    let mut rng = ChaCha8Rng::seed_from_u64(SEED);
    let (mut kills, mut rounds, mut restarts) = (0u32, 0u32, 0u32);
    let mut recovered_heights = Vec::new();
    let mut datadir = tmp.path().join("round-0");
    // Heights reported durable in the current round, with their hashes.
    let mut reported: BTreeMap<u32, String> = BTreeMap::new();
    while kills < KILLS_MIN {
        let mut child = Command::new(env!("CARGO_BIN_EXE_l2btc"))
            .args([
                "--network",
                "regtest",
                "--datadir",
                datadir.to_str().unwrap(),
                "import-blocks",
            ])
            .arg(&blk)
            // Small checkpoints so that kills also land in and around redb checkpoints.
            .args(["--checkpoint-wal-bytes", "65536"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        restarts += 1;
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel::<String>();
        let reader = std::thread::spawn(move || {
            let mut r = BufReader::new(stdout);
            let mut line = Vec::new();
            // Only complete lines count: a line cut by the kill was never fully reported.
            while r.read_until(b'\n', &mut line).unwrap_or(0) > 0 {
                if line.ends_with(b"\n") {
                    let _ = tx.send(String::from_utf8_lossy(&line).trim().to_string());
                }
                line.clear();
            }
        });
        // Kill either after a random number of acknowledgements plus a little jitter (lands anywhere
        // in the import), or after a random delay from the start (lands in startup and recovery).
        if rng.random_bool(0.25) {
            std::thread::sleep(Duration::from_millis(rng.random_range(0..300)));
        } else {
            let want = rng.random_range(1..=40);
            let mut seen = 0;
            while seen < want {
                match rx.recv_timeout(Duration::from_secs(120)) {
                    Ok(l) => {
                        if l.starts_with("durable ") {
                            seen += 1;
                        }
                        let (h, hash) = parse(&l);
                        reported.insert(h, hash);
                    }
                    Err(mpsc::RecvTimeoutError::Disconnected) => break,
                    Err(mpsc::RecvTimeoutError::Timeout) => {
                        panic!("import-blocks made no progress")
                    }
                }
            }
            std::thread::sleep(Duration::from_micros(rng.random_range(0..20_000)));
        }
        let finished = child.try_wait().unwrap();
        if finished.is_none() {
            child.kill().unwrap();
            kills += 1;
        }
        let status = child.wait().unwrap();
        reader.join().unwrap();
        for l in rx.try_iter() {
            let (h, hash) = parse(&l);
            reported.insert(h, hash);
        }
        // Restart: recover and compare with the clean run.
        let state = recovered(&datadir);
        let height = state.as_ref().map(|(h, _)| *h);
        if let Some((&top, _)) = reported.last_key_value() {
            assert!(
                height.is_some_and(|h| h >= top),
                "height {top} was reported durable, recovered {height:?}"
            );
        }
        for (h, hash) in &reported {
            assert_eq!(hash, &expected[*h as usize].hash, "reported hash at {h}");
        }
        if let Some((h, got)) = state {
            assert_eq!(
                got, expected[h as usize],
                "state after restart at height {h} (kill {kills})"
            );
            recovered_heights.push(h);
        }
        if finished.is_some() {
            assert!(
                status.success(),
                "import-blocks failed on its own: {status}"
            );
            assert_eq!(height, Some(tip));
            rounds += 1;
            datadir = tmp.path().join(format!("round-{rounds}"));
            reported.clear();
        }
    }
    recovered_heights.sort_unstable();
    let mut distinct = recovered_heights.clone();
    distinct.dedup();
    let line = format!(
        "kill test: {kills} SIGKILLs, {restarts} restarts, {rounds} complete imports, seed {SEED:#x}; recovered heights {:?}..={:?} ({} distinct)\n",
        recovered_heights.first(),
        recovered_heights.last(),
        distinct.len()
    );
    // Straight to the process's stderr, past the test harness's capture, so CI logs show it.
    std::io::Write::write_all(&mut std::io::stderr(), line.as_bytes()).unwrap();
    assert!(kills >= KILLS_MIN);
}

/// `durable <height> <hash>` → (height, hash).
fn parse(line: &str) -> (u32, String) {
    let mut it = line.split_whitespace();
    assert_eq!(
        it.next(),
        Some("durable"),
        "unexpected output line {line:?}"
    );
    let h = it.next().unwrap().parse().unwrap();
    (h, it.next().unwrap().to_string())
}
