//! `l2btc`: the rust-protocol-btc node and command-line tool.
//!
//! Commands (see `l2btc --help`): `verify-chain` replays blocks in memory and prints Bitcoin
//! Core-compatible UTXO statistics.
#![forbid(unsafe_code)]

mod blocks;
mod chain;
mod ingest;
mod report;
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
    /// blk*.dat files (XOR-obfuscated with the xor.dat beside them when present), in any order.
    VerifyChain {
        /// Input files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Stop at this height.
        #[arg(long)]
        stop_height: Option<u32>,
        /// Print JSON (Bitcoin Core `gettxoutsetinfo` field names) instead of a table.
        #[arg(long)]
        json: bool,
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
    }
    Ok(())
}
