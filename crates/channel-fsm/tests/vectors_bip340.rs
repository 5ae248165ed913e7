//! BIP340 test vectors (bitcoin/bips `bip-0340/test-vectors.csv`) through every signature backend.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use channel_fsm::sig::{Secp256k1Backend, SigBackend};
use serde_json::Value;

fn vectors() -> Vec<Value> {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/bip340.json"))
            .unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    v["test_cases"].as_array().unwrap().clone()
}

fn arr<const N: usize>(v: &Value) -> Option<[u8; N]> {
    let bytes = hex::decode(v.as_str()?).ok()?;
    bytes.try_into().ok()
}

/// Runs every vector (messages of 0, 1, 17, 32 and 100 bytes) through backend `B`'s BIP340 signing
/// and verification; returns how many were checked and how many had a message other than 32 bytes.
fn run_vectors<B: SigBackend>() -> (usize, usize) {
    let (mut checked, mut other_lengths) = (0, 0);
    for case in vectors() {
        let msg = hex::decode(case["message"].as_str().unwrap()).unwrap();
        let index = &case["index"];
        let expected = case["verification_result"].as_bool().unwrap();
        let sig: [u8; 64] = arr(&case["signature"]).unwrap();
        if let (Some(sk), Some(aux)) =
            (arr::<32>(&case["secret_key"]), arr::<32>(&case["aux_rand"]))
        {
            let kp = B::keypair(&sk).unwrap();
            assert_eq!(
                B::xonly_public_bytes(&kp),
                arr::<32>(&case["public_key"]).unwrap(),
                "vector {index}"
            );
            assert_eq!(
                B::schnorr_sign(&kp, &msg, &aux),
                sig,
                "{} signing vector {index}",
                B::NAME
            );
        }
        let result = match arr::<32>(&case["public_key"]) {
            Some(pk) => match B::parse_xonly_public(&pk) {
                Ok(pk) => B::schnorr_verify(&pk, &msg, &sig).is_ok(),
                Err(_) => false,
            },
            None => false,
        };
        assert_eq!(
            result,
            expected,
            "{} vector {index}: {}",
            B::NAME,
            case["comment"]
        );
        if expected && msg.len() != 32 {
            // A valid vector of another length: a changed message or signature must fail too.
            let pk = B::parse_xonly_public(&arr(&case["public_key"]).unwrap()).unwrap();
            let mut longer = msg.clone();
            longer.push(0);
            assert!(B::schnorr_verify(&pk, &longer, &sig).is_err());
            let mut bad = sig;
            bad[63] ^= 1;
            assert!(B::schnorr_verify(&pk, &msg, &bad).is_err());
        }
        checked += 1;
        other_lengths += usize::from(msg.len() != 32);
    }
    (checked, other_lengths)
}

#[test]
fn bip340_vectors_secp256k1() {
    // All 19 vectors, including 15–18 (messages of 0, 1, 17 and 100 bytes), through libsecp256k1.
    assert_eq!(run_vectors::<Secp256k1Backend>(), (19, 4));
}

#[cfg(feature = "k256-backend")]
#[test]
fn bip340_vectors_k256() {
    assert_eq!(run_vectors::<channel_fsm::sig::K256Backend>(), (19, 4));
}
