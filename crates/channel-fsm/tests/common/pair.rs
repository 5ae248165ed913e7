//! Builds many active channels between participants without the chain simulator: each channel gets
//! its own funding transaction (spending a made-up coin), version 0 is signed by all, and a block
//! at min depth activates it.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use bitcoin::hashes::Hash;
use bitcoin::secp256k1::{PublicKey, SecretKey};
use bitcoin::{Amount, OutPoint, ScriptBuf, TxOut, Txid};
use channel_fsm::channel::{Action, ChainEvent, Channel, ChannelConfig};
use channel_fsm::msg::Message;
use channel_fsm::sig::secp;
use channel_fsm::signer::{InMemorySigner, Signer};
use channel_fsm::tx::{self, ChannelParams, FundingInput};

/// Applies actions synchronously: persists at once, returns the messages released.
pub fn run_sync(ch: &mut Channel<InMemorySigner>, actions: Vec<Action>) -> Vec<(u16, Message)> {
    let mut out = Vec::new();
    let mut work: std::collections::VecDeque<Action> = actions.into();
    while let Some(a) = work.pop_front() {
        match a {
            Action::Persist { record_id, .. } => work.extend(ch.persisted(record_id)),
            Action::Send { to, msg } => out.push((to, msg)),
            Action::Broadcast { .. } | Action::Event(_) => {}
        }
    }
    out
}

/// Delivers messages among `chans` (index = participant) until quiet.
pub fn pump(chans: &mut [Channel<InMemorySigner>], msgs: Vec<(u16, Message)>) {
    let mut msgs: std::collections::VecDeque<(u16, Message)> = msgs.into();
    while let Some((to, m)) = msgs.pop_front() {
        let ch = &mut chans[usize::from(to)];
        let actions = ch.handle_message(m).unwrap();
        msgs.extend(run_sync(ch, actions));
    }
}

/// One active channel among `signers`; `tag` makes its funding outpoint unique.
pub fn active_channel(
    signers: &[InMemorySigner],
    tag: u32,
    balance_each: u64,
) -> Vec<Channel<InMemorySigner>> {
    let participants: Vec<_> = signers.iter().map(Signer::keys).collect();
    let n = signers.len();
    let key = SecretKey::from_slice(&[0x42; 32]).unwrap();
    let pk = bitcoin::CompressedPublicKey(PublicKey::from_secret_key(secp(), &key));
    let funding_amount = Amount::from_sat(balance_each * n as u64);
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
        initial_balances: vec![Amount::from_sat(balance_each); n],
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
        assert_eq!(ch.phase(), channel_fsm::channel::Phase::Active);
    }
    chans
}

pub fn signers(n: usize) -> Vec<InMemorySigner> {
    (0..n)
        .map(|i| InMemorySigner::from_seed([u8::try_from(i).unwrap() + 100; 32]))
        .collect()
}
