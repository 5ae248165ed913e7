//! Fuzz target: `merkle_proofs::Proof::decode` on arbitrary bytes must never panic; whatever decodes
//! re-encodes to the same bytes, decodes again to the same proof, and verifies (or fails cleanly)
//! against a fixed root, and its JSON form reads back to the same proof. Under `cfg(fuzzing)` the
//! decoder skips the checksum, so arbitrary trees reach the verifier.
#![no_main]

use libfuzzer_sys::fuzz_target;
use merkle_proofs::{Proof, Root, verify};

fuzz_target!(|data: &[u8]| {
    let Ok(proof) = Proof::decode(data) else {
        return;
    };
    let bytes = proof.encode();
    // Canonical: the same bytes except the checksum (which fuzz builds do not check).
    assert_eq!(bytes[..bytes.len() - 4], data[..data.len() - 4], "decode/encode round trip");
    assert_eq!(Proof::decode(&bytes).as_ref(), Ok(&proof));
    let _ = verify(&Root([0x42; 32]), &proof);
    let _ = verify(&Root::empty(), &proof);
    let json = proof.to_json();
    assert_eq!(Proof::from_json(&json).ok().as_ref(), Some(&proof));
});
