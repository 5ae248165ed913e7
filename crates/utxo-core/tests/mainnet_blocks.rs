//! Real mainnet blocks (testdata/mainnet): they decode, their merkle roots verify, and applying one to
//! an empty set reports its first missing input as such, leaving the set unchanged.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_possible_truncation
)]

use std::path::PathBuf;

use bitcoin::{Block, consensus};
use utxo_core::{ApplyError, UtxoSet, UtxoStats};

#[test]
fn mainnet_blocks_decode_verify_and_report_missing_inputs() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/mainnet");
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("blocks.json")).unwrap()).unwrap();
    let entries = meta["blocks"].as_array().unwrap();
    assert_eq!(entries.len(), 3);
    for entry in entries {
        let bytes = std::fs::read(dir.join(entry["file"].as_str().unwrap())).unwrap();
        let block: Block = consensus::deserialize(&bytes).unwrap();
        assert_eq!(
            block.block_hash().to_string(),
            entry["block_hash"].as_str().unwrap()
        );
        assert_eq!(
            block.txdata.len() as u64,
            entry["tx_count"].as_u64().unwrap()
        );
        assert!(
            block.check_merkle_root(),
            "merkle root of {}",
            block.block_hash()
        );
        if block
            .txdata
            .iter()
            .any(|tx| tx.input.iter().any(|i| !i.witness.is_empty()))
        {
            assert!(block.check_witness_commitment());
        }

        let height = u32::try_from(entry["height"].as_u64().unwrap()).unwrap();
        let set = UtxoSet::new();
        let err = set.apply_block(&block, height).unwrap_err();
        let first_spender = &block.txdata[1];
        assert_eq!(
            err,
            ApplyError::MissingInput {
                txid: first_spender.compute_txid(),
                outpoint: first_spender.input[0].previous_output,
            }
        );
        assert_eq!(set.len(), 0);
        assert_eq!(set.stats(), UtxoStats::new(true));
        assert_eq!(set.best_block(), None);
    }
}
