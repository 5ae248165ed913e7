//! The commitment root in our snapshots (format version 2) end to end on the Bitcoin Core regtest
//! chain: `snapshot export` writes the tip's root, `snapshot import` rebuilds the commitment from
//! the coins and refuses a file whose root does not match (a forged root, checksum recomputed),
//! leaving the datadir as before; a format-1 file written by an older build still imports, with a
//! warning.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};

use bitcoin::Network;
use common::*;
use wal_store::snapshot::{SNAPSHOT_FORMAT_VERSION, SnapshotReader, write_snapshot_with_root};

fn root_of(stats_json: &str) -> String {
    let r = json_str(stats_json, "commitment_root");
    assert_eq!(r.len(), 64, "{r}");
    r
}

/// The format-1 snapshot of the regtest chain at height 100, written by an older build.
fn v1_fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/snapshot-format-1-regtest-100.l2utxo")
}

/// The datadir files outside the store (the store's own files, redb's pages and the WAL segment,
/// are rewritten by any open; its content is checked through `utxo-stats`).
fn files_outside_the_store(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| (p.clone(), std::fs::read(&p).unwrap()))
        .collect();
    out.sort();
    out
}

#[test]
fn export_import_keeps_the_commitment_root_and_a_forged_root_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let hex = hex_gz();
    ok(&l2btc_in(&a, &["import-blocks", hex.to_str().unwrap()]));
    let stats_a = utxo_stats_json(&a);
    let root = root_of(&stats_a);
    let snap = tmp.path().join("snap.l2utxo");
    let out = l2btc_in(&a, &["snapshot", "export", snap.to_str().unwrap()]);
    ok(&out);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains(&format!("commitment root {root}")), "{said}");

    // The file is format version 2 and carries the root utxo-stats shows, at bytes 92..124.
    let bytes = std::fs::read(&snap).unwrap();
    assert_eq!(bytes[8..12], SNAPSHOT_FORMAT_VERSION.to_le_bytes());
    assert_eq!(hex::encode(&bytes[92..124]), root);

    // A forged root: the coins and every other field unchanged, the checksum valid.
    let reader = SnapshotReader::new(&bytes[..], Network::Regtest).unwrap();
    let header = *reader.header();
    let coins: Vec<_> = reader.map(Result::unwrap).collect();
    let mut forged_root: [u8; 32] = bytes[92..124].try_into().unwrap();
    forged_root[31] ^= 1;
    let mut forged = Vec::new();
    write_snapshot_with_root(&mut forged, &header, Some(forged_root), coins).unwrap();
    assert_eq!(forged.len(), bytes.len());
    let forged_path = tmp.path().join("forged.l2utxo");
    std::fs::write(&forged_path, &forged).unwrap();

    ok(&l2btc_in(
        &b,
        &["import-blocks", "--headers-only", hex.to_str().unwrap()],
    ));
    let before = files_outside_the_store(&b);
    let err = fails(&l2btc_in(
        &b,
        &["snapshot", "import", forged_path.to_str().unwrap()],
    ));
    assert!(err.contains("commitment root mismatch"), "{err}");
    assert!(err.contains(&hex::encode(forged_root)), "{err}");
    assert!(err.contains(&root), "{err}");
    assert!(err.contains("datadir is as before"), "{err}");
    // Nothing was imported: headers.dat (and any other file beside the store) is as before, and
    // the store holds no set (the committed chunks were wiped before the error returned).
    assert!(!before.is_empty());
    assert!(
        files_outside_the_store(&b) == before,
        "the refused import changed the datadir"
    );
    let empty = fails(&l2btc_in(&b, &["utxo-stats"]));
    assert!(empty.contains("no blocks"), "{empty}");

    // The genuine file imports; utxo-stats shows the same root and Core's figures.
    let out = l2btc_in(&b, &["snapshot", "import", snap.to_str().unwrap()]);
    ok(&out);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains(&format!("commitment root {root} of the file matches")),
        "{said}"
    );
    assert!(!said.contains("warning"), "{said}");
    let stats_b = utxo_stats_json(&b);
    assert_eq!(root_of(&stats_b), root);
    assert_eq!(stats_b, stats_a);
    assert_matches_core(&stats_b, 200);
}

#[test]
fn format_1_snapshot_of_an_older_build_still_imports_with_a_warning() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let hex = hex_gz();
    let fixture = v1_fixture();
    assert_eq!(std::fs::read(&fixture).unwrap()[8..12], [1, 0, 0, 0]);
    ok(&l2btc_in(
        &b,
        &["import-blocks", "--headers-only", hex.to_str().unwrap()],
    ));
    let out = l2btc_in(&b, &["snapshot", "import", fixture.to_str().unwrap()]);
    ok(&out);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.lines().any(|l| l.starts_with("warning:")
            && l.contains("version 1")
            && l.contains("no commitment root")),
        "{said}"
    );
    let stats_b = utxo_stats_json(&b);
    assert_matches_core(&stats_b, 100);
    // The root rebuilt from its coins is the one import-blocks reaches at the same height.
    ok(&l2btc_in(
        &a,
        &[
            "import-blocks",
            "--stop-height",
            "100",
            hex.to_str().unwrap(),
        ],
    ));
    assert_eq!(root_of(&stats_b), root_of(&utxo_stats_json(&a)));
    // Its re-export is format 2 with that root.
    let snap = tmp.path().join("again.l2utxo");
    ok(&l2btc_in(
        &b,
        &["snapshot", "export", snap.to_str().unwrap()],
    ));
    let bytes = std::fs::read(&snap).unwrap();
    assert_eq!(bytes[8..12], [2, 0, 0, 0]);
    assert_eq!(hex::encode(&bytes[92..124]), root_of(&stats_b));
}

#[test]
fn help_says_which_snapshot_formats_carry_the_root() {
    let help = ok(&l2btc(&["snapshot", "--help"]));
    let line = |cmd: &str| {
        help.lines()
            .find(|l| l.trim_start().starts_with(cmd))
            .unwrap_or_else(|| panic!("no {cmd} in {help}"))
            .to_owned()
    };
    assert!(line("export").contains("commitment root"), "{help}");
    assert!(line("import").contains("root"), "{help}");
    assert!(
        line("dump-core").contains("without our commitment root"),
        "{help}"
    );
    assert!(line("load-core").contains("no commitment root"), "{help}");
}
