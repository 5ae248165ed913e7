//! ChannelManager: updates from two threads on distinct channels, atomic batches across channels
//! (all or none, one record, messages only after it is persisted), restart from a batch record.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use bitcoin::Amount;
use channel_fsm::channel::{Action, Channel};
use channel_fsm::ledger::ChannelId;
use channel_fsm::manager::{self, BATCH_CHANNELS_MAX, ChannelManager, ManagerError};
use channel_fsm::msg::Message;
use channel_fsm::signer::InMemorySigner;
use common::pair::{active_channel, signers};

/// Two managers (node 0 and node 1) sharing `k` channels.
fn managers(
    k: usize,
) -> (
    ChannelManager<InMemorySigner>,
    ChannelManager<InMemorySigner>,
    Vec<ChannelId>,
) {
    let s = signers(2);
    let (a, b) = (ChannelManager::new(), ChannelManager::new());
    let mut ids = Vec::new();
    for tag in 0..k {
        let mut pair = active_channel(&s, u32::try_from(tag).unwrap(), 1_000_000);
        ids.push(*pair[0].channel_id());
        let second = pair.pop().unwrap();
        a.insert(pair.pop().unwrap()).unwrap();
        b.insert(second).unwrap();
    }
    (a, b, ids)
}

/// Delivers sends between the two managers (sync persistence) until quiet.
fn pump(
    a: &ChannelManager<InMemorySigner>,
    b: &ChannelManager<InMemorySigner>,
    initial: Vec<(u16, Message)>,
) {
    let mut msgs: std::collections::VecDeque<(u16, Message)> = initial.into();
    while let Some((to, m)) = msgs.pop_front() {
        let mgr = if to == 0 { a } else { b };
        let actions = mgr.handle_message(m).unwrap();
        msgs.extend(settle(mgr, actions));
    }
}

fn settle(
    mgr: &ChannelManager<InMemorySigner>,
    actions: Vec<(ChannelId, Action)>,
) -> Vec<(u16, Message)> {
    let mut out = Vec::new();
    let mut work: std::collections::VecDeque<(ChannelId, Action)> = actions.into();
    while let Some((id, a)) = work.pop_front() {
        match a {
            Action::Persist { record_id, .. } => {
                work.extend(mgr.persisted(&id, record_id).unwrap())
            }
            Action::Send { to, msg } => out.push((to, msg)),
            _ => {}
        }
    }
    out
}

fn pay(
    mgr: &ChannelManager<InMemorySigner>,
    id: &ChannelId,
    amount: u64,
) -> Vec<channel_fsm::ledger::Transfer> {
    vec![
        mgr.with_channel(id, |c| c.make_transfer(1, Amount::from_sat(amount)))
            .unwrap(),
    ]
}

#[test]
fn two_threads_update_distinct_channels() {
    let (a, b, ids) = managers(8);
    let a = Arc::new(a);
    let handles: Vec<_> = ids
        .chunks(4)
        .map(|chunk| {
            let a = Arc::clone(&a);
            let chunk = chunk.to_vec();
            std::thread::spawn(move || {
                let mut msgs = Vec::new();
                for id in &chunk {
                    let t = pay(&a, id, 10_000);
                    let actions = a.propose(id, t).unwrap();
                    msgs.extend(settle(&a, actions));
                }
                msgs
            })
        })
        .collect();
    let msgs: Vec<(u16, Message)> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    pump(&a, &b, msgs);
    for id in &ids {
        let v = a.with_channel(id, |c| Ok(c.ledger().version)).unwrap();
        let w = b.with_channel(id, |c| Ok(c.ledger().version)).unwrap();
        assert_eq!((v, w), (1, 1));
    }
}

#[test]
fn batch_is_all_or_nothing_and_persisted_before_messages() {
    let (a, b, ids) = managers(3);
    let before: Vec<Vec<u8>> = ids
        .iter()
        .map(|id| a.with_channel(id, |c| Ok(c.record())).unwrap())
        .collect();
    // One channel's transfer is unaffordable: nothing applies. It is the last in lock (id) order,
    // so the channels before it have proposed and must be rolled back.
    let mut updates: Vec<(ChannelId, Vec<_>)> =
        ids.iter().map(|id| (*id, pay(&a, id, 10_000))).collect();
    let last = (0..ids.len()).max_by_key(|i| ids[*i]).unwrap();
    let mut bad = pay(&a, &ids[last], 10_000);
    bad[0].outputs[0].amount = Amount::from_sat(5_000_000);
    updates[last].1 = bad;
    assert!(matches!(
        a.apply_batch(updates),
        Err(ManagerError::Channel { .. })
    ));
    let after: Vec<Vec<u8>> = ids
        .iter()
        .map(|id| a.with_channel(id, |c| Ok(c.record())).unwrap())
        .collect();
    assert_eq!(before, after, "a refused batch changes no channel");
    // Duplicates and size limits.
    let dup = vec![
        (ids[0], pay(&a, &ids[0], 1_000)),
        (ids[0], pay(&a, &ids[0], 1_000)),
    ];
    assert!(matches!(
        a.apply_batch(dup),
        Err(ManagerError::DuplicateInBatch(_))
    ));
    let too_many: Vec<(ChannelId, Vec<_>)> = (0..=BATCH_CHANNELS_MAX)
        .map(|i| ([u8::try_from(i % 256).unwrap(); 32], vec![]))
        .collect();
    assert!(matches!(
        a.apply_batch(too_many),
        Err(ManagerError::BatchTooLarge { .. })
    ));

    // A valid batch: one record, no message before it is persisted.
    let updates: Vec<(ChannelId, Vec<_>)> =
        ids.iter().map(|id| (*id, pay(&a, id, 10_000))).collect();
    let outcome = a.apply_batch(updates).unwrap();
    assert!(
        outcome
            .events
            .iter()
            .all(|(_, e)| !matches!(e, Action::Send { .. }))
    );
    let records = manager::decode_batch_record(&outcome.record).unwrap();
    assert_eq!(records.len(), 3);
    // Restarting every channel from the batch record gives exactly the in-memory state.
    for (id, record) in &records {
        let restored = Channel::restore(record, common::pair::signers(2)[0].clone()).unwrap();
        assert_eq!(
            restored.record(),
            a.with_channel(id, |c| Ok(c.record())).unwrap()[..].to_vec()
        );
    }
    let msgs: Vec<(u16, Message)> = a
        .batch_persisted(&outcome.token)
        .unwrap()
        .into_iter()
        .filter_map(|(_, a)| match a {
            Action::Send { to, msg } => Some((to, msg)),
            _ => None,
        })
        .collect();
    assert_eq!(
        msgs.len(),
        6,
        "propose + sign per channel, released together"
    );
    pump(&a, &b, msgs);
    for id in &ids {
        assert_eq!(b.with_channel(id, |c| Ok(c.ledger().version)).unwrap(), 1);
    }
}
