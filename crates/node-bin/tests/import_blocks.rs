//! `l2btc import-blocks`, `utxo-stats`, `utxo-get` and `snapshot` end to end on the Bitcoin Core
//! regtest chain: stored statistics equal Core's, imports resume, reorganisations pick the most-work
//! chain within and across runs, and snapshots round-trip (Core's `dumptxoutset` byte for byte).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;

#[test]
fn import_matches_core_and_resumes() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("dd");
    let hex = hex_gz();
    let out = ok(&l2btc_in(
        &d,
        &[
            "import-blocks",
            hex.to_str().unwrap(),
            "--stop-height",
            "100",
        ],
    ));
    assert_eq!(count_lines_starting(&out, "durable "), 101);
    // The statistics thread left its cache for the tip: utxo-stats takes MuHash from it.
    assert!(d.join("stats.dat").exists());
    assert_matches_core(&utxo_stats_json(&d), 100);
    // Resume: only the rest is connected.
    let run = l2btc_in(&d, &["import-blocks", hex.to_str().unwrap()]);
    let out = ok(&run);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 100, "{out}");
    assert!(lines[0].starts_with("durable 101 "), "{out}");
    assert!(String::from_utf8_lossy(&run.stderr).contains("101 already known"));
    assert_matches_core(&utxo_stats_json(&d), 200);
    // Nothing left to do.
    assert_eq!(
        ok(&l2btc_in(&d, &["import-blocks", hex.to_str().unwrap()])),
        ""
    );
    // A coin: the first coinbase output no later block spends (50 BTC).
    let (coin, h) = unspent_coinbase(&regtest_blocks());
    let got = ok(&l2btc_in(&d, &["utxo-get", &coin.to_string(), "--json"]));
    let v: serde_json::Value = serde_json::from_str(&got).unwrap();
    assert_eq!(raw_number(&got, "value"), "50.00000000");
    assert_eq!(v["height"], h);
    assert_eq!(v["coinbase"], true);
    assert_eq!(v["confirmations"], 201 - h);
    // A spent or unknown output fails.
    let err = fails(&l2btc_in(&d, &["utxo-get", &format!("{}:1", coin.txid)]));
    assert!(err.contains("not in the UTXO set"), "{err}");
    let err = fails(&l2btc_in(&d, &["utxo-get", "nonsense"]));
    assert!(err.contains("TXID:VOUT"), "{err}");
}

#[test]
fn a_resume_without_the_statistics_cache_recomputes_muhash_in_the_background() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("dd");
    let hex = hex_gz();
    let file = hex.to_str().unwrap();
    ok(&l2btc_in(
        &d,
        &["import-blocks", file, "--stop-height", "150"],
    ));
    let cache = d.join("stats.dat");
    std::fs::remove_file(&cache).unwrap();
    // The next run starts its statistics thread from every stored coin, then follows the blocks.
    ok(&l2btc_in(&d, &["import-blocks", file]));
    assert!(cache.exists());
    // utxo-stats uses the cache it wrote (it describes the tip), and it matches Core.
    assert_matches_core(&utxo_stats_json(&d), 200);
    // A cache for another tip is not used: overwrite it with the one from height 150's run.
    let stale = tmp.path().join("stale");
    ok(&l2btc_in(
        &stale,
        &["import-blocks", file, "--stop-height", "150"],
    ));
    std::fs::copy(stale.join("stats.dat"), &cache).unwrap();
    assert_matches_core(&utxo_stats_json(&d), 200);
}

#[test]
fn import_from_xored_blk_file_matches_core() {
    let tmp = tempfile::tempdir().unwrap();
    let blk = blk_file(tmp.path());
    let d = tmp.path().join("dd");
    ok(&l2btc_in(&d, &["import-blocks", blk.to_str().unwrap()]));
    assert_matches_core(&utxo_stats_json(&d), 200);
    // Another network's datadir flags are refused.
    let err = fails(&l2btc(&[
        "--network",
        "signet",
        "--datadir",
        d.to_str().unwrap(),
        "utxo-stats",
    ]));
    assert!(err.to_lowercase().contains("network"), "{err}");
}

#[test]
fn dump_core_is_byte_identical_to_cores_dumptxoutset() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("dd");
    ok(&l2btc_in(
        &d,
        &["import-blocks", hex_gz().to_str().unwrap()],
    ));
    let ours = tmp.path().join("ours.dat");
    ok(&l2btc_in(
        &d,
        &["snapshot", "dump-core", ours.to_str().unwrap()],
    ));
    let core = std::fs::read(chain_a().join("utxo-snapshot-200.dat")).unwrap();
    let ours = std::fs::read(ours).unwrap();
    assert_eq!(ours.len(), core.len());
    assert!(ours == core, "dump differs from Core's file");
}

#[test]
fn load_core_reproduces_cores_stats_then_import_continues() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("dd");
    let hex = hex_gz();
    let core: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(chain_a().join("utxo-snapshot-200.json")).unwrap(),
    )
    .unwrap();
    let snap = chain_a().join("utxo-snapshot-200.dat");
    // The base block must be known first.
    let err = fails(&l2btc_in(
        &d,
        &["snapshot", "load-core", snap.to_str().unwrap()],
    ));
    assert!(err.contains("74afd291"), "{err}");
    ok(&l2btc_in(
        &d,
        &["import-blocks", "--headers-only", hex.to_str().unwrap()],
    ));
    // A wrong expected hash is refused and leaves the store empty.
    let wrong = "00".repeat(32);
    fails(&l2btc_in(
        &d,
        &[
            "snapshot",
            "load-core",
            snap.to_str().unwrap(),
            "--hash-serialized-3",
            &wrong,
        ],
    ));
    fails(&l2btc_in(&d, &["utxo-stats"]));
    let expected = core["txoutset_hash"].as_str().unwrap();
    ok(&l2btc_in(
        &d,
        &[
            "snapshot",
            "load-core",
            snap.to_str().unwrap(),
            "--hash-serialized-3",
            expected,
        ],
    ));
    assert_matches_core(&utxo_stats_json(&d), 200);
    // Blocks up to the snapshot are known; importing them again changes nothing.
    ok(&l2btc_in(&d, &["import-blocks", hex.to_str().unwrap()]));
    assert_matches_core(&utxo_stats_json(&d), 200);
}

#[test]
fn snapshot_export_import_roundtrip_and_corruption() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let hex = hex_gz();
    ok(&l2btc_in(&a, &["import-blocks", hex.to_str().unwrap()]));
    let snap = tmp.path().join("snap.dat");
    ok(&l2btc_in(
        &a,
        &["snapshot", "export", snap.to_str().unwrap()],
    ));
    ok(&l2btc_in(
        &b,
        &["import-blocks", "--headers-only", hex.to_str().unwrap()],
    ));
    // A flipped bit anywhere is refused, with nothing stored.
    let bytes = std::fs::read(&snap).unwrap();
    let mut bad = bytes.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0x10;
    let badp = tmp.path().join("bad.dat");
    std::fs::write(&badp, bad).unwrap();
    fails(&l2btc_in(
        &b,
        &["snapshot", "import", badp.to_str().unwrap()],
    ));
    fails(&l2btc_in(&b, &["utxo-stats"]));
    // Another network's datadir refuses it.
    let c = tmp.path().join("c");
    fails(&l2btc(&[
        "--network",
        "signet",
        "--datadir",
        c.to_str().unwrap(),
        "snapshot",
        "import",
        snap.to_str().unwrap(),
    ]));
    ok(&l2btc_in(
        &b,
        &["snapshot", "import", snap.to_str().unwrap()],
    ));
    assert_eq!(utxo_stats_json(&b), utxo_stats_json(&a));
    assert_matches_core(&utxo_stats_json(&b), 200);
}

/// `n` blocks on top of `base` (at `height`), each with a coinbase only.
fn branch(base: &bitcoin::Block, height: u32, n: u32, tag: u32) -> Vec<bitcoin::Block> {
    testutil::mine_chain(base, height, n, tag)
}

#[test]
fn most_work_chain_wins_within_and_across_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let blocks = regtest_blocks();
    // A: the regtest chain to 130 (blocks 110..130 carry real spends, which reorgs must restore).
    let hex = tmp.path().join("a.hex");
    write_hex(&hex, &blocks[..=130]);
    // B forks after 120 and outgrows A at 131.
    let b = branch(&blocks[120], 120, 15, 2);
    let b_file = tmp.path().join("b.hex");
    write_hex(&b_file, &b);
    // A' extends A past B: 136 > 135.
    let a2 = branch(&blocks[130], 130, 6, 3);
    let a2_file = tmp.path().join("a2.hex");
    write_hex(&a2_file, &a2);
    // References from in-memory replays of the same chains.
    let ref_b = tmp.path().join("ref-b.hex");
    write_hex(&ref_b, &[&blocks[..=120], &b[..]].concat());
    let ref_b = ok(&verify_chain(&[&ref_b], &["--json"]));
    let ref_a = ok(&verify_chain(&[&hex], &["--json"]));
    let ref_a2 = ok(&verify_chain(&[&hex, &a2_file], &["--json"]));
    assert!(ref_b.contains("\"height\": 135"));
    assert!(ref_a2.contains("\"height\": 136"));

    // Within one run: both files, the reorganisation happens as B overtakes A.
    let one = tmp.path().join("one");
    let out = ok(&l2btc_in(
        &one,
        &[
            "import-blocks",
            hex.to_str().unwrap(),
            b_file.to_str().unwrap(),
        ],
    ));
    assert_eq!(count_lines_starting(&out, "disconnected "), 10, "{out}");
    let first = out
        .lines()
        .find(|l| l.starts_with("disconnected "))
        .unwrap();
    assert!(first.starts_with("disconnected 130 "), "{out}");
    assert_eq!(utxo_stats_json(&one), ref_b);

    // Across runs: A stored first, then B alone in a new run (its fork point is in the index).
    let two = tmp.path().join("two");
    ok(&l2btc_in(&two, &["import-blocks", hex.to_str().unwrap()]));
    assert_eq!(utxo_stats_json(&two), ref_a);
    let out = ok(&l2btc_in(
        &two,
        &["import-blocks", b_file.to_str().unwrap()],
    ));
    assert_eq!(count_lines_starting(&out, "disconnected "), 10, "{out}");
    assert_eq!(utxo_stats_json(&two), ref_b);
    // Back to A when A' makes it longer: A's blocks come again from its file.
    let out = ok(&l2btc_in(
        &two,
        &[
            "import-blocks",
            hex.to_str().unwrap(),
            a2_file.to_str().unwrap(),
        ],
    ));
    assert_eq!(count_lines_starting(&out, "disconnected "), 15, "{out}");
    assert_eq!(utxo_stats_json(&two), ref_a2);
    // A shorter branch never displaces the tip.
    let short = branch(&blocks[125], 125, 3, 4);
    let short_file = tmp.path().join("short.hex");
    write_hex(&short_file, &short);
    assert_eq!(
        ok(&l2btc_in(
            &two,
            &["import-blocks", short_file.to_str().unwrap()]
        )),
        ""
    );
    assert_eq!(utxo_stats_json(&two), ref_a2);
}

#[test]
fn invalid_block_stops_import_keeping_what_came_before() {
    let tmp = tempfile::tempdir().unwrap();
    let blocks = regtest_blocks();
    let spend = bitcoin::Transaction {
        version: bitcoin::transaction::Version::TWO,
        lock_time: bitcoin::absolute::LockTime::ZERO,
        input: vec![bitcoin::TxIn {
            previous_output: bitcoin::OutPoint {
                txid: blocks[120].txdata[0].compute_txid(),
                vout: 0,
            },
            ..Default::default()
        }],
        output: vec![bitcoin::TxOut {
            value: bitcoin::Amount::from_sat(1000),
            script_pubkey: bitcoin::ScriptBuf::from_bytes(vec![0x51]),
        }],
    };
    // Spends a coinbase 1 block old: immature.
    let bad = testutil::mine_block(&blocks[120], 121, 9, vec![spend]);
    let file = tmp.path().join("bad.hex");
    write_hex(&file, &[&blocks[..=120], &[bad.clone()][..]].concat());
    let d = tmp.path().join("dd");
    let run = l2btc_in(&d, &["import-blocks", file.to_str().unwrap()]);
    let err = fails(&run);
    assert!(
        err.contains(&format!("invalid block {} at height 121", bad.block_hash())),
        "{err}"
    );
    assert!(err.contains("spends coinbase output"), "{err}");
    // Everything before it was acknowledged and is stored.
    let out = String::from_utf8(run.stdout).unwrap();
    assert!(
        out.lines().last().unwrap().starts_with("durable 120 "),
        "{out}"
    );
    let reference = ok(&verify_chain(&[&file], &["--stop-height", "120", "--json"]));
    assert_eq!(utxo_stats_json(&d), reference);
}
