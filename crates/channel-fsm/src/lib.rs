//! A sans-IO, deterministic multi-party payment-channel state machine whose funding, commitment, penalty
//! and closing transactions are real Bitcoin transactions.
//!
//! Not built yet: this crate is filled by the payment-channel work (see the project's issues). It
//! deliberately exports nothing until then, so nobody builds on a fake API.
#![forbid(unsafe_code)]
