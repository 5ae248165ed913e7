//! Durable storage for the UTXO set: a checksummed write-ahead log with group commit in front of redb,
//! crash recovery, checkpoints, snapshots and Bitcoin Core `dumptxoutset` import/export.
//!
//! Not built yet: this crate is filled by the durable-storage work (see the project's issues). It
//! deliberately exports nothing until then, so nobody builds on a fake API.
#![forbid(unsafe_code)]
