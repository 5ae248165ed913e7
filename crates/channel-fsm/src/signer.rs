//! Participant keys behind a small [`Signer`] trait, with an in-memory implementation
//! ([`InMemorySigner`]) derived from one 32-byte seed.

use std::sync::Mutex;

use bitcoin::hashes::{Hash, HashEngine, sha256};
use bitcoin::secp256k1::{Keypair, PublicKey, SecretKey};

use crate::keys::{self, KeyError};
use crate::sig::{SchnorrKeypair, secp};
use crate::tx::{
    ChannelParams, DelayedKeys, FundingScript, FundingSigningKey, ParticipantKeys, TxError,
};

/// What the channel state machine asks of a participant's keys. Implementations may live in another
/// process or device; everything is deterministic (RFC 6979 / BIP340 without auxiliary randomness), so
/// a replay after a crash produces the same signatures.
pub trait Signer: Send + Sync {
    /// The participant's public keys.
    fn keys(&self) -> ParticipantKeys;
    /// Per-commitment point of commitment `number` (BOLT 3: secret index `2^48 − 1 − number`).
    ///
    /// # Errors
    /// [`KeyError::IndexOutOfRange`].
    fn per_commitment_point(&self, number: u64) -> Result<PublicKey, KeyError>;
    /// Releases the per-commitment secret of commitment `number` (only once it is revoked).
    ///
    /// # Errors
    /// [`KeyError::IndexOutOfRange`].
    fn per_commitment_secret(&self, number: u64) -> Result<[u8; 32], KeyError>;
    /// Signs a digest spending the funding output (ECDSA for `n = 2`, BIP340 otherwise).
    fn sign_funding_spend(&self, script: &FundingScript, digest: &[u8; 32]) -> [u8; 64];
    /// BIP340 signature with the state key (channel state versions and transfers).
    fn sign_state(&self, digest: &[u8; 32]) -> [u8; 64];
    /// The private key of this participant's delayed output on its own commitment with `point`.
    ///
    /// # Errors
    /// [`KeyError::InvalidTweak`].
    fn delayed_privkey(&self, point: &PublicKey) -> Result<SecretKey, KeyError>;
    /// The revocation private key for another holder's commitment whose secret was revealed.
    ///
    /// # Errors
    /// [`KeyError::InvalidTweak`].
    fn revocation_privkey(&self, per_commitment_secret: &[u8; 32]) -> Result<SecretKey, KeyError>;
    /// The keys of `holder`'s delayed output on commitment `number`, whose per-commitment point is
    /// `point`, for this signer as participant `me`. Must equal [`DelayedKeys::derive`] (the
    /// default); a signer holding the secrets may use them to replace variable-base
    /// multiplications by generator ones ([`keys::derive_revocation_pubkey_as_holder`] on its own
    /// commitment, [`keys::derive_revocation_pubkey_as_revoker`] for its revocation key on others').
    ///
    /// # Errors
    /// [`TxError::NoSuchParticipant`], [`TxError::Key`].
    fn delayed_keys(
        &self,
        params: &ChannelParams,
        me: usize,
        holder: usize,
        number: u64,
        point: &PublicKey,
    ) -> Result<DelayedKeys, TxError> {
        let _ = (me, number);
        DelayedKeys::derive(params, holder, point)
    }
}

/// All keys in memory, derived from a seed: `secret_k = SHA256(seed || k)` for k in 0..=4, shachain
/// seed `SHA256(seed || 5)`.
///
/// Each clone has its own memo of recent per-commitment secrets (a copy of the original's at the
/// time of cloning), so clones used by channels on different threads never wait for each other;
/// one instance shared by several threads holds its memo's lock only to look up or store a
/// secret, never while hashing one.
pub struct InMemorySigner {
    funding: SecretKey,
    revocation_base: SecretKey,
    payment_base: SecretKey,
    delayed_base: SecretKey,
    /// The state and funding keys prepared for signing on libsecp256k1 v0.6 (see
    /// [`crate::sig::generator_mul`]): every update signs with them.
    state_fast: SchnorrKeypair,
    funding_fast: FundingSigningKey,
    shachain_seed: [u8; 32],
    keys: ParticipantKeys,
    /// The last per-commitment secrets generated (a version asks for the same few several times:
    /// as the next point, for its own keys, and when revealed); one per clone.
    recent_secrets: Mutex<RecentSecrets>,
}

impl Clone for InMemorySigner {
    fn clone(&self) -> Self {
        // A poisoned memo is not copied: the clone starts with an empty one.
        let memo = self.recent_secrets.lock().map_or_else(
            |_| RecentSecrets::new(self.shachain_seed),
            |memo| memo.clone(),
        );
        Self {
            funding: self.funding,
            revocation_base: self.revocation_base,
            payment_base: self.payment_base,
            delayed_base: self.delayed_base,
            state_fast: self.state_fast,
            funding_fast: self.funding_fast,
            shachain_seed: self.shachain_seed,
            keys: self.keys,
            recent_secrets: Mutex::new(memo),
        }
    }
}

/// Number of per-commitment secrets [`InMemorySigner`] remembers.
const RECENT_SECRETS_MAX: usize = 4;

/// A tiny memo of (commitment number, secret), oldest replaced first, and the shachain walk that
/// makes a new secret cost ~2 SHA256 ([`keys::SecretChain`]).
#[derive(Clone)]
struct RecentSecrets {
    entries: [Option<(u64, [u8; 32])>; RECENT_SECRETS_MAX],
    next: usize,
    chain: keys::SecretChain,
}

impl RecentSecrets {
    fn new(shachain_seed: [u8; 32]) -> Self {
        Self {
            entries: [None; RECENT_SECRETS_MAX],
            next: 0,
            chain: keys::SecretChain::new(shachain_seed),
        }
    }

    fn get(&self, number: u64) -> Option<[u8; 32]> {
        self.entries
            .iter()
            .flatten()
            .find(|(n, _)| *n == number)
            .map(|(_, secret)| *secret)
    }

    /// Remembers `secret` for `number` (unless another thread did meanwhile) and the walk that
    /// produced it.
    fn remember(&mut self, number: u64, secret: [u8; 32], chain: keys::SecretChain) {
        // Any walk yields the right secrets; keeping the latest one keeps the next step short.
        self.chain = chain;
        if self.get(number).is_some() {
            return;
        }
        self.entries[self.next] = Some((number, secret));
        self.next = (self.next + 1) % RECENT_SECRETS_MAX;
    }
}

impl std::fmt::Debug for InMemorySigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InMemorySigner")
            .field("keys", &self.keys)
            .finish_non_exhaustive()
    }
}

fn derive(seed: &[u8; 32], k: u8) -> [u8; 32] {
    let mut e = sha256::Hash::engine();
    e.input(seed);
    e.input(&[k]);
    sha256::Hash::from_engine(e).to_byte_array()
}

fn secret(bytes: [u8; 32]) -> SecretKey {
    // A SHA256 output is a valid scalar except with probability ~2^-128; fold into range if not.
    SecretKey::from_slice(&bytes)
        .unwrap_or_else(|_| SecretKey::from_slice(&[1u8; 32]).expect("1..1 is a valid key"))
}

impl InMemorySigner {
    /// A signer whose keys all derive from `seed`.
    pub fn from_seed(seed: [u8; 32]) -> Self {
        let funding = secret(derive(&seed, 0));
        let revocation_base = secret(derive(&seed, 1));
        let payment_base = secret(derive(&seed, 2));
        let delayed_base = secret(derive(&seed, 3));
        let state_secret = secret(derive(&seed, 4));
        let state = Keypair::from_secret_key(secp(), &state_secret);
        let state_fast = SchnorrKeypair::new(&state_secret);
        let funding_fast = FundingSigningKey::new(&funding);
        let shachain_seed = derive(&seed, 5);
        let pk = |s: &SecretKey| PublicKey::from_secret_key(secp(), s);
        let keys = ParticipantKeys {
            funding: pk(&funding),
            revocation_basepoint: pk(&revocation_base),
            payment_basepoint: pk(&payment_base),
            delayed_payment_basepoint: pk(&delayed_base),
            state_key: state.x_only_public_key().0,
        };
        Self {
            funding,
            revocation_base,
            payment_base,
            delayed_base,
            state_fast,
            funding_fast,
            shachain_seed,
            keys,
            recent_secrets: Mutex::new(RecentSecrets::new(shachain_seed)),
        }
    }

    /// The payment basepoint secret (spends this participant's payout outputs; a wallet concern).
    pub fn payment_secret(&self) -> SecretKey {
        self.payment_base
    }

    /// The funding secret (tests and vector reproduction).
    pub fn funding_secret(&self) -> SecretKey {
        self.funding
    }
}

impl Signer for InMemorySigner {
    fn keys(&self) -> ParticipantKeys {
        self.keys
    }
    fn per_commitment_point(&self, number: u64) -> Result<PublicKey, KeyError> {
        keys::per_commitment_point(&self.per_commitment_secret(number)?)
    }
    fn per_commitment_secret(&self, number: u64) -> Result<[u8; 32], KeyError> {
        let index = keys::INDEX_START
            .checked_sub(number)
            .ok_or(KeyError::IndexOutOfRange { index: number })?;
        // The lock is held to look up and to store, never while hashing: the walk continues on a
        // copy. A poisoned memo (a panic elsewhere while holding it) is only bypassed.
        let mut chain = match self.recent_secrets.lock() {
            Ok(memo) => match memo.get(number) {
                Some(secret) => return Ok(secret),
                None => memo.chain.clone(),
            },
            Err(_) => return keys::per_commitment_secret(&self.shachain_seed, index),
        };
        let secret = chain.secret(index)?;
        if let Ok(mut memo) = self.recent_secrets.lock() {
            memo.remember(number, secret, chain);
        }
        Ok(secret)
    }
    fn sign_funding_spend(&self, script: &FundingScript, digest: &[u8; 32]) -> [u8; 64] {
        // As `script.sign(&self.funding, digest)`, with the key prepared once.
        self.funding_fast.sign(script, digest)
    }
    fn sign_state(&self, digest: &[u8; 32]) -> [u8; 64] {
        // As `DefaultBackend::schnorr_sign(&self.state, digest, &[0u8; 32])`.
        self.state_fast.sign(digest, Some(&[0u8; 32]))
    }
    fn delayed_privkey(&self, point: &PublicKey) -> Result<SecretKey, KeyError> {
        keys::derive_privkey(&self.delayed_base, point)
    }
    fn revocation_privkey(&self, per_commitment_secret: &[u8; 32]) -> Result<SecretKey, KeyError> {
        let pcs =
            SecretKey::from_slice(per_commitment_secret).map_err(|_| KeyError::InvalidTweak)?;
        keys::derive_revocation_privkey(&self.revocation_base, &pcs)
    }
    fn delayed_keys(
        &self,
        params: &ChannelParams,
        me: usize,
        holder: usize,
        number: u64,
        point: &PublicKey,
    ) -> Result<DelayedKeys, TxError> {
        let h = params
            .participants
            .get(holder)
            .ok_or(TxError::NoSuchParticipant { index: holder })?;
        let delayed = if holder == me
            && h.delayed_payment_basepoint == self.keys.delayed_payment_basepoint
        {
            keys::derive_pubkey_as_owner(&self.delayed_base, &h.delayed_payment_basepoint, point)?
        } else {
            keys::derive_pubkey(&h.delayed_payment_basepoint, point)?
        };
        // Our own commitment: `point` is ours (the channel only passes our point for `number`).
        let own_secret = if holder == me {
            let s = self.per_commitment_secret(number)?;
            Some(SecretKey::from_slice(&s).map_err(|_| KeyError::InvalidTweak)?)
        } else {
            None
        };
        let mut revocation = Vec::with_capacity(params.participants.len());
        for (j, p) in params.participants.iter().enumerate() {
            let rb = &p.revocation_basepoint;
            revocation.push(if j == holder {
                None
            } else if let Some(pcs) = &own_secret {
                Some(keys::derive_revocation_pubkey_as_holder(rb, pcs, point)?)
            } else if j == me {
                Some(keys::derive_revocation_pubkey_as_revoker(
                    &self.revocation_base,
                    rb,
                    point,
                )?)
            } else {
                Some(keys::derive_revocation_pubkey(rb, point)?)
            });
        }
        Ok(DelayedKeys {
            delayed,
            revocation,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bitcoin::{Amount, OutPoint};

    #[test]
    fn remembered_secrets_equal_generated_ones() {
        let s = InMemorySigner::from_seed([3; 32]);
        let fresh = InMemorySigner::from_seed([3; 32]);
        // More numbers than the memo holds, in the order a channel asks, and again.
        for round in 0..2 {
            for number in [0u64, 1, 2, 1, 3, 2, 4, 3, 5, 9, 0, 77, 5] {
                let expected =
                    keys::per_commitment_secret(&fresh.shachain_seed, keys::INDEX_START - number)
                        .expect("in range");
                assert_eq!(
                    s.per_commitment_secret(number).expect("in range"),
                    expected,
                    "round {round} number {number}"
                );
            }
        }
        assert!(s.per_commitment_secret(keys::INDEX_START + 1).is_err());
    }

    #[test]
    fn clones_never_wait_for_each_others_memo() {
        let s = InMemorySigner::from_seed([4; 32]);
        assert!(s.per_commitment_secret(1).is_ok());
        let clone = s.clone();
        // While the original's memo is locked, its clone still answers (remembered and new numbers).
        let held = s.recent_secrets.lock().expect("not poisoned");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let answers = [1u64, 2, 3].map(|n| clone.per_commitment_secret(n));
            let _ = tx.send(answers);
        });
        let answers = rx
            .recv_timeout(std::time::Duration::from_secs(30))
            .expect("the clone did not wait for the original's lock");
        drop(held);
        for (n, got) in [1u64, 2, 3].into_iter().zip(answers) {
            assert_eq!(
                got.expect("in range"),
                keys::per_commitment_secret(&s.shachain_seed, keys::INDEX_START - n)
                    .expect("in range")
            );
        }
    }

    #[test]
    fn one_signer_shared_by_threads_gives_every_thread_the_right_secrets() {
        let s = InMemorySigner::from_seed([5; 32]);
        let expected = |n: u64| {
            keys::per_commitment_secret(&s.shachain_seed, keys::INDEX_START - n).expect("in range")
        };
        std::thread::scope(|scope| {
            for t in 0..4u64 {
                let s = &s;
                scope.spawn(move || {
                    // Overlapping, interleaved windows of numbers, as channels on several threads ask.
                    for i in 0..300u64 {
                        let n = (i * (t + 1)) % 97 + t;
                        assert_eq!(s.per_commitment_secret(n).expect("in range"), expected(n));
                    }
                });
            }
        });
        // The memo still holds consistent entries afterwards.
        for n in 0..8u64 {
            assert_eq!(s.per_commitment_secret(n).expect("in range"), expected(n));
        }
    }

    #[test]
    fn in_memory_delayed_keys_equal_the_public_derivation() {
        for n in [2usize, 4] {
            let signers: Vec<InMemorySigner> = (0..n)
                .map(|i| InMemorySigner::from_seed([u8::try_from(i).expect("small") + 7; 32]))
                .collect();
            let params = ChannelParams {
                participants: signers.iter().map(Signer::keys).collect(),
                funding_outpoint: OutPoint::null(),
                funding_amount: Amount::from_sat(1_000_000),
                to_self_delay: 144,
                feerate_per_kw: 253,
            };
            for number in [0u64, 1, 77] {
                for holder in 0..n {
                    let point = signers[holder]
                        .per_commitment_point(number)
                        .expect("in range");
                    let public = DelayedKeys::derive(&params, holder, &point).expect("derive");
                    for (me, s) in signers.iter().enumerate() {
                        assert_eq!(
                            s.delayed_keys(&params, me, holder, number, &point)
                                .expect("derive"),
                            public,
                            "n {n} number {number} holder {holder} me {me}"
                        );
                    }
                }
            }
        }
    }
}
