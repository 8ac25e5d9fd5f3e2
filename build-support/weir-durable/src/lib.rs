//! Durable state for flows: what an instance keeps across a crash or a
//! restart, in its own state directory (`--state-dir`).
//!
//! Two shapes of state: a [`Log`] of records appended one by one and now and
//! then compacted (replaced whole by the records of a snapshot), and a
//! [`Cell`] holding one value replaced whole. Records are serde values in the
//! wire codec's encoding; each commit's records go in one frame with its
//! length and a CRC-32.
//!
//! Writes are grouped per tick. What quoted code appends or sets during a
//! tick is held in memory, and [`Storage::commit`] writes it: the runtime
//! calls it at the end of every tick, before any record the tick produced
//! leaves the instance, so nothing is said that a restart could forget.
//! One write per file per tick, and under [`Durability::Sync`] one
//! `fdatasync` per file.
//!
//! On open, a log is read back; a torn tail (a commit cut short or failing
//! its checksum at the very end: a crash mid-write, before anything of that
//! tick left) is dropped whole and reported ([`Storage::take_warnings`]).
//! Damage anywhere else, or a record that does not decode as the log's type,
//! is an error: an instance never starts with part of its state. The shape
//! of each file's type (weir-core's, as links compare) is kept beside it, so
//! a build whose type changed is refused by name instead of misreading it.
//!
//! In quoted code the state is the instance's (`cluster.durable()`); a test
//! of a role's state machine can put it on a [`MemoryDisk`] and restart it:
//!
//! ```
//! use weir_durable::{Cell, Durability, Log, MemoryDisk, Storage};
//!
//! let disk = MemoryDisk::new();
//! {
//!     let storage = Storage::on(disk.clone(), Durability::Sync);
//!     let (mut log, read_back) = Log::<String>::open(&storage, "events").unwrap();
//!     assert!(read_back.is_empty());
//!     let (mut count, value) = Cell::<u64>::open(&storage, "count").unwrap();
//!     assert_eq!(value, None);
//!     log.append(&"started".to_string());
//!     count.set(&1);
//!     storage.commit().unwrap(); // what the runtime does at the end of a tick
//! }
//! // A restart on the same disk reads back what was committed.
//! let storage = Storage::on(disk, Durability::Sync);
//! let (_, read_back) = Log::<String>::open(&storage, "events").unwrap();
//! assert_eq!(read_back, ["started"]);
//! let (_, value) = Cell::<u64>::open(&storage, "count").unwrap();
//! assert_eq!(value, Some(1));
//! ```

#![warn(missing_docs)]

mod disk;
mod files;
mod frame;
mod memory;
#[cfg(test)]
mod tests;

pub use disk::{DirDisk, Disk};
pub use files::{Cell, Log};
pub use memory::{MemoryDisk, Writes};

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

/// How far a tick's writes go before its records leave the instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// Written and `fdatasync`ed: survives the machine's crash or power loss.
    #[default]
    Sync,
    /// Written to the operating system: survives the process's death (a
    /// crash, SIGKILL), not the machine's.
    Flush,
}

impl Durability {
    /// `sync` or `flush`.
    pub fn parse(text: &str) -> Result<Durability, String> {
        match text {
            "sync" => Ok(Durability::Sync),
            "flush" => Ok(Durability::Flush),
            other => Err(format!(
                "unknown durability `{other}`: expected `sync` (survives a power loss) or `flush` (survives the process's death)"
            )),
        }
    }
}

impl fmt::Display for Durability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Durability::Sync => "sync",
            Durability::Flush => "flush",
        })
    }
}

/// Durable state that cannot be read or written, with the file and what is
/// wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DurableError(String);

impl DurableError {
    pub(crate) fn new(message: impl Into<String>) -> DurableError {
        DurableError(message.into())
    }
}

impl fmt::Display for DurableError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DurableError {}

/// What a file's next commit writes.
#[derive(Debug, Default)]
pub(crate) struct Pending {
    /// The file's whole new content (a compaction, a cell set), if any.
    replace: Option<Vec<u8>>,
    /// Records to append (after `replace`, if both), as one frame.
    append: weir_core::codec::BatchEncoder,
}

/// One instance's durable state: its files on a [`Disk`], and the writes of
/// the tick under way. Cloning shares it.
#[derive(Clone)]
pub struct Storage {
    inner: Arc<Inner>,
}

struct Inner {
    disk: Box<dyn Disk>,
    durability: Durability,
    /// Every file opened, with what its next commit writes.
    files: Mutex<BTreeMap<String, Pending>>,
    warnings: Mutex<Vec<String>>,
    /// In memory only, and gone with the process.
    volatile: bool,
    /// The first commit that failed: every later one fails with it, so
    /// nothing more leaves an instance whose state is behind what it said.
    failed: Mutex<Option<DurableError>>,
}

impl fmt::Debug for Storage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Storage")
            .field("disk", &self.inner.disk.describe(""))
            .field("durability", &self.inner.durability)
            .finish()
    }
}

impl Storage {
    /// The state in directory `dir` (made if missing), which this process
    /// then holds: a second process given it is refused.
    pub fn in_dir(dir: &Path, durability: Durability) -> Result<Storage, DurableError> {
        Ok(Storage::on(DirDisk::open(dir)?, durability))
    }

    /// State in memory only, for an instance given no state directory: it
    /// is gone with the process ([`is_volatile`](Storage::is_volatile)).
    pub fn volatile() -> Storage {
        Storage::with(Box::new(MemoryDisk::new()), Durability::Flush, true)
    }

    /// Whether this state is in memory only (see [`volatile`](Storage::volatile)).
    pub fn is_volatile(&self) -> bool {
        self.inner.volatile
    }

    /// The state on `disk` (the simulator's, say).
    pub fn on(disk: impl Disk, durability: Durability) -> Storage {
        Storage::with(Box::new(disk), durability, false)
    }

    fn with(disk: Box<dyn Disk>, durability: Durability, volatile: bool) -> Storage {
        Storage {
            inner: Arc::new(Inner {
                disk,
                durability,
                files: Mutex::new(BTreeMap::new()),
                warnings: Mutex::new(Vec::new()),
                failed: Mutex::new(None),
                volatile,
            }),
        }
    }

    /// How far a tick's writes go before its records leave the instance.
    pub fn durability(&self) -> Durability {
        self.inner.durability
    }

    /// Writes what this tick appended and set, file by file (one write, and
    /// under [`Durability::Sync`] one sync, each). An error names the file:
    /// the instance must then stop, since what it would send next may rest
    /// on what was not written.
    pub fn commit(&self) -> Result<(), DurableError> {
        let mut failed = lock(&self.inner.failed);
        if let Some(e) = &*failed {
            return Err(e.clone());
        }
        let written = self.write_pending();
        if let Err(e) = &written {
            *failed = Some(e.clone());
        }
        written
    }

    fn write_pending(&self) -> Result<(), DurableError> {
        let disk = &self.inner.disk;
        let sync = self.inner.durability == Durability::Sync;
        let mut files = lock(&self.inner.files);
        let mut body = Vec::new();
        for (name, pending) in files.iter_mut() {
            let failed = |e: &dyn fmt::Display| {
                DurableError::new(format!("cannot write {}: {e}", disk.describe(name)))
            };
            let mut framed = pending.replace.take().unwrap_or_default();
            let replace = !framed.is_empty();
            if !pending.append.is_empty() {
                body.clear();
                let encoded = pending.append.append_to(&mut body);
                pending.append.clear();
                encoded.map_err(|e| failed(&e))?;
                frame::push(&body, &mut framed);
            }
            let written = if replace {
                disk.replace(name, &framed, sync)
            } else if framed.is_empty() {
                continue;
            } else {
                disk.append(name, &framed)
                    .and_then(|()| if sync { disk.sync(name) } else { Ok(()) })
            };
            written.map_err(|e| failed(&e))?;
        }
        Ok(())
    }

    /// Whether a commit has anything to write.
    pub fn has_pending(&self) -> bool {
        lock(&self.inner.files)
            .values()
            .any(|p| p.replace.is_some() || !p.append.is_empty())
    }

    /// What opening the files found and dropped (torn tails), said once.
    pub fn take_warnings(&self) -> Vec<String> {
        std::mem::take(&mut *lock(&self.inner.warnings))
    }

    /// Files opened so far, by name.
    pub fn opened(&self) -> BTreeSet<String> {
        lock(&self.inner.files).keys().cloned().collect()
    }

    /// Claims file `name` (each is opened once), and reads it.
    pub(crate) fn claim(&self, name: &str) -> Result<Option<Vec<u8>>, DurableError> {
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            return Err(DurableError::new(format!(
                "`{name}` cannot name durable state: use letters, digits, `-`, `_` and `.`"
            )));
        }
        let mut files = lock(&self.inner.files);
        if files.contains_key(name) {
            return Err(DurableError::new(format!(
                "durable state `{name}` is opened twice in one instance"
            )));
        }
        let bytes = self.inner.disk.read(name).map_err(|e| {
            DurableError::new(format!(
                "cannot read {}: {e}",
                self.inner.disk.describe(name)
            ))
        })?;
        files.insert(name.to_string(), Pending::default());
        Ok(bytes)
    }

    pub(crate) fn with_pending<R>(&self, name: &str, f: impl FnOnce(&mut Pending) -> R) -> R {
        let mut files = lock(&self.inner.files);
        f(files.get_mut(name).expect("claimed when opened"))
    }

    pub(crate) fn describe(&self, name: &str) -> String {
        self.inner.disk.describe(name)
    }

    pub(crate) fn truncate(&self, name: &str, len: usize) -> Result<(), DurableError> {
        self.inner
            .disk
            .truncate(name, len as u64)
            .map_err(|e| DurableError::new(format!("cannot cut {}: {e}", self.describe(name))))
    }

    pub(crate) fn warn(&self, warning: String) {
        lock(&self.inner.warnings).push(warning);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
