//! The UTXO set of rust-protocol-btc: compact coins, a concurrent sharded set keyed by
//! [`bitcoin::OutPoint`], block application with Bitcoin Core's bookkeeping rules, undo data for reorgs,
//! a bounded coin cache over a backing store, and Core-compatible set statistics (MuHash3072,
//! `hash_serialized_3`).
#![forbid(unsafe_code)]

pub mod muhash;
