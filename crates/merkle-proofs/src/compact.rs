//! The compact layout of a [`Commitment`](crate::Commitment): a small set's entries in one sorted
//! vector, 40 bytes each and nothing else, with the tree derived from them when a root or a proof
//! is asked for. A payment channel's ledger (tens of outputs) or a test set then costs a few
//! kilobytes instead of the paged layout's fixed ~8.5 MB of pages and upper tree.
//!
//! The tree is the commitment's definition itself (see the crate docs): a run of entries sharing a
//! key prefix hashes flat as one bucket when it has at most [`BUCKET_MAX`] entries, else it splits
//! at the first bit where its first and last entries differ. The paged layout computes the same
//! tree from cached parts; the two agree on every root and proof (tested).

use crate::commitment::{Batch, Prover};
use crate::verify::{BUCKET_MAX, Entry, Proof, ProofNode, Root, bucket_hash, node_hash};

/// Bits of the composite key `key8 ‖ body`.
const COMPOSITE_BITS: usize = 40 * 8;

fn composite_bit(e: &Entry, d: usize) -> bool {
    let byte = if d < 64 {
        e.key8[d / 8]
    } else {
        e.body[d / 8 - 8]
    };
    (byte >> (7 - d % 8)) & 1 == 1
}

/// First composite bit at which two distinct entries differ.
fn first_diff(a: &Entry, b: &Entry) -> usize {
    let bytes = |e: &Entry| {
        let mut c = [0u8; 40];
        c[..8].copy_from_slice(&e.key8);
        c[8..].copy_from_slice(&e.body);
        c
    };
    let (a, b) = (bytes(a), bytes(b));
    for i in 0..40 {
        let x = a[i] ^ b[i];
        if x != 0 {
            return i * 8 + usize::try_from(x.leading_zeros()).unwrap_or(0);
        }
    }
    COMPOSITE_BITS
}

/// Where a run of more than `BUCKET_MAX` sorted entries splits.
fn split(slice: &[Entry]) -> usize {
    let d = first_diff(&slice[0], &slice[slice.len() - 1]);
    slice.partition_point(|e| !composite_bit(e, d))
}

/// Hash of the subtree over a run of sorted entries (non-empty).
fn tree_hash(slice: &[Entry]) -> [u8; 32] {
    if slice.len() <= BUCKET_MAX {
        return bucket_hash(slice.iter().copied());
    }
    let mid = split(slice);
    node_hash(&tree_hash(&slice[..mid]), &tree_hash(&slice[mid..]))
}

/// A small set: its sorted entries and its root, recomputed after each change.
#[derive(Clone, Debug)]
pub(crate) struct Compact {
    entries: Vec<Entry>,
    root: Root,
}

impl Compact {
    /// The set of sorted, distinct entries.
    pub(crate) fn from_sorted_entries(entries: Vec<Entry>) -> Compact {
        let mut c = Compact {
            entries,
            root: Root::empty(),
        };
        c.rehash();
        c
    }

    fn rehash(&mut self) {
        self.root = if self.entries.is_empty() {
            Root::empty()
        } else {
            Root(tree_hash(&self.entries))
        };
    }

    pub(crate) fn entries(&self) -> &[Entry] {
        &self.entries
    }

    pub(crate) fn root(&self) -> Root {
        self.root
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.entries.capacity() * std::mem::size_of::<Entry>()
    }

    pub(crate) fn contains(&self, e: &Entry) -> bool {
        self.entries.binary_search(e).is_ok()
    }

    /// Applies a batch already checked against this set ([`Batch::check`]).
    pub(crate) fn apply_batch(&mut self, batch: &Batch) {
        let mut merged = Vec::with_capacity(
            (self.entries.len() + batch.inserts.len()).saturating_sub(batch.removes.len()),
        );
        let mut removes = batch.removes.iter().map(|r| &r.0).peekable();
        let mut inserts = batch.inserts.iter().map(|n| &n.0).peekable();
        for e in &self.entries {
            while let Some(n) = inserts.next_if(|n| *n < e) {
                merged.push(*n);
            }
            if removes.next_if(|r| *r == e).is_some() {
                // Removed, possibly re-inserted by the same batch.
                if let Some(n) = inserts.next_if(|n| *n == e) {
                    merged.push(*n);
                }
                continue;
            }
            merged.push(*e);
        }
        merged.extend(inserts);
        self.entries = merged;
        self.rehash();
    }

    /// Pre-order nodes of the subtree over `slice` (starting at index `lo`), revealing the buckets
    /// holding `targets` (indices, sorted).
    fn build(&self, slice: &[Entry], lo: usize, targets: &[usize], proof: &mut Proof) {
        if targets.is_empty() {
            proof.nodes.push(ProofNode::Hash(tree_hash(slice)));
            return;
        }
        if slice.len() <= BUCKET_MAX {
            proof.nodes.push(ProofNode::Bucket(
                u8::try_from(slice.len()).unwrap_or(u8::MAX),
            ));
            proof.entries.extend_from_slice(slice);
            return;
        }
        let mid = split(slice);
        let cut = targets.partition_point(|&t| t < lo + mid);
        proof.nodes.push(ProofNode::Inner);
        self.build(&slice[..mid], lo, &targets[..cut], proof);
        self.build(&slice[mid..], lo + mid, &targets[cut..], proof);
    }
}

impl Prover for Compact {
    fn len(&self) -> usize {
        self.entries.len()
    }

    fn position(&self, e: &Entry) -> Option<(usize, usize)> {
        self.entries.binary_search(e).ok().map(|i| (0, i))
    }

    fn neighbours(&self, key8: &[u8; 8]) -> Option<[Option<(usize, usize)>; 2]> {
        let pos = self.entries.partition_point(|e| e.key8 < *key8);
        if self.entries.get(pos).is_some_and(|e| e.key8 == *key8) {
            return None;
        }
        let below = pos.checked_sub(1).map(|i| (0, i));
        let above = (pos < self.entries.len()).then_some((0, pos));
        Some([below, above])
    }

    fn build_tree(&self, targets: &[(usize, usize)], proof: &mut Proof) {
        let idx: Vec<usize> = targets.iter().map(|t| t.1).collect();
        self.build(&self.entries, 0, &idx, proof);
    }
}
