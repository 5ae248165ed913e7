//! A deterministic synthetic mainnet-like chain generator: real [`bitcoin::Block`]s for benchmarks.
//!
//! Everything is drawn from one seed ([`rand_chacha::ChaCha8Rng`]), so a seed reproduces the same
//! blocks byte for byte. The blocks are structurally valid for UTXO bookkeeping:
//! - the coinbase comes first, carries its BIP34 height and pays at most subsidy + fees, and commits to
//!   the block's witnesses (BIP141 commitment) whenever a transaction has a witness;
//! - the header's merkle root is correct and each header links to the previous block's hash;
//! - every input spends a coin that exists and is unspent (coins are never spent twice), coinbase
//!   outputs are spent only after 100 blocks (`COINBASE_MATURITY`), every transaction pays a positive
//!   fee (outputs strictly below inputs), outputs are at least [`OUTPUT_VALUE_MIN`] except `OP_RETURN`
//!   outputs (value 0, never spendable, never entering the set).
//!
//! What is **not** valid: proof of work (the header's `bits` is regtest's easiest target but the nonce
//! is not ground) and signatures (inputs carry dummy signatures of realistic sizes). The UTXO set checks
//! neither, like Bitcoin Core under `-assumevalid`.
//!
//! Shape of the traffic ([`TxShape::Mainnet`]): output script types drawn from a mix close to recent
//! mainnet (P2WPKH 42 %, P2TR 22 %, P2PKH 14 %, P2SH 12 %, P2WSH 8.5 %, bare 1-of-2 multisig 1 %,
//! P2PK 0.5 %, plus an `OP_RETURN` output in 4 % of transactions); 1–3 inputs and 2 outputs typical,
//! consolidations (up to 100 inputs) and fan-outs (up to 250 outputs) occasionally. Inputs spend recent
//! coins (those created in the last [`RECENT_BLOCKS`] blocks, biased to the newest, including earlier
//! transactions of the same block) 55 % of the time, otherwise a uniformly drawn older coin.
//! [`TxShape::Fixed`] gives every transaction the same input and output counts (e.g. 2-in/2-out, the
//! shape of the throughput bar in DESIGN.md).
//!
//! A chain can start on a pre-existing set of coins ([`SynthConfig::initial_coins`], e.g. a snapshot
//! loaded with `UtxoSet::insert`), so benchmarks spend old coins in a set of realistic size from the
//! first block. [`coins`] generates a stream of N coins quickly, for memory and lookup benchmarks.
//!
//! ```
//! use benches::synth::{ChainCounts, SynthChain, SynthConfig};
//!
//! let config = SynthConfig { txs_per_block: 20, initial_coins: 500, start_height: 800_000, ..SynthConfig::default() };
//! let mut chain = SynthChain::new(config.clone());
//! let set = utxo_core::UtxoSet::new();
//! for (outpoint, coin) in chain.initial_coins() {
//!     set.insert(outpoint, coin);
//! }
//! let (first, blocks) = chain.blocks(3);
//! for (height, block) in (first..).zip(&blocks) {
//!     set.apply_block(block, height).unwrap();
//! }
//! assert_eq!(ChainCounts::of(&blocks).txs, 3 * 21);
//! // The same seed gives the same blocks.
//! assert_eq!(SynthChain::new(config).next_block(), blocks[0]);
//! ```

use std::collections::VecDeque;

use bitcoin::block::{Header, Version as BlockVersion};
use bitcoin::hashes::Hash;
use bitcoin::script::Builder;
use bitcoin::transaction::Version;
use bitcoin::{
    Amount, Block, BlockHash, CompactTarget, OutPoint, ScriptBuf, Sequence, Transaction, TxIn,
    TxMerkleNode, TxOut, Txid, Witness, absolute,
};
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use utxo_core::Coin;

/// Blocks before a coinbase output may be spent (Bitcoin Core's `COINBASE_MATURITY`).
pub const COINBASE_MATURITY: u32 = 100;
/// Coins created in the last this many blocks count as "recent" when inputs are drawn.
pub const RECENT_BLOCKS: usize = 144;
/// The smallest value of a spendable output the generator creates, in satoshis.
pub const OUTPUT_VALUE_MIN: u64 = 1_000;
/// The most inputs a generated transaction has (consolidations).
pub const INPUTS_MAX: usize = 100;
/// The most spendable outputs a generated transaction has (fan-outs).
pub const OUTPUTS_MAX: usize = 250;
/// Share of inputs drawn from recent coins (the rest from older coins), in per mille.
const RECENT_SHARE_PER_MILLE: u32 = 550;
/// Share of transactions with an `OP_RETURN` output, in per mille.
const OP_RETURN_PER_MILLE: u32 = 40;
/// First block's timestamp (2024-01-01); each block adds 600 s.
const TIME_BASE: u32 = 1_704_067_200;
/// Regtest's easiest target: proof of work is not checked by the UTXO set, nor ground here.
const BITS: u32 = 0x207f_ffff;
/// Header version with BIP9 top bits, as mainnet miners write it.
const HEADER_VERSION: i32 = 0x2000_0000;
/// Blocks in one subsidy halving interval (mainnet).
const HALVING_INTERVAL: u32 = 210_000;

/// The script type of an output: decides the output script and the shape of the input that spends it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ScriptKind {
    /// Pay to witness public key hash (`OP_0 <20>`).
    P2wpkh,
    /// Pay to taproot (`OP_1 <32>`).
    P2tr,
    /// Pay to public key hash.
    P2pkh,
    /// Pay to script hash (spent as P2SH-P2WPKH).
    P2sh,
    /// Pay to witness script hash (spent as a 2-of-3 multisig).
    P2wsh,
    /// Bare 1-of-2 multisig with compressed keys.
    BareMultisig,
    /// Pay to a compressed public key.
    P2pk,
}

impl ScriptKind {
    /// Output mix (per mille, cumulative order as listed).
    const MIX: [(ScriptKind, u32); 7] = [
        (ScriptKind::P2wpkh, 420),
        (ScriptKind::P2tr, 220),
        (ScriptKind::P2pkh, 140),
        (ScriptKind::P2sh, 120),
        (ScriptKind::P2wsh, 85),
        (ScriptKind::BareMultisig, 10),
        (ScriptKind::P2pk, 5),
    ];

    /// Draws a script kind from the mainnet-like mix.
    pub fn draw(rng: &mut impl Rng) -> ScriptKind {
        let mut r = rng.random_range(0..1000u32);
        for (kind, share) in Self::MIX {
            if r < share {
                return kind;
            }
            r -= share;
        }
        ScriptKind::P2wpkh
    }

    /// The output script of this kind with key/hash material taken from `payload`.
    pub fn script(self, payload: &[u8; 32]) -> ScriptBuf {
        let mut s = Vec::with_capacity(71);
        match self {
            ScriptKind::P2wpkh => {
                s.extend_from_slice(&[0x00, 0x14]);
                s.extend_from_slice(&payload[..20]);
            }
            ScriptKind::P2tr => {
                s.extend_from_slice(&[0x51, 0x20]);
                s.extend_from_slice(payload);
            }
            ScriptKind::P2pkh => {
                s.extend_from_slice(&[0x76, 0xa9, 0x14]);
                s.extend_from_slice(&payload[..20]);
                s.extend_from_slice(&[0x88, 0xac]);
            }
            ScriptKind::P2sh => {
                s.extend_from_slice(&[0xa9, 0x14]);
                s.extend_from_slice(&payload[..20]);
                s.push(0x87);
            }
            ScriptKind::P2wsh => {
                s.extend_from_slice(&[0x00, 0x20]);
                s.extend_from_slice(payload);
            }
            ScriptKind::BareMultisig => {
                s.extend_from_slice(&[0x51, 0x21, 0x02]);
                s.extend_from_slice(payload);
                s.extend_from_slice(&[0x21, 0x03]);
                s.extend(payload.iter().rev());
                s.extend_from_slice(&[0x52, 0xae]);
            }
            ScriptKind::P2pk => {
                s.extend_from_slice(&[0x21, 0x02]);
                s.extend_from_slice(payload);
                s.push(0xac);
            }
        }
        ScriptBuf::from_bytes(s)
    }

    /// A spending input of this kind, with dummy signatures of realistic sizes.
    fn input(self, previous_output: OutPoint) -> TxIn {
        let (script_sig, witness): (ScriptBuf, Witness) = match self {
            ScriptKind::P2wpkh => (ScriptBuf::new(), Witness::from_slice(&[&SIG[..], &PUBKEY])),
            ScriptKind::P2tr => (ScriptBuf::new(), Witness::from_slice(&[&SIG[..64]])),
            ScriptKind::P2pkh => (
                Builder::new()
                    .push_slice(SIG)
                    .push_slice(PUBKEY)
                    .into_script(),
                Witness::new(),
            ),
            ScriptKind::P2sh => (
                Builder::new().push_slice(P2SH_P2WPKH_REDEEM).into_script(),
                Witness::from_slice(&[&SIG[..], &PUBKEY]),
            ),
            ScriptKind::P2wsh => (
                ScriptBuf::new(),
                Witness::from_slice(&[&[][..], &SIG, &SIG, &MULTISIG_2_OF_3]),
            ),
            ScriptKind::BareMultisig => (
                Builder::new()
                    .push_opcode(bitcoin::opcodes::OP_0)
                    .push_slice(SIG)
                    .into_script(),
                Witness::new(),
            ),
            ScriptKind::P2pk => (Builder::new().push_slice(SIG).into_script(), Witness::new()),
        };
        TxIn {
            previous_output,
            script_sig,
            sequence: Sequence::ENABLE_RBF_NO_LOCKTIME,
            witness,
        }
    }

    /// Rough virtual size of one input of this kind (for fee estimates).
    fn input_vsize(self) -> u64 {
        match self {
            ScriptKind::P2wpkh => 68,
            ScriptKind::P2tr => 58,
            ScriptKind::P2pkh => 148,
            ScriptKind::P2sh => 91,
            ScriptKind::P2wsh => 105,
            ScriptKind::BareMultisig => 114,
            ScriptKind::P2pk => 114,
        }
    }
}

/// A dummy DER signature with sighash byte (72 bytes).
const SIG: [u8; 72] = {
    let mut s = [0x5a; 72];
    s[0] = 0x30;
    s[1] = 0x45;
    s[71] = 0x01;
    s
};
/// A dummy compressed public key.
const PUBKEY: [u8; 33] = {
    let mut k = [0x3c; 33];
    k[0] = 0x02;
    k
};
/// The redeem script of a P2SH-wrapped P2WPKH (`OP_0 <20>`).
const P2SH_P2WPKH_REDEEM: [u8; 22] = {
    let mut r = [0x77; 22];
    r[0] = 0x00;
    r[1] = 0x14;
    r
};
/// A 2-of-3 multisig witness script of compressed keys (105 bytes).
const MULTISIG_2_OF_3: [u8; 105] = {
    let mut m = [0x2d; 105];
    m[0] = 0x52;
    m[1] = 0x21;
    m[2] = 0x02;
    m[35] = 0x21;
    m[36] = 0x03;
    m[69] = 0x21;
    m[70] = 0x02;
    m[103] = 0x53;
    m[104] = 0xae;
    m
};

/// The input and output counts of generated transactions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TxShape {
    /// Counts drawn from a mainnet-like distribution (see the module docs).
    Mainnet,
    /// Every transaction has exactly this many inputs and spendable outputs (no `OP_RETURN`), as long as
    /// enough coins are spendable.
    Fixed {
        /// Inputs per transaction.
        inputs: usize,
        /// Spendable outputs per transaction.
        outputs: usize,
    },
}

/// Parameters of a synthetic chain.
#[derive(Clone, Debug)]
pub struct SynthConfig {
    /// Seed of every random draw: same seed, same blocks.
    pub seed: u64,
    /// Non-coinbase transactions attempted per block (fewer while too few coins are spendable).
    pub txs_per_block: usize,
    /// Input and output counts of transactions.
    pub shape: TxShape,
    /// Coins that exist before the first generated block (see [`SynthChain::initial_coins`]); they are
    /// non-coinbase coins with heights below `start_height`.
    pub initial_coins: usize,
    /// Height of the first generated block.
    pub start_height: u32,
}

impl Default for SynthConfig {
    fn default() -> Self {
        SynthConfig {
            seed: 1,
            txs_per_block: 2_500,
            shape: TxShape::Mainnet,
            initial_coins: 0,
            start_height: 1,
        }
    }
}

/// A coin the generator may spend.
#[derive(Clone, Copy, Debug)]
struct Spendable {
    outpoint: OutPoint,
    value: u64,
    height: u32,
    kind: ScriptKind,
}

/// Counts of work in a sequence of blocks, for benchmark throughput.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChainCounts {
    /// Blocks.
    pub blocks: u64,
    /// Transactions, coinbases included.
    pub txs: u64,
    /// Coins spent (inputs of non-coinbase transactions).
    pub spent: u64,
    /// Coins created (outputs that enter the set: not `OP_RETURN`).
    pub created: u64,
}

impl ChainCounts {
    /// Counts the work in `blocks`.
    pub fn of(blocks: &[Block]) -> ChainCounts {
        let mut c = ChainCounts::default();
        for block in blocks {
            c.blocks += 1;
            for tx in &block.txdata {
                c.txs += 1;
                if !tx.is_coinbase() {
                    c.spent += tx.input.len() as u64;
                }
                c.created += tx
                    .output
                    .iter()
                    .filter(|o| !o.script_pubkey.is_op_return())
                    .count() as u64;
            }
        }
        c
    }

    /// Coin operations: spends plus creations.
    pub fn coin_ops(&self) -> u64 {
        self.spent + self.created
    }
}

/// The generator: yields one block after another, tracking which coins it may spend.
#[derive(Debug)]
pub struct SynthChain {
    rng: ChaCha8Rng,
    config: SynthConfig,
    height: u32,
    prev_hash: BlockHash,
    initial: Vec<Spendable>,
    /// Coins older than [`RECENT_BLOCKS`] blocks (and matured coinbase outputs): drawn uniformly.
    old: Vec<Spendable>,
    /// One bucket per recent block, newest at the back (the current block's bucket included).
    recent: VecDeque<Vec<Spendable>>,
    recent_len: usize,
    /// Coinbase outputs waiting for maturity, oldest first.
    immature: VecDeque<(u32, Vec<Spendable>)>,
}

impl SynthChain {
    /// A generator for `config`; draws the initial coins at once.
    pub fn new(config: SynthConfig) -> SynthChain {
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
        let mut prev = [0u8; 32];
        rng.fill_bytes(&mut prev);
        let mut initial = Vec::with_capacity(config.initial_coins);
        let mut draw = CoinDraw::new(rng.next_u64(), config.start_height.max(1), false);
        while initial.len() < config.initial_coins {
            initial.push(draw.next_spendable());
        }
        SynthChain {
            rng,
            height: config.start_height,
            prev_hash: BlockHash::from_byte_array(prev),
            old: initial.clone(),
            initial,
            recent: VecDeque::new(),
            recent_len: 0,
            immature: VecDeque::new(),
            config,
        }
    }

    /// The coins that exist before the first block, to insert into the set before applying blocks.
    pub fn initial_coins(&self) -> impl ExactSizeIterator<Item = (OutPoint, Coin)> + '_ {
        self.initial.iter().map(Spendable::coin)
    }

    /// Height of the next block [`SynthChain::next_block`] returns.
    pub fn height(&self) -> u32 {
        self.height
    }

    /// Coins the generator could spend in the next block (matured and unspent).
    pub fn spendable_len(&self) -> usize {
        self.old.len() + self.recent_len
    }

    /// Generates `n` blocks; returns them with the height of the first.
    pub fn blocks(&mut self, n: usize) -> (u32, Vec<Block>) {
        let first = self.height;
        let blocks = (0..n).map(|_| self.next_block()).collect();
        (first, blocks)
    }

    /// Generates the next block (at height [`SynthChain::height`]).
    pub fn next_block(&mut self) -> Block {
        let height = self.height;
        self.age(height);
        self.recent.push_back(Vec::new());
        let mut txdata = vec![Transaction {
            version: Version::TWO,
            lock_time: absolute::LockTime::ZERO,
            input: Vec::new(),
            output: Vec::new(),
        }];
        let mut fees = 0u64;
        for _ in 0..self.config.txs_per_block {
            match self.next_tx(height) {
                Some((tx, fee)) => {
                    fees = fees.checked_add(fee).expect("fees fit in u64");
                    txdata.push(tx);
                }
                None => break,
            }
        }
        let (coinbase, coinbase_kinds) = self.coinbase(height, fees);
        txdata[0] = coinbase;
        let mut block = Block {
            header: Header {
                version: BlockVersion::from_consensus(HEADER_VERSION),
                prev_blockhash: self.prev_hash,
                merkle_root: TxMerkleNode::all_zeros(),
                time: TIME_BASE.wrapping_add(height.wrapping_mul(600)),
                bits: CompactTarget::from_consensus(BITS),
                nonce: self.rng.next_u32(),
            },
            txdata,
        };
        if block.txdata.len() > 1 {
            // BIP141 commitment (an OP_RETURN output: it never enters the set).
            let root = block.witness_root().expect("block has transactions");
            let commitment = Block::compute_witness_commitment(&root, &[0u8; 32]);
            let mut script = vec![0x6a, 0x24, 0xaa, 0x21, 0xa9, 0xed];
            script.extend_from_slice(commitment.as_byte_array());
            block.txdata[0].output.push(TxOut {
                value: Amount::ZERO,
                script_pubkey: ScriptBuf::from_bytes(script),
            });
            block.txdata[0].input[0].witness = Witness::from_slice(&[[0u8; 32]]);
        }
        block.header.merkle_root = block.compute_merkle_root().expect("block has transactions");
        let coinbase = &block.txdata[0];
        let txid = coinbase.compute_txid();
        let matured = coinbase_kinds
            .iter()
            .zip(&coinbase.output)
            .zip(0u32..)
            .map(|((kind, out), vout)| Spendable {
                outpoint: OutPoint::new(txid, vout),
                value: out.value.to_sat(),
                height,
                kind: *kind,
            })
            .collect();
        self.immature.push_back((height, matured));
        self.prev_hash = block.block_hash();
        self.height = height.checked_add(1).expect("height fits in u32");
        block
    }

    /// Moves matured coinbase outputs and aged recent coins to the old pool, before block `height`.
    fn age(&mut self, height: u32) {
        while let Some((h, _)) = self.immature.front() {
            if height.saturating_sub(*h) < COINBASE_MATURITY {
                break;
            }
            if let Some((_, coins)) = self.immature.pop_front() {
                self.old.extend(coins);
            }
        }
        while self.recent.len() >= RECENT_BLOCKS {
            if let Some(bucket) = self.recent.pop_front() {
                self.recent_len -= bucket.len();
                self.old.extend(bucket);
            }
        }
    }

    /// Takes one spendable coin out of the pools (recent or old), or `None` if there is none.
    fn take_coin(&mut self) -> Option<Spendable> {
        let want_recent = self.rng.random_range(0..1000) < RECENT_SHARE_PER_MILLE;
        if (want_recent && self.recent_len > 0) || self.old.is_empty() {
            if self.recent_len == 0 {
                return None;
            }
            // Bias toward the newest buckets: the offset from the back is the least of three draws.
            let n = self.recent.len();
            let offset = (0..3)
                .map(|_| self.rng.random_range(0..n))
                .min()
                .unwrap_or(0);
            // Walk to a non-empty bucket (older first, then wrap to the newest).
            for step in 0..n {
                let idx = n - 1 - ((offset + step) % n);
                let len = self.recent[idx].len();
                if len > 0 {
                    let pick = self.rng.random_range(0..len);
                    self.recent_len -= 1;
                    return Some(self.recent[idx].swap_remove(pick));
                }
            }
            None
        } else {
            let pick = self.rng.random_range(0..self.old.len());
            Some(self.old.swap_remove(pick))
        }
    }

    /// Puts coins back (a transaction that could not be built).
    fn put_back(&mut self, coins: Vec<Spendable>) {
        self.old.extend(coins);
    }

    fn draw_counts(&mut self) -> (usize, usize, bool) {
        match self.config.shape {
            TxShape::Fixed { inputs, outputs } => (
                inputs.clamp(1, INPUTS_MAX),
                outputs.clamp(1, OUTPUTS_MAX),
                false,
            ),
            TxShape::Mainnet => {
                let r = self.rng.random_range(0..1000u32);
                let inputs = match r {
                    0..620 => 1,
                    620..830 => 2,
                    830..900 => 3,
                    900..965 => self.rng.random_range(4..=8),
                    965..995 => self.rng.random_range(9..=20),
                    _ => self.rng.random_range(21..=INPUTS_MAX),
                };
                let r = self.rng.random_range(0..1000u32);
                let outputs = match r {
                    0..120 => 1,
                    120..840 => 2,
                    840..945 => self.rng.random_range(3..=5),
                    945..995 => self.rng.random_range(6..=20),
                    _ => self.rng.random_range(21..=OUTPUTS_MAX),
                };
                let op_return = self.rng.random_range(0..1000) < OP_RETURN_PER_MILLE;
                (inputs, outputs, op_return)
            }
        }
    }

    /// Builds one transaction spending coins of the pools; returns it with its fee.
    fn next_tx(&mut self, height: u32) -> Option<(Transaction, u64)> {
        let (want_in, want_out, op_return) = self.draw_counts();
        let mut spent = Vec::with_capacity(want_in);
        let mut total = 0u64;
        while spent.len() < want_in || total <= OUTPUT_VALUE_MIN {
            if spent.len() >= INPUTS_MAX {
                break;
            }
            let Some(coin) = self.take_coin() else { break };
            total = total.checked_add(coin.value).expect("values fit in u64");
            spent.push(coin);
        }
        if spent.is_empty() || total <= OUTPUT_VALUE_MIN {
            self.put_back(spent);
            return None;
        }
        let kinds: Vec<ScriptKind> = (0..want_out)
            .map(|_| ScriptKind::draw(&mut self.rng))
            .collect();
        let vsize = 11
            + spent.iter().map(|c| c.kind.input_vsize()).sum::<u64>()
            + 34 * want_out as u64
            + if op_return { 50 } else { 0 };
        let feerate = self.rng.random_range(1..=40u64);
        // Fee in [1, total - OUTPUT_VALUE_MIN]: positive, and leaves one output of at least the minimum.
        let fee = (feerate * vsize).clamp(1, total - OUTPUT_VALUE_MIN);
        let available = total - fee;
        let n_out =
            want_out.min(usize::try_from(available / OUTPUT_VALUE_MIN).unwrap_or(usize::MAX));
        let values = self.split(available, n_out);
        let mut output: Vec<TxOut> = kinds
            .iter()
            .zip(&values)
            .map(|(kind, value)| {
                let mut payload = [0u8; 32];
                self.rng.fill_bytes(&mut payload);
                TxOut {
                    value: Amount::from_sat(*value),
                    script_pubkey: kind.script(&payload),
                }
            })
            .collect();
        if op_return {
            let len = self.rng.random_range(8..=80usize);
            let mut data = vec![0u8; len];
            self.rng.fill_bytes(&mut data);
            let push = bitcoin::script::PushBytesBuf::try_from(data).expect("80 bytes fit a push");
            let at = self.rng.random_range(0..=output.len());
            output.insert(
                at,
                TxOut {
                    value: Amount::ZERO,
                    script_pubkey: ScriptBuf::new_op_return(push),
                },
            );
        }
        let tx = Transaction {
            version: Version::TWO,
            lock_time: absolute::LockTime::ZERO,
            input: spent.iter().map(|c| c.kind.input(c.outpoint)).collect(),
            output,
        };
        let txid = tx.compute_txid();
        let mut kinds = kinds.into_iter();
        let bucket = self.recent.back_mut().expect("current block's bucket");
        for (vout, out) in (0u32..).zip(&tx.output) {
            if out.script_pubkey.is_op_return() {
                continue;
            }
            let kind = kinds.next().expect("one kind per spendable output");
            bucket.push(Spendable {
                outpoint: OutPoint::new(txid, vout),
                value: out.value.to_sat(),
                height,
                kind,
            });
            self.recent_len += 1;
        }
        Some((tx, fee))
    }

    /// Splits `total` into `n` values of at least [`OUTPUT_VALUE_MIN`] (needs `total >= n * min`).
    fn split(&mut self, total: u64, n: usize) -> Vec<u64> {
        let spare = total - OUTPUT_VALUE_MIN * n as u64;
        let weights: Vec<u64> = (0..n)
            .map(|i| {
                // The first output is the "change": a larger share.
                let w = self.rng.random_range(1..=1_000u64);
                if i == 0 { w * 4 } else { w }
            })
            .collect();
        let sum: u64 = weights.iter().sum();
        let mut values: Vec<u64> = weights
            .iter()
            .map(|w| {
                let share = u128::from(spare) * u128::from(*w) / u128::from(sum);
                OUTPUT_VALUE_MIN + u64::try_from(share).expect("share below total")
            })
            .collect();
        let assigned: u64 = values.iter().sum();
        values[0] += total - assigned;
        values
    }

    /// The coinbase of block `height` paying subsidy + `fees` (one output, sometimes two), and the
    /// script kinds of its outputs.
    fn coinbase(&mut self, height: u32, fees: u64) -> (Transaction, Vec<ScriptKind>) {
        let halvings = height / HALVING_INTERVAL;
        let subsidy = if halvings >= 64 {
            0
        } else {
            (50 * 100_000_000u64) >> halvings
        };
        let reward = subsidy.checked_add(fees).expect("reward fits in u64");
        let mut extra_nonce = [0u8; 8];
        self.rng.fill_bytes(&mut extra_nonce);
        let script_sig = Builder::new()
            .push_int(i64::from(height))
            .push_slice(extra_nonce)
            .into_script();
        let n_out = if self.rng.random_range(0..10) == 0 {
            2
        } else {
            1
        };
        let values = if reward >= 2 * OUTPUT_VALUE_MIN && n_out == 2 {
            self.split(reward, 2)
        } else {
            vec![reward]
        };
        let kinds: Vec<ScriptKind> = values
            .iter()
            .map(|_| match self.rng.random_range(0..3) {
                0 => ScriptKind::P2pkh,
                1 => ScriptKind::P2tr,
                _ => ScriptKind::P2wpkh,
            })
            .collect();
        let output = kinds
            .iter()
            .zip(&values)
            .map(|(kind, value)| {
                let mut payload = [0u8; 32];
                self.rng.fill_bytes(&mut payload);
                TxOut {
                    value: Amount::from_sat(*value),
                    script_pubkey: kind.script(&payload),
                }
            })
            .collect();
        let tx = Transaction {
            version: Version::TWO,
            lock_time: absolute::LockTime::ZERO,
            input: vec![TxIn {
                previous_output: OutPoint::null(),
                script_sig,
                sequence: Sequence::MAX,
                witness: Witness::new(),
            }],
            output,
        };
        (tx, kinds)
    }
}

impl Spendable {
    /// The coin as the set stores it (scripts of pre-existing coins are derived from the outpoint).
    fn coin(&self) -> (OutPoint, Coin) {
        let coin = Coin {
            amount: Amount::from_sat(self.value),
            height: self.height,
            is_coinbase: false,
            script_pubkey: self.kind.script(&payload_of(&self.outpoint)),
        };
        (self.outpoint, coin)
    }
}

/// Key material of a pre-existing coin, derived from its outpoint (so it need not be stored).
fn payload_of(outpoint: &OutPoint) -> [u8; 32] {
    let mut p = outpoint.txid.to_byte_array();
    p.reverse();
    for (b, v) in p.iter_mut().zip(outpoint.vout.to_le_bytes()) {
        *b ^= v;
    }
    p
}

/// Draws pre-existing coins: fake transactions of 1–3 outputs, mainnet-like scripts, log-uniform
/// values between 10^4 and 10^8 satoshis, heights below a given height.
#[derive(Debug)]
struct CoinDraw {
    rng: ChaCha8Rng,
    below_height: u32,
    coinbase: bool,
    txid: Txid,
    vout: u32,
    vouts: u32,
}

impl CoinDraw {
    fn new(seed: u64, below_height: u32, coinbase: bool) -> CoinDraw {
        CoinDraw {
            rng: ChaCha8Rng::seed_from_u64(seed),
            below_height: below_height.max(1),
            coinbase,
            txid: Txid::all_zeros(),
            vout: 0,
            vouts: 0,
        }
    }

    fn next_spendable(&mut self) -> Spendable {
        if self.vout >= self.vouts {
            let mut t = [0u8; 32];
            self.rng.fill_bytes(&mut t);
            self.txid = Txid::from_byte_array(t);
            self.vout = 0;
            self.vouts = match self.rng.random_range(0..10) {
                0..6 => 1,
                6..9 => 2,
                _ => 3,
            };
        }
        let outpoint = OutPoint::new(self.txid, self.vout);
        self.vout += 1;
        // Roughly log-uniform between 10^4 and 10^8 satoshis.
        let value =
            self.rng.random_range(1_000..10_000u64) * 10u64.pow(self.rng.random_range(1..=4));
        Spendable {
            outpoint,
            value,
            height: self.rng.random_range(0..self.below_height),
            kind: ScriptKind::draw(&mut self.rng),
        }
    }

    fn next_coin(&mut self) -> (OutPoint, Coin) {
        let s = self.next_spendable();
        let (outpoint, mut coin) = s.coin();
        // About 1 % of mainnet coins are coinbase outputs.
        coin.is_coinbase = self.coinbase && self.rng.random_range(0..100) == 0;
        (outpoint, coin)
    }
}

/// A deterministic stream of `n` distinct coins (fake txids, 1–3 outputs each, mainnet-like scripts
/// and values, heights below 840,000, about 1 % coinbase), for memory and lookup benchmarks.
pub fn coins(seed: u64, n: usize) -> impl Iterator<Item = (OutPoint, Coin)> {
    let mut draw = CoinDraw::new(seed, 840_000, true);
    (0..n).map(move |_| draw.next_coin())
}

/// Inserts `n` coins of [`coins`]`(seed, n)` into `set` with `UtxoSet::insert`; returns the
/// outpoints inserted (in order), for lookups.
pub fn populate(set: &utxo_core::UtxoSet, seed: u64, n: usize) -> Vec<OutPoint> {
    let mut outpoints = Vec::with_capacity(n);
    for (outpoint, coin) in coins(seed, n) {
        set.insert(outpoint, coin);
        outpoints.push(outpoint);
    }
    outpoints
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};

    use utxo_core::{SetOptions, UtxoSet};

    use super::*;
    use crate::naive::NaiveSet;

    fn small(seed: u64) -> SynthConfig {
        SynthConfig {
            seed,
            txs_per_block: 40,
            ..SynthConfig::default()
        }
    }

    #[test]
    fn chain_of_300_blocks_applies_cleanly_and_is_reproducible() {
        let mut chain = SynthChain::new(small(7));
        let (first, blocks) = chain.blocks(300);
        assert_eq!(first, 1);
        let set = UtxoSet::new();
        for (height, block) in (first..).zip(&blocks) {
            set.apply_block(block, height)
                .unwrap_or_else(|e| panic!("block at height {height}: {e}"));
        }
        let counts = ChainCounts::of(&blocks);
        // Non-coinbase traffic starts once the first coinbase matures, then fills the blocks.
        assert!(counts.txs > 300 + 150 * 40, "{counts:?}");
        assert!(counts.spent > 0 && counts.created > counts.spent);
        assert_eq!(set.stats().txouts, set.len() as u64);

        let again: Vec<BlockHash> = SynthChain::new(small(7))
            .blocks(300)
            .1
            .iter()
            .map(Block::block_hash)
            .collect();
        let hashes: Vec<BlockHash> = blocks.iter().map(Block::block_hash).collect();
        assert_eq!(hashes, again, "same seed, same blocks");
        let other = SynthChain::new(small(8)).blocks(1).1[0].block_hash();
        assert_ne!(hashes[0], other, "another seed, other blocks");
    }

    /// Checks every rule the generator promises with a model of its own (a map of coins).
    #[test]
    fn blocks_keep_the_rules_a_model_checks() {
        let config = SynthConfig {
            initial_coins: 3_000,
            start_height: 500_000,
            ..small(3)
        };
        let mut chain = SynthChain::new(config);
        let mut model: HashMap<OutPoint, Coin> = chain.initial_coins().collect();
        assert_eq!(model.len(), 3_000);
        let mut prev: Option<BlockHash> = None;
        let mut kinds_seen = HashSet::new();
        let mut recent_spends = 0u64;
        let mut spends = 0u64;
        let mut multi_in = 0u64;
        for _ in 0..150 {
            let height = chain.height();
            let block = chain.next_block();
            assert!(block.check_merkle_root());
            assert!(block.check_witness_commitment());
            assert_eq!(block.bip34_block_height().ok(), Some(u64::from(height)));
            if let Some(prev) = prev {
                assert_eq!(block.header.prev_blockhash, prev);
            }
            prev = Some(block.block_hash());
            let mut fees = 0u64;
            for tx in block.txdata.iter().skip(1) {
                assert!(!tx.is_coinbase());
                multi_in += u64::from(tx.input.len() > 1);
                let mut value_in = 0u64;
                for input in &tx.input {
                    let coin = model.remove(&input.previous_output).unwrap_or_else(|| {
                        panic!("missing or double spent {}", input.previous_output)
                    });
                    if coin.is_coinbase {
                        assert!(height - coin.height >= COINBASE_MATURITY);
                    }
                    spends += 1;
                    recent_spends += u64::from(height - coin.height < 10);
                    value_in += coin.amount.to_sat();
                }
                let value_out: u64 = tx.output.iter().map(|o| o.value.to_sat()).sum();
                assert!(value_out < value_in, "a positive fee");
                fees += value_in - value_out;
                let txid = tx.compute_txid();
                for (vout, out) in (0u32..).zip(&tx.output) {
                    if out.script_pubkey.is_op_return() {
                        assert_eq!(out.value, Amount::ZERO);
                        kinds_seen.insert("op_return");
                        continue;
                    }
                    assert!(out.value.to_sat() >= OUTPUT_VALUE_MIN);
                    let prior = model.insert(
                        OutPoint::new(txid, vout),
                        Coin::from_txout(out, height, false),
                    );
                    assert!(prior.is_none(), "no txid repeats");
                }
            }
            let coinbase = &block.txdata[0];
            assert!(coinbase.is_coinbase());
            let reward: u64 = coinbase.output.iter().map(|o| o.value.to_sat()).sum();
            let subsidy = (50 * 100_000_000u64) >> (height / HALVING_INTERVAL);
            assert!(reward <= subsidy + fees);
            let txid = coinbase.compute_txid();
            for (vout, out) in (0u32..).zip(&coinbase.output) {
                if !out.script_pubkey.is_op_return() {
                    model.insert(
                        OutPoint::new(txid, vout),
                        Coin::from_txout(out, height, true),
                    );
                }
            }
            for tx in &block.txdata {
                for out in &tx.output {
                    let s = &out.script_pubkey;
                    let kind = if s.is_op_return() {
                        "op_return"
                    } else if s.is_p2wpkh() {
                        "p2wpkh"
                    } else if s.is_p2tr() {
                        "p2tr"
                    } else if s.is_p2pkh() {
                        "p2pkh"
                    } else if s.is_p2sh() {
                        "p2sh"
                    } else if s.is_p2wsh() {
                        "p2wsh"
                    } else if s.is_multisig() {
                        "multisig"
                    } else if s.is_p2pk() {
                        "p2pk"
                    } else {
                        "other"
                    };
                    kinds_seen.insert(kind);
                }
            }
        }
        for kind in [
            "p2wpkh",
            "p2tr",
            "p2pkh",
            "p2sh",
            "p2wsh",
            "multisig",
            "p2pk",
            "op_return",
        ] {
            assert!(kinds_seen.contains(kind), "{kind} drawn");
        }
        assert!(!kinds_seen.contains("other"));
        // Both recent and old coins are spent.
        assert!(
            recent_spends > spends / 5 && recent_spends < spends * 9 / 10,
            "{recent_spends}/{spends}"
        );
        assert!(multi_in > 0);
    }

    #[test]
    fn initial_coins_then_blocks_apply_and_disconnect_back_to_the_start() {
        let config = SynthConfig {
            initial_coins: 2_000,
            start_height: 800_000,
            shape: TxShape::Fixed {
                inputs: 2,
                outputs: 2,
            },
            ..small(11)
        };
        let mut chain = SynthChain::new(config);
        let set = UtxoSet::new();
        for (op, coin) in chain.initial_coins() {
            assert!(set.insert(op, coin).is_none());
        }
        let start = set.stats();
        let (first, blocks) = chain.blocks(20);
        let mut undos = Vec::new();
        for (height, block) in (first..).zip(&blocks) {
            for tx in block.txdata.iter().skip(1) {
                assert_eq!((tx.input.len(), tx.output.len()), (2, 2));
            }
            undos.push(set.apply_block(block, height).expect("applies"));
        }
        assert_eq!(ChainCounts::of(&blocks).txs, 20 * 41);
        for ((height, block), undo) in (first..first + 20).zip(&blocks).zip(&undos).rev() {
            set.disconnect_block(block, height, undo)
                .expect("disconnects");
        }
        assert_eq!(set.stats(), start);
        assert_eq!(set.len(), 2_000);
    }

    #[test]
    fn naive_baseline_applies_the_same_chain() {
        let mut chain = SynthChain::new(SynthConfig {
            initial_coins: 1_000,
            start_height: 700_000,
            ..small(5)
        });
        let set = UtxoSet::with_options(SetOptions {
            track_muhash: false,
            ..SetOptions::default()
        });
        let mut naive = NaiveSet::new();
        for (op, coin) in chain.initial_coins() {
            naive.insert(op, coin.to_txout());
            set.insert(op, coin);
        }
        let (first, blocks) = chain.blocks(10);
        let mut undos = Vec::new();
        for (height, block) in (first..).zip(&blocks) {
            set.apply_block(block, height).expect("applies");
            undos.push(naive.apply_block(block).expect("naive applies"));
        }
        assert_eq!(naive.len(), set.len());
        for (block, undo) in blocks.iter().zip(undos).rev() {
            naive.disconnect_block(block, undo);
        }
        assert_eq!(naive.len(), 1_000);
    }

    #[test]
    fn fixed_shape_is_clamped_to_the_limits() {
        let at = SynthChain::new(SynthConfig {
            initial_coins: 300,
            start_height: 1_000,
            txs_per_block: 1,
            shape: TxShape::Fixed {
                inputs: INPUTS_MAX,
                outputs: OUTPUTS_MAX,
            },
            ..small(2)
        })
        .next_block();
        assert_eq!(at.txdata[1].input.len(), INPUTS_MAX);
        assert_eq!(at.txdata[1].output.len(), OUTPUTS_MAX);
        let past = SynthChain::new(SynthConfig {
            initial_coins: 300,
            start_height: 1_000,
            txs_per_block: 1,
            shape: TxShape::Fixed {
                inputs: INPUTS_MAX + 1,
                outputs: OUTPUTS_MAX + 1,
            },
            ..small(2)
        })
        .next_block();
        assert_eq!(past.txdata[1].input.len(), INPUTS_MAX);
        assert_eq!(past.txdata[1].output.len(), OUTPUTS_MAX);
    }

    #[test]
    fn coins_are_distinct_and_reproducible() {
        let a: Vec<_> = coins(9, 5_000).collect();
        let b: Vec<_> = coins(9, 5_000).collect();
        assert_eq!(a, b);
        let distinct: HashSet<OutPoint> = a.iter().map(|(op, _)| *op).collect();
        assert_eq!(distinct.len(), 5_000);
        let set = UtxoSet::with_options(SetOptions {
            track_muhash: false,
            ..SetOptions::default()
        });
        let outpoints = populate(&set, 9, 5_000);
        assert_eq!(set.len(), 5_000);
        assert_eq!(set.get(&outpoints[4_999]), Some(a[4_999].1.clone()));
    }
}
