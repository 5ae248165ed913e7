//! Transaction builders for channels of `n` participants: funding, per-participant commitment, penalty,
//! delayed sweep and cooperative close, plus the sighashes each signer signs and the witnesses that
//! assemble the signatures.
//!
//! For `n = 2` everything follows BOLT 3 (P2WSH 2-of-2 funding, `to_local` P2WSH with revocation and
//! `OP_CHECKSEQUENCEVERIFY` branches, `to_remote` P2WPKH to the static payment basepoint, obscured
//! commitment number in nSequence/nLockTime, BIP69 output order, fee `feerate × 724 / 1000` paid by
//! the funder), so the Appendix C vectors apply. For `n > 2` the funding output is a taproot output whose
//! only spend path is a tapscript `n`-of-`n` with `OP_CHECKSIGADD` (internal key: the BIP341 NUMS point),
//! each holder's delayed output is a taproot tree with one delayed leaf and one revocation leaf per
//! other participant, and the others' outputs are key-path P2TR to their payment basepoints.

use bitcoin::absolute::LockTime;
use bitcoin::hashes::{Hash, sha256};
use bitcoin::opcodes::all::{
    OP_CHECKMULTISIG, OP_CHECKSIG, OP_CHECKSIGADD, OP_CSV, OP_DROP, OP_ELSE, OP_ENDIF, OP_IF,
    OP_NUMEQUAL,
};
use bitcoin::script::{Builder, PushBytesBuf};
use bitcoin::secp256k1::{Keypair, Message, PublicKey, SecretKey, XOnlyPublicKey};
use bitcoin::sighash::{EcdsaSighashType, Prevouts, SighashCache, TapSighashType};
use bitcoin::taproot::{ControlBlock, LeafVersion, TapLeafHash, TaprootBuilder, TaprootSpendInfo};
use bitcoin::transaction::Version;
use bitcoin::{Amount, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxOut, Txid, Witness};
use serde::{Deserialize, Serialize};

use crate::keys::{self, KeyError};
use crate::sig::secp;

/// Most participants a channel can have.
pub const PARTICIPANTS_MAX: usize = 16;
/// Fewest participants a channel can have.
pub const PARTICIPANTS_MIN: usize = 2;
/// Default relative timelock on a holder's own commitment output, in blocks.
pub const TO_SELF_DELAY_DEFAULT: u16 = 144;
/// Largest relative timelock accepted (about two weeks), as in common Lightning implementations.
pub const TO_SELF_DELAY_MAX: u16 = 2016;
/// Channel dust limit: outputs below it are left out of commitments and closes (BOLT 3's 546 sat,
/// above Bitcoin Core's dust threshold for every output type used here).
pub const DUST_LIMIT: Amount = Amount::from_sat(546);
/// BOLT 3 commitment weight without HTLCs (used for `n = 2`).
pub const BOLT3_COMMITMENT_WEIGHT: u64 = 724;
/// Highest fee rate accepted, in sat per 1000 weight units (1000 sat/vB).
pub const FEERATE_PER_KW_MAX: u32 = 250_000;
/// Lowest fee rate accepted, in sat per 1000 weight units (1 sat/vB, Bitcoin Core's relay floor).
pub const FEERATE_PER_KW_MIN: u32 = 253;

/// x coordinate of BIP341's "nothing up my sleeve" point H: no one knows its discrete log, so a
/// taproot output with this internal key can only be spent through its scripts.
pub const NUMS_X: [u8; 32] = [
    0x50, 0x92, 0x9b, 0x74, 0xc1, 0xa0, 0x49, 0x54, 0xb7, 0x8b, 0x4b, 0x60, 0x35, 0xe9, 0x7a, 0x5e,
    0x07, 0x8a, 0x5a, 0x0f, 0x28, 0xec, 0x96, 0xd5, 0x47, 0xbf, 0xee, 0x9a, 0xce, 0x80, 0x3a, 0xc0,
];

/// Why a transaction could not be built or signed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TxError {
    /// Participant count outside `PARTICIPANTS_MIN..=PARTICIPANTS_MAX`.
    #[error("{count} participants, allowed {PARTICIPANTS_MIN}..={PARTICIPANTS_MAX}")]
    ParticipantCount {
        /// The count given.
        count: usize,
    },
    /// A balance vector whose length differs from the participant count.
    #[error("{got} balances for {expected} participants")]
    BalanceCount {
        /// Balances given.
        got: usize,
        /// Participants.
        expected: usize,
    },
    /// Balances do not add up to the funding amount (or overflow).
    #[error("balances sum to {sum:?} sat, funding is {funding} sat")]
    BalanceSum {
        /// Their sum, `None` on overflow.
        sum: Option<u64>,
        /// The funding amount.
        funding: u64,
    },
    /// The funder cannot pay the fee.
    #[error("funder balance {balance} sat cannot pay fee {fee} sat")]
    FeeUnaffordable {
        /// Funder balance.
        balance: u64,
        /// Fee owed.
        fee: u64,
    },
    /// The output being swept is too small to pay its own fee above dust.
    #[error("output of {amount} sat cannot pay fee {fee} sat and stay above dust")]
    SweepTooSmall {
        /// Output value.
        amount: u64,
        /// Fee.
        fee: u64,
    },
    /// Inputs do not cover outputs plus fee.
    #[error("inputs {inputs} sat do not cover outputs plus fee {needed} sat")]
    InsufficientInputs {
        /// Total in.
        inputs: u64,
        /// Needed.
        needed: u64,
    },
    /// A parameter is out of its bounds.
    #[error("parameter {name} = {value} out of range")]
    Parameter {
        /// Which.
        name: &'static str,
        /// Its value.
        value: u64,
    },
    /// An index does not name a participant.
    #[error("participant {index} out of range")]
    NoSuchParticipant {
        /// The index.
        index: usize,
    },
    /// A signature list is not one per required signer.
    #[error("expected {expected} signatures, got {got}")]
    SignatureCount {
        /// Needed.
        expected: usize,
        /// Given.
        got: usize,
    },
    /// A given signature is not a valid encoding.
    #[error("malformed signature from participant {index}")]
    MalformedSignature {
        /// Whose.
        index: usize,
    },
    /// The commitment has no output for the holder (it was dust).
    #[error("commitment has no delayed output for its holder")]
    NoDelayedOutput,
    /// Key derivation failed.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// Sighash computation failed (input index out of range).
    #[error("sighash: {0}")]
    Sighash(String),
}

/// A participant's public keys (basepoints), fixed at channel open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParticipantKeys {
    /// Key in the funding n-of-n.
    pub funding: PublicKey,
    /// Revocation basepoint: combined with another holder's per-commitment point it gives the key that
    /// punishes that holder's revoked commitments.
    pub revocation_basepoint: PublicKey,
    /// Payment basepoint: the participant's outputs on others' commitments and in closes pay here.
    pub payment_basepoint: PublicKey,
    /// Delayed payment basepoint: tweaked per commitment for the holder's own delayed output.
    pub delayed_payment_basepoint: PublicKey,
    /// Key the participant co-signs channel states and transfers with (BIP340).
    pub state_key: XOnlyPublicKey,
}

/// The fixed parameters of a channel's transactions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelParams {
    /// Participants in their fixed order; participant 0 is the funder and pays on-chain fees.
    pub participants: Vec<ParticipantKeys>,
    /// The funding output.
    pub funding_outpoint: OutPoint,
    /// Its value.
    pub funding_amount: Amount,
    /// Relative timelock on a holder's own commitment output.
    pub to_self_delay: u16,
    /// Fee rate of commitments, closes and sweeps, sat per 1000 weight units.
    pub feerate_per_kw: u32,
}

fn nums_key() -> XOnlyPublicKey {
    // NUMS_X is a valid x coordinate (BIP341); a failure here is a corrupted constant.
    XOnlyPublicKey::from_slice(&NUMS_X).expect("BIP341 NUMS point is on the curve")
}

fn push_pubkey(b: Builder, pk: &PublicKey) -> Builder {
    b.push_slice(pk.serialize())
}

/// The spend information of an n-of-n funding output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FundingScript {
    /// `n = 2`: BOLT 3's `2 <pk1> <pk2> 2 OP_CHECKMULTISIG`, keys sorted lexicographically.
    P2wsh {
        /// The witness script.
        witness_script: ScriptBuf,
    },
    /// `n > 2`: tapscript `<x1> OP_CHECKSIG <x2> OP_CHECKSIGADD … <n> OP_NUMEQUAL` in participant order.
    Tapscript {
        /// The leaf script.
        leaf: ScriptBuf,
        /// Its control block.
        control_block: ControlBlock,
        /// The output's scriptPubKey.
        script_pubkey: ScriptBuf,
    },
}

impl FundingScript {
    /// The funding script for these participants.
    ///
    /// # Errors
    /// [`TxError::ParticipantCount`].
    pub fn new(participants: &[ParticipantKeys]) -> Result<Self, TxError> {
        check_count(participants.len())?;
        if participants.len() == 2 {
            let (mut a, mut b) = (
                participants[0].funding.serialize(),
                participants[1].funding.serialize(),
            );
            if b < a {
                std::mem::swap(&mut a, &mut b);
            }
            let witness_script = Builder::new()
                .push_int(2)
                .push_slice(a)
                .push_slice(b)
                .push_int(2)
                .push_opcode(OP_CHECKMULTISIG)
                .into_script();
            return Ok(FundingScript::P2wsh { witness_script });
        }
        let mut builder = Builder::new();
        for (i, p) in participants.iter().enumerate() {
            builder = builder.push_x_only_key(&p.funding.x_only_public_key().0);
            builder = builder.push_opcode(if i == 0 { OP_CHECKSIG } else { OP_CHECKSIGADD });
        }
        let n = i64::try_from(participants.len()).unwrap_or(i64::MAX);
        let leaf = builder.push_int(n).push_opcode(OP_NUMEQUAL).into_script();
        let info = single_leaf(leaf.clone());
        let control_block = control_block(&info, &leaf);
        let script_pubkey = ScriptBuf::new_p2tr_tweaked(info.output_key());
        Ok(FundingScript::Tapscript {
            leaf,
            control_block,
            script_pubkey,
        })
    }

    /// The funding output's scriptPubKey.
    pub fn script_pubkey(&self) -> ScriptBuf {
        match self {
            FundingScript::P2wsh { witness_script } => {
                ScriptBuf::new_p2wsh(&witness_script.wscript_hash())
            }
            FundingScript::Tapscript { script_pubkey, .. } => script_pubkey.clone(),
        }
    }

    /// The digest each participant signs to spend the funding output as input `input` of `tx`.
    ///
    /// # Errors
    /// [`TxError::Sighash`].
    pub fn sighash(
        &self,
        tx: &Transaction,
        input: usize,
        funding: &TxOut,
    ) -> Result<[u8; 32], TxError> {
        let mut cache = SighashCache::new(tx);
        match self {
            FundingScript::P2wsh { witness_script } => cache
                .p2wsh_signature_hash(input, witness_script, funding.value, EcdsaSighashType::All)
                .map(|h| h.to_byte_array())
                .map_err(|e| TxError::Sighash(e.to_string())),
            FundingScript::Tapscript { leaf, .. } => {
                let prevouts = [funding.clone()];
                cache
                    .taproot_script_spend_signature_hash(
                        input,
                        &Prevouts::All(&prevouts),
                        TapLeafHash::from_script(leaf, LeafVersion::TapScript),
                        TapSighashType::Default,
                    )
                    .map(|h| h.to_byte_array())
                    .map_err(|e| TxError::Sighash(e.to_string()))
            }
        }
    }

    /// Whether signatures are ECDSA (`n = 2`) rather than BIP340.
    pub fn is_ecdsa(&self) -> bool {
        matches!(self, FundingScript::P2wsh { .. })
    }

    /// Signs a funding-spend digest with a participant's funding key (ECDSA compact or BIP340).
    ///
    /// A one-off: for `n > 2` this prepares the BIP340 keypair (a generator multiplication, as
    /// costly as the signature) on every call. A signer that signs repeatedly keeps a
    /// [`FundingSigningKey`] instead, which prepares it once.
    pub fn sign(&self, funding_secret: &SecretKey, digest: &[u8; 32]) -> [u8; 64] {
        if self.is_ecdsa() {
            crate::sig::ecdsa_sign_secret(funding_secret, digest)
        } else {
            FundingSigningKey::new(funding_secret).sign(self, digest)
        }
    }

    /// Verifies participant `index`'s signature over a funding-spend digest.
    pub fn verify(
        &self,
        participants: &[ParticipantKeys],
        index: usize,
        digest: &[u8; 32],
        sig: &[u8; 64],
    ) -> bool {
        let Some(p) = participants.get(index) else {
            return false;
        };
        let msg = Message::from_digest(*digest);
        if self.is_ecdsa() {
            bitcoin::secp256k1::ecdsa::Signature::from_compact(sig)
                .is_ok_and(|s| secp().verify_ecdsa(&msg, &s, &p.funding).is_ok())
        } else {
            bitcoin::secp256k1::schnorr::Signature::from_slice(sig).is_ok_and(|s| {
                secp()
                    .verify_schnorr(&s, &msg, &p.funding.x_only_public_key().0)
                    .is_ok()
            })
        }
    }

    /// The witness spending the funding output from one signature per participant, in participant order.
    ///
    /// # Errors
    /// [`TxError::SignatureCount`], [`TxError::MalformedSignature`].
    pub fn witness(
        &self,
        participants: &[ParticipantKeys],
        sigs: &[[u8; 64]],
    ) -> Result<Witness, TxError> {
        if sigs.len() != participants.len() {
            return Err(TxError::SignatureCount {
                expected: participants.len(),
                got: sigs.len(),
            });
        }
        let mut w = Witness::new();
        match self {
            FundingScript::P2wsh { witness_script } => {
                let mut order = [0usize, 1];
                if participants[1].funding.serialize() < participants[0].funding.serialize() {
                    order = [1, 0];
                }
                w.push([]);
                for i in order {
                    w.push(der_with_hashtype(&sigs[i], i)?);
                }
                w.push(witness_script.as_bytes());
            }
            FundingScript::Tapscript {
                leaf,
                control_block,
                ..
            } => {
                // OP_CHECKSIG consumes the top item first: the last participant's signature goes deepest.
                for sig in sigs.iter().rev() {
                    w.push(sig);
                }
                w.push(leaf.as_bytes());
                w.push(control_block.serialize());
            }
        }
        Ok(w)
    }
}

/// A participant's funding secret prepared once for signing funding spends of any channel size:
/// ECDSA (`n = 2`) from the secret, BIP340 (`n > 2`) from a keypair computed here, so repeated
/// signatures cost a signature each. Same signatures as [`FundingScript::sign`].
#[derive(Clone, Copy)]
pub struct FundingSigningKey {
    secret: SecretKey,
    schnorr: crate::sig::SchnorrKeypair,
}

impl std::fmt::Debug for FundingSigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FundingSigningKey").finish_non_exhaustive()
    }
}

impl FundingSigningKey {
    /// Prepares `funding_secret` (one generator multiplication).
    pub fn new(funding_secret: &SecretKey) -> Self {
        Self {
            secret: *funding_secret,
            schnorr: crate::sig::SchnorrKeypair::new(funding_secret),
        }
    }

    /// Signs a digest spending the funding output of `script` (ECDSA compact for `n = 2`,
    /// BIP340 without auxiliary randomness otherwise).
    pub fn sign(&self, script: &FundingScript, digest: &[u8; 32]) -> [u8; 64] {
        if script.is_ecdsa() {
            crate::sig::ecdsa_sign_secret(&self.secret, digest)
        } else {
            self.schnorr.sign(digest, None)
        }
    }
}

fn der_with_hashtype(sig: &[u8; 64], index: usize) -> Result<Vec<u8>, TxError> {
    let s = bitcoin::secp256k1::ecdsa::Signature::from_compact(sig)
        .map_err(|_| TxError::MalformedSignature { index })?;
    let mut v = s.serialize_der().to_vec();
    v.push(EcdsaSighashType::All as u8);
    Ok(v)
}

fn single_leaf(leaf: ScriptBuf) -> TaprootSpendInfo {
    tree(vec![leaf])
}

fn tree(leaves: Vec<ScriptBuf>) -> TaprootSpendInfo {
    // A Huffman tree over equal weights is a deterministic, balanced tree; `leaves` is never empty and
    // at most PARTICIPANTS_MAX long, so neither construction step can fail.
    let builder = TaprootBuilder::with_huffman_tree(leaves.into_iter().map(|l| (1u32, l)))
        .expect("non-empty leaf list");
    builder.finalize(secp(), nums_key()).expect("complete tree")
}

fn control_block(info: &TaprootSpendInfo, leaf: &ScriptBuf) -> ControlBlock {
    info.control_block(&(leaf.clone(), LeafVersion::TapScript))
        .expect("leaf is in the tree")
}

fn check_count(count: usize) -> Result<(), TxError> {
    if (PARTICIPANTS_MIN..=PARTICIPANTS_MAX).contains(&count) {
        Ok(())
    } else {
        Err(TxError::ParticipantCount { count })
    }
}

/// The payout scriptPubKey of a participant (its outputs on others' commitments and in closes):
/// P2WPKH of the payment basepoint for `n = 2` (BOLT 3 `to_remote`), key-path P2TR for `n > 2`.
pub fn payout_script(participants: &[ParticipantKeys], index: usize) -> Result<ScriptBuf, TxError> {
    let p = participants
        .get(index)
        .ok_or(TxError::NoSuchParticipant { index })?;
    Ok(if participants.len() == 2 {
        let pk = bitcoin::CompressedPublicKey(p.payment_basepoint);
        ScriptBuf::new_p2wpkh(&pk.wpubkey_hash())
    } else {
        ScriptBuf::new_p2tr(secp(), p.payment_basepoint.x_only_public_key().0, None)
    })
}

/// Every participant's [`payout_script`], participant order: constant for a channel, so callers
/// building many commitments compute them once (for `n > 2` each is a taproot tweak).
///
/// # Errors
/// As [`payout_script`].
pub fn payout_scripts(participants: &[ParticipantKeys]) -> Result<Vec<ScriptBuf>, TxError> {
    (0..participants.len())
        .map(|i| payout_script(participants, i))
        .collect()
}

/// BOLT 3's `to_local` witness script: revocable by `revocation`, else spendable by `delayed` after
/// `delay` blocks.
pub fn to_local_script(revocation: &PublicKey, delay: u16, delayed: &PublicKey) -> ScriptBuf {
    let b = Builder::new().push_opcode(OP_IF);
    let b = push_pubkey(b, revocation)
        .push_opcode(OP_ELSE)
        .push_int(i64::from(delay))
        .push_opcode(OP_CSV);
    let b = push_pubkey(b.push_opcode(OP_DROP), delayed);
    b.push_opcode(OP_ENDIF)
        .push_opcode(OP_CHECKSIG)
        .into_script()
}

/// The Appendix E keys of one holder's delayed output for one per-commitment point: its delayed
/// key and, for every other participant j, the revocation key from j's revocation basepoint
/// (`None` at the holder's position). Derived once per commitment; [`DelayedKeys::derive`] does it
/// from public data, the channel faster with its own secrets (same keys).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DelayedKeys {
    /// `derive_pubkey(holder's delayed_payment_basepoint, point)`.
    pub delayed: PublicKey,
    /// `derive_revocation_pubkey(participant j's revocation_basepoint, point)`, participant order.
    pub revocation: Vec<Option<PublicKey>>,
}

impl DelayedKeys {
    /// Derives the keys from public data.
    ///
    /// # Errors
    /// [`TxError::NoSuchParticipant`], [`TxError::Key`].
    pub fn derive(
        params: &ChannelParams,
        holder: usize,
        point: &PublicKey,
    ) -> Result<Self, TxError> {
        let h = params
            .participants
            .get(holder)
            .ok_or(TxError::NoSuchParticipant { index: holder })?;
        let delayed = keys::derive_pubkey(&h.delayed_payment_basepoint, point)?;
        let revocation = params
            .participants
            .iter()
            .enumerate()
            .map(|(j, p)| {
                if j == holder {
                    Ok(None)
                } else {
                    keys::derive_revocation_pubkey(&p.revocation_basepoint, point).map(Some)
                }
            })
            .collect::<Result<_, _>>()?;
        Ok(DelayedKeys {
            delayed,
            revocation,
        })
    }
}

/// How the holder's delayed output of a commitment is spent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DelayedOutput {
    /// `n = 2`: P2WSH of [`to_local_script`].
    P2wsh {
        /// The witness script.
        witness_script: ScriptBuf,
    },
    /// `n > 2`: taproot tree (NUMS internal key) with a delayed leaf and one revocation leaf per other
    /// participant (`None` at the holder's own position).
    Taproot {
        /// `<delay> OP_CSV OP_DROP <delayed> OP_CHECKSIG`.
        delayed_leaf: ScriptBuf,
        /// `<revocation_j> OP_CHECKSIG` per participant j ≠ holder.
        revocation_leaves: Vec<Option<ScriptBuf>>,
        /// The tree.
        info: Box<TaprootSpendInfo>,
    },
}

impl DelayedOutput {
    /// The delayed output of `holder`'s commitment whose per-commitment point is `point`.
    ///
    /// # Errors
    /// [`TxError::Key`], [`TxError::NoSuchParticipant`].
    pub fn new(params: &ChannelParams, holder: usize, point: &PublicKey) -> Result<Self, TxError> {
        Self::with_keys(params, holder, &DelayedKeys::derive(params, holder, point)?)
    }

    /// The delayed output of `holder`'s commitment from its already derived keys.
    ///
    /// # Errors
    /// [`TxError::NoSuchParticipant`], [`TxError::Key`] if a revocation key is missing.
    pub fn with_keys(
        params: &ChannelParams,
        holder: usize,
        derived: &DelayedKeys,
    ) -> Result<Self, TxError> {
        if holder >= params.participants.len()
            || derived.revocation.len() != params.participants.len()
        {
            return Err(TxError::NoSuchParticipant { index: holder });
        }
        let delayed = derived.delayed;
        let revocation_of = |j: usize| -> Result<PublicKey, TxError> {
            derived
                .revocation
                .get(j)
                .copied()
                .flatten()
                .ok_or(TxError::Key(KeyError::InvalidTweak))
        };
        if params.participants.len() == 2 {
            let revocation = revocation_of(1 - holder)?;
            return Ok(DelayedOutput::P2wsh {
                witness_script: to_local_script(&revocation, params.to_self_delay, &delayed),
            });
        }
        let delayed_leaf = Builder::new()
            .push_int(i64::from(params.to_self_delay))
            .push_opcode(OP_CSV)
            .push_opcode(OP_DROP)
            .push_x_only_key(&delayed.x_only_public_key().0)
            .push_opcode(OP_CHECKSIG)
            .into_script();
        let mut revocation_leaves = Vec::with_capacity(params.participants.len());
        for j in 0..params.participants.len() {
            if j == holder {
                revocation_leaves.push(None);
                continue;
            }
            let rk = revocation_of(j)?;
            revocation_leaves.push(Some(
                Builder::new()
                    .push_x_only_key(&rk.x_only_public_key().0)
                    .push_opcode(OP_CHECKSIG)
                    .into_script(),
            ));
        }
        let mut leaves = vec![delayed_leaf.clone()];
        leaves.extend(revocation_leaves.iter().flatten().cloned());
        let info = Box::new(tree(leaves));
        Ok(DelayedOutput::Taproot {
            delayed_leaf,
            revocation_leaves,
            info,
        })
    }

    /// The output's scriptPubKey.
    pub fn script_pubkey(&self) -> ScriptBuf {
        match self {
            DelayedOutput::P2wsh { witness_script } => {
                ScriptBuf::new_p2wsh(&witness_script.wscript_hash())
            }
            DelayedOutput::Taproot { info, .. } => ScriptBuf::new_p2tr_tweaked(info.output_key()),
        }
    }
}

/// A built commitment transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commitment {
    /// The unsigned transaction (empty witness).
    pub tx: Transaction,
    /// Whose commitment this is.
    pub holder: usize,
    /// Commitment number (= channel version).
    pub number: u64,
    /// The holder's delayed output and its vout, if above dust.
    pub delayed: Option<(u32, DelayedOutput)>,
    /// Vout of each participant's output (`None` if dust); for the holder, its delayed output.
    pub vouts: Vec<Option<u32>>,
    /// Fee paid.
    pub fee: Amount,
}

/// The 48-bit obscuring factor: low 48 bits of SHA256 of every payment basepoint in participant order
/// (for `n = 2`: `SHA256(opener payment_basepoint || accepter payment_basepoint)`, BOLT 3).
pub fn obscuring_factor(participants: &[ParticipantKeys]) -> u64 {
    let mut engine = sha256::Hash::engine();
    for p in participants {
        bitcoin::hashes::HashEngine::input(&mut engine, &p.payment_basepoint.serialize());
    }
    let h = sha256::Hash::from_engine(engine).to_byte_array();
    h[26..32]
        .iter()
        .fold(0u64, |acc, b| (acc << 8) | u64::from(*b))
}

/// Weight of a commitment transaction with every output present, used for its fee (for `n = 2` the
/// BOLT 3 constant 724).
pub fn commitment_weight(n: usize) -> u64 {
    if n == 2 {
        return BOLT3_COMMITMENT_WEIGHT;
    }
    // version 4 + marker/flag (witness) + input count 1 + input 41 + output count 1 + n P2TR outputs of
    // 43 bytes + locktime 4; witness: item count, n 65-byte signatures, leaf (n·34 + n + 2 bytes with
    // its length prefix), control block 33 + 32·depth.
    let n64 = n as u64;
    let non_witness = 4 + 1 + 41 + 1 + 43 * n64 + 4;
    let leaf_len = 34 * n64 + (n64 - 1) + 2 + 1;
    let depth = 0u64;
    let witness = 2 + 1 + 65 * n64 + (leaf_len + 3) + 1 + 33 + 32 * depth;
    non_witness * 4 + witness
}

fn fee_for_weight(feerate_per_kw: u32, weight: u64) -> Amount {
    Amount::from_sat(u64::from(feerate_per_kw) * weight / 1000)
}

fn sum_amounts(values: &[Amount]) -> Option<Amount> {
    values
        .iter()
        .try_fold(Amount::ZERO, |acc, v| acc.checked_add(*v))
}

/// Checks parameters shared by every builder.
///
/// # Errors
/// [`TxError::ParticipantCount`], [`TxError::Parameter`].
pub fn check_params(params: &ChannelParams) -> Result<(), TxError> {
    check_count(params.participants.len())?;
    if params.to_self_delay == 0 || params.to_self_delay > TO_SELF_DELAY_MAX {
        return Err(TxError::Parameter {
            name: "to_self_delay",
            value: u64::from(params.to_self_delay),
        });
    }
    if !(FEERATE_PER_KW_MIN..=FEERATE_PER_KW_MAX).contains(&params.feerate_per_kw) {
        return Err(TxError::Parameter {
            name: "feerate_per_kw",
            value: u64::from(params.feerate_per_kw),
        });
    }
    if params.funding_amount > Amount::MAX_MONEY {
        return Err(TxError::Parameter {
            name: "funding_amount",
            value: params.funding_amount.to_sat(),
        });
    }
    Ok(())
}

/// The fee of a commitment transaction (paid by participant 0).
pub fn commitment_fee(params: &ChannelParams) -> Amount {
    fee_for_weight(
        params.feerate_per_kw,
        commitment_weight(params.participants.len()),
    )
}

/// Builds `holder`'s commitment transaction number `number` paying `balances` (participant order,
/// summing to the funding amount; the fee comes out of participant 0's balance).
///
/// # Errors
/// [`TxError::BalanceCount`], [`TxError::BalanceSum`], [`TxError::FeeUnaffordable`], parameter errors.
pub fn build_commitment(
    params: &ChannelParams,
    holder: usize,
    number: u64,
    balances: &[Amount],
    per_commitment_point: &PublicKey,
) -> Result<Commitment, TxError> {
    if holder >= params.participants.len() {
        return Err(TxError::NoSuchParticipant { index: holder });
    }
    let keys = DelayedKeys::derive(params, holder, per_commitment_point)?;
    let payouts = payout_scripts(&params.participants)?;
    build_commitment_with_keys(params, holder, number, balances, &keys, &payouts)
}

/// [`build_commitment`] from the holder's already derived [`DelayedKeys`] for this commitment and
/// the channel's [`payout_scripts`].
///
/// # Errors
/// As [`build_commitment`]; [`TxError::NoSuchParticipant`] if `payouts` lacks a participant.
pub fn build_commitment_with_keys(
    params: &ChannelParams,
    holder: usize,
    number: u64,
    balances: &[Amount],
    derived: &DelayedKeys,
    payouts: &[ScriptBuf],
) -> Result<Commitment, TxError> {
    check_params(params)?;
    let n = params.participants.len();
    if holder >= n {
        return Err(TxError::NoSuchParticipant { index: holder });
    }
    if balances.len() != n {
        return Err(TxError::BalanceCount {
            got: balances.len(),
            expected: n,
        });
    }
    let sum = sum_amounts(balances);
    if sum != Some(params.funding_amount) {
        return Err(TxError::BalanceSum {
            sum: sum.map(Amount::to_sat),
            funding: params.funding_amount.to_sat(),
        });
    }
    if number > keys::INDEX_START {
        return Err(TxError::Parameter {
            name: "commitment number",
            value: number,
        });
    }
    let fee = commitment_fee(params);
    let mut values = balances.to_vec();
    values[0] = values[0].checked_sub(fee).ok_or(TxError::FeeUnaffordable {
        balance: balances[0].to_sat(),
        fee: fee.to_sat(),
    })?;

    let delayed = DelayedOutput::with_keys(params, holder, derived)?;
    let mut outputs: Vec<(usize, TxOut)> = Vec::with_capacity(n);
    for (i, value) in values.iter().enumerate() {
        if *value < DUST_LIMIT {
            continue;
        }
        let script_pubkey = if i == holder {
            delayed.script_pubkey()
        } else {
            payouts
                .get(i)
                .cloned()
                .ok_or(TxError::NoSuchParticipant { index: i })?
        };
        outputs.push((
            i,
            TxOut {
                value: *value,
                script_pubkey,
            },
        ));
    }
    // BIP69 order: value, then scriptPubKey bytes (shorter first on a common prefix).
    outputs.sort_by(|a, b| {
        a.1.value.cmp(&b.1.value).then_with(|| {
            a.1.script_pubkey
                .as_bytes()
                .cmp(b.1.script_pubkey.as_bytes())
        })
    });
    let obscured = number ^ obscuring_factor(&params.participants);
    let sequence =
        Sequence(0x8000_0000 | u32::try_from((obscured >> 24) & 0x00ff_ffff).unwrap_or(0));
    let locktime =
        LockTime::from_consensus(0x2000_0000 | u32::try_from(obscured & 0x00ff_ffff).unwrap_or(0));
    let mut vouts = vec![None; n];
    for (vout, (i, _)) in outputs.iter().enumerate() {
        vouts[*i] = Some(u32::try_from(vout).unwrap_or(u32::MAX));
    }
    let tx = Transaction {
        version: Version::TWO,
        lock_time: locktime,
        input: vec![TxIn {
            previous_output: params.funding_outpoint,
            script_sig: ScriptBuf::new(),
            sequence,
            witness: Witness::new(),
        }],
        output: outputs.into_iter().map(|(_, o)| o).collect(),
    };
    let delayed = vouts[holder].map(|v| (v, delayed));
    Ok(Commitment {
        tx,
        holder,
        number,
        delayed,
        vouts,
        fee,
    })
}

/// Recovers the commitment number from a commitment transaction's nSequence and nLockTime.
pub fn commitment_number_of(tx: &Transaction, participants: &[ParticipantKeys]) -> Option<u64> {
    let seq = tx.input.first()?.sequence.0;
    let lt = tx.lock_time.to_consensus_u32();
    if seq >> 24 != 0x80 || lt >> 24 != 0x20 {
        return None;
    }
    let obscured = (u64::from(seq & 0x00ff_ffff) << 24) | u64::from(lt & 0x00ff_ffff);
    Some(obscured ^ obscuring_factor(participants))
}

/// The funding TxOut of a channel.
///
/// # Errors
/// [`TxError::ParticipantCount`].
pub fn funding_txout(params: &ChannelParams) -> Result<TxOut, TxError> {
    Ok(TxOut {
        value: params.funding_amount,
        script_pubkey: FundingScript::new(&params.participants)?.script_pubkey(),
    })
}

/// Builds the cooperative close paying final `balances` (participant order) to each payout script; the
/// funder pays the fee; dust outputs are left out.
///
/// # Errors
/// As [`build_commitment`].
pub fn build_close(params: &ChannelParams, balances: &[Amount]) -> Result<Transaction, TxError> {
    check_params(params)?;
    let n = params.participants.len();
    if balances.len() != n {
        return Err(TxError::BalanceCount {
            got: balances.len(),
            expected: n,
        });
    }
    let sum = sum_amounts(balances);
    if sum != Some(params.funding_amount) {
        return Err(TxError::BalanceSum {
            sum: sum.map(Amount::to_sat),
            funding: params.funding_amount.to_sat(),
        });
    }
    let fee = close_fee(params);
    let mut values = balances.to_vec();
    values[0] = values[0].checked_sub(fee).ok_or(TxError::FeeUnaffordable {
        balance: balances[0].to_sat(),
        fee: fee.to_sat(),
    })?;
    let mut outputs = Vec::with_capacity(n);
    for (i, v) in values.iter().enumerate() {
        if *v >= DUST_LIMIT {
            outputs.push(TxOut {
                value: *v,
                script_pubkey: payout_script(&params.participants, i)?,
            });
        }
    }
    outputs.sort_by(|a, b| {
        a.value
            .cmp(&b.value)
            .then_with(|| a.script_pubkey.as_bytes().cmp(b.script_pubkey.as_bytes()))
    });
    Ok(Transaction {
        version: Version::TWO,
        lock_time: LockTime::ZERO,
        input: vec![TxIn {
            previous_output: params.funding_outpoint,
            script_sig: ScriptBuf::new(),
            sequence: Sequence::MAX,
            witness: Witness::new(),
        }],
        output: outputs,
    })
}

/// The fee of a cooperative close (same shape as a commitment).
pub fn close_fee(params: &ChannelParams) -> Amount {
    commitment_fee(params)
}

fn sweep_weight(n: usize, penalty: bool) -> u64 {
    // version 4, marker/flag 2 (wu), 1 input 41, 1 output, locktime 4.
    if n == 2 {
        // witness: count 1, sig 1+73, selector 1+1 (or 1+0), script 1+79(max, 2-byte delay)
        let non_witness = 4 + 1 + 41 + 1 + 43 + 4;
        let witness = 2 + 1 + 74 + 2 + 80;
        let _ = penalty;
        non_witness * 4 + witness
    } else {
        let outs = if penalty { n as u64 - 1 } else { 1 };
        let non_witness = 4 + 1 + 41 + 1 + 43 * outs + 4;
        // witness: count 1, sig 65, leaf ≤ 1+40, control block 1+33+32·depth (depth ≤ 5 for ≤ 17 leaves)
        let witness = 2 + 1 + 65 + 41 + 1 + 33 + 32 * 5;
        non_witness * 4 + witness
    }
}

/// The delayed output of a published commitment, located.
#[derive(Debug, Clone)]
pub struct DelayedSpend<'a> {
    /// The commitment's txid.
    pub txid: Txid,
    /// The delayed output's index.
    pub vout: u32,
    /// The output itself.
    pub txout: TxOut,
    /// Its scripts.
    pub delayed: &'a DelayedOutput,
}

impl<'a> DelayedSpend<'a> {
    /// Locates the holder's delayed output of `commitment`.
    ///
    /// # Errors
    /// [`TxError::NoDelayedOutput`].
    pub fn of(commitment: &'a Commitment) -> Result<Self, TxError> {
        let (vout, delayed) = commitment
            .delayed
            .as_ref()
            .ok_or(TxError::NoDelayedOutput)?;
        let txout = commitment
            .tx
            .output
            .get(*vout as usize)
            .cloned()
            .ok_or(TxError::NoDelayedOutput)?;
        Ok(Self {
            txid: commitment.tx.compute_txid(),
            vout: *vout,
            txout,
            delayed,
        })
    }
}

/// nSequence of a penalty's input: final for BIP68 (the revocation path has no relative timelock)
/// but not for nLockTime, so the anti-fee-sniping lock time applies; signals replaceability
/// (BIP125), as Bitcoin Core's wallet does by default.
pub const PENALTY_SEQUENCE: Sequence = Sequence::ENABLE_RBF_NO_LOCKTIME;

/// Anti-fee-sniping lock time, as Bitcoin Core's wallet sets it: the height of the current chain
/// tip, so the transaction can only be mined in the next block or later and a miner re-mining the
/// tip gains nothing by including it. A height beyond the block-height range (never a real tip)
/// leaves the lock time at zero.
pub fn anti_fee_sniping_lock_time(tip_height: u32) -> LockTime {
    LockTime::from_height(tip_height).unwrap_or(LockTime::ZERO)
}

fn sweep_tx(
    spend: &DelayedSpend<'_>,
    sequence: Sequence,
    tip_height: u32,
    outputs: Vec<TxOut>,
) -> Transaction {
    Transaction {
        version: Version::TWO,
        lock_time: anti_fee_sniping_lock_time(tip_height),
        input: vec![TxIn {
            previous_output: OutPoint {
                txid: spend.txid,
                vout: spend.vout,
            },
            script_sig: ScriptBuf::new(),
            sequence,
            witness: Witness::new(),
        }],
        output: outputs,
    }
}

fn sign_script_path(
    tx: &Transaction,
    prevout: &TxOut,
    leaf: &ScriptBuf,
    key: &SecretKey,
) -> Result<[u8; 64], TxError> {
    let prevouts = [prevout.clone()];
    let digest = SighashCache::new(tx)
        .taproot_script_spend_signature_hash(
            0,
            &Prevouts::All(&prevouts),
            TapLeafHash::from_script(leaf, LeafVersion::TapScript),
            TapSighashType::Default,
        )
        .map_err(|e| TxError::Sighash(e.to_string()))?;
    let kp = Keypair::from_secret_key(secp(), key);
    Ok(secp()
        .sign_schnorr_no_aux_rand(&Message::from_digest(digest.to_byte_array()), &kp)
        .serialize())
}

fn sign_p2wsh(
    tx: &Transaction,
    prevout: &TxOut,
    script: &ScriptBuf,
    key: &SecretKey,
) -> Result<Vec<u8>, TxError> {
    let digest = SighashCache::new(tx)
        .p2wsh_signature_hash(0, script, prevout.value, EcdsaSighashType::All)
        .map_err(|e| TxError::Sighash(e.to_string()))?;
    let sig = secp().sign_ecdsa(&Message::from_digest(digest.to_byte_array()), key);
    let mut v = sig.serialize_der().to_vec();
    v.push(EcdsaSighashType::All as u8);
    Ok(v)
}

/// The holder's sweep of its delayed output after `to_self_delay` blocks, paying `destination`.
/// `delayed_secret` is [`keys::derive_privkey`] of the delayed payment basepoint secret.
/// `tip_height` is the current chain tip: the sweep's nLockTime
/// ([`anti_fee_sniping_lock_time`]); its nSequence is the relative timelock, which also makes the
/// lock time count.
///
/// # Errors
/// [`TxError::SweepTooSmall`], [`TxError::Sighash`].
pub fn build_delayed_sweep(
    params: &ChannelParams,
    spend: &DelayedSpend<'_>,
    delayed_secret: &SecretKey,
    destination: ScriptBuf,
    tip_height: u32,
) -> Result<Transaction, TxError> {
    let fee = fee_for_weight(
        params.feerate_per_kw,
        sweep_weight(params.participants.len(), false),
    );
    let value = spend
        .txout
        .value
        .checked_sub(fee)
        .filter(|v| *v >= DUST_LIMIT)
        .ok_or(TxError::SweepTooSmall {
            amount: spend.txout.value.to_sat(),
            fee: fee.to_sat(),
        })?;
    let sequence = Sequence::from_height(params.to_self_delay);
    let mut tx = sweep_tx(
        spend,
        sequence,
        tip_height,
        vec![TxOut {
            value,
            script_pubkey: destination,
        }],
    );
    let mut w = Witness::new();
    match spend.delayed {
        DelayedOutput::P2wsh { witness_script } => {
            w.push(sign_p2wsh(
                &tx,
                &spend.txout,
                witness_script,
                delayed_secret,
            )?);
            w.push([]);
            w.push(witness_script.as_bytes());
        }
        DelayedOutput::Taproot {
            delayed_leaf, info, ..
        } => {
            w.push(sign_script_path(
                &tx,
                &spend.txout,
                delayed_leaf,
                delayed_secret,
            )?);
            w.push(delayed_leaf.as_bytes());
            w.push(control_block(info, delayed_leaf).serialize());
        }
    }
    tx.input[0].witness = w;
    Ok(tx)
}

/// Participant `penalizer`'s penalty transaction taking a revoked commitment's delayed output.
/// `revocation_secret` is [`keys::derive_revocation_privkey`] of the penalizer's revocation basepoint
/// secret and the cheater's revealed per-commitment secret. For `n = 2` everything goes to the
/// penalizer's payout script. For `n > 2` each honest participant first gets its `claims` entry (what
/// the revoked state shorted it compared with the latest state; the shortfall of all honest
/// participants together equals what the cheater took, so the cheater's output covers it up to the
/// fee), then the rest is split equally among the honest participants (remainder to the penalizer);
/// a part below dust goes to the penalizer instead. `tip_height` is the current chain tip: the
/// penalty's nLockTime ([`anti_fee_sniping_lock_time`]), enabled by its nSequence
/// [`PENALTY_SEQUENCE`].
///
/// # Errors
/// [`TxError::SweepTooSmall`], [`TxError::NoSuchParticipant`], [`TxError::Sighash`].
pub fn build_penalty(
    params: &ChannelParams,
    spend: &DelayedSpend<'_>,
    cheater: usize,
    penalizer: usize,
    revocation_secret: &SecretKey,
    claims: &[Amount],
    tip_height: u32,
) -> Result<Transaction, TxError> {
    let n = params.participants.len();
    if penalizer >= n || penalizer == cheater {
        return Err(TxError::NoSuchParticipant { index: penalizer });
    }
    let fee = fee_for_weight(params.feerate_per_kw, sweep_weight(n, true));
    let total = spend
        .txout
        .value
        .checked_sub(fee)
        .filter(|v| *v >= DUST_LIMIT)
        .ok_or(TxError::SweepTooSmall {
            amount: spend.txout.value.to_sat(),
            fee: fee.to_sat(),
        })?;
    let honest: Vec<usize> = (0..n).filter(|i| *i != cheater).collect();
    let mut pay = vec![Amount::ZERO; n];
    let mut left = total;
    if n > 2 {
        for &i in &honest {
            let claim = claims.get(i).copied().unwrap_or(Amount::ZERO).min(left);
            pay[i] = claim;
            left -= claim;
        }
        let share = Amount::from_sat(left.to_sat() / honest.len() as u64);
        for &i in &honest {
            pay[i] += share;
            left -= share;
        }
    }
    pay[penalizer] += left;
    for &i in &honest {
        if i != penalizer && pay[i] < DUST_LIMIT {
            let v = pay[i];
            pay[i] = Amount::ZERO;
            pay[penalizer] += v;
        }
    }
    let mut outputs = Vec::new();
    for &i in &honest {
        if pay[i] > Amount::ZERO {
            outputs.push(TxOut {
                value: pay[i],
                script_pubkey: payout_script(&params.participants, i)?,
            });
        }
    }
    let mut tx = sweep_tx(spend, PENALTY_SEQUENCE, tip_height, outputs);
    let mut w = Witness::new();
    match spend.delayed {
        DelayedOutput::P2wsh { witness_script } => {
            w.push(sign_p2wsh(
                &tx,
                &spend.txout,
                witness_script,
                revocation_secret,
            )?);
            w.push([1u8]);
            w.push(witness_script.as_bytes());
        }
        DelayedOutput::Taproot {
            revocation_leaves,
            info,
            ..
        } => {
            let leaf = revocation_leaves
                .get(penalizer)
                .and_then(Option::as_ref)
                .ok_or(TxError::NoSuchParticipant { index: penalizer })?;
            w.push(sign_script_path(
                &tx,
                &spend.txout,
                leaf,
                revocation_secret,
            )?);
            w.push(leaf.as_bytes());
            w.push(control_block(info, leaf).serialize());
        }
    }
    tx.input[0].witness = w;
    Ok(tx)
}

/// A coin funding a channel: a P2WPKH or P2PKH output the funder can sign for.
#[derive(Debug, Clone)]
pub struct FundingInput {
    /// The coin.
    pub outpoint: OutPoint,
    /// Its output (value and script).
    pub txout: TxOut,
    /// The key of its P2WPKH/P2PKH script.
    pub secret: SecretKey,
}

/// Builds and signs the funding transaction: output 0 is the funding output, output 1 (if not dust)
/// the change to `change_script`; `fee` is paid by the inputs.
///
/// # Errors
/// [`TxError::InsufficientInputs`], [`TxError::Parameter`] (unsupported input script), [`TxError::Sighash`].
pub fn build_funding(
    params_participants: &[ParticipantKeys],
    inputs: &[FundingInput],
    funding_amount: Amount,
    change_script: ScriptBuf,
    fee: Amount,
) -> Result<Transaction, TxError> {
    let funding_spk = FundingScript::new(params_participants)?.script_pubkey();
    let total_in = sum_amounts(&inputs.iter().map(|i| i.txout.value).collect::<Vec<_>>()).ok_or(
        TxError::Parameter {
            name: "input sum",
            value: u64::MAX,
        },
    )?;
    let needed = funding_amount.checked_add(fee).ok_or(TxError::Parameter {
        name: "fee",
        value: fee.to_sat(),
    })?;
    let change = total_in
        .checked_sub(needed)
        .ok_or(TxError::InsufficientInputs {
            inputs: total_in.to_sat(),
            needed: needed.to_sat(),
        })?;
    let mut output = vec![TxOut {
        value: funding_amount,
        script_pubkey: funding_spk,
    }];
    if change >= DUST_LIMIT {
        output.push(TxOut {
            value: change,
            script_pubkey: change_script,
        });
    }
    let mut tx = Transaction {
        version: Version::TWO,
        lock_time: LockTime::ZERO,
        input: inputs
            .iter()
            .map(|i| TxIn {
                previous_output: i.outpoint,
                script_sig: ScriptBuf::new(),
                sequence: Sequence::MAX,
                witness: Witness::new(),
            })
            .collect(),
        output,
    };
    let mut script_sigs = Vec::with_capacity(inputs.len());
    let mut witnesses = Vec::with_capacity(inputs.len());
    {
        let mut cache = SighashCache::new(&tx);
        for (idx, input) in inputs.iter().enumerate() {
            let pk = PublicKey::from_secret_key(secp(), &input.secret);
            let spk = &input.txout.script_pubkey;
            let digest = if spk.is_p2wpkh() {
                cache
                    .p2wpkh_signature_hash(idx, spk, input.txout.value, EcdsaSighashType::All)
                    .map_err(|e| TxError::Sighash(e.to_string()))?
                    .to_byte_array()
            } else if spk.is_p2pkh() {
                cache
                    .legacy_signature_hash(idx, spk, EcdsaSighashType::All as u32)
                    .map_err(|e| TxError::Sighash(e.to_string()))?
                    .to_byte_array()
            } else {
                return Err(TxError::Parameter {
                    name: "funding input script",
                    value: idx as u64,
                });
            };
            let sig = secp().sign_ecdsa(&Message::from_digest(digest), &input.secret);
            let mut der = sig.serialize_der().to_vec();
            der.push(EcdsaSighashType::All as u8);
            if spk.is_p2wpkh() {
                let mut w = Witness::new();
                w.push(&der);
                w.push(pk.serialize());
                script_sigs.push(ScriptBuf::new());
                witnesses.push(w);
            } else {
                let der = PushBytesBuf::try_from(der)
                    .map_err(|_| TxError::MalformedSignature { index: idx })?;
                script_sigs.push(
                    Builder::new()
                        .push_slice(der)
                        .push_slice(pk.serialize())
                        .into_script(),
                );
                witnesses.push(Witness::new());
            }
        }
    }
    for (input, (s, w)) in tx
        .input
        .iter_mut()
        .zip(script_sigs.into_iter().zip(witnesses))
    {
        input.script_sig = s;
        input.witness = w;
    }
    Ok(tx)
}

/// Number of blocks after which an output confirmed at `confirmed_height` satisfies a relative
/// timelock of `delay` blocks at `height` (BIP68: the spend may be mined at `confirmed + delay`).
pub fn relative_timelock_met(confirmed_height: u32, delay: u16, next_block_height: u32) -> bool {
    next_block_height >= confirmed_height.saturating_add(u32::from(delay))
}

/// Whether `tx`'s absolute locktime (block-height form) allows it in the block at `next_block_height`.
/// Timestamp locktimes (≥ 500,000,000, used by commitments to carry the obscured number) are treated as
/// satisfied: commitments are always in the past in time.
pub fn absolute_timelock_met(tx: &Transaction, next_block_height: u32) -> bool {
    let lt = tx.lock_time.to_consensus_u32();
    if lt == 0 || tx.input.iter().all(|i| i.sequence == Sequence::MAX) {
        return true;
    }
    if lt >= 500_000_000 {
        return true;
    }
    lt < next_block_height
}
