//! Putting out-of-order blocks in parent-first order: a block whose parent has not been seen yet waits
//! in a bounded orphan pool keyed by its parent's hash, and is released as soon as the parent arrives.

use std::collections::{HashMap, HashSet};

use bitcoin::{Block, BlockHash};
use utxo_core::PreparedBlock;

use super::file::Origin;

/// Most blocks that may wait for their parent at once (Bitcoin Core downloads at most 1,024 blocks
/// ahead of its tip, so its block files are never further out of order than that). Memory is bounded
/// by this times [`super::file::BLOCK_SIZE_MAX`].
pub const ORPHAN_BLOCKS_MAX: usize = 1024;

/// Errors assembling blocks.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AssembleError {
    /// Too many blocks wait for their parents.
    #[error(
        "block {hash} ({origin}) would be orphan number {count} waiting for its parent, over the limit of {ORPHAN_BLOCKS_MAX}; the input is too far out of order or a block is missing"
    )]
    OrphanPoolFull {
        /// The block that did not fit.
        hash: BlockHash,
        /// Where it came from.
        origin: Origin,
        /// How many blocks would wait with it.
        count: usize,
    },
}

/// What the assembler needs of a block: its hash and its parent's.
pub trait BlockLinks {
    /// The block's hash.
    fn hash(&self) -> BlockHash;
    /// Its parent's hash.
    fn parent(&self) -> BlockHash;
}

impl BlockLinks for Block {
    fn hash(&self) -> BlockHash {
        self.block_hash()
    }
    fn parent(&self) -> BlockHash {
        self.header.prev_blockhash
    }
}

impl BlockLinks for PreparedBlock {
    fn hash(&self) -> BlockHash {
        self.block().block_hash()
    }
    fn parent(&self) -> BlockHash {
        self.block().header.prev_blockhash
    }
}

/// A block waiting for its parent.
#[derive(Debug)]
pub struct Orphan<B = Block> {
    /// The block.
    pub block: B,
    /// Where it was read.
    pub origin: Origin,
}

/// Releases blocks (plain, or prepared with their txids) once their parent is known.
#[derive(Debug)]
pub struct Assembler<B = Block> {
    known: HashSet<BlockHash>,
    waiting: HashMap<BlockHash, Vec<Orphan<B>>>,
    count: usize,
}

/// What [`Assembler::push`] did with a block.
#[derive(Debug)]
pub enum Pushed<B = Block> {
    /// The block was already known; it was dropped.
    Duplicate,
    /// Its parent is unknown: it waits.
    Waiting,
    /// These blocks (the pushed one first, then released orphans) are ready, each after its parent.
    Ready(Vec<(B, Origin)>),
}

impl<B: BlockLinks> Assembler<B> {
    /// An assembler for which `known` blocks (and the all-zero hash, the genesis block's parent) are
    /// parents that have been seen.
    pub fn new(known: impl IntoIterator<Item = BlockHash>) -> Self {
        let mut known: HashSet<BlockHash> = known.into_iter().collect();
        known.insert(<BlockHash as bitcoin::hashes::Hash>::all_zeros());
        Self {
            known,
            waiting: HashMap::new(),
            count: 0,
        }
    }

    /// Adds a block; returns the blocks that became ready, in parent-first order.
    ///
    /// # Errors
    /// [`AssembleError::OrphanPoolFull`] when the block would have to wait and the pool is full.
    pub fn push(&mut self, block: B, origin: Origin) -> Result<Pushed<B>, AssembleError> {
        let hash = block.hash();
        if self.known.contains(&hash) || self.is_waiting(&hash, &block) {
            return Ok(Pushed::Duplicate);
        }
        let prev = block.parent();
        if !self.known.contains(&prev) {
            let count = self.count + 1;
            if count > ORPHAN_BLOCKS_MAX {
                return Err(AssembleError::OrphanPoolFull {
                    hash,
                    origin,
                    count,
                });
            }
            self.count = count;
            self.waiting
                .entry(prev)
                .or_default()
                .push(Orphan { block, origin });
            return Ok(Pushed::Waiting);
        }
        let mut ready = Vec::new();
        let mut queue = std::collections::VecDeque::new();
        queue.push_back((block, origin));
        while let Some((block, origin)) = queue.pop_front() {
            let hash = block.hash();
            self.known.insert(hash);
            if let Some(children) = self.waiting.remove(&hash) {
                for child in children {
                    self.count -= 1;
                    queue.push_back((child.block, child.origin));
                }
            }
            ready.push((block, origin));
        }
        Ok(Pushed::Ready(ready))
    }

    fn is_waiting(&self, hash: &BlockHash, block: &B) -> bool {
        self.waiting
            .get(&block.parent())
            .is_some_and(|v| v.iter().any(|o| o.block.hash() == *hash))
    }

    /// Number of blocks waiting for a parent.
    pub fn waiting(&self) -> usize {
        self.count
    }

    /// The waiting blocks whose parent is not itself waiting (the first block of each group that
    /// never connected), in no particular order, with the parent each one is missing.
    pub fn unconnected_roots(&self) -> Vec<(&Orphan<B>, BlockHash)> {
        let waiting_hashes: HashSet<BlockHash> = self
            .waiting
            .values()
            .flatten()
            .map(|o| o.block.hash())
            .collect();
        self.waiting
            .iter()
            .filter(|(prev, _)| !waiting_hashes.contains(*prev))
            .flat_map(|(prev, v)| v.iter().map(move |o| (o, *prev)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blocks::file::Pos;
    use bitcoin::block::{Header, Version};
    use bitcoin::hashes::Hash;
    use bitcoin::{CompactTarget, TxMerkleNode};
    use std::path::PathBuf;

    fn origin(i: u64) -> Origin {
        Origin {
            path: PathBuf::from("t"),
            pos: Pos::Line(i),
        }
    }

    /// A header-only chain (no transactions): enough for assembly, which only looks at hashes.
    fn chain(n: usize) -> Vec<Block> {
        let mut prev = BlockHash::all_zeros();
        (0..n)
            .map(|i| {
                let header = Header {
                    version: Version::ONE,
                    prev_blockhash: prev,
                    merkle_root: TxMerkleNode::all_zeros(),
                    time: u32::try_from(i).unwrap(),
                    bits: CompactTarget::from_consensus(0x207fffff),
                    nonce: 0,
                };
                prev = header.block_hash();
                Block {
                    header,
                    txdata: vec![],
                }
            })
            .collect()
    }

    fn drain(asm: &mut Assembler, blocks: impl IntoIterator<Item = Block>) -> Vec<BlockHash> {
        let mut out = Vec::new();
        for (i, b) in blocks.into_iter().enumerate() {
            if let Pushed::Ready(r) = asm.push(b, origin(i as u64)).unwrap() {
                out.extend(r.into_iter().map(|(b, _)| b.block_hash()));
            }
        }
        out
    }

    #[test]
    fn out_of_order_blocks_come_out_parent_first() {
        let c = chain(40);
        // Reverse each window of 16, as block files from parallel download look.
        let mut shuffled = Vec::new();
        for w in c.chunks(16) {
            shuffled.extend(w.iter().rev().cloned());
        }
        let mut asm = Assembler::new([]);
        let out = drain(&mut asm, shuffled);
        let want: Vec<_> = c.iter().map(Block::block_hash).collect();
        assert_eq!(out, want);
        assert_eq!(asm.waiting(), 0);
    }

    #[test]
    fn duplicates_are_dropped() {
        let c = chain(3);
        let mut asm = Assembler::new([]);
        assert!(matches!(
            asm.push(c[2].clone(), origin(0)).unwrap(),
            Pushed::Waiting
        ));
        assert!(matches!(
            asm.push(c[2].clone(), origin(1)).unwrap(),
            Pushed::Duplicate
        ));
        assert_eq!(drain(&mut asm, [c[0].clone(), c[0].clone()]).len(), 1);
        assert_eq!(drain(&mut asm, [c[1].clone()]).len(), 2);
    }

    #[test]
    fn a_missing_block_leaves_its_descendants_waiting() {
        let c = chain(6);
        let mut asm = Assembler::new([]);
        let out = drain(
            &mut asm,
            c.iter()
                .enumerate()
                .filter(|(i, _)| *i != 3)
                .map(|(_, b)| b.clone()),
        );
        assert_eq!(out.len(), 3);
        let roots = asm.unconnected_roots();
        assert_eq!(roots.len(), 1);
        assert_eq!(roots[0].0.block.block_hash(), c[4].block_hash());
        assert_eq!(roots[0].1, c[3].block_hash());
    }

    #[test]
    fn orphan_pool_limit() {
        // Everything but the genesis, genesis last: the pool holds ORPHAN_BLOCKS_MAX blocks exactly.
        let c = chain(ORPHAN_BLOCKS_MAX + 2);
        let mut asm = Assembler::new([]);
        for (i, b) in c[1..=ORPHAN_BLOCKS_MAX].iter().enumerate() {
            assert!(matches!(
                asm.push(b.clone(), origin(i as u64)).unwrap(),
                Pushed::Waiting
            ));
        }
        assert_eq!(asm.waiting(), ORPHAN_BLOCKS_MAX);
        // One past the limit.
        let err = asm
            .push(c[ORPHAN_BLOCKS_MAX + 1].clone(), origin(0))
            .unwrap_err();
        assert!(
            matches!(err, AssembleError::OrphanPoolFull { count, .. } if count == ORPHAN_BLOCKS_MAX + 1)
        );
        let Pushed::Ready(r) = asm.push(c[0].clone(), origin(0)).unwrap() else {
            panic!("genesis not ready")
        };
        assert_eq!(r.len(), ORPHAN_BLOCKS_MAX + 1);
        assert_eq!(asm.waiting(), 0);
    }

    #[test]
    fn any_order_within_the_limit_assembles_the_whole_chain() {
        use rand::seq::SliceRandom;
        use rand::{Rng, SeedableRng};
        let c = chain(200);
        let want: std::collections::HashSet<_> = c.iter().map(Block::block_hash).collect();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        for _ in 0..50 {
            let mut shuffled = c.clone();
            // Shuffle within windows of random size, as parallel downloads do.
            let w = rng.random_range(1..=64);
            for chunk in shuffled.chunks_mut(w) {
                chunk.shuffle(&mut rng);
            }
            // Some duplicates too.
            let dups: Vec<Block> = (0..10)
                .map(|_| c[rng.random_range(0..c.len())].clone())
                .collect();
            shuffled.extend(dups);
            let mut asm = Assembler::new([]);
            let out = drain(&mut asm, shuffled);
            assert_eq!(out.len(), c.len());
            assert_eq!(
                out.iter()
                    .copied()
                    .collect::<std::collections::HashSet<_>>(),
                want
            );
            // Parent first: each block's parent came out before it.
            let pos: HashMap<BlockHash, usize> =
                out.iter().enumerate().map(|(i, h)| (*h, i)).collect();
            for b in &c[1..] {
                assert!(pos[&b.header.prev_blockhash] < pos[&b.block_hash()]);
            }
            assert_eq!(asm.waiting(), 0);
        }
    }
}
