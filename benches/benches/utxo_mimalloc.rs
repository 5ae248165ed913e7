//! The 2-in/2-out UTXO apply benchmarks of `utxo.rs` with mimalloc as the global allocator, for
//! the set and the naive baseline alike (group `utxo_apply_2in2out_mimalloc`).
//!
//! Applying a block allocates and frees thousands of small objects (each spent coin's script in
//! the undo data, the naive map's entries); glibc's malloc serves most of them outside its thread
//! cache and hands pages back to the kernel between blocks. An embedder picks the allocator; this
//! shows what the set does with a fast one, beside `utxo.rs`'s figures on the system allocator.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use benches::synth::TxShape;
use criterion::{Criterion, criterion_group, criterion_main};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The benchmarks of `utxo.rs`, reused (its own `main` is not run).
#[path = "utxo.rs"]
#[allow(dead_code)]
mod utxo;

fn apply_benches(c: &mut Criterion) {
    let fixed = utxo::Workload::new(
        TxShape::Fixed {
            inputs: 2,
            outputs: 2,
        },
        2,
    );
    utxo::apply_group(c, "utxo_apply_2in2out_mimalloc", &fixed, false);
}

criterion_group!(benches, apply_benches);
criterion_main!(benches);
