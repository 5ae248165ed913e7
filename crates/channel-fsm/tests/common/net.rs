//! An LDK-style functional test harness: `create_network(n)`, `open_channel`, `transfer`, `close`,
//! over a simulated chain that checks every broadcast transaction with Bitcoin Core's interpreter and
//! BIP68 relative locks. Dropping a [`Network`] with undelivered messages, unpersisted records,
//! unconfirmed broadcasts or unread events fails the test.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::{HashMap, VecDeque};

use bitcoin::hashes::Hash;
use bitcoin::secp256k1::{PublicKey, SecretKey};
use bitcoin::{Amount, OutPoint, ScriptBuf, Sequence, Transaction, TxOut, Txid};
use channel_fsm::channel::{Action, ChainEvent, Channel, ChannelConfig, Event, MIN_DEPTH_DEFAULT};
use channel_fsm::msg::{self, Message};
use channel_fsm::sig::secp;
use channel_fsm::signer::{InMemorySigner, Signer};
use channel_fsm::tx::{self, ChannelParams, FundingInput};

/// A simulated chain: UTXO set with confirmation heights, a mempool, script checks by Core.
#[derive(Default, Clone)]
pub struct Chain {
    pub height: u32,
    pub utxos: HashMap<OutPoint, (TxOut, u32)>,
    pub mempool: Vec<Transaction>,
    pub confirmed: Vec<(u32, Transaction)>,
}

impl Chain {
    /// Checks a transaction against the UTXO set at the next block's height.
    pub fn check(&self, tx: &Transaction) -> Result<(), String> {
        let next = self.height + 1;
        let mut prevouts = Vec::new();
        for input in &tx.input {
            let (out, conf) = self
                .utxos
                .get(&input.previous_output)
                .ok_or("missing or spent input")?;
            // BIP68 height locks.
            let seq = input.sequence;
            if tx.version.0 >= 2 && !seq.is_relative_lock_time() {
                // disabled
            } else if tx.version.0 >= 2 && seq.is_height_locked() {
                let blocks = seq.0 & 0xffff;
                if next < conf + blocks {
                    return Err(format!("relative lock: {next} < {conf} + {blocks}"));
                }
            }
            prevouts.push(out.clone());
        }
        if !tx::absolute_timelock_met(tx, next) {
            return Err("absolute lock".into());
        }
        super::core_verify(tx, &prevouts)?;
        channel_fsm::standard::check_standard(tx, &prevouts).map_err(|e| e.to_string())
    }

    /// Accepts into the mempool unless invalid or conflicting with a mempool tx.
    pub fn broadcast(&mut self, tx: Transaction) -> Result<(), String> {
        let txid = tx.compute_txid();
        if self.mempool.iter().any(|t| t.compute_txid() == txid)
            || self.confirmed.iter().any(|(_, t)| t.compute_txid() == txid)
        {
            return Ok(());
        }
        self.check(&tx)?;
        let conflicts = self.mempool.iter().any(|m| {
            m.input.iter().any(|i| {
                tx.input
                    .iter()
                    .any(|j| j.previous_output == i.previous_output)
            })
        });
        if conflicts {
            return Err("conflicts with mempool".into());
        }
        self.mempool.push(tx);
        Ok(())
    }

    /// Mines a block with every mempool tx still valid; returns it.
    pub fn mine(&mut self) -> (u32, Vec<Transaction>) {
        let pool = std::mem::take(&mut self.mempool);
        let mut block = Vec::new();
        self.height += 1;
        let h = self.height;
        for tx in pool {
            // Re-check at this height (height − 1 is "current" for check()).
            self.height = h - 1;
            let ok = self.check(&tx).is_ok();
            self.height = h;
            if !ok {
                continue;
            }
            for i in &tx.input {
                self.utxos.remove(&i.previous_output);
            }
            let txid = tx.compute_txid();
            for (v, o) in tx.output.iter().enumerate() {
                self.utxos.insert(
                    OutPoint {
                        txid,
                        vout: u32::try_from(v).unwrap(),
                    },
                    (o.clone(), h),
                );
            }
            self.confirmed.push((h, tx.clone()));
            block.push(tx);
        }
        (h, block)
    }

    /// Total value paying `script` in confirmed, unspent outputs.
    pub fn balance_of(&self, script: &ScriptBuf) -> Amount {
        self.utxos
            .values()
            .filter(|(o, _)| &o.script_pubkey == script)
            .map(|(o, _)| o.value)
            .sum()
    }
}

/// One node: a signer and its channel, with its last persisted record.
pub struct Node {
    pub signer: InMemorySigner,
    pub channel: Option<Channel<InMemorySigner>>,
    pub record: Option<Vec<u8>>,
    /// Records emitted and not yet persisted (async persistence), oldest first.
    pub unpersisted: VecDeque<(u64, Vec<u8>)>,
    pub events: Vec<Event>,
}

/// The network: nodes, in-flight messages, the chain.
pub struct Network {
    pub nodes: Vec<Node>,
    pub queue: VecDeque<(u16, Vec<u8>)>,
    pub chain: Chain,
    pub broadcasts: Vec<Transaction>,
    pub errors: usize,
    pub error_log: Vec<String>,
    /// When true, `Persist` completes at once; otherwise the test completes it (async).
    pub sync_persist: bool,
    pub funder_coin_key: SecretKey,
}

pub fn create_network(n: usize) -> Network {
    let nodes = (0..n)
        .map(|i| Node {
            signer: InMemorySigner::from_seed([u8::try_from(i).unwrap() + 11; 32]),
            channel: None,
            record: None,
            unpersisted: VecDeque::new(),
            events: Vec::new(),
        })
        .collect();
    let key = SecretKey::from_slice(&[0x42; 32]).unwrap();
    let mut chain = Chain::default();
    let pk = bitcoin::CompressedPublicKey(PublicKey::from_secret_key(secp(), &key));
    let coin = TxOut {
        value: Amount::from_sat(50_000_000),
        script_pubkey: ScriptBuf::new_p2wpkh(&pk.wpubkey_hash()),
    };
    chain.utxos.insert(
        OutPoint {
            txid: Txid::from_byte_array([1; 32]),
            vout: 0,
        },
        (coin, 0),
    );
    chain.height = 100;
    Network {
        nodes,
        queue: VecDeque::new(),
        chain,
        broadcasts: Vec::new(),
        errors: 0,
        error_log: Vec::new(),
        sync_persist: true,
        funder_coin_key: key,
    }
}

impl Network {
    pub fn n(&self) -> usize {
        self.nodes.len()
    }

    /// Applies one node's actions: persist (sync or queued), sends (encoded on the wire), broadcasts.
    pub fn apply(&mut self, node: usize, actions: Vec<Action>) {
        let mut work: VecDeque<Action> = actions.into();
        while let Some(a) = work.pop_front() {
            match a {
                Action::Persist { record_id, record } => {
                    if self.sync_persist {
                        self.nodes[node].record = Some(record);
                        let released = self.nodes[node]
                            .channel
                            .as_mut()
                            .unwrap()
                            .persisted(record_id);
                        work.extend(released);
                    } else {
                        self.nodes[node].unpersisted.push_back((record_id, record));
                    }
                }
                Action::Send { to, msg } => {
                    let bytes = msg::encode(&msg).unwrap();
                    self.queue.push_back((to, bytes));
                }
                Action::Broadcast { tx } => {
                    if self.chain.broadcast(tx.clone()).is_ok() {
                        self.broadcasts.push(tx);
                    }
                }
                Action::Event(e) => self.nodes[node].events.push(e),
            }
        }
    }

    /// Completes the oldest pending persistence of `node` (async mode).
    pub fn complete_persist(&mut self, node: usize) -> bool {
        let Some((id, record)) = self.nodes[node].unpersisted.pop_front() else {
            return false;
        };
        self.nodes[node].record = Some(record);
        let released = match self.nodes[node].channel.as_mut() {
            Some(c) => c.persisted(id),
            None => Vec::new(),
        };
        self.apply(node, released);
        true
    }

    /// Delivers message `i` of the queue.
    pub fn deliver_at(&mut self, i: usize) {
        let Some((to, bytes)) = self.queue.remove(i) else {
            return;
        };
        let to = usize::from(to);
        let msg: Message = msg::decode(&bytes).unwrap();
        let Some(ch) = self.nodes[to].channel.as_mut() else {
            return;
        };
        match ch.handle_message(msg) {
            Ok(actions) => self.apply(to, actions),
            Err(e) => {
                self.errors += 1;
                let s = e.to_string();
                self.error_log.push(
                    s.split(':')
                        .next()
                        .unwrap_or_default()
                        .chars()
                        .take(40)
                        .collect(),
                );
            }
        }
    }

    /// Delivers every message until the network is quiet.
    pub fn deliver_all(&mut self) {
        let mut guard = 0;
        while !self.queue.is_empty() {
            self.deliver_at(0);
            guard += 1;
            assert!(guard < 100_000, "message storm");
        }
    }

    /// Mines a block and tells every node.
    pub fn mine(&mut self) {
        let (height, txs) = self.chain.mine();
        for node in 0..self.n() {
            let Some(ch) = self.nodes[node].channel.as_mut() else {
                continue;
            };
            let actions = ch
                .handle_chain(ChainEvent::Block {
                    height,
                    txs: txs.clone(),
                })
                .unwrap();
            self.apply(node, actions);
        }
    }

    pub fn take_events(&mut self, node: usize) -> Vec<Event> {
        std::mem::take(&mut self.nodes[node].events)
    }

    /// Every node's events so far, drained, checking each contains `want`.
    pub fn expect_event_everywhere(&mut self, want: impl Fn(&Event) -> bool) {
        for i in 0..self.n() {
            let ev = self.take_events(i);
            assert!(ev.iter().any(&want), "node {i} lacks the event, has {ev:?}");
        }
    }

    /// Opens one channel among all nodes, funded by node 0, with `balances` (participant order,
    /// summing to the funding amount), and mines until it is active.
    pub fn open_channel(&mut self, balances: &[Amount]) -> ChannelConfig {
        let config = self.open_unconfirmed(balances);
        for _ in 0..MIN_DEPTH_DEFAULT {
            self.mine();
        }
        self.expect_event_everywhere(|e| matches!(e, Event::ChannelActive));
        self.broadcasts.clear();
        config
    }

    /// As [`Network::open_channel`] up to the funder's broadcast of the funding (nothing mined).
    pub fn open_unconfirmed(&mut self, balances: &[Amount]) -> ChannelConfig {
        let n = self.n();
        let participants: Vec<_> = self.nodes.iter().map(|x| x.signer.keys()).collect();
        let funding_amount: Amount = balances.iter().copied().sum();
        let (coin_outpoint, (coin, _)) = self
            .chain
            .utxos
            .iter()
            .find(|(_, (o, _))| o.value == Amount::from_sat(50_000_000))
            .map(|(k, v)| (*k, v.clone()))
            .unwrap();
        let input = FundingInput {
            outpoint: coin_outpoint,
            txout: coin.clone(),
            secret: self.funder_coin_key,
        };
        let funding_tx = tx::build_funding(
            &participants,
            &[input],
            funding_amount,
            coin.script_pubkey.clone(),
            Amount::from_sat(5_000),
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
            feerate_per_kw: 1_000,
        };
        let config = ChannelConfig {
            params,
            initial_balances: balances.to_vec(),
            initial_points: self
                .nodes
                .iter()
                .map(|x| x.signer.per_commitment_point(0).unwrap())
                .collect(),
            min_depth: MIN_DEPTH_DEFAULT,
            funding_tx,
        };
        for i in 0..n {
            let (ch, actions) = Channel::open(
                config.clone(),
                u16::try_from(i).unwrap(),
                self.nodes[i].signer.clone(),
                self.chain.height,
            )
            .unwrap();
            self.nodes[i].channel = Some(ch);
            self.apply(i, actions);
        }
        self.deliver_all();
        assert_eq!(self.broadcasts.len(), 1, "funder broadcast the funding tx");
        config
    }

    /// `from` pays `amount` to `to` and the update is committed everywhere.
    pub fn transfer(&mut self, from: usize, to: usize, amount: Amount) {
        let ch = self.nodes[from].channel.as_mut().unwrap();
        let version = ch.ledger().version + 1;
        let t = ch
            .make_transfer(u16::try_from(to).unwrap(), amount)
            .unwrap();
        let actions = ch.propose(vec![t]).unwrap();
        self.apply(from, actions);
        self.deliver_all();
        self.expect_event_everywhere(
            |e| matches!(e, Event::VersionCommitted { version: v } if *v == version),
        );
        for node in &self.nodes {
            let c = node.channel.as_ref().unwrap();
            assert_eq!(c.ledger().version, version);
            assert!(c.revocations_complete());
        }
    }

    /// Cooperative close started by `initiator`; mines it and checks every node settled.
    pub fn close(&mut self, initiator: usize) -> Transaction {
        let actions = self.nodes[initiator]
            .channel
            .as_mut()
            .unwrap()
            .close()
            .unwrap();
        self.apply(initiator, actions);
        self.deliver_all();
        assert!(!self.broadcasts.is_empty(), "close broadcast");
        let close = self.broadcasts.last().unwrap().clone();
        self.mine();
        self.expect_event_everywhere(|e| matches!(e, Event::Settled { .. }));
        self.broadcasts.clear();
        close
    }

    /// Crash and restart a node from its last persisted record (unpersisted records are lost).
    pub fn restart(&mut self, node: usize) {
        let signer = self.nodes[node].signer.clone();
        self.nodes[node].unpersisted.clear();
        self.nodes[node].channel = self.nodes[node]
            .record
            .as_ref()
            .map(|r| Channel::restore(r, signer).unwrap());
        let resend = self.nodes[node]
            .channel
            .as_ref()
            .map(Channel::resend)
            .unwrap_or_default();
        self.apply(node, resend);
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        assert!(
            self.queue.is_empty(),
            "{} undelivered messages",
            self.queue.len()
        );
        for (i, n) in self.nodes.iter().enumerate() {
            assert!(n.unpersisted.is_empty(), "node {i}: unpersisted records");
            assert!(
                n.events.is_empty(),
                "node {i}: unhandled events {:?}",
                n.events
            );
            if let Some(c) = &n.channel {
                assert!(!c.has_held(), "node {i}: messages held for persistence");
            }
        }
        assert!(
            self.broadcasts.is_empty(),
            "unchecked broadcasts {:?}",
            self.broadcasts
                .iter()
                .map(Transaction::compute_txid)
                .collect::<Vec<_>>()
        );
    }
}

pub fn sat(v: u64) -> Amount {
    Amount::from_sat(v)
}

pub fn seq_max() -> Sequence {
    Sequence::MAX
}
