//! Property tests for transfer validation (proptest) and the message encoding limits.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use bitcoin::Amount;
use channel_fsm::ledger::{
    InternalOutput, Ledger, OutputId, TRANSFER_INPUTS_MAX, TRANSFER_OUTPUTS_MAX,
    TRANSFERS_PER_UPDATE_MAX, Transfer, TransferError,
};
use channel_fsm::msg::{self, MESSAGE_SIZE_MAX, Message, MessageError};
use channel_fsm::sig::{DefaultBackend, SigBackend};
use channel_fsm::signer::{InMemorySigner, Signer};
use channel_fsm::tx::DUST_LIMIT;
use proptest::prelude::*;

const CHANNEL: [u8; 32] = [5; 32];

fn setup(
    n: usize,
) -> (
    Vec<InMemorySigner>,
    Vec<<DefaultBackend as SigBackend>::XOnlyPublic>,
) {
    let signers = common::pair::signers(n);
    let keys = signers
        .iter()
        .map(|s| DefaultBackend::parse_xonly_public(&s.keys().state_key.serialize()).unwrap())
        .collect();
    (signers, keys)
}

#[derive(Debug, Clone)]
struct Spec {
    sender: u16,
    inputs: Vec<(u64, u32)>,
    outputs: Vec<(u16, u64)>,
    sign_as: u16,
}

fn spec(n: u16) -> impl Strategy<Value = Spec> {
    (
        0..n + 1,
        prop::collection::vec((0u64..2, 0u32..6), 0..4),
        prop::collection::vec(
            (
                0..n + 1,
                prop_oneof![0u64..2_000, 0u64..3_000_000, Just(u64::MAX / 2)],
            ),
            0..4,
        ),
        0..n,
    )
        .prop_map(|(sender, inputs, outputs, sign_as)| Spec {
            sender,
            inputs,
            outputs,
            sign_as,
        })
}

fn build(s: &Spec, ledger: &Ledger, signers: &[InMemorySigner]) -> Transfer {
    let mut t = Transfer {
        sender: s.sender,
        inputs: s
            .inputs
            .iter()
            .map(|(v, i)| OutputId {
                version: *v,
                index: *i,
            })
            .collect(),
        outputs: s
            .outputs
            .iter()
            .map(|(o, a)| InternalOutput {
                owner: *o,
                amount: Amount::from_sat(*a),
            })
            .collect(),
        signature: [0; 64],
    };
    t.signature = signers[usize::from(s.sign_as)].sign_state(&t.digest(&CHANNEL, ledger.version));
    t
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, rng_seed: proptest::test_runner::RngSeed::Fixed(7), ..ProptestConfig::default() })]

    /// Whatever the transfer, either it is rejected, or: value is conserved, every input was a current
    /// output of the sender, no output is dust, and the signer was the sender.
    #[test]
    fn transfer_validation_invariants(specs in prop::collection::vec(spec(3), 1..4), balances in prop::collection::vec(0u64..5_000_000, 3)) {
        let (signers, keys) = setup(3);
        let ledger = Ledger::genesis(&balances.iter().map(|b| Amount::from_sat(*b)).collect::<Vec<_>>()).unwrap();
        let transfers: Vec<Transfer> = specs.iter().map(|s| build(s, &ledger, &signers)).collect();
        let before = ledger.clone();
        match ledger.apply(&CHANNEL, &transfers, &keys) {
            Ok(next) => {
                prop_assert_eq!(next.total(), ledger.total());
                prop_assert_eq!(next.version, ledger.version + 1);
                for (t, s) in transfers.iter().zip(&specs) {
                    prop_assert_eq!(s.sign_as, s.sender);
                    for i in &t.inputs {
                        prop_assert_eq!(ledger.outputs.get(i).map(|o| o.owner), Some(t.sender));
                        prop_assert!(!next.outputs.contains_key(i));
                    }
                    for o in &t.outputs {
                        prop_assert!(o.amount >= DUST_LIMIT);
                    }
                }
            }
            Err(e) => {
                // A rejected update changes nothing; the reason is one of the documented ones.
                prop_assert_eq!(&ledger, &before);
                let known = matches!(e,
                    TransferError::Empty { .. } | TransferError::InputNotCurrent { .. } | TransferError::NotOwner { .. }
                    | TransferError::BadSignature { .. } | TransferError::OutputsExceedInputs { .. }
                    | TransferError::ValueNotConserved { .. } | TransferError::Overflow { .. } | TransferError::Dust { .. }
                    | TransferError::NoSuchParticipant { .. });
                prop_assert!(known, "{e:?}");
            }
        }
    }

    /// A valid payment of any amount the sender can afford is accepted and moves exactly that amount.
    #[test]
    fn affordable_payments_are_accepted(amount in 546u64..3_000_000, b0 in 3_000_000u64..6_000_000) {
        let (signers, keys) = setup(2);
        let ledger = Ledger::genesis(&[Amount::from_sat(b0), Amount::from_sat(1_000)]).unwrap();
        match channel_fsm::ledger::make_transfer(&ledger, &CHANNEL, 0, 1, Amount::from_sat(amount), |d| signers[0].sign_state(d)) {
            Ok(t) => {
                let next = ledger.apply(&CHANNEL, &[t], &keys).unwrap();
                prop_assert_eq!(next.balances()[1], Amount::from_sat(1_000 + amount));
                prop_assert_eq!(next.balances()[0], Amount::from_sat(b0 - amount));
            }
            // Only when the change would be dust.
            Err(e) => prop_assert!(matches!(e, TransferError::Dust { .. }), "{e:?}"),
        }
    }
}

#[test]
fn double_spend_within_an_update_and_stale_inputs_are_rejected() {
    let (signers, keys) = setup(2);
    let ledger =
        Ledger::genesis(&[Amount::from_sat(1_000_000), Amount::from_sat(1_000_000)]).unwrap();
    let id = OutputId {
        version: 0,
        index: 0,
    };
    let mk = |amount| {
        let s = Spec {
            sender: 0,
            inputs: vec![(0, 0)],
            outputs: vec![(1, amount)],
            sign_as: 0,
        };
        build(&s, &ledger, &signers)
    };
    assert!(
        matches!(ledger.apply(&CHANNEL, &[mk(1_000_000), mk(1_000_000)], &keys), Err(TransferError::InputNotCurrent { transfer: 1, input }) if input == id)
    );
    let next = ledger.apply(&CHANNEL, &[mk(1_000_000)], &keys).unwrap();
    // The old transfer, replayed on the next version: its input is spent and its signature is for v0.
    let replay = mk(1_000_000);
    assert!(next.apply(&CHANNEL, &[replay], &keys).is_err());
    // Overflow: two outputs of MAX_MONEY each.
    let s = Spec {
        sender: 0,
        inputs: vec![(0, 0)],
        outputs: vec![(1, 2_100_000_000_000_000), (1, 2_100_000_000_000_000)],
        sign_as: 0,
    };
    assert!(matches!(
        ledger.apply(&CHANNEL, &[build(&s, &ledger, &signers)], &keys),
        Err(TransferError::Overflow { .. })
    ));
}

#[test]
fn transfer_limits_at_and_past() {
    let (signers, keys) = setup(2);
    let balances = vec![Amount::from_sat(100_000_000), Amount::from_sat(1_000)];
    let ledger = Ledger::genesis(&balances).unwrap();
    // Split the sender's output into many so inputs can be counted.
    let split = |k: usize, l: &Ledger| {
        let s = Spec {
            sender: 0,
            inputs: vec![(0, 0)],
            outputs: vec![(0, 100_000_000 / k as u64); k],
            sign_as: 0,
        };
        let t = build(&s, l, &signers);
        l.apply(&CHANNEL, &[t], &keys)
    };
    assert!(split(TRANSFER_OUTPUTS_MAX, &ledger).is_ok());
    assert!(matches!(
        split(TRANSFER_OUTPUTS_MAX + 1, &ledger),
        Err(TransferError::Limit { .. })
    ));
    let many = split(TRANSFER_OUTPUTS_MAX, &ledger).unwrap();
    let ids: Vec<(u64, u32)> = many
        .outputs_of(0)
        .map(|(id, _)| (id.version, id.index))
        .collect();
    let spend = |k: usize| {
        let s = Spec {
            sender: 0,
            inputs: ids[..k].to_vec(),
            outputs: vec![(1, 100_000_000 / 16 * k as u64)],
            sign_as: 0,
        };
        many.apply(&CHANNEL, &[build(&s, &many, &signers)], &keys)
    };
    assert!(spend(TRANSFER_INPUTS_MAX).is_ok());
    // One input past the limit: 17 inputs can't exist here (only 16 outputs), so build it directly.
    let mut t = build(
        &Spec {
            sender: 0,
            inputs: ids.clone(),
            outputs: vec![(1, 1_000)],
            sign_as: 0,
        },
        &many,
        &signers,
    );
    t.inputs.push(OutputId {
        version: 9,
        index: 9,
    });
    assert!(matches!(
        many.apply(&CHANNEL, &[t], &keys),
        Err(TransferError::Limit { .. })
    ));
    // Transfers per update: at the limit (each a separate small payment) and past it.
    // Transfers per update: the count is checked before anything else (past the limit), while at the
    // limit the transfers themselves are looked at (here: empty ones).
    let payments = |k: usize| {
        vec![
            Transfer {
                sender: 0,
                inputs: vec![],
                outputs: vec![],
                signature: [0; 64]
            };
            k
        ]
    };
    assert!(matches!(
        ledger.apply(&CHANNEL, &payments(TRANSFERS_PER_UPDATE_MAX + 1), &keys),
        Err(TransferError::Limit { .. })
    ));
    assert!(matches!(
        ledger.apply(&CHANNEL, &payments(TRANSFERS_PER_UPDATE_MAX), &keys),
        Err(TransferError::Empty { .. })
    ));
}

fn big_propose(transfers: usize) -> Message {
    let t = Transfer {
        sender: u16::MAX,
        inputs: vec![
            OutputId {
                version: u64::MAX,
                index: u32::MAX
            };
            TRANSFER_INPUTS_MAX
        ],
        outputs: vec![
            InternalOutput {
                owner: u16::MAX,
                amount: Amount::from_sat(u64::MAX)
            };
            TRANSFER_OUTPUTS_MAX
        ],
        signature: [0xff; 64],
    };
    Message::Propose {
        channel_id: [0xff; 32],
        version: u64::MAX,
        from: u16::MAX,
        transfers: vec![t; transfers],
    }
}

#[test]
fn message_size_limit() {
    // The largest proposal the protocol allows fits.
    let max = big_propose(TRANSFERS_PER_UPDATE_MAX);
    let bytes = msg::encode(&max).unwrap();
    assert!(bytes.len() <= MESSAGE_SIZE_MAX, "{}", bytes.len());
    assert_eq!(msg::decode(&bytes).unwrap(), max);
    // Past the limit: encoding refuses, decoding refuses MESSAGE_SIZE_MAX + 1 bytes before parsing.
    assert!(matches!(
        msg::encode(&big_propose(4 * TRANSFERS_PER_UPDATE_MAX)),
        Err(MessageError::TooLarge { .. })
    ));
    let mut at = vec![msg::MESSAGE_VERSION];
    at.resize(MESSAGE_SIZE_MAX, 0xff);
    assert!(matches!(
        msg::decode(&at),
        Err(MessageError::Malformed { .. })
    ));
    at.push(0);
    assert_eq!(
        msg::decode(&at),
        Err(MessageError::TooLarge {
            size: MESSAGE_SIZE_MAX + 1
        })
    );
    // Version byte, empty input, trailing bytes.
    assert_eq!(msg::decode(&[]), Err(MessageError::Empty));
    let mut wrong = bytes.clone();
    wrong[0] = 2;
    assert_eq!(
        msg::decode(&wrong),
        Err(MessageError::UnknownVersion { version: 2 })
    );
    let mut trailing = msg::encode(&Message::Revoke {
        channel_id: [0; 32],
        version: 1,
        from: 0,
        secret: [1; 32],
    })
    .unwrap();
    trailing.push(0);
    assert!(matches!(
        msg::decode(&trailing),
        Err(MessageError::Malformed { .. })
    ));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, rng_seed: proptest::test_runner::RngSeed::Fixed(11), ..ProptestConfig::default() })]
    /// The decoder never panics and only accepts what re-encodes to the same bytes.
    #[test]
    fn decoder_total_and_canonical(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        if let Ok(m) = msg::decode(&bytes) {
            prop_assert_eq!(msg::encode(&m).unwrap(), bytes);
        }
    }
}
