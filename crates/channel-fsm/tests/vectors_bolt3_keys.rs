//! BOLT 3 Appendix D (per-commitment secret generation and compact storage) and Appendix E (key
//! derivation) vectors, all of them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use bitcoin::secp256k1::{PublicKey, SecretKey};
use channel_fsm::keys::{self, SecretStore};
use serde_json::Value;

fn load(name: &str) -> Value {
    let path = format!("{}/testdata/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn b32(v: &Value) -> [u8; 32] {
    hex::decode(v.as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap()
}

#[test]
fn appendix_d_generation() {
    let v = load("bolt03-per-commitment-secrets.json");
    let cases = v["generation_tests"].as_array().unwrap();
    assert_eq!(cases.len(), 5);
    for case in cases {
        let out =
            keys::per_commitment_secret(&b32(&case["seed"]), case["I"].as_u64().unwrap()).unwrap();
        assert_eq!(out, b32(&case["output"]), "{}", case["name"]);
    }
}

#[test]
fn appendix_d_storage_including_must_fail_inserts() {
    let v = load("bolt03-per-commitment-secrets.json");
    let cases = v["storage_tests"].as_array().unwrap();
    assert_eq!(cases.len(), 9);
    let mut failures = 0;
    for case in cases {
        let mut store = SecretStore::new();
        let must_fail: Vec<u64> = case["must_fail_at_I"]
            .as_array()
            .map(|a| a.iter().map(|x| x.as_u64().unwrap()).collect())
            .unwrap_or_default();
        for insert in case["inserts"].as_array().unwrap() {
            let index = insert["I"].as_u64().unwrap();
            let before = store.clone();
            let result = store.insert(index, b32(&insert["secret"]));
            match insert["output"].as_str().unwrap() {
                "OK" => assert!(result.is_ok(), "{}: insert {index}", case["name"]),
                _ => {
                    assert!(
                        matches!(result, Err(keys::KeyError::SecretMismatch { .. })),
                        "{}",
                        case["name"]
                    );
                    assert!(must_fail.contains(&index));
                    assert_eq!(store, before, "a failed insert leaves the store unchanged");
                    failures += 1;
                }
            }
        }
    }
    assert_eq!(failures, 8);
}

#[test]
fn appendix_e_all_four() {
    let v = load("bolt03-key-derivation.json");
    let inputs = &v["inputs"];
    let base_secret = SecretKey::from_slice(&b32(&inputs["base_secret"])).unwrap();
    let pcs = SecretKey::from_slice(&b32(&inputs["per_commitment_secret"])).unwrap();
    let base_point: PublicKey = inputs["base_point"].as_str().unwrap().parse().unwrap();
    let pcp: PublicKey = inputs["per_commitment_point"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        keys::per_commitment_point(&pcs.secret_bytes()).unwrap(),
        pcp
    );
    let cases = v["test_cases"].as_array().unwrap();
    assert_eq!(cases.len(), 4);
    for case in cases {
        let expected = case["expected"].as_str().unwrap();
        let got = match case["result_field"].as_str().unwrap() {
            "localpubkey" => keys::derive_pubkey(&base_point, &pcp).unwrap().to_string(),
            "localprivkey" => hex::encode(
                keys::derive_privkey(&base_secret, &pcp)
                    .unwrap()
                    .secret_bytes(),
            ),
            "revocationpubkey" => {
                // The two secret-holder shortcuts give the same key as the public derivation.
                let got = keys::derive_revocation_pubkey(&base_point, &pcp).unwrap();
                assert_eq!(
                    keys::derive_revocation_pubkey_as_revoker(&base_secret, &base_point, &pcp)
                        .unwrap(),
                    got
                );
                assert_eq!(
                    keys::derive_revocation_pubkey_as_holder(&base_point, &pcs, &pcp).unwrap(),
                    got
                );
                got.to_string()
            }
            "revocationprivkey" => hex::encode(
                keys::derive_revocation_privkey(&base_secret, &pcs)
                    .unwrap()
                    .secret_bytes(),
            ),
            other => panic!("unknown field {other}"),
        };
        assert_eq!(got, expected, "{}", case["name"]);
    }
}
