//! `verify-chain`: replay blocks in memory with `utxo_core::UtxoSet` and report the statistics.

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::{Context, anyhow};
use bitcoin::{BlockHash, Network};
use utxo_core::{BlockUndo, ChainParams, PreparedBlock, SetOptions, UtxoSet, UtxoStats};

use crate::chain::{Backend, Chain, REORG_DEPTH_MAX};
use crate::ingest::{self, Summary};
use crate::report::StatsReport;
use crate::stats_stage::StatsStage;

/// The in-memory UTXO set, with undo data for the blocks a reorganisation may disconnect.
pub struct MemoryBackend {
    set: UtxoSet,
    undo: HashMap<BlockHash, (u32, BlockUndo)>,
    /// MuHash on its own thread (the set then keeps no accumulator), or `None`: the set keeps it.
    stage: Option<StatsStage>,
}

impl MemoryBackend {
    /// An empty set with `network`'s consensus parameters; with `pipeline`, MuHash runs on a
    /// [`StatsStage`] beside the applying thread.
    ///
    /// # Errors
    /// The statistics thread could not be started.
    pub fn new(network: Network, pipeline: bool) -> anyhow::Result<Self> {
        let options = SetOptions {
            params: ChainParams::for_network(network),
            threads: crate::datadir::SET_THREADS,
            track_muhash: !pipeline,
            ..SetOptions::default()
        };
        let set = UtxoSet::with_options(options);
        let stage = if pipeline {
            Some(StatsStage::start(UtxoStats::new(true))?)
        } else {
            None
        };
        Ok(Self {
            set,
            undo: HashMap::new(),
            stage,
        })
    }

    /// The set's statistics, MuHash included, after every block connected so far.
    fn stats(&self) -> anyhow::Result<UtxoStats> {
        match &self.stage {
            Some(stage) => stage.stats(),
            None => Ok(self.set.stats()),
        }
    }
}

impl Backend for MemoryBackend {
    fn connect(&mut self, block: &PreparedBlock, height: u32) -> anyhow::Result<()> {
        let undo = match &self.stage {
            Some(stage) => {
                let connected = self.set.connect_prepared(block, height)?;
                stage.changed(connected.changes)?;
                connected.undo
            }
            None => self.set.apply_prepared(block, height)?,
        };
        self.undo.insert(block.block().block_hash(), (height, undo));
        if let Some(floor) = height.checked_sub(REORG_DEPTH_MAX + 1) {
            self.undo.retain(|_, (h, _)| *h > floor);
        }
        Ok(())
    }

    fn disconnect(
        &mut self,
        hash: BlockHash,
        height: u32,
        block: Option<&PreparedBlock>,
    ) -> anyhow::Result<()> {
        let block =
            block.ok_or_else(|| anyhow!("block {hash} to disconnect is no longer available"))?;
        let (_, undo) = self
            .undo
            .remove(&hash)
            .ok_or_else(|| anyhow!("no undo data for block {hash}"))?;
        let changes = self.set.disconnect_prepared(block, height, &undo)?;
        if let Some(stage) = &self.stage {
            stage.changed(changes)?;
        }
        Ok(())
    }
}

impl MemoryBackend {
    /// The statistics of the set at `tip`, with the root of its commitment.
    ///
    /// # Errors
    /// A duplicate coin while building the commitment (a bug in the set).
    pub fn report(&self, height: u32, bestblock: BlockHash) -> anyhow::Result<StatsReport> {
        let stats = self.stats()?;
        let sorted = self.set.sorted_coins();
        let hs3 = utxo_core::hash_serialized_3(sorted.iter().map(|(o, c)| (o, c)));
        // Built once at the end: one hash per coin.
        let (commitment, _) = crate::commit::rebuild(sorted.iter().map(|(o, c)| (o, c)))?;
        Ok(StatsReport {
            height,
            bestblock,
            txouts: stats.txouts,
            bogosize: stats.bogosize,
            total_amount: stats.total_amount,
            muhash: stats.muhash_hex().unwrap_or_default(),
            hash_serialized_3: hs3.to_string(),
            commitment_root: commitment.root().to_string(),
        })
    }
}

/// Replays `files` and returns the statistics of the resulting tip.
///
/// # Errors
/// Any input, chain or UTXO error; no genesis block in the inputs.
pub fn verify_chain(
    files: &[PathBuf],
    network: Network,
    stop_height: Option<u32>,
) -> anyhow::Result<(StatsReport, Summary)> {
    let backend = MemoryBackend::new(network, crate::stats_stage::pipeline_enabled()?)?;
    let mut chain = Chain::new(network, backend, stop_height);
    let pb = ingest::progress_bar("verify-chain");
    let sum = ingest::ingest(&mut chain, files, network, &pb, |_, _| Ok(()));
    pb.finish_and_clear();
    let sum = sum?;
    let (height, tip) = chain.tip().with_context(|| {
        format!(
            "the inputs hold no {} genesis block",
            crate::blocks::file::network_name(network)
        )
    })?;
    tracing::info!(?sum, reorgs = chain.reorgs(), "replay done");
    Ok((chain.backend().report(height, tip)?, sum))
}
