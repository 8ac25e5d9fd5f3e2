//! The acceptor: promises ballots and accepts values, so that a value accepted
//! by f+1 acceptors is chosen and no other value can be chosen in its slot.
//!
//! What it promised and accepted must outlive a crash, or a restarted acceptor
//! could break a promise. Each change is appended to a durable log
//! (`weir::durable`, in the instance's state directory), which Weir writes
//! before any answer of the tick leaves; a restart reads it back. The log is
//! compacted (replaced by the state as it is) when the watermark moves, if
//! what it holds of forgotten slots is worth it ([`Log::worth_compacting`]).

use super::{Ballot, FromAcceptor, Slot, ToAcceptor, Value};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use weir::durable::{Log, Storage};
use weir::ClusterId;

/// Slots an acceptor keeps for a replica behind the furthest one (down, or
/// slow): one further behind catches up from another replica's state, not
/// from the acceptors. Bounds what acceptors keep while a replica is away.
pub const MAX_LAG: Slot = 1 << 16;

#[derive(Debug, Clone)]
pub enum Input {
    /// From a proposer.
    Proposer(ClusterId, ToAcceptor),
    /// From a replica: it has applied every slot below this.
    Checkpoint(ClusterId, Slot),
}

pub struct Acceptor {
    promised: Ballot,
    /// Slots at or above the watermark: at most [`MAX_LAG`] below the
    /// furthest checkpoint, plus those no replica has checkpointed yet.
    accepted: BTreeMap<Slot, (Ballot, Value)>,
    /// Each replica's last checkpoint.
    checkpoints: Vec<Option<Slot>>,
    /// Slots below this are applied everywhere, and forgotten here.
    watermark: Slot,
    /// Where its changes are kept, if anywhere.
    log: Option<Log<Change>>,
    /// With the planted bug `late-writes`: this tick's changes, appended
    /// only in the next tick, so answers leave before what they promise is
    /// on disk.
    late: Option<Vec<Change>>,
}

/// A change to what an acceptor must remember, as its log holds it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Change {
    Promised(Ballot),
    Accepted(Slot, Ballot, Value),
    Watermark(Slot),
}

impl Acceptor {
    /// An acceptor with nothing promised, in memory only.
    pub fn new(replicas: usize) -> Self {
        Acceptor {
            promised: Ballot::default(),
            accepted: BTreeMap::new(),
            checkpoints: vec![None; replicas],
            watermark: 0,
            log: None,
            late: None,
        }
    }

    /// An acceptor that keeps its changes in the log `acceptor` of
    /// `storage`, reading back what an earlier run of it wrote there. A log
    /// that cannot be read stops the acceptor: answering without the state
    /// it promised could break a promise.
    pub fn open(replicas: usize, storage: Storage) -> Self {
        let mut acceptor = Acceptor::new(replicas);
        let (log, changes) = super::open_log(&storage, "acceptor");
        let read_back = changes.len();
        for change in changes {
            acceptor.apply(change);
        }
        if read_back > 0 {
            eprintln!(
                "acceptor state read back from {}: promised {:?}, {} slots accepted from {}",
                log.describe(),
                acceptor.promised,
                acceptor.accepted.len(),
                acceptor.watermark
            );
        }
        acceptor.log = Some(log);
        acceptor.late = super::planted_bug("late-writes").then(Vec::new);
        acceptor
    }

    /// What it remembers, as the changes that make it.
    fn snapshot(&self) -> Vec<Change> {
        let mut changes = vec![
            Change::Watermark(self.watermark),
            Change::Promised(self.promised),
        ];
        for (&slot, (ballot, value)) in &self.accepted {
            changes.push(Change::Accepted(slot, *ballot, value.clone()));
        }
        changes
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
        if let Some(late) = &mut self.late {
            late.push(change.clone());
        } else if let Some(log) = &mut self.log {
            log.append(&change);
        }
        self.apply(change);
    }

    /// One tick's messages; the answers, each to the proposer that asked
    /// (Weir writes the tick's changes before they leave).
    pub fn tick(&mut self, inputs: Vec<Input>) -> Vec<(ClusterId, FromAcceptor)> {
        let mut out = Vec::new();
        let watermark = self.watermark;
        if let (Some(late), Some(log)) = (&mut self.late, &mut self.log) {
            // The planted bug: the last tick's changes, written a tick late.
            for change in late.drain(..) {
                log.append(&change);
            }
        }
        for input in inputs {
            match input {
                Input::Proposer(from, message) => out.push((from, self.answer(message))),
                Input::Checkpoint(replica, slot) => self.checkpoint(replica, slot),
            }
        }
        // Slots below the watermark are forgotten: so is their part of the
        // log, once it outweighs the slots kept (so that those kept for a
        // replica far behind are not rewritten at every checkpoint).
        if self.watermark != watermark && self.log.as_ref().is_some_and(Log::worth_compacting) {
            let snapshot = self.snapshot();
            if let Some(log) = &mut self.log {
                log.compact(&snapshot);
            }
        }
        out
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

    /// Forgets the slots every replica has applied, and those more than
    /// [`MAX_LAG`] below the furthest replica's checkpoint.
    fn checkpoint(&mut self, replica: ClusterId, slot: Slot) {
        let Some(last) = self.checkpoints.get_mut(replica.index()) else {
            return;
        };
        *last = Some(last.map_or(slot, |l| l.max(slot)));
        let everywhere = self.checkpoints.iter().copied().min().flatten();
        let furthest = self.checkpoints.iter().copied().max().flatten();
        let kept_for_the_last = furthest.map(|f| f.saturating_sub(MAX_LAG));
        let watermark = everywhere.max(kept_for_the_last);
        if let Some(applied) = watermark.filter(|&w| w > self.watermark) {
            self.remember(Change::Watermark(applied));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(ballot: Ballot, slot: Slot) -> Input {
        let value = Value::new(&Vec::new());
        Input::Proposer(
            ClusterId(ballot.proposer),
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
        let two = Ballot::of(2, 1);
        let out = a.tick(vec![Input::Proposer(
            ClusterId(1),
            ToAcceptor::Prepare(two),
        )]);
        assert!(matches!(out[0].1, FromAcceptor::Promise { ballot, .. } if ballot == two));
        let out = a.tick(vec![accept(Ballot::of(1, 0), 0)]);
        assert!(matches!(out[0].1, FromAcceptor::Rejected { promised } if promised == two));
        let out = a.tick(vec![accept(two, 0)]);
        assert!(matches!(
            out[0].1,
            FromAcceptor::Accepted { ballot, slot: 0 } if ballot == two
        ));
    }

    #[test]
    fn a_restarted_acceptor_keeps_its_promises_and_what_it_accepted() {
        use weir::durable::{Durability, MemoryDisk};
        let disk = MemoryDisk::new();
        // A run of the acceptor on `disk`: each tick, then its commit (as
        // Weir makes it before the tick's answers leave).
        let run = || Storage::on(disk.clone(), Durability::Sync);
        let tick = |a: &mut Acceptor, storage: &Storage, inputs| {
            let out = a.tick(inputs);
            storage.commit().unwrap();
            out
        };
        {
            let storage = run();
            let mut a = Acceptor::open(1, storage.clone());
            tick(
                &mut a,
                &storage,
                vec![accept(Ballot::of(1, 0), 0), accept(Ballot::of(1, 0), 1)],
            );
            let prepare = Input::Proposer(ClusterId(1), ToAcceptor::Prepare(Ballot::of(3, 1)));
            tick(&mut a, &storage, vec![prepare]);
        }
        // A crash mid-write leaves a torn commit at the end: it is dropped.
        let mut bytes = disk.contents("acceptor.log").unwrap();
        bytes.extend_from_slice(&[9, 0, 0, 0, 1]);
        disk.put("acceptor.log", bytes);
        let storage = run();
        let mut again = Acceptor::open(1, storage.clone());
        assert_eq!(storage.take_warnings().len(), 1);
        let out = tick(&mut again, &storage, vec![accept(Ballot::of(2, 0), 2)]);
        assert!(
            matches!(out[0].1, FromAcceptor::Rejected { promised } if promised == Ballot::of(3, 1)),
            "{out:?}"
        );
        let prepare = Input::Proposer(ClusterId(1), ToAcceptor::Prepare(Ballot::of(4, 1)));
        let out = tick(&mut again, &storage, vec![prepare]);
        let FromAcceptor::Promise { accepted, .. } = &out[0].1 else {
            panic!("{out:?}")
        };
        let slots: Vec<Slot> = accepted
            .iter()
            .map(|(s, b, _)| {
                assert_eq!(*b, Ballot::of(1, 0));
                *s
            })
            .collect();
        assert_eq!(slots, vec![0, 1]);
        // Forgetting below the watermark is kept too (the log read back is
        // not worth compacting yet: it holds more than was appended since).
        tick(
            &mut again,
            &storage,
            vec![Input::Checkpoint(ClusterId(0), 1)],
        );
        drop((again, storage));
        let third = Acceptor::open(1, run());
        assert_eq!(
            (third.promised, third.watermark, third.accepted.len()),
            (Ballot::of(4, 1), 1, 1)
        );
    }

    #[test]
    fn slots_kept_for_a_replica_far_behind_are_not_rewritten_at_every_checkpoint() {
        use weir::durable::{Durability, MemoryDisk, Writes};
        const PER_TICK: Slot = 4096;
        let disk = MemoryDisk::new();
        let storage = Storage::on(disk.clone(), Durability::Sync);
        let mut a = Acceptor::open(2, storage.clone());
        for tick in 0..48 {
            let first = tick * PER_TICK;
            let mut inputs: Vec<Input> = (first..first + PER_TICK)
                .map(|slot| accept(Ballot::of(1, 0), slot))
                .collect();
            // Replica 0 keeps up; replica 1 is down: past MAX_LAG slots,
            // the watermark moves at every checkpoint, MAX_LAG slots kept.
            inputs.push(Input::Checkpoint(ClusterId(0), first + PER_TICK));
            a.tick(inputs);
            storage.commit().unwrap();
        }
        let Writes {
            appended,
            rewritten,
        } = disk.writes("acceptor.log");
        assert_eq!(a.accepted.len() as Slot, MAX_LAG);
        // Compacted (the log does not grow without end), but rewriting the
        // kept slots costs no more than appending did.
        assert!(rewritten > 0);
        assert!(rewritten <= appended, "{rewritten} > {appended}");
        let kept = (a.promised, a.watermark, a.accepted.len());
        drop((a, storage));
        let again = Acceptor::open(2, Storage::on(disk, Durability::Sync));
        assert_eq!(
            (again.promised, again.watermark, again.accepted.len()),
            kept
        );
    }

    #[test]
    fn a_promise_carries_what_was_accepted_above_the_watermark() {
        let mut a = Acceptor::new(2);
        a.tick((0..5).map(|s| accept(Ballot::of(1, 0), s)).collect());
        a.tick(vec![Input::Checkpoint(ClusterId(0), 3)]);
        // One replica is not there yet: nothing is forgotten.
        a.tick(vec![Input::Checkpoint(ClusterId(1), 2)]);
        let out = a.tick(vec![Input::Proposer(
            ClusterId(0),
            ToAcceptor::Prepare(Ballot::of(2, 0)),
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

    #[test]
    fn slots_far_below_the_furthest_replica_are_forgotten_though_one_never_checkpointed() {
        let mut a = Acceptor::new(2);
        let far = MAX_LAG + 10;
        a.tick(vec![
            accept(Ballot::of(1, 0), 3),
            accept(Ballot::of(1, 0), far + 1),
        ]);
        // Replica 1 never said where it is (down since the start): slots
        // more than MAX_LAG below replica 0's checkpoint are forgotten.
        a.tick(vec![Input::Checkpoint(ClusterId(0), far)]);
        assert_eq!(a.watermark, 10);
        assert_eq!(
            a.accepted.keys().copied().collect::<Vec<_>>(),
            vec![far + 1]
        );
    }
}
