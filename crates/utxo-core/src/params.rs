//! The consensus parameters block application needs: subsidy schedule, coinbase maturity and the two
//! historic BIP30 exceptions.

use bitcoin::{Amount, BlockHash, Network};

/// Blocks a coinbase output must wait before it can be spent (Core's `COINBASE_MATURITY`).
pub const COINBASE_MATURITY: u32 = 100;

/// The per-network rules that affect the UTXO set's bookkeeping.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainParams {
    /// Blocks between subsidy halvings (210,000 on mainnet, 150 on regtest).
    pub subsidy_halving_interval: u32,
    /// Blocks at which a duplicate coinbase was allowed to overwrite an unspent one (BIP30's two
    /// historic mainnet exceptions), as (height, hash).
    pub bip30_exceptions: Vec<(u32, BlockHash)>,
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
            },
            _ => ChainParams {
                subsidy_halving_interval: 210_000,
                bip30_exceptions: Vec::new(),
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
}
