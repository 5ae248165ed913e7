//! Channel messages and their wire encoding: one version byte ([`MESSAGE_VERSION`]) followed by the
//! postcard encoding of [`Message`], at most [`MESSAGE_SIZE_MAX`] bytes in total.

use bitcoin::secp256k1::PublicKey;
use serde::{Deserialize, Serialize};

use crate::ledger::{ChannelId, Transfer, sig64};

/// Version byte of the encoding.
pub const MESSAGE_VERSION: u8 = 1;
/// Largest encoded message (the Lightning transport's frame limit).
pub const MESSAGE_SIZE_MAX: usize = 65_535;

/// A 64-byte signature with serde support.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sig(#[serde(with = "sig64")] pub [u8; 64]);

/// A message between channel participants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    /// Proposes the next version: `transfers` applied to version `version − 1`.
    Propose {
        /// Channel.
        channel_id: ChannelId,
        /// The proposed version.
        version: u64,
        /// Proposer.
        from: u16,
        /// The transfers (each signed by its sender).
        transfers: Vec<Transfer>,
    },
    /// A participant's signatures for `version`: its state signature, its signature on every other
    /// holder's commitment (own slot: all zero), and its per-commitment point for `version + 1`.
    Sign {
        /// Channel.
        channel_id: ChannelId,
        /// Version signed.
        version: u64,
        /// Signer.
        from: u16,
        /// Root of that version, as the signer computed it.
        root: [u8; 32],
        /// BIP340 signature over the state digest.
        state_sig: Sig,
        /// Signatures on each holder's commitment (participant order).
        commitment_sigs: Vec<Sig>,
        /// Per-commitment point of `from` for `version + 1`.
        next_point: PublicKey,
    },
    /// Revokes `from`'s commitment `version` by revealing its per-commitment secret.
    Revoke {
        /// Channel.
        channel_id: ChannelId,
        /// Version revoked.
        version: u64,
        /// Revoker.
        from: u16,
        /// The secret.
        secret: [u8; 32],
    },
    /// A signature on the cooperative close of `version`.
    CloseSign {
        /// Channel.
        channel_id: ChannelId,
        /// Version whose balances the close pays.
        version: u64,
        /// Signer.
        from: u16,
        /// Signature on the close's funding spend.
        sig: Sig,
    },
}

impl Message {
    /// The channel a message belongs to.
    pub fn channel_id(&self) -> &ChannelId {
        match self {
            Message::Propose { channel_id, .. }
            | Message::Sign { channel_id, .. }
            | Message::Revoke { channel_id, .. }
            | Message::CloseSign { channel_id, .. } => channel_id,
        }
    }
    /// The sender.
    pub fn from(&self) -> u16 {
        match self {
            Message::Propose { from, .. }
            | Message::Sign { from, .. }
            | Message::Revoke { from, .. }
            | Message::CloseSign { from, .. } => *from,
        }
    }
}

/// Why a message could not be encoded or decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MessageError {
    /// Larger than [`MESSAGE_SIZE_MAX`].
    #[error("message of {size} bytes exceeds {MESSAGE_SIZE_MAX}")]
    TooLarge {
        /// Its size.
        size: usize,
    },
    /// Empty input.
    #[error("empty message")]
    Empty,
    /// Unknown version byte.
    #[error("unknown message version {version}")]
    UnknownVersion {
        /// The byte.
        version: u8,
    },
    /// The body is not a valid postcard [`Message`] (or has trailing bytes).
    #[error("malformed message body: {reason}")]
    Malformed {
        /// Decoder's reason.
        reason: String,
    },
}

/// Encodes a message.
///
/// # Errors
/// [`MessageError::TooLarge`].
///
/// ```
/// use channel_fsm::msg::{decode, encode, Message};
/// let m = Message::Revoke { channel_id: [1; 32], version: 3, from: 0, secret: [2; 32] };
/// assert_eq!(decode(&encode(&m)?)?, m);
/// # Ok::<(), channel_fsm::msg::MessageError>(())
/// ```
pub fn encode(msg: &Message) -> Result<Vec<u8>, MessageError> {
    let mut out = vec![MESSAGE_VERSION];
    let body = postcard::to_stdvec(msg).map_err(|e| MessageError::Malformed {
        reason: e.to_string(),
    })?;
    out.extend_from_slice(&body);
    if out.len() > MESSAGE_SIZE_MAX {
        return Err(MessageError::TooLarge { size: out.len() });
    }
    Ok(out)
}

/// Decodes a message; never panics on any input.
///
/// # Errors
/// [`MessageError`] variants for size, version and body.
pub fn decode(bytes: &[u8]) -> Result<Message, MessageError> {
    if bytes.len() > MESSAGE_SIZE_MAX {
        return Err(MessageError::TooLarge { size: bytes.len() });
    }
    let (&version, body) = bytes.split_first().ok_or(MessageError::Empty)?;
    if version != MESSAGE_VERSION {
        return Err(MessageError::UnknownVersion { version });
    }
    let (msg, rest) =
        postcard::take_from_bytes::<Message>(body).map_err(|e| MessageError::Malformed {
            reason: e.to_string(),
        })?;
    if !rest.is_empty() {
        return Err(MessageError::Malformed {
            reason: format!("{} trailing bytes", rest.len()),
        });
    }
    Ok(msg)
}
