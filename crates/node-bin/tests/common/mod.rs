//! Shared helpers of the `l2btc` integration tests: running the binary, the bundled regtest chain
//! (Bitcoin Core v30.0, see testdata/SOURCE.md) and Core's own statistics for it.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use bitcoin::consensus::{deserialize, serialize};
use bitcoin::{Block, OutPoint};

#[path = "../../src/testutil.rs"]
pub mod testutil;

/// The bundled regtest chain's folder.
pub fn chain_a() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/regtest/chain-a")
}

/// The hex blocks file (gzip), heights 0..=200.
pub fn hex_gz() -> PathBuf {
    chain_a().join("blocks-0-200.hex.gz")
}

/// Runs `l2btc` with `args`.
pub fn l2btc(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_l2btc"))
        .args(args)
        .output()
        .expect("run l2btc")
}

/// stdout of a successful run; panics with stderr otherwise.
pub fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "l2btc failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// stderr of a failed run; panics if it succeeded.
pub fn fails(out: &Output) -> String {
    assert!(
        !out.status.success(),
        "l2btc unexpectedly succeeded: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stderr.clone()).unwrap()
}

/// The 201 blocks of the regtest chain, in order.
pub fn regtest_blocks() -> Vec<Block> {
    let mut text = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(hex_gz()).unwrap())
        .read_to_string(&mut text)
        .unwrap();
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| deserialize(&hex::decode(l.trim()).unwrap()).unwrap())
        .collect()
}

/// Writes `blocks` as a hex file.
pub fn write_hex(path: &Path, blocks: &[Block]) {
    let mut s = String::new();
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for b in blocks {
        for byte in serialize(b) {
            s.push(char::from(DIGITS[usize::from(byte >> 4)]));
            s.push(char::from(DIGITS[usize::from(byte & 15)]));
        }
        s.push('\n');
    }
    std::fs::write(path, s).unwrap();
}

/// Decompresses the bundled `blk00000.dat` beside a copy of its `xor.dat` into `dir`; returns its path.
pub fn blk_file(dir: &Path) -> PathBuf {
    let mut data = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(chain_a().join("blk00000.dat.gz")).unwrap())
        .read_to_end(&mut data)
        .unwrap();
    let p = dir.join("blk00000.dat");
    std::fs::write(&p, data).unwrap();
    std::fs::copy(chain_a().join("xor.dat"), dir.join("xor.dat")).unwrap();
    p
}

/// Satoshis of a decimal BTC text with up to 8 decimals ("8724.98074106").
pub fn sats(text: &str) -> u64 {
    let (int, frac) = text.split_once('.').unwrap_or((text, ""));
    assert!(frac.len() <= 8, "{text}");
    let frac: u64 = format!("{frac:0<8}").parse().unwrap();
    int.parse::<u64>().unwrap() * 100_000_000 + frac
}

/// The raw text of a JSON number field (to compare amounts without a float).
pub fn raw_number(json: &str, key: &str) -> String {
    let at = json
        .find(&format!("\"{key}\""))
        .unwrap_or_else(|| panic!("no {key} in {json}"));
    let rest = &json[at + key.len() + 2..];
    let rest = rest.trim_start().strip_prefix(':').unwrap().trim_start();
    rest.chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect()
}

/// Checks a `utxo-stats`-shaped JSON text against Core's figures at `height`, every field.
pub fn assert_matches_core(json: &str, height: u32) {
    let core: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(chain_a().join("core-utxo-stats.json")).unwrap(),
    )
    .unwrap();
    let at = &core["heights"][height.to_string()];
    let mu = &at["muhash"];
    let hs = &at["hash_serialized_3"];
    let ours: serde_json::Value = serde_json::from_str(json).unwrap();
    assert_eq!(ours["height"], mu["height"], "height");
    assert_eq!(ours["bestblock"], mu["bestblock"], "bestblock");
    assert_eq!(ours["txouts"], mu["txouts"], "txouts");
    assert_eq!(ours["bogosize"], mu["bogosize"], "bogosize");
    assert_eq!(ours["muhash"], mu["muhash"], "muhash");
    assert_eq!(
        ours["hash_serialized_3"], hs["hash_serialized_3"],
        "hash_serialized_3"
    );
    let amount = raw_number(json, "total_amount");
    assert_eq!(
        amount.split_once('.').map(|(_, f)| f.len()),
        Some(8),
        "8 decimals: {amount}"
    );
    assert_eq!(
        sats(&amount),
        sats(mu["total_amount"].as_str().unwrap()),
        "total_amount"
    );
    assert_eq!(
        sats(&amount),
        sats(hs["total_amount"].as_str().unwrap()),
        "total_amount"
    );
}

/// Runs `l2btc --network regtest --datadir <datadir> <args>`.
pub fn l2btc_in(datadir: &Path, args: &[&str]) -> Output {
    let mut all = vec![
        "--network",
        "regtest",
        "--datadir",
        datadir.to_str().unwrap(),
    ];
    all.extend_from_slice(args);
    l2btc(&all)
}

/// `utxo-stats --json` of the regtest datadir `datadir`; panics unless it succeeds.
pub fn utxo_stats_json(datadir: &Path) -> String {
    ok(&l2btc_in(datadir, &["utxo-stats", "--json"]))
}

/// Runs `l2btc verify-chain --network regtest <files> <extra>` (an in-memory replay).
pub fn verify_chain(files: &[&Path], extra: &[&str]) -> Output {
    verify_chain_with_pipeline(files, extra, "on")
}

/// [`verify_chain`] with `L2BTC_PIPELINE` set to `pipeline` (`on`: reader thread and MuHash stage;
/// `off`: one thread).
pub fn verify_chain_with_pipeline(files: &[&Path], extra: &[&str], pipeline: &str) -> Output {
    let mut args = vec!["verify-chain", "--network", "regtest"];
    let files: Vec<String> = files.iter().map(|p| p.display().to_string()).collect();
    args.extend(files.iter().map(String::as_str));
    args.extend_from_slice(extra);
    Command::new(env!("CARGO_BIN_EXE_l2btc"))
        .args(&args)
        .env("L2BTC_PIPELINE", pipeline)
        .output()
        .expect("run l2btc")
}

/// The string field `key` of a JSON object text; panics if there is none.
pub fn json_str(json: &str, key: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(json).unwrap();
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("no {key}"))
        .to_owned()
}

/// How many lines of `text` start with `prefix` (e.g. `"disconnected "` in import-blocks output).
pub fn count_lines_starting(text: &str, prefix: &str) -> usize {
    text.lines().filter(|l| l.starts_with(prefix)).count()
}

/// A coinbase output of the first 100 blocks that no block spends (50 BTC), and its height.
pub fn unspent_coinbase(blocks: &[Block]) -> (OutPoint, usize) {
    let spent: HashSet<OutPoint> = blocks
        .iter()
        .flat_map(|b| b.txdata.iter().flat_map(|t| t.input.iter()))
        .map(|i| i.previous_output)
        .collect();
    (1..=100)
        .map(|h| {
            let op = OutPoint {
                txid: blocks[h].txdata[0].compute_txid(),
                vout: 0,
            };
            (op, h)
        })
        .find(|(op, _)| !spent.contains(op))
        .unwrap()
}
