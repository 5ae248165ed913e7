//! `l2btc prove`, `verify-proof` and the `commitment_root` of `utxo-stats` / `verify-chain` end to
//! end on the Bitcoin Core regtest chain: inclusion and exclusion proofs verify against the stored
//! root and fail against any other root or with a flipped byte; the JSON form round-trips; the root
//! kept per block through a reorganisation equals a from-scratch rebuild.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;

use common::*;

fn verify(file: &Path, root: &str) -> std::process::Output {
    l2btc(&["verify-proof", file.to_str().unwrap(), "--root", root])
}

#[test]
fn binary_and_json_proofs_verify_against_the_stored_root_only() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("dd");
    ok(&l2btc_in(
        &d,
        &["import-blocks", hex_gz().to_str().unwrap()],
    ));
    let stats = utxo_stats_json(&d);
    assert_matches_core(&stats, 200);
    let root = json_str(&stats, "commitment_root");
    assert_eq!(root.len(), 64, "{root}");
    let other = format!(
        "{}{}",
        if &root[..1] == "0" { "1" } else { "0" },
        &root[1..]
    );

    // Inclusion: a coin in the set, binary to a file.
    let (coin, h) = unspent_coinbase(&regtest_blocks());
    let coin_text = coin.to_string();
    let present = tmp.path().join("present.bin");
    let run = l2btc_in(
        &d,
        &["prove", &coin_text, "--out", present.to_str().unwrap()],
    );
    ok(&run);
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(
        err.contains("inclusion proof") && err.contains(&root),
        "{err}"
    );
    let out = ok(&verify(&present, &root));
    assert!(
        out.contains(&format!(
            "{coin} is in the set: 5000000000 sat, height {h}, coinbase true"
        )),
        "{out}"
    );

    // Exclusion: an outpoint no block created, binary on stdout.
    let absent = format!("{}:7", "ab".repeat(32));
    let run = l2btc_in(&d, &["prove", &absent]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let bytes = run.stdout.clone();
    assert_eq!(bytes.first(), Some(&1), "binary encoding, version 1");
    assert!(String::from_utf8_lossy(&run.stderr).contains("exclusion proof"));
    let absent_bin = tmp.path().join("absent.bin");
    std::fs::write(&absent_bin, &bytes).unwrap();
    let out = ok(&verify(&absent_bin, &root));
    assert!(
        out.contains(&format!("{absent} is not in the set")),
        "{out}"
    );

    // Another root: refused with the reason.
    for p in [&present, &absent_bin] {
        let err = fails(&verify(p, &other));
        assert!(err.contains("NOT valid") && err.contains(&root), "{err}");
    }
    // Not a root at all.
    let err = fails(&verify(&present, "abc"));
    assert!(err.contains("64 hex digits"), "{err}");

    // A flipped byte anywhere (version, claim, tree, checksum) is refused.
    let good = std::fs::read(&present).unwrap();
    let bad = tmp.path().join("bad.bin");
    for at in [0, 3, 10, good.len() / 2, good.len() - 5, good.len() - 1] {
        let mut b = good.clone();
        b[at] ^= 0x01;
        std::fs::write(&bad, &b).unwrap();
        let err = fails(&verify(&bad, &root));
        assert!(
            err.contains("not a valid") || err.contains("NOT valid"),
            "byte {at}: {err}"
        );
    }
    // A truncated file too.
    std::fs::write(&bad, &good[..good.len() - 10]).unwrap();
    fails(&verify(&bad, &root));

    // The JSON form (one import for both parts: the tests drive a debug binary).
    let json = ok(&l2btc_in(&d, &["prove", &coin_text, "--json"]));
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["version"], 1);
    assert_eq!(v["claims"][0]["outpoint"], coin_text);
    let file = tmp.path().join("proof.json");
    std::fs::write(&file, &json).unwrap();
    let out = ok(&verify(&file, &root));
    assert!(out.contains(&format!("{coin} is in the set")), "{out}");
    // The same proof as --out JSON is the same text.
    let out_file = tmp.path().join("out.json");
    ok(&l2btc_in(
        &d,
        &[
            "prove",
            &coin_text,
            "--json",
            "--out",
            out_file.to_str().unwrap(),
        ],
    ));
    assert_eq!(std::fs::read_to_string(&out_file).unwrap(), json);
    // A changed amount in the claim no longer holds.
    let mut tampered = v.clone();
    let text = serde_json::to_string(&tampered["claims"][0]).unwrap();
    assert!(text.contains("5000000000"), "{text}");
    let changed: serde_json::Value =
        serde_json::from_str(&text.replace("5000000000", "5000000001")).unwrap();
    tampered["claims"][0] = changed;
    std::fs::write(&file, tampered.to_string()).unwrap();
    let err = fails(&verify(&file, &root));
    assert!(err.contains("NOT valid"), "{err}");
    // Not a proof at all.
    std::fs::write(&file, "{\"version\": 1}").unwrap();
    let err = fails(&verify(&file, &root));
    assert!(err.contains("not a valid JSON proof"), "{err}");
}

#[test]
fn root_follows_a_reorganisation_and_equals_a_rebuild() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("dd");
    let blocks = regtest_blocks();
    // Blocks 116..=125 carry spends, so disconnecting them restores spent coins.
    assert!(blocks[116..=125].iter().any(|b| b.txdata.len() > 1));
    let main = tmp.path().join("main.hex");
    write_hex(&main, &blocks[..=125]);
    ok(&l2btc_in(&d, &["import-blocks", main.to_str().unwrap()]));
    let before = json_str(&utxo_stats_json(&d), "commitment_root");
    // A longer branch from 115 wins in a second run: 10 blocks out, 12 in.
    let fork = testutil::mine_chain(&blocks[115], 115, 12, 7);
    let fork_file = tmp.path().join("fork.hex");
    write_hex(&fork_file, &fork);
    let out = ok(&l2btc_in(
        &d,
        &["import-blocks", fork_file.to_str().unwrap()],
    ));
    assert_eq!(count_lines_starting(&out, "disconnected "), 10, "{out}");
    // utxo-stats rebuilds from the stored coins and checks the root logged with the tip block.
    let stored = utxo_stats_json(&d);
    let after = json_str(&stored, "commitment_root");
    assert_ne!(after, before);
    let mut all = blocks[..=115].to_vec();
    all.extend(fork);
    let replay = tmp.path().join("replay.hex");
    write_hex(&replay, &all);
    let mem = ok(&verify_chain(&[&replay], &["--json"]));
    assert_eq!(json_str(&mem, "commitment_root"), after);
    assert_eq!(
        json_str(&mem, "hash_serialized_3"),
        json_str(&stored, "hash_serialized_3")
    );
}
