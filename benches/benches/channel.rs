//! channel-fsm benchmarks: co-signed state updates for 2 and 8 participants (one participant's work,
//! no I/O), transfer validation, a batch across 1,000 channels on 1 and 2 threads, verification of the
//! 8 and 16 signatures of a state on 1 and 2 threads, and both signature backends (libsecp256k1
//! baseline, k256) signing and verifying in the same run.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::VecDeque;
use std::hint::black_box;

use benches::clock::Stopwatch;
use bitcoin::hashes::Hash;
use bitcoin::secp256k1::{PublicKey, SecretKey};
use bitcoin::{Amount, OutPoint, ScriptBuf, TxOut, Txid};
use channel_fsm::channel::{Action, ChainEvent, Channel, ChannelConfig, Phase};
use channel_fsm::ledger::{self, Ledger};
use channel_fsm::manager::ChannelManager;
use channel_fsm::msg::Message;
use channel_fsm::sig::{DefaultBackend, K256Backend, Secp256k1Backend, SigBackend, secp};
use channel_fsm::signer::{InMemorySigner, Signer};
use channel_fsm::tx::{self, ChannelParams, FundingInput};
use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

type Ch = Channel<InMemorySigner>;

fn run_sync(ch: &mut Ch, actions: Vec<Action>) -> Vec<(u16, Message)> {
    let mut out = Vec::new();
    let mut work: VecDeque<Action> = actions.into();
    while let Some(a) = work.pop_front() {
        match a {
            Action::Persist { record_id, .. } => work.extend(ch.persisted(record_id)),
            Action::Send { to, msg } => out.push((to, msg)),
            Action::Broadcast { .. } | Action::Event(_) => {}
        }
    }
    out
}

fn pump(chans: &mut [Ch], msgs: Vec<(u16, Message)>) {
    let mut msgs: VecDeque<(u16, Message)> = msgs.into();
    while let Some((to, m)) = msgs.pop_front() {
        let ch = &mut chans[usize::from(to)];
        let actions = ch.handle_message(m).unwrap();
        msgs.extend(run_sync(ch, actions));
    }
}

fn signers(n: usize) -> Vec<InMemorySigner> {
    (0..n)
        .map(|i| InMemorySigner::from_seed([u8::try_from(i).unwrap() + 1; 32]))
        .collect()
}

/// One active channel among `signers` (index = participant); `tag` makes its funding unique.
fn active_channel(signers: &[InMemorySigner], tag: u32) -> Vec<Ch> {
    let participants: Vec<_> = signers.iter().map(Signer::keys).collect();
    let n = signers.len();
    let key = SecretKey::from_slice(&[0x42; 32]).unwrap();
    let pk = bitcoin::CompressedPublicKey(PublicKey::from_secret_key(secp(), &key));
    let each = 10_000_000u64;
    let funding_amount = Amount::from_sat(each * n as u64);
    let coin = TxOut {
        value: funding_amount + Amount::from_sat(10_000),
        script_pubkey: ScriptBuf::new_p2wpkh(&pk.wpubkey_hash()),
    };
    let mut txid = [0u8; 32];
    txid[..4].copy_from_slice(&tag.to_le_bytes());
    let input = FundingInput {
        outpoint: OutPoint {
            txid: Txid::from_byte_array(txid),
            vout: 0,
        },
        txout: coin.clone(),
        secret: key,
    };
    let funding_tx = tx::build_funding(
        &participants,
        &[input],
        funding_amount,
        coin.script_pubkey,
        Amount::from_sat(2_000),
    )
    .unwrap();
    let params = ChannelParams {
        participants,
        funding_outpoint: OutPoint {
            txid: funding_tx.compute_txid(),
            vout: 0,
        },
        funding_amount,
        to_self_delay: tx::TO_SELF_DELAY_DEFAULT,
        feerate_per_kw: 253,
    };
    let config = ChannelConfig {
        params,
        initial_balances: vec![Amount::from_sat(each); n],
        initial_points: signers
            .iter()
            .map(|s| s.per_commitment_point(0).unwrap())
            .collect(),
        min_depth: 1,
        funding_tx: funding_tx.clone(),
    };
    let mut chans = Vec::new();
    let mut msgs = Vec::new();
    for (i, s) in signers.iter().enumerate() {
        let (mut ch, actions) =
            Channel::open(config.clone(), u16::try_from(i).unwrap(), s.clone(), 100).unwrap();
        msgs.extend(run_sync(&mut ch, actions));
        chans.push(ch);
    }
    pump(&mut chans, msgs);
    for ch in &mut chans {
        let actions = ch
            .handle_chain(ChainEvent::Block {
                height: 101,
                txs: vec![funding_tx.clone()],
            })
            .unwrap();
        run_sync(ch, actions);
        assert_eq!(ch.phase(), Phase::Active);
    }
    chans
}

/// One full co-signed update round among all participants of `chans`: participant `from` pays
/// `to`, everyone validates, signs its state and commitment signatures, verifies the others',
/// revokes the previous version and checks the revocations.
fn round(chans: &mut [Ch], from: usize, to: usize) {
    let t = chans[from]
        .make_transfer(u16::try_from(to).unwrap(), Amount::from_sat(1_000))
        .unwrap();
    let actions = chans[from].propose(vec![t]).unwrap();
    let msgs = run_sync(&mut chans[from], actions);
    pump(chans, msgs);
}

fn bench_updates(c: &mut Criterion) {
    let mut g = c.benchmark_group("channel_update");
    g.sample_size(10);
    for n in [2usize, 8] {
        let mut chans = active_channel(&signers(n), 1);
        let mut k = 0usize;
        // Each round is n participants' work: elements = n, so the rate is one participant's
        // updates per second on one core.
        g.throughput(Throughput::Elements(n as u64));
        // Thread CPU time under L2BTC_BENCH_CLOCK=cpu (the rounds run on this thread only).
        g.bench_function(BenchmarkId::new("cosigned", format!("{n}p")), |b| {
            b.iter_custom(|iters| {
                let start = Stopwatch::start();
                for _ in 0..iters {
                    // Alternate directions so the ledger stays small.
                    let (from, to) = if k.is_multiple_of(2) { (0, 1) } else { (1, 0) };
                    k += 1;
                    round(&mut chans, from, to);
                }
                start.elapsed()
            });
        });
    }
    ec_floor(&mut g);
    ec_floor_varied(&mut g);
    g.finish();
}

/// The elliptic-curve work one participant does per co-signed 2-party update with one transfer,
/// with nothing else: the floor of `channel_update/cosigned/2p` on this backend. Per update:
/// the BOLT 3 Appendix E keys of both commitments (own commitment: delayed key as owner, one
/// generator multiplication; revocation key as holder, a variable-base and a generator
/// multiplication and a point addition; the peer's commitment: delayed key, a generator
/// multiplication and a point addition; revocation key as revoker, a generator and a
/// variable-base multiplication and a point addition), the next per-commitment point and the check
/// of the peer's revealed secret (a generator multiplication each), the commitment ECDSA and state
/// BIP340 signatures and their checks, and half a transfer (the proposer signs it, the other
/// participant checks it). The same primitives as the state machine (`sig::generator_mul`,
/// `bitcoin::secp256k1` tweaks and verification).
fn ec_floor(g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>) {
    use bitcoin::secp256k1::{Message, Scalar};
    use channel_fsm::sig::{SchnorrKeypair, ecdsa_sign_secret, generator_mul};
    let sk = |b: u8| SecretKey::from_slice(&[b; 32]).unwrap();
    let point = PublicKey::from_secret_key(secp(), &sk(5));
    let tweak = Scalar::from_be_bytes([6u8; 32]).unwrap();
    let state = SchnorrKeypair::new(&sk(7));
    let digest = [9u8; 32];
    let ecdsa_kp = Secp256k1Backend::keypair(&[8u8; 32]).unwrap();
    let ecdsa_pk =
        Secp256k1Backend::parse_ecdsa_public(&Secp256k1Backend::ecdsa_public_bytes(&ecdsa_kp))
            .unwrap();
    let ecdsa_sig = ecdsa_sign_secret(&sk(8), &digest);
    let state_pk = Secp256k1Backend::parse_xonly_public(
        &PublicKey::from_secret_key(secp(), &sk(7))
            .x_only_public_key()
            .0
            .serialize(),
    )
    .unwrap();
    let state_sig = state.sign(&digest, Some(&[0u8; 32]));
    // An iteration is a whole round's work (both participants' updates: 2 elements), as in
    // `cosigned/2p`, so the report's time ratio compares like with like.
    g.throughput(Throughput::Elements(2));
    g.bench_function(BenchmarkId::new("ec_floor", "2p"), |b| {
        b.iter_custom(|iters| {
            let start = Stopwatch::start();
            for _ in 0..iters {
                for _participant in 0..2 {
                    // Six generator multiplications (four key terms, next point, revealed secret).
                    for i in 0..6u8 {
                        black_box(generator_mul(black_box(&sk(10 + i))));
                    }
                    // Two variable-base multiplications (one revocation term per commitment).
                    for _ in 0..2 {
                        black_box(point.mul_tweak(secp(), black_box(&tweak)).unwrap());
                    }
                    // Three point additions (peer's delayed key, both revocation keys).
                    for _ in 0..3 {
                        black_box(black_box(point).combine(&point).unwrap());
                    }
                    black_box(ecdsa_sign_secret(&sk(8), black_box(&digest)));
                    black_box(state.sign(black_box(&digest), Some(&[0u8; 32])));
                    secp()
                        .verify_ecdsa(
                            &Message::from_digest(black_box(digest)),
                            &bitcoin::secp256k1::ecdsa::Signature::from_compact(&ecdsa_sig)
                                .unwrap(),
                            &ecdsa_pk,
                        )
                        .unwrap();
                    Secp256k1Backend::schnorr_verify(&state_pk, black_box(&digest), &state_sig)
                        .unwrap();
                }
                // The transfer: signed by the proposer, checked by the other participant.
                black_box(state.sign(black_box(&digest), Some(&[0u8; 32])));
                Secp256k1Backend::schnorr_verify(&state_pk, black_box(&digest), &state_sig)
                    .unwrap();
            }
            start.elapsed()
        });
    });
}

/// Times `OPS` calls of `op` per iteration (thread CPU time under `L2BTC_BENCH_CLOCK=cpu`; that
/// clock advances in scheduler ticks, so iterations are many operations long).
fn timed_ops(b: &mut criterion::Bencher<'_>, mut op: impl FnMut()) {
    b.iter_custom(|iters| {
        let start = Stopwatch::start();
        for _ in 0..iters * PRIMITIVE_OPS {
            op();
        }
        start.elapsed()
    });
}

/// Operations per timed iteration of a primitive.
const PRIMITIVE_OPS: u64 = 64;

/// The elliptic-curve primitives one update is made of, on libsecp256k1 (the default backend, both
/// the v0.4 build under `bitcoin::secp256k1` and the v0.6 one the crate signs and multiplies
/// with) and on k256, in one run, and the alternative routes for the same results: `P + t·G` as a
/// generator multiplication plus a point addition (the channel's route for public `t`) against
/// `add_exp_tweak` (one variable-time multiplication); `t·P` as `mul_tweak` against a generator
/// multiplication of `s·t` when `P = s·G` and `s` is known; and point encoding and parsing.
fn bench_primitives(c: &mut Criterion) {
    use bitcoin::secp256k1::{Message, Scalar};
    use channel_fsm::sig::{SchnorrKeypair, ecdsa_sign_secret, generator_mul};
    let mut g = c.benchmark_group("channel_primitives");
    g.sample_size(10);
    g.throughput(Throughput::Elements(PRIMITIVE_OPS));
    let sk = |b: u8| SecretKey::from_slice(&[b; 32]).unwrap();
    let (s1, s2) = (sk(5), sk(6));
    let (p1, p2) = (
        PublicKey::from_secret_key(secp(), &s1),
        PublicKey::from_secret_key(secp(), &s2),
    );
    let tweak = Scalar::from_be_bytes([3u8; 32]).unwrap();
    let tweak_key = SecretKey::from_slice(&[3u8; 32]).unwrap();
    let digest = [9u8; 32];
    let lib = "libsecp256k1";
    g.bench_function(BenchmarkId::new("gen_mul/from_secret_key_v04", lib), |b| {
        timed_ops(b, || {
            black_box(PublicKey::from_secret_key(secp(), black_box(&s1)));
        })
    });
    g.bench_function(BenchmarkId::new("gen_mul/generator_mul_v06", lib), |b| {
        timed_ops(b, || {
            black_box(generator_mul(black_box(&s1)));
        })
    });
    g.bench_function(BenchmarkId::new("add_exp_tweak", lib), |b| {
        timed_ops(b, || {
            black_box(
                black_box(p1)
                    .add_exp_tweak(secp(), black_box(&tweak))
                    .unwrap(),
            );
        })
    });
    g.bench_function(BenchmarkId::new("gen_mul_v06+combine", lib), |b| {
        timed_ops(b, || {
            let t = generator_mul(black_box(&tweak_key));
            black_box(black_box(p1).combine(&t).unwrap());
        })
    });
    g.bench_function(BenchmarkId::new("mul_tweak", lib), |b| {
        timed_ops(b, || {
            black_box(black_box(p1).mul_tweak(secp(), black_box(&tweak)).unwrap());
        })
    });
    g.bench_function(BenchmarkId::new("secret_mul_tweak+gen_mul_v06", lib), |b| {
        timed_ops(b, || {
            let s = black_box(s1).mul_tweak(black_box(&tweak)).unwrap();
            black_box(generator_mul(&s));
        })
    });
    g.bench_function(BenchmarkId::new("combine", lib), |b| {
        timed_ops(b, || {
            black_box(black_box(p1).combine(black_box(&p2)).unwrap());
        })
    });
    g.bench_function(BenchmarkId::new("combine_keys", lib), |b| {
        timed_ops(b, || {
            black_box(PublicKey::combine_keys(&[black_box(&p1), black_box(&p2)]).unwrap());
        })
    });
    g.bench_function(BenchmarkId::new("serialize", lib), |b| {
        timed_ops(b, || {
            black_box(black_box(&p1).serialize());
        })
    });
    let bytes = p1.serialize();
    g.bench_function(BenchmarkId::new("parse_compressed", lib), |b| {
        timed_ops(b, || {
            black_box(PublicKey::from_slice(black_box(&bytes)).unwrap());
        })
    });
    let ecdsa = ecdsa_sign_secret(&s1, &digest);
    g.bench_function(BenchmarkId::new("ecdsa_sign_v06", lib), |b| {
        timed_ops(b, || {
            black_box(ecdsa_sign_secret(&s1, black_box(&digest)));
        })
    });
    let sig = bitcoin::secp256k1::ecdsa::Signature::from_compact(&ecdsa).unwrap();
    g.bench_function(BenchmarkId::new("ecdsa_verify", lib), |b| {
        timed_ops(b, || {
            secp()
                .verify_ecdsa(&Message::from_digest(black_box(digest)), &sig, &p1)
                .unwrap();
        })
    });
    let kp = SchnorrKeypair::new(&s1);
    let schnorr = kp.sign(&digest, Some(&[0u8; 32]));
    g.bench_function(BenchmarkId::new("schnorr_sign_v06", lib), |b| {
        timed_ops(b, || {
            black_box(kp.sign(black_box(&digest), Some(&[0u8; 32])));
        })
    });
    let xpk = Secp256k1Backend::parse_xonly_public(&p1.x_only_public_key().0.serialize()).unwrap();
    g.bench_function(BenchmarkId::new("schnorr_verify", lib), |b| {
        timed_ops(b, || {
            Secp256k1Backend::schnorr_verify(&xpk, black_box(&digest), &schnorr).unwrap();
        })
    });
    k256_primitives(&mut g);
    g.finish();
}

/// The k256 rows of [`bench_primitives`]: the same operations in RustCrypto's constant-time
/// arithmetic (points come back affine, as libsecp256k1's public keys are), and its two-point
/// linear combination (`k·P + l·Q` in one pass, which libsecp256k1's API does not offer).
fn k256_primitives(g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>) {
    use channel_fsm::sig::k256::elliptic_curve::ops::{LinearCombination, MulByGenerator};
    use channel_fsm::sig::k256::elliptic_curve::sec1::ToEncodedPoint;
    use channel_fsm::sig::k256::elliptic_curve::{PrimeField, sec1::FromEncodedPoint};
    use channel_fsm::sig::k256::{AffinePoint, EncodedPoint, ProjectivePoint, Scalar};
    let scalar = |b: u8| Option::<Scalar>::from(Scalar::from_repr([b; 32].into())).unwrap();
    let (s1, s2, t) = (scalar(5), scalar(6), scalar(3));
    let p1 = ProjectivePoint::mul_by_generator(&s1).to_affine();
    let p2 = ProjectivePoint::mul_by_generator(&s2).to_affine();
    let name = K256Backend::NAME;
    g.bench_function(BenchmarkId::new("gen_mul", name), |b| {
        timed_ops(b, || {
            black_box(ProjectivePoint::mul_by_generator(black_box(&s1)).to_affine());
        })
    });
    g.bench_function(BenchmarkId::new("mul", name), |b| {
        timed_ops(b, || {
            black_box((ProjectivePoint::from(black_box(p1)) * black_box(t)).to_affine());
        })
    });
    g.bench_function(BenchmarkId::new("lincomb_2", name), |b| {
        timed_ops(b, || {
            let r = ProjectivePoint::lincomb(
                &ProjectivePoint::from(black_box(p1)),
                black_box(&t),
                &ProjectivePoint::from(black_box(p2)),
                black_box(&s2),
            );
            black_box(r.to_affine());
        })
    });
    g.bench_function(BenchmarkId::new("combine", name), |b| {
        timed_ops(b, || {
            black_box((ProjectivePoint::from(black_box(p1)) + black_box(p2)).to_affine());
        })
    });
    let encoded = p1.to_encoded_point(true);
    g.bench_function(BenchmarkId::new("serialize", name), |b| {
        timed_ops(b, || {
            black_box(black_box(p1).to_encoded_point(true));
        })
    });
    g.bench_function(BenchmarkId::new("parse_compressed", name), |b| {
        timed_ops(b, || {
            let e = EncodedPoint::from_bytes(black_box(encoded.as_bytes())).unwrap();
            black_box(Option::<AffinePoint>::from(AffinePoint::from_encoded_point(&e)).unwrap());
        })
    });
    let kp = K256Backend::keypair(&[5u8; 32]).unwrap();
    let digest = [9u8; 32];
    let ecdsa = K256Backend::ecdsa_sign(&kp, &digest);
    let schnorr = K256Backend::schnorr_sign(&kp, &digest, &[0u8; 32]);
    let epk = K256Backend::parse_ecdsa_public(&K256Backend::ecdsa_public_bytes(&kp)).unwrap();
    let xpk = K256Backend::parse_xonly_public(&K256Backend::xonly_public_bytes(&kp)).unwrap();
    g.bench_function(BenchmarkId::new("ecdsa_sign", name), |b| {
        timed_ops(b, || {
            black_box(K256Backend::ecdsa_sign(&kp, black_box(&digest)));
        })
    });
    g.bench_function(BenchmarkId::new("ecdsa_verify", name), |b| {
        timed_ops(b, || {
            K256Backend::ecdsa_verify(&epk, black_box(&digest), &ecdsa).unwrap();
        })
    });
    g.bench_function(BenchmarkId::new("schnorr_sign", name), |b| {
        timed_ops(b, || {
            black_box(K256Backend::schnorr_sign(
                &kp,
                black_box(&digest),
                &[0u8; 32],
            ));
        })
    });
    g.bench_function(BenchmarkId::new("schnorr_verify", name), |b| {
        timed_ops(b, || {
            K256Backend::schnorr_verify(&xpk, black_box(&digest), &schnorr).unwrap();
        })
    });
}

/// Inputs of one participant's update for [`ec_floor_varied`]: different keys, points, tweaks,
/// digests and signatures per update, as a channel has.
struct FloorInputs {
    secrets: [SecretKey; 6],
    points: [PublicKey; 2],
    tweaks: [bitcoin::secp256k1::Scalar; 2],
    digest: [u8; 32],
    ecdsa_sig: bitcoin::secp256k1::ecdsa::Signature,
    ecdsa_pk: PublicKey,
    state: channel_fsm::sig::SchnorrKeypair,
    state_pk: bitcoin::secp256k1::XOnlyPublicKey,
    state_sig: [u8; 64],
}

impl FloorInputs {
    fn new(seed: u64) -> Self {
        use bitcoin::hashes::sha256;
        use bitcoin::secp256k1::Scalar;
        use channel_fsm::sig::{SchnorrKeypair, ecdsa_sign_secret};
        let bytes = |k: u64| sha256::Hash::hash(&(seed * 64 + k).to_le_bytes()).to_byte_array();
        let key = |k: u64| SecretKey::from_slice(&bytes(k)).unwrap();
        let point = |k: u64| PublicKey::from_secret_key(secp(), &key(k));
        let digest = bytes(20);
        let state_key = key(21);
        let state = SchnorrKeypair::new(&state_key);
        Self {
            secrets: [key(0), key(1), key(2), key(3), key(4), key(5)],
            points: [point(6), point(7)],
            tweaks: [
                Scalar::from_be_bytes(bytes(8)).unwrap(),
                Scalar::from_be_bytes(bytes(9)).unwrap(),
            ],
            digest,
            ecdsa_sig: bitcoin::secp256k1::ecdsa::Signature::from_compact(&ecdsa_sign_secret(
                &key(10),
                &digest,
            ))
            .unwrap(),
            ecdsa_pk: point(10),
            state,
            state_pk: point(21).x_only_public_key().0,
            state_sig: state.sign(&digest, Some(&[0u8; 32])),
        }
    }
}

/// [`ec_floor`] with different inputs in every update (256 sets in turn), as the channel has:
/// the same calls, but the variable-time multiplications of the verifications look up other
/// entries of libsecp256k1's ~1 MB generator tables each time, which a floor repeating one input
/// keeps in cache. The gap between the two floors is the part of the update's gap to the floor
/// that is cache misses inside libsecp256k1.
fn ec_floor_varied(g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>) {
    use bitcoin::secp256k1::Message;
    use channel_fsm::sig::{ecdsa_sign_secret, generator_mul};
    let inputs: Vec<FloorInputs> = (0..256).map(FloorInputs::new).collect();
    let mut k = 0usize;
    g.throughput(Throughput::Elements(2));
    g.bench_function(BenchmarkId::new("ec_floor_varied", "2p"), |b| {
        b.iter_custom(|iters| {
            let start = Stopwatch::start();
            for _ in 0..iters {
                for _participant in 0..2 {
                    let x = &inputs[k % inputs.len()];
                    k += 1;
                    for s in &x.secrets {
                        black_box(generator_mul(black_box(s)));
                    }
                    for (p, t) in x.points.iter().zip(&x.tweaks) {
                        black_box(p.mul_tweak(secp(), black_box(t)).unwrap());
                    }
                    for _ in 0..3 {
                        black_box(black_box(x.points[0]).combine(&x.points[1]).unwrap());
                    }
                    black_box(ecdsa_sign_secret(&x.secrets[0], black_box(&x.digest)));
                    black_box(x.state.sign(black_box(&x.digest), Some(&[0u8; 32])));
                    secp()
                        .verify_ecdsa(
                            &Message::from_digest(black_box(x.digest)),
                            &x.ecdsa_sig,
                            &x.ecdsa_pk,
                        )
                        .unwrap();
                    Secp256k1Backend::schnorr_verify(
                        &x.state_pk,
                        black_box(&x.digest),
                        &x.state_sig,
                    )
                    .unwrap();
                }
                let x = &inputs[k % inputs.len()];
                black_box(x.state.sign(black_box(&x.digest), Some(&[0u8; 32])));
                Secp256k1Backend::schnorr_verify(&x.state_pk, black_box(&x.digest), &x.state_sig)
                    .unwrap();
            }
            start.elapsed()
        });
    });
}

fn bench_transfer_validation(c: &mut Criterion) {
    let mut g = c.benchmark_group("channel_transfer");
    let s = signers(2);
    let keys: Vec<_> = s
        .iter()
        .map(|x| DefaultBackend::parse_xonly_public(&x.keys().state_key.serialize()).unwrap())
        .collect();
    let ledger =
        Ledger::genesis(&[Amount::from_sat(5_000_000), Amount::from_sat(5_000_000)]).unwrap();
    let id = [3u8; 32];
    let t = ledger::make_transfer(&ledger, &id, 0, 1, Amount::from_sat(10_000), |d| {
        s[0].sign_state(d)
    })
    .unwrap();
    g.throughput(Throughput::Elements(1));
    g.bench_function(BenchmarkId::new("validate", "1"), |b| {
        b.iter(|| black_box(ledger.apply(&id, std::slice::from_ref(&t), &keys).unwrap()));
    });
    g.finish();
}

fn bench_batch(c: &mut Criterion) {
    const CHANNELS: usize = 1_000;
    let s = signers(2);
    // Records, not channels: every iteration restores fresh channels from their records (outside
    // the timing), as a node does at start, so each starts with no update in flight.
    let base: Vec<Vec<u8>> = (0..CHANNELS)
        .map(|i| {
            active_channel(&s, u32::try_from(i).unwrap() + 10)
                .remove(0)
                .record()
        })
        .collect();
    let mut g = c.benchmark_group("channel_batch");
    g.sample_size(10);
    g.throughput(Throughput::Elements(CHANNELS as u64));
    for threads in [1usize, 2] {
        g.bench_function(
            BenchmarkId::new("1000_channels", format!("threads={threads}")),
            |b| {
                b.iter_batched(
                    || {
                        let m = ChannelManager::new();
                        let mut updates = Vec::with_capacity(CHANNELS);
                        for record in &base {
                            let ch = Ch::restore(record, s[0].clone()).unwrap();
                            let t = ch.make_transfer(1, Amount::from_sat(1_000)).unwrap();
                            updates.push((*ch.channel_id(), vec![t]));
                            m.insert(ch).unwrap();
                        }
                        (m, updates)
                    },
                    |(m, updates)| {
                        // The batch is split among the threads; each part applies atomically.
                        let per = CHANNELS.div_ceil(threads);
                        let mut parts: Vec<Vec<_>> = Vec::new();
                        let mut it = updates.into_iter();
                        for _ in 0..threads {
                            parts.push(it.by_ref().take(per).collect());
                        }
                        std::thread::scope(|sc| {
                            for part in parts {
                                let m = &m;
                                sc.spawn(move || {
                                    let outcome = m.apply_batch(part).unwrap();
                                    black_box(m.batch_persisted(&outcome.token).unwrap());
                                });
                            }
                        });
                        m
                    },
                    BatchSize::PerIteration,
                );
            },
        );
    }
    g.finish();
}

/// The n state signatures of one version verified with `ledger::verify_state_signatures_parallel`
/// on 1 and 2 threads (one scoped spawn per state, no amortisation over several states) and with a
/// `ledger::StateVerifier` pool of 2 threads (started once; one state per call, and 8 states per
/// `verify_batch` call), for 8 and 16 participants. Wall time.
fn bench_state_verification(c: &mut Criterion) {
    const STATES: usize = 64;
    let mut g = c.benchmark_group("channel_verify_state");
    g.sample_size(10);
    for n in [8usize, 16] {
        let s = signers(n);
        let keys: Vec<_> = s
            .iter()
            .map(|x| DefaultBackend::parse_xonly_public(&x.keys().state_key.serialize()).unwrap())
            .collect();
        let id = [4u8; 32];
        let states: Vec<([u8; 32], Vec<[u8; 64]>)> = (0..STATES)
            .map(|v| {
                let root = [u8::try_from(v).unwrap(); 32];
                let d = ledger::state_digest(&id, v as u64, &root);
                (root, s.iter().map(|x| x.sign_state(&d)).collect())
            })
            .collect();
        g.throughput(Throughput::Elements(n as u64));
        // The pool's threads start once, outside the timing; each call wakes its worker.
        let pool = ledger::StateVerifier::new(2).unwrap();
        let mut v = 0usize;
        g.bench_function(BenchmarkId::new(format!("{n}_signatures"), "pool=2"), |b| {
            b.iter(|| {
                let (root, sigs) = &states[v % STATES];
                pool.verify(&id, (v % STATES) as u64, root, &keys, sigs)
                    .unwrap();
                v += 1;
            });
        });
        // Several states per call (e.g. a node checking a batch of channel updates): one wake-up
        // for all of them. Elements are still signatures.
        const BATCH: usize = 8;
        g.throughput(Throughput::Elements((n * BATCH) as u64));
        let mut v = 0usize;
        g.bench_function(
            BenchmarkId::new(format!("{n}_signatures"), format!("pool=2,batch={BATCH}")),
            |b| {
                b.iter(|| {
                    let batch: Vec<ledger::StateSignatures<'_>> = (0..BATCH)
                        .map(|k| {
                            let s = (v + k) % STATES;
                            ledger::StateSignatures {
                                channel_id: &id,
                                version: s as u64,
                                root: &states[s].0,
                                keys: &keys,
                                sigs: &states[s].1,
                            }
                        })
                        .collect();
                    pool.verify_batch(&batch).unwrap();
                    v += BATCH;
                });
            },
        );
        g.throughput(Throughput::Elements(n as u64));
        for threads in [1usize, 2] {
            let mut v = 0usize;
            g.bench_function(
                BenchmarkId::new(format!("{n}_signatures"), format!("threads={threads}")),
                |b| {
                    b.iter(|| {
                        let (root, sigs) = &states[v % STATES];
                        ledger::verify_state_signatures_parallel(
                            &id,
                            (v % STATES) as u64,
                            root,
                            &keys,
                            sigs,
                            threads,
                        )
                        .unwrap();
                        v += 1;
                    });
                },
            );
        }
    }
    g.finish();
}

fn sig_ops<B: SigBackend>(c: &mut Criterion) {
    let mut g = c.benchmark_group("sig");
    let kp = B::keypair(&[7u8; 32]).unwrap();
    let digest = [9u8; 32];
    let ecdsa = B::ecdsa_sign(&kp, &digest);
    let schnorr = B::schnorr_sign(&kp, &digest, &[0u8; 32]);
    let epk = B::parse_ecdsa_public(&B::ecdsa_public_bytes(&kp)).unwrap();
    let xpk = B::parse_xonly_public(&B::xonly_public_bytes(&kp)).unwrap();
    // Thread CPU time under L2BTC_BENCH_CLOCK=cpu, like the update rounds they bound. That clock
    // advances in scheduler ticks, so an iteration is OPS operations and samples are few and long.
    const OPS: u64 = 64;
    g.sample_size(10);
    g.throughput(Throughput::Elements(OPS));
    fn timed(b: &mut criterion::Bencher<'_>, mut op: impl FnMut()) {
        b.iter_custom(|iters| {
            let start = Stopwatch::start();
            for _ in 0..iters * OPS {
                op();
            }
            start.elapsed()
        });
    }
    g.bench_function(BenchmarkId::new("ecdsa_sign", B::NAME), |b| {
        timed(b, || {
            black_box(B::ecdsa_sign(&kp, black_box(&digest)));
        })
    });
    g.bench_function(BenchmarkId::new("ecdsa_verify", B::NAME), |b| {
        timed(b, || {
            B::ecdsa_verify(&epk, black_box(&digest), &ecdsa).unwrap()
        })
    });
    g.bench_function(BenchmarkId::new("schnorr_sign", B::NAME), |b| {
        timed(b, || {
            black_box(B::schnorr_sign(&kp, black_box(&digest), &[0u8; 32]));
        })
    });
    g.bench_function(BenchmarkId::new("schnorr_verify", B::NAME), |b| {
        timed(b, || {
            B::schnorr_verify(&xpk, black_box(&digest), &schnorr).unwrap()
        })
    });
    g.finish();
}

fn bench_sigs(c: &mut Criterion) {
    sig_ops::<Secp256k1Backend>(c);
    sig_ops::<K256Backend>(c);
}

criterion_group!(
    benches,
    bench_sigs,
    bench_primitives,
    bench_transfer_validation,
    bench_updates,
    bench_state_verification,
    bench_batch
);
criterion_main!(benches);
