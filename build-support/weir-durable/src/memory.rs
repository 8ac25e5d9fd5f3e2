//! Files in memory, as a machine's disk holds them: what was written but
//! not synced is lost when the machine goes down. The simulator's disk, and
//! the tests'.

use crate::disk::Disk;
use std::collections::BTreeMap;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};

/// Files in memory; clones share them (the disk outlives the instance that
/// wrote it, and the next run of it opens the same).
#[derive(Debug, Clone, Default)]
pub struct MemoryDisk {
    files: Arc<Mutex<BTreeMap<String, MemoryFile>>>,
}

#[derive(Debug, Default)]
struct MemoryFile {
    /// What reads see (the operating system's view).
    written: Vec<u8>,
    /// What survives a power loss.
    synced: Vec<u8>,
    /// Replaced since last synced: a power loss leaves the old content
    /// whole (a replacement is never torn).
    replaced: bool,
}

impl MemoryDisk {
    pub fn new() -> MemoryDisk {
        MemoryDisk::default()
    }

    fn files(&self) -> MutexGuard<'_, BTreeMap<String, MemoryFile>> {
        self.files.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The machine goes down: each file is left as last synced, plus the
    /// first `keep(name, n)` of the `n` bytes appended since (a write torn
    /// part way; 0 for none). A file replaced since it was synced is left
    /// as it was before.
    pub fn power_loss(&self, mut keep: impl FnMut(&str, usize) -> usize) {
        for (name, file) in self.files().iter_mut() {
            let unsynced = if file.replaced {
                &[][..]
            } else {
                &file.written[file.synced.len()..]
            };
            let kept = keep(name, unsynced.len()).min(unsynced.len());
            let mut survived = file.synced.clone();
            survived.extend_from_slice(&unsynced[..kept]);
            file.written = survived.clone();
            file.synced = survived;
            file.replaced = false;
        }
    }

    /// File `name` as reads see it (`None` if missing).
    pub fn contents(&self, name: &str) -> Option<Vec<u8>> {
        self.files().get(name).map(|f| f.written.clone())
    }

    /// Sets file `name` as if written and synced.
    pub fn put(&self, name: &str, bytes: Vec<u8>) {
        let file = MemoryFile {
            written: bytes.clone(),
            synced: bytes,
            replaced: false,
        };
        self.files().insert(name.to_string(), file);
    }
}

impl Disk for MemoryDisk {
    fn read(&self, name: &str) -> io::Result<Option<Vec<u8>>> {
        Ok(self.contents(name))
    }

    fn append(&self, name: &str, bytes: &[u8]) -> io::Result<()> {
        let mut files = self.files();
        files
            .entry(name.to_string())
            .or_default()
            .written
            .extend_from_slice(bytes);
        Ok(())
    }

    fn sync(&self, name: &str) -> io::Result<()> {
        if let Some(file) = self.files().get_mut(name) {
            file.synced = file.written.clone();
            file.replaced = false;
        }
        Ok(())
    }

    fn replace(&self, name: &str, bytes: &[u8], sync: bool) -> io::Result<()> {
        let mut files = self.files();
        let file = files.entry(name.to_string()).or_default();
        file.written = bytes.to_vec();
        if sync {
            file.synced = bytes.to_vec();
        }
        file.replaced = !sync;
        Ok(())
    }

    fn truncate(&self, name: &str, len: u64) -> io::Result<()> {
        if let Some(file) = self.files().get_mut(name) {
            file.written.truncate(len as usize);
            file.synced.truncate(len as usize);
        }
        Ok(())
    }

    fn describe(&self, name: &str) -> String {
        format!("simulated disk: {name}")
    }
}
