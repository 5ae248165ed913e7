//! Shared test helpers: Bitcoin Core's script interpreter (`bitcoinconsensus`) with every flag it
//! knows, including taproot, plus the crate's standardness checks.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use bitcoin::{Transaction, TxOut};

/// All script verification flags libbitcoinconsensus accepts: P2SH, DERSIG, NULLDUMMY, CLTV, CSV,
/// WITNESS and TAPROOT.
pub const ALL_FLAGS: u32 =
    bitcoinconsensus::VERIFY_ALL_PRE_TAPROOT | bitcoinconsensus::VERIFY_TAPROOT;

/// Verifies every input of `tx` with Core's interpreter against `prevouts` (input order).
pub fn core_verify(tx: &Transaction, prevouts: &[TxOut]) -> Result<(), String> {
    let raw = bitcoin::consensus::encode::serialize(tx);
    let scripts: Vec<Vec<u8>> = prevouts
        .iter()
        .map(|p| p.script_pubkey.to_bytes())
        .collect();
    let utxos: Vec<bitcoinconsensus::Utxo> = prevouts
        .iter()
        .zip(&scripts)
        .map(|(p, s)| bitcoinconsensus::Utxo {
            script_pubkey: s.as_ptr(),
            script_pubkey_len: u32::try_from(s.len()).unwrap(),
            value: i64::try_from(p.value.to_sat()).unwrap(),
        })
        .collect();
    for (i, p) in prevouts.iter().enumerate() {
        bitcoinconsensus::verify_with_flags(
            &scripts[i],
            p.value.to_sat(),
            &raw,
            Some(&utxos),
            i,
            ALL_FLAGS,
        )
        .map_err(|e| format!("input {i}: {e:?}"))?;
    }
    Ok(())
}

/// Core's interpreter and our standardness rules.
pub fn verify_all(what: &str, tx: &Transaction, prevouts: &[TxOut]) {
    core_verify(tx, prevouts).unwrap_or_else(|e| panic!("{what}: script verification failed: {e}"));
    channel_fsm::standard::check_standard(tx, prevouts)
        .unwrap_or_else(|e| panic!("{what}: not standard: {e}"));
}
pub mod net;
pub mod pair;
