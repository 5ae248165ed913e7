//! The cost ledger of a co-signed 2-party update: the libsecp256k1 primitives it uses, timed one by
//! one on this thread's CPU clock, and then `ROUNDS` whole update rounds (both participants' work;
//! `perf record` on this binary profiles them). Run:
//! `cargo run --release -p channel-fsm --example update_costs [ROUNDS]`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "../tests/common/pair.rs"]
mod pair;

use std::hint::black_box;

use bitcoin::hashes::{Hash, sha256};
use bitcoin::secp256k1::{Message, PublicKey, Scalar, SecretKey};
use bitcoin::{Amount, Transaction};
use channel_fsm::channel::Channel;
use channel_fsm::ledger;
use channel_fsm::sig::{self, DefaultBackend, SigBackend, secp};
use channel_fsm::signer::{InMemorySigner, Signer};

fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|t| t.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// µs per call of `op`: the fastest of 5 batches of ~100 ms of thread CPU time each (the least
/// disturbed by other processes on a shared machine).
fn time(name: &str, mut op: impl FnMut()) -> f64 {
    let mut best = f64::MAX;
    for _ in 0..5 {
        // The thread clock advances at scheduler ticks: whole batches until ~100 ms have passed.
        let mut calls = 0u64;
        let start = thread_cpu_ns();
        while thread_cpu_ns() - start < 100_000_000 {
            for _ in 0..64 {
                op();
            }
            calls += 64;
        }
        best = best.min((thread_cpu_ns() - start) as f64 / 1_000.0 / calls as f64);
    }
    println!("{name:<44} {best:>8.2} µs");
    best
}

fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(20_000);
    let s = SecretKey::from_slice(&[7u8; 32]).unwrap();
    let s2 = SecretKey::from_slice(&[8u8; 32]).unwrap();
    let p = PublicKey::from_secret_key(secp(), &s);
    let p2 = PublicKey::from_secret_key(secp(), &s2);
    let t = Scalar::from_be_bytes([3u8; 32]).unwrap();
    let digest = [9u8; 32];
    let kp = DefaultBackend::keypair(&[7u8; 32]).unwrap();
    let ecdsa = DefaultBackend::ecdsa_sign(&kp, &digest);
    let schnorr = DefaultBackend::schnorr_sign(&kp, &digest, &[0u8; 32]);
    let epk = DefaultBackend::parse_ecdsa_public(&DefaultBackend::ecdsa_public_bytes(&kp)).unwrap();
    let xpk = DefaultBackend::parse_xonly_public(&DefaultBackend::xonly_public_bytes(&kp)).unwrap();
    let signer = InMemorySigner::from_seed([1; 32]);
    // A second argument `rounds` skips the primitives (for `perf record`).
    let primitives = std::env::args().nth(2).is_none_or(|a| a != "rounds");
    let signers = pair::signers(2);
    let mut chans = pair::active_channel(&signers, 1, 10_000_000);
    if primitives {
        println!("primitive (thread CPU time)");
        time("PublicKey::from_secret_key (v0.4)", || {
            black_box(PublicKey::from_secret_key(secp(), black_box(&s)));
        });
        time("sig::generator_mul (v0.6)", || {
            black_box(sig::generator_mul(black_box(&s)));
        });
        time("PublicKey::mul_tweak (ecmult_const)", || {
            black_box(p.mul_tweak(secp(), black_box(&t)).unwrap());
        });
        time("PublicKey::add_exp_tweak (ecmult)", || {
            black_box(p.add_exp_tweak(secp(), black_box(&t)).unwrap());
        });
        time("PublicKey::combine", || {
            black_box(p.combine(black_box(&p2)).unwrap());
        });
        time("PublicKey::serialize", || {
            black_box(black_box(&p).serialize());
        });
        time("PublicKey::from_slice (33 B, sqrt)", || {
            black_box(PublicKey::from_slice(black_box(&p.serialize())).unwrap());
        });
        time("ECDSA sign (v0.6)", || {
            black_box(sig::ecdsa_sign_secret(&s, black_box(&digest)));
        });
        time("ECDSA verify", || {
            DefaultBackend::ecdsa_verify(&epk, black_box(&digest), &ecdsa).unwrap();
        });
        time("Schnorr sign (state key, v0.6)", || {
            black_box(signer.sign_state(black_box(&digest)));
        });
        time("Schnorr verify", || {
            DefaultBackend::schnorr_verify(&xpk, black_box(&digest), &schnorr).unwrap();
        });
        time("ECDSA verify (bitcoin::secp256k1 direct)", || {
            let sig = bitcoin::secp256k1::ecdsa::Signature::from_compact(&ecdsa).unwrap();
            secp()
                .verify_ecdsa(&Message::from_digest(digest), &sig, &epk)
                .unwrap();
        });
        {
            use secp256k1_anylen as s31;
            let ctx = s31::Secp256k1::new();
            let pk31 = s31::PublicKey::from_slice(&p.serialize()).unwrap();
            let sig31 = s31::ecdsa::Signature::from_compact(&ecdsa).unwrap();
            let pk31e = s31::PublicKey::from_slice(&epk.serialize()).unwrap();
            time("ECDSA verify (v0.6)", || {
                ctx.verify_ecdsa(s31::Message::from_digest(digest), &sig31, &pk31e)
                    .unwrap();
            });
            let x31 = s31::XOnlyPublicKey::from_byte_array(xpk.serialize()).unwrap();
            let ssig31 = s31::schnorr::Signature::from_byte_array(schnorr);
            time("Schnorr verify (v0.6)", || {
                ctx.verify_schnorr(&ssig31, &digest, &x31).unwrap();
            });
            let t31 = s31::Scalar::from_be_bytes([3u8; 32]).unwrap();
            time("PublicKey::mul_tweak (v0.6)", || {
                black_box(pk31.mul_tweak(&ctx, black_box(&t31)).unwrap());
            });
            time("PublicKey::add_exp_tweak (v0.6)", || {
                black_box(pk31.add_exp_tweak(&ctx, black_box(&t31)).unwrap());
            });
        }
        time("SHA256 of 66 bytes (key tweak)", || {
            black_box(sha256::Hash::hash(black_box(&[5u8; 66])));
        });
        time("per_commitment_secret (shachain, memo)", || {
            black_box(signer.per_commitment_secret(black_box(5)).unwrap());
        });

        let params = chans[0].config().params.clone();
        let point = signers[1].per_commitment_point(3).unwrap();
        time("DelayedKeys (other's commitment, signer)", || {
            black_box(signers[0].delayed_keys(&params, 0, 1, 3, &point).unwrap());
        });
        let own = signers[0].per_commitment_point(3).unwrap();
        time("DelayedKeys (own commitment, signer)", || {
            black_box(signers[0].delayed_keys(&params, 0, 0, 3, &own).unwrap());
        });
        let keys = signers[0].delayed_keys(&params, 0, 1, 3, &point).unwrap();
        let payouts = channel_fsm::tx::payout_scripts(&params.participants).unwrap();
        let balances = [Amount::from_sat(10_000_000), Amount::from_sat(10_000_000)];
        time("build_commitment_with_keys", || {
            black_box(
                channel_fsm::tx::build_commitment_with_keys(
                    &params, 1, 3, &balances, &keys, &payouts,
                )
                .unwrap(),
            );
        });
        let c =
            channel_fsm::tx::build_commitment_with_keys(&params, 1, 3, &balances, &keys, &payouts)
                .unwrap();
        let fs = channel_fsm::tx::FundingScript::new(&params.participants).unwrap();
        let fo = channel_fsm::tx::funding_txout(&params).unwrap();
        time("FundingScript::sighash (BIP143)", || {
            black_box(fs.sighash(black_box(&c.tx), 0, &fo).unwrap());
        });
        let tx: &Transaction = &c.tx;
        time("Transaction clone", || {
            black_box(black_box(tx).clone());
        });
        let record = chans[0].record();
        println!(
            "record bytes: {}, ledger outputs: {}",
            record.len(),
            chans[0].ledger().outputs.len()
        );
        time("Channel::record (postcard + blake3)", || {
            black_box(chans[0].record());
        });
        time("blake3 of the record", || {
            black_box(blake3::hash(black_box(&record)));
        });
        let id = *chans[0].channel_id();
        time("state_digest", || {
            black_box(ledger::state_digest(&id, 5, &[1u8; 32]));
        });
        time("Channel::restore", || {
            black_box(Channel::restore(&record, signers[0].clone()).unwrap());
        });
    }

    // Whole rounds (both participants), alternating direction, in 5 batches; the mean and the
    // fastest batch are reported.
    let batch = rounds.div_ceil(5);
    let (mut total, mut best, mut done) = (0u64, f64::MAX, 0usize);
    let mut k = 0usize;
    while done < rounds {
        let n = batch.min(rounds - done);
        let start = thread_cpu_ns();
        for _ in 0..n {
            let (from, to) = if k.is_multiple_of(2) { (0, 1) } else { (1, 0) };
            k += 1;
            let t = chans[from]
                .make_transfer(u16::try_from(to).unwrap(), Amount::from_sat(1_000))
                .unwrap();
            let actions = chans[from].propose(vec![t]).unwrap();
            let msgs = pair::run_sync(&mut chans[from], actions);
            pair::pump(&mut chans, msgs);
        }
        let ns = thread_cpu_ns() - start;
        total += ns;
        best = best.min(ns as f64 / 1_000.0 / n as f64);
        done += n;
    }
    println!(
        "after the rounds: ledger outputs {}, record bytes {}",
        chans[0].ledger().outputs.len(),
        chans[0].record().len()
    );
    if primitives {
        time("Channel::record after the rounds", || {
            black_box(chans[0].record());
        });
    }
    let mean = total as f64 / 1_000.0 / rounds as f64;
    for (what, us) in [("mean", mean), ("best batch", best)] {
        println!(
            "round (2 participants, {what}): {us:.1} µs; per participant {:.1} µs = {:.0} updates/s",
            us / 2.0,
            2.0e6 / us
        );
    }
}
