//! [`ChannelManager`]: many channels of one node, usable from several threads. Each channel has its
//! own lock; the channel table is sharded ([`MANAGER_SHARDS`] read-mostly locks taken only to find a
//! channel), so there is no global lock on the update path. A batch of updates across channels
//! applies atomically: every proposal is validated on a copy first, and all are persisted as one
//! record before any message of the batch can leave.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use crate::channel::{Action, ChainEvent, Channel, ChannelError};
use crate::ledger::{ChannelId, Transfer};
use crate::msg::Message;
use crate::signer::Signer;

/// Number of shards of the channel table.
pub const MANAGER_SHARDS: usize = 64;
/// Most channels in one batch.
pub const BATCH_CHANNELS_MAX: usize = 4096;
/// Version byte of batch records.
pub const BATCH_RECORD_VERSION: u8 = 1;

/// Why a manager operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ManagerError {
    /// No such channel.
    #[error("unknown channel {}", hex_id(.0))]
    UnknownChannel(ChannelId),
    /// A channel with this id exists already.
    #[error("channel {} exists", hex_id(.0))]
    Duplicate(ChannelId),
    /// A channel appears twice in a batch.
    #[error("channel {} twice in one batch", hex_id(.0))]
    DuplicateInBatch(ChannelId),
    /// Batch too large.
    #[error("batch of {got} channels above {BATCH_CHANNELS_MAX}")]
    BatchTooLarge {
        /// Size.
        got: usize,
    },
    /// A channel refused its part of a batch (nothing was applied) or an operation.
    #[error("channel {}: {error}", hex_id(.channel))]
    Channel {
        /// Which channel.
        channel: ChannelId,
        /// Why.
        error: ChannelError,
    },
    /// A lock was poisoned by a panicking thread.
    #[error("lock poisoned")]
    Poisoned,
}

fn hex_id(id: &ChannelId) -> String {
    id.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// An action of one channel.
pub type ChannelAction = (ChannelId, Action);

/// What the caller must persist for a batch, and the token to release its messages afterwards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchOutcome {
    /// One record holding every channel's new record (see [`decode_batch_record`]).
    pub record: Vec<u8>,
    /// Pass to [`ChannelManager::batch_persisted`] once `record` is durable.
    pub token: BatchToken,
    /// Events (no sends: those wait for persistence).
    pub events: Vec<ChannelAction>,
}

/// Identifies the per-channel records inside a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchToken {
    entries: Vec<(ChannelId, u64)>,
}

/// Decodes a batch record into (channel id, channel record) pairs.
///
/// # Errors
/// A description of the problem.
pub fn decode_batch_record(bytes: &[u8]) -> Result<Vec<(ChannelId, Vec<u8>)>, String> {
    let (&v, body) = bytes.split_first().ok_or("empty batch record")?;
    if v != BATCH_RECORD_VERSION {
        return Err(format!("unknown batch record version {v}"));
    }
    postcard::from_bytes(body).map_err(|e| e.to_string())
}

type Shard<S> = RwLock<HashMap<ChannelId, Arc<Mutex<Channel<S>>>>>;

/// Many channels, one lock each.
#[derive(Debug)]
pub struct ChannelManager<S: Signer + Clone> {
    shards: Vec<Shard<S>>,
}

impl<S: Signer + Clone> Default for ChannelManager<S> {
    fn default() -> Self {
        Self::new()
    }
}

fn shard_of(id: &ChannelId) -> usize {
    usize::from(id[0]) % MANAGER_SHARDS
}

impl<S: Signer + Clone> ChannelManager<S> {
    /// An empty manager.
    pub fn new() -> Self {
        Self {
            shards: (0..MANAGER_SHARDS)
                .map(|_| RwLock::new(HashMap::new()))
                .collect(),
        }
    }

    /// Adds a channel.
    ///
    /// # Errors
    /// [`ManagerError::Duplicate`], [`ManagerError::Poisoned`].
    pub fn insert(&self, channel: Channel<S>) -> Result<(), ManagerError> {
        let id = *channel.channel_id();
        let mut shard = self.shards[shard_of(&id)]
            .write()
            .map_err(|_| ManagerError::Poisoned)?;
        if shard.contains_key(&id) {
            return Err(ManagerError::Duplicate(id));
        }
        shard.insert(id, Arc::new(Mutex::new(channel)));
        Ok(())
    }

    /// Number of channels.
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.read().map(|m| m.len()).unwrap_or(0))
            .sum()
    }

    /// Whether there are no channels.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn get(&self, id: &ChannelId) -> Result<Arc<Mutex<Channel<S>>>, ManagerError> {
        let shard = self.shards[shard_of(id)]
            .read()
            .map_err(|_| ManagerError::Poisoned)?;
        shard
            .get(id)
            .cloned()
            .ok_or(ManagerError::UnknownChannel(*id))
    }

    /// Runs `f` on one channel under its lock.
    ///
    /// # Errors
    /// [`ManagerError::UnknownChannel`], [`ManagerError::Poisoned`], or `f`'s error.
    pub fn with_channel<T>(
        &self,
        id: &ChannelId,
        f: impl FnOnce(&mut Channel<S>) -> Result<T, ChannelError>,
    ) -> Result<T, ManagerError> {
        let ch = self.get(id)?;
        let mut guard = ch.lock().map_err(|_| ManagerError::Poisoned)?;
        f(&mut guard).map_err(|error| ManagerError::Channel {
            channel: *id,
            error,
        })
    }

    fn tag(id: ChannelId, actions: Vec<Action>) -> Vec<ChannelAction> {
        actions.into_iter().map(|a| (id, a)).collect()
    }

    /// Routes a peer message to its channel.
    ///
    /// # Errors
    /// As [`Channel::handle_message`].
    pub fn handle_message(&self, msg: Message) -> Result<Vec<ChannelAction>, ManagerError> {
        let id = *msg.channel_id();
        self.with_channel(&id, |c| c.handle_message(msg))
            .map(|a| Self::tag(id, a))
    }

    /// Proposes an update on one channel.
    ///
    /// # Errors
    /// As [`Channel::propose`].
    pub fn propose(
        &self,
        id: &ChannelId,
        transfers: Vec<Transfer>,
    ) -> Result<Vec<ChannelAction>, ManagerError> {
        self.with_channel(id, |c| c.propose(transfers))
            .map(|a| Self::tag(*id, a))
    }

    /// Reports a channel record durable; returns the messages it released.
    ///
    /// # Errors
    /// [`ManagerError::UnknownChannel`], [`ManagerError::Poisoned`].
    pub fn persisted(
        &self,
        id: &ChannelId,
        record_id: u64,
    ) -> Result<Vec<ChannelAction>, ManagerError> {
        self.with_channel(id, |c| Ok(c.persisted(record_id)))
            .map(|a| Self::tag(*id, a))
    }

    /// Delivers a chain event to every channel.
    ///
    /// # Errors
    /// The first channel error (other channels still processed the event).
    pub fn handle_chain(&self, event: &ChainEvent) -> Result<Vec<ChannelAction>, ManagerError> {
        let mut out = Vec::new();
        let mut first_err = None;
        for shard in &self.shards {
            let chans: Vec<(ChannelId, Arc<Mutex<Channel<S>>>)> = {
                let s = shard.read().map_err(|_| ManagerError::Poisoned)?;
                s.iter().map(|(k, v)| (*k, v.clone())).collect()
            };
            for (id, ch) in chans {
                let mut guard = ch.lock().map_err(|_| ManagerError::Poisoned)?;
                match guard.handle_chain(event.clone()) {
                    Ok(a) => out.extend(Self::tag(id, a)),
                    Err(error) => {
                        first_err.get_or_insert(ManagerError::Channel { channel: id, error });
                    }
                }
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(out),
        }
    }

    /// Applies one proposal per channel, atomically: if any channel refuses, none changes. On
    /// success the caller persists [`BatchOutcome::record`] and then calls
    /// [`ChannelManager::batch_persisted`], which releases the batch's messages.
    ///
    /// # Errors
    /// [`ManagerError::Channel`] naming the first refusing channel, [`ManagerError::BatchTooLarge`],
    /// [`ManagerError::DuplicateInBatch`], [`ManagerError::UnknownChannel`].
    pub fn apply_batch(
        &self,
        mut updates: Vec<(ChannelId, Vec<Transfer>)>,
    ) -> Result<BatchOutcome, ManagerError> {
        if updates.len() > BATCH_CHANNELS_MAX {
            return Err(ManagerError::BatchTooLarge { got: updates.len() });
        }
        // Lock in id order so concurrent batches can't deadlock.
        updates.sort_by_key(|a| a.0);
        for w in updates.windows(2) {
            if w[0].0 == w[1].0 {
                return Err(ManagerError::DuplicateInBatch(w[0].0));
            }
        }
        let arcs: Vec<Arc<Mutex<Channel<S>>>> = updates
            .iter()
            .map(|(id, _)| self.get(id))
            .collect::<Result<_, _>>()?;
        let mut guards: Vec<MutexGuard<'_, Channel<S>>> = arcs
            .iter()
            .map(|a| a.lock().map_err(|_| ManagerError::Poisoned))
            .collect::<Result<_, _>>()?;
        // Each channel proposes in place (a refused proposal changes nothing); if one refuses, the
        // ones before it return to their checkpoints (state only: the channel's tree is a cache).
        let mut staged = Vec::with_capacity(updates.len());
        for (k, (id, transfers)) in updates.into_iter().enumerate() {
            let checkpoint = guards[k].checkpoint();
            match guards[k].propose(transfers) {
                Ok(actions) => staged.push((id, checkpoint, actions)),
                Err(error) => {
                    for (guard, (_, checkpoint, _)) in guards.iter_mut().zip(staged) {
                        guard.rollback(checkpoint);
                    }
                    return Err(ManagerError::Channel { channel: id, error });
                }
            }
        }
        // Every channel accepted: gather the records into one.
        let mut records = Vec::with_capacity(staged.len());
        let mut entries = Vec::with_capacity(staged.len());
        let mut events = Vec::new();
        for (id, _, actions) in staged {
            for a in actions {
                match a {
                    Action::Persist { record_id, record } => {
                        records.push((id, record));
                        entries.push((id, record_id));
                    }
                    other => events.push((id, other)),
                }
            }
        }
        let mut record = vec![BATCH_RECORD_VERSION];
        record.extend(postcard::to_stdvec(&records).unwrap_or_default());
        Ok(BatchOutcome {
            record,
            token: BatchToken { entries },
            events,
        })
    }

    /// The batch record is durable: releases every message of the batch.
    ///
    /// # Errors
    /// [`ManagerError::UnknownChannel`], [`ManagerError::Poisoned`].
    pub fn batch_persisted(&self, token: &BatchToken) -> Result<Vec<ChannelAction>, ManagerError> {
        let mut out = Vec::new();
        for (id, record_id) in &token.entries {
            out.extend(self.persisted(id, *record_id)?);
        }
        Ok(out)
    }
}
