//! An authenticated commitment over the UTXO set (blake3): a root that depends only on the set, with
//! inclusion, exclusion and multi-proofs and a standalone verifier.
//!
//! Not built yet: this crate is filled by the verifiable-state work (see the project's issues). It
//! deliberately exports nothing until then, so nobody builds on a fake API.
#![forbid(unsafe_code)]
