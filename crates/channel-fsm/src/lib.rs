//! A sans-IO, deterministic multi-party payment-channel state machine whose funding, commitment, penalty
//! and closing transactions are real Bitcoin transactions.
//!
//! Layers, bottom-up:
//! - [`sig`]: one signing / verification interface, libsecp256k1 by default, k256 behind `k256-backend`.
//! - [`keys`]: BOLT 3 per-commitment secrets (Appendix D) with O(log n) storage, key derivation (Appendix E).
//! - [`signer`]: the [`signer::Signer`] trait for participant keys, with an in-memory implementation.
//! - [`tx`]: funding, commitment, penalty, delayed-sweep and cooperative-close transactions for 2..=16
//!   participants (BOLT 3 exactly for 2); [`standard`]: Bitcoin Core's standardness rules for them.
//! - [`ledger`]: the versioned ledger of internal outputs, transfer validation, the co-signed state root
//!   and balance inclusion proofs.
//! - [`msg`]: channel messages, versioned postcard encoding bounded by [`msg::MESSAGE_SIZE_MAX`].
//! - [`channel`]: the sans-IO state machine of one participant ([`channel::Channel`]).
//! - [`manager`]: [`manager::ChannelManager`], many channels, one lock each, atomic batches.
#![forbid(unsafe_code)]

pub mod channel;
pub mod keys;
pub mod ledger;
pub mod manager;
pub mod msg;
pub mod sig;
pub mod signer;
pub mod standard;
pub mod tx;
