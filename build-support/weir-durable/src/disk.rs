//! Where durable state is kept: files in a directory, or whatever a
//! [`Disk`] stands for (the simulator keeps them in memory, and decides
//! what a crash loses).

use crate::DurableError;
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The files of one instance's state, by name.
pub trait Disk: Send + Sync + 'static {
    /// File `name`'s content, or `None` if there is no such file.
    fn read(&self, name: &str) -> io::Result<Option<Vec<u8>>>;
    /// Appends `bytes` to file `name`, making it if missing.
    fn append(&self, name: &str, bytes: &[u8]) -> io::Result<()>;
    /// Makes what was appended to file `name` survive a power loss.
    fn sync(&self, name: &str) -> io::Result<()>;
    /// Replaces file `name` by `bytes` at once: after a crash it holds the
    /// old content or the new, never a mix (and with `sync`, the new one
    /// survives a power loss once this returns).
    fn replace(&self, name: &str, bytes: &[u8], sync: bool) -> io::Result<()>;
    /// Cuts file `name` to its first `len` bytes.
    fn truncate(&self, name: &str, len: u64) -> io::Result<()>;
    /// Where file `name` is, for messages (the disk itself for `""`).
    fn describe(&self, name: &str) -> String;
}

/// Files in a directory, which the process holds (an advisory lock on
/// `.lock` inside it) so that two instances never share one.
pub struct DirDisk {
    dir: PathBuf,
    /// Held for as long as the disk is: the lock goes with it.
    _lock: File,
    /// Files open for appending.
    open: Mutex<HashMap<String, File>>,
}

impl DirDisk {
    /// Directory `dir`, made if missing and locked; an error if another
    /// process holds it.
    pub fn open(dir: &Path) -> Result<DirDisk, DurableError> {
        let failed = |what: &str, e: io::Error| {
            DurableError::new(format!(
                "cannot {what} state directory {}: {e}",
                dir.display()
            ))
        };
        std::fs::create_dir_all(dir).map_err(|e| failed("make", e))?;
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(".lock"))
            .map_err(|e| failed("use", e))?;
        // SAFETY: flock on a descriptor this function owns.
        if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            return Err(DurableError::new(format!(
                "state directory {} is in use by another process (each instance needs its own)",
                dir.display()
            )));
        }
        Ok(DirDisk {
            dir: dir.to_path_buf(),
            _lock: lock,
            open: Mutex::new(HashMap::new()),
        })
    }

    fn with_file<R>(
        &self,
        name: &str,
        f: impl FnOnce(&mut File) -> io::Result<R>,
    ) -> io::Result<R> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let file = match open.entry(name.to_string()) {
            std::collections::hash_map::Entry::Occupied(file) => file.into_mut(),
            std::collections::hash_map::Entry::Vacant(slot) => slot.insert(
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(self.dir.join(name))?,
            ),
        };
        f(file)
    }

    fn forget(&self, name: &str) {
        self.open
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(name);
    }
}

impl Disk for DirDisk {
    fn read(&self, name: &str) -> io::Result<Option<Vec<u8>>> {
        match std::fs::read(self.dir.join(name)) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn append(&self, name: &str, bytes: &[u8]) -> io::Result<()> {
        self.with_file(name, |file| file.write_all(bytes))
    }

    fn sync(&self, name: &str) -> io::Result<()> {
        self.with_file(name, |file| file.sync_data())
    }

    fn replace(&self, name: &str, bytes: &[u8], sync: bool) -> io::Result<()> {
        let path = self.dir.join(name);
        let fresh = self.dir.join(format!("{name}.new"));
        let mut file = File::create(&fresh)?;
        file.write_all(bytes)?;
        if sync {
            file.sync_all()?;
        }
        // The handle open for appending is to the file being replaced.
        self.forget(name);
        std::fs::rename(&fresh, &path)?;
        if sync {
            // The rename itself survives a power loss once the directory is synced.
            File::open(&self.dir)?.sync_all()?;
        }
        Ok(())
    }

    fn truncate(&self, name: &str, len: u64) -> io::Result<()> {
        self.forget(name);
        let file = OpenOptions::new().write(true).open(self.dir.join(name))?;
        file.set_len(len)?;
        file.sync_all()
    }

    fn describe(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }
}
