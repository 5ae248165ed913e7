//! Every transaction the builders produce, for 2, 3 and 16 participants, passes Bitcoin Core's script
//! interpreter (libbitcoinconsensus, all flags incl. taproot) and the standardness checks: funding,
//! each holder's commitment, delayed sweep, penalty by every other participant, cooperative close.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use bitcoin::hashes::Hash;
use bitcoin::secp256k1::{PublicKey, SecretKey};
use bitcoin::{Amount, OutPoint, ScriptBuf, Transaction, TxOut, Txid};
use channel_fsm::sig::secp;
use channel_fsm::signer::{InMemorySigner, Signer};
use channel_fsm::standard::{self, StandardnessError};
use channel_fsm::tx::{
    self, ChannelParams, DelayedSpend, FundingInput, FundingScript, FundingSigningKey,
    PARTICIPANTS_MAX,
};

struct Setup {
    signers: Vec<InMemorySigner>,
    params: ChannelParams,
    funding_out: TxOut,
}

fn setup(n: usize, feerate_per_kw: u32) -> Setup {
    let signers: Vec<InMemorySigner> = (0..n)
        .map(|i| InMemorySigner::from_seed([u8::try_from(i).unwrap() + 1; 32]))
        .collect();
    let participants: Vec<_> = signers.iter().map(Signer::keys).collect();
    // A P2WPKH coin of the funder, and the signed funding transaction spending it.
    let coin_key = SecretKey::from_slice(&[0x55; 32]).unwrap();
    let coin_pk = bitcoin::CompressedPublicKey(PublicKey::from_secret_key(secp(), &coin_key));
    let coin = TxOut {
        value: Amount::from_sat(20_000_000),
        script_pubkey: ScriptBuf::new_p2wpkh(&coin_pk.wpubkey_hash()),
    };
    let input = FundingInput {
        outpoint: OutPoint {
            txid: Txid::from_byte_array([7; 32]),
            vout: 1,
        },
        txout: coin.clone(),
        secret: coin_key,
    };
    let funding_amount = Amount::from_sat(10_000_000);
    let funding = tx::build_funding(
        &participants,
        &[input],
        funding_amount,
        coin.script_pubkey.clone(),
        Amount::from_sat(2_000),
    )
    .unwrap();
    common::verify_all(&format!("funding n={n}"), &funding, &[coin]);
    let params = ChannelParams {
        participants,
        funding_outpoint: OutPoint {
            txid: funding.compute_txid(),
            vout: 0,
        },
        funding_amount,
        to_self_delay: tx::TO_SELF_DELAY_DEFAULT,
        feerate_per_kw,
    };
    let funding_out = funding.output[0].clone();
    Setup {
        signers,
        params,
        funding_out,
    }
}

fn balances(n: usize, total: u64) -> Vec<Amount> {
    // Unequal balances so every output has a distinct value; participant 0 gets the remainder.
    let weights: Vec<u64> = (1..=n as u64).collect();
    let wsum: u64 = weights.iter().sum();
    let mut b: Vec<Amount> = weights
        .iter()
        .map(|w| Amount::from_sat(total * w / wsum))
        .collect();
    let rest = total - b.iter().map(|a| a.to_sat()).sum::<u64>();
    b[0] += Amount::from_sat(rest);
    b
}

fn sign_funding_spend(s: &Setup, unsigned: &Transaction) -> Transaction {
    let script = FundingScript::new(&s.params.participants).unwrap();
    let digest = script.sighash(unsigned, 0, &s.funding_out).unwrap();
    let sigs: Vec<[u8; 64]> = s
        .signers
        .iter()
        .map(|k| k.sign_funding_spend(&script, &digest))
        .collect();
    for (i, sig) in sigs.iter().enumerate() {
        assert!(script.verify(&s.params.participants, i, &digest, sig));
        // A key prepared once signs as the one-off path does, spend after spend.
        let secret = s.signers[i].funding_secret();
        let prepared = FundingSigningKey::new(&secret);
        for _ in 0..2 {
            assert_eq!(prepared.sign(&script, &digest), *sig);
        }
        assert_eq!(script.sign(&secret, &digest), *sig);
    }
    let mut signed = unsigned.clone();
    signed.input[0].witness = script.witness(&s.params.participants, &sigs).unwrap();
    signed
}

/// The chain tip the sweeps and penalties are built at.
const TIP: u32 = 840_000;

/// Anti-fee-sniping as Bitcoin Core's wallet does it: nLockTime is the tip's height, so the
/// transaction fits the next block and no earlier one, and the input's nSequence (`sequence`: the
/// relative timelock of a sweep, the penalty's) leaves the lock time in force.
fn assert_anti_fee_sniping(t: &Transaction, sequence: bitcoin::Sequence) {
    assert_eq!(
        t.lock_time,
        bitcoin::absolute::LockTime::from_height(TIP).unwrap()
    );
    assert_eq!(t.input[0].sequence, sequence);
    assert_ne!(
        t.input[0].sequence,
        bitcoin::Sequence::MAX,
        "lock time enabled"
    );
    assert!(tx::absolute_timelock_met(t, TIP + 1), "fits the next block");
    assert!(
        !tx::absolute_timelock_met(t, TIP),
        "not the tip's own height"
    );
}

fn check_all_transactions(n: usize) {
    let s = setup(n, 2_500);
    let b = balances(n, s.params.funding_amount.to_sat());
    let number = 7;
    for holder in 0..n {
        let point = s.signers[holder].per_commitment_point(number).unwrap();
        let commitment = tx::build_commitment(&s.params, holder, number, &b, &point).unwrap();
        assert!(
            commitment.tx.weight().to_wu() <= tx::commitment_weight(n) + 4,
            "fee weight estimate covers the tx"
        );
        let signed = sign_funding_spend(&s, &commitment.tx);
        assert!(
            signed.weight().to_wu() <= tx::commitment_weight(n),
            "n={n}: {} > {}",
            signed.weight().to_wu(),
            tx::commitment_weight(n)
        );
        common::verify_all(
            &format!("commitment n={n} holder={holder}"),
            &signed,
            std::slice::from_ref(&s.funding_out),
        );
        assert_eq!(
            tx::commitment_number_of(&signed, &s.params.participants),
            Some(number)
        );

        // The holder's delayed sweep after to_self_delay.
        let spend = DelayedSpend::of(&commitment).unwrap();
        let delayed_key = s.signers[holder].delayed_privkey(&point).unwrap();
        let dest = tx::payout_script(&s.params.participants, holder).unwrap();
        let sweep = tx::build_delayed_sweep(&s.params, &spend, &delayed_key, dest, TIP).unwrap();
        assert_anti_fee_sniping(
            &sweep,
            bitcoin::Sequence::from_height(s.params.to_self_delay),
        );
        common::verify_all(
            &format!("delayed sweep n={n} holder={holder}"),
            &sweep,
            std::slice::from_ref(&spend.txout),
        );
        // One block early, the sequence lock says no: CSV fails with a smaller nSequence.
        let mut early = sweep.clone();
        early.input[0].sequence = bitcoin::Sequence::from_height(tx::TO_SELF_DELAY_DEFAULT - 1);
        assert!(
            common::core_verify(&early, std::slice::from_ref(&spend.txout)).is_err(),
            "CSV enforced"
        );

        // Once revoked, every other participant can take it.
        let secret = s.signers[holder].per_commitment_secret(number).unwrap();
        // Claims: the next participant was shorted 10,000 sat by the revoked state.
        let mut claims = vec![Amount::ZERO; n];
        claims[(holder + 1) % n] = Amount::from_sat(10_000);
        for penalizer in (0..n).filter(|p| *p != holder) {
            let rk = s.signers[penalizer].revocation_privkey(&secret).unwrap();
            let penalty =
                tx::build_penalty(&s.params, &spend, holder, penalizer, &rk, &claims, TIP).unwrap();
            assert_anti_fee_sniping(&penalty, tx::PENALTY_SEQUENCE);
            common::verify_all(
                &format!("penalty n={n} cheater={holder} by {penalizer}"),
                &penalty,
                std::slice::from_ref(&spend.txout),
            );
            let paid: u64 = penalty.output.iter().map(|o| o.value.to_sat()).sum();
            assert!(paid < spend.txout.value.to_sat());
            // The cheater can't use its own revocation path (no leaf / wrong key).
            if n == 2 {
                let wrong = s.signers[holder].revocation_privkey(&secret).unwrap();
                let bad = tx::build_penalty(&s.params, &spend, holder, penalizer, &wrong, &[], TIP)
                    .unwrap();
                assert!(common::core_verify(&bad, std::slice::from_ref(&spend.txout)).is_err());
            }
        }
        // Without the secret, a key derived from another secret doesn't open the revocation path.
        let other_secret = s.signers[holder].per_commitment_secret(number + 1).unwrap();
        let penalizer = (holder + 1) % n;
        let rk = s.signers[penalizer]
            .revocation_privkey(&other_secret)
            .unwrap();
        let bad =
            tx::build_penalty(&s.params, &spend, holder, penalizer, &rk, &claims, TIP).unwrap();
        assert!(common::core_verify(&bad, std::slice::from_ref(&spend.txout)).is_err());
    }
    // Cooperative close.
    let close = tx::build_close(&s.params, &b).unwrap();
    let signed = sign_funding_spend(&s, &close);
    common::verify_all(
        &format!("close n={n}"),
        &signed,
        std::slice::from_ref(&s.funding_out),
    );
    // A missing signature fails Core's interpreter.
    let script = FundingScript::new(&s.params.participants).unwrap();
    let digest = script.sighash(&close, 0, &s.funding_out).unwrap();
    let mut sigs: Vec<[u8; 64]> = s
        .signers
        .iter()
        .map(|k| k.sign_funding_spend(&script, &digest))
        .collect();
    sigs[n - 1] = sigs[0];
    let mut bad = close.clone();
    bad.input[0].witness = script.witness(&s.params.participants, &sigs).unwrap();
    assert!(common::core_verify(&bad, std::slice::from_ref(&s.funding_out)).is_err());
}

#[test]
fn two_party_transactions_pass_core_interpreter() {
    check_all_transactions(2);
}

#[test]
fn three_party_transactions_pass_core_interpreter() {
    check_all_transactions(3);
}

#[test]
fn sixteen_party_transactions_pass_core_interpreter() {
    check_all_transactions(PARTICIPANTS_MAX);
}

#[test]
fn participant_limits() {
    let signers: Vec<InMemorySigner> = (0..=PARTICIPANTS_MAX)
        .map(|i| InMemorySigner::from_seed([u8::try_from(i).unwrap() + 1; 32]))
        .collect();
    let keys: Vec<_> = signers.iter().map(Signer::keys).collect();
    assert!(FundingScript::new(&keys[..PARTICIPANTS_MAX]).is_ok());
    assert_eq!(
        FundingScript::new(&keys).unwrap_err(),
        tx::TxError::ParticipantCount {
            count: PARTICIPANTS_MAX + 1
        }
    );
    assert!(FundingScript::new(&keys[..1]).is_err());
}

#[test]
fn dust_balances_are_left_out_and_fee_unaffordable_is_an_error() {
    let s = setup(3, 2_500);
    let total = s.params.funding_amount.to_sat();
    let b = vec![
        Amount::from_sat(total - 600 - 500),
        Amount::from_sat(600),
        Amount::from_sat(500),
    ];
    let point = s.signers[1].per_commitment_point(0).unwrap();
    let c = tx::build_commitment(&s.params, 1, 0, &b, &point).unwrap();
    assert_eq!(c.tx.output.len(), 2);
    assert!(c.vouts[2].is_none());
    let signed = sign_funding_spend(&s, &c.tx);
    common::verify_all(
        "commitment with dust",
        &signed,
        std::slice::from_ref(&s.funding_out),
    );
    let poor = vec![
        Amount::from_sat(10),
        Amount::from_sat(total - 20),
        Amount::from_sat(10),
    ];
    assert!(matches!(
        tx::build_commitment(&s.params, 1, 0, &poor, &point),
        Err(tx::TxError::FeeUnaffordable { .. })
    ));
}

#[test]
fn standardness_checks_reject_violations() {
    let s = setup(2, 253);
    let b = balances(2, s.params.funding_amount.to_sat());
    let point = s.signers[0].per_commitment_point(0).unwrap();
    let c = tx::build_commitment(&s.params, 0, 0, &b, &point).unwrap();
    let signed = sign_funding_spend(&s, &c.tx);
    let prev = [s.funding_out.clone()];
    standard::check_standard(&signed, &prev).unwrap();
    let mut dust = signed.clone();
    dust.output[0].value = Amount::from_sat(293);
    assert!(matches!(
        standard::check_standard(&dust, &prev),
        Err(StandardnessError::Dust { .. })
    ));
    let mut version = signed.clone();
    version.version = bitcoin::transaction::Version(4);
    assert!(matches!(
        standard::check_standard(&version, &prev),
        Err(StandardnessError::Version(4))
    ));
    let mut big = signed.clone();
    big.output[0].script_pubkey = ScriptBuf::from_bytes(vec![0x51; 10]);
    assert!(matches!(
        standard::check_standard(&big, &prev),
        Err(StandardnessError::OutputType(0))
    ));
    let mut nofee = signed.clone();
    nofee.output[0].value += Amount::from_sat(c.fee.to_sat());
    assert!(matches!(
        standard::check_standard(&nofee, &prev),
        Err(StandardnessError::Fee { .. })
    ));
    // MINIMALIF: a 2-byte OP_IF selector is refused.
    let spend = DelayedSpend::of(&c).unwrap();
    let secret = s.signers[0].per_commitment_secret(0).unwrap();
    let rk = s.signers[1].revocation_privkey(&secret).unwrap();
    let penalty = tx::build_penalty(&s.params, &spend, 0, 1, &rk, &[], TIP).unwrap();
    standard::check_standard(&penalty, std::slice::from_ref(&spend.txout)).unwrap();
    let mut items: Vec<Vec<u8>> = penalty.input[0]
        .witness
        .iter()
        .map(<[u8]>::to_vec)
        .collect();
    items[1] = vec![1, 0];
    let mut nonminimal = penalty.clone();
    nonminimal.input[0].witness = bitcoin::Witness::from_slice(&items);
    assert!(matches!(
        standard::check_standard(&nonminimal, std::slice::from_ref(&spend.txout)),
        Err(StandardnessError::Witness { .. })
    ));
}
