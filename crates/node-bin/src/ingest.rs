//! Feeding input files to a [`Chain`]: read each file in order, put blocks in parent-first order,
//! accept them, show progress, and report blocks that never connect.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use bitcoin::Network;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use utxo_core::PreparedBlock;

use crate::blocks::{Assembler, FileBlocks, Origin, Pushed};
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

impl Summary {
    fn count(&mut self, accepted: Accepted) {
        match accepted {
            Accepted::Duplicate => self.duplicates += 1,
            Accepted::AboveStop => self.above_stop += 1,
            Accepted::SideBranch => self.side += 1,
            Accepted::Moved {
                disconnected,
                connected,
            } => {
                self.connected += u64::from(connected);
                self.disconnected += u64::from(disconnected);
            }
        }
    }
}

/// The input files: each file as given, each directory replaced by its `blk*.dat` files in name
/// order (a Bitcoin Core `blocks/` folder).
///
/// # Errors
/// An unreadable directory, or one without block files.
pub fn expand_inputs(inputs: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in inputs {
        if !p.is_dir() {
            out.push(p.clone());
            continue;
        }
        let mut found: Vec<PathBuf> = std::fs::read_dir(p)
            .with_context(|| format!("reading directory {}", p.display()))?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|f| {
                f.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("blk") && n.ends_with(".dat"))
            })
            .collect();
        if found.is_empty() {
            bail!("directory {} holds no blk*.dat files", p.display());
        }
        found.sort();
        out.extend(found);
    }
    Ok(out)
}

/// A progress bar on stderr with blocks/s, hidden when stderr is not a terminal.
pub fn progress_bar(what: &str) -> ProgressBar {
    let pb = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    if let Ok(style) =
        ProgressStyle::with_template("{spinner} {prefix} {pos} blocks ({rate}) {msg} [{elapsed}]")
    {
        pb.set_style(style.with_key(
            "rate",
            |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = write!(w, "{:.0} blocks/s", state.per_sec());
            },
        ));
    }
    pb.set_prefix(what.to_string());
    pb.enable_steady_tick(Duration::from_millis(200));
    pb
}

/// Blocks read ahead of the chain: the reader thread waits when this many are queued (memory is
/// bounded by this times [`crate::blocks::file::BLOCK_SIZE_MAX`]).
pub const READ_AHEAD_BLOCKS_MAX: usize = 16;

/// Reads `files` in order into `chain`. `after` runs after each accepted block (e.g. to make progress
/// durable).
///
/// Two threads: a reader decodes the files and prepares each block (its txids hashed, the work
/// Bitcoin Core does at deserialization), at most [`READ_AHEAD_BLOCKS_MAX`] blocks ahead; this
/// thread assembles, checks and connects them. The UTXO set then never hashes a transaction.
/// With `L2BTC_PIPELINE=off` ([`crate::stats_stage::PIPELINE_ENV`]) this thread reads too.
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
    let paths = expand_inputs(files)?;
    let mut asm: Assembler<PreparedBlock> = Assembler::new(chain.known());
    let mut sum = Summary::default();
    let mut step = |item: ReadItem| -> anyhow::Result<()> {
        let (block, origin) = item?;
        sum.read += 1;
        let ready = match asm.push(block, origin)? {
            Pushed::Duplicate => {
                sum.duplicates += 1;
                return Ok(());
            }
            Pushed::Waiting => return Ok(()),
            Pushed::Ready(r) => r,
        };
        for (block, origin) in ready {
            let acc = chain.accept(block, &origin)?;
            sum.count(acc);
            pb.inc(1);
            if let Some((h, _)) = chain.tip() {
                pb.set_message(format!("height {h}"));
            }
            after(chain, acc)?;
        }
        Ok(())
    };
    if crate::stats_stage::pipeline_enabled()? {
        std::thread::scope(|scope| -> anyhow::Result<()> {
            let (tx, rx) = std::sync::mpsc::sync_channel(READ_AHEAD_BLOCKS_MAX);
            scope.spawn(move || read_blocks(&paths, network, |item| tx.send(item).is_ok()));
            // Dropping `rx` (on return, also on error) ends the reader at its next block.
            rx.into_iter().try_for_each(&mut step)
        })?;
    } else {
        let mut outcome = Ok(());
        read_blocks(&paths, network, |item| {
            outcome = step(item);
            outcome.is_ok()
        });
        outcome?;
    }
    let roots = asm.unconnected_roots();
    if let Some((first, missing)) = roots.iter().min_by_key(|(o, _)| &o.origin) {
        bail!(
            "block {} ({}) never connects: its parent {} is in none of the inputs ({} blocks wait for missing parents)",
            first.block.block().block_hash(),
            first.origin,
            missing,
            asm.waiting()
        );
    }
    Ok(sum)
}

/// One block read ahead, or the error that ended reading.
type ReadItem = anyhow::Result<(PreparedBlock, Origin)>;

/// The reader: decodes `paths` in order and hands each block prepared to `deliver`, then stops at
/// the first error (delivered too) or when `deliver` returns false.
fn read_blocks(paths: &[PathBuf], network: Network, mut deliver: impl FnMut(ReadItem) -> bool) {
    for path in paths {
        tracing::info!(file = %path.display(), "reading blocks");
        let blocks = match FileBlocks::open(path, network) {
            Ok(b) => b,
            Err(e) => {
                deliver(Err(e.into()));
                return;
            }
        };
        for item in blocks {
            let item = item
                .map(|(block, origin)| (PreparedBlock::new(block), origin))
                .map_err(anyhow::Error::from);
            let failed = item.is_err();
            if !deliver(item) || failed {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories_expand_to_their_block_files_in_order() {
        let dir = tempfile::tempdir().unwrap();
        for n in ["blk00001.dat", "blk00000.dat", "rev00000.dat", "xor.dat"] {
            std::fs::write(dir.path().join(n), b"").unwrap();
        }
        let other = dir.path().join("other.hex");
        let got = expand_inputs(&[other.clone(), dir.path().to_path_buf()]).unwrap();
        assert_eq!(
            got,
            vec![
                other,
                dir.path().join("blk00000.dat"),
                dir.path().join("blk00001.dat")
            ]
        );
        let empty = tempfile::tempdir().unwrap();
        assert!(expand_inputs(&[empty.path().to_path_buf()]).is_err());
    }
}
