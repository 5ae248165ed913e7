//! BOLT 3 Appendix B (funding transaction) and Appendix C ("simple commitment tx with no HTLCs")
//! reproduced byte for byte, signatures included, and verified by Bitcoin Core's interpreter.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use bitcoin::consensus::encode::{deserialize, serialize_hex};
use bitcoin::secp256k1::{PublicKey, SecretKey};
use bitcoin::{Amount, OutPoint, ScriptBuf, Transaction, Txid};
use channel_fsm::keys;
use channel_fsm::sig::secp;
use channel_fsm::tx::{
    self, ChannelParams, DelayedOutput, FundingInput, FundingScript, ParticipantKeys,
};
use serde_json::Value;

fn load(name: &str) -> Value {
    let path = format!("{}/testdata/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}
fn s(v: &Value) -> &str {
    v.as_str().unwrap()
}
/// Private keys in the spec carry a trailing 01 (compressed) byte.
fn privkey(v: &Value) -> SecretKey {
    let bytes = hex::decode(s(v)).unwrap();
    SecretKey::from_slice(&bytes[..32]).unwrap()
}
fn pubkey(v: &Value) -> PublicKey {
    s(v).parse().unwrap()
}
/// Keys where only some roles matter: the others are set to `k`.
fn keys_with(
    funding: PublicKey,
    payment: PublicKey,
    revocation: PublicKey,
    delayed: PublicKey,
) -> ParticipantKeys {
    ParticipantKeys {
        funding,
        revocation_basepoint: revocation,
        payment_basepoint: payment,
        delayed_payment_basepoint: delayed,
        state_key: funding.x_only_public_key().0,
    }
}

#[test]
fn appendix_b_funding_tx_byte_for_byte() {
    let v = load("bolt03-funding.json");
    let local = pubkey(&v["local_funding_pubkey"]);
    let remote = pubkey(&v["remote_funding_pubkey"]);
    let participants = [
        keys_with(local, local, local, local),
        keys_with(remote, remote, remote, remote),
    ];
    let FundingScript::P2wsh { witness_script } = FundingScript::new(&participants).unwrap() else {
        panic!()
    };
    assert_eq!(
        witness_script.to_hex_string(),
        s(&v["funding_witness_script_comment"])
    );

    let coinbase: Transaction =
        deserialize(&hex::decode(s(&v["block1_coinbase_tx_hex"])).unwrap()).unwrap();
    assert_eq!(coinbase.compute_txid().to_string(), s(&v["input_txid"]));
    let key = privkey(&v["block1_coinbase_privkey"]);
    let input = FundingInput {
        outpoint: OutPoint {
            txid: coinbase.compute_txid(),
            vout: 0,
        },
        txout: coinbase.output[0].clone(),
        secret: key,
    };
    let change_key = bitcoin::CompressedPublicKey(PublicKey::from_secret_key(secp(), &key));
    let change_script = ScriptBuf::new_p2wpkh(&change_key.wpubkey_hash());
    let input_sat = v["input_satoshis"].as_u64().unwrap();
    let funding_sat = v["funding_satoshis"].as_u64().unwrap();
    let change_sat = v["change_satoshis"].as_u64().unwrap();
    let fee = Amount::from_sat(input_sat - funding_sat - change_sat);
    let funding = tx::build_funding(
        &participants,
        &[input],
        Amount::from_sat(funding_sat),
        change_script,
        fee,
    )
    .unwrap();
    assert_eq!(serialize_hex(&funding), s(&v["funding_tx_hex"]));
    assert_eq!(
        funding.compute_txid().to_string(),
        s(&v["funding_txid_comment"])
    );
    common::verify_all(
        "appendix B funding",
        &funding,
        &[coinbase.output[0].clone()],
    );
}

#[test]
fn appendix_c_simple_commitment_byte_for_byte() {
    let v = load("bolt03-commitment.json");
    let p = &v["params"];
    let d = &v["internal_derivation_values"];
    let case = v["test_cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| s(&c["name"]) == "simple commitment tx with no HTLCs")
        .unwrap();

    let local_funding_secret = privkey(&p["local_funding_privkey"]);
    let remote_funding_secret = privkey(&d["remote_funding_privkey"]);
    let local_funding = PublicKey::from_secret_key(secp(), &local_funding_secret);
    assert_eq!(local_funding, pubkey(&p["local_funding_pubkey"]));
    assert_eq!(
        PublicKey::from_secret_key(secp(), &remote_funding_secret),
        pubkey(&p["remote_funding_pubkey"])
    );
    let pcp = pubkey(&d["local_per_commitment_point"]);
    let local = keys_with(
        local_funding,
        pubkey(&p["local_payment_basepoint"]),
        pubkey(&p["local_payment_basepoint"]), // local revocation basepoint is not used by local's commitment
        pubkey(&d["local_delayed_payment_basepoint"]),
    );
    let remote = keys_with(
        pubkey(&p["remote_funding_pubkey"]),
        pubkey(&p["remote_payment_basepoint"]),
        pubkey(&d["remote_revocation_basepoint"]),
        pubkey(&p["remote_payment_basepoint"]),
    );
    // Appendix E derivations of the vector's keys.
    assert_eq!(
        keys::derive_pubkey(&local.delayed_payment_basepoint, &pcp).unwrap(),
        pubkey(&p["local_delayedpubkey"])
    );
    assert_eq!(
        keys::derive_revocation_pubkey(&remote.revocation_basepoint, &pcp).unwrap(),
        pubkey(&p["local_revocation_pubkey"])
    );
    let params = ChannelParams {
        participants: vec![local, remote],
        funding_outpoint: OutPoint {
            txid: s(&p["funding_tx_id"]).parse::<Txid>().unwrap(),
            vout: 0,
        },
        funding_amount: Amount::from_sat(p["funding_amount_satoshi"].as_u64().unwrap()),
        to_self_delay: u16::try_from(p["local_delay"].as_u64().unwrap()).unwrap(),
        feerate_per_kw: u32::try_from(case["local_feerate_per_kw"].as_u64().unwrap()).unwrap(),
    };
    let balances = [
        Amount::from_sat(case["to_local_msat"].as_u64().unwrap() / 1000),
        Amount::from_sat(case["to_remote_msat"].as_u64().unwrap() / 1000),
    ];
    let number = p["commitment_number"].as_u64().unwrap();
    let commitment = tx::build_commitment(&params, 0, number, &balances, &pcp).unwrap();
    assert_eq!(
        commitment.fee.to_sat(),
        case["actual_commitment_fee_sat"].as_u64().unwrap()
    );
    let Some((_, DelayedOutput::P2wsh { witness_script })) = &commitment.delayed else {
        panic!("to_local")
    };
    assert_eq!(
        witness_script.to_hex_string(),
        s(&case["outputs_comment"][0]["witness_script"])
    );
    assert_eq!(
        tx::commitment_number_of(&commitment.tx, &params.participants),
        Some(number)
    );

    let script = FundingScript::new(&params.participants).unwrap();
    let funding_out = tx::funding_txout(&params).unwrap();
    let digest = script.sighash(&commitment.tx, 0, &funding_out).unwrap();
    let local_sig = script.sign(&local_funding_secret, &digest);
    let remote_sig = script.sign(&remote_funding_secret, &digest);
    let der = |c: &[u8; 64]| {
        hex::encode(
            bitcoin::secp256k1::ecdsa::Signature::from_compact(c)
                .unwrap()
                .serialize_der(),
        )
    };
    assert_eq!(der(&local_sig), s(&case["local_signature"]));
    assert_eq!(der(&remote_sig), s(&case["remote_signature"]));
    assert!(script.verify(&params.participants, 1, &digest, &remote_sig));
    assert!(!script.verify(&params.participants, 0, &digest, &remote_sig));

    let mut signed = commitment.tx.clone();
    signed.input[0].witness = script
        .witness(&params.participants, &[local_sig, remote_sig])
        .unwrap();
    assert_eq!(serialize_hex(&signed), s(&case["commit_tx"]));
    common::verify_all("appendix C commitment", &signed, &[funding_out]);
}
