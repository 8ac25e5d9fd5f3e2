//! The acceptor: promises ballots and accepts values, so that a value accepted
//! by f+1 acceptors is chosen and no other value can be chosen in its slot.
//!
//! What it promised and accepted must outlive a crash, or a restarted acceptor
//! could break a promise. With a state file, each tick's changes are appended
//! to it (one write) before the tick's answers leave, and a restart reads it
//! back; the file is rewritten whole when the watermark moves. The write is
//! not synced to disk (set `PAXOS_KV_FSYNC=1` for that): it survives the
//! process's death, not the machine's. Without a state file the acceptor
//! keeps everything in memory, and says so.

use super::{Ballot, FromAcceptor, Slot, ToAcceptor, Value};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use weir::ClusterId;

#[derive(Debug, Clone)]
pub enum Input {
    /// From a proposer.
    Proposer(ClusterId, ToAcceptor),
    /// From a replica: it has applied every slot below this.
    Checkpoint(ClusterId, Slot),
}

pub struct Acceptor {
    promised: Ballot,
    accepted: BTreeMap<Slot, (Ballot, Value)>,
    /// Each replica's last checkpoint.
    checkpoints: Vec<Option<Slot>>,
    /// Slots below this are applied everywhere, and forgotten here.
    watermark: Slot,
    state: Option<StateFile>,
}

/// A change to what an acceptor must remember, as its state file holds it.
#[derive(Debug, Clone, Serialize, Deserialize)]
enum Change {
    Promised(Ballot),
    Accepted(Slot, Ballot, Value),
    Watermark(Slot),
}

/// The acceptor's state file: its changes, each as a length and its bincode.
struct StateFile {
    path: PathBuf,
    file: std::fs::File,
    /// This tick's changes, written at its end.
    pending: Vec<u8>,
    sync: bool,
    /// Set once a write failed: the acceptor answers no more.
    broken: bool,
}

/// The state file of acceptor `me`: `$PAXOS_KV_STATE_DIR/acceptor-<me>.state`,
/// or none (state in memory, said on stderr) when the variable is unset.
pub fn state_file(me: ClusterId) -> Option<PathBuf> {
    match std::env::var_os("PAXOS_KV_STATE_DIR") {
        Some(dir) => Some(PathBuf::from(dir).join(format!("acceptor-{me}.state"))),
        None => {
            eprintln!(
                "warning: acceptor/{me}: PAXOS_KV_STATE_DIR is not set: promises are kept in memory only, and a restarted acceptor forgets them"
            );
            None
        }
    }
}

impl Acceptor {
    /// An acceptor with nothing promised, in memory only.
    pub fn new(replicas: usize) -> Self {
        Acceptor {
            promised: (0, 0),
            accepted: BTreeMap::new(),
            checkpoints: vec![None; replicas],
            watermark: 0,
            state: None,
        }
    }

    /// An acceptor that keeps its state in `path` (when given), reading back
    /// what an earlier run of it wrote there.
    pub fn open(replicas: usize, path: Option<PathBuf>) -> Self {
        let mut acceptor = Acceptor::new(replicas);
        let Some(path) = path else {
            return acceptor;
        };
        match acceptor.recover(&path) {
            Ok(state) => acceptor.state = Some(state),
            Err(e) => {
                // Answering without the state it promised could break a promise.
                eprintln!(
                    "error: cannot use acceptor state file {}: {e}",
                    path.display()
                );
                std::process::exit(1);
            }
        }
        acceptor
    }

    fn recover(&mut self, path: &std::path::Path) -> std::io::Result<StateFile> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e),
        };
        let mut at = 0;
        let mut changes = 0;
        while let Some(change) = read_change(&bytes, &mut at) {
            self.apply(change);
            changes += 1;
        }
        if at < bytes.len() {
            eprintln!(
                "warning: {}: the last {} bytes are a change cut short (a crash mid-write); it never left, so it is dropped",
                path.display(),
                bytes.len() - at
            );
        }
        if changes > 0 {
            eprintln!(
                "acceptor state read back from {}: promised {:?}, {} slots accepted from {}",
                path.display(),
                self.promised,
                self.accepted.len(),
                self.watermark
            );
        }
        let sync = std::env::var_os("PAXOS_KV_FSYNC").is_some_and(|v| v == "1");
        // Start from a clean copy (without a torn tail).
        Ok(StateFile {
            path: path.to_path_buf(),
            file: self.snapshot(path, sync)?,
            pending: Vec::new(),
            sync,
            broken: false,
        })
    }

    /// Rewrites the state file at `path` with what is remembered now, and
    /// opens it for appending.
    fn snapshot(&self, path: &std::path::Path, sync: bool) -> std::io::Result<std::fs::File> {
        let fresh = path.with_extension("new");
        let mut bytes = Vec::new();
        push_change(&mut bytes, &Change::Watermark(self.watermark));
        push_change(&mut bytes, &Change::Promised(self.promised));
        for (&slot, (ballot, value)) in &self.accepted {
            push_change(&mut bytes, &Change::Accepted(slot, *ballot, value.clone()));
        }
        let mut file = std::fs::File::create(&fresh)?;
        file.write_all(&bytes)?;
        if sync {
            file.sync_all()?;
        }
        std::fs::rename(&fresh, path)?;
        std::fs::OpenOptions::new().append(true).open(path)
    }

    fn apply(&mut self, change: Change) {
        match change {
            Change::Promised(ballot) => self.promised = self.promised.max(ballot),
            Change::Accepted(slot, ballot, value) => {
                self.promised = self.promised.max(ballot);
                if slot >= self.watermark {
                    self.accepted.insert(slot, (ballot, value));
                }
            }
            Change::Watermark(slot) if slot > self.watermark => {
                self.accepted = self.accepted.split_off(&slot);
                self.watermark = slot;
            }
            Change::Watermark(_) => {}
        }
    }

    fn remember(&mut self, change: Change) {
        if let Some(state) = &mut self.state {
            push_change(&mut state.pending, &change);
        }
        self.apply(change);
    }

    /// One tick's messages; the answers, each to the proposer that asked,
    /// once what they promise is in the state file.
    pub fn tick(&mut self, inputs: Vec<Input>) -> Vec<(ClusterId, FromAcceptor)> {
        let mut out = Vec::new();
        let watermark = self.watermark;
        for input in inputs {
            match input {
                Input::Proposer(from, message) => out.push((from, self.answer(message))),
                Input::Checkpoint(replica, slot) => self.checkpoint(replica, slot),
            }
        }
        if self.persist(watermark).is_err() {
            return Vec::new();
        }
        out
    }

    /// Writes this tick's changes (the whole state when the watermark moved).
    fn persist(&mut self, watermark_before: Slot) -> Result<(), ()> {
        let Some(mut state) = self.state.take() else {
            return Ok(());
        };
        let written = if state.broken {
            Err(std::io::Error::other("an earlier write failed"))
        } else if self.watermark != watermark_before {
            state.pending.clear();
            self.snapshot(&state.path, state.sync)
                .map(|file| state.file = file)
        } else if state.pending.is_empty() {
            Ok(())
        } else {
            let written = state.file.write_all(&state.pending);
            state.pending.clear();
            written.and_then(|()| {
                if state.sync {
                    state.file.sync_data()
                } else {
                    Ok(())
                }
            })
        };
        let result = match written {
            Ok(()) => Ok(()),
            Err(e) => {
                if !state.broken {
                    eprintln!(
                        "error: cannot write acceptor state file {}: {e}; this acceptor answers no more",
                        state.path.display()
                    );
                }
                state.broken = true;
                Err(())
            }
        };
        self.state = Some(state);
        result
    }

    fn answer(&mut self, message: ToAcceptor) -> FromAcceptor {
        match message {
            ToAcceptor::Prepare(ballot) if ballot >= self.promised => {
                if ballot > self.promised {
                    self.remember(Change::Promised(ballot));
                }
                let accepted = self
                    .accepted
                    .iter()
                    .map(|(&slot, (b, value))| (slot, *b, value.clone()))
                    .collect();
                FromAcceptor::Promise {
                    ballot,
                    accepted,
                    watermark: self.watermark,
                }
            }
            ToAcceptor::Accept {
                ballot,
                slot,
                value,
            } if ballot >= self.promised => {
                if slot >= self.watermark {
                    self.remember(Change::Accepted(slot, ballot, value));
                } else if ballot > self.promised {
                    // Applied everywhere already: only the ballot is news.
                    self.remember(Change::Promised(ballot));
                }
                FromAcceptor::Accepted { ballot, slot }
            }
            ToAcceptor::Prepare(_) | ToAcceptor::Accept { .. } => FromAcceptor::Rejected {
                promised: self.promised,
            },
        }
    }

    /// Forgets the slots every replica has applied.
    fn checkpoint(&mut self, replica: ClusterId, slot: Slot) {
        let Some(last) = self.checkpoints.get_mut(replica.index()) else {
            return;
        };
        *last = Some(last.map_or(slot, |l| l.max(slot)));
        let everywhere = self.checkpoints.iter().copied().min().flatten();
        if let Some(applied) = everywhere.filter(|&w| w > self.watermark) {
            self.remember(Change::Watermark(applied));
        }
    }
}

fn push_change(out: &mut Vec<u8>, change: &Change) {
    let config = bincode::config::standard();
    let bytes = bincode::serde::encode_to_vec(change, config).expect("a change always encodes");
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(&bytes);
}

/// The change at `*at`, moving past it; `None` at the end or at a torn tail.
fn read_change(bytes: &[u8], at: &mut usize) -> Option<Change> {
    let len = bytes.get(*at..*at + 4)?;
    let len = u32::from_le_bytes(len.try_into().ok()?) as usize;
    let body = bytes.get(*at + 4..*at + 4 + len)?;
    let (change, _) = bincode::serde::decode_from_slice(body, bincode::config::standard()).ok()?;
    *at += 4 + len;
    Some(change)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn accept(ballot: Ballot, slot: Slot) -> Input {
        let value = Arc::new(Vec::new());
        Input::Proposer(
            ClusterId(ballot.1),
            ToAcceptor::Accept {
                ballot,
                slot,
                value,
            },
        )
    }

    #[test]
    fn a_lower_ballot_is_rejected_after_a_promise() {
        let mut a = Acceptor::new(1);
        let out = a.tick(vec![Input::Proposer(
            ClusterId(1),
            ToAcceptor::Prepare((2, 1)),
        )]);
        assert!(matches!(
            out[0].1,
            FromAcceptor::Promise { ballot: (2, 1), .. }
        ));
        let out = a.tick(vec![accept((1, 0), 0)]);
        assert!(matches!(
            out[0].1,
            FromAcceptor::Rejected { promised: (2, 1) }
        ));
        let out = a.tick(vec![accept((2, 1), 0)]);
        assert!(matches!(
            out[0].1,
            FromAcceptor::Accepted {
                ballot: (2, 1),
                slot: 0
            }
        ));
    }

    #[test]
    fn a_restarted_acceptor_keeps_its_promises_and_what_it_accepted() {
        let dir = std::env::temp_dir().join(format!("paxos-acceptor-{}", std::process::id()));
        let path = dir.join("acceptor-0.state");
        let _ = std::fs::remove_dir_all(&dir);
        {
            let mut a = Acceptor::open(1, Some(path.clone()));
            a.tick(vec![accept((1, 0), 0), accept((1, 0), 1)]);
            a.tick(vec![Input::Proposer(
                ClusterId(1),
                ToAcceptor::Prepare((3, 1)),
            )]);
        }
        // A crash mid-write leaves a torn change at the end: it is dropped.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(&[9, 0, 0, 0, 1])
            .unwrap();
        let mut again = Acceptor::open(1, Some(path.clone()));
        let out = again.tick(vec![accept((2, 0), 2)]);
        assert!(
            matches!(out[0].1, FromAcceptor::Rejected { promised: (3, 1) }),
            "{out:?}"
        );
        let out = again.tick(vec![Input::Proposer(
            ClusterId(1),
            ToAcceptor::Prepare((4, 1)),
        )]);
        let FromAcceptor::Promise { accepted, .. } = &out[0].1 else {
            panic!("{out:?}")
        };
        let slots: Vec<Slot> = accepted
            .iter()
            .map(|(s, b, _)| {
                assert_eq!(*b, (1, 0));
                *s
            })
            .collect();
        assert_eq!(slots, vec![0, 1]);
        // Forgetting below the watermark rewrites the file, which reads back the same.
        again.tick(vec![Input::Checkpoint(ClusterId(0), 1)]);
        drop(again);
        let third = Acceptor::open(1, Some(path));
        assert_eq!(
            (third.promised, third.watermark, third.accepted.len()),
            ((4, 1), 1, 1)
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_promise_carries_what_was_accepted_above_the_watermark() {
        let mut a = Acceptor::new(2);
        a.tick((0..5).map(|s| accept((1, 0), s)).collect());
        a.tick(vec![Input::Checkpoint(ClusterId(0), 3)]);
        // One replica is not there yet: nothing is forgotten.
        a.tick(vec![Input::Checkpoint(ClusterId(1), 2)]);
        let out = a.tick(vec![Input::Proposer(
            ClusterId(0),
            ToAcceptor::Prepare((2, 0)),
        )]);
        let FromAcceptor::Promise {
            accepted,
            watermark,
            ..
        } = &out[0].1
        else {
            panic!("{out:?}")
        };
        assert_eq!(*watermark, 2);
        let slots: Vec<Slot> = accepted.iter().map(|(s, _, _)| *s).collect();
        assert_eq!(slots, vec![2, 3, 4]);
    }
}
