//! Side-by-side benchmarks of rust-protocol-btc against baselines measured in the same run. Not
//! published: heavy comparison engines never build with the library crates.
#![forbid(unsafe_code)]
