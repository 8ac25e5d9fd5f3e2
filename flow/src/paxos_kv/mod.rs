//! A replicated key-value store on Multi-Paxos that Redis clients use.
//!
//! Roles: `proposer` (f+1; each serves clients in RESP, one of them leads),
//! `acceptor` (2f+1; they vote, so f may fail) and `replica` (f+1; they apply
//! the chosen commands in slot order and answer). A `SET` is answered once it
//! is chosen (on f+1 acceptors): by the leader, for its own clients, else by
//! the replica that applied it; a `GET` goes through the log too, so every
//! read is linearizable.
//!
//! Each role is a state machine of plain Rust ([`proposer`], [`acceptor`],
//! [`replica`]) fed one tick's messages at a time, so a tick's client commands
//! form one slot and a tick's messages leave in one frame per peer. Every edge
//! is tolerant: instances may die and come back, and the rest go on.

pub mod acceptor;
pub mod auth;
mod connection;
pub mod ended;
pub mod proposer;
pub mod replica;
pub mod request;
pub mod resp;

use resp::Reply;
use serde::{Deserialize, Serialize};
use std::time::Duration;
use weir::*;

/// A higher `number` wins; ties go to the higher proposer, then to its later
/// run. The run is what keeps a proposer restarted before anyone else stood
/// (it knows no ballot, so it stands with number 1 again) from proposing
/// under a ballot its earlier run used: an acceptor that kept the earlier
/// run's value for a slot would hold it under the same ballot as the value
/// chosen there after, and a later leader could take either.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
pub struct Ballot {
    pub number: u64,
    pub proposer: u32,
    pub incarnation: u64,
}

impl Ballot {
    /// Proposer `proposer`'s (in its run `incarnation`) ballot above `seen`.
    pub fn above(seen: Ballot, proposer: u32, incarnation: u64) -> Ballot {
        Ballot {
            number: seen.number + 1,
            proposer,
            incarnation,
        }
    }

    /// Proposer `proposer`'s ballot `number`, in its first run.
    #[cfg(test)]
    pub fn of(number: u64, proposer: u32) -> Ballot {
        Ballot {
            number,
            proposer,
            incarnation: 1,
        }
    }
}

/// `(1, 0) of run 1765432100000000`: the number and the proposer, then the run.
impl std::fmt::Display for Ballot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Ballot {
            number,
            proposer,
            incarnation,
        } = self;
        write!(f, "({number}, {proposer}) of run {incarnation}")
    }
}

/// A position in the log.
pub type Slot = u64;
/// The commands chosen for one slot (a leader's tick of them); empty is a
/// no-op. Encoded once, by the leader that proposes them: acceptors keep,
/// log and give back those bytes, the leader sends them again as they are,
/// and only replicas decode them.
///
/// Written as [`Entry`]s, each client's id once before its commands: a
/// pipeline's commands are proposed together, and share it. Made with
/// [`ValueBuilder`].
pub type Value = Encoded<Vec<Entry>>;

/// A part of a slot's [`Value`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Entry {
    /// The client of the commands that follow, up to the next client.
    Client(ClientId),
    /// A command of that client: its number and what it does.
    Command(u64, Op),
}

/// [`Entry`] borrowing its parts, to encode a command without a copy: it
/// encodes as `Entry` does (`ValueBuilder`'s test reads it back).
#[derive(Serialize)]
enum EntryOf<'a> {
    Client(&'a ClientId),
    Command(u64, &'a Op),
}

/// A slot's [`Value`], encoded command by command as they come.
#[derive(Default)]
pub struct ValueBuilder {
    entries: EncodedVec<Entry>,
    /// The client of the last command pushed.
    client: Option<ClientId>,
    /// The commands pushed.
    commands: usize,
}

impl ValueBuilder {
    pub fn push(&mut self, command: &Command) {
        if self.client != Some(command.client) {
            self.entries.push_twin(&EntryOf::Client(&command.client));
            self.client = Some(command.client);
        }
        self.entries
            .push_twin(&EntryOf::Command(command.seq, &command.op));
        self.commands += 1;
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The commands pushed.
    pub fn len(&self) -> usize {
        self.commands
    }

    /// Forgets the commands pushed.
    pub fn clear(&mut self) {
        self.entries.clear();
        self.client = None;
        self.commands = 0;
    }

    /// The value of the commands pushed; starts afresh.
    pub fn take(&mut self) -> Value {
        self.client = None;
        self.commands = 0;
        self.entries.take()
    }

    /// The value of `commands`.
    pub fn value_of<'a>(commands: impl IntoIterator<Item = &'a Command>) -> Value {
        let mut builder = ValueBuilder::default();
        commands.into_iter().for_each(|c| builder.push(c));
        builder.take()
    }
}

/// What an acceptor has accepted: each slot's ballot and value.
pub type Accepted = Vec<(Slot, Ballot, Value)>;

/// How often each role's clock ticks: heartbeats, timeouts and retries are
/// counted in these.
pub const CLOCK: Duration = Duration::from_millis(50);

/// One client connection, across the run of every proposer: the proposer,
/// its incarnation (a restarted proposer numbers its connections afresh), the
/// connection (the runtime's number: where answers go), and its session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ClientId {
    pub proposer: u32,
    pub incarnation: u64,
    pub connection: u64,
    /// The proposer's run numbers the sessions of its connections from 0, in
    /// the order of their first commands, without gaps (a connection that
    /// sends none has none): so replicas can keep which sessions ended as a
    /// few ranges ([`ended::Ended`]).
    pub session: u64,
}

/// A client's request for the log. `seq` counts the client's commands from 0:
/// a retried command keeps its number, and replicas apply each number once.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Command {
    pub client: ClientId,
    pub seq: u64,
    pub op: Op,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Op {
    // Keys and values as bytes: serde would take them apart (and put them
    // together) byte by byte.
    Set(
        #[serde(with = "serde_bytes")] Vec<u8>,
        #[serde(with = "serde_bytes")] Vec<u8>,
    ),
    Get(#[serde(with = "serde_bytes")] Vec<u8>),
    Del(Vec<Vec<u8>>),
    /// The client's connection closed: replicas forget its session here.
    /// Its proposer sends it last, after every command of the client, and
    /// sends none of them after it: so none is chosen after it (docs/PAXOS_KV.md,
    /// "Sessions").
    EndSession,
}

/// From a proposer to the acceptors (a new slot's accept to a majority of them).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ToAcceptor {
    /// Phase 1a.
    Prepare(Ballot),
    /// Phase 2a.
    Accept {
        ballot: Ballot,
        slot: Slot,
        value: Value,
    },
}

/// From an acceptor to one proposer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum FromAcceptor {
    /// Phase 1b: the acceptor promised `ballot`, and had accepted these.
    Promise {
        ballot: Ballot,
        accepted: Accepted,
        /// Slots below it are applied by every replica and forgotten.
        watermark: Slot,
    },
    /// Phase 2b.
    Accepted { ballot: Ballot, slot: Slot },
    /// A prepare or accept refused: the acceptor has promised a higher ballot.
    Rejected { promised: Ballot },
}

/// Between proposers.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ToProposer {
    /// From the leader, every clock tick.
    Heartbeat(Ballot),
    /// Commands of a proposer's clients, for the leader to propose.
    Forward(Vec<Command>),
}

/// From the leader to every replica: a slot's value is chosen.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Chosen {
    pub slot: Slot,
    pub value: Value,
    /// The leader's run, when it answered its own clients' `SET`s in this
    /// slot itself as it saw the slot chosen: replicas do not answer those.
    /// (A `SET` is answered `OK` whatever the state, and a chosen slot is
    /// applied everywhere before any later one: docs/PAXOS_KV.md, "`SET`s
    /// answered when chosen".)
    pub sets_answered_by: Option<Run>,
}

/// A proposer's run: its index and incarnation, as in [`ClientId`].
pub type Run = (u32, u64);

/// From a replica to the proposer that holds the client's connection.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Answer {
    pub client: ClientId,
    pub seq: u64,
    pub reply: Reply,
}

/// What a replica sends.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum FromReplica {
    Answer(ClusterId, Answer),
    /// Every slot below it is applied here (for the acceptors' log collection).
    Checkpoint(Slot),
    /// To another replica.
    Replica(ClusterId, ToReplica),
    /// To the proposers: slot this and maybe later ones are missing here.
    Behind(Slot),
}

impl FromReplica {
    /// Its branch of [`Stream::demux`]: in the order of the variants.
    pub fn branch(&self) -> usize {
        match self {
            FromReplica::Answer(..) => 0,
            FromReplica::Checkpoint(_) => 1,
            FromReplica::Replica(..) => 2,
            FromReplica::Behind(_) => 3,
        }
    }
    pub fn into_answer(self) -> Option<(ClusterId, Answer)> {
        match self {
            FromReplica::Answer(to, answer) => Some((to, answer)),
            _ => None,
        }
    }
    pub fn into_checkpoint(self) -> Option<Slot> {
        match self {
            FromReplica::Checkpoint(slot) => Some(slot),
            _ => None,
        }
    }
    pub fn into_behind(self) -> Option<Slot> {
        match self {
            FromReplica::Behind(slot) => Some(slot),
            _ => None,
        }
    }
    pub fn into_replica(self) -> Option<(ClusterId, ToReplica)> {
        match self {
            FromReplica::Replica(to, message) => Some((to, message)),
            _ => None,
        }
    }
}

/// Between replicas: one that misses slots (restarted, or cut off while they
/// were chosen) asks, and one that has applied them sends its state.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ToReplica {
    /// "Every slot below this one is applied here, and the next is missing":
    /// until it says [`ToReplica::Serving`], the others answer its slots too.
    Behind(Slot),
    /// "I answer my slots; every slot below this one is applied here." Said
    /// once caught up, and to a replica whose link came up: one further
    /// behind than that learns it is, though no slot reached it yet.
    Serving(Slot),
    /// Part `part` (from 0) of a replica's state as it was when every slot
    /// below `at` was applied: keys and values, then, in the last part, the
    /// sessions.
    State {
        at: Slot,
        part: u32,
        entries: Vec<(Vec<u8>, Vec<u8>)>,
        sessions: Option<replica::Sessions>,
    },
}

/// What a replica is fed in a tick.
#[derive(Debug, Clone)]
pub enum ToReplicaInput {
    Chosen(Chosen),
    Replica(ClusterId, ToReplica),
    /// Another replica linked or lost.
    Membership(ClusterId, Membership),
}

pub fn paxos_kv(flow: &FlowBuilder) {
    let proposers = flow.cluster("proposer");
    let acceptors = flow.cluster("acceptor");
    let replicas = flow.cluster("replica");

    // Proposers: clients, their clock, and what comes back from the others.
    let (requests, replies) = flow.source_external(&proposers, "clients", q!(resp::Resp));
    let (feedback, fed_back) = proposers.cycle_unordered::<proposer::Input>();
    let proposed = requests
        .map(q!(|(connection, event)| proposer::Input::Client(
            connection, event
        )))
        .union(
            flow.source_interval(&proposers, q!(CLOCK))
                .map(q!(|_| proposer::Input::Clock)),
        )
        .union(fed_back)
        .union(
            proposers
                .membership(&proposers)
                .map(q!(|(proposer, event)| {
                    proposer::Input::Proposer(proposer, event)
                })),
        )
        .union(
            acceptors
                .membership(&proposers)
                .map(q!(|(acceptor, event)| {
                    proposer::Input::AcceptorLink(acceptor, event)
                })),
        )
        .assume_ordering(nondet!(
            "Paxos is safe in any order of arrival: ballots and slots decide, not arrival"
        ))
        .tick_batch()
        .fold(q!(proposer::inputs_buffer), q!(Vec::push))
        .flat_map(q!({
            let mut proposer = proposer::Proposer::new(
                proposers.self_id(),
                proposers.incarnation(),
                acceptors.members().len(),
            )
            .with_password(auth::Password::from_env(proposers.self_id()));
            move |inputs| proposer.tick(inputs)
        }))
        .all_ticks();
    // Each output to its destination, moved (see `Output::branch`).
    let [to_clients, to_acceptors, to_acceptor, to_peer, to_peers, chosen] =
        proposed.demux(q!(proposer::Output::branch));
    to_clients
        .filter_map(q!(proposer::Output::into_reply))
        .send_external(replies);
    let at_acceptors = to_acceptors
        .filter_map(q!(proposer::Output::into_acceptors))
        .broadcast_bincode_tolerant(&acceptors)
        .union(
            to_acceptor
                .filter_map(q!(proposer::Output::into_acceptor))
                .send_bincode_tolerant(&acceptors),
        );
    let to_one_proposer = to_peer
        .filter_map(q!(proposer::Output::into_peer))
        .send_bincode_tolerant(&proposers);
    let to_all_proposers = to_peers
        .filter_map(q!(proposer::Output::into_peers))
        .broadcast_bincode_tolerant(&proposers);
    let at_replicas = chosen
        .filter_map(q!(proposer::Output::into_replicas))
        .broadcast_bincode_tolerant(&replicas);

    // Replicas: apply the chosen slots in order, answer, checkpoint, and
    // catch up from each other.
    let (to_replicas, from_replicas) = replicas.cycle_unordered::<ToReplicaInput>();
    let applied = at_replicas
        .map(q!(|(_leader, chosen)| ToReplicaInput::Chosen(chosen)))
        .union(from_replicas)
        .union(replicas.membership(&replicas).map(q!(|(replica, event)| {
            ToReplicaInput::Membership(replica, event)
        })))
        .assume_ordering(nondet!(
            "a replica applies chosen slots in slot order, whatever order they arrive in"
        ))
        .tick_batch()
        .fold(q!(Vec::new), q!(Vec::push))
        .flat_map(q!({
            let mut replica = replica::Replica::open(
                replicas.self_id(),
                replicas.members().len(),
                replicas.durable(),
            );
            move |inputs| replica.tick(inputs)
        }))
        .all_ticks();
    let [answers, checkpoints, to_replica, behind] = applied.demux(q!(FromReplica::branch));
    let answers = answers
        .filter_map(q!(FromReplica::into_answer))
        .send_bincode_tolerant(&proposers);
    let checkpoints = checkpoints
        .filter_map(q!(FromReplica::into_checkpoint))
        .broadcast_bincode_tolerant(&acceptors);
    let behind = behind
        .filter_map(q!(FromReplica::into_behind))
        .broadcast_bincode_tolerant(&proposers);
    to_replicas.complete(
        to_replica
            .filter_map(q!(FromReplica::into_replica))
            .send_bincode_tolerant(&replicas)
            .map(q!(|(from, message)| ToReplicaInput::Replica(from, message))),
    );

    // Acceptors: vote on what proposers ask, forget what replicas applied.
    let voted = at_acceptors
        .map(q!(|(from, message)| acceptor::Input::Proposer(
            from, message
        )))
        .union(checkpoints.map(q!(|(from, slot)| acceptor::Input::Checkpoint(from, slot))))
        .assume_ordering(nondet!(
            "an acceptor answers each message on its own: ballots decide what it accepts, not arrival"
        ))
        .tick_batch()
        .fold(q!(Vec::new), q!(Vec::push))
        .flat_map(q!({
            let mut acceptor =
                acceptor::Acceptor::open(replicas.members().len(), acceptors.durable());
            move |inputs| acceptor.tick(inputs)
        }))
        .all_ticks()
        .send_bincode_tolerant(&proposers);

    feedback.complete(
        voted
            .map(q!(|(from, message)| proposer::Input::Acceptor(
                from, message
            )))
            .union(to_one_proposer.map(q!(|(from, m)| proposer::Input::Peer(from, m))))
            .union(to_all_proposers.map(q!(|(from, m)| proposer::Input::Peer(from, m))))
            .union(answers.map(q!(|(_replica, answer)| proposer::Input::Answer(answer))))
            .union(behind.map(q!(|(_replica, slot)| proposer::Input::Behind(slot)))),
    );
}

/// Whether `PAXOS_KV_PLANTED_BUG` names `bug`: a deliberate mistake, so
/// that the simulation tests can show they would catch one. Never set it
/// outside those tests.
fn planted_bug(bug: &str) -> bool {
    let planted = std::env::var("PAXOS_KV_PLANTED_BUG").is_ok_and(|b| b == bug);
    if planted {
        eprintln!("warning: PAXOS_KV_PLANTED_BUG={bug}: this instance is deliberately wrong");
    }
    planted
}

/// The durable log `name` of a role's state (`acceptor`, `replica`), with
/// what an earlier run wrote to it. One that cannot be read stops the
/// instance: going on from part of its state could break a promise or
/// answer wrong.
fn open_log<T: serde::Serialize + serde::de::DeserializeOwned>(
    storage: &weir::durable::Storage,
    name: &str,
) -> (weir::durable::Log<T>, Vec<T>) {
    weir::durable::Log::open(storage, name).unwrap_or_else(|e| {
        eprintln!("error: cannot read the {name}'s state: {e}");
        std::process::exit(1);
    })
}
