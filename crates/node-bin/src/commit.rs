//! The UTXO commitment (`merkle-proofs`) of the stored set: rebuilt from the stored coins at open,
//! checked against the root the tip's WAL record carries, and the `prove` / `verify-proof` commands.
//!
//! Persistence strategy: the commitment is derived data, never written to disk. Every command that
//! needs it rebuilds it from the stored coins with `Commitment::from_sorted_coins` (deterministic: the
//! root depends only on the set), then compares it with the `commitment_root` that `import-blocks`
//! logged with the tip block, when the store still has that record (or, for a tip loaded from a
//! snapshot of our format version 2, the root that snapshot carried). `import-blocks` keeps it
//! updated per block from each block's change set and logs the new root with the block;
//! `snapshot import` rebuilds it from the imported coins ([`ImportCheck`]) and refuses a file whose
//! root differs.

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::str::FromStr;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use bitcoin::hashes::Hash;
use bitcoin::{Network, OutPoint, Txid};
use merkle_proofs::{Builder, Claim, Commitment, Proof, Root};
use utxo_core::Coin;
use wal_store::Store;

use crate::datadir;

/// Builds the commitment over `coins` (any order) and measures how long that took.
///
/// # Errors
/// A coin given twice (a corrupt store).
pub fn rebuild<'a>(
    coins: impl IntoIterator<Item = (&'a OutPoint, &'a Coin)>,
) -> anyhow::Result<(Commitment, Duration)> {
    let start = Instant::now();
    let c = Commitment::from_sorted_coins(coins).context("rebuilding the UTXO commitment")?;
    let took = start.elapsed();
    tracing::info!(coins = c.len(), ?took, root = %c.root(), "commitment rebuilt");
    Ok((c, took))
}

/// Builds the commitment from a [`Builder`] fed with a store's or a snapshot's coins, and measures
/// how long the sort and build took.
///
/// # Errors
/// A coin given twice (a corrupt store or file).
fn finish(builder: Builder) -> anyhow::Result<(Commitment, Duration)> {
    let start = Instant::now();
    let c = builder.finish().context("rebuilding the UTXO commitment")?;
    let took = start.elapsed();
    tracing::info!(coins = c.len(), ?took, root = %c.root(), "commitment rebuilt");
    Ok((c, took))
}

/// Compares `root` with the root recorded for the store's tip: the one logged with the tip block,
/// when that record is still kept and carries one, else the one of the snapshot (our format
/// version 2) the store was loaded from, when the tip is still that snapshot's block. Blocks
/// imported before roots were logged, and tips from a version-1 or Core snapshot, have none.
///
/// # Errors
/// A mismatch (the stored coins are not the set the tip's record committed to), store errors.
pub fn check_logged(store: &Store, root: &Root) -> anyhow::Result<()> {
    let Some(tip) = store.tip() else {
        return Ok(());
    };
    let logged = store
        .undo_for(tip.height)?
        .filter(|b| b.hash == tip.hash)
        .and_then(|b| b.commitment_root);
    if let Some(logged) = logged
        && logged != root.0
    {
        bail!(
            "the stored coins commit to root {root}, but block {} at height {} was logged with root {}",
            tip.hash,
            tip.height,
            Root(logged)
        );
    }
    if logged.is_none()
        && let Some((at, imported)) = store.snapshot_root()?
        && at == tip
        && imported != root.0
    {
        bail!(
            "the stored coins commit to root {root}, but the snapshot loaded at block {} (height {}) carried root {}",
            tip.hash,
            tip.height,
            Root(imported)
        );
    }
    Ok(())
}

/// The commitment check of `snapshot import`: keeps each coin's 40-byte entry as the import streams
/// them (a [`Builder`], not the coins), then builds the commitment (the same tree as at open) so
/// wal-store can compare its root with the file's before the import's last transaction commits.
#[derive(Default)]
pub struct ImportCheck {
    /// The imported coins' entries (40 bytes each), not the coins.
    builder: Builder,
    /// The rebuilt root and how long the rebuild took, once `root` was called.
    pub rebuilt: Option<(Root, usize, Duration)>,
}

impl wal_store::snapshot::CommitmentCheck for ImportCheck {
    fn add_coin(&mut self, outpoint: &OutPoint, coin: &Coin) {
        self.builder.push(outpoint, coin);
    }

    fn root(&mut self) -> Result<[u8; 32], String> {
        let builder = std::mem::take(&mut self.builder);
        let (c, took) = finish(builder).map_err(|e| format!("{e:#}"))?;
        let root = c.root();
        self.rebuilt = Some((root, c.len(), took));
        Ok(root.0)
    }
}

/// Reads every stored coin, rebuilds the commitment and checks it against the logged root.
///
/// # Errors
/// Store errors, an empty datadir, a root mismatch.
pub fn load(store: &mut Store) -> anyhow::Result<(Commitment, Duration)> {
    let mut builder = Builder::new();
    let start = Instant::now();
    store.for_each_coin(|op, coin| {
        builder.push(&op, &coin);
        Ok(())
    })?;
    let (c, _) = finish(builder)?;
    let took = start.elapsed();
    check_logged(store, &c.root())?;
    Ok((c, took))
}

/// Options of `prove`.
pub struct ProveOptions<'a> {
    /// `TXID:VOUT`.
    pub outpoint: &'a str,
    /// Write the JSON form instead of the binary encoding.
    pub json: bool,
    /// Write here instead of stdout.
    pub out: Option<&'a Path>,
}

/// `prove TXID:VOUT`: an inclusion proof when the coin is in the stored set, else an exclusion
/// proof, against the stored tip's root. A summary goes to stderr.
///
/// # Errors
/// A malformed outpoint, store errors, an empty datadir, binary output to a terminal, a proof the
/// commitment cannot give (an exclusion whose key prefix collides with a stored coin).
pub fn prove(datadir: &Path, network: Network, o: &ProveOptions<'_>) -> anyhow::Result<()> {
    let op = OutPoint::from_str(o.outpoint)
        .map_err(|e| anyhow!("bad outpoint {:?} (want TXID:VOUT): {e}", o.outpoint))?;
    if o.out.is_none() && !o.json && std::io::stdout().is_terminal() {
        bail!("the binary proof is not for a terminal: use --out FILE, --json or a redirection");
    }
    let mut store = datadir::open_store(datadir, network, None)?;
    let tip = store
        .tip()
        .ok_or_else(|| anyhow!("the datadir holds no blocks yet"))?;
    let (commitment, took) = load(&mut store)?;
    let coin = store.get_coin(&op)?;
    let proof = commitment
        .prove(&op, coin.as_ref())
        .with_context(|| format!("proving {op}"))?;
    let bytes = if o.json {
        let mut j = proof.to_json().into_bytes();
        j.push(b'\n');
        j
    } else {
        proof.encode()
    };
    match o.out {
        Some(path) => {
            std::fs::write(path, &bytes).with_context(|| format!("writing {}", path.display()))?
        }
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(&bytes)?;
            out.flush()?;
        }
    }
    eprintln!(
        "{} proof for {op} at height {} ({}): root {}, {} bytes; commitment of {} coins rebuilt in {} ms",
        if coin.is_some() {
            "inclusion"
        } else {
            "exclusion"
        },
        tip.height,
        tip.hash,
        commitment.root(),
        bytes.len(),
        commitment.len(),
        took.as_millis()
    );
    store.close()?;
    Ok(())
}

/// Reads a proof file: the JSON form if its first non-blank byte is `{` (the binary encoding starts
/// with its version byte, 1), else the binary encoding.
///
/// # Errors
/// I/O errors, a proof that does not decode (with the reason).
pub fn read_proof(file: &Path) -> anyhow::Result<Proof> {
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{') {
        let text = std::str::from_utf8(&bytes)
            .map_err(|e| anyhow!("{}: JSON proof is not UTF-8: {e}", file.display()))?;
        Proof::from_json(text)
            .with_context(|| format!("{}: not a valid JSON proof", file.display()))
    } else {
        Proof::decode(&bytes)
            .map_err(|e| anyhow!("{}: not a valid binary proof: {e}", file.display()))
    }
}

fn describe(claim: &Claim) -> String {
    let op = claim.outpoint();
    let outpoint = OutPoint {
        txid: Txid::from_byte_array(op.txid),
        vout: op.vout,
    };
    match claim {
        Claim::Present { coin, .. } => format!(
            "{outpoint} is in the set: {} sat, height {}, coinbase {}, script {}",
            coin.amount,
            coin.height,
            coin.is_coinbase,
            hex::encode(&coin.script)
        ),
        Claim::Absent { .. } => format!("{outpoint} is not in the set"),
    }
}

/// `verify-proof FILE --root HEX`: succeeds iff the proof is valid for `root`, printing its claims.
///
/// # Errors
/// A malformed root or proof, or a proof that does not hold for `root`, with the reason.
pub fn verify_proof(file: &Path, root: &str) -> anyhow::Result<()> {
    let root = Root::from_hex(root.trim())
        .map_err(|e| anyhow!("bad --root {root:?} (want 64 hex digits): {e}"))?;
    let proof = read_proof(file)?;
    merkle_proofs::verify(&root, &proof)
        .map_err(|e| anyhow!("the proof is NOT valid for root {root}: {e}"))?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "valid for root {root}")?;
    for c in &proof.claims {
        writeln!(out, "{}", describe(c))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use merkle_proofs::LeafCoin;

    #[test]
    fn read_proof_detects_json_and_binary() {
        let op = OutPoint {
            txid: Txid::from_byte_array([5; 32]),
            vout: 3,
        };
        let coin = LeafCoin {
            amount: 1_000,
            height: 9,
            is_coinbase: false,
            script: vec![0x51],
        };
        let mut c = Commitment::new();
        c.apply_changes([(&op, &coin)], std::iter::empty::<(&OutPoint, &LeafCoin)>())
            .unwrap();
        let proof = c.prove(&op, Some(&coin)).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("p.bin");
        std::fs::write(&bin, proof.encode()).unwrap();
        assert_eq!(read_proof(&bin).unwrap(), proof);
        let json = dir.path().join("p.json");
        std::fs::write(&json, format!("\n  {}\n", proof.to_json())).unwrap();
        assert_eq!(read_proof(&json).unwrap(), proof);
        verify_proof(&json, &c.root().to_string()).unwrap();
        let err = verify_proof(&json, &Root::empty().to_string()).unwrap_err();
        assert!(err.to_string().contains("NOT valid"), "{err}");
        assert!(describe(&proof.claims[0]).contains("1000 sat, height 9"));
    }

    /// A store holding one block of `n` coins, and the commitment root of that set.
    fn one_block_store(dir: &Path, n: u32) -> (Store, Root) {
        use bitcoin::{Amount, BlockHash, ScriptBuf};
        use utxo_core::{BlockUndo, ChangeSet};
        let (mut store, _) =
            Store::open(dir, wal_store::StoreOptions::new(Network::Regtest)).unwrap();
        let created: Vec<(OutPoint, Coin)> = (0..n)
            .map(|i| {
                let op = OutPoint {
                    txid: Txid::from_byte_array([7; 32]),
                    vout: i,
                };
                let coin = Coin {
                    amount: Amount::from_sat(1_000 + u64::from(i)),
                    height: 0,
                    is_coinbase: true,
                    script_pubkey: ScriptBuf::from_bytes(vec![0x51]),
                };
                (op, coin)
            })
            .collect();
        let root = rebuild(created.iter().map(|(o, c)| (o, c)))
            .unwrap()
            .0
            .root();
        let changes = ChangeSet {
            created,
            spent: Vec::new(),
        };
        let _ = store
            .append_block(&wal_store::BlockRecord {
                height: 0,
                hash: BlockHash::from_byte_array([1; 32]),
                prev_hash: BlockHash::all_zeros(),
                changes: &changes,
                undo: &BlockUndo::default(),
                commitment_root: Some(root.0),
            })
            .unwrap();
        store.commit_pending().unwrap();
        (store, root)
    }

    #[test]
    fn snapshot_root_is_checked_at_import_and_kept_for_later_opens() {
        let dir = tempfile::tempdir().unwrap();
        let (mut src, root) = one_block_store(dir.path(), 5);
        let (c, _) = load(&mut src).unwrap();
        assert_eq!(c.root(), root);
        let mut good = Vec::new();
        src.export_snapshot_with_root(&mut good, Some(root.0))
            .unwrap();
        let mut wrong = Vec::new();
        src.export_snapshot_with_root(&mut wrong, Some([0xee; 32]))
            .unwrap();

        // The checked import refuses the wrong root and stores nothing.
        let d2 = tempfile::tempdir().unwrap();
        let (mut store, _) =
            Store::open(d2.path(), wal_store::StoreOptions::new(Network::Regtest)).unwrap();
        let mut check = ImportCheck::default();
        let err = store
            .import_snapshot_checked(&wrong[..], |_| true, &mut check)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&"ee".repeat(32)) && err.contains(&root.to_string()),
            "{err}"
        );
        assert_eq!(store.tip(), None);
        assert_eq!(check.rebuilt.map(|r| (r.0, r.1)), Some((root, 5)));

        // Imported without the check (wal-store's unchecked path), the wrong root is kept and
        // every later rebuild is checked against it while the tip is the snapshot's block.
        store.import_snapshot(&wrong[..], |_| true).unwrap();
        let err = load(&mut store).unwrap_err().to_string();
        assert!(err.contains("snapshot loaded at block"), "{err}");
        drop(store);

        // The genuine file imports checked, and later opens agree with its root.
        let d3 = tempfile::tempdir().unwrap();
        let (mut store, _) =
            Store::open(d3.path(), wal_store::StoreOptions::new(Network::Regtest)).unwrap();
        let info = store
            .import_snapshot_checked(&good[..], |_| true, &mut ImportCheck::default())
            .unwrap();
        assert_eq!(info.commitment_root, Some(root.0));
        assert_eq!(load(&mut store).unwrap().0.root(), root);
    }
}
