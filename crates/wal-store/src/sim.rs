//! A simulated, fault-injecting disk for crash tests: it implements [`StoreIo`] for the WAL files
//! and redb's [`redb::StorageBackend`] for the database, tracks *live* versus *durable* bytes,
//! counts sync points, and can crash at the N-th sync (that sync and everything after it fail),
//! fail writes with `StorageFull` after a byte budget, and produce the image a reboot would see:
//! only synced bytes and synced directory entries survive, optionally with a torn (random-length,
//! seeded) prefix of each file's unsynced tail.
//!
//! It is public so that crates above (and their tests) can drive the store on it too.

use std::collections::BTreeMap;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::fs::{StoreIo, WalFile};

#[derive(Debug, Clone, Default)]
struct Inode {
    data: Vec<u8>,
    synced_len: usize,
}

#[derive(Debug, Default)]
struct State {
    inodes: Vec<Inode>,
    live_dir: BTreeMap<String, usize>,
    durable_dir: BTreeMap<String, usize>,
    redb_live: Vec<u8>,
    redb_durable: Vec<u8>,
    syncs: u64,
    crash_at: Option<u64>,
    crashed: bool,
    write_budget: Option<u64>,
}

impl State {
    /// Counts a sync point; `Err` if this is the one to crash at (or the disk already crashed).
    fn sync_point(&mut self) -> io::Result<()> {
        self.alive()?;
        self.syncs += 1;
        if self.crash_at == Some(self.syncs) {
            self.crashed = true;
            return Err(io::Error::other("simulated crash at sync point"));
        }
        Ok(())
    }
    fn alive(&self) -> io::Result<()> {
        if self.crashed {
            return Err(io::Error::other("simulated disk has crashed"));
        }
        Ok(())
    }
    /// Takes `n` bytes from the write budget; returns how many may be written.
    fn budget(&mut self, n: usize) -> usize {
        match &mut self.write_budget {
            None => n,
            Some(left) => {
                let take = usize::try_from((*left).min(n as u64)).unwrap_or(n);
                *left -= take as u64;
                take
            }
        }
    }
}

/// The simulated disk. Cheap to clone (shared state).
#[derive(Debug, Clone, Default)]
pub struct SimDisk {
    state: Arc<Mutex<State>>,
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn storage_full() -> io::Error {
    io::Error::new(io::ErrorKind::StorageFull, "simulated full disk")
}

impl SimDisk {
    /// An empty disk.
    pub fn new() -> SimDisk {
        SimDisk::default()
    }

    /// Sync points (WAL file syncs, directory syncs, redb syncs) reached so far.
    pub fn sync_points(&self) -> u64 {
        lock(&self.state).syncs
    }

    /// Crash at the `n`-th sync point counted from now (1 = the next one): it and every later
    /// operation that writes fail.
    pub fn crash_at_sync(&self, n: u64) {
        let mut s = lock(&self.state);
        s.crash_at = Some(s.syncs + n);
    }

    /// Whether the simulated crash has happened.
    pub fn crashed(&self) -> bool {
        lock(&self.state).crashed
    }

    /// After `bytes` more bytes, writes fail with `StorageFull` (a full disk); `None` lifts it.
    pub fn fail_writes_after(&self, bytes: Option<u64>) {
        lock(&self.state).write_budget = bytes;
    }

    /// What a reboot would find: only durable directory entries with their synced bytes, plus,
    /// if `tear_seed` is given, a seeded random prefix of each file's unsynced tail (a torn
    /// write). redb's file keeps exactly its synced bytes.
    pub fn crash_image(&self, tear_seed: Option<u64>) -> SimDisk {
        let s = lock(&self.state);
        let mut rng = tear_seed.map(SplitMix);
        let mut out = State {
            redb_live: s.redb_durable.clone(),
            redb_durable: s.redb_durable.clone(),
            ..State::default()
        };
        for (name, id) in &s.durable_dir {
            let inode = &s.inodes[*id];
            let mut keep = inode.synced_len.min(inode.data.len());
            if let Some(r) = rng.as_mut() {
                let unsynced = inode.data.len() - keep;
                if unsynced > 0 {
                    keep += usize::try_from(r.next() % (unsynced as u64 + 1)).unwrap_or(0);
                }
            }
            let data = inode.data[..keep].to_vec();
            out.inodes.push(Inode {
                synced_len: data.len(),
                data,
            });
            let id = out.inodes.len() - 1;
            out.live_dir.insert(name.clone(), id);
            out.durable_dir.insert(name.clone(), id);
        }
        SimDisk {
            state: Arc::new(Mutex::new(out)),
        }
    }

    /// Flips one bit of a file (live and durable), for corruption tests. `false` if no such byte.
    pub fn flip_bit(&self, name: &str, bit: u64) -> bool {
        let mut s = lock(&self.state);
        let Some(id) = s.live_dir.get(name).copied() else {
            return false;
        };
        let Ok(byte) = usize::try_from(bit / 8) else {
            return false;
        };
        let Some(b) = s.inodes[id].data.get_mut(byte) else {
            return false;
        };
        *b ^= 1 << (bit % 8);
        true
    }

    /// Cuts a file to `len` bytes (live and durable), for truncation tests.
    pub fn truncate(&self, name: &str, len: usize) {
        let mut s = lock(&self.state);
        if let Some(id) = s.live_dir.get(name).copied() {
            let inode = &mut s.inodes[id];
            inode.data.truncate(len);
            inode.synced_len = inode.synced_len.min(len);
        }
    }

    /// Length of a file, if it exists.
    pub fn file_len(&self, name: &str) -> Option<usize> {
        let s = lock(&self.state);
        s.live_dir.get(name).map(|id| s.inodes[*id].data.len())
    }

    /// Names of the files (excluding redb's).
    pub fn file_names(&self) -> Vec<String> {
        lock(&self.state).live_dir.keys().cloned().collect()
    }
}

#[derive(Debug)]
struct SimFile {
    state: Arc<Mutex<State>>,
    inode: usize,
}

impl WalFile for SimFile {
    fn append(&mut self, data: &[u8]) -> io::Result<()> {
        let mut s = lock(&self.state);
        s.alive()?;
        let n = s.budget(data.len());
        s.inodes[self.inode].data.extend_from_slice(&data[..n]);
        if n < data.len() {
            return Err(storage_full());
        }
        Ok(())
    }
    fn sync(&mut self) -> io::Result<()> {
        let mut s = lock(&self.state);
        s.sync_point()?;
        let inode = &mut s.inodes[self.inode];
        inode.synced_len = inode.data.len();
        Ok(())
    }
}

impl StoreIo for SimDisk {
    fn list(&self) -> io::Result<Vec<String>> {
        Ok(self.file_names())
    }
    fn read(&self, name: &str) -> io::Result<Vec<u8>> {
        let s = lock(&self.state);
        s.live_dir
            .get(name)
            .map(|id| s.inodes[*id].data.clone())
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, name.to_string()))
    }
    fn create(&self, name: &str) -> io::Result<Box<dyn WalFile>> {
        let mut s = lock(&self.state);
        s.alive()?;
        s.inodes.push(Inode::default());
        let inode = s.inodes.len() - 1;
        s.live_dir.insert(name.to_string(), inode);
        Ok(Box::new(SimFile {
            state: Arc::clone(&self.state),
            inode,
        }))
    }
    fn remove(&self, name: &str) -> io::Result<()> {
        let mut s = lock(&self.state);
        s.alive()?;
        s.live_dir
            .remove(name)
            .map(|_| ())
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, name.to_string()))
    }
    fn sync_dir(&self) -> io::Result<()> {
        let mut s = lock(&self.state);
        s.sync_point()?;
        s.durable_dir = s.live_dir.clone();
        Ok(())
    }
    fn reset_redb(&self) -> io::Result<()> {
        let mut s = lock(&self.state);
        s.alive()?;
        s.redb_live.clear();
        s.redb_durable.clear();
        Ok(())
    }
    fn open_redb(&self, builder: &redb::Builder) -> Result<redb::Database, redb::DatabaseError> {
        builder.create_with_backend(SimBackend {
            state: Arc::clone(&self.state),
        })
    }
}

/// redb's storage on the simulated disk.
#[derive(Debug)]
struct SimBackend {
    state: Arc<Mutex<State>>,
}

impl redb::StorageBackend for SimBackend {
    fn len(&self) -> Result<u64, io::Error> {
        Ok(lock(&self.state).redb_live.len() as u64)
    }
    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), io::Error> {
        let s = lock(&self.state);
        let start = usize::try_from(offset).map_err(io::Error::other)?;
        let end = start + out.len();
        if end > s.redb_live.len() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "read past end",
            ));
        }
        out.copy_from_slice(&s.redb_live[start..end]);
        Ok(())
    }
    fn set_len(&self, len: u64) -> Result<(), io::Error> {
        let mut s = lock(&self.state);
        s.alive()?;
        let len = usize::try_from(len).map_err(io::Error::other)?;
        if len > s.redb_live.len() {
            let grow = len - s.redb_live.len();
            if s.budget(grow) < grow {
                return Err(storage_full());
            }
        }
        s.redb_live.resize(len, 0);
        Ok(())
    }
    fn sync_data(&self) -> Result<(), io::Error> {
        let mut s = lock(&self.state);
        s.sync_point()?;
        s.redb_durable = s.redb_live.clone();
        Ok(())
    }
    fn write(&self, offset: u64, data: &[u8]) -> Result<(), io::Error> {
        let mut s = lock(&self.state);
        s.alive()?;
        if s.budget(data.len()) < data.len() {
            return Err(storage_full());
        }
        let start = usize::try_from(offset).map_err(io::Error::other)?;
        let end = start + data.len();
        if end > s.redb_live.len() {
            s.redb_live.resize(end, 0);
        }
        s.redb_live[start..end].copy_from_slice(data);
        Ok(())
    }
}

/// SplitMix64: a tiny seeded generator for tearing (no dependency needed).
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}
