//! The datadir commands: `import-blocks`, `utxo-stats`, `utxo-get`, `snapshot ...`.

use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use anyhow::{Context, anyhow};
use bitcoin::{Network, OutPoint};

use crate::chain::Chain;
use crate::commit;
use crate::datadir::{self, Paths, StoreBackend};
use crate::ingest;
use crate::report::format_btc;
use utxo_core::ChainParams;

/// Options of `import-blocks`.
pub struct ImportOptions<'a> {
    /// Input files.
    pub files: &'a [PathBuf],
    /// Stop at this height.
    pub stop_height: Option<u32>,
    /// Fold the WAL into redb once it holds this many bytes (store default when `None`).
    pub checkpoint_wal_bytes: Option<u64>,
    /// Record headers only.
    pub headers_only: bool,
}

/// `import-blocks`.
///
/// # Errors
/// Input, chain, UTXO or store errors; blocks connected before the error stay durable.
pub fn import_blocks(
    datadir: &Path,
    network: Network,
    o: &ImportOptions<'_>,
) -> anyhow::Result<()> {
    let paths = Paths::new(datadir);
    let backend = StoreBackend::open(datadir, network, o.checkpoint_wal_bytes, o.headers_only)?;
    let index = datadir::read_headers(&paths.headers, network)?;
    let tip = if o.headers_only {
        None
    } else {
        backend.store().tip().map(|t| t.hash)
    };
    // A store resumed past BIP34's block: its set did not connect that block, so it is told which
    // block its chain holds there (BIP30's lookups are skipped as in Core when it is BIP34's).
    let bip34 = ChainParams::for_network(network)
        .bip34
        .zip(tip)
        .and_then(|((height, _), tip)| crate::chain::ancestor_at(&index, tip, height));
    backend.set().set_bip34_block(bip34);
    let mut chain = Chain::new(network, backend, o.stop_height);
    chain
        .restore(index, tip)
        .context("the header index does not match the store")?;
    let pb = ingest::progress_bar("import-blocks");
    let result = ingest::ingest(&mut chain, o.files, network, &pb, |_, _| Ok(()));
    // Blocks connected before any error are valid: make them durable either way.
    let committed = chain.backend_mut().commit();
    pb.finish_and_clear();
    let sum = result?;
    committed?;
    chain.backend().check_consistent()?;
    match chain.tip() {
        Some((h, hash)) => eprintln!(
            "imported: {} blocks read, {} connected, {} disconnected ({} reorgs), {} already known; tip {h} {hash}",
            sum.read,
            sum.connected,
            sum.disconnected,
            chain.reorgs(),
            sum.duplicates
        ),
        None => eprintln!("imported: {} blocks read, no chain yet", sum.read),
    }
    Ok(())
}

/// `utxo-stats`.
///
/// # Errors
/// Store errors, an empty datadir.
pub fn utxo_stats(datadir: &Path, network: Network, json: bool) -> anyhow::Result<()> {
    let mut store = datadir::open_store(datadir, network, None)?;
    let report = datadir::stored_stats(&mut store, datadir)?;
    if json {
        println!("{}", report.to_json());
    } else {
        print!("{}", report.to_table());
    }
    Ok(())
}

/// `utxo-get TXID:VOUT`. Exit status non-zero when the output is not in the set.
///
/// # Errors
/// A malformed outpoint, store errors, or a missing coin.
pub fn utxo_get(
    datadir: &Path,
    network: Network,
    outpoint: &str,
    json: bool,
) -> anyhow::Result<()> {
    let op = OutPoint::from_str(outpoint)
        .map_err(|e| anyhow!("bad outpoint {outpoint:?} (want TXID:VOUT): {e}"))?;
    let store = datadir::open_store(datadir, network, None)?;
    let tip = store
        .tip()
        .ok_or_else(|| anyhow!("the datadir holds no blocks yet"))?;
    let coin = store
        .get_coin(&op)?
        .ok_or_else(|| anyhow!("{op} is not in the UTXO set at height {}", tip.height))?;
    let confirmations = tip.height.saturating_sub(coin.height) + 1;
    let script = hex::encode(coin.script_pubkey.as_bytes());
    if json {
        println!(
            "{{\n  \"bestblock\": \"{}\",\n  \"confirmations\": {confirmations},\n  \"value\": {},\n  \"scriptPubKey\": {{\n    \"hex\": \"{script}\"\n  }},\n  \"coinbase\": {},\n  \"height\": {}\n}}",
            tip.hash,
            format_btc(coin.amount),
            coin.is_coinbase,
            coin.height
        );
    } else {
        println!("outpoint       {op}");
        println!("value          {} BTC", format_btc(coin.amount));
        println!(
            "height         {} ({confirmations} confirmations)",
            coin.height
        );
        println!("coinbase       {}", coin.is_coinbase);
        println!("scriptPubKey   {script}");
    }
    Ok(())
}

/// Which snapshot operation.
#[derive(Debug, Clone, Copy)]
pub enum SnapshotOp {
    /// Our format, out.
    Export,
    /// Our format, in.
    Import,
    /// Core's `dumptxoutset` format, out.
    DumpCore,
    /// Core's format, in, optionally checked against Core's `hash_serialized_3` for its block.
    LoadCore(Option<bitcoin::hashes::sha256d::Hash>),
}

/// `snapshot export|import|dump-core|load-core FILE`.
///
/// # Errors
/// Store and snapshot errors (wrong network, unknown base block, corrupt file, non-empty store).
pub fn snapshot(
    datadir: &Path,
    network: Network,
    op: SnapshotOp,
    file: &Path,
) -> anyhow::Result<()> {
    let mut store = datadir::open_store(datadir, network, None)?;
    let create = || -> anyhow::Result<BufWriter<File>> {
        Ok(BufWriter::new(
            File::create(file).with_context(|| format!("creating {}", file.display()))?,
        ))
    };
    let open = || -> anyhow::Result<BufReader<File>> {
        Ok(BufReader::new(
            File::open(file).with_context(|| format!("opening {}", file.display()))?,
        ))
    };
    let index = || datadir::read_headers(&Paths::new(datadir).headers, network);
    match op {
        SnapshotOp::Export => {
            if store.tip().is_none() {
                return Err(wal_store::StoreError::Empty.into());
            }
            // The tip's root, rebuilt from the coins being exported and checked against the root
            // logged with the tip block (or the snapshot the store came from).
            let (commitment, _) = commit::load(&mut store)?;
            let root = commitment.root();
            drop(commitment);
            let mut w = create()?;
            let info = store.export_snapshot_with_root(&mut w, Some(root.0))?;
            w.flush()?;
            w.get_ref().sync_all()?;
            let h = info.header;
            eprintln!(
                "exported {} coins at height {} ({}), format version {}, commitment root {root}",
                h.coins, h.tip.height, h.tip.hash, info.version
            );
        }
        SnapshotOp::DumpCore => {
            let mut w = create()?;
            let h = store.dump_core_snapshot(&mut w)?;
            w.flush()?;
            w.get_ref().sync_all()?;
            eprintln!(
                "dumped {} coins at {} in Bitcoin Core's format",
                h.coins, h.base_hash
            );
        }
        SnapshotOp::Import => {
            let index = index()?;
            let mut check = commit::ImportCheck::default();
            let info = store
                .import_snapshot_checked(
                    open()?,
                    |tip| index.get(&tip.hash).is_some_and(|e| e.height == tip.height),
                    &mut check,
                )
                .map_err(|e| match e {
                    wal_store::StoreError::Snapshot(
                        m @ wal_store::SnapshotError::CommitmentMismatch { .. },
                    ) => anyhow!(
                        "refusing {}: {m}; nothing was imported, the datadir is as before",
                        file.display()
                    ),
                    e => anyhow::Error::from(e).context(format!("importing {}", file.display())),
                })?;
            let h = info.header;
            eprintln!(
                "imported {} coins at height {} ({})",
                h.coins, h.tip.height, h.tip.hash
            );
            match (info.commitment_root, check.rebuilt) {
                (Some(_), Some((root, n, took))) => eprintln!(
                    "commitment root {root} of the file matches its coins (rebuilt over {n} coins in {} ms)",
                    took.as_millis()
                ),
                (Some(root), None) => eprintln!(
                    "commitment root {} of the file matches its coins",
                    merkle_proofs::Root(root)
                ),
                (None, _) => eprintln!(
                    "warning: {} is snapshot format version {}, which carries no commitment root: \
                     imported without a root check (the root is rebuilt from the coins; utxo-stats shows it)",
                    file.display(),
                    info.version
                ),
            }
        }
        SnapshotOp::LoadCore(expected) => {
            let index = index()?;
            let (h, tip) = store.load_core_snapshot(
                open()?,
                |hash| index.get(hash).map(|e| e.height),
                expected,
            )?;
            eprintln!(
                "loaded {} coins at height {} ({})",
                h.coins, tip.height, tip.hash
            );
        }
    }
    store.close()?;
    Ok(())
}
