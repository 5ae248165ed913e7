//! The v1 encoding read back from `testdata/proof_v1.bin` (so the format and the hash definition
//! cannot change by accident), and regenerated from its deterministic recipe byte for byte.
//! Regenerate (only on a deliberate format change, with a new version byte) with
//! `MERKLE_WRITE_FIXTURE=1 cargo test -p merkle-proofs --test fixture`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;

use bitcoin::OutPoint;
use merkle_proofs::{Commitment, LeafCoin, Proof, Root, verify};

fn testdata(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("testdata")
        .join(name)
}

/// 300 seeded coins; a multi-proof of two present coins and two absent outpoints.
fn recipe() -> (Root, Proof) {
    let mut r = common::rng(2024);
    let set = common::coins(&mut r, 300);
    let c = Commitment::from_coins(set.iter().map(|(o, c)| (o, c))).unwrap();
    let absent: Vec<OutPoint> = (0..2).map(|_| common::outpoint(&mut r)).collect();
    let queries = [
        (&set[3].0, Some(&set[3].1)),
        (&set[250].0, Some(&set[250].1)),
        (&absent[0], None::<&LeafCoin>),
        (&absent[1], None),
    ];
    (c.root(), c.prove_many(queries).unwrap())
}

#[test]
fn fixture_v1_reads_back() {
    let (root, proof) = recipe();
    if std::env::var_os("MERKLE_WRITE_FIXTURE").is_some() {
        std::fs::write(testdata("proof_v1.bin"), proof.encode()).unwrap();
        std::fs::write(testdata("proof_v1.root"), format!("{root}\n")).unwrap();
        std::fs::write(testdata("proof_v1.json"), format!("{}\n", proof.to_json())).unwrap();
    }
    let bytes = std::fs::read(testdata("proof_v1.bin")).unwrap();
    let stored_root: Root = std::fs::read_to_string(testdata("proof_v1.root"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(bytes[0], 1, "version byte");
    let decoded = Proof::decode(&bytes).unwrap();
    verify(&stored_root, &decoded).unwrap();
    assert_eq!(decoded.encode(), bytes, "re-encoding is byte-identical");
    assert_eq!(stored_root, root, "the recipe still gives the stored root");
    assert_eq!(
        proof.encode(),
        bytes,
        "the recipe still gives the stored bytes"
    );
    let json = std::fs::read_to_string(testdata("proof_v1.json")).unwrap();
    assert_eq!(Proof::from_json(json.trim()).unwrap(), decoded);
    assert_eq!(decoded.to_json(), json.trim());
}
