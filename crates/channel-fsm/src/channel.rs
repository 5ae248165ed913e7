//! The channel state machine of one participant: sans-IO and deterministic. Inputs are peer
//! [`Message`]s, [`ChainEvent`]s and block heights; outputs are [`Action`]s. A failed transition
//! returns a [`ChannelError`] and leaves the channel exactly as it was (every handler works on a copy
//! that replaces the state only on success).
//!
//! **Persist before send.** Every transition that changes the state emits [`Action::Persist`] with
//! the whole new record first; messages that depend on it are held inside the channel and released by
//! [`Channel::persisted`] once the caller reports the record durable (synchronously, or later: an
//! asynchronous "in progress" persistence simply calls it later). A restart from the last persisted
//! record ([`Channel::restore`]) then [`Channel::resend`] re-sends what that record says was sent.
//!
//! **Protocol per version p** (generalized LN-penalty): a `Propose` (transfers on p − 1) → every
//! participant validates it and sends `Sign` (state signature over (channel id, p, root), its
//! signature on every other holder's commitment p, its per-commitment point for p + 1) → a participant
//! holding all `Sign`s has a fully signed commitment p and revokes p − 1 (`Revoke`, BOLT 3 secret) →
//! a new proposal is signed only once all others revoked p − 1.

use std::sync::Arc;

use bitcoin::secp256k1::PublicKey;
use bitcoin::{Amount, OutPoint, Transaction, TxOut, Txid};
use serde::{Deserialize, Serialize};

use crate::keys::{self, INDEX_START, KeyError, SecretStore};
use crate::ledger::{
    self, BalanceProof, ChannelId, Ledger, StateTree, StateTreeError, Transfer, TransferError,
};
use crate::msg::{Message, Sig};
use crate::sig::{DefaultBackend, SigBackend};
use crate::signer::Signer;
use crate::tx::{self, ChannelParams, DelayedSpend, FundingScript, TxError};

/// Default confirmations of the funding transaction before the channel is active.
pub const MIN_DEPTH_DEFAULT: u32 = 3;
/// Largest minimum depth accepted.
pub const MIN_DEPTH_MAX: u32 = 144;
/// Most blocks after opening by which the funding must confirm (BOLT 2's fundee timeout: 2016).
pub const FUNDING_TIMEOUT_MAX: u32 = 2016;
/// Default funding deadline of [`Channel::open`]: the height at opening plus this.
pub const FUNDING_TIMEOUT_DEFAULT: u32 = FUNDING_TIMEOUT_MAX;
/// Version byte of persisted channel records.
pub const RECORD_VERSION: u8 = 2;
/// Length of the blake3 checksum that ends every record.
pub const RECORD_CHECKSUM_LEN: usize = 8;
/// Largest persisted record accepted by [`Channel::restore`].
pub const RECORD_SIZE_MAX: usize = 4 << 20;

/// Lifecycle phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Phase {
    /// Funding being signed / awaiting confirmations.
    Opening,
    /// Open for updates.
    Active,
    /// Cooperative close (or our unilateral close) in progress.
    Closing,
    /// Closed cooperatively, on chain.
    Settled,
    /// A commitment was published.
    Disputed,
    /// A published commitment was settled without penalty (delayed output swept or not ours).
    Resolved,
    /// A revoked commitment was published and our penalty confirmed.
    Penalized,
    /// The funding did not confirm by the funding deadline (an absolute height): the channel is
    /// given up (BOLT 2's funding timeout). Nothing was at stake unless the funding confirms later,
    /// in which case [`Channel::force_close`] still publishes our fully signed commitment 0.
    Abandoned,
}

/// What a participant's node is told about the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainEvent {
    /// A block at `height` with the transactions relevant to the channel (others may be omitted).
    Block {
        /// Its height.
        height: u32,
        /// Its (relevant) transactions.
        txs: Vec<Transaction>,
    },
    /// A transaction seen unconfirmed (mempool) at `height`. Only a revoked commitment is acted on
    /// (the penalty goes out at once, as a child); everything else waits for confirmation.
    Seen {
        /// Current height.
        height: u32,
        /// The transaction.
        tx: Transaction,
    },
}

/// Something the caller must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Persist `record` durably, then call [`Channel::persisted`] with `record_id`.
    Persist {
        /// Identifies this record for [`Channel::persisted`].
        record_id: u64,
        /// The encoded record (see [`Channel::restore`]).
        record: Vec<u8>,
    },
    /// Send `msg` to participant `to`.
    Send {
        /// Recipient (participant index).
        to: u16,
        /// The message.
        msg: Message,
    },
    /// Broadcast a transaction.
    Broadcast {
        /// The transaction.
        tx: Transaction,
    },
    /// Tell the user.
    Event(Event),
}

/// Events for the user.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// The funding has enough confirmations.
    ChannelActive,
    /// The funding did not confirm by the deadline: the channel is [`Phase::Abandoned`].
    FundingTimedOut {
        /// The absolute height by which it had to confirm.
        deadline: u32,
    },
    /// A version is fully signed here.
    VersionCommitted {
        /// The version.
        version: u64,
    },
    /// Our proposal lost to a concurrent one from a lower-indexed participant.
    ProposalAbandoned {
        /// The version it was for.
        version: u64,
    },
    /// A commitment was published on chain.
    CommitmentConfirmed {
        /// Whose.
        holder: u16,
        /// Its number.
        version: u64,
        /// Whether it was revoked.
        revoked: bool,
    },
    /// The cooperative close confirmed.
    Settled {
        /// Close txid.
        txid: Txid,
    },
    /// Our penalty confirmed.
    Penalized {
        /// Penalty txid.
        txid: Txid,
    },
    /// The dispute ended without penalty.
    Resolved,
}

/// Why a transition failed (the channel is unchanged).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChannelError {
    /// Message for another channel.
    #[error("message for another channel")]
    WrongChannel,
    /// Sender index is not a participant (or is us).
    #[error("participant {from} is not a peer in this channel")]
    NotParticipant {
        /// The index.
        from: u16,
    },
    /// The message does not fit the current phase.
    #[error("{what} not allowed in phase {phase:?}")]
    WrongPhase {
        /// What was attempted.
        what: &'static str,
        /// Current phase.
        phase: Phase,
    },
    /// A version other than the one expected (older ones are replays).
    #[error("version {got} is not the expected {expected}")]
    UnexpectedVersion {
        /// Given.
        got: u64,
        /// Expected.
        expected: u64,
    },
    /// An update is already in flight.
    #[error("an update for version {version} is in flight")]
    UpdateInProgress {
        /// Its version.
        version: u64,
    },
    /// Not every participant has revoked the previous version yet.
    #[error("revocations of version {version} outstanding")]
    RevocationsOutstanding {
        /// The version.
        version: u64,
    },
    /// A concurrent proposal from a participant that doesn't take precedence.
    #[error("conflicting proposal from {from}")]
    ConflictingProposal {
        /// Its sender.
        from: u16,
    },
    /// A transfer is invalid.
    #[error(transparent)]
    Transfer(#[from] TransferError),
    /// A state signature is wrong (includes replays from other channels or versions).
    #[error("bad state signature from {from} for version {version}")]
    BadStateSignature {
        /// Signer.
        from: u16,
        /// Version.
        version: u64,
    },
    /// A commitment signature is wrong.
    #[error("bad commitment signature from {from} for version {version}")]
    BadCommitmentSignature {
        /// Signer.
        from: u16,
        /// Version.
        version: u64,
    },
    /// The signer computed a different root.
    #[error("participant {from} signed a different root for version {version}")]
    RootMismatch {
        /// Signer.
        from: u16,
        /// Version.
        version: u64,
    },
    /// A revealed secret does not match the participant's point.
    #[error("bad revocation secret from {from} for version {version}")]
    BadSecret {
        /// Sender.
        from: u16,
        /// Version.
        version: u64,
    },
    /// Malformed message contents (wrong vector lengths).
    #[error("malformed {what} from {from}")]
    Malformed {
        /// What.
        what: &'static str,
        /// Sender.
        from: u16,
    },
    /// Invalid configuration.
    #[error("invalid channel configuration: {reason}")]
    Config {
        /// Why.
        reason: &'static str,
    },
    /// The record is not one this version can read.
    #[error("corrupt or unknown record: {reason}")]
    Record {
        /// Why.
        reason: String,
    },
    /// The user asked for something unavailable (e.g. paying more than owned).
    #[error("nothing to do: {reason}")]
    Unavailable {
        /// Why.
        reason: &'static str,
    },
    /// Transaction building failed.
    #[error(transparent)]
    Tx(#[from] TxError),
    /// Key derivation failed.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The state tree failed.
    #[error(transparent)]
    StateTree(#[from] StateTreeError),
}

/// Everything agreed at open (out of band, like BOLT 2's `open_channel` / `accept_channel`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelConfig {
    /// Transaction parameters (participants in fixed order; 0 is the funder).
    pub params: ChannelParams,
    /// Opening balances, participant order, summing to the funding amount (participant 0's includes
    /// the on-chain fee reserve).
    pub initial_balances: Vec<Amount>,
    /// Every participant's per-commitment point for version 0.
    pub initial_points: Vec<PublicKey>,
    /// Confirmations before Active.
    pub min_depth: u32,
    /// The funding transaction (the funder broadcasts it once its commitment 0 is fully signed).
    pub funding_tx: Transaction,
}

/// The channel id of a funding outpoint: SHA256(txid bytes || vout LE).
pub fn channel_id_of(outpoint: &OutPoint) -> ChannelId {
    use bitcoin::hashes::{Hash, HashEngine, sha256};
    let mut e = sha256::Hash::engine();
    e.input(outpoint.txid.as_byte_array());
    e.input(&outpoint.vout.to_le_bytes());
    sha256::Hash::from_engine(e).to_byte_array()
}

/// serde for a value held behind an `Arc` (shared between a state and its copies, so that copying
/// a state before a transition does not copy it): encoded exactly as the value itself.
mod shared {
    use std::sync::Arc;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<T: Serialize, S: Serializer>(value: &Arc<T>, s: S) -> Result<S::Ok, S::Error> {
        T::serialize(value, s)
    }

    pub fn deserialize<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Arc<T>, D::Error> {
        T::deserialize(d).map(Arc::new)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct SignData {
    root: [u8; 32],
    state_sig: Sig,
    commitment_sig: Sig,
    next_point: PublicKey,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Pending {
    #[serde(with = "shared")]
    ledger: Arc<Ledger>,
    transfers: Vec<Transfer>,
    proposer: Option<u16>,
    my_digest: [u8; 32],
    signs: Vec<Option<SignData>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct CloseState {
    version: u64,
    tx: Transaction,
    digest: [u8; 32],
    sigs: Vec<Option<Sig>>,
    broadcast: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct OnChain {
    commitment: Transaction,
    holder: u16,
    number: u64,
    revoked: bool,
    point: PublicKey,
    confirmed_height: u32,
    /// Whether it is confirmed (false: seen in the mempool only).
    confirmed: bool,
    /// Our sweep / penalty, once built.
    response: Option<Transaction>,
}

/// The persisted state of one participant's view of one channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct State {
    /// Never changes after opening.
    #[serde(with = "shared")]
    config: Arc<ChannelConfig>,
    me: u16,
    channel_id: ChannelId,
    phase: Phase,
    /// Latest fully signed version (before version 0 completes: the genesis ledger).
    #[serde(with = "shared")]
    ledger: Arc<Ledger>,
    /// The state root of `ledger` (co-signed once `complete`).
    root: [u8; 32],
    complete: bool,
    /// Per-commitment points for `ledger.version − 1`.
    prev_points: Vec<PublicKey>,
    /// Per-commitment points for `ledger.version`.
    points: Vec<PublicKey>,
    /// Per-commitment points for the next version.
    next_points: Vec<PublicKey>,
    /// Others' signatures on my commitment at `ledger.version`.
    my_commitment_sigs: Vec<Sig>,
    /// State signatures of `ledger.version`.
    state_sigs: Vec<Sig>,
    pending: Option<Pending>,
    /// Who has revoked `ledger.version − 1` (all true when nothing is outstanding).
    revoked_prev: Vec<bool>,
    /// Changes only when a secret is revealed (copied then).
    #[serde(with = "shared")]
    secrets: Arc<Vec<SecretStore>>,
    funding_height: Option<u32>,
    /// The funding must confirm at a height ≤ this, or the channel is abandoned.
    funding_deadline: u32,
    height: u32,
    close: Option<CloseState>,
    onchain: Option<OnChain>,
    last_sent: Vec<(u16, Message)>,
    next_record_id: u64,
}

/// [`State`] after its first field (`config`), borrowed. postcard writes a struct as its fields in
/// order with nothing around them, so `postcard(config) || postcard(StateTail)` is exactly
/// `postcard(State)`: records keep their format while the configuration, which never changes after
/// opening, is encoded (and hashed) once per channel instead of on every transition.
#[derive(Serialize)]
struct StateTail<'a> {
    me: &'a u16,
    channel_id: &'a ChannelId,
    phase: &'a Phase,
    ledger: &'a Ledger,
    root: &'a [u8; 32],
    complete: &'a bool,
    prev_points: &'a [PublicKey],
    points: &'a [PublicKey],
    next_points: &'a [PublicKey],
    my_commitment_sigs: &'a [Sig],
    state_sigs: &'a [Sig],
    pending: &'a Option<Pending>,
    revoked_prev: &'a [bool],
    secrets: &'a [SecretStore],
    funding_height: &'a Option<u32>,
    funding_deadline: &'a u32,
    height: &'a u32,
    close: &'a Option<CloseState>,
    onchain: &'a Option<OnChain>,
    last_sent: &'a [(u16, Message)],
    next_record_id: &'a u64,
}

impl<'a> StateTail<'a> {
    fn of(state: &'a State) -> Self {
        // Exhaustive: a field added to State without being added here does not compile.
        let State {
            config: _,
            me,
            channel_id,
            phase,
            ledger,
            root,
            complete,
            prev_points,
            points,
            next_points,
            my_commitment_sigs,
            state_sigs,
            pending,
            revoked_prev,
            secrets,
            funding_height,
            funding_deadline,
            height,
            close,
            onchain,
            last_sent,
            next_record_id,
        } = state;
        StateTail {
            me,
            channel_id,
            phase,
            ledger: ledger.as_ref(),
            root,
            complete,
            prev_points,
            points,
            next_points,
            my_commitment_sigs,
            state_sigs,
            pending,
            revoked_prev,
            secrets: secrets.as_slice(),
            funding_height,
            funding_deadline,
            height,
            close,
            onchain,
            last_sent,
            next_record_id,
        }
    }
}

/// postcard output into a `Vec` that copies short runs byte by byte: a record is hundreds of one-
/// to ten-byte fields (varints of every ledger output, keys, signatures), and the `memcpy` call
/// per field that postcard's `Vec` flavors make cost more than the copying. Same bytes.
struct RecordBytes(Vec<u8>);

impl postcard::ser_flavors::Flavor for RecordBytes {
    type Output = Vec<u8>;

    #[inline]
    fn try_push(&mut self, byte: u8) -> postcard::Result<()> {
        self.0.push(byte);
        Ok(())
    }

    #[inline]
    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        if data.len() <= SHORT_RUN_MAX {
            for &byte in data {
                self.0.push(byte);
            }
        } else {
            self.0.extend_from_slice(data);
        }
        Ok(())
    }

    fn finalize(self) -> postcard::Result<Vec<u8>> {
        Ok(self.0)
    }
}

/// Longest run [`RecordBytes`] copies byte by byte.
const SHORT_RUN_MAX: usize = 16;

/// The start of every record of a channel: the version byte and the encoded configuration, and
/// the checksum's hasher after them (derived from the configuration, not persisted).
#[derive(Clone)]
struct RecordPrefix {
    bytes: Vec<u8>,
    hasher: blake3::Hasher,
}

impl std::fmt::Debug for RecordPrefix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordPrefix")
            .field("len", &self.bytes.len())
            .finish_non_exhaustive()
    }
}

impl RecordPrefix {
    fn new(config: &ChannelConfig) -> Self {
        let mut bytes = vec![RECORD_VERSION];
        // Serializing plain data into a Vec cannot fail.
        bytes.extend(postcard::to_stdvec(config).unwrap_or_default());
        let mut hasher = blake3::Hasher::new();
        hasher.update(&bytes);
        Self { bytes, hasher }
    }
}

/// One participant's channel.
#[derive(Debug, Clone)]
pub struct Channel<S: Signer> {
    state: State,
    signer: S,
    state_keys: Vec<<DefaultBackend as SigBackend>::XOnlyPublic>,
    /// The commitment over the latest ledger (pending or current); derived, not persisted.
    tree: StateTree,
    /// Derived from the configuration (not persisted): the funding script and output, and every
    /// participant's payout script (a taproot tweak each for n > 2, so computed once).
    funding_script: FundingScript,
    payouts: Vec<bitcoin::ScriptBuf>,
    funding_out: TxOut,
    /// Sends waiting for their record to be persisted.
    held: Vec<(u64, Vec<Action>)>,
    /// The configuration's part of every record (see [`StateTail`]); shared by clones.
    record_prefix: std::sync::Arc<RecordPrefix>,
}

/// A channel's state and held sends without its derived tree: a cheap way to undo a successful
/// transition (the manager's all-or-nothing batches). The tree is a cache that every use first
/// brings to the ledger it needs, so it need not be restored.
#[derive(Debug, Clone)]
pub(crate) struct Checkpoint {
    state: State,
    held: Vec<(u64, Vec<Action>)>,
}

fn fee_reserve(params: &ChannelParams) -> Amount {
    tx::commitment_fee(params)
}

impl<S: Signer> Channel<S> {
    /// Opens participant `me`'s side of a channel at block `height`: signs version 0. The funding
    /// must confirm by height `height + FUNDING_TIMEOUT_DEFAULT`.
    ///
    /// # Errors
    /// [`ChannelError::Config`] and builder errors.
    pub fn open(
        config: ChannelConfig,
        me: u16,
        signer: S,
        height: u32,
    ) -> Result<(Self, Vec<Action>), ChannelError> {
        let deadline = height.saturating_add(FUNDING_TIMEOUT_DEFAULT);
        Self::open_with_deadline(config, me, signer, height, deadline)
    }

    /// As [`Channel::open`], with the absolute height `funding_deadline` by which the funding must
    /// confirm (`height < funding_deadline ≤ height + FUNDING_TIMEOUT_MAX`); at a block of that
    /// height or above without the funding confirmed, the channel is [`Phase::Abandoned`].
    ///
    /// # Errors
    /// [`ChannelError::Config`] (also for a deadline out of range) and builder errors.
    pub fn open_with_deadline(
        config: ChannelConfig,
        me: u16,
        signer: S,
        height: u32,
        funding_deadline: u32,
    ) -> Result<(Self, Vec<Action>), ChannelError> {
        if funding_deadline <= height || funding_deadline - height > FUNDING_TIMEOUT_MAX {
            return Err(ChannelError::Config {
                reason: "funding deadline not within FUNDING_TIMEOUT_MAX blocks after opening",
            });
        }
        tx::check_params(&config.params)?;
        let n = config.params.participants.len();
        if usize::from(me) >= n {
            return Err(ChannelError::Config {
                reason: "me is not a participant",
            });
        }
        if signer.keys() != config.params.participants[usize::from(me)] {
            return Err(ChannelError::Config {
                reason: "signer keys differ from the configuration",
            });
        }
        if config.initial_balances.len() != n || config.initial_points.len() != n {
            return Err(ChannelError::Config {
                reason: "balances or points do not match participants",
            });
        }
        if config.initial_points[usize::from(me)] != signer.per_commitment_point(0)? {
            return Err(ChannelError::Config {
                reason: "own initial point differs",
            });
        }
        if config.min_depth == 0 || config.min_depth > MIN_DEPTH_MAX {
            return Err(ChannelError::Config {
                reason: "min_depth out of range",
            });
        }
        let funding_out = tx::funding_txout(&config.params)?;
        let fo = config.params.funding_outpoint;
        if config.funding_tx.compute_txid() != fo.txid
            || config.funding_tx.output.get(fo.vout as usize) != Some(&funding_out)
        {
            return Err(ChannelError::Config {
                reason: "funding transaction does not pay the funding output",
            });
        }
        let sum = config
            .initial_balances
            .iter()
            .try_fold(Amount::ZERO, |a, b| a.checked_add(*b));
        if sum != Some(config.params.funding_amount) {
            return Err(ChannelError::Config {
                reason: "initial balances do not sum to the funding amount",
            });
        }
        let mut genesis = config.initial_balances.clone();
        genesis[0] =
            genesis[0]
                .checked_sub(fee_reserve(&config.params))
                .ok_or(ChannelError::Config {
                    reason: "funder cannot pay the fee reserve",
                })?;
        let ledger = Arc::new(Ledger::genesis(&genesis)?);
        let state_keys = Self::parse_state_keys(&config.params)?;
        let channel_id = channel_id_of(&fo);
        let tree = StateTree::new(&channel_id, &Self::state_key_bytes(&config.params), &ledger)?;
        let root = tree.root();
        let state = State {
            me,
            channel_id,
            phase: Phase::Opening,
            ledger: Arc::clone(&ledger),
            root,
            complete: false,
            prev_points: config.initial_points.clone(),
            points: config.initial_points.clone(),
            next_points: config.initial_points.clone(),
            my_commitment_sigs: vec![Sig([0; 64]); n],
            state_sigs: vec![Sig([0; 64]); n],
            pending: None,
            revoked_prev: vec![true; n],
            secrets: Arc::new(vec![SecretStore::new(); n]),
            funding_height: None,
            funding_deadline,
            height,
            close: None,
            onchain: None,
            last_sent: Vec::new(),
            next_record_id: 0,
            config: Arc::new(config),
        };
        let funding_script = FundingScript::new(&state.config.params.participants)?;
        let payouts = tx::payout_scripts(&state.config.params.participants)?;
        let record_prefix = std::sync::Arc::new(RecordPrefix::new(&state.config));
        let mut ch = Channel {
            state,
            signer,
            state_keys,
            tree,
            funding_script,
            payouts,
            funding_out,
            held: Vec::new(),
            record_prefix,
        };
        let mut next = ch.state.clone();
        let mut out = Vec::new();
        ch.start_pending(&mut next, ledger, root, Vec::new(), None, &mut out)?;
        let actions = ch.commit(next, out);
        Ok((ch, actions))
    }

    fn state_key_bytes(params: &ChannelParams) -> Vec<[u8; 32]> {
        params
            .participants
            .iter()
            .map(|p| p.state_key.serialize())
            .collect()
    }

    fn parse_state_keys(
        params: &ChannelParams,
    ) -> Result<Vec<<DefaultBackend as SigBackend>::XOnlyPublic>, ChannelError> {
        params
            .participants
            .iter()
            .map(|p| {
                DefaultBackend::parse_xonly_public(&p.state_key.serialize()).map_err(|_| {
                    ChannelError::Config {
                        reason: "bad state key",
                    }
                })
            })
            .collect()
    }

    /// The state to return to with [`Channel::rollback`].
    pub(crate) fn checkpoint(&self) -> Checkpoint {
        Checkpoint {
            state: self.state.clone(),
            held: self.held.clone(),
        }
    }

    /// Undoes every transition since `checkpoint` was taken.
    pub(crate) fn rollback(&mut self, checkpoint: Checkpoint) {
        self.state = checkpoint.state;
        self.held = checkpoint.held;
    }

    /// Restores a channel from its last persisted record.
    ///
    /// # Errors
    /// [`ChannelError::Record`] for an unreadable record or one for other keys.
    pub fn restore(record: &[u8], signer: S) -> Result<Self, ChannelError> {
        if record.len() > RECORD_SIZE_MAX {
            return Err(ChannelError::Record {
                reason: format!("{} bytes", record.len()),
            });
        }
        if record.len() < 1 + RECORD_CHECKSUM_LEN {
            return Err(ChannelError::Record {
                reason: "truncated".into(),
            });
        }
        let (data, sum) = record.split_at(record.len() - RECORD_CHECKSUM_LEN);
        if blake3::hash(data).as_bytes()[..RECORD_CHECKSUM_LEN] != *sum {
            return Err(ChannelError::Record {
                reason: "checksum mismatch".into(),
            });
        }
        let (&v, body) = data.split_first().ok_or(ChannelError::Record {
            reason: "empty".into(),
        })?;
        if v != RECORD_VERSION {
            return Err(ChannelError::Record {
                reason: format!("version {v}"),
            });
        }
        let state: State = postcard::from_bytes(body).map_err(|e| ChannelError::Record {
            reason: e.to_string(),
        })?;
        if Some(signer.keys())
            != state
                .config
                .params
                .participants
                .get(usize::from(state.me))
                .copied()
        {
            return Err(ChannelError::Record {
                reason: "record is for another signer".into(),
            });
        }
        let state_keys = Self::parse_state_keys(&state.config.params)?;
        let funding_script = FundingScript::new(&state.config.params.participants)?;
        let funding_out = tx::funding_txout(&state.config.params)?;
        let latest = state.pending.as_ref().map_or(&state.ledger, |p| &p.ledger);
        let tree = StateTree::new(
            &state.channel_id,
            &Self::state_key_bytes(&state.config.params),
            latest,
        )?;
        let payouts = tx::payout_scripts(&state.config.params.participants)?;
        let record_prefix = std::sync::Arc::new(RecordPrefix::new(&state.config));
        Ok(Channel {
            state,
            signer,
            state_keys,
            tree,
            funding_script,
            payouts,
            funding_out,
            held: Vec::new(),
            record_prefix,
        })
    }

    /// Record layout: version byte, postcard body, first [`RECORD_CHECKSUM_LEN`] bytes of
    /// blake3(version byte || body).
    ///
    /// The version byte and the configuration come encoded and hashed from `prefix` (built from
    /// `state.config`, which never changes): the same bytes as encoding the whole state.
    fn encode_record(prefix: &RecordPrefix, state: &State) -> Vec<u8> {
        let mut out = Vec::with_capacity(prefix.bytes.len() + 1024);
        out.extend_from_slice(&prefix.bytes);
        // Serializing plain data into a Vec cannot fail.
        let mut out = postcard::serialize_with_flavor(&StateTail::of(state), RecordBytes(out))
            .unwrap_or_default();
        // Every test transition checks the pieces (prefix, borrowed tail, shared values, output
        // flavor) against plain postcard of the whole state.
        #[cfg(debug_assertions)]
        {
            let mut plain = vec![RECORD_VERSION];
            plain.extend(postcard::to_stdvec(state).unwrap_or_default());
            debug_assert!(out == plain, "record encoding differs from postcard(State)");
        }
        let mut hasher = prefix.hasher.clone();
        hasher.update(out.get(prefix.bytes.len()..).unwrap_or_default());
        let sum = hasher.finalize();
        out.extend_from_slice(&sum.as_bytes()[..RECORD_CHECKSUM_LEN]);
        out
    }

    /// Installs `next`, returning a Persist action followed by the non-send actions; sends are held
    /// until [`Channel::persisted`].
    fn commit(&mut self, mut next: State, actions: Vec<Action>) -> Vec<Action> {
        let record_id = next.next_record_id;
        next.next_record_id += 1;
        let record = Self::encode_record(&self.record_prefix, &next);
        self.state = next;
        let (sends, rest): (Vec<Action>, Vec<Action>) = actions
            .into_iter()
            .partition(|a| matches!(a, Action::Send { .. } | Action::Broadcast { .. }));
        if !sends.is_empty() {
            self.held.push((record_id, sends));
        }
        let mut out = vec![Action::Persist { record_id, record }];
        out.extend(rest);
        out
    }

    /// The caller persisted record `record_id` (and all before it): releases the messages and
    /// broadcasts that depended on it.
    pub fn persisted(&mut self, record_id: u64) -> Vec<Action> {
        let mut out = Vec::new();
        let mut keep = Vec::new();
        for (id, actions) in self.held.drain(..) {
            if id <= record_id {
                out.extend(actions)
            } else {
                keep.push((id, actions))
            }
        }
        self.held = keep;
        out
    }

    /// Whether sends are waiting for persistence.
    pub fn has_held(&self) -> bool {
        !self.held.is_empty()
    }

    /// Re-sends the latest messages (after a reconnect, a restart, or suspected loss). Receivers treat
    /// duplicates as no-ops.
    pub fn resend(&self) -> Vec<Action> {
        if !self.held.is_empty() {
            return Vec::new();
        }
        self.state
            .last_sent
            .iter()
            .map(|(to, msg)| Action::Send {
                to: *to,
                msg: msg.clone(),
            })
            .collect()
    }

    /// The encoded record of the current state (what the last Persist carried, or will).
    pub fn record(&self) -> Vec<u8> {
        Self::encode_record(&self.record_prefix, &self.state)
    }

    /// Current phase.
    pub fn phase(&self) -> Phase {
        self.state.phase
    }
    /// Channel id.
    pub fn channel_id(&self) -> &ChannelId {
        &self.state.channel_id
    }
    /// Our participant index.
    pub fn me(&self) -> u16 {
        self.state.me
    }
    /// Latest fully signed ledger (version 0 may still be incomplete while Opening).
    pub fn ledger(&self) -> &Ledger {
        &self.state.ledger
    }
    /// The state root of [`Channel::ledger`] (the one the participants co-signed once complete).
    pub fn state_root(&self) -> [u8; 32] {
        self.state.root
    }
    /// A `merkle_proofs` inclusion proof of `owner`'s outputs in [`Channel::ledger`], to check with
    /// [`BalanceProof::verify`] against [`Channel::state_root`] (co-signed: see
    /// [`Channel::state_signatures`]). Moves the internal tree back to that version if an update is
    /// in flight (the next update moves it forward again).
    ///
    /// # Errors
    /// [`ChannelError::StateTree`] when `owner` has no output.
    pub fn prove_balance(&mut self, owner: u16) -> Result<BalanceProof, ChannelError> {
        self.tree.sync(&self.state.ledger)?;
        Ok(self.tree.prove_balance(owner)?)
    }
    /// The absolute height by which the funding must confirm.
    pub fn funding_deadline(&self) -> u32 {
        self.state.funding_deadline
    }
    /// Whether an update is in flight.
    pub fn pending_version(&self) -> Option<u64> {
        self.state.pending.as_ref().map(|p| p.ledger.version)
    }
    /// The state signatures of the latest fully signed version (participant order).
    pub fn state_signatures(&self) -> Vec<[u8; 64]> {
        self.state.state_sigs.iter().map(|s| s.0).collect()
    }
    /// The configuration.
    pub fn config(&self) -> &ChannelConfig {
        &self.state.config
    }
    /// Whether every other participant revoked the version before the current one.
    pub fn revocations_complete(&self) -> bool {
        self.state.revoked_prev.iter().all(|b| *b)
    }
    /// The ledger balances the on-chain commitment pays (participant 0 plus its fee reserve).
    pub fn commitment_balances(ledger: &Ledger, params: &ChannelParams) -> Vec<Amount> {
        let mut b = ledger.balances();
        if let Some(first) = b.first_mut() {
            *first = first
                .checked_add(fee_reserve(params))
                .unwrap_or(Amount::MAX_MONEY);
        }
        b
    }

    fn n(&self) -> usize {
        self.state.config.params.participants.len()
    }

    fn peers(&self) -> impl Iterator<Item = u16> + '_ {
        let me = self.state.me;
        (0..u16::try_from(self.n()).unwrap_or(0)).filter(move |i| *i != me)
    }

    /// Builds, signs and records our Sign for `ledger` (the new pending version).
    fn start_pending(
        &self,
        next: &mut State,
        ledger: Arc<Ledger>,
        root: [u8; 32],
        transfers: Vec<Transfer>,
        proposer: Option<u16>,
        out: &mut Vec<Action>,
    ) -> Result<(), ChannelError> {
        let params = &next.config.params;
        let n = params.participants.len();
        let version = ledger.version;
        let balances = Self::commitment_balances(&ledger, params);
        let script = &self.funding_script;
        let funding_out = &self.funding_out;
        let me = usize::from(next.me);
        let mut commitment_sigs = vec![Sig([0; 64]); n];
        let mut my_digest = [0u8; 32];
        for (h, sig) in commitment_sigs.iter_mut().enumerate() {
            let point = &next.next_points[h];
            let derived = self.signer.delayed_keys(params, me, h, version, point)?;
            let c = tx::build_commitment_with_keys(
                params,
                h,
                version,
                &balances,
                &derived,
                &self.payouts,
            )?;
            let digest = script.sighash(&c.tx, 0, funding_out)?;
            if h == me {
                my_digest = digest;
            } else {
                *sig = Sig(self.signer.sign_funding_spend(script, &digest));
            }
        }
        let state_sig =
            Sig(self
                .signer
                .sign_state(&ledger::state_digest(&next.channel_id, version, &root)));
        let next_point = self.signer.per_commitment_point(version + 1)?;
        let mut signs = vec![None; n];
        signs[me] = Some(SignData {
            root,
            state_sig,
            commitment_sig: Sig([0; 64]),
            next_point,
        });
        let msg = Message::Sign {
            channel_id: next.channel_id,
            version,
            from: next.me,
            root,
            state_sig,
            commitment_sigs,
            next_point,
        };
        next.last_sent
            .retain(|(_, m)| !matches!(m, Message::Sign { .. } | Message::Propose { .. }));
        if proposer == Some(next.me) {
            for to in self.peers() {
                let m = Message::Propose {
                    channel_id: next.channel_id,
                    version,
                    from: next.me,
                    transfers: transfers.clone(),
                };
                out.push(Action::Send { to, msg: m.clone() });
                next.last_sent.push((to, m));
            }
        }
        for to in self.peers() {
            out.push(Action::Send {
                to,
                msg: msg.clone(),
            });
            next.last_sent.push((to, msg.clone()));
        }
        next.pending = Some(Pending {
            ledger,
            transfers,
            proposer,
            my_digest,
            signs,
        });
        Self::try_complete(&self.signer, next, out)?;
        Ok(())
    }

    /// If every Sign for the pending version is in, makes it current and revokes the previous one.
    fn try_complete(
        signer: &S,
        next: &mut State,
        out: &mut Vec<Action>,
    ) -> Result<(), ChannelError> {
        let Some(p) = next.pending.as_ref() else {
            return Ok(());
        };
        if p.signs.iter().any(Option::is_none) {
            return Ok(());
        }
        let Some(p) = next.pending.take() else {
            return Ok(());
        };
        let version = p.ledger.version;
        let signs: Vec<SignData> = p.signs.into_iter().flatten().collect();
        next.prev_points = std::mem::take(&mut next.points);
        next.points = std::mem::take(&mut next.next_points);
        next.next_points = signs.iter().map(|s| s.next_point).collect();
        next.my_commitment_sigs = signs.iter().map(|s| s.commitment_sig).collect();
        next.state_sigs = signs.iter().map(|s| s.state_sig).collect();
        next.ledger = p.ledger;
        next.root = signs[usize::from(next.me)].root;
        let first = !next.complete;
        next.complete = true;
        out.push(Action::Event(Event::VersionCommitted { version }));
        next.last_sent
            .retain(|(_, m)| !matches!(m, Message::Revoke { .. } | Message::Propose { .. }));
        if first {
            if next.me == 0 {
                out.push(Action::Broadcast {
                    tx: next.config.funding_tx.clone(),
                });
            }
        } else {
            let prev = version - 1;
            let secret = signer.per_commitment_secret(prev)?;
            let n = next.config.params.participants.len();
            let me = next.me;
            for to in (0..u16::try_from(n).unwrap_or(0)).filter(|i| *i != me) {
                let msg = Message::Revoke {
                    channel_id: next.channel_id,
                    version: prev,
                    from: me,
                    secret,
                };
                out.push(Action::Send {
                    to,
                    msg: msg.clone(),
                });
                next.last_sent.push((to, msg));
            }
            next.revoked_prev = (0..n).map(|i| i == usize::from(me)).collect();
        }
        Ok(())
    }

    /// Proposes the next version with `transfers` (normally our own, signed by us).
    ///
    /// # Errors
    /// [`ChannelError::WrongPhase`], [`ChannelError::UpdateInProgress`],
    /// [`ChannelError::RevocationsOutstanding`], [`ChannelError::Transfer`].
    pub fn propose(&mut self, transfers: Vec<Transfer>) -> Result<Vec<Action>, ChannelError> {
        self.check_can_update("propose")?;
        let ledger = self.state.ledger.apply_trusting(
            &self.state.channel_id,
            &transfers,
            &self.state_keys,
            self.state.me,
        )?;
        let root = self.tree.sync(&ledger)?;
        let mut next = self.state.clone();
        let mut out = Vec::new();
        let me = next.me;
        self.start_pending(
            &mut next,
            Arc::new(ledger),
            root,
            transfers,
            Some(me),
            &mut out,
        )?;
        Ok(self.commit(next, out))
    }

    /// Validates a proposal without applying it (the proposal's effect on a copy of the ledger).
    ///
    /// # Errors
    /// As [`Channel::propose`].
    pub fn check_proposal(&self, transfers: &[Transfer]) -> Result<Ledger, ChannelError> {
        self.check_can_update("propose")?;
        Ok(self
            .state
            .ledger
            .apply(&self.state.channel_id, transfers, &self.state_keys)?)
    }

    fn check_can_update(&self, what: &'static str) -> Result<(), ChannelError> {
        if self.state.phase != Phase::Active {
            return Err(ChannelError::WrongPhase {
                what,
                phase: self.state.phase,
            });
        }
        if let Some(p) = &self.state.pending {
            return Err(ChannelError::UpdateInProgress {
                version: p.ledger.version,
            });
        }
        if !self.revocations_complete() {
            return Err(ChannelError::RevocationsOutstanding {
                version: self.state.ledger.version.saturating_sub(1),
            });
        }
        Ok(())
    }

    /// Builds a transfer of `amount` from us to `recipient` on the current ledger, signed by us.
    ///
    /// # Errors
    /// [`ChannelError::Transfer`].
    pub fn make_transfer(&self, recipient: u16, amount: Amount) -> Result<Transfer, ChannelError> {
        let signer = &self.signer;
        Ok(ledger::make_transfer(
            &self.state.ledger,
            &self.state.channel_id,
            self.state.me,
            recipient,
            amount,
            |d| signer.sign_state(d),
        )?)
    }

    /// Handles a message from a peer.
    ///
    /// # Errors
    /// Any [`ChannelError`]; the channel is then unchanged.
    pub fn handle_message(&mut self, msg: Message) -> Result<Vec<Action>, ChannelError> {
        if *msg.channel_id() != self.state.channel_id {
            return Err(ChannelError::WrongChannel);
        }
        let from = msg.from();
        if usize::from(from) >= self.n() || from == self.state.me {
            return Err(ChannelError::NotParticipant { from });
        }
        match msg {
            Message::Propose {
                version, transfers, ..
            } => self.on_propose(from, version, transfers),
            Message::Sign {
                version,
                root,
                state_sig,
                commitment_sigs,
                next_point,
                ..
            } => self.on_sign(from, version, root, state_sig, commitment_sigs, next_point),
            Message::Revoke {
                version, secret, ..
            } => self.on_revoke(from, version, secret),
            Message::CloseSign { version, sig, .. } => self.on_close_sign(from, version, sig),
        }
    }

    fn on_propose(
        &mut self,
        from: u16,
        version: u64,
        transfers: Vec<Transfer>,
    ) -> Result<Vec<Action>, ChannelError> {
        if self.state.phase != Phase::Active {
            return Err(ChannelError::WrongPhase {
                what: "propose",
                phase: self.state.phase,
            });
        }
        let expected = self.state.ledger.version + 1;
        if let Some(p) = &self.state.pending {
            if p.ledger.version == version && p.proposer == Some(from) && p.transfers == transfers {
                return Ok(Vec::new()); // duplicate
            }
            let takes_precedence =
                p.ledger.version == version && p.proposer.is_some_and(|q| from < q);
            if !takes_precedence {
                return Err(ChannelError::ConflictingProposal { from });
            }
        }
        if version != expected {
            return Err(ChannelError::UnexpectedVersion {
                got: version,
                expected,
            });
        }
        if !self.revocations_complete() {
            return Err(ChannelError::RevocationsOutstanding {
                version: self.state.ledger.version.saturating_sub(1),
            });
        }
        let ledger =
            self.state
                .ledger
                .apply(&self.state.channel_id, &transfers, &self.state_keys)?;
        let root = self.tree.sync(&ledger)?;
        let mut next = self.state.clone();
        let mut out = Vec::new();
        if next
            .pending
            .as_ref()
            .is_some_and(|p| p.proposer == Some(next.me))
        {
            out.push(Action::Event(Event::ProposalAbandoned { version }));
        }
        next.pending = None;
        self.start_pending(
            &mut next,
            Arc::new(ledger),
            root,
            transfers,
            Some(from),
            &mut out,
        )?;
        Ok(self.commit(next, out))
    }

    fn on_sign(
        &mut self,
        from: u16,
        version: u64,
        root: [u8; 32],
        state_sig: Sig,
        commitment_sigs: Vec<Sig>,
        next_point: PublicKey,
    ) -> Result<Vec<Action>, ChannelError> {
        let f = usize::from(from);
        if self.state.phase == Phase::Abandoned {
            // Completing version 0 now would make the funder broadcast the funding.
            return Err(ChannelError::WrongPhase {
                what: "sign",
                phase: self.state.phase,
            });
        }
        if commitment_sigs.len() != self.n() {
            return Err(ChannelError::Malformed {
                what: "commitment signatures",
                from,
            });
        }
        let Some(p) = &self.state.pending else {
            if self.state.complete && version == self.state.ledger.version {
                // Duplicate of a version we completed: accept silently if it is the same signature.
                if self.state.state_sigs.get(f) == Some(&state_sig) {
                    return Ok(Vec::new());
                }
            }
            return Err(ChannelError::UnexpectedVersion {
                got: version,
                expected: self.state.ledger.version + 1,
            });
        };
        if p.ledger.version != version {
            return Err(ChannelError::UnexpectedVersion {
                got: version,
                expected: p.ledger.version,
            });
        }
        if let Some(existing) = &p.signs[f]
            && existing.state_sig == state_sig
            && existing.root == root
        {
            return Ok(Vec::new());
        }
        let my_root = p.signs[usize::from(self.state.me)]
            .as_ref()
            .map(|s| s.root)
            .unwrap_or_default();
        if root != my_root {
            return Err(ChannelError::RootMismatch { from, version });
        }
        let digest = ledger::state_digest(&self.state.channel_id, version, &my_root);
        DefaultBackend::schnorr_verify(&self.state_keys[f], &digest, &state_sig.0)
            .map_err(|_| ChannelError::BadStateSignature { from, version })?;
        let params = &self.state.config.params;
        let script = &self.funding_script;
        let commitment_sig = commitment_sigs[usize::from(self.state.me)];
        if !script.verify(&params.participants, f, &p.my_digest, &commitment_sig.0) {
            return Err(ChannelError::BadCommitmentSignature { from, version });
        }
        let mut next = self.state.clone();
        let mut out = Vec::new();
        if let Some(p) = next.pending.as_mut() {
            p.signs[f] = Some(SignData {
                root,
                state_sig,
                commitment_sig,
                next_point,
            });
        }
        Self::try_complete(&self.signer, &mut next, &mut out)?;
        self.maybe_activate(&mut next, &mut out);
        Ok(self.commit(next, out))
    }

    fn on_revoke(
        &mut self,
        from: u16,
        version: u64,
        secret: [u8; 32],
    ) -> Result<Vec<Action>, ChannelError> {
        let f = usize::from(from);
        let current = self.state.ledger.version;
        let index = INDEX_START - version.min(INDEX_START);
        if self.state.secrets[f].get(index).ok() == Some(secret) {
            return Ok(Vec::new()); // duplicate
        }
        if !self.state.complete || version.checked_add(1) != Some(current) {
            return Err(ChannelError::UnexpectedVersion {
                got: version,
                expected: current.saturating_sub(1),
            });
        }
        // The secret must be the one behind the point they used for that version, and derive the
        // secrets they revealed before (shachain check in insert).
        let point = keys::per_commitment_point(&secret)
            .map_err(|_| ChannelError::BadSecret { from, version })?;
        if point != self.state.prev_points[f] {
            return Err(ChannelError::BadSecret { from, version });
        }
        let mut next = self.state.clone();
        Arc::make_mut(&mut next.secrets)[f]
            .insert(index, secret)
            .map_err(|_| ChannelError::BadSecret { from, version })?;
        next.revoked_prev[f] = true;
        Ok(self.commit(next, Vec::new()))
    }

    /// Starts a cooperative close at the current version.
    ///
    /// # Errors
    /// [`ChannelError::WrongPhase`], [`ChannelError::UpdateInProgress`].
    pub fn close(&mut self) -> Result<Vec<Action>, ChannelError> {
        self.check_can_update("close")?;
        let mut next = self.state.clone();
        let mut out = Vec::new();
        self.sign_close(&mut next, &mut out)?;
        Ok(self.commit(next, out))
    }

    fn sign_close(&self, next: &mut State, out: &mut Vec<Action>) -> Result<(), ChannelError> {
        let params = &next.config.params;
        let balances = Self::commitment_balances(&next.ledger, params);
        let tx = tx::build_close(params, &balances)?;
        let script = &self.funding_script;
        let digest = script.sighash(&tx, 0, &self.funding_out)?;
        let sig = Sig(self.signer.sign_funding_spend(script, &digest));
        let mut sigs = vec![None; params.participants.len()];
        sigs[usize::from(next.me)] = Some(sig);
        let version = next.ledger.version;
        for to in self.peers() {
            let msg = Message::CloseSign {
                channel_id: next.channel_id,
                version,
                from: next.me,
                sig,
            };
            out.push(Action::Send {
                to,
                msg: msg.clone(),
            });
            next.last_sent.push((to, msg));
        }
        next.close = Some(CloseState {
            version,
            tx,
            digest,
            sigs,
            broadcast: false,
        });
        next.phase = Phase::Closing;
        Ok(())
    }

    fn on_close_sign(
        &mut self,
        from: u16,
        version: u64,
        sig: Sig,
    ) -> Result<Vec<Action>, ChannelError> {
        let mut next = self.state.clone();
        let mut out = Vec::new();
        if next.close.is_none() {
            self.check_can_update("close")?;
            if version != next.ledger.version {
                return Err(ChannelError::UnexpectedVersion {
                    got: version,
                    expected: next.ledger.version,
                });
            }
            self.sign_close(&mut next, &mut out)?;
        }
        let params = &next.config.params;
        let script = self.funding_script.clone();
        let Some(close) = next.close.as_mut() else {
            return Err(ChannelError::Unavailable { reason: "no close" });
        };
        if close.version != version {
            return Err(ChannelError::UnexpectedVersion {
                got: version,
                expected: close.version,
            });
        }
        if close.sigs[usize::from(from)] == Some(sig) {
            return Ok(Vec::new());
        }
        if !script.verify(
            &params.participants,
            usize::from(from),
            &close.digest,
            &sig.0,
        ) {
            return Err(ChannelError::BadCommitmentSignature { from, version });
        }
        close.sigs[usize::from(from)] = Some(sig);
        if close.sigs.iter().all(Option::is_some) && !close.broadcast {
            let sigs: Vec<[u8; 64]> = close.sigs.iter().flatten().map(|s| s.0).collect();
            let mut signed = close.tx.clone();
            signed.input[0].witness = script.witness(&params.participants, &sigs)?;
            close.broadcast = true;
            close.tx = signed.clone();
            out.push(Action::Broadcast { tx: signed });
        }
        Ok(self.commit(next, out))
    }

    /// Our current commitment, fully signed (for a unilateral close).
    ///
    /// # Errors
    /// [`ChannelError::Unavailable`] before version 0 is signed by all.
    pub fn signed_commitment(&self) -> Result<Transaction, ChannelError> {
        if !self.state.complete {
            return Err(ChannelError::Unavailable {
                reason: "no fully signed commitment yet",
            });
        }
        let params = &self.state.config.params;
        let me = usize::from(self.state.me);
        let balances = Self::commitment_balances(&self.state.ledger, params);
        let c = tx::build_commitment(
            params,
            me,
            self.state.ledger.version,
            &balances,
            &self.state.points[me],
        )?;
        let script = &self.funding_script;
        let digest = script.sighash(&c.tx, 0, &self.funding_out)?;
        let mut sigs: Vec<[u8; 64]> = self.state.my_commitment_sigs.iter().map(|s| s.0).collect();
        sigs[me] = self.signer.sign_funding_spend(script, &digest);
        let mut tx = c.tx;
        tx.input[0].witness = script.witness(&params.participants, &sigs)?;
        Ok(tx)
    }

    /// Publishes our current commitment (unilateral close).
    ///
    /// # Errors
    /// [`ChannelError::Unavailable`], [`ChannelError::WrongPhase`] once closed.
    pub fn force_close(&mut self) -> Result<Vec<Action>, ChannelError> {
        if matches!(
            self.state.phase,
            Phase::Settled | Phase::Resolved | Phase::Penalized
        ) {
            return Err(ChannelError::WrongPhase {
                what: "force close",
                phase: self.state.phase,
            });
        }
        let tx = self.signed_commitment()?;
        let mut next = self.state.clone();
        next.phase = Phase::Closing;
        Ok(self.commit(next, vec![Action::Broadcast { tx }]))
    }

    /// The funding deadline is an absolute timelock checked against the height we were given: a
    /// block at or above it with the funding still unconfirmed abandons an opening channel.
    fn check_funding_deadline(next: &mut State, out: &mut Vec<Action>) {
        if next.phase == Phase::Opening
            && next.funding_height.is_none()
            && next.height >= next.funding_deadline
        {
            next.phase = Phase::Abandoned;
            next.last_sent.clear();
            out.push(Action::Event(Event::FundingTimedOut {
                deadline: next.funding_deadline,
            }));
        }
    }

    fn maybe_activate(&self, next: &mut State, out: &mut Vec<Action>) {
        if next.phase == Phase::Opening
            && next.complete
            && next
                .funding_height
                .is_some_and(|h| next.height + 1 >= h + next.config.min_depth)
        {
            next.phase = Phase::Active;
            out.push(Action::Event(Event::ChannelActive));
        }
    }

    /// Handles a chain event.
    ///
    /// # Errors
    /// Builder errors (the channel is unchanged).
    pub fn handle_chain(&mut self, event: ChainEvent) -> Result<Vec<Action>, ChannelError> {
        let (height, txs) = match event {
            ChainEvent::Block { height, txs } => (height, txs),
            ChainEvent::Seen { height, tx } => return self.on_seen(height, &tx),
        };
        let mut next = self.state.clone();
        let mut out = Vec::new();
        next.height = next.height.max(height);
        let fo = next.config.params.funding_outpoint;
        for tx in &txs {
            let txid = tx.compute_txid();
            if txid == fo.txid && next.funding_height.is_none() {
                next.funding_height = Some(height);
            }
            if tx.input.iter().any(|i| i.previous_output == fo) {
                self.on_funding_spent(&mut next, tx, height, &mut out)?;
            }
            if let Some(oc) = &next.onchain
                && next.phase == Phase::Disputed
            {
                let commitment_txid = oc.commitment.compute_txid();
                let delayed_vout = self
                    .locate_delayed(&next.config.params, oc)?
                    .and_then(|(c, _)| c.delayed.map(|d| d.0));
                let spends_delayed = tx.input.iter().find(|i| {
                    i.previous_output.txid == commitment_txid
                        && Some(i.previous_output.vout) == delayed_vout
                });
                if let Some(input) = spends_delayed {
                    // A revocation-path spend has no relative timelock; the delayed path has one
                    // (OP_CSV fails unless the input's nSequence enables it).
                    if oc.revoked && !input.sequence.is_relative_lock_time() {
                        next.phase = Phase::Penalized;
                        out.push(Action::Event(Event::Penalized { txid }));
                    } else {
                        next.phase = Phase::Resolved;
                        out.push(Action::Event(Event::Resolved));
                    }
                }
            }
        }
        self.maybe_activate(&mut next, &mut out);
        Self::check_funding_deadline(&mut next, &mut out);
        self.on_height(&mut next, &mut out)?;
        if out.is_empty() {
            // Only the height moved: nothing worth a record (a restart from an older height is
            // harmless, the next block re-drives every timelock).
            let mut same = next.clone();
            same.height = self.state.height;
            if same == self.state {
                self.state.height = next.height;
                return Ok(Vec::new());
            }
        }
        Ok(self.commit(next, out))
    }

    fn on_seen(&mut self, height: u32, tx: &Transaction) -> Result<Vec<Action>, ChannelError> {
        let fo = self.state.config.params.funding_outpoint;
        if self.state.onchain.is_some() || !tx.input.iter().any(|i| i.previous_output == fo) {
            return Ok(Vec::new());
        }
        let mut next = self.state.clone();
        let mut out = Vec::new();
        self.on_funding_spent(&mut next, tx, height, &mut out)?;
        let me = next.me;
        match next.onchain.as_mut() {
            Some(oc) if oc.revoked && oc.holder != me => oc.confirmed = false,
            // Not a revoked commitment: wait for it to confirm.
            _ => return Ok(Vec::new()),
        }
        self.on_height(&mut next, &mut out)?;
        Ok(self.commit(next, out))
    }

    /// Reacts to a new height: timelocked sweeps and rebroadcasts.
    fn on_height(&self, next: &mut State, out: &mut Vec<Action>) -> Result<(), ChannelError> {
        if next.phase != Phase::Disputed {
            return Ok(());
        }
        let Some(oc) = next.onchain.clone() else {
            return Ok(());
        };
        let params = &next.config.params;
        let me = next.me;
        if oc.revoked && oc.holder != me {
            // Penalty: broadcast now and again every block until it confirms (the cheater's delayed
            // path opens at confirmed + to_self_delay).
            let tx = match &oc.response {
                Some(t) => t.clone(),
                None => {
                    let Some(spend) = self.locate_delayed(params, &oc)? else {
                        next.phase = Phase::Resolved;
                        out.push(Action::Event(Event::Resolved));
                        return Ok(());
                    };
                    let secret =
                        next.secrets[usize::from(oc.holder)].get(INDEX_START - oc.number)?;
                    let rk = self.signer.revocation_privkey(&secret)?;
                    let (commitment, ()) = spend;
                    let ds = DelayedSpend::of(&commitment)?;
                    // What the revoked state shorted each honest participant against our latest
                    // fully signed state (its output on the revoked commitment vs. its balance now).
                    let latest = Self::commitment_balances(&next.ledger, params);
                    let mut claims = vec![Amount::ZERO; params.participants.len()];
                    for (i, claim) in claims.iter_mut().enumerate() {
                        if i == usize::from(oc.holder) {
                            continue;
                        }
                        let spk = tx::payout_script(&params.participants, i)?;
                        let got = oc
                            .commitment
                            .output
                            .iter()
                            .filter(|o| o.script_pubkey == spk)
                            .map(|o| o.value)
                            .sum();
                        *claim = latest[i].checked_sub(got).unwrap_or(Amount::ZERO);
                    }
                    tx::build_penalty(
                        params,
                        &ds,
                        usize::from(oc.holder),
                        usize::from(me),
                        &rk,
                        &claims,
                        next.height,
                    )?
                }
            };
            if let Some(o) = next.onchain.as_mut() {
                o.response = Some(tx.clone());
            }
            out.push(Action::Broadcast { tx });
        } else if oc.holder == me {
            // Our own commitment: sweep once the relative timelock allows the next block.
            if !tx::relative_timelock_met(
                oc.confirmed_height,
                params.to_self_delay,
                next.height + 1,
            ) {
                return Ok(());
            }
            let tx = match &oc.response {
                Some(t) => t.clone(),
                None => {
                    let Some((commitment, _)) = self.locate_delayed(params, &oc)? else {
                        next.phase = Phase::Resolved;
                        out.push(Action::Event(Event::Resolved));
                        return Ok(());
                    };
                    let ds = DelayedSpend::of(&commitment)?;
                    let key = self.signer.delayed_privkey(&oc.point)?;
                    let dest = tx::payout_script(&params.participants, usize::from(me))?;
                    tx::build_delayed_sweep(params, &ds, &key, dest, next.height)?
                }
            };
            if let Some(o) = next.onchain.as_mut() {
                o.response = Some(tx.clone());
            }
            out.push(Action::Broadcast { tx });
        }
        Ok(())
    }

    /// Rebuilds the published commitment's shape to locate the holder's delayed output.
    fn locate_delayed(
        &self,
        params: &ChannelParams,
        oc: &OnChain,
    ) -> Result<Option<(tx::Commitment, ())>, ChannelError> {
        let delayed = tx::DelayedOutput::new(params, usize::from(oc.holder), &oc.point)?;
        let spk = delayed.script_pubkey();
        let Some(vout) = oc
            .commitment
            .output
            .iter()
            .position(|o| o.script_pubkey == spk)
        else {
            return Ok(None);
        };
        let vout = u32::try_from(vout).unwrap_or(u32::MAX);
        let c = tx::Commitment {
            tx: oc.commitment.clone(),
            holder: usize::from(oc.holder),
            number: oc.number,
            delayed: Some((vout, delayed)),
            vouts: Vec::new(),
            fee: Amount::ZERO,
        };
        Ok(Some((c, ())))
    }

    fn on_funding_spent(
        &self,
        next: &mut State,
        tx: &Transaction,
        height: u32,
        out: &mut Vec<Action>,
    ) -> Result<(), ChannelError> {
        if let Some(oc) = next.onchain.as_mut()
            && !oc.confirmed
        {
            if oc.commitment.compute_txid() == tx.compute_txid() {
                // The revoked commitment we saw in the mempool confirmed.
                oc.confirmed = true;
                oc.confirmed_height = height;
                return Ok(());
            }
            // Something else confirmed instead: forget what the mempool showed.
            next.onchain = None;
        }
        if next.onchain.is_some() || matches!(next.phase, Phase::Settled) {
            return Ok(());
        }
        if let Some(close) = &next.close
            && close.tx.compute_txid() == tx.compute_txid()
        {
            next.phase = Phase::Settled;
            out.push(Action::Event(Event::Settled {
                txid: tx.compute_txid(),
            }));
            return Ok(());
        }
        let params = &next.config.params;
        let Some(number) = tx::commitment_number_of(tx, &params.participants) else {
            // Some other spend of the funding output (e.g. a close we didn't track): nothing to claim.
            next.phase = Phase::Resolved;
            out.push(Action::Event(Event::Resolved));
            return Ok(());
        };
        let n = params.participants.len();
        // Candidate points for (holder, number).
        let mut found = None;
        for h in 0..n {
            let mut candidates: Vec<(PublicKey, bool)> = Vec::new();
            if number == next.ledger.version {
                candidates.push((next.points[h], false));
            }
            if next
                .pending
                .as_ref()
                .is_some_and(|p| p.ledger.version == number)
                || number == next.ledger.version + 1
            {
                candidates.push((next.next_points[h], false));
            }
            if number < next.ledger.version {
                let secret = if h == usize::from(next.me) {
                    self.signer.per_commitment_secret(number).ok()
                } else {
                    next.secrets[h].get(INDEX_START - number).ok()
                };
                match secret {
                    Some(s) => candidates.push((keys::per_commitment_point(&s)?, true)),
                    // Not revoked yet by that holder: still a valid commitment.
                    None if number + 1 == next.ledger.version => {
                        candidates.push((next.prev_points[h], false))
                    }
                    None => {}
                }
            }
            for (point, revoked) in candidates {
                let spk = tx::DelayedOutput::new(params, h, &point)?.script_pubkey();
                if tx.output.iter().any(|o| o.script_pubkey == spk) {
                    found = Some((h, point, revoked));
                }
            }
        }
        let holder_u16 = |h: usize| u16::try_from(h).unwrap_or(u16::MAX);
        match found {
            Some((h, point, revoked)) => {
                out.push(Action::Event(Event::CommitmentConfirmed {
                    holder: holder_u16(h),
                    version: number,
                    revoked,
                }));
                next.phase = Phase::Disputed;
                next.onchain = Some(OnChain {
                    commitment: tx.clone(),
                    holder: holder_u16(h),
                    number,
                    revoked,
                    point,
                    confirmed_height: height,
                    confirmed: true,
                    response: None,
                });
                if !revoked && h != usize::from(next.me) {
                    // Someone else's valid commitment: our output on it is already ours.
                    next.phase = Phase::Resolved;
                    out.push(Action::Event(Event::Resolved));
                }
            }
            None => {
                // A commitment without a delayed output (holder's balance was dust), or unknown.
                next.phase = Phase::Resolved;
                out.push(Action::Event(Event::Resolved));
            }
        }
        Ok(())
    }
}
