//! The replica: applies chosen slots in order to the key-value map and answers
//! each command to the proposer that holds its client.
//!
//! Commands of one client are applied in the order of their numbers, each
//! number once: a retried command (chosen twice, in two slots) is answered
//! again from the session's recent answers and not applied again, a
//! command chosen ahead of an earlier one of the same client waits for it,
//! and one chosen after its session ended is dropped ([`super::ended`]).
//!
//! One replica answers each slot (slot number modulo the replicas), so the
//! proposers get each answer once. The slots of a replica that is lost, or
//! behind, are answered by every other replica until it says it serves
//! again. Every replica answers a retry: when a slot's answer was lost, the
//! client's proposer sends the command again after [`super::proposer`]'s
//! retry time, and a live replica answers it from the session's recent
//! answers.
//!
//! What a replica applied is kept in a durable log (`weir::durable`): its
//! state as of a slot, then each slot applied after it; at a checkpoint the
//! log is compacted to the state as it is, once the slots it holds outweigh
//! that state ([`Log::worth_compacting`]). A restarted replica reads it
//! back and goes on from the slot it had reached.
//!
//! A replica that misses a slot (it restarted empty, or was cut off while
//! the slot was chosen) asks another; one that has applied it sends its
//! whole state, in parts, and the replica goes on from there. The chosen
//! slots it holds meanwhile are applied after.

use super::ended::Ended;
use super::resp::Reply;
use super::{
    Answer, Chosen, ClientId, Command, FromReplica, Op, Run, Slot, ToReplica, ToReplicaInput, Value,
};
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use std::collections::{hash_map, BTreeMap, BTreeSet, HashMap, VecDeque};
use weir::durable::{Log, Storage};
use weir::{ClusterId, Membership};

/// The replica tells the acceptors each time it applies past a multiple of
/// this many slots: at the same slots on every replica, so the acceptors'
/// watermark moves once for all of them and their compaction keeps only the
/// slots in flight (checkpoints at slots that drift apart make it keep up to
/// this many slots, rewritten at each checkpoint).
pub const CHECKPOINT_EVERY: Slot = 1000;
/// Answers a session keeps for retries.
const RECENT: usize = 64;
/// A replica still behind this many ticks after it asked asks again (the
/// state sent may have been lost with a link, or already behind itself).
const ASK_AGAIN: u32 = 40;
/// Slots whose answers this replica keeps though another answers them: if
/// that one is lost before it sent them, this one does.
const KEPT_SLOTS: usize = 64;
/// Chosen slots a replica holds after a missing one.
const MAX_AHEAD: usize = 1 << 16;
/// Keys and values per part of a replica's state, in bytes (about): parts
/// stay far below the largest frame.
const STATE_PART: usize = 1 << 20;

#[derive(Default)]
struct Session {
    next_seq: u64,
    /// Commands chosen ahead of `next_seq`.
    waiting: BTreeMap<u64, Command>,
    recent: VecDeque<(u64, Reply)>,
}

impl Session {
    /// Applies the client's command `seq` (its next) to `store`, keeps its
    /// answer for retries, and says it unless it was `answered`.
    fn apply(
        &mut self,
        store: &mut Store,
        (client, seq): (ClientId, u64),
        op: &OpRef,
        answered: bool,
        out: &mut Vec<Answer>,
    ) {
        let reply = run(store, op);
        if self.recent.len() == RECENT {
            self.recent.pop_front();
        }
        self.recent.push_back((seq, reply.clone()));
        self.next_seq = seq + 1;
        if !answered {
            out.push(Answer { client, seq, reply });
        }
    }
}

/// A client's session as one replica sends it to another.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionState {
    pub client: ClientId,
    pub next_seq: u64,
    pub waiting: Vec<Command>,
    pub recent: Vec<(u64, Reply)>,
}

/// A replica's clients as of a slot, as it sends and keeps them whole.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Sessions {
    pub open: Vec<SessionState>,
    /// Each proposer's newest run (incarnation) seen in the log.
    pub proposers: Vec<(u32, u64)>,
    /// The sessions of those runs that ended, by proposer.
    pub ended: Vec<(u32, Ended)>,
}

/// What a replica's durable log holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Kept {
    /// Its whole state when every slot below `at` was applied.
    State {
        at: Slot,
        entries: Vec<(Vec<u8>, Vec<u8>)>,
        sessions: Sessions,
    },
    /// A slot applied after it.
    Applied(Slot, Value),
}

/// Another replica's state, as its parts come in.
struct Receiving {
    from: ClusterId,
    at: Slot,
    /// The part expected next.
    part: u32,
    store: Store,
}

/// The keys and their values. Keys are the clients' to choose, so they are
/// hashed with a keyed hash that resists collisions made on purpose: aHash,
/// seeded at random per map (about a seventh of SipHash's instructions on a
/// redis-benchmark key).
type Store = HashMap<Vec<u8>, Vec<u8>, ahash::RandomState>;

pub struct Replica {
    me: u64,
    replicas: u64,
    store: Store,
    /// The first slot not applied yet.
    next_slot: Slot,
    /// Chosen slots after a missing one (at most [`MAX_AHEAD`]).
    ahead: BTreeMap<Slot, (Value, Option<Run>)>,
    /// One per client connection that sent a command, until its
    /// `EndSession` is chosen or a later run of its proposer's is. Looked up
    /// for every command, by ids the proposers give: hashed with Fx (the
    /// store's keys, which clients choose, are not: [`Store`]).
    sessions: FxHashMap<ClientId, Session>,
    /// Each proposer's newest run (incarnation) whose command was chosen.
    /// Commands of its earlier runs chosen after it are dropped, and those
    /// runs' sessions end there: their connections died with them.
    proposers: BTreeMap<u32, u64>,
    /// The sessions of each proposer's newest run that ended: a command of
    /// one chosen later is a stale copy, and is dropped ([`Ended`]).
    ended: BTreeMap<u32, Ended>,
    checkpointed: Slot,
    /// The replicas whose slots this one answers too: lost, or behind.
    covering: BTreeSet<u64>,
    /// The answers of the last [`KEPT_SLOTS`] slots another replica answered.
    kept: VecDeque<(Slot, Vec<Answer>)>,
    /// The furthest another replica said it had applied: this one is behind
    /// while it has not applied as far.
    heard: Slot,
    /// Ticks since this replica last asked another for its state (`None`
    /// while it is not behind).
    asked: Option<u32>,
    /// How many times it asked: each time the next replica is asked.
    asks: u64,
    /// Whether the others may take it that this one answers its own slots.
    /// Not while it is behind, nor after a restart from its log: it says it
    /// serves once nothing is missing and it has applied a slot the leader
    /// sent since. (Caught up from another replica's state alone, the
    /// leader's link may not be up yet: the slots sent before it was are
    /// lost, and the clients waiting for them wait for the proposers' retry.)
    serving: bool,
    receiving: Option<Receiving>,
    /// Where what it applied is kept, if anywhere.
    log: Option<Log<Kept>>,
}

impl Replica {
    /// Replica `me` of `replicas`.
    pub fn new(me: ClusterId, replicas: usize) -> Self {
        Replica {
            me: u64::from(me.0),
            replicas: replicas.max(1) as u64,
            store: Store::default(),
            next_slot: 0,
            ahead: BTreeMap::new(),
            sessions: FxHashMap::default(),
            proposers: BTreeMap::new(),
            ended: BTreeMap::new(),
            checkpointed: 0,
            covering: BTreeSet::new(),
            kept: VecDeque::new(),
            heard: 0,
            asked: None,
            asks: 0,
            serving: true,
            receiving: None,
            log: None,
        }
    }

    /// Replica `me` of `replicas`, keeping what it applies in the log
    /// `replica` of `storage`, and reading back what an earlier run of it
    /// kept there. A log that cannot be read stops it: answering from part
    /// of the state would answer wrong.
    pub fn open(me: ClusterId, replicas: usize, storage: Storage) -> Self {
        let mut replica = Replica::new(me, replicas);
        let (log, kept) = super::open_log(&storage, "replica");
        let read_back = !kept.is_empty();
        for record in kept {
            match record {
                Kept::State {
                    at,
                    entries,
                    sessions,
                } => replica.install(at, entries.into_iter().collect(), sessions),
                Kept::Applied(slot, value) if slot == replica.next_slot => {
                    replica.apply_slot(&value, None);
                }
                Kept::Applied(..) => {}
            }
        }
        if read_back {
            eprintln!(
                "replica state read back from {}: every slot below {} applied, {} keys",
                log.describe(),
                replica.next_slot,
                replica.store.len()
            );
        }
        replica.log = Some(log);
        replica.serving = !read_back;
        replica
    }

    /// Its state as the log keeps it.
    fn kept_state(&self) -> Kept {
        Kept::State {
            at: self.next_slot,
            entries: self
                .store
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            sessions: self.session_states(),
        }
    }

    fn session_states(&self) -> Sessions {
        let open = self
            .sessions
            .iter()
            .map(|(client, session)| SessionState {
                client: *client,
                next_seq: session.next_seq,
                waiting: session.waiting.values().cloned().collect(),
                recent: session.recent.iter().cloned().collect(),
            })
            .collect();
        Sessions {
            open,
            proposers: self.proposers.iter().map(|(&p, &i)| (p, i)).collect(),
            ended: self
                .ended
                .iter()
                .map(|(&p, ended)| (p, ended.clone()))
                .collect(),
        }
    }

    /// Takes a whole state, as of slot `at`.
    fn install(&mut self, at: Slot, store: Store, sessions: Sessions) {
        self.store = store;
        self.proposers = sessions.proposers.into_iter().collect();
        self.ended = sessions.ended.into_iter().collect();
        self.sessions = sessions
            .open
            .into_iter()
            .map(|s| {
                let session = Session {
                    next_seq: s.next_seq,
                    waiting: s.waiting.into_iter().map(|c| (c.seq, c)).collect(),
                    recent: s.recent.into(),
                };
                (s.client, session)
            })
            .collect();
        self.next_slot = at;
        self.ahead = self.ahead.split_off(&at);
        self.checkpointed = at;
    }

    /// One tick's chosen slots and messages from other replicas; the
    /// answers, now and then a checkpoint, and what other replicas are sent.
    pub fn tick(&mut self, inputs: Vec<ToReplicaInput>) -> Vec<FromReplica> {
        let mut out = Vec::new();
        for input in inputs {
            match input {
                ToReplicaInput::Chosen(Chosen {
                    slot,
                    value,
                    sets_answered_by,
                }) => self.hold(slot, value, sets_answered_by),
                ToReplicaInput::Replica(from, ToReplica::Behind(slot)) => {
                    self.cover(u64::from(from.0), &mut out);
                    if self.next_slot > slot {
                        self.send_state(from, &mut out);
                    }
                }
                ToReplicaInput::Replica(from, ToReplica::Serving(applied)) => {
                    self.covering.remove(&u64::from(from.0));
                    self.heard = self.heard.max(applied);
                }
                ToReplicaInput::Membership(replica, Membership::Left) => {
                    self.cover(u64::from(replica.0), &mut out);
                }
                ToReplicaInput::Membership(replica, Membership::Joined) => {
                    // Linked again: it learns that this one serves. (Not
                    // said at start, nor by a replica that is not serving
                    // yet: it says so once it does.)
                    if self.serving && self.next_slot > 0 {
                        out.push(FromReplica::Replica(
                            replica,
                            ToReplica::Serving(self.next_slot),
                        ));
                    }
                }
                ToReplicaInput::Replica(
                    from,
                    ToReplica::State {
                        at,
                        part,
                        entries,
                        sessions,
                    },
                ) => self.receive_state(from, (at, part), entries, sessions),
            }
        }
        let applied_from = self.next_slot;
        while let Some((value, sets_answered_by)) = self.ahead.remove(&self.next_slot) {
            let slot = self.next_slot;
            let owner = slot % self.replicas;
            let (answers, retried) = self.apply_slot(&value, sets_answered_by);
            // A retry is answered by every replica: the one that answered it
            // first may be the reason it was retried.
            out.extend(retried.into_iter().map(answer));
            if let Some(log) = &mut self.log {
                log.append(&Kept::Applied(slot, value));
            }
            if owner == self.me || self.covering.contains(&owner) {
                out.extend(answers.into_iter().map(answer));
            } else {
                if self.kept.len() == KEPT_SLOTS {
                    self.kept.pop_front();
                }
                self.kept.push_back((slot, answers));
            }
        }
        self.ask_if_behind(self.next_slot > applied_from, &mut out);
        if self.next_slot / CHECKPOINT_EVERY > self.checkpointed / CHECKPOINT_EVERY {
            self.checkpointed = self.next_slot;
            // The log holds the slots applied since its last compaction:
            // replaced by the state as it is once they outweigh it.
            if self.log.as_ref().is_some_and(Log::worth_compacting) {
                self.compact_log();
            }
            out.push(FromReplica::Checkpoint(self.next_slot));
        }
        out
    }

    /// Holds chosen slot `slot` until the slots before it are applied: at
    /// most [`MAX_AHEAD`], the lowest. (So far behind, it catches up from
    /// another replica's state, which covers what it did not hold.)
    fn hold(&mut self, slot: Slot, value: Value, sets_answered_by: Option<Run>) {
        if slot < self.next_slot {
            return;
        }
        if self.ahead.len() >= MAX_AHEAD && !self.ahead.contains_key(&slot) {
            match self.ahead.last_key_value() {
                Some((&last, _)) if last > slot => {
                    self.ahead.remove(&last);
                }
                _ => return,
            }
        }
        self.ahead.entry(slot).or_insert((value, sets_answered_by));
    }

    /// Answers `replica`'s slots from now on, until it says it serves, and
    /// those of its recent slots that it may not have answered.
    fn cover(&mut self, replica: u64, out: &mut Vec<FromReplica>) {
        self.covering.insert(replica);
        let replicas = self.replicas;
        self.kept.retain_mut(|(slot, answers)| {
            if *slot % replicas != replica {
                return true;
            }
            out.extend(answers.drain(..).map(answer));
            false
        });
    }

    /// Asks another replica for its state, and the leader for the slots it
    /// chose lately, while this one is behind (slots after a missing one
    /// are held, or another said it applied further): at first, then every
    /// [`ASK_AGAIN`] ticks, each time the next replica (one at a time, so
    /// parts of two states never cross). Once nothing is missing and it
    /// `applied` a slot the leader sent, tells them all it serves.
    fn ask_if_behind(&mut self, applied: bool, out: &mut Vec<FromReplica>) {
        let behind = !self.ahead.is_empty() || self.heard > self.next_slot;
        if !behind {
            self.asked = None;
            if !self.serving && applied {
                self.serving = true;
                for other in self.others() {
                    out.push(FromReplica::Replica(
                        other,
                        ToReplica::Serving(self.next_slot),
                    ));
                }
            }
            return;
        }
        match &mut self.asked {
            Some(ticks) if *ticks < ASK_AGAIN => *ticks += 1,
            _ => {
                self.asked = Some(0);
                self.serving = false;
                // The leader, too, sends again the slots it chose lately
                // (what it missed may be missing at every replica).
                out.push(FromReplica::Behind(self.next_slot));
                if self.replicas > 1 {
                    let other = (self.me + 1 + self.asks % (self.replicas - 1)) % self.replicas;
                    self.asks += 1;
                    out.push(FromReplica::Replica(
                        ClusterId(other as u32),
                        ToReplica::Behind(self.next_slot),
                    ));
                }
            }
        }
    }

    fn others(&self) -> impl Iterator<Item = ClusterId> + use<> {
        let me = self.me;
        (0..self.replicas)
            .filter(move |&r| r != me)
            .map(|r| ClusterId(r as u32))
    }

    /// This replica's state, to `to`: keys and values in parts of about
    /// [`STATE_PART`] bytes, the sessions with the last.
    fn send_state(&self, to: ClusterId, out: &mut Vec<FromReplica>) {
        let mut entries = Vec::new();
        let mut bytes = 0;
        let mut part = 0;
        for (key, value) in &self.store {
            if bytes >= STATE_PART {
                out.push(FromReplica::Replica(
                    to,
                    ToReplica::State {
                        at: self.next_slot,
                        part,
                        entries: std::mem::take(&mut entries),
                        sessions: None,
                    },
                ));
                bytes = 0;
                part += 1;
            }
            bytes += key.len() + value.len() + 16;
            entries.push((key.clone(), value.clone()));
        }
        let sessions = self.session_states();
        out.push(FromReplica::Replica(
            to,
            ToReplica::State {
                at: self.next_slot,
                part,
                entries,
                sessions: Some(sessions),
            },
        ));
    }

    /// Part `part` of `from`'s state as of `at`; with the last part, it
    /// replaces this replica's, if it is further on. Part 0 starts a state
    /// afresh; a part out of order (one was lost with a link) drops it.
    fn receive_state(
        &mut self,
        from: ClusterId,
        (at, part): (Slot, u32),
        entries: Vec<(Vec<u8>, Vec<u8>)>,
        sessions: Option<Sessions>,
    ) {
        if at <= self.next_slot {
            return;
        }
        let receiving = match &mut self.receiving {
            Some(r) if (r.from, r.at, r.part) == (from, at, part) => r,
            _ if part == 0 => self.receiving.insert(Receiving {
                from,
                at,
                part,
                store: Store::default(),
            }),
            _ => {
                self.receiving = None;
                return;
            }
        };
        receiving.store.extend(entries);
        receiving.part += 1;
        let Some(sessions) = sessions else {
            return;
        };
        let Receiving { store, .. } = self.receiving.take().expect("receiving above");
        self.install(at, store, sessions);
        self.compact_log();
    }

    /// Replaces the log by the state as it is.
    fn compact_log(&mut self) {
        if let Some(mut log) = self.log.take() {
            log.compact([&self.kept_state()]);
            self.log = Some(log);
        }
    }

    /// Applies the commands of slot `next_slot`, and moves on to the next:
    /// their answers, and the answers of retries among them, but for the
    /// `SET`s of clients of the run that answered them (`sets_answered_by`).
    fn apply_slot(
        &mut self,
        value: &Value,
        sets_answered_by: Option<Run>,
    ) -> (Vec<Answer>, Vec<Answer>) {
        let commands = read_slot(value).unwrap_or_else(|e| {
            // Not made by a leader of this build (the handshake compares
            // the value's shape): a log applied without it would differ
            // from the other replica's, so this one stops.
            eprintln!(
                "error: slot {} was chosen with a value that does not decode: {e}",
                self.next_slot
            );
            std::process::exit(1);
        });
        let mut answers = Vec::with_capacity(commands.len());
        let mut retried = Vec::new();
        // A client's commands come in runs (its pipeline, proposed together):
        // its proposer's run and its session are looked up once a run. (An
        // `EndSession` is a run of its own.)
        let ends = |c: &CommandRef| matches!(c.op, OpRef::EndSession);
        for run in commands.chunk_by(|a, b| a.client == b.client && !ends(a) && !ends(b)) {
            self.execute(run, sets_answered_by, &mut answers, &mut retried);
        }
        self.next_slot += 1;
        (answers, retried)
    }

    /// Applies `commands`, a run of one client's, each once, and says their
    /// answers (and those of the client's commands that waited for them),
    /// but for `SET`s the run `sets_answered_by` answered; to a retry of a
    /// command applied, that one's answer again (to `retried`).
    fn execute(
        &mut self,
        commands: &[CommandRef],
        sets_answered_by: Option<Run>,
        out: &mut Vec<Answer>,
        retried: &mut Vec<Answer>,
    ) {
        let client = commands[0].client;
        let newest = self
            .proposers
            .entry(client.proposer)
            .or_insert(client.incarnation);
        if client.incarnation < *newest {
            // From an earlier run of its proposer, chosen late (it was in a
            // leader's hands when that run died): its client is gone, and
            // so is its session. Dropped, at the same slot everywhere.
            return;
        }
        if client.incarnation > *newest {
            *newest = client.incarnation;
            self.sessions.retain(|c, _| {
                c.proposer != client.proposer || c.incarnation >= client.incarnation
            });
            self.ended.remove(&client.proposer);
        }
        if let [CommandRef {
            op: OpRef::EndSession,
            seq,
            ..
        }] = commands
        {
            // Chosen after every command of its client: the session ends
            // here, at the same slot at every replica (with any command that
            // waited for one never chosen). Said again if chosen again.
            self.sessions.remove(&client);
            self.ended
                .entry(client.proposer)
                .or_default()
                .insert(client.session);
            out.push(Answer {
                client,
                seq: *seq,
                reply: Reply::Ok,
            });
            return;
        }
        let session = match self.sessions.entry(client) {
            hash_map::Entry::Occupied(open) => open.into_mut(),
            hash_map::Entry::Vacant(_)
                if self
                    .ended
                    .get(&client.proposer)
                    .is_some_and(|ended| ended.contains(client.session)) =>
            {
                // A copy that outlived its session (`Ended`): chosen after
                // its end, and dropped there, at the same slot everywhere,
                // unanswered (its client is gone).
                return;
            }
            hash_map::Entry::Vacant(new) => new.insert(Session::default()),
        };
        let sets_answered = sets_answered_by == Some((client.proposer, client.incarnation));
        for command in commands {
            let answered = sets_answered && matches!(command.op, OpRef::Set(..));
            if command.seq < session.next_seq {
                // A retry of an applied command: the same answer again.
                let recent = session.recent.iter().find(|(s, _)| *s == command.seq);
                if let Some((_, reply)) = recent.filter(|_| !answered) {
                    retried.push(Answer {
                        client,
                        seq: command.seq,
                        reply: reply.clone(),
                    });
                }
                continue;
            }
            if command.seq > session.next_seq {
                session.waiting.insert(command.seq, command.to_owned());
                continue;
            }
            let store = &mut self.store;
            session.apply(store, (client, command.seq), &command.op, answered, out);
            // Only this slot's command may have been answered: those that
            // waited for it came in earlier slots.
            while let Some(waited) = session.waiting.remove(&session.next_seq) {
                let op = OpRef::of(&waited.op);
                session.apply(store, (client, waited.seq), &op, false, out);
            }
        }
    }
}

/// An answer, to the proposer that holds its client.
fn answer(answer: Answer) -> FromReplica {
    FromReplica::Answer(ClusterId(answer.client.proposer), answer)
}

/// Runs `op` on `store`: its reply.
fn run(store: &mut Store, op: &OpRef) -> Reply {
    match op {
        // Handled with the sessions, in `execute`.
        OpRef::EndSession => Reply::Ok,
        OpRef::Set(key, value) => {
            // A key set again keeps its allocations: only new ones are copied.
            match store.get_mut(*key) {
                Some(kept) => {
                    kept.clear();
                    kept.extend_from_slice(value);
                }
                None => {
                    store.insert(key.to_vec(), value.to_vec());
                }
            }
            Reply::Ok
        }
        OpRef::Get(key) => Reply::Bulk(store.get(*key).cloned()),
        OpRef::Del(keys) => {
            Reply::Integer(keys.iter().filter(|k| store.remove(**k).is_some()).count() as i64)
        }
    }
}

/// The commands of a slot's `value`, borrowed from its bytes.
fn read_slot(value: &Value) -> Result<Vec<CommandRef<'_>>, String> {
    let entries: Vec<EntryRef> = value.decode_borrowed().map_err(|e| e.to_string())?;
    let mut client = None;
    let mut commands = Vec::with_capacity(entries.len());
    for entry in entries {
        match entry {
            EntryRef::Client(c) => client = Some(c),
            EntryRef::Command(seq, op) => {
                let client = client.ok_or("a command before any client")?;
                commands.push(CommandRef { client, seq, op });
            }
        }
    }
    Ok(commands)
}

/// `value`'s commands, owned; `None` if it holds a command before any
/// client (it was not made by a [`ValueBuilder`](super::ValueBuilder)).
#[cfg(test)]
pub(crate) fn commands_of(value: &Value) -> Option<Vec<Command>> {
    let commands = read_slot(value).ok()?;
    Some(commands.iter().map(CommandRef::to_owned).collect())
}

/// An [`Entry`](super::Entry) as a replica reads it: keys and values
/// borrowed from the slot's bytes, copied only into the store (and for a
/// command that waits for an earlier one). It must decode what `Entry`
/// encodes: a test checks every variant.
#[derive(Debug, Deserialize)]
enum EntryRef<'a> {
    Client(ClientId),
    Command(u64, #[serde(borrow)] OpRef<'a>),
}

/// A [`Command`] read from a slot, borrowed.
#[derive(Debug)]
struct CommandRef<'a> {
    client: ClientId,
    seq: u64,
    op: OpRef<'a>,
}

/// An [`Op`], borrowed: variant for variant.
#[derive(Debug, Deserialize)]
enum OpRef<'a> {
    Set(&'a [u8], &'a [u8]),
    Get(&'a [u8]),
    #[serde(borrow)]
    Del(Vec<&'a [u8]>),
    EndSession,
}

impl<'a> OpRef<'a> {
    fn of(op: &'a Op) -> OpRef<'a> {
        match op {
            Op::Set(key, value) => OpRef::Set(key, value),
            Op::Get(key) => OpRef::Get(key),
            Op::Del(keys) => OpRef::Del(keys.iter().map(Vec::as_slice).collect()),
            Op::EndSession => OpRef::EndSession,
        }
    }
}

impl CommandRef<'_> {
    fn to_owned(&self) -> Command {
        let op = match &self.op {
            OpRef::Set(key, value) => Op::Set(key.to_vec(), value.to_vec()),
            OpRef::Get(key) => Op::Get(key.to_vec()),
            OpRef::Del(keys) => Op::Del(keys.iter().map(|k| k.to_vec()).collect()),
            OpRef::EndSession => Op::EndSession,
        };
        Command {
            client: self.client,
            seq: self.seq,
            op,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Entry, ValueBuilder};
    use super::*;

    const CLIENT: ClientId = ClientId {
        proposer: 1,
        incarnation: 7,
        connection: 3,
        session: 0,
    };

    fn chosen(slot: Slot, commands: &[(u64, Op)]) -> ToReplicaInput {
        chosen_for(CLIENT, slot, commands)
    }

    fn chosen_for(client: ClientId, slot: Slot, commands: &[(u64, Op)]) -> ToReplicaInput {
        let value: Vec<Command> = commands
            .iter()
            .map(|(seq, op)| Command {
                client,
                seq: *seq,
                op: op.clone(),
            })
            .collect();
        ToReplicaInput::Chosen(Chosen {
            slot,
            value: ValueBuilder::value_of(&value),
            sets_answered_by: None,
        })
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
    fn a_slot_read_borrowed_holds_the_commands_it_was_made_of() {
        // `EntryRef` must decode what `Entry` encodes, variant for variant.
        let commands: Vec<Command> = [
            set("key", "value"),
            Op::Get(b"key".to_vec()),
            Op::Del(vec![b"a".to_vec(), Vec::new(), vec![7; 300]]),
            Op::EndSession,
            Op::Set(vec![1; 70_000], Vec::new()),
        ]
        .into_iter()
        .enumerate()
        .map(|(seq, op)| Command {
            // Two clients, each with a run of commands, then the first again.
            client: ClientId {
                proposer: 2,
                incarnation: u64::MAX - 1,
                connection: [1 << 40, 1 << 40, 3, 3, 1 << 40][seq],
                session: 0,
            },
            seq: seq as u64 * 1000,
            op,
        })
        .collect();
        let value = ValueBuilder::value_of(&commands);
        let read = read_slot(&value).unwrap();
        let owned: Vec<Command> = read.iter().map(CommandRef::to_owned).collect();
        assert_eq!(owned, commands);
        assert_eq!(commands_of(&value), Some(commands));
        // Three clients' ids in it, one for each run.
        let entries = value.decode().unwrap();
        let clients = entries.iter().filter(|e| matches!(e, Entry::Client(_)));
        assert_eq!(clients.count(), 3);
        let headless = Value::new(&vec![Entry::Command(0, Op::EndSession)]);
        assert_eq!(
            read_slot(&headless).unwrap_err(),
            "a command before any client"
        );
        assert_eq!(commands_of(&headless), None);
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
    fn sets_the_leader_answered_are_applied_and_not_answered_again() {
        let mut r = Replica::new(ClusterId(0), 1);
        let answered_by = |input: ToReplicaInput, run: Run| match input {
            ToReplicaInput::Chosen(chosen) => ToReplicaInput::Chosen(Chosen {
                sets_answered_by: Some(run),
                ..chosen
            }),
            _ => unreachable!("chosen"),
        };
        let by_the_client_s = (CLIENT.proposer, CLIENT.incarnation);
        let commands = [(0, set("k", "a")), (1, Op::Get(b"k".to_vec()))];
        let out = r.tick(vec![answered_by(chosen(0, &commands), by_the_client_s)]);
        assert_eq!(answers(&out), vec![(1, Reply::Bulk(Some(b"a".to_vec())))]);
        // Not for another run's clients (a leader answers only its own).
        let out = r.tick(vec![answered_by(
            chosen(1, &[(2, set("k", "b"))]),
            (CLIENT.proposer + 1, 1),
        )]);
        assert_eq!(answers(&out), vec![(2, Reply::Ok)]);
        // A retry chosen in a slot of no such leader is answered as ever.
        let out = r.tick(vec![chosen(2, &[(0, set("k", "a"))])]);
        assert_eq!(answers(&out), vec![(0, Reply::Ok)]);
        assert_eq!(r.store[&b"k".to_vec()], b"b".to_vec(), "applied once");
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

    #[test]
    fn a_later_run_of_a_proposer_ends_its_earlier_runs_sessions_and_commands() {
        let mut r = Replica::new(ClusterId(0), 1);
        r.tick(vec![chosen(0, &[(0, set("k", "a"))])]);
        assert_eq!(r.sessions.len(), 1);
        // Proposer 1 restarted (a later incarnation): its first command
        // ends the sessions of the run before.
        let later = ClientId {
            incarnation: CLIENT.incarnation + 1,
            ..CLIENT
        };
        let command = |client, seq, op| Command { client, seq, op };
        let out = r.tick(vec![ToReplicaInput::Chosen(Chosen {
            slot: 1,
            value: ValueBuilder::value_of(&[command(later, 0, set("k", "b"))]),
            sets_answered_by: None,
        })]);
        assert_eq!(answers(&out), vec![(0, Reply::Ok)]);
        assert_eq!(r.sessions.keys().collect::<Vec<_>>(), vec![&later]);
        // A command of the earlier run chosen late: dropped, unanswered.
        let out = r.tick(vec![chosen(2, &[(1, set("k", "late"))])]);
        assert!(answers(&out).is_empty());
        assert_eq!(r.store[&b"k".to_vec()], b"b".to_vec());
        assert_eq!(r.sessions.len(), 1);
    }

    /// A copy of a command chosen after its session's end (forwarded to a
    /// leader and held up in the network while its proposer proposed it
    /// itself, say) is dropped: applied, it would begin the session again
    /// and run the command twice. Also where the state went to another
    /// replica, or into the log, in between.
    #[test]
    fn a_command_chosen_after_its_session_ended_is_dropped() {
        let mut r = Replica::new(ClusterId(0), 1);
        r.tick(vec![chosen(0, &[(0, set("k", "old"))])]);
        let out = r.tick(vec![chosen(1, &[(1, Op::EndSession)])]);
        assert_eq!(answers(&out), vec![(1, Reply::Ok)]);
        // The proposer's next session writes, then the old one's copy comes.
        let next = ClientId {
            connection: CLIENT.connection + 1,
            session: CLIENT.session + 1,
            ..CLIENT
        };
        r.tick(vec![chosen_for(next, 2, &[(0, set("k", "new"))])]);
        let Kept::State {
            at,
            entries,
            sessions,
        } = r.kept_state()
        else {
            unreachable!("a state")
        };
        let mut given = Replica::new(ClusterId(0), 1);
        given.install(at, entries.into_iter().collect(), sessions);
        for replica in [&mut r, &mut given] {
            let out = replica.tick(vec![chosen(3, &[(0, set("k", "old"))])]);
            assert!(answers(&out).is_empty(), "not answered");
            assert_eq!(
                replica.store[&b"k".to_vec()],
                b"new".to_vec(),
                "not applied"
            );
            assert!(!replica.sessions.contains_key(&CLIENT), "no session begun");
        }
        // A later run of the proposer numbers its sessions afresh.
        let reborn = ClientId {
            incarnation: CLIENT.incarnation + 1,
            ..CLIENT
        };
        let out = r.tick(vec![chosen_for(reborn, 4, &[(0, set("k", "reborn"))])]);
        assert_eq!(answers(&out), vec![(0, Reply::Ok)]);
        assert_eq!(r.store[&b"k".to_vec()], b"reborn".to_vec());
    }

    /// What `from` sends other replicas, as they receive it.
    fn to_replicas(from: u32, out: Vec<FromReplica>) -> Vec<(u32, ToReplicaInput)> {
        out.into_iter()
            .filter_map(|o| match o {
                FromReplica::Replica(to, m) => {
                    Some((to.0, ToReplicaInput::Replica(ClusterId(from), m)))
                }
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_replica_that_missed_slots_takes_the_state_of_another_and_goes_on() {
        let mut ahead = Replica::new(ClusterId(0), 2);
        let mut behind = Replica::new(ClusterId(1), 2);
        // Values big enough for the state to go in several parts.
        let big = "v".repeat(STATE_PART / 3);
        for slot in 0..6 {
            let key = format!("k{slot}");
            ahead.tick(vec![chosen(slot, &[(slot, set(&key, &big))])]);
        }
        // The replica behind (restarted empty) gets slot 6 only: it asks.
        let out = behind.tick(vec![chosen(6, &[(6, Op::Get(b"k5".to_vec()))])]);
        assert!(answers(&out).is_empty(), "slots 0 to 5 are missing");
        let asked = to_replicas(1, out);
        assert!(
            matches!(
                asked[..],
                [(0, ToReplicaInput::Replica(_, ToReplica::Behind(0)))]
            ),
            "{asked:?}"
        );
        // It is sent the state in parts, then answers slot 6 from it.
        let sent = to_replicas(0, ahead.tick(asked.into_iter().map(|(_, m)| m).collect()));
        assert!(sent.len() > 1, "one part");
        let out = behind.tick(sent.into_iter().map(|(_, m)| m).collect());
        assert_eq!(answers(&out), vec![]);
        // Slot 6 is replica 0's to answer; a retry of command 6 and a read
        // of every key show the state taken whole.
        let mut reads: Vec<(u64, Op)> = vec![(6, Op::Get(b"k5".to_vec()))];
        reads.extend((0..6).map(|k| (7 + k, Op::Get(format!("k{k}").into_bytes()))));
        let out = behind.tick(vec![chosen(7, &reads)]);
        let mut expected = vec![(6, Reply::Bulk(Some(big.clone().into_bytes())))];
        expected.extend((0..6).map(|k| (7 + k, Reply::Bulk(Some(big.clone().into_bytes())))));
        assert_eq!(answers(&out), expected);
    }

    #[test]
    fn a_state_missing_a_part_is_not_taken() {
        let mut ahead = Replica::new(ClusterId(0), 2);
        let mut behind = Replica::new(ClusterId(1), 2);
        let big = "v".repeat(STATE_PART / 3);
        for slot in 0..6 {
            ahead.tick(vec![chosen(
                slot,
                &[(slot, set(&format!("k{slot}"), &big))],
            )]);
        }
        behind.tick(vec![chosen(6, &[(6, Op::Get(b"k0".to_vec()))])]);
        let mut sent = to_replicas(
            0,
            ahead.tick(vec![ToReplicaInput::Replica(
                ClusterId(1),
                ToReplica::Behind(0),
            )]),
        );
        sent.remove(1);
        behind.tick(sent.into_iter().map(|(_, m)| m).collect());
        let out = behind.tick(vec![chosen(7, &[(7, Op::Get(b"k0".to_vec()))])]);
        assert_eq!(
            answers(&out),
            vec![],
            "answered from a state with a part lost"
        );
    }

    #[test]
    fn the_slots_of_a_replica_lost_or_behind_are_answered_by_another_until_it_serves() {
        // Replica 0's view; slots alternate between replica 0 and replica 1.
        let mut zero = Replica::new(ClusterId(0), 2);
        let one = ClusterId(1);
        let get = |seq| (seq, Op::Get(b"k".to_vec()));
        zero.tick(vec![chosen(0, &[(0, set("k", "v"))])]);
        assert_eq!(answers(&zero.tick(vec![chosen(1, &[get(1)])])), vec![]);
        // Replica 1 lost: slot 1 (its own, which it may not have answered)
        // is answered at once, and its slots after it here.
        let lost = ToReplicaInput::Membership(one, Membership::Left);
        let v = Reply::Bulk(Some(b"v".to_vec()));
        assert_eq!(
            answers(&zero.tick(vec![lost, chosen(3, &[get(2)]), chosen(2, &[])])),
            vec![(1, v.clone()), (2, v.clone())]
        );
        // Back, and behind: still answered here, with the state sent.
        let back = ToReplicaInput::Membership(one, Membership::Joined);
        let behind = ToReplicaInput::Replica(one, ToReplica::Behind(0));
        let out = zero.tick(vec![back, behind, chosen(5, &[get(3)]), chosen(4, &[])]);
        assert_eq!(answers(&out), vec![(3, v.clone())]);
        assert!(!to_replicas(0, out).is_empty(), "no state sent");
        // Serving again: its slots are its own.
        let serving = ToReplicaInput::Replica(one, ToReplica::Serving(8));
        assert_eq!(
            answers(&zero.tick(vec![serving, chosen(7, &[get(4)]), chosen(6, &[])])),
            vec![]
        );
    }

    #[test]
    fn a_replica_back_on_an_idle_store_catches_up_from_what_another_says() {
        let mut zero = Replica::new(ClusterId(0), 2);
        let mut one = Replica::new(ClusterId(1), 2);
        for slot in 0..4 {
            zero.tick(vec![chosen(slot, &[(slot, set(&format!("k{slot}"), "v"))])]);
        }
        // Replica 1 comes back empty; no slot is chosen meanwhile.
        let hello = to_replicas(
            0,
            zero.tick(vec![ToReplicaInput::Membership(
                ClusterId(1),
                Membership::Joined,
            )]),
        );
        let asked = to_replicas(1, one.tick(hello.into_iter().map(|(_, m)| m).collect()));
        let sent = to_replicas(0, zero.tick(asked.into_iter().map(|(_, m)| m).collect()));
        // Caught up, but it says it serves only once the leader's slots
        // reach it (its link with the leader may not be up yet).
        let said = to_replicas(1, one.tick(sent.into_iter().map(|(_, m)| m).collect()));
        assert!(said.is_empty(), "{said:?}");
        // Alone, it answers from the state taken, and says it serves.
        let out = one.tick(vec![
            ToReplicaInput::Membership(ClusterId(0), Membership::Left),
            chosen(4, &[(4, Op::Get(b"k3".to_vec()))]),
        ]);
        assert_eq!(answers(&out), vec![(4, Reply::Bulk(Some(b"v".to_vec())))]);
        let said = to_replicas(1, out);
        assert!(
            matches!(
                said[..],
                [(0, ToReplicaInput::Replica(_, ToReplica::Serving(5)))]
            ),
            "{said:?}"
        );
    }

    #[test]
    fn replicas_checkpoint_at_the_same_slots_however_their_ticks_group_them() {
        // One replica gets a slot a tick, the other three: their checkpoints
        // stay within a tick of each multiple, so the acceptors' watermark
        // moves once for both.
        let checkpoints = |per_tick: u64| -> Vec<Slot> {
            let mut r = Replica::new(ClusterId(0), 2);
            let mut said = Vec::new();
            for first in (0..3 * CHECKPOINT_EVERY + 7).step_by(per_tick as usize) {
                let slots = (first..first + per_tick)
                    .map(|slot| chosen(slot, &[(slot, set("k", "v"))]))
                    .collect();
                said.extend(r.tick(slots).into_iter().filter_map(|o| match o {
                    FromReplica::Checkpoint(slot) => Some(slot),
                    _ => None,
                }));
            }
            said
        };
        let multiples = [1, 2, 3].map(|k| k * CHECKPOINT_EVERY);
        for (per_tick, said) in [(1, checkpoints(1)), (3, checkpoints(3))] {
            assert_eq!(said.len(), 3, "{said:?}");
            for (slot, multiple) in said.iter().zip(multiples) {
                assert!((multiple..multiple + per_tick).contains(slot), "{said:?}");
            }
        }
    }

    #[test]
    fn a_restarted_replica_reads_back_what_it_applied_and_goes_on() {
        use weir::durable::{Durability, MemoryDisk, Storage};
        let disk = MemoryDisk::new();
        let storage = Storage::on(disk.clone(), Durability::Sync);
        let mut r = Replica::open(ClusterId(0), 1, storage.clone());
        // Past a checkpoint (the log compacted to the state), and a few after.
        let last = CHECKPOINT_EVERY + 5;
        for slot in 0..last {
            r.tick(vec![chosen(slot, &[(slot, set("k", &slot.to_string()))])]);
            storage.commit().unwrap();
        }
        drop((r, storage));
        let mut again = Replica::open(ClusterId(0), 1, Storage::on(disk, Durability::Sync));
        let out = again.tick(vec![chosen(
            last,
            &[
                (last - 1, set("k", "again")),
                (last, Op::Get(b"k".to_vec())),
            ],
        )]);
        // The retry is answered from the session read back, not applied again.
        let value = (last - 1).to_string().into_bytes();
        assert_eq!(
            answers(&out),
            vec![(last - 1, Reply::Ok), (last, Reply::Bulk(Some(value)))]
        );
    }

    #[test]
    fn a_large_store_is_rewritten_no_more_often_than_as_many_bytes_of_slots_are_logged() {
        use weir::durable::{Durability, MemoryDisk, Storage, Writes};
        let disk = MemoryDisk::new();
        let storage = Storage::on(disk.clone(), Durability::Sync);
        let mut r = Replica::open(ClusterId(0), 1, storage.clone());
        // Slot 0 fills the store with 2000 keys of 100 bytes; then small
        // SETs of one key, past three checkpoints.
        let big: Vec<(u64, Op)> = (0..2000)
            .map(|seq| (seq, set(&format!("key {seq}"), &"v".repeat(100))))
            .collect();
        let last = 3 * CHECKPOINT_EVERY + 5;
        for slot in 0..last {
            let commands = match slot {
                0 => big.clone(),
                _ => vec![(1999 + slot, set("k", &slot.to_string()))],
            };
            r.tick(vec![chosen(slot, &commands)]);
            storage.commit().unwrap();
        }
        let Writes {
            appended,
            rewritten,
        } = disk.writes("replica.log");
        assert!(rewritten > 0, "compacted at the first checkpoint");
        assert!(rewritten <= appended, "{rewritten} > {appended}");
        drop((r, storage));
        let mut again = Replica::open(ClusterId(0), 1, Storage::on(disk, Durability::Sync));
        let gets = [
            (1999 + last, Op::Get(b"k".to_vec())),
            (2000 + last, Op::Get(b"key 7".to_vec())),
        ];
        let out = again.tick(vec![chosen(last, &gets)]);
        assert_eq!(
            answers(&out),
            vec![
                (
                    1999 + last,
                    Reply::Bulk(Some((last - 1).to_string().into_bytes()))
                ),
                (2000 + last, Reply::Bulk(Some("v".repeat(100).into_bytes()))),
            ]
        );
    }

    #[test]
    fn a_replica_back_from_its_log_says_it_serves_only_once_it_applied_a_slot_chosen_since() {
        use weir::durable::{Durability, MemoryDisk, Storage};
        let disk = MemoryDisk::new();
        let storage = Storage::on(disk.clone(), Durability::Sync);
        let mut zero = Replica::open(ClusterId(0), 2, storage.clone());
        for slot in 0..4 {
            zero.tick(vec![chosen(slot, &[(slot, set("k", "v"))])]);
            storage.commit().unwrap();
        }
        drop((zero, storage));
        let mut zero = Replica::open(ClusterId(0), 2, Storage::on(disk, Durability::Sync));
        let said = |out: Vec<FromReplica>| -> Vec<ToReplicaInput> {
            to_replicas(0, out).into_iter().map(|(_, m)| m).collect()
        };
        let serves = |said: &[ToReplicaInput]| {
            said.iter()
                .any(|m| matches!(m, ToReplicaInput::Replica(_, ToReplica::Serving(_))))
        };
        // Linked with replica 1 before any slot reached it: slots may have
        // been chosen while it was down, so it does not say it serves (replica
        // 1 goes on answering its slots).
        let linked = said(zero.tick(vec![ToReplicaInput::Membership(
            ClusterId(1),
            Membership::Joined,
        )]));
        assert!(!serves(&linked), "{linked:?}");
        // Slots 4 and 5 were chosen while it was down: it is behind, and asks.
        let out = said(zero.tick(vec![chosen(6, &[(6, set("k", "w"))])]));
        assert!(!serves(&out), "{out:?}");
        assert!(
            matches!(out[..], [ToReplicaInput::Replica(_, ToReplica::Behind(4))]),
            "{out:?}"
        );
        // With the missing slots applied, nothing is missing: it serves.
        let out = said(zero.tick(vec![chosen(4, &[]), chosen(5, &[])]));
        assert!(serves(&out), "{out:?}");
    }

    #[test]
    fn a_session_ends_where_its_end_is_chosen_and_only_then() {
        let mut r = Replica::new(ClusterId(0), 1);
        r.tick(vec![chosen(0, &[(0, set("k", "a")), (1, set("k", "b"))])]);
        assert_eq!(r.sessions.len(), 1);
        // Command 3 waits for command 2, which was never chosen: the end
        // of the session drops it too.
        r.tick(vec![chosen(1, &[(3, set("k", "c"))])]);
        let out = r.tick(vec![chosen(2, &[(4, Op::EndSession)])]);
        assert_eq!(answers(&out), vec![(4, Reply::Ok)]);
        assert!(r.sessions.is_empty());
        // Chosen again (sent again after a lost answer): said again, nothing made.
        let out = r.tick(vec![chosen(3, &[(4, Op::EndSession)])]);
        assert_eq!(answers(&out), vec![(4, Reply::Ok)]);
        assert!(r.sessions.is_empty());
    }
}
