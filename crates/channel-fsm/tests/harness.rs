//! Functional tests through the LDK-style harness: open, transfer, close, unilateral close with the
//! delayed sweep, penalty of a revoked commitment, persistence before send, failed transitions leave
//! the channel unchanged, replay protection, balance proofs against the co-signed root.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use channel_fsm::channel::{Channel, ChannelError, Event, Phase};
use channel_fsm::ledger::{self, state_digest};
use channel_fsm::msg::{self, Message, Sig};
use channel_fsm::sig::{DefaultBackend, SigBackend};
use channel_fsm::signer::Signer;
use channel_fsm::tx;
use common::net::{create_network, sat};

#[test]
fn two_party_open_transfer_close() {
    let mut net = create_network(2);
    let cfg = net.open_channel(&[sat(7_000_000), sat(3_000_000)]);
    net.transfer(0, 1, sat(1_000_000));
    net.transfer(1, 0, sat(250_000));
    net.transfer(1, 0, sat(250_000));
    let ledger = net.nodes[0].channel.as_ref().unwrap().ledger().clone();
    let reserve = tx::commitment_fee(&cfg.params);
    assert_eq!(
        ledger.balances(),
        vec![
            sat(7_000_000 - 1_000_000 + 500_000) - reserve,
            sat(3_000_000 + 1_000_000 - 500_000)
        ]
    );
    let close = net.close(1);
    // Each participant's payout equals its ledger balance (the funder's reserve paid the fee).
    for i in 0..2 {
        let spk = tx::payout_script(&cfg.params.participants, i).unwrap();
        let got: bitcoin::Amount = close
            .output
            .iter()
            .filter(|o| o.script_pubkey == spk)
            .map(|o| o.value)
            .sum();
        assert_eq!(got, ledger.balances()[i]);
    }
    assert!(
        net.nodes
            .iter()
            .all(|n| n.channel.as_ref().unwrap().phase() == Phase::Settled)
    );
}

#[test]
fn three_party_open_transfer_close() {
    let mut net = create_network(3);
    net.open_channel(&[sat(5_000_000), sat(3_000_000), sat(2_000_000)]);
    net.transfer(0, 2, sat(100_000));
    net.transfer(2, 1, sat(1_000_000));
    net.transfer(1, 0, sat(50_000));
    net.close(2);
}

#[test]
fn unilateral_close_sweeps_after_the_delay() {
    let mut net = create_network(2);
    let cfg = net.open_channel(&[sat(6_000_000), sat(4_000_000)]);
    net.transfer(0, 1, sat(500_000));
    let actions = net.nodes[1]
        .channel
        .as_mut()
        .unwrap()
        .force_close()
        .unwrap();
    net.apply(1, actions);
    assert_eq!(net.broadcasts.len(), 1);
    net.broadcasts.clear();
    net.mine();
    for i in 0..2 {
        let ev = net.take_events(i);
        assert!(
            ev.iter().any(|e| matches!(
                e,
                Event::CommitmentConfirmed {
                    holder: 1,
                    revoked: false,
                    ..
                }
            )),
            "{ev:?}"
        );
    }
    assert_eq!(
        net.nodes[0].channel.as_ref().unwrap().phase(),
        Phase::Resolved
    );
    assert_eq!(
        net.nodes[1].channel.as_ref().unwrap().phase(),
        Phase::Disputed
    );
    // The sweep waits for to_self_delay; nothing is broadcast before.
    for _ in 0..(cfg.params.to_self_delay - 2) {
        net.mine();
        assert!(net.broadcasts.is_empty());
    }
    net.mine();
    assert_eq!(
        net.broadcasts.len(),
        1,
        "sweep broadcast exactly when the lock opens"
    );
    net.broadcasts.clear();
    net.mine();
    assert_eq!(
        net.nodes[1].channel.as_ref().unwrap().phase(),
        Phase::Resolved
    );
    net.take_events(0);
    net.take_events(1);
    let spk = tx::payout_script(&cfg.params.participants, 1).unwrap();
    assert!(net.chain.balance_of(&spk) > sat(4_400_000));
}

fn cheat_and_penalize(n: usize) {
    let mut net = create_network(n);
    let balances: Vec<_> = (0..n)
        .map(|i| sat(2_000_000 + 100_000 * i as u64))
        .collect();
    let cfg = net.open_channel(&balances);
    let cheater = n - 1;
    net.transfer(0, cheater, sat(300_000));
    // The cheater keeps its state at this version, then pays most of its funds away.
    let old = net.nodes[cheater].channel.as_ref().unwrap().clone();
    net.transfer(cheater, 0, sat(1_500_000));
    if n > 2 {
        net.transfer(1, 0, sat(100_000));
    }
    let latest = net.nodes[0].channel.as_ref().unwrap().ledger().balances();
    let revoked = old.signed_commitment().unwrap();
    net.chain.broadcast(revoked).unwrap();
    net.mine();
    // Every honest node saw a revoked commitment and broadcast its penalty.
    let penalties = net.broadcasts.len();
    assert!(penalties >= 1);
    net.broadcasts.clear();
    net.mine();
    for i in 0..n {
        let ev = net.take_events(i);
        if i != cheater {
            assert!(
                ev.iter()
                    .any(|e| matches!(e, Event::CommitmentConfirmed { revoked: true, .. })),
                "{ev:?}"
            );
            assert_eq!(
                net.nodes[i].channel.as_ref().unwrap().phase(),
                Phase::Penalized,
                "node {i}"
            );
        }
    }
    // No honest participant lost anything beyond on-chain fees.
    let fee_allowance = sat(5_000);
    for i in (0..n).filter(|i| *i != cheater) {
        let spk = tx::payout_script(&cfg.params.participants, i).unwrap();
        let got = net.chain.balance_of(&spk);
        assert!(
            got + fee_allowance >= latest[i],
            "participant {i}: got {got}, latest balance {}",
            latest[i]
        );
    }
    let spk = tx::payout_script(&cfg.params.participants, cheater).unwrap();
    assert_eq!(
        net.chain.balance_of(&spk),
        sat(0),
        "the cheater's delayed output went to the others"
    );
}

#[test]
fn revoked_commitment_is_penalized_two_party() {
    cheat_and_penalize(2);
}

#[test]
fn revoked_commitment_is_penalized_four_party() {
    cheat_and_penalize(4);
}

#[test]
fn messages_wait_for_persistence() {
    let mut net = create_network(2);
    net.open_channel(&[sat(6_000_000), sat(4_000_000)]);
    net.sync_persist = false;
    let ch = net.nodes[0].channel.as_mut().unwrap();
    let t = ch.make_transfer(1, sat(10_000)).unwrap();
    let actions = ch.propose(vec![t]).unwrap();
    assert!(matches!(
        actions[0],
        channel_fsm::channel::Action::Persist { .. }
    ));
    assert!(
        actions
            .iter()
            .all(|a| !matches!(a, channel_fsm::channel::Action::Send { .. })),
        "no send before persist"
    );
    net.apply(0, actions);
    assert!(net.queue.is_empty());
    // "In progress": the record becomes durable later; only then do the messages leave.
    assert!(net.complete_persist(0));
    assert_eq!(net.queue.len(), 2, "propose + sign released");
    loop {
        net.deliver_all();
        let mut progressed = false;
        for i in 0..2 {
            while net.complete_persist(i) {
                progressed = true;
            }
        }
        if !progressed && net.queue.is_empty() {
            break;
        }
    }
    for i in 0..2 {
        assert_eq!(net.nodes[i].channel.as_ref().unwrap().ledger().version, 1);
        net.take_events(i);
    }
}

#[test]
fn failed_transitions_leave_the_channel_unchanged_and_replays_are_rejected() {
    let mut net = create_network(2);
    net.open_channel(&[sat(6_000_000), sat(4_000_000)]);
    // Capture node 1's Sign for version 1.
    let ch0 = net.nodes[0].channel.as_mut().unwrap();
    let t = ch0.make_transfer(1, sat(10_000)).unwrap();
    let actions = ch0.propose(vec![t.clone()]).unwrap();
    net.apply(0, actions);
    net.deliver_at(0); // Propose to node 1 → its Sign is queued
    let (_, sign_bytes) = net
        .queue
        .iter()
        .find(|(to, b)| *to == 0 && matches!(msg::decode(b).unwrap(), Message::Sign { .. }))
        .cloned()
        .unwrap();
    net.deliver_all();
    net.take_events(0);
    net.take_events(1);
    let before = net.nodes[0].channel.as_ref().unwrap().record();
    let signer1 = net.nodes[1].signer.clone();
    let ch0 = net.nodes[0].channel.as_mut().unwrap();
    // Replay of the version-1 Sign at version 1 (already complete) is an idempotent no-op...
    let sign = msg::decode(&sign_bytes).unwrap();
    assert_eq!(ch0.handle_message(sign.clone()).unwrap(), vec![]);
    // ...and a replay into the next version is refused.
    let t2 = ch0.make_transfer(1, sat(20_000)).unwrap();
    let pending_ledger = ch0
        .ledger()
        .apply_unchecked(ch0.channel_id(), std::slice::from_ref(&t2))
        .unwrap();
    let key_bytes: Vec<[u8; 32]> = ch0
        .config()
        .params
        .participants
        .iter()
        .map(|p| p.state_key.serialize())
        .collect();
    let pending_root = ledger::StateTree::new(ch0.channel_id(), &key_bytes, &pending_ledger)
        .unwrap()
        .root();
    let actions = ch0.propose(vec![t2]).unwrap();
    let record_id = match actions[0] {
        channel_fsm::channel::Action::Persist { record_id, .. } => record_id,
        _ => panic!(),
    };
    let after_propose = ch0.record();
    let Message::Sign {
        channel_id,
        root,
        state_sig,
        commitment_sigs,
        next_point,
        from,
        ..
    } = sign.clone()
    else {
        panic!()
    };
    let replay = Message::Sign {
        channel_id,
        version: 2,
        from,
        root,
        state_sig,
        commitment_sigs: commitment_sigs.clone(),
        next_point,
    };
    assert!(matches!(
        ch0.handle_message(replay),
        Err(ChannelError::RootMismatch { .. })
    ));
    // The old state signature over the new root is refused too (it signed version 1).
    let replay = Message::Sign {
        channel_id,
        version: 2,
        from,
        root: pending_root,
        state_sig,
        commitment_sigs: commitment_sigs.clone(),
        next_point,
    };
    assert!(matches!(
        ch0.handle_message(replay),
        Err(ChannelError::BadStateSignature { .. })
    ));
    assert_eq!(
        ch0.record(),
        after_propose,
        "unchanged after a failed transition"
    );
    // A signature over the right root but for another channel is refused.
    let other_channel = [9u8; 32];
    let forged = signer1.sign_state(&state_digest(&other_channel, 2, &pending_root));
    let bad = Message::Sign {
        channel_id,
        version: 2,
        from,
        root: pending_root,
        state_sig: Sig(forged),
        commitment_sigs,
        next_point,
    };
    assert!(ch0.handle_message(bad).is_err());
    assert_eq!(ch0.record(), after_propose);
    // Wrong channel id is refused outright.
    let wrong = Message::Revoke {
        channel_id: other_channel,
        version: 0,
        from: 1,
        secret: [0; 32],
    };
    assert_eq!(ch0.handle_message(wrong), Err(ChannelError::WrongChannel));
    // Extreme versions from a peer are refused, never overflow.
    for version in [u64::MAX, u64::MAX - 1] {
        let m = Message::Revoke {
            channel_id,
            version,
            from: 1,
            secret: [7; 32],
        };
        assert!(ch0.handle_message(m).is_err());
        let m = Message::Propose {
            channel_id,
            version,
            from: 1,
            transfers: vec![],
        };
        assert!(ch0.handle_message(m).is_err());
    }
    // A bad revocation secret is refused.
    let bad_secret = Message::Revoke {
        channel_id,
        version: 0,
        from: 1,
        secret: [7; 32],
    };
    assert!(ch0.handle_message(bad_secret).is_err());
    assert_eq!(ch0.record(), after_propose);
    // Let the update finish.
    let released = ch0.persisted(record_id);
    net.apply(0, released);
    net.deliver_all();
    net.take_events(0);
    net.take_events(1);
    assert_ne!(before, net.nodes[0].channel.as_ref().unwrap().record());
}

#[test]
fn transfer_validation_errors_leave_channel_unchanged() {
    let mut net = create_network(2);
    net.open_channel(&[sat(6_000_000), sat(4_000_000)]);
    let ch1 = net.nodes[1].channel.as_ref().unwrap().clone();
    let ch0 = net.nodes[0].channel.as_mut().unwrap();
    let before = ch0.record();
    // Another participant's transfer, tampered with after signing (a proposer relaying it).
    let mut t = ch1.make_transfer(0, sat(1_000)).unwrap();
    t.outputs[0].amount = sat(2_000);
    assert!(matches!(
        ch0.propose(vec![t]),
        Err(ChannelError::Transfer(
            ledger::TransferError::BadSignature { .. }
        ))
    ));
    // Paying more than owned.
    assert!(ch0.make_transfer(1, sat(60_000_000)).is_err());
    // Dust output.
    let t = ch0.make_transfer(1, sat(100)).unwrap();
    assert!(matches!(
        ch0.propose(vec![t]),
        Err(ChannelError::Transfer(ledger::TransferError::Dust { .. }))
    ));
    assert_eq!(ch0.record(), before);
}

#[test]
fn balance_provable_against_cosigned_root() {
    let mut net = create_network(3);
    net.open_channel(&[sat(5_000_000), sat(3_000_000), sat(2_000_000)]);
    net.transfer(0, 2, sat(100_000));
    let ch = net.nodes[2].channel.as_mut().unwrap();
    let old_root = ch.state_root();
    let old_proof = ch.prove_balance(2).unwrap();
    net.transfer(1, 2, sat(50_000));
    let ch = net.nodes[2].channel.as_mut().unwrap();
    let ledger = ch.ledger().clone();
    let root = ch.state_root();
    let keys: Vec<_> = ch
        .config()
        .params
        .participants
        .iter()
        .map(|p| DefaultBackend::parse_xonly_public(&p.state_key.serialize()).unwrap())
        .collect();
    let sigs = ch.state_signatures();
    // The root is co-signed by all three for this version (and only this version).
    ledger::verify_state_signatures(ch.channel_id(), ledger.version, &root, &keys, &sigs, 0..3)
        .unwrap();
    assert_eq!(
        ledger::verify_state_signatures(
            ch.channel_id(),
            ledger.version + 1,
            &root,
            &keys,
            &sigs,
            0..3
        ),
        Err(0),
        "no replay on another version"
    );
    // Participant 2 proves its outputs with a merkle-proofs inclusion proof against that root.
    let proof = ch.prove_balance(2).unwrap();
    assert_eq!(proof.version, ledger.version);
    assert_eq!(proof.outputs.len(), ledger.outputs_of(2).count());
    merkle_proofs::verify(&merkle_proofs::Root(root), &proof.proof).unwrap();
    let key2 = ch.config().params.participants[2].state_key.serialize();
    assert_eq!(
        proof.verify(ch.channel_id(), &key2, &root).unwrap(),
        ledger.balances()[2]
    );
    assert_eq!(ledger.balances()[2], sat(2_150_000));
    // A proof of the previous version does not verify against this root, nor this one against it.
    assert!(merkle_proofs::verify(&merkle_proofs::Root(root), &old_proof.proof).is_err());
    assert!(merkle_proofs::verify(&merkle_proofs::Root(old_root), &proof.proof).is_err());
    assert!(proof.verify(ch.channel_id(), &key2, &old_root).is_err());
    // Every participant computed the same root.
    for node in &net.nodes {
        assert_eq!(node.channel.as_ref().unwrap().state_root(), root);
    }
}

#[test]
fn revoked_commitment_seen_in_mempool_is_answered_at_once() {
    use channel_fsm::channel::{Action, ChainEvent};
    let mut net = create_network(2);
    net.open_channel(&[sat(6_000_000), sat(4_000_000)]);
    let old = net.nodes[1].channel.as_ref().unwrap().clone();
    net.transfer(1, 0, sat(2_000_000));
    let revoked = old.signed_commitment().unwrap();
    let height = net.chain.height;
    let ch0 = net.nodes[0].channel.as_mut().unwrap();
    let actions = ch0
        .handle_chain(ChainEvent::Seen {
            height,
            tx: revoked.clone(),
        })
        .unwrap();
    let record_id = match actions[0] {
        Action::Persist { record_id, .. } => record_id,
        _ => panic!("persist first"),
    };
    let released = ch0.persisted(record_id);
    let penalty = released
        .iter()
        .find_map(|a| match a {
            Action::Broadcast { tx } => Some(tx.clone()),
            _ => None,
        })
        .expect("penalty");
    assert_eq!(
        penalty.input[0].previous_output.txid,
        revoked.compute_txid()
    );
    // Anti-fee-sniping: locked to the tip the channel knows, lock time enabled by the sequence.
    assert_eq!(
        penalty.lock_time,
        bitcoin::absolute::LockTime::from_height(height).unwrap()
    );
    assert_eq!(penalty.input[0].sequence, tx::PENALTY_SEQUENCE);
    assert_eq!(ch0.phase(), Phase::Disputed);
    net.take_events(0);
    // Other unconfirmed funding spends are ignored until they confirm.
    let current = net.nodes[1]
        .channel
        .as_ref()
        .unwrap()
        .signed_commitment()
        .unwrap();
    let ch1 = net.nodes[1].channel.as_mut().unwrap();
    assert_eq!(
        ch1.handle_chain(ChainEvent::Seen {
            height,
            tx: current
        })
        .unwrap(),
        vec![]
    );
    // The commitment confirms, the penalty follows in the next block.
    net.chain.broadcast(revoked).unwrap();
    net.mine();
    net.broadcasts.clear();
    net.mine();
    net.take_events(1);
    let ev = net.take_events(0);
    assert!(
        ev.iter().any(|e| matches!(e, Event::Penalized { .. })),
        "{ev:?}"
    );
}

#[test]
fn records_restore_exactly_and_corruption_is_detected() {
    use channel_fsm::channel::{Channel, RECORD_SIZE_MAX};
    let mut net = create_network(2);
    net.open_channel(&[sat(6_000_000), sat(4_000_000)]);
    net.transfer(0, 1, sat(10_000));
    let ch = net.nodes[0].channel.as_ref().unwrap();
    let record = ch.record();
    let signer = net.nodes[0].signer.clone();
    assert_eq!(
        Channel::restore(&record, signer.clone()).unwrap().record(),
        record
    );
    for i in [0, 1, record.len() / 2, record.len() - 1] {
        let mut bad = record.clone();
        bad[i] ^= 1;
        assert!(
            matches!(
                Channel::restore(&bad, signer.clone()),
                Err(ChannelError::Record { .. })
            ),
            "flip at {i}"
        );
    }
    assert!(Channel::restore(&record[..5], signer.clone()).is_err());
    assert!(Channel::restore(&vec![0u8; RECORD_SIZE_MAX + 1], signer.clone()).is_err());
    // Another participant's signer can't load it.
    assert!(Channel::restore(&record, net.nodes[1].signer.clone()).is_err());
}

#[test]
fn funding_not_confirmed_by_the_deadline_abandons_the_channel() {
    use channel_fsm::channel::{
        Action, ChainEvent, FUNDING_TIMEOUT_DEFAULT, FUNDING_TIMEOUT_MAX, MIN_DEPTH_DEFAULT,
    };
    let block = |height: u32, txs: Vec<bitcoin::Transaction>| ChainEvent::Block { height, txs };
    let timed_out = |actions: &[Action]| {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Event(Event::FundingTimedOut { deadline }) => Some(*deadline),
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    let mut net = create_network(2);
    let opened_at = net.chain.height;
    let config = net.open_unconfirmed(&[sat(6_000_000), sat(4_000_000)]);
    let deadline = opened_at + FUNDING_TIMEOUT_DEFAULT;
    let funding = config.funding_tx.clone();
    for node in 0..2 {
        net.take_events(node);
    }
    net.broadcasts.clear(); // never mined here: these channels are driven by hand below
    let mut ch0 = net.nodes[0].channel.take().unwrap();
    let mut ch1 = net.nodes[1].channel.take().unwrap();
    assert_eq!(ch0.funding_deadline(), deadline);
    assert_eq!(ch0.phase(), Phase::Opening);

    // Just below the deadline without the funding: still opening.
    assert!(timed_out(&ch0.handle_chain(block(deadline - 1, vec![])).unwrap()).is_empty());
    assert_eq!(ch0.phase(), Phase::Opening);
    let before_deadline = ch0.clone();
    // At the deadline without the funding: abandoned, with the event.
    assert_eq!(
        timed_out(&ch0.handle_chain(block(deadline, vec![])).unwrap()),
        vec![deadline]
    );
    assert_eq!(ch0.phase(), Phase::Abandoned);
    // The funding confirming afterwards does not revive it, and no update is accepted.
    ch0.handle_chain(block(deadline + 1, vec![funding.clone()]))
        .unwrap();
    assert_eq!(ch0.phase(), Phase::Abandoned);
    assert!(matches!(
        ch0.close(),
        Err(ChannelError::WrongPhase {
            phase: Phase::Abandoned,
            ..
        })
    ));
    // Above the deadline (blocks skipped): abandoned too.
    let mut late = before_deadline;
    assert_eq!(
        timed_out(&late.handle_chain(block(deadline + 1, vec![])).unwrap()),
        vec![deadline]
    );
    assert_eq!(late.phase(), Phase::Abandoned);

    // The funding confirming in the block at the deadline is in time: active after min depth.
    assert!(timed_out(&ch1.handle_chain(block(deadline, vec![funding])).unwrap()).is_empty());
    assert_eq!(ch1.phase(), Phase::Opening);
    ch1.handle_chain(block(deadline + MIN_DEPTH_DEFAULT - 1, vec![]))
        .unwrap();
    assert_eq!(ch1.phase(), Phase::Active);

    // The deadline itself is bounded: FUNDING_TIMEOUT_MAX blocks after opening, not one more.
    let signer = net.nodes[0].signer.clone();
    let h = 500;
    assert!(
        Channel::open_with_deadline(
            config.clone(),
            0,
            signer.clone(),
            h,
            h + FUNDING_TIMEOUT_MAX
        )
        .is_ok()
    );
    for bad in [h + FUNDING_TIMEOUT_MAX + 1, h] {
        assert!(matches!(
            Channel::open_with_deadline(config.clone(), 0, signer.clone(), h, bad),
            Err(ChannelError::Config { .. })
        ));
    }
}
