//! `l2btc`: the rust-protocol-btc node and command-line tool.
#![forbid(unsafe_code)]

use clap::Parser;

/// The rust-protocol-btc node and command-line tool.
#[derive(Debug, Parser)]
#[command(name = "l2btc", version, about)]
struct Cli {}

fn main() -> anyhow::Result<()> {
    let _cli = Cli::parse();
    Ok(())
}
