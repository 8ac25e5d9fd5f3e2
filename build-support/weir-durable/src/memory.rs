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
    state: Arc<Mutex<State>>,
}

#[derive(Debug, Default)]
struct State {
    files: BTreeMap<String, MemoryFile>,
    power: Power,
}

/// Whether writes reach the disk.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Power {
    #[default]
    On,
    /// The next sync or replacement finds the power gone.
    FailsAtNextSync,
    /// Every read and write fails until [`MemoryDisk::power_loss`].
    Off,
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
    /// What it was asked to write.
    writes: Writes,
}

/// The bytes a file was asked to write, by kind.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Writes {
    /// Appended to it.
    pub appended: usize,
    /// Written as the whole of it, by replacements (compactions).
    pub rewritten: usize,
}

impl MemoryDisk {
    /// An empty disk.
    pub fn new() -> MemoryDisk {
        MemoryDisk::default()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The machine goes down: each file is left as last synced, plus the
    /// first `keep(name, n)` of the `n` bytes appended since (a write torn
    /// part way; 0 for none). A file replaced since it was synced is left
    /// as it was before. The disk then works again, as on the next boot.
    pub fn power_loss(&self, mut keep: impl FnMut(&str, usize) -> usize) {
        let mut state = self.state();
        state.power = Power::On;
        for (name, file) in state.files.iter_mut() {
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

    /// The power goes at the next sync or replacement (a crash in the middle
    /// of a commit): that call and every one after it fail, until
    /// [`power_loss`](MemoryDisk::power_loss) decides what survived.
    pub fn lose_power_at_next_sync(&self) {
        let mut state = self.state();
        if state.power == Power::On {
            state.power = Power::FailsAtNextSync;
        }
    }

    /// Undoes [`lose_power_at_next_sync`](MemoryDisk::lose_power_at_next_sync)
    /// if the power has not gone yet.
    pub fn keep_power(&self) {
        let mut state = self.state();
        if state.power == Power::FailsAtNextSync {
            state.power = Power::On;
        }
    }

    /// Whether the power went (see [`lose_power_at_next_sync`](MemoryDisk::lose_power_at_next_sync)).
    pub fn is_down(&self) -> bool {
        self.state().power == Power::Off
    }

    /// Whether nothing was ever written to it.
    pub fn is_empty(&self) -> bool {
        self.state().files.is_empty()
    }

    /// File `name` as reads see it (`None` if missing).
    pub fn contents(&self, name: &str) -> Option<Vec<u8>> {
        self.state().files.get(name).map(|f| f.written.clone())
    }

    /// What file `name` was asked to write since it was made (nothing if
    /// it is missing).
    pub fn writes(&self, name: &str) -> Writes {
        self.state()
            .files
            .get(name)
            .map_or_else(Writes::default, |f| f.writes)
    }

    /// Sets file `name` as if written and synced.
    pub fn put(&self, name: &str, bytes: Vec<u8>) {
        let file = MemoryFile {
            written: bytes.clone(),
            synced: bytes,
            replaced: false,
            writes: Writes::default(),
        };
        self.state().files.insert(name.to_string(), file);
    }
}

/// The state, if the disk has power; `syncing` says the call would make
/// writes durable, which is where an armed power loss strikes.
fn powered(state: &mut State, syncing: bool) -> io::Result<&mut State> {
    match state.power {
        Power::FailsAtNextSync if syncing => state.power = Power::Off,
        Power::On | Power::FailsAtNextSync => return Ok(state),
        Power::Off => {}
    }
    Err(io::Error::other("the power went (simulated)"))
}

impl Disk for MemoryDisk {
    fn read(&self, name: &str) -> io::Result<Option<Vec<u8>>> {
        let mut state = self.state();
        let state = powered(&mut state, false)?;
        Ok(state.files.get(name).map(|f| f.written.clone()))
    }

    fn append(&self, name: &str, bytes: &[u8]) -> io::Result<()> {
        let mut state = self.state();
        let state = powered(&mut state, false)?;
        let file = state.files.entry(name.to_string()).or_default();
        file.written.extend_from_slice(bytes);
        file.writes.appended += bytes.len();
        Ok(())
    }

    fn sync(&self, name: &str) -> io::Result<()> {
        let mut state = self.state();
        let state = powered(&mut state, true)?;
        if let Some(file) = state.files.get_mut(name) {
            file.synced = file.written.clone();
            file.replaced = false;
        }
        Ok(())
    }

    fn replace(&self, name: &str, bytes: &[u8], sync: bool) -> io::Result<()> {
        let mut state = self.state();
        let state = powered(&mut state, sync)?;
        let file = state.files.entry(name.to_string()).or_default();
        file.written = bytes.to_vec();
        file.writes.rewritten += bytes.len();
        if sync {
            file.synced = bytes.to_vec();
        }
        file.replaced = !sync;
        Ok(())
    }

    fn truncate(&self, name: &str, len: u64) -> io::Result<()> {
        let mut state = self.state();
        let state = powered(&mut state, true)?;
        if let Some(file) = state.files.get_mut(name) {
            file.written.truncate(len as usize);
            file.synced.truncate(len as usize);
        }
        Ok(())
    }

    fn describe(&self, name: &str) -> String {
        format!("simulated disk: {name}")
    }
}
