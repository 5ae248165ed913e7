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

/// Runs the vectors whose message is 32 bytes (the interface's digest size) through backend `B`;
/// returns how many were checked.
fn run_32_byte_vectors<B: SigBackend>() -> usize {
    let mut checked = 0;
    for case in vectors() {
        let Some(msg) = arr::<32>(&case["message"]) else {
            continue;
        };
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
                "signing vector {index}"
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
        checked += 1;
    }
    checked
}

#[test]
fn bip340_vectors_secp256k1() {
    // 15 of the 19 vectors sign 32-byte messages; 15–18 use 0, 1, 17 and 100 bytes, which the
    // bitcoin::secp256k1 0.29 API can't take (see bip340_variable_length_messages_k256).
    assert_eq!(run_32_byte_vectors::<Secp256k1Backend>(), 15);
}

#[cfg(feature = "k256-backend")]
#[test]
fn bip340_vectors_k256() {
    assert_eq!(run_32_byte_vectors::<channel_fsm::sig::K256Backend>(), 15);
}

#[cfg(feature = "k256-backend")]
#[test]
fn bip340_variable_length_messages_k256() {
    use channel_fsm::sig::K256Backend;
    let mut checked = 0;
    for case in vectors() {
        let msg = hex::decode(case["message"].as_str().unwrap()).unwrap();
        if msg.len() == 32 {
            continue;
        }
        let sig: [u8; 64] = arr(&case["signature"]).unwrap();
        let sk: [u8; 32] = arr(&case["secret_key"]).unwrap();
        let aux: [u8; 32] = arr(&case["aux_rand"]).unwrap();
        let kp = K256Backend::keypair(&sk).unwrap();
        assert_eq!(K256Backend::schnorr_sign_raw(&kp, &msg, &aux), sig);
        let pk = K256Backend::parse_xonly_public(&arr(&case["public_key"]).unwrap()).unwrap();
        assert!(K256Backend::schnorr_verify_raw(&pk, &msg, &sig).is_ok());
        checked += 1;
    }
    assert_eq!(checked, 4);
}
