//! The acceptor: promises ballots and accepts values, so that a value accepted
//! by f+1 acceptors is chosen and no other value can be chosen in its slot.
//!
//! Its state lives in memory: an acceptor that restarts has forgotten its
//! promises, and counts against the f failures the store survives until every
//! slot it had accepted is applied (below the watermark).

use super::{Ballot, FromAcceptor, Slot, ToAcceptor, Value};
use std::collections::BTreeMap;
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
}

impl Acceptor {
    pub fn new(replicas: usize) -> Self {
        Acceptor {
            promised: (0, 0),
            accepted: BTreeMap::new(),
            checkpoints: vec![None; replicas],
            watermark: 0,
        }
    }

    /// One tick's messages; the answers, each to the proposer that asked.
    pub fn tick(&mut self, inputs: Vec<Input>) -> Vec<(ClusterId, FromAcceptor)> {
        let mut out = Vec::new();
        for input in inputs {
            match input {
                Input::Proposer(from, message) => out.push((from, self.answer(message))),
                Input::Checkpoint(replica, slot) => self.checkpoint(replica, slot),
            }
        }
        out
    }

    fn answer(&mut self, message: ToAcceptor) -> FromAcceptor {
        match message {
            ToAcceptor::Prepare(ballot) if ballot >= self.promised => {
                self.promised = ballot;
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
                self.promised = ballot;
                if slot >= self.watermark {
                    self.accepted.insert(slot, (ballot, value));
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
            self.accepted = self.accepted.split_off(&applied);
            self.watermark = applied;
        }
    }
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
