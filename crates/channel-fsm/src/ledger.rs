//! The versioned ledger of internal outputs inside a channel, transfers between participants, their
//! validation, and the state root that every participant co-signs (with inclusion proofs so a
//! participant can prove one of its outputs against a co-signed root).
//!
//! The state root is the root of a `merkle_proofs::Commitment` over the internal outputs
//! ([`StateTree`]): each output is a coin at outpoint [`output_outpoint`] (txid = tagged hash of the
//! channel id and output id, vout = index) paying [`owner_script`] of its owner's state key. The tree
//! follows the ledger incrementally (only spent and created outputs are applied per version), and
//! [`StateTree::prove_balance`] gives a participant a `merkle_proofs` inclusion proof of its outputs
//! to check against the co-signed root ([`BalanceProof::verify`]).

use std::collections::BTreeMap;
use std::sync::OnceLock;

use bitcoin::hashes::{Hash, HashEngine, sha256};
use bitcoin::{Amount, OutPoint, ScriptBuf, Txid};
use merkle_proofs::{Claim, CoinView, Commitment, Layout, LeafCoin, Proof, Root};
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
// A ledger always fits the compact layout of its state tree.
const _: () = assert!(LEDGER_OUTPUTS_MAX <= merkle_proofs::COMPACT_MAX);

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

/// [`tagged`] computed once per process (the engine after the 64-byte tag prefix: two SHA256
/// compressions saved per digest).
fn tagged_cached(cell: &'static OnceLock<sha256::HashEngine>, tag: &str) -> sha256::HashEngine {
    cell.get_or_init(|| tagged(tag)).clone()
}

static TRANSFER_TAG: OnceLock<sha256::HashEngine> = OnceLock::new();
static STATE_TAG: OnceLock<sha256::HashEngine> = OnceLock::new();
static OUTPUT_TAG: OnceLock<sha256::HashEngine> = OnceLock::new();

impl Transfer {
    /// The BIP340-style tagged hash the sender signs: tag `channel-fsm/transfer`, over the channel id,
    /// the version the transfer applies to (the current version), sender, inputs and outputs.
    pub fn digest(&self, channel_id: &ChannelId, base_version: u64) -> [u8; 32] {
        let mut e = tagged_cached(&TRANSFER_TAG, "channel-fsm/transfer");
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
    let mut e = tagged_cached(&STATE_TAG, "channel-fsm/state");
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

/// Fewest signatures [`verify_state_signatures_parallel`] splits across threads: below it, starting
/// a thread (tens of microseconds) costs more than the signatures it would take over (one BIP340
/// verification is ~35 µs here).
pub const PARALLEL_VERIFY_MIN: usize = 8;
/// Most threads [`verify_state_signatures_parallel`] uses.
pub const VERIFY_THREADS_MAX: usize = 16;

/// Verifies all state signatures of a version (participant order) split over up to `threads`
/// threads (capped at [`VERIFY_THREADS_MAX`]): one contiguous chunk per thread, the calling thread
/// taking the first, with `std::thread::scope` (no thread outlives the call). Fewer than
/// [`PARALLEL_VERIFY_MIN`] signatures, or `threads ≤ 1`, stay on the calling thread.
///
/// # Errors
/// The lowest index of a signature that does not verify (or is missing).
pub fn verify_state_signatures_parallel(
    channel_id: &ChannelId,
    version: u64,
    root: &[u8; 32],
    keys: &[<DefaultBackend as SigBackend>::XOnlyPublic],
    sigs: &[[u8; 64]],
    threads: usize,
) -> Result<(), usize> {
    let n = keys.len();
    if sigs.len() != n {
        return Err(n.min(sigs.len()));
    }
    let digest = state_digest(channel_id, version, root);
    let check = |range: std::ops::Range<usize>| verify_range(&digest, keys, sigs, range);
    let threads = threads.clamp(1, VERIFY_THREADS_MAX).min(n.max(1));
    if threads == 1 || n < PARALLEL_VERIFY_MIN {
        return check(0..n);
    }
    let per = n.div_ceil(threads);
    let check = &check;
    std::thread::scope(|scope| {
        let others: Vec<_> = (1..threads)
            .map(|t| scope.spawn(move || check(t * per..((t + 1) * per).min(n))))
            .collect();
        let mut result = check(0..per.min(n));
        for (t, handle) in others.into_iter().enumerate() {
            // A panicking verifier (never expected) counts as a failure of its first signature.
            let r = handle.join().unwrap_or(Err((t + 1) * per));
            if let Err(i) = r {
                result = Err(result.err().map_or(i, |j| j.min(i)));
            }
        }
        result
    })
}

/// Signatures per claim of a [`StateVerifier`] call: threads claim signatures one at a time, so a
/// thread that is not scheduled (a busy machine) leaves its share to the others instead of making
/// the call wait for it (a claim is one atomic increment, ~1/1000 of a verification).
pub const VERIFY_CHUNK: usize = 1;

/// How long a pool thread polls for the next call before it sleeps: a sleeping thread takes tens
/// of microseconds to wake (a futex wake and a reschedule), a large part of a state's work, while
/// back-to-back calls arrive within a few microseconds.
pub const VERIFY_SPIN: std::time::Duration = std::time::Duration::from_micros(50);

/// One signature to verify: its state (index into [`StateBatch::digests`]), key and signature.
#[derive(Clone)]
struct Item {
    state: usize,
    key: <DefaultBackend as SigBackend>::XOnlyPublic,
    sig: [u8; 64],
}

/// The signatures of one [`StateVerifier`] call. Rewritten at the start of each call; its buffers
/// keep their capacity, so steady-state calls allocate nothing.
#[derive(Default)]
struct StateBatch {
    digests: Vec<[u8; 32]>,
    items: Vec<Item>,
}

impl crate::pool::Batch for StateBatch {
    fn len(&self) -> usize {
        self.items.len()
    }

    fn check(&self, i: usize) -> bool {
        match self.items.get(i) {
            Some(it) => self.digests.get(it.state).is_some_and(|digest| {
                DefaultBackend::schnorr_verify(&it.key, digest, &it.sig).is_ok()
            }),
            None => false,
        }
    }
}

/// The signatures of one state for [`StateVerifier::verify_batch`]: (channel id, version, root) and
/// every participant's key and signature in participant order.
#[derive(Debug, Clone, Copy)]
pub struct StateSignatures<'a> {
    /// The channel.
    pub channel_id: &'a ChannelId,
    /// The version.
    pub version: u64,
    /// Its state root.
    pub root: &'a [u8; 32],
    /// The participants' state keys.
    pub keys: &'a [<DefaultBackend as SigBackend>::XOnlyPublic],
    /// Their signatures (one per key).
    pub sigs: &'a [[u8; 64]],
}

/// A pool of verification threads started once, for callers that verify many states. A call
/// copies its signatures into the pool's reused buffers (no allocation once warm), starts one
/// epoch that wakes the pool's threads (only those asleep get a notification), and verifies
/// alongside them: every thread, the caller's included, claims one signature at a time, so the
/// split pays from [`PARALLEL_VERIFY_MIN`] signatures on when a core is free and costs little when
/// none is (the caller then verifies nearly all itself). No lock is held while signatures are
/// checked, and a call's claim counters belong to that call, so a late thread never touches the
/// next one (the protocol is a loom model, `cargo xtask loom`). A check that panicked would count
/// as a bad signature rather than leave the caller waiting. [`StateVerifier::verify_batch`] puts
/// the signatures of many states into one call. Calls from several threads are serialized.
/// Dropping the pool stops and joins its threads.
pub struct StateVerifier {
    pool: crate::pool::ClaimPool<StateBatch>,
}

impl std::fmt::Debug for StateVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateVerifier")
            .field("threads", &self.threads())
            .finish()
    }
}

impl StateVerifier {
    /// A pool verifying on `threads` threads in all (the caller's plus `threads − 1` workers; capped
    /// at [`VERIFY_THREADS_MAX`]).
    ///
    /// # Errors
    /// The OS error if a thread can't be started.
    pub fn new(threads: usize) -> std::io::Result<Self> {
        let workers = threads.clamp(1, VERIFY_THREADS_MAX) - 1;
        Ok(Self {
            pool: crate::pool::ClaimPool::new(workers, "state-verify")?,
        })
    }

    /// Threads used per call (the caller's included).
    pub fn threads(&self) -> usize {
        self.pool.threads()
    }

    /// As [`verify_state_signatures_parallel`], on the pool's threads.
    ///
    /// # Errors
    /// The lowest index of a signature that does not verify (or is missing).
    pub fn verify(
        &self,
        channel_id: &ChannelId,
        version: u64,
        root: &[u8; 32],
        keys: &[<DefaultBackend as SigBackend>::XOnlyPublic],
        sigs: &[[u8; 64]],
    ) -> Result<(), usize> {
        let n = keys.len();
        if sigs.len() != n {
            return Err(n.min(sigs.len()));
        }
        if self.pool.threads() == 1 || n < PARALLEL_VERIFY_MIN {
            let digest = state_digest(channel_id, version, root);
            return verify_range(&digest, keys, sigs, 0..n);
        }
        let state = StateSignatures {
            channel_id,
            version,
            root,
            keys,
            sigs,
        };
        self.verify_batch(std::slice::from_ref(&state))
            .map_err(|(_, i)| i)
    }

    /// Verifies the signatures of several states (each as [`verify_state_signatures`] over its
    /// whole range) in one call: one wake-up of the pool for all of them, every thread claiming
    /// signatures across state boundaries.
    ///
    /// # Errors
    /// `(state, signature)` of the first bad or missing signature in batch order.
    pub fn verify_batch(&self, states: &[StateSignatures<'_>]) -> Result<(), (usize, usize)> {
        // A length mismatch fails before any work; items before it still count as earlier.
        let mismatch = states
            .iter()
            .position(|s| s.sigs.len() != s.keys.len())
            .map(|s| (s, states[s].keys.len().min(states[s].sigs.len())));
        let upto = mismatch.map_or(states.len(), |(s, _)| s);
        let total: usize = states[..upto].iter().map(|s| s.keys.len()).sum();
        let bad = self.pool.run(total >= PARALLEL_VERIFY_MIN, |job| {
            job.digests.clear();
            job.items.clear();
            for (k, s) in states[..upto].iter().enumerate() {
                job.digests
                    .push(state_digest(s.channel_id, s.version, s.root));
                job.items
                    .extend(s.keys.iter().zip(s.sigs).map(|(key, sig)| Item {
                        state: k,
                        key: *key,
                        sig: *sig,
                    }));
            }
        });
        if let Some(bad) = bad {
            // Map the item back to (state, index within the state).
            let mut rest = bad;
            for (k, s) in states[..upto].iter().enumerate() {
                if rest < s.keys.len() {
                    return Err((k, rest));
                }
                rest -= s.keys.len();
            }
        }
        match mismatch {
            Some(m) => Err(m),
            None => Ok(()),
        }
    }
}

fn verify_range(
    digest: &[u8; 32],
    keys: &[<DefaultBackend as SigBackend>::XOnlyPublic],
    sigs: &[[u8; 64]],
    range: std::ops::Range<usize>,
) -> Result<(), usize> {
    for i in range {
        let (Some(k), Some(s)) = (keys.get(i), sigs.get(i)) else {
            return Err(i);
        };
        DefaultBackend::schnorr_verify(k, digest, s).map_err(|_| i)?;
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

/// The outpoint an internal output has in the state tree: txid = tagged hash (`channel-fsm/output`)
/// of (channel id, creating version, index), vout = index. Outputs of different channels or
/// versions never share an outpoint.
pub fn output_outpoint(channel_id: &ChannelId, id: &OutputId) -> OutPoint {
    let mut e = tagged_cached(&OUTPUT_TAG, "channel-fsm/output");
    e.input(channel_id);
    e.input(&id.version.to_le_bytes());
    e.input(&id.index.to_le_bytes());
    OutPoint {
        txid: Txid::from_byte_array(sha256::Hash::from_engine(e).to_byte_array()),
        vout: id.index,
    }
}

/// The script standing for an output's owner in the state tree: `<state key> OP_CHECKSIG`, the
/// owner's x-only state key (the key that signs its transfers).
pub fn owner_script(state_key: &[u8; 32]) -> ScriptBuf {
    let mut bytes = Vec::with_capacity(34);
    bytes.push(0x20); // OP_PUSHBYTES_32
    bytes.extend_from_slice(state_key);
    bytes.push(0xac); // OP_CHECKSIG
    ScriptBuf::from_bytes(bytes)
}

/// The coin an internal output is in the state tree (height 0, not coinbase: the creating version
/// is bound by [`output_outpoint`]).
pub fn output_coin(owner_script: &[u8], output: &InternalOutput) -> LeafCoin {
    LeafCoin {
        amount: output.amount.to_sat(),
        height: 0,
        is_coinbase: false,
        script: owner_script.to_vec(),
    }
}

/// A borrowed view of an output as a coin, so tree updates allocate no scripts.
struct CoinRef<'a> {
    amount: u64,
    script: &'a [u8],
}

impl CoinView for CoinRef<'_> {
    fn amount_sat(&self) -> u64 {
        self.amount
    }
    fn height(&self) -> u32 {
        0
    }
    fn is_coinbase(&self) -> bool {
        false
    }
    fn script_bytes(&self) -> &[u8] {
        self.script
    }
}

/// Why the state tree or a balance proof failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StateTreeError {
    /// An output's owner has no state key.
    #[error("output {id:?} is owned by {owner}, who has no state key")]
    NoSuchOwner {
        /// The output.
        id: OutputId,
        /// Its owner.
        owner: u16,
    },
    /// The commitment refused an update (it no longer matches the outputs it tracks).
    #[error("state tree update: {0}")]
    Update(String),
    /// The participant owns no output in this version (nothing to prove).
    #[error("participant {owner} owns no output in version {version}")]
    NoOutputs {
        /// The participant.
        owner: u16,
        /// The version.
        version: u64,
    },
    /// The commitment could not build the proof.
    #[error("proof: {0}")]
    Prove(String),
    /// A balance proof's claims are not exactly its listed outputs (or one is not the owner's).
    #[error("balance proof claims differ from its outputs")]
    ClaimsMismatch,
    /// The proof does not verify against the root.
    #[error("balance proof does not verify against the root: {0}")]
    Verify(String),
}

/// The commitment (`merkle_proofs::Commitment`) over one ledger's internal outputs, whose root is
/// the state root every participant co-signs. It follows the ledger incrementally
/// ([`StateTree::sync`] applies only the outputs spent and created since the version it tracks) and
/// proves a participant's outputs ([`StateTree::prove_balance`]).
///
/// It is derived data: rebuilt from the ledger at restore, never persisted. It uses the compact
/// layout of `merkle_proofs` (one sorted vector of 40-byte entries, rehashed per update: a ledger
/// holds at most [`LEDGER_OUTPUTS_MAX`] = `merkle_proofs::COMPACT_MAX` outputs), so a tree costs
/// ~40 bytes per output, not the paged layout's fixed megabytes.
#[derive(Debug, Clone)]
pub struct StateTree {
    channel_id: ChannelId,
    scripts: Vec<ScriptBuf>,
    commitment: Commitment,
    outputs: BTreeMap<OutputId, InternalOutput>,
    version: u64,
}

impl StateTree {
    /// The tree of `ledger` for a channel whose participants' x-only state keys are `state_keys`
    /// (participant order).
    ///
    /// # Errors
    /// [`StateTreeError::NoSuchOwner`] for an output of a participant without a key.
    pub fn new(
        channel_id: &ChannelId,
        state_keys: &[[u8; 32]],
        ledger: &Ledger,
    ) -> Result<Self, StateTreeError> {
        let mut commitment = Commitment::with_layout(Layout::Compact);
        // The caller (manager) parallelises across channels.
        commitment.set_threads(1);
        let mut tree = StateTree {
            channel_id: *channel_id,
            scripts: state_keys.iter().map(owner_script).collect(),
            commitment,
            outputs: BTreeMap::new(),
            version: 0,
        };
        tree.sync(ledger)?;
        Ok(tree)
    }

    /// Brings the tree to `ledger` (normally the next or previous version of the one it tracks) by
    /// applying only the outputs that differ, and returns the new root.
    ///
    /// # Errors
    /// [`StateTreeError::NoSuchOwner`]; [`StateTreeError::Update`] should never happen (the tree is
    /// unchanged then).
    pub fn sync(&mut self, ledger: &Ledger) -> Result<[u8; 32], StateTreeError> {
        let mut spent: Vec<(&OutputId, &InternalOutput)> = Vec::new();
        let mut created: Vec<(&OutputId, &InternalOutput)> = Vec::new();
        let mut old = self.outputs.iter().peekable();
        let mut new = ledger.outputs.iter().peekable();
        loop {
            match (old.peek().copied(), new.peek().copied()) {
                (Some(o), Some(n)) if o.0 == n.0 => {
                    if o.1 != n.1 {
                        spent.push(o);
                        created.push(n);
                    }
                    old.next();
                    new.next();
                }
                (Some(o), Some(n)) if o.0 < n.0 => {
                    spent.push(o);
                    old.next();
                }
                (Some(o), None) => {
                    spent.push(o);
                    old.next();
                }
                (_, Some(n)) => {
                    created.push(n);
                    new.next();
                }
                (None, None) => break,
            }
        }
        let (scripts, channel_id) = (&self.scripts, &self.channel_id);
        let coins = |list: Vec<(&OutputId, &InternalOutput)>| {
            list.into_iter()
                .map(|(id, o)| {
                    let script =
                        scripts
                            .get(usize::from(o.owner))
                            .ok_or(StateTreeError::NoSuchOwner {
                                id: *id,
                                owner: o.owner,
                            })?;
                    Ok((
                        output_outpoint(channel_id, id),
                        CoinRef {
                            amount: o.amount.to_sat(),
                            script: script.as_bytes(),
                        },
                    ))
                })
                .collect::<Result<Vec<(OutPoint, CoinRef<'_>)>, StateTreeError>>()
        };
        let spent_ids: Vec<OutputId> = spent.iter().map(|(i, _)| **i).collect();
        let created_outputs: Vec<(OutputId, InternalOutput)> =
            created.iter().map(|(i, o)| (**i, **o)).collect();
        let spent = coins(spent)?;
        let created = coins(created)?;
        if !spent.is_empty() || !created.is_empty() {
            self.commitment
                .apply_changes(
                    created.iter().map(|(o, c)| (o, c)),
                    spent.iter().map(|(o, c)| (o, c)),
                )
                .map_err(|e| StateTreeError::Update(e.to_string()))?;
            // The tracked outputs follow the same difference (no clone of the whole map).
            for id in &spent_ids {
                self.outputs.remove(id);
            }
            self.outputs.extend(created_outputs);
        }
        self.version = ledger.version;
        Ok(self.root())
    }

    /// The root of the outputs the tree tracks.
    pub fn root(&self) -> [u8; 32] {
        self.commitment.root().0
    }

    /// The ledger version the tree tracks (as of the last [`StateTree::sync`]).
    pub fn version(&self) -> u64 {
        self.version
    }

    /// A `merkle_proofs` inclusion proof of every output `owner` holds in the tracked version: with
    /// the co-signed root of that version it proves the owner's balance.
    ///
    /// # Errors
    /// [`StateTreeError::NoOutputs`], [`StateTreeError::NoSuchOwner`], [`StateTreeError::Prove`].
    pub fn prove_balance(&self, owner: u16) -> Result<BalanceProof, StateTreeError> {
        let outputs: Vec<(OutputId, InternalOutput)> = self
            .outputs
            .iter()
            .filter(|(_, o)| o.owner == owner)
            .map(|(i, o)| (*i, *o))
            .collect();
        if outputs.is_empty() {
            return Err(StateTreeError::NoOutputs {
                owner,
                version: self.version,
            });
        }
        let script = self
            .scripts
            .get(usize::from(owner))
            .ok_or(StateTreeError::NoSuchOwner {
                id: outputs[0].0,
                owner,
            })?;
        let coins: Vec<(OutPoint, LeafCoin)> = outputs
            .iter()
            .map(|(i, o)| {
                (
                    output_outpoint(&self.channel_id, i),
                    output_coin(script.as_bytes(), o),
                )
            })
            .collect();
        let proof = self
            .commitment
            .prove_many(coins.iter().map(|(op, c)| (op, Some(c))))
            .map_err(|e| StateTreeError::Prove(e.to_string()))?;
        Ok(BalanceProof {
            version: self.version,
            owner,
            outputs,
            proof,
        })
    }
}

/// Proof that participant `owner` holds `outputs` in `version` of a channel: a `merkle_proofs`
/// inclusion multi-proof of their coins, to check against that version's co-signed root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BalanceProof {
    /// The ledger version.
    pub version: u64,
    /// The participant.
    pub owner: u16,
    /// The outputs proved, by id.
    pub outputs: Vec<(OutputId, InternalOutput)>,
    /// The inclusion proof of their coins.
    pub proof: Proof,
}

impl BalanceProof {
    /// Checks that the proof's claims are exactly the listed outputs (as coins of `owner_state_key`
    /// in `channel_id`) and that it verifies against `root` with `merkle_proofs::verify`; returns
    /// the proved balance. Check separately that `root` is co-signed for [`BalanceProof::version`]
    /// ([`verify_state_signatures`]).
    ///
    /// # Errors
    /// [`StateTreeError::ClaimsMismatch`], [`StateTreeError::Verify`].
    pub fn verify(
        &self,
        channel_id: &ChannelId,
        owner_state_key: &[u8; 32],
        root: &[u8; 32],
    ) -> Result<Amount, StateTreeError> {
        let script = owner_script(owner_state_key);
        let mut total = Amount::ZERO;
        if self.outputs.len() != self.proof.claims.len() {
            return Err(StateTreeError::ClaimsMismatch);
        }
        for ((id, out), claim) in self.outputs.iter().zip(&self.proof.claims) {
            let op = output_outpoint(channel_id, id);
            let expected = Claim::Present {
                outpoint: merkle_proofs::outpoint_bytes(&op),
                coin: output_coin(script.as_bytes(), out),
            };
            if out.owner != self.owner || *claim != expected {
                return Err(StateTreeError::ClaimsMismatch);
            }
            total = total
                .checked_add(out.amount)
                .ok_or(StateTreeError::ClaimsMismatch)?;
        }
        merkle_proofs::verify(&Root(*root), &self.proof)
            .map_err(|e| StateTreeError::Verify(e.to_string()))?;
        Ok(total)
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

    fn keys(n: usize) -> Vec<[u8; 32]> {
        (0..n)
            .map(|i| [u8::try_from(i).expect("small") + 1; 32])
            .collect()
    }

    #[test]
    fn incremental_tree_matches_a_rebuild_and_proofs_bind_the_version() {
        let id = [5u8; 32];
        let keys = keys(3);
        let v0 = Ledger::genesis(&[
            Amount::from_sat(50_000),
            Amount::from_sat(30_000),
            Amount::from_sat(20_000),
        ])
        .expect("genesis");
        let mut tree = StateTree::new(&id, &keys, &v0).expect("tree");
        let root0 = tree.root();
        let mut ledger = v0.clone();
        for k in 0..5u64 {
            let sender = u16::try_from(k % 3).expect("small");
            let t = make_transfer(
                &ledger,
                &id,
                sender,
                (sender + 1) % 3,
                Amount::from_sat(1_000),
                |_| [0; 64],
            )
            .expect("transfer");
            ledger = ledger.apply_unchecked(&id, &[t]).expect("valid");
            let root = tree.sync(&ledger).expect("sync");
            assert_eq!(tree.version(), ledger.version);
            assert_eq!(tree.outputs, ledger.outputs);
            let fresh = StateTree::new(&id, &keys, &ledger).expect("tree");
            assert_eq!(fresh.root(), root, "incremental root equals a rebuild");
        }
        let root = tree.root();
        for owner in 0..3u16 {
            let proof = tree.prove_balance(owner).expect("has outputs");
            let key = &keys[usize::from(owner)];
            assert_eq!(
                proof.verify(&id, key, &root).expect("verifies"),
                ledger.balances()[usize::from(owner)]
            );
            assert!(merkle_proofs::verify(&Root(root), &proof.proof).is_ok());
            // Against the root of another version, or another channel's outpoints: refused.
            assert!(matches!(
                proof.verify(&id, key, &root0),
                Err(StateTreeError::Verify(_))
            ));
            assert!(merkle_proofs::verify(&Root(root0), &proof.proof).is_err());
            assert_eq!(
                proof.verify(&[6; 32], key, &root),
                Err(StateTreeError::ClaimsMismatch)
            );
            let mut forged = proof.clone();
            forged.outputs[0].1.amount += Amount::from_sat(1);
            assert_eq!(
                forged.verify(&id, key, &root),
                Err(StateTreeError::ClaimsMismatch)
            );
        }
        // Back to genesis: the tree reverts incrementally too.
        assert_eq!(tree.sync(&v0).expect("sync"), root0);
        assert_eq!(tree.outputs, v0.outputs);
        let empty = Ledger::genesis(&[Amount::ZERO, Amount::ZERO]).expect("genesis");
        let t = StateTree::new(&id, &keys, &empty).expect("tree");
        assert_eq!(t.root(), Root::empty().0);
        assert!(matches!(
            t.prove_balance(0),
            Err(StateTreeError::NoOutputs { .. })
        ));
    }

    /// `n` in-memory signers seeded `first..first + n`, and their state keys in the default backend.
    fn state_signers(
        n: usize,
        first: u8,
    ) -> (
        Vec<crate::signer::InMemorySigner>,
        Vec<<DefaultBackend as SigBackend>::XOnlyPublic>,
    ) {
        use crate::signer::{InMemorySigner, Signer};
        let signers: Vec<InMemorySigner> = (0..n)
            .map(|i| InMemorySigner::from_seed([u8::try_from(i).expect("small") + first; 32]))
            .collect();
        let keys = signers
            .iter()
            .map(|s| {
                DefaultBackend::parse_xonly_public(&s.keys().state_key.serialize()).expect("key")
            })
            .collect();
        (signers, keys)
    }

    #[test]
    fn parallel_state_verification_finds_the_lowest_bad_signature() {
        use crate::signer::Signer;
        let id = [9u8; 32];
        let root = [3u8; 32];
        for n in [2usize, PARALLEL_VERIFY_MIN - 1, PARALLEL_VERIFY_MIN, 16] {
            let (signers, keys) = state_signers(n, 1);
            let digest = state_digest(&id, 5, &root);
            let mut sigs: Vec<[u8; 64]> = signers.iter().map(|s| s.sign_state(&digest)).collect();
            for threads in [1, 2, 3, VERIFY_THREADS_MAX + 1] {
                assert_eq!(
                    verify_state_signatures_parallel(&id, 5, &root, &keys, &sigs, threads),
                    Ok(())
                );
                assert_eq!(
                    verify_state_signatures_parallel(&id, 6, &root, &keys, &sigs, threads),
                    Err(0),
                    "another version's signatures are replays"
                );
                let pool = StateVerifier::new(threads).expect("threads");
                assert_eq!(pool.threads(), threads.min(VERIFY_THREADS_MAX));
                assert_eq!(pool.verify(&id, 5, &root, &keys, &sigs), Ok(()));
                assert_eq!(pool.verify(&id, 6, &root, &keys, &sigs), Err(0));
            }
            // Corrupt two signatures: the lowest index is reported whichever thread finds it.
            let (a, b) = (n / 2, n - 1);
            sigs[b][0] ^= 1;
            if a != b {
                sigs[a][0] ^= 1;
            }
            for threads in [1, 2, 4] {
                assert_eq!(
                    verify_state_signatures_parallel(&id, 5, &root, &keys, &sigs, threads),
                    Err(a.min(b))
                );
                let pool = StateVerifier::new(threads).expect("threads");
                assert_eq!(pool.verify(&id, 5, &root, &keys, &sigs), Err(a.min(b)));
                assert_eq!(
                    pool.verify(&id, 5, &root, &keys, &sigs[..n - 1]),
                    Err(n - 1)
                );
            }
            assert_eq!(
                verify_state_signatures_parallel(&id, 5, &root, &keys, &sigs[..n - 1], 2),
                Err(n - 1)
            );
        }
    }

    #[test]
    fn batches_of_states_report_the_first_bad_signature() {
        use crate::signer::Signer;
        let (signers, keys) = state_signers(5, 40);
        let ids = [[1u8; 32], [2u8; 32], [3u8; 32]];
        let root = [7u8; 32];
        let mut sigs: Vec<Vec<[u8; 64]>> = ids
            .iter()
            .enumerate()
            .map(|(k, id)| {
                let d = state_digest(id, k as u64, &root);
                signers.iter().map(|s| s.sign_state(&d)).collect()
            })
            .collect();
        for threads in [1, 2, 3] {
            let pool = StateVerifier::new(threads).expect("threads");
            fn batch<'a>(
                ids: &'a [[u8; 32]],
                root: &'a [u8; 32],
                keys: &'a [<DefaultBackend as SigBackend>::XOnlyPublic],
                sigs: &'a [Vec<[u8; 64]>],
            ) -> Vec<StateSignatures<'a>> {
                ids.iter()
                    .zip(sigs)
                    .enumerate()
                    .map(|(k, (id, s))| StateSignatures {
                        channel_id: id,
                        version: k as u64,
                        root,
                        keys,
                        sigs: s,
                    })
                    .collect()
            }
            assert_eq!(pool.verify_batch(&batch(&ids, &root, &keys, &sigs)), Ok(()));
            assert_eq!(pool.verify_batch(&[]), Ok(()));
            // Swapping two states' signatures makes both replays: the first is reported.
            let mut swapped = sigs.clone();
            swapped.swap(1, 2);
            assert_eq!(
                pool.verify_batch(&batch(&ids, &root, &keys, &swapped)),
                Err((1, 0))
            );
            // A missing signature in state 2 and a bad one in state 1: state 1 comes first.
            let mut short = sigs.clone();
            short[2].pop();
            short[1][3][5] ^= 1;
            assert_eq!(
                pool.verify_batch(&batch(&ids, &root, &keys, &short)),
                Err((1, 3))
            );
            short[1][3][5] ^= 1;
            assert_eq!(
                pool.verify_batch(&batch(&ids, &root, &keys, &short)),
                Err((2, 4))
            );
            // The pool is reusable after failures.
            assert_eq!(pool.verify_batch(&batch(&ids, &root, &keys, &sigs)), Ok(()));
        }
        sigs.clear();
    }

    #[test]
    fn a_pool_shared_by_several_callers_gives_each_its_own_result() {
        use crate::signer::Signer;
        let n = PARALLEL_VERIFY_MIN;
        let (signers, keys) = state_signers(n, 60);
        let id = [5u8; 32];
        let root = [6u8; 32];
        let digest = state_digest(&id, 1, &root);
        let good: Vec<[u8; 64]> = signers.iter().map(|s| s.sign_state(&digest)).collect();
        let pool = StateVerifier::new(2).expect("threads");
        std::thread::scope(|scope| {
            for caller in 0..3usize {
                let (pool, keys, good) = (&pool, &keys, &good);
                scope.spawn(move || {
                    for round in 0..6usize {
                        let bad = (caller + round) % (n + 1);
                        let mut sigs = good.clone();
                        if bad < n {
                            sigs[bad][1] ^= 1;
                        }
                        let expected = if bad < n { Err(bad) } else { Ok(()) };
                        assert_eq!(pool.verify(&id, 1, &root, keys, &sigs), expected);
                    }
                });
            }
        });
    }

    #[test]
    fn digests_are_tagged_hashes_of_their_fields() {
        // The cached tag engines give BIP340-style tagged hashes, computed here from scratch.
        fn tagged_hash(tag: &str, data: &[u8]) -> [u8; 32] {
            let t = sha256::Hash::hash(tag.as_bytes()).to_byte_array();
            let mut all = t.to_vec();
            all.extend_from_slice(&t);
            all.extend_from_slice(data);
            sha256::Hash::hash(&all).to_byte_array()
        }
        for _ in 0..2 {
            let mut data = [7u8; 32].to_vec();
            data.extend_from_slice(&9u64.to_le_bytes());
            data.extend_from_slice(&[3u8; 32]);
            assert_eq!(
                state_digest(&[7; 32], 9, &[3; 32]),
                tagged_hash("channel-fsm/state", &data)
            );
            let id = OutputId {
                version: 4,
                index: 2,
            };
            let mut data = [7u8; 32].to_vec();
            data.extend_from_slice(&4u64.to_le_bytes());
            data.extend_from_slice(&2u32.to_le_bytes());
            let op = output_outpoint(&[7; 32], &id);
            assert_eq!(
                op.txid.to_byte_array(),
                tagged_hash("channel-fsm/output", &data)
            );
            assert_eq!(op.vout, 2);
        }
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
