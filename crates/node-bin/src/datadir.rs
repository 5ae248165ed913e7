//! The datadir: the durable UTXO store (`chainstate/`, a `wal_store::Store`), the header index
//! (`headers.dat`), and a statistics cache (`stats.dat`) that makes MuHash O(1) for `utxo-stats`.
//!
//! Invariants:
//! - every block the store holds has its header in `headers.dat`: a header is written (to the OS,
//!   so a killed process cannot lose it) before its block is logged, and synced before the WAL's
//!   group commit acknowledges the block;
//! - `stats.dat` is a cache: it names the tip it describes and carries a checksum; it is used only
//!   when that tip is the store's tip, otherwise statistics are recomputed from the coins.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, ensure};
use bitcoin::block::Header;
use bitcoin::consensus::{deserialize, serialize};
use bitcoin::hashes::{Hash, HashEngine, sha256, sha256d};
use bitcoin::{Amount, BlockHash, Network, OutPoint};
use merkle_proofs::Commitment;
use utxo_core::muhash::MuHash3072;
use utxo_core::{
    ChainParams, ChangeSet, Coin, PreparedBlock, SetOptions, UtxoSet, UtxoStats, bogosize,
    txout_ser,
};
use wal_store::{Ack, BlockRecord, Store, StoreOptions};

use crate::chain::{Backend, Entry};
use crate::commit;
use crate::report::StatsReport;
use crate::stats_stage::StatsStage;

/// Size of one stored header.
const HEADER_LEN: usize = 80;

/// Group commit: sync once this many blocks are pending...
pub const GROUP_COMMIT_BLOCKS_MAX: usize = 64;
/// ... or once the oldest pending block waited this long.
pub const GROUP_COMMIT_WAIT_MAX: Duration = Duration::from_millis(50);

/// Paths inside a datadir.
#[derive(Debug, Clone)]
pub struct Paths {
    /// The store's folder.
    pub chainstate: PathBuf,
    /// The header index.
    pub headers: PathBuf,
    /// The statistics cache.
    pub stats: PathBuf,
}

impl Paths {
    /// The paths inside `datadir`.
    pub fn new(datadir: &Path) -> Self {
        Self {
            chainstate: datadir.join("chainstate"),
            headers: datadir.join("headers.dat"),
            stats: datadir.join("stats.dat"),
        }
    }
}

/// Opens the store of `datadir` (creating it), recovering from any crash.
///
/// # Errors
/// Store errors (wrong network, corrupt WAL, newer format).
pub fn open_store(
    datadir: &Path,
    network: Network,
    checkpoint_wal_bytes: Option<u64>,
) -> anyhow::Result<Store> {
    let paths = Paths::new(datadir);
    std::fs::create_dir_all(&paths.chainstate)
        .with_context(|| format!("creating {}", paths.chainstate.display()))?;
    // MuHash is kept by the node's statistics stage and `stats.dat`, not a second time by the
    // store on the applying thread (a snapshot export then computes it in a pass of its own).
    let mut options = StoreOptions::new(network)
        .group_commit(usize::MAX, usize::MAX)
        .track_muhash(false);
    if let Some(b) = checkpoint_wal_bytes {
        options = options.checkpoint_wal_bytes(b);
    }
    let (store, report) = Store::open(&paths.chainstate, options)
        .with_context(|| format!("opening {}", paths.chainstate.display()))?;
    if let Some(t) = &report.discarded_tail {
        tracing::warn!(?t, "discarded a torn WAL tail (never acknowledged)");
    }
    tracing::info!(replayed = report.replayed_records, tip = ?report.tip, "store opened");
    Ok(store)
}

/// Reads the header index: entries with heights and cumulative work from parent links. A torn last
/// header (a partial record) is cut off.
///
/// # Errors
/// I/O errors, or a header whose parent is not before it.
pub fn read_headers(path: &Path, network: Network) -> anyhow::Result<HashMap<BlockHash, Entry>> {
    let mut bytes = Vec::new();
    match File::open(path) {
        Ok(mut f) => {
            f.read_to_end(&mut bytes)
                .with_context(|| format!("reading {}", path.display()))?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(HashMap::new()),
        Err(e) => return Err(e).with_context(|| format!("opening {}", path.display())),
    }
    let whole = bytes.len() - bytes.len() % HEADER_LEN;
    if whole != bytes.len() {
        tracing::warn!(path = %path.display(), "cutting a torn header record");
        OpenOptions::new()
            .write(true)
            .open(path)?
            .set_len(whole as u64)?;
    }
    let genesis = bitcoin::constants::genesis_block(network).block_hash();
    let mut index: HashMap<BlockHash, Entry> = HashMap::new();
    for (i, chunk) in bytes[..whole].chunks_exact(HEADER_LEN).enumerate() {
        let header: Header =
            deserialize(chunk).with_context(|| format!("{}: header {i}", path.display()))?;
        let hash = header.block_hash();
        let prev = header.prev_blockhash;
        let entry = if hash == genesis {
            Entry {
                prev,
                height: 0,
                work: header.work(),
            }
        } else {
            let p = index.get(&prev).ok_or_else(|| {
                anyhow!(
                    "{}: header {i} ({hash}) comes before its parent {prev}",
                    path.display()
                )
            })?;
            Entry {
                prev,
                height: p.height + 1,
                work: p.work + header.work(),
            }
        };
        index.insert(hash, entry);
    }
    Ok(index)
}

/// Threads the in-memory set may use to apply one large block (results are identical to 1). One:
/// measured on an idle 2-core machine, a second thread made the apply slower (0.93× mainnet mix,
/// 0.69× 2-in/2-out; see `utxo_core::SetOptions::threads`).
pub const SET_THREADS: usize = 1;

/// Loads every stored coin into a fresh in-memory set standing on the store's tip. The set keeps
/// no MuHash accumulator: a [`StatsStage`] does, off the applying thread.
///
/// # Errors
/// Store errors.
pub fn load_set(store: &mut Store, network: Network) -> anyhow::Result<UtxoSet> {
    let set = UtxoSet::with_options(SetOptions {
        params: ChainParams::for_network(network),
        threads: SET_THREADS,
        track_muhash: false,
        ..SetOptions::default()
    });
    for item in store.coin_iter()? {
        let (op, coin) = item?;
        set.insert(op, coin);
    }
    set.set_best_block(store.tip().map(|t| (t.hash, t.height)));
    Ok(set)
}

/// Something made durable that `import-blocks` reports on stdout.
#[derive(Debug, Clone, Copy)]
enum Event {
    Connected(u32, BlockHash),
    Disconnected(u32, BlockHash),
}

/// The durable backend of `import-blocks`: the in-memory set applies blocks, the store logs them.
pub struct StoreBackend {
    paths: Paths,
    store: Store,
    set: UtxoSet,
    /// The commitment to `set`, rebuilt at open and updated per block.
    commitment: Commitment,
    /// The statistics (MuHash) of `set` on a thread of their own; `None` with `headers_only`.
    stage: Option<StatsStage>,
    headers: File,
    /// Only record headers, connect nothing (`--headers-only`).
    headers_only: bool,
    pending: Vec<(Ack, Event)>,
    oldest_pending: Option<Instant>,
}

impl StoreBackend {
    /// Opens the datadir for importing.
    ///
    /// # Errors
    /// Store or I/O errors.
    pub fn open(
        datadir: &Path,
        network: Network,
        checkpoint_wal_bytes: Option<u64>,
        headers_only: bool,
    ) -> anyhow::Result<Self> {
        let paths = Paths::new(datadir);
        let mut store = open_store(datadir, network, checkpoint_wal_bytes)?;
        let (set, commitment, stage) = if headers_only {
            (UtxoSet::new(), Commitment::new(), None)
        } else {
            let set = load_set(&mut store, network)?;
            let sorted = set.sorted_coins();
            let (commitment, _) = commit::rebuild(sorted.iter().map(|(o, c)| (o, c)))?;
            commit::check_logged(&store, &commitment.root())?;
            let stage = match cached_stats_of(&paths.stats, &store, &set) {
                Some(stats) => StatsStage::start(stats)?,
                None => {
                    // MuHash over every coin, in the background while blocks are imported.
                    let stage = StatsStage::start(UtxoStats::new(true))?;
                    stage.changed(ChangeSet {
                        created: sorted,
                        spent: Vec::new(),
                    })?;
                    stage
                }
            };
            (set, commitment, Some(stage))
        };
        let headers = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&paths.headers)
            .with_context(|| format!("opening {}", paths.headers.display()))?;
        Ok(Self {
            paths,
            store,
            set,
            commitment,
            stage,
            headers,
            headers_only,
            pending: Vec::new(),
            oldest_pending: None,
        })
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The in-memory set standing on the store's tip.
    pub fn set(&self) -> &UtxoSet {
        &self.set
    }

    /// Syncs headers, then group-commits the WAL, then reports what became durable (one stdout line
    /// each: `durable <height> <hash>` or `disconnected <height> <hash>`) and refreshes `stats.dat`.
    ///
    /// # Errors
    /// I/O or store errors.
    pub fn commit(&mut self) -> anyhow::Result<()> {
        self.headers.sync_data().context("syncing headers.dat")?;
        if self.pending.is_empty() {
            return Ok(());
        }
        self.store.commit_pending()?;
        let mut out = std::io::stdout().lock();
        for (ack, ev) in self.pending.drain(..) {
            ensure!(
                self.store.is_durable(ack),
                "store did not acknowledge record {}",
                ack.seq
            );
            match ev {
                Event::Connected(h, hash) => writeln!(out, "durable {h} {hash}")?,
                Event::Disconnected(h, hash) => writeln!(out, "disconnected {h} {hash}")?,
            }
        }
        out.flush()?;
        self.oldest_pending = None;
        if let (Some(tip), Some(stage)) = (self.store.tip(), &self.stage) {
            // Written by the stage once it has caught up with this tip; the apply goes on.
            let path = self.paths.stats.clone();
            stage.then(move |stats| write_tip_stats(&path, tip.height, tip.hash, stats))?;
        }
        Ok(())
    }

    fn maybe_commit(&mut self) -> anyhow::Result<()> {
        let due = self.pending.len() >= GROUP_COMMIT_BLOCKS_MAX
            || self
                .oldest_pending
                .is_some_and(|t| t.elapsed() >= GROUP_COMMIT_WAIT_MAX);
        if due { self.commit() } else { Ok(()) }
    }

    fn push(&mut self, ack: Ack, ev: Event) {
        self.pending.push((ack, ev));
        self.oldest_pending.get_or_insert_with(Instant::now);
    }

    /// Checks the in-memory set against the store (tip and coin count).
    ///
    /// # Errors
    /// A mismatch.
    pub fn check_consistent(&self) -> anyhow::Result<()> {
        let tip = self.store.tip().map(|t| (t.hash, t.height));
        ensure!(
            self.headers_only || self.set.best_block() == tip,
            "set and store disagree on the tip"
        );
        Ok(())
    }
}

impl Backend for StoreBackend {
    fn indexed(&mut self, header: &Header) -> anyhow::Result<()> {
        // One write straight to the OS: a killed process cannot lose it.
        self.headers
            .write_all(&serialize(header))
            .context("writing headers.dat")?;
        Ok(())
    }

    fn connect(&mut self, prepared: &PreparedBlock, height: u32) -> anyhow::Result<()> {
        if self.headers_only {
            return Ok(());
        }
        let connected = self.set.connect_prepared(prepared, height)?;
        let block = prepared.block();
        let hash = block.block_hash();
        self.commitment
            .apply_change_set(&connected.changes)
            .with_context(|| format!("updating the commitment with block {hash}"))?;
        let ack = self.store.append_block(&BlockRecord {
            height,
            hash,
            prev_hash: block.header.prev_blockhash,
            changes: &connected.changes,
            undo: &connected.undo,
            commitment_root: Some(self.commitment.root().0),
        })?;
        if let Some(stage) = &self.stage {
            stage.changed(connected.changes)?;
        }
        self.push(ack, Event::Connected(height, hash));
        self.maybe_commit()
    }

    fn disconnect(
        &mut self,
        hash: BlockHash,
        height: u32,
        _block: Option<&PreparedBlock>,
    ) -> anyhow::Result<()> {
        if self.headers_only {
            return Ok(());
        }
        let tip = self.store.tip();
        ensure!(
            tip.is_some_and(|t| t.hash == hash && t.height == height),
            "store tip {tip:?} is not block {hash} at height {height}"
        );
        let (ack, stored) = self.store.disconnect_tip()?;
        self.commitment
            .revert_change_set(&stored.changes)
            .with_context(|| format!("reverting the commitment for block {hash}"))?;
        for (op, _) in &stored.changes.created {
            self.set.remove(op);
        }
        for (op, coin) in &stored.changes.spent {
            self.set.insert(*op, coin.clone());
        }
        if let Some(stage) = &self.stage {
            stage.changed(stored.changes.inverse())?;
        }
        self.set
            .set_best_block(height.checked_sub(1).map(|h| (stored.prev_hash, h)));
        // As `UtxoSet::disconnect_block` does: the chain no longer holds a block at BIP34's height.
        if ChainParams::for_network(self.store.network())
            .bip34
            .is_some_and(|(h, _)| h == height)
        {
            self.set.set_bip34_block(None);
        }
        self.push(ack, Event::Disconnected(height, hash));
        self.maybe_commit()
    }
}

/// The statistics cache's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedStats {
    /// Tip height it describes.
    pub height: u32,
    /// Tip hash it describes.
    pub hash: BlockHash,
    /// Coin count.
    pub txouts: u64,
    /// Core's bogosize.
    pub bogosize: u64,
    /// Total amount.
    pub total: Amount,
    /// MuHash3072 state (numerator and denominator).
    pub muhash: [u8; 768],
}

const STATS_VERSION: u8 = 1;
const STATS_LEN: usize = 1 + 4 + 32 + 8 + 8 + 8 + 768 + 32;

fn write_stats_cache(path: &Path, s: &CachedStats) -> anyhow::Result<()> {
    let mut b = Vec::with_capacity(STATS_LEN);
    b.push(STATS_VERSION);
    b.extend_from_slice(&s.height.to_le_bytes());
    b.extend_from_slice(&s.hash.to_byte_array());
    b.extend_from_slice(&s.txouts.to_le_bytes());
    b.extend_from_slice(&s.bogosize.to_le_bytes());
    b.extend_from_slice(&s.total.to_sat().to_le_bytes());
    b.extend_from_slice(&s.muhash);
    let sum = sha256::Hash::hash(&b);
    b.extend_from_slice(sum.as_byte_array());
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, &b).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming {}", tmp.display()))?;
    Ok(())
}

/// The cache as the statistics of `set` when it describes the store's tip and agrees with the
/// set's coin count, bogosize and total (which the set keeps without MuHash).
fn cached_stats_of(path: &Path, store: &Store, set: &UtxoSet) -> Option<UtxoStats> {
    let tip = store.tip()?;
    let cached = read_stats_cache(path).filter(|c| c.height == tip.height && c.hash == tip.hash)?;
    let own = set.stats();
    let agrees = cached.txouts == own.txouts
        && cached.bogosize == own.bogosize
        && cached.total == own.total_amount;
    agrees.then(|| UtxoStats {
        muhash: Some(MuHash3072::from_bytes(&cached.muhash)),
        ..own
    })
}

/// Writes `stats` as the cache for the tip `height`/`hash`; a failure only costs a recomputation
/// later, so it is logged, not raised (this runs on the statistics thread).
fn write_tip_stats(path: &Path, height: u32, hash: BlockHash, stats: &UtxoStats) {
    let Some(mu) = &stats.muhash else { return };
    let cache = CachedStats {
        height,
        hash,
        txouts: stats.txouts,
        bogosize: stats.bogosize,
        total: stats.total_amount,
        muhash: mu.to_bytes(),
    };
    if let Err(e) = write_stats_cache(path, &cache) {
        tracing::warn!("could not write the statistics cache: {e:#}");
    }
}

/// Reads the statistics cache; `None` if missing, torn or of another version.
pub fn read_stats_cache(path: &Path) -> Option<CachedStats> {
    let b = std::fs::read(path).ok()?;
    if b.len() != STATS_LEN || b[0] != STATS_VERSION {
        return None;
    }
    let (body, sum) = b.split_at(STATS_LEN - 32);
    if sha256::Hash::hash(body).as_byte_array()[..] != sum[..] {
        return None;
    }
    let u64_at = |i: usize| {
        b.get(i..i + 8)
            .and_then(|s| s.try_into().ok())
            .map(u64::from_le_bytes)
    };
    let mut muhash = [0u8; 768];
    muhash.copy_from_slice(&b[61..61 + 768]);
    Some(CachedStats {
        height: u32::from_le_bytes(b.get(1..5)?.try_into().ok()?),
        hash: BlockHash::from_byte_array(b.get(5..37)?.try_into().ok()?),
        txouts: u64_at(37)?,
        bogosize: u64_at(45)?,
        total: Amount::from_sat(u64_at(53)?),
        muhash,
    })
}

/// The statistics of the stored tip: one streaming pass over the coins for `hash_serialized_3`
/// (Core computes it on demand too), MuHash from the cache when it describes this tip (O(1)),
/// otherwise computed in the same pass.
///
/// # Errors
/// An empty store, store errors, or a cache that disagrees with the coins.
pub fn stored_stats(store: &mut Store, datadir: &Path) -> anyhow::Result<StatsReport> {
    let tip = store
        .tip()
        .ok_or_else(|| anyhow!("the datadir holds no blocks yet"))?;
    let cached = read_stats_cache(&Paths::new(datadir).stats)
        .filter(|c| c.height == tip.height && c.hash == tip.hash);
    let mut mu = cached.is_none().then(MuHash3072::new);
    let mut engine = sha256d::Hash::engine();
    let (mut txouts, mut bogo, mut total) = (0u64, 0u64, Amount::ZERO);
    let mut buf = Vec::with_capacity(128);
    let mut coins: Vec<(OutPoint, Coin)> = Vec::new();
    store.for_each_coin(|op, coin: Coin| {
        buf.clear();
        txout_ser(&op, &coin, &mut buf);
        engine.input(&buf);
        if let Some(m) = mu.as_mut() {
            m.insert(&buf);
        }
        txouts += 1;
        bogo += bogosize(&coin);
        total = total.checked_add(coin.amount).unwrap_or(Amount::MAX);
        coins.push((op, coin));
        Ok(())
    })?;
    let (commitment, _) = commit::rebuild(coins.iter().map(|(o, c)| (o, c)))?;
    drop(coins);
    commit::check_logged(store, &commitment.root())?;
    let muhash = match (&cached, mu) {
        (Some(c), _) => {
            ensure!(
                c.txouts == txouts && c.bogosize == bogo && c.total == total,
                "stats.dat disagrees with the stored coins (delete it to recompute)"
            );
            MuHash3072::from_bytes(&c.muhash)
        }
        (None, Some(m)) => {
            // Remember it: the next call for this tip is O(1) for MuHash.
            let cache = CachedStats {
                height: tip.height,
                hash: tip.hash,
                txouts,
                bogosize: bogo,
                total,
                muhash: m.to_bytes(),
            };
            if let Err(e) = write_stats_cache(&Paths::new(datadir).stats, &cache) {
                tracing::warn!("could not write the statistics cache: {e:#}");
            }
            m
        }
        (None, None) => MuHash3072::new(),
    };
    let mut digest = muhash.finalize();
    digest.reverse();
    Ok(StatsReport {
        height: tip.height,
        bestblock: tip.hash,
        txouts,
        bogosize: bogo,
        total_amount: total,
        muhash: hex::encode(digest),
        hash_serialized_3: sha256d::Hash::from_engine(engine).to_string(),
        commitment_root: commitment.root().to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_cache_roundtrip_and_damage() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("stats.dat");
        let s = CachedStats {
            height: 7,
            hash: BlockHash::from_byte_array([3; 32]),
            txouts: 9,
            bogosize: 600,
            total: Amount::from_sat(123),
            muhash: MuHash3072::new().to_bytes(),
        };
        write_stats_cache(&p, &s).unwrap();
        assert_eq!(read_stats_cache(&p), Some(s));
        let mut b = std::fs::read(&p).unwrap();
        b[20] ^= 1;
        std::fs::write(&p, &b).unwrap();
        assert_eq!(read_stats_cache(&p), None);
        std::fs::write(&p, &b[..100]).unwrap();
        assert_eq!(read_stats_cache(&p), None);
    }

    #[test]
    fn header_index_cuts_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("headers.dat");
        let g = bitcoin::constants::genesis_block(Network::Regtest);
        let chain = crate::testutil::mine_chain(&g, 0, 3, 1);
        let mut bytes = serialize(&g.header);
        for b in &chain {
            bytes.extend_from_slice(&serialize(&b.header));
        }
        bytes.extend_from_slice(&[1, 2, 3]);
        std::fs::write(&p, &bytes).unwrap();
        let index = read_headers(&p, Network::Regtest).unwrap();
        assert_eq!(index.len(), 4);
        assert_eq!(index[&chain[2].block_hash()].height, 3);
        assert_eq!(std::fs::metadata(&p).unwrap().len(), 4 * 80);
        // A header whose parent is missing is an error, not silently dropped.
        std::fs::write(&p, serialize(&chain[1].header)).unwrap();
        assert!(read_headers(&p, Network::Regtest).is_err());
    }
}
