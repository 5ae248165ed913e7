//! The UTXO set of rust-protocol-btc: compact coins, a concurrent sharded set keyed by
//! [`bitcoin::OutPoint`], block application with Bitcoin Core's bookkeeping rules, undo data for reorgs,
//! a bounded coin cache over a backing store, and Core-compatible set statistics (MuHash3072,
//! `hash_serialized_3`).
//!
//! ```
//! use utxo_core::{UtxoSet, format_btc};
//!
//! let set = UtxoSet::new();
//! let genesis = bitcoin::constants::genesis_block(bitcoin::Network::Bitcoin);
//! let undo = set.apply_block(&genesis, 0).unwrap();
//! let stats = set.stats();
//! assert_eq!((stats.txouts, format_btc(stats.total_amount)), (0, "0.00000000".to_string()));
//! set.disconnect_block(&genesis, 0, &undo).unwrap();
//! ```
//!
//! What this crate deliberately does not do: files, networks, threads of its own, script or
//! signature validation (like Core's `-assumevalid`), proof-of-work and header checks.
#![forbid(unsafe_code)]

mod arena;
mod cache;
mod changes;
mod coin;
pub mod compress;
mod connect;
mod error;
mod index;
pub mod muhash;
mod params;
mod prepared;
mod set;
mod shard;
mod stats;
mod sync;
#[cfg(all(test, not(loom)))]
mod test_rng;
mod undo;

pub use cache::{CacheError, CoinCache, CoinStore, FlushBatch, MemoryStore};
pub use changes::ChangeSet;
pub use coin::{Coin, SCRIPT_SIZE_MAX, is_unspendable};
pub use compress::DecodeError;
pub use connect::txids as block_txids;
pub use error::{ApplyError, DisconnectError};
pub use params::{BIP34_IMPLIES_BIP30_LIMIT, COINBASE_MATURITY, ChainParams};
pub use prepared::PreparedBlock;
pub use set::{
    Connected, PARALLEL_MIN_TXS, SHARDS_DEFAULT, SHARDS_MAX, SetOptions, THREADS_MAX, UtxoSet,
};
pub use stats::{UtxoStats, bogosize, format_btc, hash_serialized_3, txout_ser};
pub use undo::{BlockUndo, TxUndo, UNDO_SPENDS_MAX, UNDO_TXS_MAX};
