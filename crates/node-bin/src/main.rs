//! `l2btc`: the rust-protocol-btc node and command-line tool.
//!
//! Commands (see `l2btc --help`): `verify-chain` replays blocks in memory and prints Bitcoin
//! Core-compatible UTXO statistics; `import-blocks` does the same durably into `--datadir`, where
//! `utxo-stats`, `utxo-get` and `snapshot` read and write the stored set; `prove TXID:VOUT` writes an
//! inclusion proof (the coin is in the set) or an exclusion proof (it is not) against the stored
//! tip's commitment root, and `verify-proof FILE --root HEX` checks one (binary or JSON) without a
//! datadir.
//!
//! Code map: `blocks` reads input files (hex, gzip, Core block files with XOR) and puts out-of-order
//! blocks in parent-first order (bounded orphan pool); `chain` keeps the block index and moves the
//! active chain to the most-work chain over a `Backend`; `verify` is the in-memory backend;
//! `datadir` is the durable one (wal-store) with the header index and the statistics cache;
//! `commands` and `report` are the command bodies and Core-format output; `commit` is the UTXO
//! commitment (`merkle-proofs`) and the proof commands.
//!
//! Datadir: `chainstate/` (the wal-store: WAL segments + redb), `headers.dat` (80-byte headers of
//! every indexed block, appended before the block is logged and synced before the WAL acknowledges
//! it, so reorgs across runs know every stored block's ancestry and work), `stats.dat` (txouts,
//! bogosize, total and the MuHash state of a named tip, checksummed; a cache used only when it names
//! the store's tip).
//!
//! UTXO commitment (`merkle-proofs`, a blake3 root that depends only on the set; `utxo-stats` and
//! `verify-chain` print it as `commitment_root` beside Core's figures). Persistence strategy: it is
//! **rebuilt deterministically at open** from the stored coins with
//! `merkle_proofs::Commitment::from_sorted_coins`, never stored itself (only its root is, in WAL
//! records and snapshots). `import-blocks` then keeps
//! it updated per block from each block's `ChangeSet` (`apply_change_set`, `revert_change_set` when
//! a reorganisation disconnects a block) and logs the root after each block in the block's WAL
//! record (`commitment_root`). Every rebuild (open of `import-blocks`, `utxo-stats`, `prove`) is
//! checked against the root logged with the tip block when the store still keeps that record, so an
//! incremental root that drifted from the set fails loudly. Measured rebuild time at the bundled
//! regtest tip (height 200, 15,000 coins; `Commitment::from_sorted_coins` from the coins in memory to
//! the root, logged by `RUST_LOG=info l2btc prove ...` and printed in `prove`'s summary): 49–68 ms
//! wall in a release build (7 runs, on the shared 2-core machine at load average ≈ 11; the whole
//! `prove` process, store open and coin read included, used 0.03 s of user CPU), 210–250 ms in a
//! debug build. Most of it at this size is the fixed part (65,536 pages and the upper tree); the
//! per-coin part is one blake3 hash each plus a sort, so it grows linearly with the set (the
//! benches' `merkle_rebuild` group measures it at 1M coins).
//!
//! Snapshots carry the root too. `snapshot export` writes our format version 2 with the tip's root
//! in the header (rebuilt from the exported coins and checked against the tip's logged root first;
//! byte layout in `crates/wal-store/docs/FORMAT.md`). `snapshot import` keeps the coins as wal-store
//! streams them, rebuilds the commitment from them with the same `from_sorted_coins` and lets
//! wal-store compare it with the file's root *before* the import's last transaction: on a mismatch
//! the error names both roots, the exit status is non-zero and the committed chunks are wiped (the
//! `import_in_progress` path), so the datadir is as before. On a match the store keeps the root
//! (`Store::snapshot_root`) and later opens check their rebuild against it while the tip is still
//! the snapshot's block. Version-1 files (no root) still import, with a warning on stderr. Bitcoin
//! Core's `dumptxoutset` format (`dump-core` / `load-core`) stays byte-identical to Core's and so
//! cannot carry the root: after `load-core` the root is rebuilt with nothing to check it against.
//! **Rebuild-at-import cost**, measured on the bundled regtest snapshot (height 200, 15,000 coins;
//! debug build, whose dependencies and `merkle-proofs` are optimised; 5 runs of
//! `l2btc snapshot import` into a headers-only datadir, load average ≈ 4): the rebuild took
//! 59–62 ms (printed by the import), the whole import 0.30–0.39 s wall / 0.22–0.28 s user CPU
//! against 0.24–0.42 s wall / 0.21–0.22 s user for the same set in a version-1 file (no rebuild),
//! and peak RSS 18 MB against 9 MB (the commitment's fixed 65,536 pages plus the coins held for the
//! rebuild). At 1M coins the rebuild alone is the benches' one-shot figure:
//! `merkle_rebuild/ours/1000000` 1.87 s mean (criterion, last `cargo xtask bench` run; 1.69 s in
//! `bench-figures/merkle.tsv`, 1.9 s in the `merkle-proofs` docs, 12.5–17.4 s at 10M). Measured
//! once end to end with a throwaway test (not committed: a timed test): 1M synthetic P2WPKH-like
//! coins in a 74 MB version-2 file, `Store::import_snapshot` against `import_snapshot_checked`
//! with `commit::ImportCheck`, same debug build (wal-store and node-bin unoptimised), 4 runs each
//! at load average ≈ 4: the
//! rebuild inside the import took 2.7–4.7 s, the whole import 15.7–24.0 s unchecked and
//! 18.0–24.8 s checked (the noise of the shared machine is as large as the difference; the
//! rebuild's own share is ≈ 15–20%). Like the rebuild at open, the check holds the imported coins
//! in memory (the node's in-memory set does so anyway once `import-blocks` opens the datadir).
//!
//! Durability contract of `import-blocks`: a line `durable <height> <hash>` (or
//! `disconnected <height> <hash>` in a reorganisation) is printed only after the group commit that
//! made it durable; a crash at any moment loses nothing printed (tests/kill.rs).
#![forbid(unsafe_code)]

mod blocks;
mod chain;
mod commands;
mod commit;
mod datadir;
mod ingest;
mod report;
mod stats_stage;
#[cfg(test)]
mod testutil;
mod verify;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

/// The rust-protocol-btc node and command-line tool.
#[derive(Debug, Parser)]
#[command(name = "l2btc", version, about)]
struct Cli {
    /// Data directory.
    #[arg(long, global = true, default_value = "./l2btc-data")]
    datadir: PathBuf,
    /// Bitcoin network.
    #[arg(long, global = true, value_enum, default_value_t = NetworkArg::Mainnet)]
    network: NetworkArg,
    #[command(subcommand)]
    command: Command,
}

/// The networks `l2btc` knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum NetworkArg {
    /// Bitcoin mainnet.
    Mainnet,
    /// Testnet version 4.
    Testnet4,
    /// The default signet.
    Signet,
    /// Regression test network.
    Regtest,
}

impl From<NetworkArg> for bitcoin::Network {
    fn from(n: NetworkArg) -> Self {
        match n {
            NetworkArg::Mainnet => bitcoin::Network::Bitcoin,
            NetworkArg::Testnet4 => bitcoin::Network::Testnet4,
            NetworkArg::Signet => bitcoin::Network::Signet,
            NetworkArg::Regtest => bitcoin::Network::Regtest,
        }
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Replay blocks in memory (no datadir) and print the UTXO statistics of the resulting tip.
    ///
    /// Inputs: hex files (one raw block per line, optionally gzip-compressed) or Bitcoin Core
    /// blk*.dat files (XOR-obfuscated with the xor.dat beside them when present), in any order; a
    /// directory stands for its blk*.dat files.
    VerifyChain {
        /// Input files or Bitcoin Core `blocks/` directories.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Stop at this height.
        #[arg(long)]
        stop_height: Option<u32>,
        /// Print JSON (Bitcoin Core `gettxoutsetinfo` field names) instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Import blocks durably into --datadir (resumable: what is stored is skipped; the most-work
    /// chain wins, with reorganisations, also across runs). Prints `durable <height> <hash>` on
    /// stdout for each block once it is synced to disk.
    ImportBlocks {
        /// Input files (same formats as verify-chain).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Stop at this height.
        #[arg(long)]
        stop_height: Option<u32>,
        /// Only record the block headers (e.g. before `snapshot load-core`).
        #[arg(long)]
        headers_only: bool,
        /// Fold the WAL into the database once it holds this many bytes (tuning, tests).
        #[arg(long, hide = true)]
        checkpoint_wal_bytes: Option<u64>,
    },
    /// Print the UTXO statistics of the stored tip (Bitcoin Core `gettxoutsetinfo` names).
    UtxoStats {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print one unspent output of the stored set.
    UtxoGet {
        /// The output, as TXID:VOUT.
        outpoint: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Write a proof that an output is in the stored set (inclusion, with its coin) or is not
    /// (exclusion), against the commitment root of the stored tip (see `utxo-stats`).
    ///
    /// The binary encoding (version 1) goes to stdout or --out; --json writes the JSON form.
    Prove {
        /// The output, as TXID:VOUT.
        outpoint: String,
        /// Write the JSON form.
        #[arg(long)]
        json: bool,
        /// Write the proof to this file instead of stdout.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Check a proof (binary or JSON, detected) against a commitment root: exit status 0 iff it is
    /// valid, otherwise a message saying why not. Needs no datadir.
    VerifyProof {
        /// The proof file.
        file: PathBuf,
        /// The commitment root, 64 hex digits (as `utxo-stats` prints it).
        #[arg(long)]
        root: String,
    },
    /// Export or import the stored set.
    #[command(subcommand)]
    Snapshot(SnapshotCommand),
}

#[derive(Debug, Subcommand)]
enum SnapshotCommand {
    /// Write the stored set in our checksummed snapshot format (version 2), which carries the
    /// tip's commitment root (rebuilt from the coins and checked against the tip's logged root).
    Export {
        /// Output file.
        file: PathBuf,
    },
    /// Load a snapshot in our format into an empty datadir (its block must be in the header index),
    /// refusing it unless its coins commit to the root it carries.
    ///
    /// The commitment is rebuilt from the imported coins and must equal the root in the file;
    /// on a mismatch nothing is imported (exit status non-zero, the datadir is as before). Files of
    /// format version 1 carry no root: they import with a warning.
    Import {
        /// Input file.
        file: PathBuf,
    },
    /// Write the stored set in Bitcoin Core's `dumptxoutset` format (byte-identical to Core's, so
    /// without our commitment root).
    ///
    /// The file is byte-identical to Core's, so it cannot carry our commitment root (use `export`
    /// for a snapshot that does).
    DumpCore {
        /// Output file.
        file: PathBuf,
    },
    /// Load a Bitcoin Core `dumptxoutset` file into an empty datadir (its base block must be in the
    /// header index: run `import-blocks --headers-only` first); it carries no commitment root.
    ///
    /// Core's format carries no commitment root: the root is rebuilt from the loaded coins
    /// (`utxo-stats` shows it) with nothing to check it against.
    LoadCore {
        /// Input file.
        file: PathBuf,
        /// Commit only if the coins hash to this `hash_serialized_3` (Core's display hex, as in its
        /// assumeutxo parameters or `dumptxoutset`'s `txoutset_hash`).
        #[arg(long)]
        hash_serialized_3: Option<bitcoin::hashes::sha256d::Hash>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let network: bitcoin::Network = cli.network.into();
    match cli.command {
        Command::VerifyChain {
            files,
            stop_height,
            json,
        } => {
            let (report, _) = verify::verify_chain(&files, network, stop_height)?;
            if json {
                println!("{}", report.to_json());
            } else {
                print!("{}", report.to_table());
            }
        }
        Command::ImportBlocks {
            files,
            stop_height,
            headers_only,
            checkpoint_wal_bytes,
        } => {
            let options = commands::ImportOptions {
                files: &files,
                stop_height,
                checkpoint_wal_bytes,
                headers_only,
            };
            commands::import_blocks(&cli.datadir, network, &options)?;
        }
        Command::UtxoStats { json } => commands::utxo_stats(&cli.datadir, network, json)?,
        Command::UtxoGet { outpoint, json } => {
            commands::utxo_get(&cli.datadir, network, &outpoint, json)?
        }
        Command::Prove {
            outpoint,
            json,
            out,
        } => commit::prove(
            &cli.datadir,
            network,
            &commit::ProveOptions {
                outpoint: &outpoint,
                json,
                out: out.as_deref(),
            },
        )?,
        Command::VerifyProof { file, root } => commit::verify_proof(&file, &root)?,
        Command::Snapshot(sc) => {
            let (op, file) = match sc {
                SnapshotCommand::Export { file } => (commands::SnapshotOp::Export, file),
                SnapshotCommand::Import { file } => (commands::SnapshotOp::Import, file),
                SnapshotCommand::DumpCore { file } => (commands::SnapshotOp::DumpCore, file),
                SnapshotCommand::LoadCore {
                    file,
                    hash_serialized_3,
                } => (commands::SnapshotOp::LoadCore(hash_serialized_3), file),
            };
            commands::snapshot(&cli.datadir, network, op, &file)?;
        }
    }
    Ok(())
}
