//! Side-by-side benchmarks of rust-protocol-btc against baselines measured in the same run. Not
//! published: heavy comparison engines never build with the library crates.
//!
//! The library part holds what the benchmarks share:
//! - [`synth`]: a deterministic synthetic mainnet-like chain generator (real `bitcoin::Block`s);
//! - [`naive`]: the naive baseline UTXO map (`std::collections::HashMap` with SipHash);
//! - [`figures`]: measuring memory (RSS) and writing non-time figures for `cargo xtask bench`;
//! - [`clock`]: wall or thread-CPU stopwatch for `iter_custom` benchmarks on a shared machine.
#![forbid(unsafe_code)]

pub mod clock;
pub mod figures;
pub mod naive;
pub mod synth;
