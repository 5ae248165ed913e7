//! Shared test helpers: a seeded synthetic chain generator with a reference model (BTreeMap) of the
//! set after every block, and helpers to read a store's full state.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::str::FromStr;

use bitcoin::hashes::{Hash, sha256d};
use bitcoin::{Amount, BlockHash, OutPoint, ScriptBuf, Txid};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use utxo_core::{BlockUndo, ChangeSet, Coin, TxUndo};
use wal_store::{BlockRecord, Store, StoreError};

/// The set as the model sees it.
pub type Model = BTreeMap<OutPoint, Coin>;

/// One generated block.
#[derive(Clone, Debug)]
pub struct GenBlock {
    pub height: u32,
    pub hash: BlockHash,
    pub prev_hash: BlockHash,
    pub changes: ChangeSet,
    pub undo: BlockUndo,
}

impl GenBlock {
    pub fn record(&self) -> BlockRecord<'_> {
        BlockRecord {
            height: self.height,
            hash: self.hash,
            prev_hash: self.prev_hash,
            changes: &self.changes,
            undo: &self.undo,
            commitment_root: Some([self.height.to_le_bytes()[0]; 32]),
        }
    }
}

/// A seeded chain: each block creates a few coins and spends a few existing ones.
pub struct Chain {
    rng: ChaCha8Rng,
    pub model: Model,
    pub tip: Option<(u32, BlockHash)>,
}

impl Chain {
    pub fn new(seed: u64) -> Chain {
        Chain {
            rng: ChaCha8Rng::seed_from_u64(seed),
            model: Model::new(),
            tip: None,
        }
    }

    pub fn next_block(&mut self) -> GenBlock {
        let height = self.tip.map_or(0, |t| t.0 + 1);
        let prev_hash = self.tip.map_or(BlockHash::all_zeros(), |t| t.1);
        let hash = BlockHash::from_byte_array(self.rng.random());
        let mut spent = Vec::new();
        let n_spend = self.rng.random_range(0..4usize).min(self.model.len());
        for _ in 0..n_spend {
            let idx = self.rng.random_range(0..self.model.len());
            let (op, coin) = self
                .model
                .iter()
                .nth(idx)
                .map(|(o, c)| (*o, c.clone()))
                .unwrap();
            self.model.remove(&op);
            spent.push((op, coin));
        }
        let txid = Txid::from_byte_array(self.rng.random());
        let mut created = Vec::new();
        for vout in 0..self.rng.random_range(1..5u32) {
            let len = self.rng.random_range(0..40usize);
            let script: Vec<u8> = (0..len).map(|_| self.rng.random()).collect();
            let coin = Coin {
                amount: Amount::from_sat(self.rng.random_range(0..5_000_000_000u64)),
                height,
                is_coinbase: vout == 0,
                script_pubkey: ScriptBuf::from_bytes(script),
            };
            let op = OutPoint { txid, vout };
            self.model.insert(op, coin.clone());
            created.push((op, coin));
        }
        let undo = BlockUndo {
            txs: vec![TxUndo {
                spent: spent.iter().map(|(_, c)| c.clone()).collect(),
            }],
        };
        self.tip = Some((height, hash));
        GenBlock {
            height,
            hash,
            prev_hash,
            changes: ChangeSet { created, spent },
            undo,
        }
    }

    /// Undoes a block in the model (the caller pops it).
    pub fn undo_block(&mut self, b: &GenBlock) {
        for (op, _) in &b.changes.created {
            self.model.remove(op);
        }
        for (op, c) in &b.changes.spent {
            self.model.insert(*op, c.clone());
        }
        self.tip = b.height.checked_sub(1).map(|h| (h, b.prev_hash));
    }
}

/// Every coin of the store (checkpoints it).
pub fn store_coins(store: &mut Store) -> Model {
    store
        .coin_iter()
        .unwrap()
        .map(|r| r.unwrap())
        .collect::<Model>()
}

/// Stats of a model, as the store keeps them.
pub fn model_stats(m: &Model) -> utxo_core::UtxoStats {
    let mut s = utxo_core::UtxoStats::new(true);
    let mut buf = Vec::new();
    for (op, c) in m {
        s.add_coin(op, c, &mut buf);
    }
    s
}

/// A stand-in for the Merkle layer's commitment (wal-store may not depend on it): blake3 over the
/// coins' `txout_ser` bytes in (txid, vout) order. Order-dependent, which is fine because our
/// snapshots are sorted.
#[derive(Default)]
pub struct ToyCommitment {
    hasher: blake3::Hasher,
    buf: Vec<u8>,
    pub coins: u64,
    /// `root()` fails with this reason instead of returning the root.
    pub fail: Option<String>,
}

impl ToyCommitment {
    /// A checker whose `root()` fails with `reason`.
    pub fn failing(reason: &str) -> ToyCommitment {
        ToyCommitment {
            fail: Some(reason.to_owned()),
            ..ToyCommitment::default()
        }
    }

    /// The toy root of a set.
    pub fn root_of(m: &Model) -> [u8; 32] {
        use wal_store::snapshot::CommitmentCheck;
        let mut t = ToyCommitment::default();
        for (op, c) in m {
            t.add_coin(op, c);
        }
        t.root().unwrap()
    }
}

impl wal_store::snapshot::CommitmentCheck for ToyCommitment {
    fn add_coin(&mut self, outpoint: &OutPoint, coin: &Coin) {
        self.buf.clear();
        utxo_core::txout_ser(outpoint, coin, &mut self.buf);
        self.hasher.update(&self.buf);
        self.coins += 1;
    }
    fn root(&mut self) -> Result<[u8; 32], String> {
        match &self.fail {
            Some(r) => Err(r.clone()),
            None => Ok(*self.hasher.finalize().as_bytes()),
        }
    }
}

/// Logs the next `n` blocks of `chain` on top of `store` (appended, not committed).
pub fn append_blocks(store: &mut Store, chain: &mut Chain, n: usize) {
    for _ in 0..n {
        let _ = store.append_block(&chain.next_block().record()).unwrap();
    }
}

/// Asserts that a snapshot import or load was refused with a [`StoreError::Snapshot`] and left
/// the store without a tip; `case` names the input in the messages.
pub fn assert_snapshot_refused<T>(r: Result<T, StoreError>, store: &Store, case: &str) {
    assert!(
        matches!(r, Err(StoreError::Snapshot(_))),
        "{case}: {:?}",
        r.map(|_| ())
    );
    assert_eq!(store.tip(), None, "{case}");
}

/// Bitcoin Core's `dumptxoutset` of the bundled regtest chain (testdata/regtest/chain-a) at
/// height 200, with the base block and `txoutset_hash` from its JSON.
pub struct CoreSnapshot {
    /// The file's bytes.
    pub bytes: Vec<u8>,
    /// The block the snapshot is taken at.
    pub base: BlockHash,
    /// Core's `hash_serialized_3` of the set.
    pub txoutset_hash: sha256d::Hash,
}

/// Reads [`CoreSnapshot`] from the repository's testdata.
pub fn core_snapshot_200() -> CoreSnapshot {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/regtest/chain-a");
    let bytes = std::fs::read(path.join("utxo-snapshot-200.dat")).unwrap();
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(path.join("utxo-snapshot-200.json")).unwrap())
            .unwrap();
    CoreSnapshot {
        bytes,
        base: BlockHash::from_str(meta["base_hash"].as_str().unwrap()).unwrap(),
        txoutset_hash: sha256d::Hash::from_str(meta["txoutset_hash"].as_str().unwrap()).unwrap(),
    }
}

/// A copy of `bytes` with one bit of byte `at`, drawn from `rng`, flipped.
pub fn with_flipped_bit(bytes: &[u8], at: usize, rng: &mut impl Rng) -> Vec<u8> {
    let mut b = bytes.to_vec();
    b[at] ^= 1 << rng.random_range(0..8);
    b
}
