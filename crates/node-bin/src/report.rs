//! Printing UTXO statistics the way Bitcoin Core's `gettxoutsetinfo` does: same field names, hashes in
//! Core's display byte order, amounts in BTC with exactly 8 decimals (formatted from satoshis as
//! integer text, never through a float).

use std::fmt::Write as _;

use bitcoin::{Amount, BlockHash};

/// The statistics of one UTXO set tip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatsReport {
    /// Height of the tip.
    pub height: u32,
    /// Hash of the tip.
    pub bestblock: BlockHash,
    /// Number of unspent outputs.
    pub txouts: u64,
    /// Core's size estimate: 50 + script length per coin, summed.
    pub bogosize: u64,
    /// Sum of all coins.
    pub total_amount: Amount,
    /// MuHash3072 of the set, display hex.
    pub muhash: String,
    /// `hash_serialized_3` of the set, display hex.
    pub hash_serialized_3: String,
    /// Root of our `merkle-proofs` commitment to the set, hex (not a Core figure).
    pub commitment_root: String,
}

/// `amount` in BTC with exactly 8 decimals, e.g. `8724.98074106`.
pub fn format_btc(amount: Amount) -> String {
    let sat = amount.to_sat();
    format!("{}.{:08}", sat / 100_000_000, sat % 100_000_000)
}

impl StatsReport {
    /// A JSON object with Core's field names, plus `commitment_root`; `total_amount` is a JSON number
    /// with 8 decimals.
    pub fn to_json(&self) -> String {
        let mut s = String::from("{\n");
        let _ = writeln!(s, "  \"height\": {},", self.height);
        let _ = writeln!(s, "  \"bestblock\": \"{}\",", self.bestblock);
        let _ = writeln!(s, "  \"txouts\": {},", self.txouts);
        let _ = writeln!(s, "  \"bogosize\": {},", self.bogosize);
        let _ = writeln!(s, "  \"total_amount\": {},", format_btc(self.total_amount));
        let _ = writeln!(s, "  \"muhash\": \"{}\",", self.muhash);
        let _ = writeln!(
            s,
            "  \"hash_serialized_3\": \"{}\",",
            self.hash_serialized_3
        );
        let _ = writeln!(s, "  \"commitment_root\": \"{}\"", self.commitment_root);
        s.push('}');
        s
    }

    /// A readable two-column table.
    pub fn to_table(&self) -> String {
        let rows = [
            ("height", self.height.to_string()),
            ("bestblock", self.bestblock.to_string()),
            ("txouts", self.txouts.to_string()),
            ("bogosize", self.bogosize.to_string()),
            (
                "total_amount",
                format!("{} BTC", format_btc(self.total_amount)),
            ),
            ("muhash", self.muhash.clone()),
            ("hash_serialized_3", self.hash_serialized_3.clone()),
            ("commitment_root", self.commitment_root.clone()),
        ];
        let mut s = String::new();
        for (k, v) in rows {
            let _ = writeln!(s, "{k:<18} {v}");
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bitcoin::hashes::Hash;

    #[test]
    fn btc_has_eight_decimals() {
        assert_eq!(
            format_btc(Amount::from_sat(872_498_074_106)),
            "8724.98074106"
        );
        assert_eq!(format_btc(Amount::ZERO), "0.00000000");
        assert_eq!(format_btc(Amount::from_sat(1)), "0.00000001");
        assert_eq!(format_btc(Amount::MAX_MONEY), "21000000.00000000");
    }

    #[test]
    fn json_parses_and_keeps_the_amount_text() {
        let r = StatsReport {
            height: 7,
            bestblock: BlockHash::all_zeros(),
            txouts: 2,
            bogosize: 120,
            total_amount: Amount::from_sat(500_000_000),
            muhash: "ab".into(),
            hash_serialized_3: "cd".into(),
            commitment_root: "ef".into(),
        };
        let j = r.to_json();
        let v: serde_json::Value = serde_json::from_str(&j).unwrap();
        assert_eq!(v["height"], 7);
        assert!(j.contains("\"total_amount\": 5.00000000,"), "{j}");
    }
}
