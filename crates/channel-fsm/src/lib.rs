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
//!
//! # Invariants and choices
//! - **Sans-IO.** No threads, sockets, files or clocks: time is the block height given with each
//!   [`channel::ChainEvent`]; everything the caller must do comes back as [`channel::Action`]s.
//! - **Persist before send.** A transition emits `Persist` first and holds its messages and
//!   broadcasts until [`channel::Channel::persisted`] (sync or later: async "in progress").
//! - **Failed transitions change nothing**: handlers work on a copy and install it only on success.
//! - **n = 2 is BOLT 3** byte for byte (Appendix B/C vectors). For n > 2 the funding output is a
//!   tapscript n-of-n (`OP_CHECKSIGADD`, NUMS internal key); each holder's delayed output is a taproot
//!   tree with one delayed leaf and one revocation leaf per other participant (Appendix E keys), and a
//!   penalty first makes every honest participant whole against the latest state (the revoked state's
//!   shortfall to the honest equals what the cheater gained, so the cheater's output covers it), then
//!   splits the rest.
//! - **State root** ([`ledger::StateTree`]): the root of a `merkle_proofs::Commitment` over the
//!   internal outputs (each an outpoint/coin, see [`ledger::output_outpoint`]), updated
//!   incrementally per version; a participant proves its balance with a `merkle_proofs` inclusion
//!   proof against the co-signed root ([`ledger::BalanceProof`]).
//!   The tree is derived data (rebuilt at restore) in `merkle_proofs`' compact layout: ~40 bytes
//!   per internal output.
//! - **Timelocks against given heights.** Relative: each holder's delayed output waits
//!   `to_self_delay` blocks (default 144) after its commitment confirmed. Absolute: the funding must
//!   confirm by [`channel::Channel::funding_deadline`] (default opening height + 2016, BOLT 2),
//!   else the channel is [`channel::Phase::Abandoned`].
//! - **Signatures.** BIP340 over messages of any length and ECDSA (low-S, RFC 6979) through one
//!   interface ([`sig::SigBackend`]); the k256 backend covers signing and verification for builds
//!   and comparisons; `bitcoin` itself still links libsecp256k1 for transaction signing.
//!
//! # Measured
//! `L2BTC_BENCH_CLOCK=cpu cargo bench -p benches --bench channel` on the shared 2-core machine with
//! other jobs running (thread CPU time). The update figures are from one run of
//! `-- 'channel_update|channel_primitives'` (2026-12-02, load ~5, libsecp256k1 ECDSA verification
//! 42.8k/s); the others from earlier sessions at a load of 2–4, where BIP340 verification ran at
//! 21–24k/s against 30k/s on the idle machine:
//! - co-signed 2-party update, one participant's work: 3.60k/s on thread CPU time (load ~5;
//!   `channel_update/cosigned/2p`), below the 5,000/s bar. Per participant and version: a
//!   transfer signed or verified (half each), a state signature signed and one verified
//!   (BIP340), the other's commitment signed and the signature on its own verified (ECDSA), both
//!   commitments' Appendix E keys (two delayed keys, two revocation keys: four generator and two
//!   variable-base multiplications, three point additions), its next per-commitment point and
//!   the check of the other's revealed secret (two generator multiplications). None is
//!   redundant, and each takes the cheapest route libsecp256k1's API offers
//!   (`channel_primitives`, same run, µs: generator multiplication 12.8 (v0.6), `t·P` 20.2 but
//!   `(s·t)·G` 13.2 where the channel holds `s`, `P + t·G` as generator multiplication plus
//!   addition 15.1 against `add_exp_tweak` 16.8, addition 2.0, ECDSA sign 18.5 / verify 23.4,
//!   BIP340 sign 13.7 / verify 23.7; k256 is 2–7× slower, its one-pass `k·P + l·Q` 65). That is
//!   ~221 µs, ~9.5 ECDSA verifications, of libsecp256k1 per update: `ec_floor/2p` runs those calls
//!   alone at 4.44k/s, `ec_floor_varied/2p` with a channel's changing inputs (cache misses in the
//!   verification tables) at 4.11k/s; the update reaches 0.81× / 0.87× of them. The rest is
//!   mostly the three records per update (encoding and blake3, growing with the ledger) and the
//!   state tree. 5,000/s (200 µs) needs ECDSA verification at ≤ ~17 µs (~60k/s per core) as the
//!   code stands, ≤ 21 µs with nothing but the libsecp256k1 calls: a faster core than this one
//!   (42.8k verifications/s), or a protocol with fewer curve operations;
//! - 8-party update: 275/s per participant in the same run (n² revocation keys per version
//!   dominate);
//! - the 8 or 16 state signatures of a version on a [`ledger::StateVerifier`] of 2 threads (wall
//!   time, pool and single-thread calls interleaved in rounds of 100 states, taken only while the
//!   machine was ≥ 93% idle): median 1.82–1.94× (8 signatures) and 1.92–2.00× (16) the
//!   single-thread rate, 2.0–2.1× with 8 states per [`ledger::StateVerifier::verify_batch`] call;
//!   with the other core busy it stays near 1× (threads claim one signature at a time, so nobody
//!   waits for a busy core), where a scoped spawn per call
//!   ([`ledger::verify_state_signatures_parallel`]) drops to ~0.5×;
//! - a batch of 1,000 channel updates through the manager: ~2.2k/s on 1 thread, ~2.5k/s on 2
//!   (wall time, load ~2.4); the bench's peak memory is ~60 MB.
//!
//! # Example: a transfer, the co-signed root, and a balance proof
//! ```
//! use bitcoin::Amount;
//! use channel_fsm::ledger::{self, Ledger, StateTree};
//! use channel_fsm::sig::{DefaultBackend, SigBackend};
//! use channel_fsm::signer::{InMemorySigner, Signer};
//!
//! let (alice, bob) = (InMemorySigner::from_seed([1; 32]), InMemorySigner::from_seed([2; 32]));
//! let key_bytes = [alice.keys().state_key.serialize(), bob.keys().state_key.serialize()];
//! let keys = key_bytes
//!     .iter()
//!     .map(DefaultBackend::parse_xonly_public)
//!     .collect::<Result<Vec<_>, _>>()?;
//! let channel_id = [7; 32];
//! let v0 = Ledger::genesis(&[Amount::from_sat(600_000), Amount::from_sat(400_000)])?;
//! let mut tree = StateTree::new(&channel_id, &key_bytes, &v0)?;
//! let pay = ledger::make_transfer(&v0, &channel_id, 0, 1, Amount::from_sat(50_000), |d| alice.sign_state(d))?;
//! let v1 = v0.apply(&channel_id, &[pay], &keys)?;
//! assert_eq!(v1.balances()[1], Amount::from_sat(450_000));
//! let root = tree.sync(&v1)?; // only the spent and created outputs are applied
//!
//! // Both co-sign (channel id, version, root) in participant order...
//! let digest = ledger::state_digest(&channel_id, v1.version, &root);
//! let sigs = [alice.sign_state(&digest), bob.sign_state(&digest)];
//! assert!(ledger::verify_state_signatures(&channel_id, v1.version, &root, &keys, &sigs, 0..2).is_ok());
//! // ...which can't be replayed on another version, and Bob proves his balance against the root.
//! assert!(ledger::verify_state_signatures(&channel_id, 2, &root, &keys, &sigs, 0..2).is_err());
//! let proof = tree.prove_balance(1)?;
//! assert_eq!(proof.verify(&channel_id, &key_bytes[1], &root)?, Amount::from_sat(450_000));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]

pub mod channel;
pub mod keys;
pub mod ledger;
pub mod manager;
pub mod msg;
mod pool;
pub mod sig;
pub mod signer;
pub mod standard;
pub mod tx;
