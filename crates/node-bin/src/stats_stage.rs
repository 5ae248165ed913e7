//! MuHash off the applying thread: a pipeline stage that keeps the UTXO statistics from each
//! block's [`ChangeSet`] on a thread of its own.
//!
//! A MuHash3072 update costs a 3072-bit modular multiplication per coin, several times what the
//! set spends applying that coin. Kept inside the set (`SetOptions::track_muhash`) it runs on the
//! applying thread; here the set runs with `track_muhash: false` and hands each block's changes to
//! this stage, so the two overlap on two cores. Whoever reads the statistics calls
//! [`StatsStage::stats`], which waits until every change sent before has been applied, or queues
//! work behind those changes with [`StatsStage::then`], which does not wait.
//!
//! `L2BTC_PIPELINE=off` keeps everything on one thread (the reader thread of
//! [`crate::ingest`] too), for measuring what the pipeline gains.

use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use anyhow::{Context, anyhow, bail};
use bitcoin::OutPoint;
use utxo_core::muhash::MuHash3072;
use utxo_core::{ChangeSet, Coin, UtxoStats, txout_ser};

/// The environment variable that turns the ingest pipeline off (`off`) or on (`on`, the default).
pub const PIPELINE_ENV: &str = "L2BTC_PIPELINE";

/// Blocks' change sets queued ahead of the stage before the applying thread waits.
pub const QUEUED_BLOCKS_MAX: usize = 8;

/// Coin changes from which one block's MuHash is split over two threads (the stage and a scoped
/// helper): below it, a thread's start costs more than the half it would take.
pub const PARALLEL_COINS_MIN: usize = 512;

/// Whether ingest runs as a pipeline (reader thread, applying thread, MuHash stage), from
/// [`PIPELINE_ENV`].
///
/// # Errors
/// A value other than `on` or `off`.
pub fn pipeline_enabled() -> anyhow::Result<bool> {
    parse_pipeline(std::env::var_os(PIPELINE_ENV).as_deref())
}

fn parse_pipeline(value: Option<&std::ffi::OsStr>) -> anyhow::Result<bool> {
    match value.map(|v| v.to_str()) {
        None => Ok(true),
        Some(Some("on")) => Ok(true),
        Some(Some("off")) => Ok(false),
        Some(v) => bail!("{PIPELINE_ENV}={v:?}: expected \"on\" or \"off\""),
    }
}

/// Work run on the stage with the statistics as they stand at that point of the queue.
type Then = Box<dyn FnOnce(&UtxoStats) + Send>;

enum Message {
    Changed(ChangeSet),
    Then(Then),
}

/// The statistics stage: a thread applying change sets to a [`UtxoStats`] in the order sent.
pub struct StatsStage {
    send: Option<SyncSender<Message>>,
    thread: Option<JoinHandle<()>>,
}

impl StatsStage {
    /// Starts the stage from `base` (the statistics of the set as it stands now).
    ///
    /// # Errors
    /// The thread could not be spawned.
    pub fn start(base: UtxoStats) -> anyhow::Result<StatsStage> {
        let (send, receive) = sync_channel(QUEUED_BLOCKS_MAX);
        let thread = std::thread::Builder::new()
            .name("utxo-stats".into())
            .spawn(move || run(base, &receive))
            .context("starting the statistics thread")?;
        Ok(StatsStage {
            send: Some(send),
            thread: Some(thread),
        })
    }

    /// Queues the changes the set just made, as `connect_*` or `disconnect_block` returned them
    /// (waits while [`QUEUED_BLOCKS_MAX`] are queued).
    ///
    /// # Errors
    /// The stage has stopped (it panicked).
    pub fn changed(&self, changes: ChangeSet) -> anyhow::Result<()> {
        self.send(Message::Changed(changes))
    }

    /// The statistics after every change queued so far.
    ///
    /// # Errors
    /// The stage has stopped (it panicked).
    pub fn stats(&self) -> anyhow::Result<UtxoStats> {
        let (reply, answer) = sync_channel(1);
        self.then(move |stats| {
            let _ = reply.send(stats.clone());
        })?;
        answer.recv().map_err(|_| stopped())
    }

    /// Runs `work` on the stage once every change queued before it is applied, without waiting
    /// for it (e.g. writing a statistics cache for the tip as of now).
    ///
    /// # Errors
    /// The stage has stopped (it panicked).
    pub fn then(&self, work: impl FnOnce(&UtxoStats) + Send + 'static) -> anyhow::Result<()> {
        self.send(Message::Then(Box::new(work)))
    }

    fn send(&self, message: Message) -> anyhow::Result<()> {
        let send = self.send.as_ref().ok_or_else(stopped)?;
        send.send(message).map_err(|_| stopped())
    }
}

impl Drop for StatsStage {
    fn drop(&mut self) {
        // Closing the channel ends the thread's loop.
        self.send = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn stopped() -> anyhow::Error {
    anyhow!("the UTXO statistics thread stopped")
}

fn run(mut stats: UtxoStats, receive: &Receiver<Message>) {
    for message in receive {
        match message {
            Message::Changed(changes) => apply(&mut stats, &changes),
            Message::Then(work) => work(&stats),
        }
    }
}

/// `stats.apply(changes)`, with MuHash (one 3072-bit multiplication per coin) split over two
/// threads for a large block: each half goes into an accumulator of its own, then both are
/// combined into `stats` (the product does not depend on order or grouping). The pipeline then
/// uses the core the applying thread leaves idle while it waits for this stage.
fn apply(stats: &mut UtxoStats, changes: &ChangeSet) {
    let coins = changes.created.len() + changes.spent.len();
    if stats.muhash.is_none() || coins < PARALLEL_COINS_MIN {
        stats.apply(changes);
        return;
    }
    let (created_a, created_b) = changes.created.split_at(changes.created.len() / 2);
    let (spent_a, spent_b) = changes.spent.split_at(changes.spent.len() / 2);
    let (a, b) = std::thread::scope(|scope| {
        let helper = scope.spawn(|| muhash_of(created_b, spent_b));
        let a = muhash_of(created_a, spent_a);
        // A panic on the helper is a bug; carry it to the stage like one of its own.
        let b = helper
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p));
        (a, b)
    });
    // The counters as `UtxoStats::apply` keeps them, without a second MuHash.
    let mut mu = stats.muhash.take();
    stats.apply(changes);
    if let Some(mu) = mu.as_mut() {
        mu.combine(&a);
        mu.combine(&b);
    }
    stats.muhash = mu;
}

/// The accumulator of `created` inserted and `spent` removed.
fn muhash_of(created: &[(OutPoint, Coin)], spent: &[(OutPoint, Coin)]) -> MuHash3072 {
    let mut mu = MuHash3072::new();
    let mut buf = Vec::with_capacity(128);
    for (outpoint, coin) in created {
        buf.clear();
        txout_ser(outpoint, coin, &mut buf);
        mu.insert(&buf);
    }
    for (outpoint, coin) in spent {
        buf.clear();
        txout_ser(outpoint, coin, &mut buf);
        mu.remove(&buf);
    }
    mu
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{coinbase, mine_block};
    use utxo_core::{SetOptions, UtxoSet};

    fn untracked_set() -> UtxoSet {
        UtxoSet::with_options(SetOptions {
            track_muhash: false,
            ..SetOptions::default()
        })
    }

    #[test]
    fn the_stage_agrees_with_the_set_keeping_its_own_statistics() {
        let genesis = bitcoin::constants::genesis_block(bitcoin::Network::Regtest);
        let tracked = UtxoSet::new();
        let untracked = untracked_set();
        let stage = StatsStage::start(UtxoStats::new(true)).unwrap();
        let mut blocks = vec![genesis];
        for h in 1..=5u32 {
            let b = mine_block(&blocks[blocks.len() - 1], h, 7, vec![]);
            blocks.push(b);
        }
        let mut undos = Vec::new();
        for (h, b) in blocks.iter().enumerate() {
            let h = u32::try_from(h).unwrap();
            tracked.apply_block(b, h).unwrap();
            let connected = untracked.connect_block(b, h).unwrap();
            stage.changed(connected.changes).unwrap();
            undos.push(connected.undo);
        }
        assert_eq!(stage.stats().unwrap(), tracked.stats());
        assert!(stage.stats().unwrap().muhash.is_some());

        // Disconnect the tip from both: the stage reverts to the same figures.
        let (h, tip) = (5u32, &blocks[5]);
        tracked.disconnect_block(tip, h, &undos[5]).unwrap();
        let changes = untracked.disconnect_block(tip, h, &undos[5]).unwrap();
        stage.changed(changes).unwrap();
        assert_eq!(stage.stats().unwrap(), tracked.stats());
        assert_ne!(tracked.stats(), UtxoStats::new(true));
    }

    #[test]
    fn changes_apply_in_the_order_sent() {
        let stage = StatsStage::start(UtxoStats::new(true)).unwrap();
        let tx = coinbase(1, 1, 5_000);
        let outpoint = bitcoin::OutPoint::new(tx.compute_txid(), 0);
        let coin = utxo_core::Coin::from_txout(&tx.output[0], 1, true);
        let created = ChangeSet {
            created: vec![(outpoint, coin.clone())],
            spent: vec![],
        };
        let spent = ChangeSet {
            created: vec![],
            spent: vec![(outpoint, coin)],
        };
        stage.changed(created.clone()).unwrap();
        let one = stage.stats().unwrap();
        assert_eq!(one.txouts, 1);
        stage.changed(spent).unwrap();
        let (seen, saw) = sync_channel(1);
        stage.then(move |s| seen.send(s.txouts).unwrap()).unwrap();
        stage.changed(created).unwrap();
        assert_eq!(stage.stats().unwrap(), one);
        // The work ran between the two changes queued around it.
        assert_eq!(saw.recv().unwrap(), 0);
    }

    fn coins(n: u32, tag: u8) -> Vec<(bitcoin::OutPoint, utxo_core::Coin)> {
        (0..n)
            .map(|i| {
                let tx = coinbase(i, u32::from(tag), 1_000 + u64::from(i));
                let op = bitcoin::OutPoint::new(tx.compute_txid(), i % 3);
                (
                    op,
                    utxo_core::Coin::from_txout(&tx.output[0], i, i % 2 == 0),
                )
            })
            .collect()
    }

    #[test]
    fn a_large_block_split_over_two_threads_equals_one_thread() {
        let mut before = UtxoStats::new(true);
        before.apply(&ChangeSet {
            created: coins(700, 1),
            spent: vec![],
        });
        // 1,000 created and 700 spent: above PARALLEL_COINS_MIN, odd halves.
        let block = ChangeSet {
            created: coins(1_001, 2),
            spent: coins(700, 1),
        };
        assert!(block.created.len() + block.spent.len() >= PARALLEL_COINS_MIN);
        let mut sequential = before.clone();
        sequential.apply(&block);
        let mut split = before;
        apply(&mut split, &block);
        assert_eq!(split, sequential);
        assert_eq!(split.muhash_hex(), sequential.muhash_hex());
        assert_eq!(split.txouts, 1_001);
        // And back: the block's inverse (a disconnect) returns to the starting figures.
        apply(&mut split, &block.inverse());
        sequential.apply(&block.inverse());
        assert_eq!(split, sequential);
    }

    #[test]
    fn the_environment_switch_accepts_on_and_off_only() {
        use std::ffi::OsStr;
        assert!(parse_pipeline(None).unwrap());
        assert!(parse_pipeline(Some(OsStr::new("on"))).unwrap());
        assert!(!parse_pipeline(Some(OsStr::new("off"))).unwrap());
        for bad in ["", "0", "OFF", "no"] {
            assert!(parse_pipeline(Some(OsStr::new(bad))).is_err(), "{bad:?}");
        }
    }
}
