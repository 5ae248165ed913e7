//! Feeding input files to a [`Chain`]: read each file in order, put blocks in parent-first order,
//! accept them, show progress, and report blocks that never connect.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::bail;
use bitcoin::Network;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::blocks::{Assembler, FileBlocks, Pushed};
use crate::chain::{Accepted, Backend, Chain};

/// Counts from one ingest run.
#[derive(Debug, Default, Clone, Copy)]
pub struct Summary {
    /// Blocks read from the inputs.
    pub read: u64,
    /// Blocks already known (stored before or seen twice).
    pub duplicates: u64,
    /// Blocks above `--stop-height`.
    pub above_stop: u64,
    /// Blocks kept on a side branch.
    pub side: u64,
    /// Blocks connected (including reconnections in reorganisations).
    pub connected: u64,
    /// Blocks disconnected by reorganisations.
    pub disconnected: u64,
}

/// A progress bar on stderr with blocks/s, hidden when stderr is not a terminal.
pub fn progress_bar(what: &str) -> ProgressBar {
    let pb = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template(
        "{spinner} {prefix} {pos} blocks ({per_sec}) {msg} [{elapsed}]",
    ) {
        pb.set_style(style);
    }
    pb.set_prefix(what.to_string());
    pb.enable_steady_tick(Duration::from_millis(200));
    pb
}

/// Reads `files` in order into `chain`. `after` runs after each accepted block (e.g. to make progress
/// durable).
///
/// # Errors
/// Unreadable input, an invalid block, a block that never connects, too many orphans, or whatever
/// `after` returns.
pub fn ingest<B: Backend>(
    chain: &mut Chain<B>,
    files: &[PathBuf],
    network: Network,
    pb: &ProgressBar,
    mut after: impl FnMut(&mut Chain<B>, Accepted) -> anyhow::Result<()>,
) -> anyhow::Result<Summary> {
    let mut asm = Assembler::new(chain.known());
    let mut sum = Summary::default();
    for path in files {
        tracing::info!(file = %path.display(), "reading blocks");
        for item in FileBlocks::open(path, network)? {
            let (block, origin) = item?;
            sum.read += 1;
            let ready = match asm.push(block, origin)? {
                Pushed::Duplicate => {
                    sum.duplicates += 1;
                    continue;
                }
                Pushed::Waiting => continue,
                Pushed::Ready(r) => r,
            };
            for (block, origin) in ready {
                let acc = chain.accept(block, &origin)?;
                match acc {
                    Accepted::Duplicate => sum.duplicates += 1,
                    Accepted::AboveStop => sum.above_stop += 1,
                    Accepted::SideBranch => sum.side += 1,
                    Accepted::Moved {
                        disconnected,
                        connected,
                    } => {
                        sum.connected += u64::from(connected);
                        sum.disconnected += u64::from(disconnected);
                    }
                }
                pb.inc(1);
                if let Some((h, _)) = chain.tip() {
                    pb.set_message(format!("height {h}"));
                }
                after(chain, acc)?;
            }
        }
    }
    let roots = asm.unconnected_roots();
    if let Some((first, missing)) = roots.iter().min_by_key(|(o, _)| &o.origin) {
        bail!(
            "block {} ({}) never connects: its parent {} is in none of the inputs ({} blocks wait for missing parents)",
            first.block.block_hash(),
            first.origin,
            missing,
            asm.waiting()
        );
    }
    Ok(sum)
}
