//! The JSON form of a proof (serde): the same content as the binary encoding, with hashes in hex and
//! txids in the usual display order (`txid:vout`), so `l2btc prove --json` output reads like Core's.
//!
//! ```json
//! {"version":1,
//!  "claims":[{"outpoint":"<txid>:0","present":{"amount":5000,"height":7,"is_coinbase":false,"script":"51"}},
//!            {"outpoint":"<txid>:1","present":null}],
//!  "nodes":["inner",{"hash":"<64 hex>"},{"bucket":[{"key8":"<16 hex>","body":"<64 hex>"}]}]}
//! ```

use serde::{Deserialize, Serialize};

use crate::verify::{
    BUCKET_MAX, Claim, DecodeError, Entry, LeafCoin, OutPointBytes, PROOF_VERSION, Proof, ProofNode,
};

/// A claimed coin in JSON.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct CoinJson {
    /// Satoshis.
    pub amount: u64,
    /// Creating block height.
    pub height: u32,
    /// Coinbase flag.
    pub is_coinbase: bool,
    /// scriptPubKey, hex.
    pub script: String,
}

/// A claim in JSON: `present` is the coin for an inclusion, `null` for an exclusion.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct ClaimJson {
    /// `txid:vout`, txid in display (reversed) byte order.
    pub outpoint: String,
    /// The coin, or `null` when the claim is that the outpoint is absent.
    pub present: Option<CoinJson>,
}

/// A revealed entry in JSON.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct EntryJson {
    /// First 8 key bytes, hex.
    pub key8: String,
    /// Body, hex.
    pub body: String,
}

/// A tree node in JSON (pre-order, as in the binary form; a bucket carries its entries).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum NodeJson {
    /// Empty set.
    Empty,
    /// Inner node.
    Inner,
    /// Pruned subtree hash, hex.
    Hash(String),
    /// Revealed bucket.
    Bucket(Vec<EntryJson>),
}

/// A whole proof in JSON.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct ProofJson {
    /// Encoding version ([`PROOF_VERSION`]).
    pub version: u8,
    /// The claims.
    pub claims: Vec<ClaimJson>,
    /// The tree in pre-order.
    pub nodes: Vec<NodeJson>,
}

/// Why a JSON proof was rejected.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JsonError {
    /// Not valid JSON of the expected shape.
    #[error("proof json: {0}")]
    Syntax(#[from] serde_json::Error),
    /// A field has the wrong format.
    #[error("proof json field {field}: {reason}")]
    Field {
        /// Which field.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The content breaks a bound of the binary form.
    #[error("proof json: {0}")]
    Bounds(DecodeError),
}

fn field(field: &'static str, reason: impl Into<String>) -> JsonError {
    JsonError::Field {
        field,
        reason: reason.into(),
    }
}

fn hex_array<const N: usize>(name: &'static str, text: &str) -> Result<[u8; N], JsonError> {
    let bytes = hex::decode(text).map_err(|e| field(name, e.to_string()))?;
    bytes
        .try_into()
        .map_err(|_| field(name, format!("expected {N} bytes")))
}

fn display_txid(txid: &[u8; 32]) -> String {
    let mut rev = *txid;
    rev.reverse();
    hex::encode(rev)
}

fn parse_outpoint(text: &str) -> Result<OutPointBytes, JsonError> {
    let (txid, vout) = text
        .split_once(':')
        .ok_or_else(|| field("outpoint", "expected txid:vout"))?;
    let mut txid: [u8; 32] = hex_array("outpoint", txid)?;
    txid.reverse();
    let vout = vout.parse().map_err(|_| field("outpoint", "bad vout"))?;
    Ok(OutPointBytes { txid, vout })
}

impl Proof {
    /// The JSON form (see the module docs).
    pub fn to_json_value(&self) -> ProofJson {
        let claims = self
            .claims
            .iter()
            .map(|c| match c {
                Claim::Present { outpoint, coin } => ClaimJson {
                    outpoint: format!("{}:{}", display_txid(&outpoint.txid), outpoint.vout),
                    present: Some(CoinJson {
                        amount: coin.amount,
                        height: coin.height,
                        is_coinbase: coin.is_coinbase,
                        script: hex::encode(&coin.script),
                    }),
                },
                Claim::Absent { outpoint } => ClaimJson {
                    outpoint: format!("{}:{}", display_txid(&outpoint.txid), outpoint.vout),
                    present: None,
                },
            })
            .collect();
        let mut entries = self.entries.iter();
        let nodes = self
            .nodes
            .iter()
            .map(|n| match n {
                ProofNode::Empty => NodeJson::Empty,
                ProofNode::Inner => NodeJson::Inner,
                ProofNode::Hash(h) => NodeJson::Hash(hex::encode(h)),
                ProofNode::Bucket(count) => NodeJson::Bucket(
                    entries
                        .by_ref()
                        .take(usize::from(*count))
                        .map(|e| EntryJson {
                            key8: hex::encode(e.key8),
                            body: hex::encode(e.body),
                        })
                        .collect(),
                ),
            })
            .collect();
        ProofJson {
            version: PROOF_VERSION,
            claims,
            nodes,
        }
    }

    /// The JSON form as a string.
    pub fn to_json(&self) -> String {
        serde_json::to_string(&self.to_json_value()).unwrap_or_default()
    }

    /// Reads the JSON form. The result is checked against the binary form's bounds (it decodes
    /// from its own encoding), so it is safe to pass to [`crate::verify()`].
    ///
    /// # Errors
    /// [`JsonError`] on bad syntax, field formats or bounds.
    pub fn from_json(text: &str) -> Result<Proof, JsonError> {
        let json: ProofJson = serde_json::from_str(text)?;
        if json.version != PROOF_VERSION {
            return Err(JsonError::Bounds(DecodeError::Version {
                found: json.version,
            }));
        }
        if json.claims.is_empty() || json.claims.len() > crate::verify::CLAIMS_MAX {
            return Err(JsonError::Bounds(DecodeError::ClaimCount {
                count: json.claims.len(),
            }));
        }
        if json.nodes.is_empty() || json.nodes.len() > crate::verify::PROOF_NODES_MAX {
            return Err(JsonError::Bounds(DecodeError::NodeCount {
                count: json.nodes.len(),
            }));
        }
        let mut claims = Vec::with_capacity(json.claims.len());
        for c in &json.claims {
            let outpoint = parse_outpoint(&c.outpoint)?;
            claims.push(match &c.present {
                None => Claim::Absent { outpoint },
                Some(coin) if coin.script.len() > 2 * crate::verify::SCRIPT_SIZE_MAX => {
                    return Err(JsonError::Bounds(DecodeError::ScriptTooLong {
                        len: coin.script.len() / 2,
                    }));
                }
                Some(coin) => Claim::Present {
                    outpoint,
                    coin: LeafCoin {
                        amount: coin.amount,
                        height: coin.height,
                        is_coinbase: coin.is_coinbase,
                        script: hex::decode(&coin.script)
                            .map_err(|e| field("script", e.to_string()))?,
                    },
                },
            });
        }
        let mut nodes = Vec::with_capacity(json.nodes.len());
        let mut entries = Vec::new();
        for n in &json.nodes {
            nodes.push(match n {
                NodeJson::Empty => ProofNode::Empty,
                NodeJson::Inner => ProofNode::Inner,
                NodeJson::Hash(h) => ProofNode::Hash(hex_array("hash", h)?),
                NodeJson::Bucket(list) => {
                    if list.is_empty() || list.len() > BUCKET_MAX {
                        return Err(JsonError::Bounds(DecodeError::BucketSize {
                            count: list.len(),
                        }));
                    }
                    for e in list {
                        entries.push(Entry {
                            key8: hex_array("key8", &e.key8)?,
                            body: hex_array("body", &e.body)?,
                        });
                    }
                    ProofNode::Bucket(u8::try_from(list.len()).unwrap_or(u8::MAX))
                }
            });
        }
        let proof = Proof {
            claims,
            nodes,
            entries,
        };
        // Same bounds as the binary decoder: round-trip through it.
        Proof::decode(&proof.encode()).map_err(JsonError::Bounds)
    }
}
