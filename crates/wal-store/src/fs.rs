//! The file layer under the store: a small trait for the WAL's files and for opening redb, so tests
//! can put a fault-injecting simulated disk ([`crate::sim`]) underneath. [`DirIo`] is the real one.

use std::fmt::Debug;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// File name of the redb database inside the datadir.
pub const REDB_FILE: &str = "coins.redb";
/// Marker file written (and synced) once the datadir is fully initialized; without it, a redb
/// file is the remains of an interrupted first open and is recreated.
pub const MARKER_FILE: &str = "datadir.init";

/// One append-only WAL segment file, open for writing.
pub trait WalFile: Send + Debug {
    /// Appends `data` at the end of the file (may be partially applied if it fails).
    ///
    /// # Errors
    /// The operating system's error (e.g. `StorageFull`).
    fn append(&mut self, data: &[u8]) -> io::Result<()>;
    /// Makes every appended byte durable (`fdatasync`).
    ///
    /// # Errors
    /// The operating system's error; the durability of unsynced bytes is then unknown.
    fn sync(&mut self) -> io::Result<()>;
}

/// The directory the store lives in: WAL segment files plus the redb database.
pub trait StoreIo: Send + Sync + Debug {
    /// Names of the files in the directory.
    ///
    /// # Errors
    /// The operating system's error.
    fn list(&self) -> io::Result<Vec<String>>;
    /// Whole contents of a file.
    ///
    /// # Errors
    /// The operating system's error.
    fn read(&self, name: &str) -> io::Result<Vec<u8>>;
    /// Creates (or truncates) a file for appending.
    ///
    /// # Errors
    /// The operating system's error.
    fn create(&self, name: &str) -> io::Result<Box<dyn WalFile>>;
    /// Removes a file.
    ///
    /// # Errors
    /// The operating system's error.
    fn remove(&self, name: &str) -> io::Result<()>;
    /// Makes creations and removals of files in the directory durable.
    ///
    /// # Errors
    /// The operating system's error.
    fn sync_dir(&self) -> io::Result<()>;
    /// Deletes the redb database of this directory, if any (used only before initialization).
    ///
    /// # Errors
    /// The operating system's error.
    fn reset_redb(&self) -> io::Result<()>;
    /// Opens (or creates) the redb database of this directory.
    ///
    /// # Errors
    /// redb's error.
    fn open_redb(&self, builder: &redb::Builder) -> Result<redb::Database, redb::DatabaseError>;
}

/// The real file system: a directory on disk.
#[derive(Debug, Clone)]
pub struct DirIo {
    dir: PathBuf,
}

impl DirIo {
    /// Uses `dir`, creating it if missing.
    ///
    /// # Errors
    /// The operating system's error creating the directory.
    pub fn new(dir: impl AsRef<Path>) -> io::Result<DirIo> {
        fs::create_dir_all(dir.as_ref())?;
        Ok(DirIo {
            dir: dir.as_ref().to_path_buf(),
        })
    }
}

#[derive(Debug)]
struct DirFile(File);

impl WalFile for DirFile {
    fn append(&mut self, data: &[u8]) -> io::Result<()> {
        self.0.write_all(data)
    }
    fn sync(&mut self) -> io::Result<()> {
        self.0.sync_data()
    }
}

impl StoreIo for DirIo {
    fn list(&self) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(&self.dir)? {
            let entry = entry?;
            if let Some(name) = entry.file_name().to_str() {
                names.push(name.to_string());
            }
        }
        Ok(names)
    }
    fn read(&self, name: &str) -> io::Result<Vec<u8>> {
        fs::read(self.dir.join(name))
    }
    fn create(&self, name: &str) -> io::Result<Box<dyn WalFile>> {
        let f = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(self.dir.join(name))?;
        Ok(Box::new(DirFile(f)))
    }
    fn remove(&self, name: &str) -> io::Result<()> {
        fs::remove_file(self.dir.join(name))
    }
    fn sync_dir(&self) -> io::Result<()> {
        File::open(&self.dir)?.sync_all()
    }
    fn reset_redb(&self) -> io::Result<()> {
        match fs::remove_file(self.dir.join(REDB_FILE)) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            other => other,
        }
    }
    fn open_redb(&self, builder: &redb::Builder) -> Result<redb::Database, redb::DatabaseError> {
        builder.create(self.dir.join(REDB_FILE))
    }
}
