//! Applies and disconnects the synthetic 2-in/2-out (or mainnet-mix) segment of `benches/utxo.rs`
//! in a loop, for profilers: `perf record`, or callgrind with
//! `--toggle-collect='*connect_inner*'` to count only the apply path.
//!
//! `cargo run --release -p benches --example apply_loop -- [2in2out|mainnet] [rounds] [coins]`

use benches::synth::{ChainCounts, SynthChain, SynthConfig, TxShape};
use utxo_core::{PreparedBlock, UtxoSet};

fn main() {
    let mut args = std::env::args().skip(1);
    let shape = match args.next().as_deref() {
        Some("mainnet") => TxShape::Mainnet,
        _ => TxShape::Fixed {
            inputs: 2,
            outputs: 2,
        },
    };
    let rounds: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(50);
    let coins: usize = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let mut chain = SynthChain::new(SynthConfig {
        seed: 2,
        txs_per_block: 2_500,
        shape,
        initial_coins: coins,
        start_height: 850_000,
    });
    let set = UtxoSet::with_options(utxo_core::SetOptions {
        track_muhash: false,
        ..utxo_core::SetOptions::default()
    });
    for (op, coin) in chain.initial_coins() {
        set.insert(op, coin);
    }
    // A mainnet set past BIP34's block skips the BIP30 lookups below 1,983,702, as Core does;
    // `L2BTC_BIP30=check` keeps them.
    if std::env::var("L2BTC_BIP30").as_deref() != Ok("check") {
        set.set_bip34_block(
            utxo_core::ChainParams::default()
                .bip34
                .map(|(_, hash)| hash),
        );
    }
    let (first, blocks) = chain.blocks(4);
    let counts = ChainCounts::of(&blocks);
    let prepared: Vec<PreparedBlock> = blocks.into_iter().map(PreparedBlock::new).collect();
    let mut applying = std::time::Duration::ZERO;
    let mut disconnecting = std::time::Duration::ZERO;
    // The fastest round of each, which host noise (a shared machine) can only slow down.
    let mut apply_best = std::time::Duration::MAX;
    let mut disconnect_best = std::time::Duration::MAX;
    for _ in 0..rounds {
        let started = std::time::Instant::now();
        let undos: Vec<_> = (first..)
            .zip(&prepared)
            .map(|(h, b)| set.apply_prepared(b, h).expect("synthetic block applies"))
            .collect();
        applying += started.elapsed();
        apply_best = apply_best.min(started.elapsed());
        let started = std::time::Instant::now();
        for ((h, b), undo) in (first..first + 4).zip(&prepared).zip(undos).rev() {
            set.disconnect_prepared(b, h, &undo)
                .expect("synthetic block disconnects");
        }
        disconnecting += started.elapsed();
        disconnect_best = disconnect_best.min(started.elapsed());
    }
    let txs = (counts.txs * rounds as u64) as f64;
    eprintln!(
        "{rounds} rounds of {} txs: apply {:.0} tx/s, disconnect {:.0} tx/s (best round: apply {:.0}, disconnect {:.0})",
        counts.txs,
        txs / applying.as_secs_f64(),
        txs / disconnecting.as_secs_f64(),
        counts.txs as f64 / apply_best.as_secs_f64(),
        counts.txs as f64 / disconnect_best.as_secs_f64(),
    );
}
