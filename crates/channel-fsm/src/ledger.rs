//! The versioned ledger of internal outputs inside a channel, transfers between participants, their
//! validation, and the state root that every participant co-signs (with inclusion proofs so a
//! participant can prove one of its outputs against a co-signed root).
//!
//! The root is computed in one place ([`state_root`]) over the outputs sorted by id. It is a blake3
//! binary Merkle tree with domain-separated leaf and node hashes; it is kept here rather than taken
//! from `merkle-proofs` because that crate's API is keyed by Bitcoin outpoints and coins and was not
//! yet published when this layer was written. Swapping it only touches [`state_root`],
//! [`Ledger::prove`] and [`InclusionProof::verify`].

use std::collections::BTreeMap;

use bitcoin::Amount;
use bitcoin::hashes::{Hash, HashEngine, sha256};
use serde::{Deserialize, Serialize};

use crate::sig::{DefaultBackend, SigBackend};
use crate::tx::DUST_LIMIT;

/// Most transfers in one state update.
pub const TRANSFERS_PER_UPDATE_MAX: usize = 64;
/// Most inputs of one transfer.
pub const TRANSFER_INPUTS_MAX: usize = 16;
/// Most outputs of one transfer.
pub const TRANSFER_OUTPUTS_MAX: usize = 16;
/// Most internal outputs a ledger holds.
pub const LEDGER_OUTPUTS_MAX: usize = 4096;

/// A channel's identifier: SHA256 of the funding outpoint (txid bytes then vout little-endian).
pub type ChannelId = [u8; 32];

/// Identifies an internal output: the version that created it and its position among that version's
/// new outputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct OutputId {
    /// Version that created it.
    pub version: u64,
    /// Index among that version's created outputs.
    pub index: u32,
}

/// An internal output: an amount owned by one participant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct InternalOutput {
    /// Participant index (fixed order).
    pub owner: u16,
    /// Amount.
    pub amount: Amount,
}

/// A transfer: `sender` spends some of its current internal outputs into new outputs, signed with
/// its state key over [`Transfer::digest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transfer {
    /// Who spends.
    pub sender: u16,
    /// Outputs spent (must be current and owned by `sender`).
    pub inputs: Vec<OutputId>,
    /// Outputs created.
    pub outputs: Vec<InternalOutput>,
    /// BIP340 signature of the sender.
    #[serde(with = "sig64")]
    pub signature: [u8; 64],
}

pub(crate) mod sig64 {
    //! serde for 64-byte signatures (serde's array support stops at 32).
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(sig: &[u8; 64], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(sig)
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 64], D::Error> {
        let v: &[u8] = <&[u8]>::deserialize(d)?;
        v.try_into()
            .map_err(|_| serde::de::Error::invalid_length(v.len(), &"64 bytes"))
    }
}

/// Why a transfer or update was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TransferError {
    /// No inputs or no outputs.
    #[error("transfer {transfer} has no inputs or no outputs")]
    Empty {
        /// Position in the update.
        transfer: usize,
    },
    /// A bound was exceeded.
    #[error("{what}: {got} above limit {max}")]
    Limit {
        /// Which bound.
        what: &'static str,
        /// Value.
        got: usize,
        /// Limit.
        max: usize,
    },
    /// An input is not a current output (spent earlier, never existed, or listed twice).
    #[error("transfer {transfer}: input {input:?} is not current")]
    InputNotCurrent {
        /// Position in the update.
        transfer: usize,
        /// The input.
        input: OutputId,
    },
    /// An input belongs to someone other than the sender.
    #[error("transfer {transfer}: input {input:?} is owned by {owner}, not sender {sender}")]
    NotOwner {
        /// Position.
        transfer: usize,
        /// The input.
        input: OutputId,
        /// Its owner.
        owner: u16,
        /// The sender.
        sender: u16,
    },
    /// The sender's signature does not verify.
    #[error("transfer {transfer}: bad signature from {sender}")]
    BadSignature {
        /// Position.
        transfer: usize,
        /// Sender.
        sender: u16,
    },
    /// Outputs add up to more than inputs.
    #[error("transfer {transfer}: outputs {outputs} sat exceed inputs {inputs} sat")]
    OutputsExceedInputs {
        /// Position.
        transfer: usize,
        /// Input sum.
        inputs: u64,
        /// Output sum.
        outputs: u64,
    },
    /// Outputs add up to less than inputs (value would vanish inside the channel).
    #[error("transfer {transfer}: outputs {outputs} sat below inputs {inputs} sat")]
    ValueNotConserved {
        /// Position.
        transfer: usize,
        /// Input sum.
        inputs: u64,
        /// Output sum.
        outputs: u64,
    },
    /// A sum overflowed or an amount exceeded MAX_MONEY.
    #[error("transfer {transfer}: amount overflow")]
    Overflow {
        /// Position.
        transfer: usize,
    },
    /// An output below the dust limit.
    #[error("transfer {transfer}: output {output} of {amount} sat is dust")]
    Dust {
        /// Position.
        transfer: usize,
        /// Output position.
        output: usize,
        /// Its amount.
        amount: u64,
    },
    /// An output owner that is not a participant, or a sender that is not.
    #[error("transfer {transfer}: participant {index} does not exist")]
    NoSuchParticipant {
        /// Position.
        transfer: usize,
        /// The index.
        index: u16,
    },
}

fn tagged(tag: &str) -> sha256::HashEngine {
    let t = sha256::Hash::hash(tag.as_bytes());
    let mut e = sha256::Hash::engine();
    e.input(t.as_byte_array());
    e.input(t.as_byte_array());
    e
}

impl Transfer {
    /// The BIP340-style tagged hash the sender signs: tag `channel-fsm/transfer`, over the channel id,
    /// the version the transfer applies to (the current version), sender, inputs and outputs.
    pub fn digest(&self, channel_id: &ChannelId, base_version: u64) -> [u8; 32] {
        let mut e = tagged("channel-fsm/transfer");
        e.input(channel_id);
        e.input(&base_version.to_le_bytes());
        e.input(&self.sender.to_le_bytes());
        e.input(&(self.inputs.len() as u64).to_le_bytes());
        for i in &self.inputs {
            e.input(&i.version.to_le_bytes());
            e.input(&i.index.to_le_bytes());
        }
        e.input(&(self.outputs.len() as u64).to_le_bytes());
        for o in &self.outputs {
            e.input(&o.owner.to_le_bytes());
            e.input(&o.amount.to_sat().to_le_bytes());
        }
        sha256::Hash::from_engine(e).to_byte_array()
    }
}

/// The tagged hash every participant signs for a state version: tag `channel-fsm/state`, over
/// (channel id, version, state root).
pub fn state_digest(channel_id: &ChannelId, version: u64, root: &[u8; 32]) -> [u8; 32] {
    let mut e = tagged("channel-fsm/state");
    e.input(channel_id);
    e.input(&version.to_le_bytes());
    e.input(root);
    sha256::Hash::from_engine(e).to_byte_array()
}

/// Verifies the state signatures `sigs[range]` (participant order) over (channel id, version, root);
/// returns the index of the first bad one. Callers may split the range across threads.
///
/// # Errors
/// The index of the first signature that does not verify.
pub fn verify_state_signatures(
    channel_id: &ChannelId,
    version: u64,
    root: &[u8; 32],
    keys: &[<DefaultBackend as SigBackend>::XOnlyPublic],
    sigs: &[[u8; 64]],
    range: std::ops::Range<usize>,
) -> Result<(), usize> {
    let digest = state_digest(channel_id, version, root);
    for i in range {
        let (Some(k), Some(s)) = (keys.get(i), sigs.get(i)) else {
            return Err(i);
        };
        DefaultBackend::schnorr_verify(k, &digest, s).map_err(|_| i)?;
    }
    Ok(())
}

/// A ledger version: the current internal outputs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ledger {
    /// Version number.
    pub version: u64,
    /// Current outputs by id.
    pub outputs: BTreeMap<OutputId, InternalOutput>,
    /// Number of participants.
    pub participants: u16,
}

fn leaf_hash(id: &OutputId, out: &InternalOutput) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    h.update(b"channel-fsm/leaf\x00");
    h.update(&id.version.to_le_bytes());
    h.update(&id.index.to_le_bytes());
    h.update(&out.owner.to_le_bytes());
    h.update(&out.amount.to_sat().to_le_bytes());
    *h.finalize().as_bytes()
}

fn node_hash(l: &[u8; 32], r: &[u8; 32]) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    h.update(b"channel-fsm/node\x01");
    h.update(l);
    h.update(r);
    *h.finalize().as_bytes()
}

/// The state root of a set of outputs (sorted by id): a binary Merkle tree, odd nodes promoted.
/// The empty set's root is 32 zero bytes.
pub fn state_root<'a>(
    outputs: impl IntoIterator<Item = (&'a OutputId, &'a InternalOutput)>,
) -> [u8; 32] {
    let mut level: Vec<[u8; 32]> = outputs.into_iter().map(|(i, o)| leaf_hash(i, o)).collect();
    if level.is_empty() {
        return [0u8; 32];
    }
    while level.len() > 1 {
        level = level
            .chunks(2)
            .map(|c| {
                if c.len() == 2 {
                    node_hash(&c[0], &c[1])
                } else {
                    c[0]
                }
            })
            .collect();
    }
    level[0]
}

/// Proof that an internal output is in the ledger whose root was co-signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InclusionProof {
    /// The output's id.
    pub id: OutputId,
    /// The output.
    pub output: InternalOutput,
    /// Sibling hashes from the leaf up; `None` where the node was promoted without a sibling.
    pub path: Vec<(bool, [u8; 32])>,
}

impl InclusionProof {
    /// Whether the proof leads to `root`.
    pub fn verify(&self, root: &[u8; 32]) -> bool {
        let mut h = leaf_hash(&self.id, &self.output);
        for (sibling_is_left, s) in &self.path {
            h = if *sibling_is_left {
                node_hash(s, &h)
            } else {
                node_hash(&h, s)
            };
        }
        h == *root
    }
}

impl Ledger {
    /// The genesis ledger: one output per participant with a non-zero amount.
    ///
    /// # Errors
    /// [`TransferError::Limit`] for too many participants.
    pub fn genesis(balances: &[Amount]) -> Result<Self, TransferError> {
        let participants = u16::try_from(balances.len()).map_err(|_| TransferError::Limit {
            what: "participants",
            got: balances.len(),
            max: crate::tx::PARTICIPANTS_MAX,
        })?;
        let mut outputs = BTreeMap::new();
        for (i, b) in balances.iter().enumerate() {
            if *b > Amount::ZERO {
                let owner = u16::try_from(i).unwrap_or(u16::MAX);
                outputs.insert(
                    OutputId {
                        version: 0,
                        index: u32::from(owner),
                    },
                    InternalOutput { owner, amount: *b },
                );
            }
        }
        Ok(Self {
            version: 0,
            outputs,
            participants,
        })
    }

    /// The root of this version.
    pub fn root(&self) -> [u8; 32] {
        state_root(&self.outputs)
    }

    /// Each participant's total.
    pub fn balances(&self) -> Vec<Amount> {
        let mut b = vec![Amount::ZERO; usize::from(self.participants)];
        for o in self.outputs.values() {
            if let Some(slot) = b.get_mut(usize::from(o.owner)) {
                // Sums are bounded by the funding amount (≤ MAX_MONEY), checked on every transfer.
                *slot = slot.checked_add(o.amount).unwrap_or(Amount::MAX_MONEY);
            }
        }
        b
    }

    /// Total value.
    pub fn total(&self) -> Amount {
        self.outputs.values().fold(Amount::ZERO, |a, o| {
            a.checked_add(o.amount).unwrap_or(Amount::MAX_MONEY)
        })
    }

    /// An inclusion proof for output `id` against [`Ledger::root`].
    pub fn prove(&self, id: &OutputId) -> Option<InclusionProof> {
        let pos = self.outputs.keys().position(|k| k == id)?;
        let output = *self.outputs.get(id)?;
        let mut level: Vec<[u8; 32]> = self.outputs.iter().map(|(i, o)| leaf_hash(i, o)).collect();
        let mut idx = pos;
        let mut path = Vec::new();
        while level.len() > 1 {
            let sibling = idx ^ 1;
            if sibling < level.len() {
                path.push((sibling < idx, level[sibling]));
            }
            level = level
                .chunks(2)
                .map(|c| {
                    if c.len() == 2 {
                        node_hash(&c[0], &c[1])
                    } else {
                        c[0]
                    }
                })
                .collect();
            idx /= 2;
        }
        Some(InclusionProof {
            id: *id,
            output,
            path,
        })
    }

    /// Validates `transfers` against this version (signatures under `state_keys`, in participant order)
    /// and returns the next version. `self` is never modified.
    ///
    /// # Errors
    /// The first violation, as [`TransferError`].
    pub fn apply(
        &self,
        channel_id: &ChannelId,
        transfers: &[Transfer],
        state_keys: &[<DefaultBackend as SigBackend>::XOnlyPublic],
    ) -> Result<Ledger, TransferError> {
        self.apply_inner(channel_id, transfers, Some(state_keys), None)
    }

    /// As [`Ledger::apply`] without checking signatures (for callers that verified them already).
    ///
    /// # Errors
    /// As [`Ledger::apply`], minus [`TransferError::BadSignature`].
    pub fn apply_unchecked(
        &self,
        channel_id: &ChannelId,
        transfers: &[Transfer],
    ) -> Result<Ledger, TransferError> {
        self.apply_inner(channel_id, transfers, None, None)
    }

    /// As [`Ledger::apply`], but transfers sent by `trusted` (the caller itself, which just signed
    /// them) are not signature-checked; every other rule still applies.
    ///
    /// # Errors
    /// As [`Ledger::apply`].
    pub fn apply_trusting(
        &self,
        channel_id: &ChannelId,
        transfers: &[Transfer],
        state_keys: &[<DefaultBackend as SigBackend>::XOnlyPublic],
        trusted: u16,
    ) -> Result<Ledger, TransferError> {
        self.apply_inner(channel_id, transfers, Some(state_keys), Some(trusted))
    }

    fn apply_inner(
        &self,
        channel_id: &ChannelId,
        transfers: &[Transfer],
        state_keys: Option<&[<DefaultBackend as SigBackend>::XOnlyPublic]>,
        trusted: Option<u16>,
    ) -> Result<Ledger, TransferError> {
        if transfers.len() > TRANSFERS_PER_UPDATE_MAX {
            return Err(TransferError::Limit {
                what: "transfers per update",
                got: transfers.len(),
                max: TRANSFERS_PER_UPDATE_MAX,
            });
        }
        let mut next = self.clone();
        next.version = self
            .version
            .checked_add(1)
            .ok_or(TransferError::Overflow { transfer: 0 })?;
        let mut created: u32 = 0;
        for (t, transfer) in transfers.iter().enumerate() {
            if transfer.inputs.is_empty() || transfer.outputs.is_empty() {
                return Err(TransferError::Empty { transfer: t });
            }
            if transfer.inputs.len() > TRANSFER_INPUTS_MAX {
                return Err(TransferError::Limit {
                    what: "transfer inputs",
                    got: transfer.inputs.len(),
                    max: TRANSFER_INPUTS_MAX,
                });
            }
            if transfer.outputs.len() > TRANSFER_OUTPUTS_MAX {
                return Err(TransferError::Limit {
                    what: "transfer outputs",
                    got: transfer.outputs.len(),
                    max: TRANSFER_OUTPUTS_MAX,
                });
            }
            if transfer.sender >= self.participants {
                return Err(TransferError::NoSuchParticipant {
                    transfer: t,
                    index: transfer.sender,
                });
            }
            if let Some(keys) = state_keys
                && trusted != Some(transfer.sender)
            {
                let key = keys.get(usize::from(transfer.sender)).ok_or(
                    TransferError::NoSuchParticipant {
                        transfer: t,
                        index: transfer.sender,
                    },
                )?;
                let digest = transfer.digest(channel_id, self.version);
                DefaultBackend::schnorr_verify(key, &digest, &transfer.signature).map_err(
                    |_| TransferError::BadSignature {
                        transfer: t,
                        sender: transfer.sender,
                    },
                )?;
            }
            let mut inputs = Amount::ZERO;
            for input in &transfer.inputs {
                // Only outputs of the base version count as current: outputs created earlier in the
                // same update are not spendable until it is co-signed; removal also rejects duplicates.
                let out = if input.version <= self.version {
                    next.outputs.remove(input)
                } else {
                    None
                };
                let out = out.ok_or(TransferError::InputNotCurrent {
                    transfer: t,
                    input: *input,
                })?;
                if out.owner != transfer.sender {
                    return Err(TransferError::NotOwner {
                        transfer: t,
                        input: *input,
                        owner: out.owner,
                        sender: transfer.sender,
                    });
                }
                inputs = inputs
                    .checked_add(out.amount)
                    .ok_or(TransferError::Overflow { transfer: t })?;
            }
            let mut outputs = Amount::ZERO;
            for (o, out) in transfer.outputs.iter().enumerate() {
                if out.owner >= self.participants {
                    return Err(TransferError::NoSuchParticipant {
                        transfer: t,
                        index: out.owner,
                    });
                }
                if out.amount > Amount::MAX_MONEY {
                    return Err(TransferError::Overflow { transfer: t });
                }
                if out.amount < DUST_LIMIT {
                    return Err(TransferError::Dust {
                        transfer: t,
                        output: o,
                        amount: out.amount.to_sat(),
                    });
                }
                outputs = outputs
                    .checked_add(out.amount)
                    .ok_or(TransferError::Overflow { transfer: t })?;
            }
            if outputs > Amount::MAX_MONEY || inputs > Amount::MAX_MONEY {
                return Err(TransferError::Overflow { transfer: t });
            }
            if outputs > inputs {
                return Err(TransferError::OutputsExceedInputs {
                    transfer: t,
                    inputs: inputs.to_sat(),
                    outputs: outputs.to_sat(),
                });
            }
            if outputs < inputs {
                return Err(TransferError::ValueNotConserved {
                    transfer: t,
                    inputs: inputs.to_sat(),
                    outputs: outputs.to_sat(),
                });
            }
            for out in &transfer.outputs {
                next.outputs.insert(
                    OutputId {
                        version: next.version,
                        index: created,
                    },
                    *out,
                );
                created = created
                    .checked_add(1)
                    .ok_or(TransferError::Overflow { transfer: t })?;
            }
        }
        if next.outputs.len() > LEDGER_OUTPUTS_MAX {
            return Err(TransferError::Limit {
                what: "ledger outputs",
                got: next.outputs.len(),
                max: LEDGER_OUTPUTS_MAX,
            });
        }
        Ok(next)
    }

    /// The current outputs owned by `owner`.
    pub fn outputs_of(&self, owner: u16) -> impl Iterator<Item = (&OutputId, &InternalOutput)> {
        self.outputs.iter().filter(move |(_, o)| o.owner == owner)
    }
}

/// Builds and signs a transfer of `amount` from `sender` to `recipient` on `ledger`, spending the
/// sender's outputs in id order and returning change to the sender (change below dust is refused).
///
/// # Errors
/// [`TransferError::OutputsExceedInputs`] when the sender can't pay, [`TransferError::Dust`].
pub fn make_transfer(
    ledger: &Ledger,
    channel_id: &ChannelId,
    sender: u16,
    recipient: u16,
    amount: Amount,
    sign: impl FnOnce(&[u8; 32]) -> [u8; 64],
) -> Result<Transfer, TransferError> {
    let mut inputs = Vec::new();
    let mut have = Amount::ZERO;
    for (id, o) in ledger.outputs_of(sender) {
        if have >= amount && (have == amount || have - amount >= DUST_LIMIT) {
            break;
        }
        if inputs.len() == TRANSFER_INPUTS_MAX {
            break;
        }
        inputs.push(*id);
        have = have
            .checked_add(o.amount)
            .ok_or(TransferError::Overflow { transfer: 0 })?;
    }
    if have < amount {
        return Err(TransferError::OutputsExceedInputs {
            transfer: 0,
            inputs: have.to_sat(),
            outputs: amount.to_sat(),
        });
    }
    let mut outputs = vec![InternalOutput {
        owner: recipient,
        amount,
    }];
    let change = have - amount;
    if change > Amount::ZERO {
        if change < DUST_LIMIT {
            return Err(TransferError::Dust {
                transfer: 0,
                output: 1,
                amount: change.to_sat(),
            });
        }
        outputs.push(InternalOutput {
            owner: sender,
            amount: change,
        });
    }
    let mut t = Transfer {
        sender,
        inputs,
        outputs,
        signature: [0u8; 64],
    };
    t.signature = sign(&t.digest(channel_id, ledger.version));
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proofs_verify_for_every_output_and_fail_for_wrong_root() {
        for n in [1usize, 2, 3, 5, 8, 13] {
            let balances: Vec<Amount> = (0..n).map(|i| Amount::from_sat(1000 + i as u64)).collect();
            let ledger = Ledger::genesis(&balances).expect("genesis");
            let root = ledger.root();
            for id in ledger.outputs.keys() {
                let proof = ledger.prove(id).expect("present");
                assert!(proof.verify(&root));
                let mut forged = proof.clone();
                forged.output.amount += Amount::from_sat(1);
                assert!(!forged.verify(&root));
            }
        }
        assert_eq!(state_root(&BTreeMap::new()), [0u8; 32]);
    }

    #[test]
    fn state_digest_binds_channel_and_version() {
        let root = [1u8; 32];
        assert_ne!(
            state_digest(&[0; 32], 1, &root),
            state_digest(&[1; 32], 1, &root)
        );
        assert_ne!(
            state_digest(&[0; 32], 1, &root),
            state_digest(&[0; 32], 2, &root)
        );
    }
}
