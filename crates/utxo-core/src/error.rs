//! Errors of block application and disconnection, each naming the offending block, tx or outpoint.

use bitcoin::{Amount, BlockHash, OutPoint, Txid};

/// Why a block cannot be connected. The set is unchanged after any of these.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ApplyError {
    /// The block does not extend the set's best block at the next height.
    #[error(
        "block {block} at height {height} does not extend the tip {tip} at height {tip_height}"
    )]
    DoesNotExtendTip {
        /// The block.
        block: BlockHash,
        /// The height it was given.
        height: u32,
        /// The set's best block.
        tip: BlockHash,
        /// The best block's height.
        tip_height: u32,
    },
    /// The block has no transactions.
    #[error("block {block} has no transactions")]
    NoTransactions {
        /// The block.
        block: BlockHash,
    },
    /// The first transaction is not a coinbase.
    #[error("block {block}: first transaction {txid} is not a coinbase")]
    FirstTxNotCoinbase {
        /// The block.
        block: BlockHash,
        /// The first transaction.
        txid: Txid,
    },
    /// A coinbase appears after the first position.
    #[error("block {block}: transaction {txid} is a second coinbase")]
    ExtraCoinbase {
        /// The block.
        block: BlockHash,
        /// The extra coinbase.
        txid: Txid,
    },
    /// A transaction has no inputs or no outputs.
    #[error("transaction {txid} has no inputs or no outputs")]
    EmptyTransaction {
        /// The transaction.
        txid: Txid,
    },
    /// An input spends a coin that is not in the set (never created, already spent, or unspendable).
    #[error("transaction {txid} spends missing or spent output {outpoint}")]
    MissingInput {
        /// The spending transaction.
        txid: Txid,
        /// The outpoint it tries to spend.
        outpoint: OutPoint,
    },
    /// Two inputs in this block spend the same outpoint.
    #[error("transaction {txid} double-spends {outpoint} within the block")]
    DoubleSpend {
        /// The second spender.
        txid: Txid,
        /// The outpoint spent twice.
        outpoint: OutPoint,
    },
    /// A coinbase output is spent before 100 confirmations.
    #[error(
        "transaction {txid} spends coinbase output {outpoint} of height {coin_height} at height {spend_height}"
    )]
    ImmatureCoinbaseSpend {
        /// The spending transaction.
        txid: Txid,
        /// The immature coinbase output.
        outpoint: OutPoint,
        /// Height that created the coin.
        coin_height: u32,
        /// Height of the spending block.
        spend_height: u32,
    },
    /// An amount or a sum exceeds 21,000,000 BTC.
    #[error("transaction {txid}: value out of range (above MAX_MONEY)")]
    ValueOutOfRange {
        /// The transaction.
        txid: Txid,
    },
    /// Outputs are worth more than inputs.
    #[error("transaction {txid} spends {inputs} but creates {outputs}")]
    OutputsExceedInputs {
        /// The transaction.
        txid: Txid,
        /// Sum of the inputs.
        inputs: Amount,
        /// Sum of the outputs.
        outputs: Amount,
    },
    /// The coinbase claims more than subsidy plus fees.
    #[error("coinbase {txid} claims {claimed}, at most {allowed} allowed")]
    CoinbaseTooLarge {
        /// The coinbase.
        txid: Txid,
        /// What it pays out.
        claimed: Amount,
        /// Subsidy plus fees.
        allowed: Amount,
    },
    /// The transaction ids given with a block (see [`crate::UtxoSet::apply_block_with_txids`])
    /// are not one per transaction.
    #[error("block {block}: {txids} txids given for {transactions} transactions")]
    TxidCount {
        /// The block.
        block: BlockHash,
        /// How many txids were given.
        txids: usize,
        /// How many transactions the block has.
        transactions: usize,
    },
    /// A transaction id given with a block is not the transaction's (checked in debug builds
    /// only; see [`crate::UtxoSet::apply_block_with_txids`]).
    #[error("block {block}: txid given for transaction {index} is {given}, not {computed}")]
    TxidMismatch {
        /// The block.
        block: BlockHash,
        /// The transaction's position in the block.
        index: usize,
        /// The txid given.
        given: Txid,
        /// The transaction's txid.
        computed: Txid,
    },
    /// BIP30: a transaction would overwrite an unspent output with the same outpoint.
    #[error("transaction {txid} would overwrite unspent output {outpoint} (BIP30)")]
    Bip30Overwrite {
        /// The transaction.
        txid: Txid,
        /// The existing unspent outpoint.
        outpoint: OutPoint,
    },
}

/// Why a block cannot be disconnected with the given undo data. The set is unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DisconnectError {
    /// The block is not the set's best block.
    #[error("block {block} is not the tip {tip}")]
    NotTip {
        /// The block.
        block: BlockHash,
        /// The set's best block.
        tip: BlockHash,
    },
    /// The undo data does not have one entry per non-coinbase transaction and input.
    #[error("undo data does not match block {block}")]
    UndoMismatch {
        /// The block.
        block: BlockHash,
    },
    /// An output the block created is not in the set as created (the block is not the tip).
    #[error("output {outpoint} of the block is not in the set as created")]
    OutputMismatch {
        /// The outpoint.
        outpoint: OutPoint,
    },
    /// A coin to restore is already present.
    #[error("coin {outpoint} to restore is already in the set")]
    InputAlreadyPresent {
        /// The outpoint.
        outpoint: OutPoint,
    },
}
