//! [`Builder`]: a commitment built from coins fed one at a time, as a store or a snapshot streams
//! them, holding 40 bytes per coin (its entry) rather than the coins themselves.

use bitcoin::OutPoint;

use crate::commitment::{BuildError, CoinView, Commitment, Layout, entry_of};
use crate::verify::Entry;

/// Collects the entries of a set's coins, in any order, then builds its [`Commitment`].
///
/// Memory while collecting is 40 bytes per coin (the entry: key prefix and body hash), so a node
/// can rebuild the commitment of a set it never holds in memory as coins: `snapshot import`
/// checking a file's root, or the rebuild at open from the store.
///
/// ```
/// use bitcoin::{OutPoint, Txid, hashes::Hash};
/// use merkle_proofs::{Builder, Commitment, LeafCoin};
///
/// let coins: Vec<(OutPoint, LeafCoin)> = (0..10u8)
///     .map(|i| {
///         let op = OutPoint { txid: Txid::from_byte_array([i; 32]), vout: 0 };
///         (op, LeafCoin { amount: 1_000, height: 1, is_coinbase: false, script: vec![0x51] })
///     })
///     .collect();
/// let mut b = Builder::new();
/// for (op, coin) in coins.iter().rev() {
///     b.push(op, coin);
/// }
/// let built = b.finish().unwrap();
/// let direct = Commitment::from_coins(coins.iter().map(|(o, c)| (o, c))).unwrap();
/// assert_eq!(built.root(), direct.root());
/// ```
#[derive(Clone, Debug, Default)]
pub struct Builder {
    entries: Vec<Entry>,
    layout: Layout,
}

impl Builder {
    /// An empty builder ([`Layout::Auto`]).
    pub fn new() -> Builder {
        Builder::default()
    }

    /// An empty builder for about `coins` coins, laid out as `layout` when finished.
    pub fn with_capacity(coins: usize, layout: Layout) -> Builder {
        Builder {
            entries: Vec::with_capacity(coins),
            layout,
        }
    }

    /// Adds a coin.
    pub fn push<C: CoinView + ?Sized>(&mut self, outpoint: &OutPoint, coin: &C) {
        self.entries.push(entry_of(outpoint, coin));
    }

    /// Coins added so far.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no coin was added.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Sorts the entries and builds the commitment.
    ///
    /// # Errors
    /// [`BuildError::DuplicateEntry`] if a coin was added twice (the builder keeps no outpoints,
    /// so the error names the coin's key prefix).
    pub fn finish(mut self) -> Result<Commitment, BuildError> {
        self.entries.sort_unstable();
        if let Some(w) = self.entries.windows(2).find(|w| w[0] == w[1]) {
            return Err(BuildError::DuplicateEntry {
                key_prefix: w[0].key8,
            });
        }
        Ok(Commitment::from_entries(self.entries, self.layout))
    }
}
