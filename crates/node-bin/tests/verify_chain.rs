//! `l2btc verify-chain` end to end: the Bitcoin Core regtest chain replayed from hex and from XOR-ed
//! blk files matches Core's own `gettxoutsetinfo` at heights 100 and 200; bad inputs fail clearly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use bitcoin::hashes::Hash;
use bitcoin::{OutPoint, Txid};
use common::*;

#[test]
fn hex_replay_matches_core_at_100_and_200() {
    let hex = hex_gz();
    let out = verify_chain(&[&hex], &["--json"]);
    assert_matches_core(&ok(&out), 200);
    // Piped stderr: no progress bar drawn.
    assert!(
        !out.stderr.contains(&0x1b) && !out.stderr.contains(&b'\r'),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_matches_core(
        &ok(&verify_chain(&[&hex], &["--json", "--stop-height", "100"])),
        100,
    );
}

#[test]
fn blk_xor_replay_matches_core_at_100_and_200() {
    let dir = tempfile::tempdir().unwrap();
    let blk = blk_file(dir.path());
    assert_matches_core(&ok(&verify_chain(&[&blk], &["--json"])), 200);
    // Global flags after the subcommand's arguments, too; a directory stands for its blk files.
    let out = l2btc(&[
        "verify-chain",
        dir.path().to_str().unwrap(),
        "--stop-height",
        "100",
        "--json",
        "--network",
        "regtest",
    ]);
    assert_matches_core(&ok(&out), 100);
}

#[test]
fn table_output_without_json() {
    let out = ok(&l2btc(&[
        "--network",
        "regtest",
        "verify-chain",
        hex_gz().to_str().unwrap(),
        "--stop-height",
        "100",
    ]));
    assert!(
        out.contains("total_amount       5000.00000000 BTC"),
        "{out}"
    );
    assert!(
        out.contains("55f37df9e02f53dbd73bc1ef0e6dc0516d635eeb1809c0d8df927e5a6052c613"),
        "{out}"
    );
}

#[test]
fn wrong_network_magic_names_file_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    let blk = blk_file(dir.path());
    let err = fails(&l2btc(&[
        "verify-chain",
        "--network",
        "mainnet",
        blk.to_str().unwrap(),
    ]));
    assert!(
        err.contains("blk00000.dat: offset 0: network magic fabfb5da (regtest)"),
        "{err}"
    );
    assert!(err.contains("--network mainnet"), "{err}");
}

#[test]
fn truncated_blk_file_names_file_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    let blk = blk_file(dir.path());
    let key = std::fs::read(dir.path().join("xor.dat")).unwrap();
    let data = std::fs::read(&blk).unwrap();
    let plain = |i: usize| data[i] ^ key[i % 8];
    let len = u32::from_le_bytes([plain(4), plain(5), plain(6), plain(7)]) as usize;
    let second = 8 + len;
    std::fs::write(&blk, &data[..second + 8 + 20]).unwrap();
    let err = fails(&verify_chain(&[&blk], &[]));
    assert!(
        err.contains(&format!("blk00000.dat: truncated at offset {second}")),
        "{err}"
    );
}

#[test]
fn missing_middle_block_never_connects() {
    let dir = tempfile::tempdir().unwrap();
    let blocks = regtest_blocks();
    let mut some: Vec<_> = blocks[..20].to_vec();
    some.remove(10);
    let p = dir.path().join("gap.hex");
    write_hex(&p, &some);
    let err = fails(&verify_chain(&[&p], &[]));
    assert!(
        err.contains(&format!("block {} ", blocks[11].block_hash())),
        "{err}"
    );
    assert!(err.contains("never connects"), "{err}");
    assert!(err.contains(&blocks[10].block_hash().to_string()), "{err}");
}

#[test]
fn block_spending_a_missing_input_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let blocks = regtest_blocks();
    let mut chain = blocks[..=150].to_vec();
    let spend = bitcoin::Transaction {
        version: bitcoin::transaction::Version::TWO,
        lock_time: bitcoin::absolute::LockTime::ZERO,
        input: vec![bitcoin::TxIn {
            previous_output: OutPoint {
                txid: Txid::from_byte_array([7; 32]),
                vout: 3,
            },
            ..Default::default()
        }],
        output: vec![bitcoin::TxOut {
            value: bitcoin::Amount::from_sat(1000),
            script_pubkey: bitcoin::ScriptBuf::from_bytes(vec![0x51]),
        }],
    };
    let bad = testutil::mine_block(&blocks[150], 151, 9, vec![spend.clone()]);
    chain.push(bad.clone());
    let p = dir.path().join("bad.hex");
    write_hex(&p, &chain);
    let err = fails(&verify_chain(&[&p], &[]));
    assert!(
        err.contains(&format!("invalid block {} at height 151", bad.block_hash())),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "transaction {} spends missing or spent output {}",
            spend.compute_txid(),
            spend.input[0].previous_output
        )),
        "{err}"
    );
}

#[test]
fn bad_hex_line_names_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let blocks = regtest_blocks();
    let p = dir.path().join("blocks.hex");
    write_hex(&p, &blocks[..3]);
    let mut text = std::fs::read_to_string(&p).unwrap();
    text.push_str("00ff00zz\n");
    std::fs::write(&p, text).unwrap();
    let err = fails(&verify_chain(&[&p], &[]));
    assert!(err.contains("blocks.hex:4: bad hex block"), "{err}");
}

#[test]
fn files_given_in_any_order_and_split() {
    // The chain split over two files given in reverse order: later blocks wait for their parents.
    let dir = tempfile::tempdir().unwrap();
    let blocks = regtest_blocks();
    let (a, b) = (dir.path().join("a.hex"), dir.path().join("b.hex"));
    write_hex(&a, &blocks[..60]);
    write_hex(&b, &blocks[60..=100]);
    assert_matches_core(&ok(&verify_chain(&[&b, &a], &["--json"])), 100);
}

#[test]
fn one_thread_and_pipeline_agree_with_core_and_through_a_reorganisation() {
    let dir = tempfile::tempdir().unwrap();
    let blocks = regtest_blocks();
    // A: the regtest chain to 130 (blocks 110..130 spend coins, which the reorg must restore);
    // B forks after 120 and outgrows A at 131, so replaying A then B disconnects ten blocks.
    let a = dir.path().join("a.hex");
    write_hex(&a, &blocks[..=130]);
    let b = testutil::mine_chain(&blocks[120], 120, 15, 2);
    let b_file = dir.path().join("b.hex");
    write_hex(&b_file, &b);
    let direct = dir.path().join("direct.hex");
    write_hex(&direct, &[&blocks[..=120], &b[..]].concat());
    let reference = ok(&verify_chain_with_pipeline(&[&direct], &["--json"], "off"));
    assert!(reference.contains("\"height\": 135"), "{reference}");
    for pipeline in ["on", "off"] {
        let reorged = ok(&verify_chain_with_pipeline(
            &[&a, &b_file],
            &["--json"],
            pipeline,
        ));
        assert_eq!(reorged, reference, "L2BTC_PIPELINE={pipeline}");
        let whole = hex_gz();
        assert_matches_core(
            &ok(&verify_chain_with_pipeline(
                &[&whole],
                &["--json"],
                pipeline,
            )),
            200,
        );
    }
    let bad = verify_chain_with_pipeline(&[&a], &["--json"], "2");
    assert!(fails(&bad).contains("L2BTC_PIPELINE"));
}
