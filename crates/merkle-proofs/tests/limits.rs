//! Every decoder bound (`*_MAX`) tested at the limit and one past it, plus malformed shapes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use merkle_proofs::verify::{CHECKSUM_LEN, DOMAIN_CHECKSUM};
use merkle_proofs::{
    AMOUNT_MAX, BUCKET_MAX, CLAIMS_MAX, Claim, Commitment, DecodeError, Entry, LeafCoin,
    OutPointBytes, PROOF_DEPTH_MAX, PROOF_NODES_MAX, PROOF_SIZE_MAX, Proof, ProofNode, ProveError,
    SCRIPT_SIZE_MAX, verify,
};

fn absent(i: u32) -> Claim {
    Claim::Absent {
        outpoint: OutPointBytes {
            txid: [1; 32],
            vout: i,
        },
    }
}

fn present(script: usize, amount: u64) -> Claim {
    Claim::Present {
        outpoint: OutPointBytes {
            txid: [2; 32],
            vout: 0,
        },
        coin: LeafCoin {
            amount,
            height: 1,
            is_coinbase: false,
            script: vec![0x51; script],
        },
    }
}

fn hash_tree() -> Vec<ProofNode> {
    vec![ProofNode::Hash([9; 32])]
}

fn proof(claims: Vec<Claim>, nodes: Vec<ProofNode>, entries: Vec<Entry>) -> Proof {
    Proof {
        claims,
        nodes,
        entries,
    }
}

fn roundtrip(p: &Proof) -> Result<Proof, DecodeError> {
    Proof::decode(&p.encode())
}

/// A right-leaning chain of `depth` inner nodes.
fn chain(depth: usize) -> Vec<ProofNode> {
    let mut nodes = Vec::new();
    for _ in 0..depth {
        nodes.push(ProofNode::Inner);
        nodes.push(ProofNode::Hash([3; 32]));
    }
    nodes.push(ProofNode::Hash([4; 32]));
    nodes
}

/// A complete tree of `levels` levels of inner nodes (2^(levels+1) - 1 nodes).
fn complete(levels: u32) -> Vec<ProofNode> {
    fn rec(l: u32, out: &mut Vec<ProofNode>) {
        if l == 0 {
            out.push(ProofNode::Hash([5; 32]));
        } else {
            out.push(ProofNode::Inner);
            rec(l - 1, out);
            rec(l - 1, out);
        }
    }
    let mut out = Vec::new();
    rec(levels, &mut out);
    out
}

#[test]
fn claims_max() {
    let at: Vec<Claim> = (0..u32::try_from(CLAIMS_MAX).unwrap())
        .map(absent)
        .collect();
    assert_eq!(
        roundtrip(&proof(at.clone(), hash_tree(), vec![]))
            .unwrap()
            .claims
            .len(),
        CLAIMS_MAX
    );
    let mut past = at;
    past.push(absent(u32::MAX));
    assert_eq!(
        roundtrip(&proof(past, hash_tree(), vec![])),
        Err(DecodeError::ClaimCount {
            count: CLAIMS_MAX + 1
        })
    );
    assert_eq!(
        roundtrip(&proof(vec![], hash_tree(), vec![])),
        Err(DecodeError::ClaimCount { count: 0 })
    );
}

#[test]
fn prove_many_claims_max() {
    let mut r = common::rng(11);
    let set = common::coins(&mut r, 100);
    let c = Commitment::from_coins(set.iter().map(|(o, c)| (o, c))).unwrap();
    let ops: Vec<_> = (0..=CLAIMS_MAX).map(|_| common::outpoint(&mut r)).collect();
    let p = c
        .prove_many(ops[..CLAIMS_MAX].iter().map(|o| (o, None::<&LeafCoin>)))
        .unwrap();
    verify(&c.root(), &Proof::decode(&p.encode()).unwrap()).unwrap();
    assert_eq!(
        c.prove_many(ops.iter().map(|o| (o, None::<&LeafCoin>))),
        Err(ProveError::ClaimCount {
            count: CLAIMS_MAX + 1
        })
    );
}

#[test]
fn script_size_max() {
    assert!(
        roundtrip(&proof(
            vec![present(SCRIPT_SIZE_MAX, 1)],
            hash_tree(),
            vec![]
        ))
        .is_ok()
    );
    assert_eq!(
        roundtrip(&proof(
            vec![present(SCRIPT_SIZE_MAX + 1, 1)],
            hash_tree(),
            vec![]
        )),
        Err(DecodeError::ScriptTooLong {
            len: SCRIPT_SIZE_MAX + 1
        })
    );
}

#[test]
fn amount_max() {
    assert!(roundtrip(&proof(vec![present(1, AMOUNT_MAX)], hash_tree(), vec![])).is_ok());
    assert_eq!(
        roundtrip(&proof(
            vec![present(1, AMOUNT_MAX + 1)],
            hash_tree(),
            vec![]
        )),
        Err(DecodeError::AmountTooLarge {
            sat: AMOUNT_MAX + 1
        })
    );
}

#[test]
fn bucket_max() {
    let entries = |n: usize| -> Vec<Entry> {
        (0..n)
            .map(|i| Entry {
                key8: (i as u64).to_be_bytes(),
                body: [7; 32],
            })
            .collect()
    };
    let at = proof(
        vec![absent(0)],
        vec![ProofNode::Bucket(48)],
        entries(BUCKET_MAX),
    );
    assert_eq!(roundtrip(&at).unwrap().entries.len(), BUCKET_MAX);
    let past = proof(
        vec![absent(0)],
        vec![ProofNode::Bucket(49)],
        entries(BUCKET_MAX + 1),
    );
    assert_eq!(
        roundtrip(&past),
        Err(DecodeError::BucketSize {
            count: BUCKET_MAX + 1
        })
    );
    // The verifier applies the same bound to an in-memory proof.
    assert!(verify(&merkle_proofs::Root([0; 32]), &past).is_err());
}

#[test]
fn proof_depth_max() {
    let at = proof(vec![absent(0)], chain(PROOF_DEPTH_MAX), vec![]);
    assert!(roundtrip(&at).is_ok());
    // The verifier walks it without overflowing the stack (and rejects it for the wrong root).
    assert!(matches!(
        verify(&merkle_proofs::Root([0; 32]), &at),
        Err(merkle_proofs::VerifyError::RootMismatch { .. })
    ));
    let past = proof(vec![absent(0)], chain(PROOF_DEPTH_MAX + 1), vec![]);
    assert_eq!(roundtrip(&past), Err(DecodeError::TooDeep));
    assert!(matches!(
        verify(&merkle_proofs::Root([0; 32]), &past),
        Err(merkle_proofs::VerifyError::Malformed(DecodeError::TooDeep))
    ));
}

#[test]
fn proof_nodes_max() {
    let at = complete(15);
    assert_eq!(at.len(), PROOF_NODES_MAX);
    assert!(roundtrip(&proof(vec![absent(0)], at.clone(), vec![])).is_ok());
    // One more level under the last leaf: two nodes past the limit.
    let mut past = at;
    past.pop();
    past.extend([
        ProofNode::Inner,
        ProofNode::Hash([1; 32]),
        ProofNode::Hash([2; 32]),
    ]);
    assert_eq!(
        roundtrip(&proof(vec![absent(0)], past, vec![])),
        Err(DecodeError::NodeCount {
            count: PROOF_NODES_MAX + 2
        })
    );
}

#[test]
fn proof_size_max() {
    // Fill with present-claims of maximal scripts, then tune the last script to land exactly on the
    // limit.
    let base = proof(vec![present(0, 1)], hash_tree(), vec![])
        .encode()
        .len();
    let per = proof(
        vec![present(SCRIPT_SIZE_MAX, 1), present(0, 1)],
        hash_tree(),
        vec![],
    )
    .encode()
    .len()
        - base;
    let full = (PROOF_SIZE_MAX - base) / per;
    let mut claims: Vec<Claim> = (0..full).map(|_| present(SCRIPT_SIZE_MAX, 1)).collect();
    claims.push(present(0, 1));
    let len = proof(claims.clone(), hash_tree(), vec![]).encode().len();
    let fill = PROOF_SIZE_MAX - len;
    assert!(fill <= SCRIPT_SIZE_MAX);
    claims.pop();
    claims.push(present(fill, 1));
    let at = proof(claims.clone(), hash_tree(), vec![]).encode();
    assert_eq!(at.len(), PROOF_SIZE_MAX);
    assert!(Proof::decode(&at).is_ok());
    claims.pop();
    claims.push(present(fill + 1, 1));
    let past = proof(claims, hash_tree(), vec![]).encode();
    assert_eq!(
        Proof::decode(&past),
        Err(DecodeError::TooLarge {
            len: PROOF_SIZE_MAX + 1
        })
    );
}

fn with_checksum(mut body: Vec<u8>) -> Vec<u8> {
    let sum = blake3::keyed_hash(&DOMAIN_CHECKSUM, &body);
    body.extend_from_slice(&sum.as_bytes()[..CHECKSUM_LEN]);
    body
}

#[test]
fn malformed_encodings() {
    let good = proof(vec![absent(0)], hash_tree(), vec![]).encode();
    assert!(Proof::decode(&good).is_ok());
    // Every strict prefix is truncated (or has a bad checksum), never a panic.
    for n in 0..good.len() {
        assert!(Proof::decode(&good[..n]).is_err());
    }
    let mut trailing = good.clone();
    trailing.push(0);
    assert!(Proof::decode(&trailing).is_err());
    let content = &good[..good.len() - CHECKSUM_LEN];
    let mut v = content.to_vec();
    v[0] = 2;
    assert_eq!(
        Proof::decode(&with_checksum(v)),
        Err(DecodeError::Version { found: 2 })
    );
    let mut v = content.to_vec();
    v[3] = 9; // claim kind
    assert_eq!(
        Proof::decode(&with_checksum(v)),
        Err(DecodeError::ClaimKind { kind: 9 })
    );
    // Shapes: an inner node missing its children, extra nodes after the root, Empty not alone.
    for nodes in [
        vec![ProofNode::Inner, ProofNode::Hash([0; 32])],
        vec![ProofNode::Hash([0; 32]), ProofNode::Hash([0; 32])],
        vec![ProofNode::Inner, ProofNode::Empty, ProofNode::Hash([0; 32])],
    ] {
        assert!(
            roundtrip(&proof(vec![absent(0)], nodes.clone(), vec![])).is_err(),
            "{nodes:?}"
        );
        assert!(
            verify(
                &merkle_proofs::Root([0; 32]),
                &proof(vec![absent(0)], nodes, vec![])
            )
            .is_err()
        );
    }
}
