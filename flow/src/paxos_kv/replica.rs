//! The replica: applies chosen slots in order to the key-value map and answers
//! each command to the proposer that holds its client.
//!
//! Commands of one client are applied in the order of their numbers, each
//! number once: a retried command (chosen twice, in two slots) is answered
//! again from the session's recent answers and not applied again, and a
//! command chosen ahead of an earlier one of the same client waits for it.
//!
//! One replica answers each slot (slot number modulo the replicas), so the
//! proposers get each answer once. Every replica answers a retry: when the
//! slot's replica is down, the client's proposer sends the command again
//! after [`super::proposer`]'s retry time, and a live replica answers it from
//! the session's recent answers.

use super::resp::Reply;
use super::{Answer, Chosen, ClientId, Command, FromReplica, Op, Slot, Value};
use std::collections::{BTreeMap, HashMap, VecDeque};
use weir::ClusterId;

/// Every this many applied slots, the replica tells the acceptors.
pub const CHECKPOINT_EVERY: Slot = 1000;
/// Answers a session keeps for retries.
const RECENT: usize = 64;

#[derive(Default)]
struct Session {
    next_seq: u64,
    /// Commands chosen ahead of `next_seq`.
    waiting: BTreeMap<u64, Command>,
    recent: VecDeque<(u64, Reply)>,
}

pub struct Replica {
    me: u64,
    replicas: u64,
    store: HashMap<Vec<u8>, Vec<u8>>,
    /// The first slot not applied yet.
    next_slot: Slot,
    /// Chosen slots after a missing one.
    ahead: BTreeMap<Slot, Value>,
    sessions: HashMap<ClientId, Session>,
    checkpointed: Slot,
}

impl Replica {
    /// Replica `me` of `replicas`.
    pub fn new(me: ClusterId, replicas: usize) -> Self {
        Replica {
            me: u64::from(me.0),
            replicas: replicas.max(1) as u64,
            store: HashMap::new(),
            next_slot: 0,
            ahead: BTreeMap::new(),
            sessions: HashMap::new(),
            checkpointed: 0,
        }
    }

    /// One tick's chosen slots; the answers, and now and then a checkpoint.
    pub fn tick(&mut self, chosen: Vec<Chosen>) -> Vec<FromReplica> {
        let mut out = Vec::new();
        for Chosen { slot, value } in chosen {
            if slot >= self.next_slot {
                self.ahead.entry(slot).or_insert(value);
            }
        }
        while let Some(value) = self.ahead.remove(&self.next_slot) {
            let answers = self.next_slot % self.replicas == self.me;
            for command in value.iter() {
                self.execute(command.clone(), answers, &mut out);
            }
            self.next_slot += 1;
        }
        if self.next_slot >= self.checkpointed + CHECKPOINT_EVERY {
            self.checkpointed = self.next_slot;
            out.push(FromReplica::Checkpoint(self.next_slot));
        }
        out
    }

    /// Applies `command` (once); `answers` says whether this replica answers
    /// its slot.
    fn execute(&mut self, command: Command, answers: bool, out: &mut Vec<FromReplica>) {
        let client = command.client;
        let session = self.sessions.entry(client).or_default();
        if command.seq < session.next_seq {
            // A retry of an applied command: the same answer again.
            if let Some((_, reply)) = session.recent.iter().find(|(s, _)| *s == command.seq) {
                out.push(answer(client, command.seq, reply.clone()));
            }
            return;
        }
        if command.seq > session.next_seq {
            session.waiting.insert(command.seq, command);
            return;
        }
        let mut next = Some(command);
        while let Some(command) = next {
            let reply = apply(&mut self.store, command.op);
            let session = self.sessions.get_mut(&client).expect("made above");
            if session.recent.len() == RECENT {
                session.recent.pop_front();
            }
            session.recent.push_back((command.seq, reply.clone()));
            session.next_seq = command.seq + 1;
            if answers {
                out.push(answer(client, command.seq, reply));
            }
            next = session.waiting.remove(&session.next_seq);
        }
    }
}

fn answer(client: ClientId, seq: u64, reply: Reply) -> FromReplica {
    let to = ClusterId(client.proposer);
    FromReplica::Answer(to, Answer { client, seq, reply })
}

fn apply(store: &mut HashMap<Vec<u8>, Vec<u8>>, op: Op) -> Reply {
    match op {
        Op::Set(key, value) => {
            store.insert(key, value);
            Reply::Ok
        }
        Op::Get(key) => Reply::Bulk(store.get(&key).cloned()),
        Op::Del(keys) => {
            Reply::Integer(keys.iter().filter(|k| store.remove(*k).is_some()).count() as i64)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    const CLIENT: ClientId = ClientId {
        proposer: 1,
        incarnation: 7,
        connection: 3,
    };

    fn chosen(slot: Slot, commands: &[(u64, Op)]) -> Chosen {
        let value = commands
            .iter()
            .map(|(seq, op)| Command {
                client: CLIENT,
                seq: *seq,
                op: op.clone(),
            })
            .collect();
        Chosen {
            slot,
            value: Arc::new(value),
        }
    }

    fn answers(out: &[FromReplica]) -> Vec<(u64, Reply)> {
        out.iter()
            .filter_map(|o| match o {
                FromReplica::Answer(ClusterId(1), a) => Some((a.seq, a.reply.clone())),
                _ => None,
            })
            .collect()
    }

    fn set(k: &str, v: &str) -> Op {
        Op::Set(k.into(), v.into())
    }

    #[test]
    fn slots_apply_in_order_once_the_gap_is_filled() {
        let mut r = Replica::new(ClusterId(0), 1);
        let out = r.tick(vec![chosen(1, &[(1, Op::Get(b"k".to_vec()))])]);
        assert!(answers(&out).is_empty(), "slot 0 is missing");
        let out = r.tick(vec![chosen(0, &[(0, set("k", "v"))])]);
        assert_eq!(
            answers(&out),
            vec![(0, Reply::Ok), (1, Reply::Bulk(Some(b"v".to_vec())))]
        );
    }

    #[test]
    fn a_retried_command_is_answered_again_and_applied_once() {
        let mut r = Replica::new(ClusterId(0), 1);
        r.tick(vec![chosen(0, &[(0, set("k", "a")), (1, set("k", "b"))])]);
        // The first command, chosen again in a later slot after a retry.
        let out = r.tick(vec![
            chosen(1, &[(0, set("k", "a"))]),
            chosen(2, &[(2, Op::Get(b"k".to_vec()))]),
        ]);
        assert_eq!(
            answers(&out),
            vec![(0, Reply::Ok), (2, Reply::Bulk(Some(b"b".to_vec())))]
        );
    }

    #[test]
    fn each_slot_is_answered_by_one_replica_and_retries_by_every_one() {
        let mut replicas = [Replica::new(ClusterId(0), 2), Replica::new(ClusterId(1), 2)];
        let tick = |r: &mut Replica, slot, commands: &[(u64, Op)]| {
            answers(&r.tick(vec![chosen(slot, commands)]))
        };
        let [zero, one] = &mut replicas;
        assert_eq!(tick(zero, 0, &[(0, set("k", "a"))]), vec![(0, Reply::Ok)]);
        assert_eq!(tick(one, 0, &[(0, set("k", "a"))]), vec![]);
        assert_eq!(tick(zero, 1, &[(1, set("k", "b"))]), vec![]);
        assert_eq!(tick(one, 1, &[(1, set("k", "b"))]), vec![(1, Reply::Ok)]);
        // Command 1 retried (its answer was lost with replica 1): replica 0
        // answers it too, in a slot of either.
        assert_eq!(tick(zero, 2, &[(1, set("k", "b"))]), vec![(1, Reply::Ok)]);
    }

    #[test]
    fn a_clients_commands_apply_in_their_order() {
        let mut r = Replica::new(ClusterId(0), 1);
        let out = r.tick(vec![
            chosen(0, &[(1, set("k", "second"))]),
            chosen(1, &[(0, set("k", "first"))]),
        ]);
        assert_eq!(answers(&out), vec![(0, Reply::Ok), (1, Reply::Ok)]);
        let out = r.tick(vec![chosen(2, &[(2, Op::Get(b"k".to_vec()))])]);
        assert_eq!(
            answers(&out),
            vec![(2, Reply::Bulk(Some(b"second".to_vec())))]
        );
    }
}
