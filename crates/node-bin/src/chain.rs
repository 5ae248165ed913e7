//! Chain selection: a block index (height and cumulative work per block, from parent links), the
//! active chain, and reorganisation to the most-work chain. The UTXO state the chain drives is a
//! [`Backend`] (in memory for `verify-chain`, the durable store for `import-blocks`).

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::{Context, anyhow, bail};
use bitcoin::pow::Work;
use bitcoin::{BlockHash, Network};
use utxo_core::PreparedBlock;

use crate::blocks::Origin;

/// Deepest reorganisation supported: blocks of the active chain are kept (in memory, and the store
/// keeps undo data) this far below the tip. Bitcoin Core keeps undo data for the last 288 blocks at
/// least when pruning, for the same reason.
pub const REORG_DEPTH_MAX: u32 = 288;

/// The UTXO state a chain drives.
pub trait Backend {
    /// Applies `block` at `height` on top of the current tip (all or nothing). Its txids were
    /// computed once, when it was prepared, for both the merkle-root check and the UTXO set.
    ///
    /// # Errors
    /// The block is invalid against the state, or the backend failed.
    fn connect(&mut self, block: &PreparedBlock, height: u32) -> anyhow::Result<()>;
    /// Undoes the tip block `hash` at `height`; `block` is its data when the chain still has it.
    ///
    /// # Errors
    /// The backend has no undo data for it (or needs the block and has none), or failed.
    fn disconnect(
        &mut self,
        hash: BlockHash,
        height: u32,
        block: Option<&PreparedBlock>,
    ) -> anyhow::Result<()>;
    /// A block header entered the index (before any block on it is connected).
    ///
    /// # Errors
    /// The backend could not record it.
    fn indexed(&mut self, _header: &bitcoin::block::Header) -> anyhow::Result<()> {
        Ok(())
    }
}

/// One block of the index.
#[derive(Debug, Clone, Copy)]
pub struct Entry {
    /// Parent hash.
    pub prev: BlockHash,
    /// Height (genesis 0).
    pub height: u32,
    /// Work of the chain up to and including this block.
    pub work: Work,
}

/// What happened to a block given to [`Chain::accept`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accepted {
    /// Already in the index.
    Duplicate,
    /// Above `--stop-height` (or a descendant of such a block): ignored.
    AboveStop,
    /// Stored on a side branch with no more work than the active chain.
    SideBranch,
    /// The active chain moved: this many blocks were disconnected and connected.
    Moved {
        /// Blocks disconnected (a reorganisation when non-zero).
        disconnected: u32,
        /// Blocks connected.
        connected: u32,
    },
}

/// The block index and active chain over a [`Backend`].
pub struct Chain<B> {
    network: Network,
    stop_height: Option<u32>,
    backend: B,
    index: HashMap<BlockHash, Entry>,
    /// `active[h]` is the hash of the active block at height `h`.
    active: Vec<BlockHash>,
    /// Blocks that a reorganisation may need: side branches and the last [`REORG_DEPTH_MAX`] active
    /// blocks.
    blocks: HashMap<BlockHash, Arc<PreparedBlock>>,
    reorgs: u64,
}

impl<B: Backend> Chain<B> {
    /// An empty chain (no genesis yet) over `backend`.
    pub fn new(network: Network, backend: B, stop_height: Option<u32>) -> Self {
        Self {
            network,
            stop_height,
            backend,
            index: HashMap::new(),
            active: Vec::new(),
            blocks: HashMap::new(),
            reorgs: 0,
        }
    }

    /// Seeds the index with known entries (e.g. a stored header index) and sets the active chain to the
    /// one ending at `tip` (which the backend must already be at).
    ///
    /// # Errors
    /// `tip` or one of its ancestors is missing from `entries`.
    #[allow(dead_code)] // used by import-blocks, which lands next
    pub fn restore(
        &mut self,
        entries: HashMap<BlockHash, Entry>,
        tip: Option<BlockHash>,
    ) -> anyhow::Result<()> {
        self.index = entries;
        self.active.clear();
        if let Some(tip) = tip {
            let mut hash = tip;
            let mut rev = Vec::new();
            loop {
                let e = self
                    .index
                    .get(&hash)
                    .ok_or_else(|| anyhow!("block index lacks active block {hash}"))?;
                rev.push(hash);
                if e.height == 0 {
                    break;
                }
                hash = e.prev;
            }
            rev.reverse();
            self.active = rev;
        }
        Ok(())
    }

    /// The backend.
    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// The backend, mutably.
    #[allow(dead_code)] // used by import-blocks, which lands next
    pub fn backend_mut(&mut self) -> &mut B {
        &mut self.backend
    }

    /// The tip's height and hash, if any block is connected.
    pub fn tip(&self) -> Option<(u32, BlockHash)> {
        let h = self.active.len().checked_sub(1)?;
        Some((u32::try_from(h).ok()?, self.active[h]))
    }

    /// The index entry of `hash`.
    #[allow(dead_code)] // used by import-blocks, which lands next
    pub fn entry(&self, hash: &BlockHash) -> Option<&Entry> {
        self.index.get(hash)
    }

    /// Whether `hash` is in the index.
    #[allow(dead_code)] // used by import-blocks, which lands next
    pub fn contains(&self, hash: &BlockHash) -> bool {
        self.index.contains_key(hash)
    }

    /// Hashes of the blocks whose data the chain has or had: the active chain and kept blocks (not
    /// headers known from an index alone).
    pub fn known(&self) -> impl Iterator<Item = BlockHash> + '_ {
        self.active.iter().chain(self.blocks.keys()).copied()
    }

    /// Reorganisations done so far.
    pub fn reorgs(&self) -> u64 {
        self.reorgs
    }

    /// Checks what can be checked of `block` without the UTXO set and returns its index entry, or
    /// `None` when it is a duplicate or above the stop height.
    ///
    /// # Errors
    /// A wrong genesis block, bad proof of work, a bad merkle root or witness commitment.
    pub fn check(
        &self,
        prepared: &PreparedBlock,
        origin: &Origin,
    ) -> anyhow::Result<Result<Entry, Accepted>> {
        let block = prepared.block();
        let hash = block.block_hash();
        if let Some(e) = self.index.get(&hash)
            && (self.blocks.contains_key(&hash)
                || self.active.get(e.height as usize) == Some(&hash))
        {
            return Ok(Err(Accepted::Duplicate));
        }
        let prev = block.header.prev_blockhash;
        let (height, parent_work) = if prev == <BlockHash as bitcoin::hashes::Hash>::all_zeros() {
            let genesis = bitcoin::constants::genesis_block(self.network).block_hash();
            if hash != genesis {
                bail!(
                    "block {hash} ({origin}) claims to be a genesis block, but {} starts with {genesis}",
                    crate::blocks::file::network_name(self.network)
                );
            }
            (0, None)
        } else {
            match self.index.get(&prev) {
                Some(p) => (p.height + 1, Some(p.work)),
                // Its parent was not indexed: above the stop height.
                None => return Ok(Err(Accepted::AboveStop)),
            }
        };
        if self.stop_height.is_some_and(|s| height > s) {
            return Ok(Err(Accepted::AboveStop));
        }
        let invalid =
            |why: &str| anyhow!("invalid block {hash} at height {height} ({origin}): {why}");
        let target = block.header.target();
        if target > self.network.params().max_attainable_target {
            return Err(invalid(
                "difficulty target above the network's proof-of-work limit",
            ));
        }
        if block.header.validate_pow(target).is_err() {
            return Err(invalid("hash does not meet its target (bad proof of work)"));
        }
        // As `Block::check_merkle_root`, from the txids computed once when the block was prepared.
        let root =
            bitcoin::merkle_tree::calculate_root(prepared.txids().iter().map(|t| t.to_raw_hash()));
        if root.map(bitcoin::TxMerkleNode::from_raw_hash) != Some(block.header.merkle_root) {
            return Err(invalid("merkle root does not match its transactions"));
        }
        if !block.check_witness_commitment() {
            return Err(invalid("witness commitment does not match"));
        }
        let work = parent_work.map_or(block.header.work(), |w| w + block.header.work());
        Ok(Ok(Entry { prev, height, work }))
    }

    /// Adds a block whose parent is indexed (or the genesis block), and moves the active chain to the
    /// most-work chain (the first seen wins ties).
    ///
    /// # Errors
    /// The block fails [`Chain::check`] or the UTXO rules (the backend names the rule), a reorganisation
    /// deeper than [`REORG_DEPTH_MAX`], or a backend failure.
    pub fn accept(
        &mut self,
        block: impl Into<PreparedBlock>,
        origin: &Origin,
    ) -> anyhow::Result<Accepted> {
        let block = block.into();
        let entry = match self.check(&block, origin)? {
            Ok(e) => e,
            Err(a) => return Ok(a),
        };
        self.insert(block, entry, origin)
    }

    /// Adds a block already checked by [`Chain::check`].
    ///
    /// # Errors
    /// As [`Chain::accept`].
    pub fn insert(
        &mut self,
        block: PreparedBlock,
        entry: Entry,
        origin: &Origin,
    ) -> anyhow::Result<Accepted> {
        let hash = block.block().block_hash();
        if self.index.insert(hash, entry).is_none() {
            self.backend.indexed(&block.block().header)?;
        }
        self.blocks.insert(hash, Arc::new(block));
        let more_work = match self.tip() {
            None => entry.height == 0,
            Some((_, t)) => self.index.get(&t).is_none_or(|te| entry.work > te.work),
        };
        if !more_work {
            self.prune();
            return Ok(Accepted::SideBranch);
        }
        let moved = self
            .reorganize_to(hash)
            .with_context(|| format!("block {hash} ({origin})"))?;
        self.prune();
        Ok(moved)
    }

    fn reorganize_to(&mut self, new_tip: BlockHash) -> anyhow::Result<Accepted> {
        // The branch from the fork point (exclusive) up to the new tip.
        let mut branch = Vec::new();
        let mut hash = new_tip;
        let fork_height: Option<u32> = loop {
            let e = *self
                .index
                .get(&hash)
                .ok_or_else(|| anyhow!("block index lacks {hash}"))?;
            if self.active.get(e.height as usize) == Some(&hash) {
                break Some(e.height);
            }
            branch.push((hash, e.height));
            if e.height == 0 {
                break None;
            }
            hash = e.prev;
        };
        branch.reverse();
        let keep = fork_height.map_or(0, |h| h as usize + 1);
        let depth = u32::try_from(self.active.len() - keep)?;
        if depth > REORG_DEPTH_MAX {
            bail!(
                "reorganisation of {depth} blocks is deeper than the {REORG_DEPTH_MAX} supported"
            );
        }
        for (h, _) in &branch {
            if !self.blocks.contains_key(h) {
                bail!("block {h} of the new best chain is no longer available");
            }
        }
        while self.active.len() > keep {
            let height = u32::try_from(self.active.len() - 1)?;
            let h = self.active[height as usize];
            let block = self.blocks.get(&h).cloned();
            self.backend
                .disconnect(h, height, block.as_deref())
                .with_context(|| format!("disconnecting block {h} at height {height}"))?;
            self.active.pop();
        }
        for (h, height) in &branch {
            let block = Arc::clone(&self.blocks[h]);
            self.backend
                .connect(&block, *height)
                .with_context(|| format!("invalid block {h} at height {height}"))?;
            self.active.push(*h);
        }
        if depth > 0 {
            self.reorgs += 1;
            tracing::info!(depth, tip = %new_tip, "reorganised to a chain with more work");
        }
        Ok(Accepted::Moved {
            disconnected: depth,
            connected: u32::try_from(branch.len())?,
        })
    }

    /// Drops block data no reorganisation within [`REORG_DEPTH_MAX`] can need.
    fn prune(&mut self) {
        let Some((tip, _)) = self.tip() else { return };
        let Some(floor) = tip.checked_sub(REORG_DEPTH_MAX) else {
            return;
        };
        // The active block that just fell out of the window.
        let h = self.active[floor as usize];
        self.blocks.remove(&h);
        // Side branches are rare: sweep them only when the map grows.
        if self.blocks.len() > 2 * REORG_DEPTH_MAX as usize + 16 {
            let index = &self.index;
            self.blocks
                .retain(|h, _| index.get(h).is_some_and(|e| e.height > floor));
        }
    }
}

/// The hash of the block at `height` on the chain ending at `tip`, following `index`'s parent
/// links (`None` when that chain is shorter or a header is missing): what Core's
/// `CBlockIndex::GetAncestor` answers, e.g. for BIP34's block (`UtxoSet::set_bip34_block`).
pub fn ancestor_at(
    index: &HashMap<BlockHash, Entry>,
    tip: BlockHash,
    height: u32,
) -> Option<BlockHash> {
    let mut hash = tip;
    loop {
        let entry = index.get(&hash)?;
        match entry.height.cmp(&height) {
            std::cmp::Ordering::Equal => return Some(hash),
            std::cmp::Ordering::Less => return None,
            std::cmp::Ordering::Greater => hash = entry.prev,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blocks::file::Pos;
    use bitcoin::Block;
    use std::path::PathBuf;

    /// Records the operations, rejects blocks listed as bad.
    #[derive(Default)]
    struct Log {
        ops: Vec<(char, u32, BlockHash)>,
    }

    impl Backend for Log {
        fn connect(&mut self, block: &PreparedBlock, height: u32) -> anyhow::Result<()> {
            self.ops.push(('+', height, block.block().block_hash()));
            Ok(())
        }
        fn disconnect(
            &mut self,
            hash: BlockHash,
            height: u32,
            _: Option<&PreparedBlock>,
        ) -> anyhow::Result<()> {
            self.ops.push(('-', height, hash));
            Ok(())
        }
    }

    fn origin() -> Origin {
        Origin {
            path: PathBuf::from("t"),
            pos: Pos::Line(1),
        }
    }

    #[test]
    fn ancestors_follow_parent_links_of_the_tip_s_chain() {
        let g = bitcoin::constants::genesis_block(Network::Regtest);
        let a = crate::testutil::mine_chain(&g, 0, 5, 1);
        let b = crate::testutil::mine_chain(&a[1], 2, 3, 2);
        let mut index = HashMap::new();
        let mut add = |blk: &Block, height: u32| {
            index.insert(
                blk.block_hash(),
                Entry {
                    prev: blk.header.prev_blockhash,
                    height,
                    work: blk.header.work(),
                },
            );
        };
        add(&g, 0);
        for (h, blk) in (1..).zip(&a) {
            add(blk, h);
        }
        for (h, blk) in (3..).zip(&b) {
            add(blk, h);
        }
        let a_tip = a[4].block_hash();
        let b_tip = b[2].block_hash();
        assert_eq!(ancestor_at(&index, a_tip, 5), Some(a_tip));
        assert_eq!(ancestor_at(&index, a_tip, 3), Some(a[2].block_hash()));
        assert_eq!(ancestor_at(&index, b_tip, 3), Some(b[0].block_hash()));
        assert_eq!(ancestor_at(&index, b_tip, 2), Some(a[1].block_hash()));
        assert_eq!(ancestor_at(&index, b_tip, 0), Some(g.block_hash()));
        assert_eq!(ancestor_at(&index, b_tip, 6), None, "above the tip");
        let unknown = <BlockHash as bitcoin::hashes::Hash>::from_byte_array([1; 32]);
        assert_eq!(ancestor_at(&index, unknown, 0), None);
    }

    #[test]
    fn most_work_wins_with_reorg() {
        let g = bitcoin::constants::genesis_block(Network::Regtest);
        let a = crate::testutil::mine_chain(&g, 0, 3, 1);
        let b = crate::testutil::mine_chain(&g, 0, 4, 2);
        let mut chain = Chain::new(Network::Regtest, Log::default(), None);
        assert!(matches!(
            chain.accept(g.clone(), &origin()).unwrap(),
            Accepted::Moved { .. }
        ));
        for blk in &a {
            chain.accept(blk.clone(), &origin()).unwrap();
        }
        for blk in &b[..3] {
            assert_eq!(
                chain.accept(blk.clone(), &origin()).unwrap(),
                Accepted::SideBranch
            );
        }
        assert_eq!(
            chain.accept(b[3].clone(), &origin()).unwrap(),
            Accepted::Moved {
                disconnected: 3,
                connected: 4
            }
        );
        assert_eq!(chain.tip(), Some((4, b[3].block_hash())));
        let ops = &chain.backend().ops;
        assert_eq!(ops.len(), 1 + 3 + 3 + 4);
        assert_eq!(ops[4], ('-', 3, a[2].block_hash()));
        assert_eq!(ops[7], ('+', 1, b[0].block_hash()));
        assert_eq!(chain.reorgs(), 1);
    }

    #[test]
    fn stop_height_and_wrong_genesis() {
        let g = bitcoin::constants::genesis_block(Network::Regtest);
        let a = crate::testutil::mine_chain(&g, 0, 3, 1);
        let mut chain = Chain::new(Network::Regtest, Log::default(), Some(1));
        chain.accept(g.clone(), &origin()).unwrap();
        chain.accept(a[0].clone(), &origin()).unwrap();
        assert_eq!(
            chain.accept(a[1].clone(), &origin()).unwrap(),
            Accepted::AboveStop
        );
        assert_eq!(
            chain.accept(a[2].clone(), &origin()).unwrap(),
            Accepted::AboveStop
        );
        assert_eq!(chain.tip(), Some((1, a[0].block_hash())));
        let mut mainnet = Chain::new(Network::Bitcoin, Log::default(), None);
        let err = mainnet.accept(g, &origin()).unwrap_err().to_string();
        assert!(err.contains("genesis"), "{err}");
    }

    #[test]
    fn a_merkle_root_that_does_not_match_the_transactions_is_rejected() {
        let g = bitcoin::constants::genesis_block(Network::Regtest);
        let good = crate::testutil::mine_chain(&g, 0, 1, 1).remove(0);
        assert!(good.check_merkle_root());
        // A changed transaction (the header, and so its proof of work, unchanged), and no
        // transactions at all: both fail `Block::check_merkle_root`, and so must our check.
        let mut changed = good.clone();
        changed.txdata[0].output[0].value = bitcoin::Amount::from_sat(1);
        let mut empty = good.clone();
        empty.txdata.clear();
        for bad in [changed, empty] {
            assert!(!bad.check_merkle_root());
            let mut chain = Chain::new(Network::Regtest, Log::default(), None);
            chain.accept(g.clone(), &origin()).unwrap();
            let err = chain.accept(bad, &origin()).unwrap_err().to_string();
            assert!(err.contains("merkle root does not match"), "{err}");
            assert_eq!(chain.backend().ops.len(), 1, "only genesis was connected");
        }
        let mut chain = Chain::new(Network::Regtest, Log::default(), None);
        chain.accept(g, &origin()).unwrap();
        chain.accept(good, &origin()).unwrap();
        assert_eq!(chain.tip().map(|t| t.0), Some(1));
    }

    #[test]
    fn bad_pow_is_rejected() {
        let g = bitcoin::constants::genesis_block(Network::Regtest);
        let mut a = crate::testutil::mine_chain(&g, 0, 1, 1);
        // Find a nonce that does not meet the target.
        while a[0].header.validate_pow(a[0].header.target()).is_ok() {
            a[0].header.nonce = a[0].header.nonce.wrapping_add(1);
        }
        let mut chain = Chain::new(Network::Regtest, Log::default(), None);
        chain.accept(g, &origin()).unwrap();
        let err = chain
            .accept(a[0].clone(), &origin())
            .unwrap_err()
            .to_string();
        assert!(err.contains("proof of work"), "{err}");
    }

    #[test]
    fn reorg_depth_limit() {
        let g = bitcoin::constants::genesis_block(Network::Regtest);
        // At the limit: a branch from genesis replaces REORG_DEPTH_MAX active blocks.
        let a = crate::testutil::mine_chain(&g, 0, REORG_DEPTH_MAX, 1);
        let b = crate::testutil::mine_chain(&g, 0, REORG_DEPTH_MAX + 1, 2);
        let mut chain = Chain::new(Network::Regtest, Log::default(), None);
        chain.accept(g.clone(), &origin()).unwrap();
        for blk in a.iter().chain(&b) {
            chain.accept(blk.clone(), &origin()).unwrap();
        }
        assert_eq!(chain.tip().map(|t| t.1), b.last().map(Block::block_hash));
        // One past: refused, the active chain stays.
        let a = crate::testutil::mine_chain(&g, 0, REORG_DEPTH_MAX + 1, 3);
        let b = crate::testutil::mine_chain(&g, 0, REORG_DEPTH_MAX + 2, 4);
        let mut chain = Chain::new(Network::Regtest, Log::default(), None);
        chain.accept(g, &origin()).unwrap();
        for blk in a.iter().chain(&b[..b.len() - 1]) {
            chain.accept(blk.clone(), &origin()).unwrap();
        }
        let err = chain.accept(b[b.len() - 1].clone(), &origin()).unwrap_err();
        assert!(format!("{err:#}").contains("deeper than"), "{err:#}");
        assert_eq!(chain.tip().map(|t| t.1), a.last().map(Block::block_hash));
    }

    /// A backend that checks each operation extends or pops its own chain.
    #[derive(Default)]
    struct Strict {
        chain: Vec<BlockHash>,
    }

    impl Backend for Strict {
        fn connect(&mut self, block: &PreparedBlock, height: u32) -> anyhow::Result<()> {
            let block = block.block();
            assert_eq!(self.chain.len(), height as usize);
            if let Some(top) = self.chain.last() {
                assert_eq!(*top, block.header.prev_blockhash);
            }
            self.chain.push(block.block_hash());
            Ok(())
        }
        fn disconnect(
            &mut self,
            hash: BlockHash,
            height: u32,
            _: Option<&PreparedBlock>,
        ) -> anyhow::Result<()> {
            assert_eq!(self.chain.pop(), Some(hash));
            assert_eq!(self.chain.len(), height as usize);
            Ok(())
        }
    }

    #[test]
    fn random_trees_end_on_the_most_work_chain() {
        use rand::{Rng, SeedableRng};
        let g = bitcoin::constants::genesis_block(Network::Regtest);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
        for round in 0..20u32 {
            // A random tree: each new block extends a random earlier one.
            let mut all: Vec<(Block, u32)> = vec![(g.clone(), 0)];
            let mut chain = Chain::new(Network::Regtest, Strict::default(), None);
            chain.accept(g.clone(), &origin()).unwrap();
            // (work = height here: every block has the same target), first seen wins ties.
            let mut best = (0u32, g.block_hash());
            for i in 0..40u32 {
                let (parent, ph) = all[rng.random_range(0..all.len())].clone();
                let b = crate::testutil::mine_block(&parent, ph + 1, round * 1000 + i, vec![]);
                chain.accept(b.clone(), &origin()).unwrap();
                if ph + 1 > best.0 {
                    best = (ph + 1, b.block_hash());
                }
                all.push((b, ph + 1));
                assert_eq!(chain.tip(), Some(best));
                assert_eq!(chain.backend().chain.last(), Some(&best.1));
            }
        }
    }
}
