//! Explicit standardness checks (Bitcoin Core's relay policy, `src/policy/policy.cpp`) for the
//! transactions this crate produces: a consensus-valid transaction that nodes refuse to relay is of no
//! use for enforcing a channel.

use bitcoin::blockdata::script::Instruction;
use bitcoin::opcodes::all::OP_IF;
use bitcoin::{Amount, Script, Transaction, TxOut};

/// `MAX_STANDARD_TX_WEIGHT`.
pub const STANDARD_TX_WEIGHT_MAX: u64 = 400_000;
/// `MIN_STANDARD_TX_NONWITNESS_SIZE`.
pub const STANDARD_TX_NONWITNESS_SIZE_MIN: usize = 65;
/// `MAX_STANDARD_SCRIPTSIG_SIZE`.
pub const STANDARD_SCRIPTSIG_SIZE_MAX: usize = 1650;
/// `MAX_STANDARD_P2WSH_SCRIPT_SIZE`.
pub const STANDARD_P2WSH_SCRIPT_SIZE_MAX: usize = 3600;
/// `MAX_STANDARD_P2WSH_STACK_ITEMS`.
pub const STANDARD_P2WSH_STACK_ITEMS_MAX: usize = 100;
/// `MAX_STANDARD_P2WSH_STACK_ITEM_SIZE`.
pub const STANDARD_P2WSH_STACK_ITEM_SIZE_MAX: usize = 80;
/// `MAX_STANDARD_TAPSCRIPT_STACK_ITEM_SIZE`.
pub const STANDARD_TAPSCRIPT_STACK_ITEM_SIZE_MAX: usize = 80;
/// `DUST_RELAY_TX_FEE`, sat per 1000 virtual bytes.
pub const DUST_RELAY_FEE_PER_KVB: u64 = 3000;
/// Minimum relay fee used here, sat per 1000 virtual bytes (Core's historical default; conservative).
pub const MIN_RELAY_FEE_PER_KVB: u64 = 1000;

/// Why a transaction is not standard.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StandardnessError {
    /// Version outside 1..=3.
    #[error("version {0} is not standard")]
    Version(i32),
    /// Too heavy.
    #[error("weight {0} above {STANDARD_TX_WEIGHT_MAX}")]
    Weight(u64),
    /// Stripped size under 65 bytes.
    #[error("non-witness size {0} below {STANDARD_TX_NONWITNESS_SIZE_MIN}")]
    TooSmall(usize),
    /// A scriptSig that is too big or not push-only.
    #[error("input {0}: scriptSig too large or not push-only")]
    ScriptSig(usize),
    /// An output script that is not a standard template.
    #[error("output {0}: non-standard scriptPubKey")]
    OutputType(usize),
    /// An output below Core's dust threshold.
    #[error("output {index}: {value} sat below dust threshold {threshold} sat")]
    Dust {
        /// Output index.
        index: usize,
        /// Its value.
        value: u64,
        /// The threshold.
        threshold: u64,
    },
    /// A witness violating P2WSH or tapscript policy limits (sizes, counts, MINIMALIF, annex).
    #[error("input {index}: witness not standard: {reason}")]
    Witness {
        /// Input index.
        index: usize,
        /// Which rule.
        reason: &'static str,
    },
    /// Prevouts do not match the inputs.
    #[error("{0} prevouts for {1} inputs")]
    Prevouts(usize, usize),
    /// Fee below the relay minimum or negative.
    #[error("fee {fee:?} sat below minimum relay fee {min} sat")]
    Fee {
        /// The fee (`None` if outputs exceed inputs).
        fee: Option<u64>,
        /// The minimum.
        min: u64,
    },
}

/// Core's `GetDustThreshold` at the default dust relay fee.
pub fn dust_threshold(txout: &TxOut) -> Amount {
    let size = bitcoin::consensus::encode::serialize(txout).len() as u64;
    let spend = if txout.script_pubkey.is_witness_program() {
        32 + 4 + 1 + 107 / 4 + 4
    } else {
        32 + 4 + 1 + 107 + 4
    };
    Amount::from_sat((size + spend) * DUST_RELAY_FEE_PER_KVB / 1000)
}

fn standard_output(script: &Script) -> bool {
    script.is_p2wpkh()
        || script.is_p2wsh()
        || script.is_p2tr()
        || script.is_p2pkh()
        || script.is_p2sh()
        || (script.is_op_return() && script.len() <= 83)
}

/// Checks `tx` (spending `prevouts`, in input order) against Core's standardness rules used here:
/// version, weight, minimum size, scriptSig, output templates, dust, P2WSH and tapscript witness
/// limits, MINIMALIF for the `OP_IF` selectors our scripts use, no annex, and fee ≥ 1 sat/vB.
///
/// # Errors
/// The first rule broken, as [`StandardnessError`].
pub fn check_standard(tx: &Transaction, prevouts: &[TxOut]) -> Result<(), StandardnessError> {
    if !(1..=3).contains(&tx.version.0) {
        return Err(StandardnessError::Version(tx.version.0));
    }
    let weight = tx.weight().to_wu();
    if weight > STANDARD_TX_WEIGHT_MAX {
        return Err(StandardnessError::Weight(weight));
    }
    let stripped = tx.base_size();
    if stripped < STANDARD_TX_NONWITNESS_SIZE_MIN {
        return Err(StandardnessError::TooSmall(stripped));
    }
    if prevouts.len() != tx.input.len() {
        return Err(StandardnessError::Prevouts(prevouts.len(), tx.input.len()));
    }
    for (i, input) in tx.input.iter().enumerate() {
        if input.script_sig.len() > STANDARD_SCRIPTSIG_SIZE_MAX || !input.script_sig.is_push_only()
        {
            return Err(StandardnessError::ScriptSig(i));
        }
        check_witness(i, input, &prevouts[i].script_pubkey)?;
    }
    for (i, out) in tx.output.iter().enumerate() {
        if !standard_output(&out.script_pubkey) {
            return Err(StandardnessError::OutputType(i));
        }
        let threshold = dust_threshold(out);
        if !out.script_pubkey.is_op_return() && out.value < threshold {
            return Err(StandardnessError::Dust {
                index: i,
                value: out.value.to_sat(),
                threshold: threshold.to_sat(),
            });
        }
    }
    let inputs = prevouts
        .iter()
        .try_fold(Amount::ZERO, |a, o| a.checked_add(o.value));
    let outputs = tx
        .output
        .iter()
        .try_fold(Amount::ZERO, |a, o| a.checked_add(o.value));
    let fee = inputs.zip(outputs).and_then(|(i, o)| i.checked_sub(o));
    let min = tx.vsize() as u64 * MIN_RELAY_FEE_PER_KVB / 1000;
    if fee.is_none_or(|f| f.to_sat() < min) {
        return Err(StandardnessError::Fee {
            fee: fee.map(Amount::to_sat),
            min,
        });
    }
    Ok(())
}

fn check_witness(
    index: usize,
    input: &bitcoin::TxIn,
    spk: &Script,
) -> Result<(), StandardnessError> {
    let w = &input.witness;
    let err = |reason| Err(StandardnessError::Witness { index, reason });
    if spk.is_p2wsh() {
        let Some(script) = w.last() else {
            return err("empty witness");
        };
        if script.len() > STANDARD_P2WSH_SCRIPT_SIZE_MAX {
            return err("witness script too large");
        }
        if w.len() - 1 > STANDARD_P2WSH_STACK_ITEMS_MAX {
            return err("too many stack items");
        }
        let items: Vec<&[u8]> = w.iter().take(w.len() - 1).collect();
        if items
            .iter()
            .any(|i| i.len() > STANDARD_P2WSH_STACK_ITEM_SIZE_MAX)
        {
            return err("stack item too large");
        }
        // MINIMALIF: our scripts start with OP_IF, and the selector is the item just under the script.
        let script = Script::from_bytes(script);
        if let Some(Ok(Instruction::Op(op))) = script.instructions().next()
            && op == OP_IF
            && !matches!(items.last(), Some(sel) if sel.is_empty() || *sel == [1u8])
        {
            return err("OP_IF selector not minimal");
        }
    } else if spk.is_p2tr() {
        if w.len() >= 2 && w.last().is_some_and(|l| l.first() == Some(&0x50)) {
            return err("annex present");
        }
        if w.len() >= 2 {
            // Script path: all items but the script and control block are limited.
            if w.iter()
                .take(w.len() - 2)
                .any(|i| i.len() > STANDARD_TAPSCRIPT_STACK_ITEM_SIZE_MAX)
            {
                return err("tapscript stack item too large");
            }
        } else if w.len() != 1 {
            return err("empty taproot witness");
        }
    } else if spk.is_p2wpkh() {
        if w.len() != 2 {
            return err("p2wpkh witness must have 2 items");
        }
    } else if !w.is_empty() {
        return err("witness on a non-witness input");
    }
    Ok(())
}
