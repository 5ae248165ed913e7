//! The consensus parameters block application needs: subsidy schedule, coinbase maturity and the two
//! historic BIP30 exceptions.

use bitcoin::{Amount, BlockHash, Network};

/// Blocks a coinbase output must wait before it can be spent (Core's `COINBASE_MATURITY`).
pub const COINBASE_MATURITY: u32 = 100;

/// Height from which BIP30 is checked again on a chain where BIP34 holds (Core's
/// `BIP34_IMPLIES_BIP30_LIMIT`): coinbases mined before BIP34 may indicate this height or later,
/// so a later block could repeat one of them.
pub const BIP34_IMPLIES_BIP30_LIMIT: u32 = 1_983_702;

/// The per-network rules that affect the UTXO set's bookkeeping.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainParams {
    /// Blocks between subsidy halvings (210,000 on mainnet, 150 on regtest).
    pub subsidy_halving_interval: u32,
    /// Blocks at which a duplicate coinbase was allowed to overwrite an unspent one (BIP30's two
    /// historic mainnet exceptions), as (height, hash).
    pub bip30_exceptions: Vec<(u32, BlockHash)>,
    /// The block at which BIP34 took effect, as (height, hash) (Core's `BIP34Height` and
    /// `BIP34Hash`), on networks where such a block exists (mainnet, testnet3). On a chain holding
    /// that block, a transaction cannot repeat an earlier txid below
    /// [`BIP34_IMPLIES_BIP30_LIMIT`], so Core skips the BIP30 lookups there; see
    /// [`ChainParams::checks_bip30`].
    pub bip34: Option<(u32, BlockHash)>,
}

impl ChainParams {
    /// The parameters of `network`.
    ///
    /// ```
    /// let regtest = utxo_core::ChainParams::for_network(bitcoin::Network::Regtest);
    /// assert_eq!(regtest.subsidy(150).to_sat(), 25 * 100_000_000);
    /// ```
    pub fn for_network(network: Network) -> ChainParams {
        match network {
            Network::Regtest => ChainParams {
                subsidy_halving_interval: 150,
                bip30_exceptions: Vec::new(),
                bip34: None,
            },
            Network::Bitcoin => ChainParams {
                subsidy_halving_interval: 210_000,
                bip30_exceptions: vec![
                    (
                        91_842,
                        block_hash(
                            "00000000000a4d0a398161ffc163c503763b1f4360639393e0e4c8e300e0caec",
                        ),
                    ),
                    (
                        91_880,
                        block_hash(
                            "00000000000743f190a18c5577a3c2d2a1f610ae9601ac046a38084ccb7cd721",
                        ),
                    ),
                ],
                bip34: Some((
                    227_931,
                    block_hash("000000000000024b89b42a942fe0d9fea3bb44ab7bd1b19115dd6a759c0808b8"),
                )),
            },
            Network::Testnet => ChainParams {
                subsidy_halving_interval: 210_000,
                bip30_exceptions: Vec::new(),
                bip34: Some((
                    21_111,
                    block_hash("0000000023b3a96d3484e5abb3755c413e7d41500f8e2a5c3f0dd01299cd8ef8"),
                )),
            },
            // Signet, testnet4: BIP34 from height 1 with no hash to match, so BIP30 is always
            // checked (as on regtest).
            _ => ChainParams {
                subsidy_halving_interval: 210_000,
                bip30_exceptions: Vec::new(),
                bip34: None,
            },
        }
    }

    /// The block subsidy at `height` (Core's `GetBlockSubsidy`).
    pub fn subsidy(&self, height: u32) -> Amount {
        let halvings = height / self.subsidy_halving_interval.max(1);
        if halvings >= 64 {
            return Amount::ZERO;
        }
        Amount::from_sat((50 * 100_000_000u64) >> halvings)
    }

    /// Whether a block at `height` must have its new outpoints checked against BIP30, given the
    /// hash of the block at [`ChainParams::bip34`]'s height on its chain (`None`: not known).
    /// Core's `ConnectBlock` skips the check when that block is BIP34's and `height` is below
    /// [`BIP34_IMPLIES_BIP30_LIMIT`]; everywhere else, and whenever the ancestor is unknown, it
    /// applies.
    ///
    /// ```
    /// use utxo_core::ChainParams;
    /// let main = ChainParams::for_network(bitcoin::Network::Bitcoin);
    /// let (_, bip34) = main.bip34.unwrap();
    /// assert!(!main.checks_bip30(850_000, Some(&bip34)));
    /// assert!(main.checks_bip30(850_000, None));
    /// assert!(main.checks_bip30(2_000_000, Some(&bip34)));
    /// ```
    pub fn checks_bip30(&self, height: u32, bip34_ancestor: Option<&BlockHash>) -> bool {
        match (&self.bip34, bip34_ancestor) {
            (Some((bip34_height, bip34_hash)), Some(ancestor)) => {
                height <= *bip34_height
                    || ancestor != bip34_hash
                    || height >= BIP34_IMPLIES_BIP30_LIMIT
            }
            _ => true,
        }
    }

    /// Whether the block at `height` with `hash` may overwrite unspent coinbase outputs.
    pub fn is_bip30_exception(&self, height: u32, hash: &BlockHash) -> bool {
        self.bip30_exceptions
            .iter()
            .any(|(h, b)| *h == height && b == hash)
    }
}

impl Default for ChainParams {
    fn default() -> Self {
        ChainParams::for_network(Network::Bitcoin)
    }
}

fn block_hash(display_hex: &str) -> BlockHash {
    display_hex.parse().expect("a constant, valid block hash")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subsidy_halves_and_ends() {
        let main = ChainParams::for_network(Network::Bitcoin);
        assert_eq!(main.subsidy(0).to_sat(), 5_000_000_000);
        assert_eq!(main.subsidy(209_999).to_sat(), 5_000_000_000);
        assert_eq!(main.subsidy(210_000).to_sat(), 2_500_000_000);
        assert_eq!(main.subsidy(210_000 * 64).to_sat(), 0);
    }

    #[test]
    fn bip30_exception_hashes_parse_in_display_order() {
        let main = ChainParams::for_network(Network::Bitcoin);
        let (h, hash) = main.bip30_exceptions[0];
        assert_eq!(h, 91_842);
        assert_eq!(
            hash.to_string(),
            "00000000000a4d0a398161ffc163c503763b1f4360639393e0e4c8e300e0caec"
        );
        assert!(main.is_bip30_exception(91_842, &hash));
        assert!(!main.is_bip30_exception(91_843, &hash));
    }

    #[test]
    fn bip30_is_skipped_only_between_bip34_and_its_limit_on_the_bip34_chain() {
        let main = ChainParams::for_network(Network::Bitcoin);
        let (height, hash) = main
            .bip34
            .unwrap_or_else(|| unreachable!("mainnet has BIP34"));
        assert_eq!(height, 227_931);
        let other = block_hash("00000000000a4d0a398161ffc163c503763b1f4360639393e0e4c8e300e0caec");
        // At and below BIP34's block, and from the limit on: checked.
        assert!(main.checks_bip30(height, Some(&hash)));
        assert!(!main.checks_bip30(height + 1, Some(&hash)));
        assert!(!main.checks_bip30(BIP34_IMPLIES_BIP30_LIMIT - 1, Some(&hash)));
        assert!(main.checks_bip30(BIP34_IMPLIES_BIP30_LIMIT, Some(&hash)));
        // Another chain, or an unknown ancestor: checked.
        assert!(main.checks_bip30(height + 1, Some(&other)));
        assert!(main.checks_bip30(height + 1, None));
        // Networks without a BIP34 block: always checked.
        let regtest = ChainParams::for_network(Network::Regtest);
        assert!(regtest.checks_bip30(height + 1, Some(&hash)));
        let signet = ChainParams::for_network(Network::Signet);
        assert!(signet.checks_bip30(height + 1, Some(&hash)));
        let testnet = ChainParams::for_network(Network::Testnet);
        assert!(testnet.checks_bip30(21_112, None));
        assert!(!testnet.checks_bip30(
            21_112,
            Some(&block_hash(
                "0000000023b3a96d3484e5abb3755c413e7d41500f8e2a5c3f0dd01299cd8ef8"
            ))
        ));
    }
}
