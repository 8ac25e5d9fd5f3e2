//! The proposer: serves clients, and while it leads, runs Multi-Paxos.
//!
//! Election: the leader sends a heartbeat every clock tick. A proposer that
//! hears none for its timeout (staggered by index, so they seldom collide)
//! runs phase 1 with a ballot above every one it has seen; with f+1 promises
//! it leads: it merges the acceptors' logs slot by slot (the value of the
//! highest ballot wins, holes become no-ops), proposes them again, then one
//! new slot per tick with the tick's commands. A value accepted by f+1
//! acceptors is chosen and goes to the replicas.
//!
//! Clients: each request gets a position on its connection, and replies go
//! out in that order. `PING` and errors are answered at once; `SET`, `GET`
//! and `DEL` become numbered commands, sent to the leader (or proposed here)
//! and sent again when the leader changes or an answer is slow. Replicas
//! apply each number once.

use super::auth::{self, Password};
use super::connection::Connection;
use super::request::Request;
use super::resp::Reply;
use super::{
    Accepted, Answer, Ballot, Chosen, ClientId, Command, FromAcceptor, Op, Run, Slot, ToAcceptor,
    ToProposer, Value, ValueBuilder,
};
use rustc_hash::FxHashMap;
use std::cell::Cell;
use std::collections::{BTreeMap, HashMap};
use weir::{ClientEvent, ClusterId, ConnectionId, Membership, TickRoom};

/// Clock ticks without a heartbeat before proposer 0 stands; each later
/// proposer waits [`TIMEOUT_STAGGER`] more.
pub const HEARTBEAT_TIMEOUT: u64 = 10;
pub const TIMEOUT_STAGGER: u64 = 6;
/// Clock ticks before a candidate's prepare is sent again (under the same
/// ballot).
const PHASE1_RETRY: u64 = 10;
/// Clock ticks before an unchosen slot's accept is sent again.
const ACCEPT_RETRY: u64 = 10;
/// Clock ticks before a slot sent to a majority only, and not chosen, goes
/// to every acceptor: one of the majority may be slow (a stalled disk)
/// without having left, and the others would have answered.
const MAJORITY_RETRY: u64 = 2;
/// Clock ticks before an unanswered command is sent again.
const COMMAND_RETRY: u64 = 20;
/// Chosen slots a leader keeps for replicas that missed them: a replica
/// further behind takes another replica's state, or waits for the next
/// leader, which proposes again every slot above the watermark.
const KEEP_CHOSEN: usize = 4096;
/// And at most this many bytes of them: under load a slot holds hundreds of
/// commands, and thousands of slots would keep every command of the last
/// seconds.
const KEEP_CHOSEN_BYTES: usize = 4 << 20;
/// Slots sent again per request of a replica that is behind.
const RESEND_AT_ONCE: usize = 1024;
/// Chosen slots whose every command the leader answered itself (its own
/// clients' `SET`s) that it holds back from the replicas, to send with the
/// next: replicas then wake once for several such slots. No client waits
/// on them but one whose retried command waits at a replica for a `SET` in
/// them; so a slot a replica answers goes at once, after those held, and
/// every held slot goes at each clock tick.
const HOLD_CHOSEN: usize = 3;
/// Slots a leader has proposed and not yet seen chosen: past this (no
/// majority of acceptors answers), it proposes nothing new, and the
/// commands it is given are dropped; their proposers send them again.
const MAX_IN_FLIGHT: usize = 1024;
/// Commands a connection may have unanswered; the next are answered with
/// an error ([`TOO_MANY_UNANSWERED`]).
pub const MAX_UNANSWERED: usize = 1 << 16;
pub const TOO_MANY_UNANSWERED: &str =
    "ERR too many commands unanswered on this connection: read the replies";

thread_local! {
    /// The room of a tick's inputs. Only room is sized by it: proposers
    /// sharing a thread (a simulation) share it too.
    static INPUTS_ROOM: Cell<TickRoom> = const { Cell::new(TickRoom::EMPTY) };
}

/// An empty buffer for a tick's inputs, with room for about as many as
/// recent ticks held: a busy leader takes hundreds of requests a tick.
pub fn inputs_buffer() -> Vec<Input> {
    INPUTS_ROOM.get().vec()
}

#[derive(Debug, Clone)]
pub enum Input {
    Client(ConnectionId, ClientEvent<Request>),
    /// Every [`super::CLOCK`].
    Clock,
    Peer(ClusterId, ToProposer),
    Acceptor(ClusterId, FromAcceptor),
    Answer(Answer),
    /// A replica misses slot this and maybe later ones.
    Behind(Slot),
    /// Another proposer linked, or left (it is stopping, or lost).
    Proposer(ClusterId, Membership),
    /// An acceptor linked, or left.
    AcceptorLink(ClusterId, Membership),
}

#[derive(Debug, Clone)]
pub enum Output {
    Reply(ConnectionId, Reply),
    /// To every acceptor.
    Acceptors(ToAcceptor),
    /// To one acceptor: a new slot's accept goes to a majority only.
    Acceptor(ClusterId, ToAcceptor),
    Peer(ClusterId, ToProposer),
    Peers(ToProposer),
    Replicas(Chosen),
}

impl Output {
    /// Its branch of `demux`: in the order of the variants.
    pub fn branch(&self) -> usize {
        match self {
            Output::Reply(..) => 0,
            Output::Acceptors(_) => 1,
            Output::Acceptor(..) => 2,
            Output::Peer(..) => 3,
            Output::Peers(_) => 4,
            Output::Replicas(_) => 5,
        }
    }
    pub fn into_reply(self) -> Option<(ConnectionId, Reply)> {
        match self {
            Output::Reply(c, r) => Some((c, r)),
            _ => None,
        }
    }
    pub fn into_acceptors(self) -> Option<ToAcceptor> {
        match self {
            Output::Acceptors(m) => Some(m),
            _ => None,
        }
    }
    pub fn into_acceptor(self) -> Option<(ClusterId, ToAcceptor)> {
        match self {
            Output::Acceptor(to, m) => Some((to, m)),
            _ => None,
        }
    }
    pub fn into_peer(self) -> Option<(ClusterId, ToProposer)> {
        match self {
            Output::Peer(to, m) => Some((to, m)),
            _ => None,
        }
    }
    pub fn into_peers(self) -> Option<ToProposer> {
        match self {
            Output::Peers(m) => Some(m),
            _ => None,
        }
    }
    pub fn into_replicas(self) -> Option<Chosen> {
        match self {
            Output::Replicas(c) => Some(c),
            _ => None,
        }
    }
}

/// This tick's commands on their way: emptied every tick.
struct Outgoing {
    /// This proposer's run: the commands of its own clients are its.
    run: Run,
    /// To propose at the end of the tick (while leading), encoded as they
    /// come: the slot's value, without a copy of each command to hold them.
    propose: ValueBuilder,
    /// The `SET`s of this proposer's own clients in `propose`, as
    /// (connection, number): answered here once their slot is chosen.
    sets: Vec<(u64, u64)>,
    /// To forward to the leader at the end of the tick.
    forward: Vec<Command>,
}

impl Outgoing {
    fn new(run: Run) -> Self {
        Outgoing {
            run,
            propose: ValueBuilder::default(),
            sets: Vec::new(),
            forward: Vec::new(),
        }
    }

    /// Proposes `command` here when leading, else forwards it to the leader.
    fn route(&mut self, leads: bool, command: &Command) {
        if leads {
            self.propose_command(command);
        } else {
            self.forward.push(command.clone());
        }
    }

    /// [`route`](Outgoing::route) for commands already owned: forwarded
    /// as they are, not cloned.
    fn route_all(&mut self, leads: bool, commands: Vec<Command>) {
        if leads {
            commands
                .iter()
                .for_each(|command| self.propose_command(command));
        } else {
            self.forward.extend(commands);
        }
    }

    /// Adds `command` to the slot being built, noting it if it is a `SET` of
    /// this proposer's own client.
    fn propose_command(&mut self, command: &Command) {
        self.propose.push(command);
        let client = &command.client;
        if matches!(command.op, Op::Set(..)) && (client.proposer, client.incarnation) == self.run {
            self.sets.push((client.connection, command.seq));
        }
    }

    /// Nothing is proposed this tick (after all).
    fn drop_proposed(&mut self) {
        self.propose.clear();
        self.sets.clear();
    }
}

enum Role {
    Follower,
    /// In phase 1 since `started`.
    Candidate {
        ballot: Ballot,
        started: u64,
        promises: HashMap<u32, (Accepted, Slot)>,
    },
    Leader {
        ballot: Ballot,
        next_slot: Slot,
        /// At most [`MAX_IN_FLIGHT`], plus the slots it proposes again
        /// when it starts leading (those above the acceptors' watermark).
        in_flight: BTreeMap<Slot, InFlight>,
    },
}

struct InFlight {
    value: Value,
    /// The `SET`s of this proposer's own clients in it, as (connection,
    /// number): answered when it is chosen (none in a slot taken over).
    sets: Vec<(u64, u64)>,
    /// Acceptors that accepted it, as bits.
    accepted: u64,
    sent: u64,
    /// Sent to a majority of the acceptors only (see [`majority_of`]).
    to_majority: bool,
    /// Every command in it is in `sets`: once chosen, no replica has an
    /// answer to send for it.
    answered_here: bool,
}

pub struct Proposer {
    me: u32,
    incarnation: u64,
    quorum: usize,
    /// Clock ticks so far.
    now: u64,
    /// The highest ballot seen anywhere.
    highest: Ballot,
    leader: Option<u32>,
    /// The clock tick at which this proposer, following, stands unless a
    /// heartbeat comes first.
    stand_at: u64,
    role: Role,
    /// This tick's commands on their way.
    outgoing: Outgoing,
    /// Open connections (at most `--max-clients`). Looked up three times
    /// per command, by numbers the runtime gives: hashed with Fx, not SipHash
    /// (no client chooses them).
    clients: FxHashMap<u64, Connection>,
    /// Sessions begun in this run: the next one's number.
    sessions_begun: u64,
    /// With the planted bug `local-reads`: the last value this proposer's
    /// clients wrote to each key, which it then answers `GET`s from.
    local_reads: Option<HashMap<Vec<u8>, Option<Vec<u8>>>>,
    /// The `EndSession` of each closed connection, and when it was last
    /// sent, until a replica answers it. (An open connection's commands wait
    /// in its [`Connection`].)
    ended: HashMap<u64, (Command, u64)>,
    /// What clients must `AUTH` with, if anything.
    password: Option<Password>,
    /// While leading: the last [`KEEP_CHOSEN`] slots chosen, for replicas
    /// that missed them (when both were down, say).
    recent_chosen: BTreeMap<Slot, Value>,
    /// The bytes of the values in `recent_chosen`.
    recent_bytes: usize,
    /// Chosen slots held back from the replicas (at most [`HOLD_CHOSEN`]).
    held_chosen: Vec<Chosen>,
    /// The acceptors linked with this proposer, as bits.
    acceptors_up: u64,
    /// This tick's outputs.
    out: Vec<Output>,
    out_room: TickRoom,
}

impl Proposer {
    /// Proposer `me` (in its run `incarnation`), with `acceptors` acceptors.
    pub fn new(me: ClusterId, incarnation: u64, acceptors: usize) -> Self {
        let mut proposer = Proposer {
            me: me.0,
            incarnation,
            quorum: acceptors / 2 + 1,
            now: 0,
            highest: Ballot::default(),
            leader: None,
            stand_at: 0, // set below
            role: Role::Follower,
            outgoing: Outgoing::new((me.0, incarnation)),
            clients: FxHashMap::default(),
            sessions_begun: 0,
            local_reads: super::planted_bug("local-reads").then(HashMap::new),
            ended: HashMap::new(),
            password: None,
            recent_chosen: BTreeMap::new(),
            recent_bytes: 0,
            held_chosen: Vec::new(),
            acceptors_up: 0,
            out: Vec::new(),
            out_room: TickRoom::EMPTY,
        };
        proposer.stand_after_silence();
        proposer
    }

    /// Clients must `AUTH` with `password` before anything else.
    pub fn with_password(mut self, password: Option<Password>) -> Self {
        self.password = password;
        self
    }

    /// One tick's inputs; what to send.
    pub fn tick(&mut self, inputs: Vec<Input>) -> Vec<Output> {
        INPUTS_ROOM.set(INPUTS_ROOM.get().after(inputs.len()));
        for input in inputs {
            match input {
                Input::Client(connection, event) => self.client(connection.0, event),
                Input::Clock => self.clock(),
                Input::Peer(from, ToProposer::Heartbeat(ballot)) => self.heartbeat(from.0, ballot),
                Input::Peer(_, ToProposer::Forward(commands)) => {
                    if self.leads() {
                        self.outgoing.route_all(true, commands);
                    }
                    // Otherwise dropped: their proposer sends them again to
                    // the leader it learns of.
                }
                Input::Acceptor(from, message) => self.acceptor(from.0, message),
                Input::Answer(answer) => self.answer(answer),
                Input::Behind(slot) => self.resend_chosen(slot),
                Input::Proposer(from, Membership::Left) => self.left(from.0),
                Input::Proposer(_, Membership::Joined) => {}
                Input::AcceptorLink(acceptor, Membership::Joined) => {
                    self.acceptors_up |= 1 << (acceptor.0 % 64);
                }
                Input::AcceptorLink(acceptor, Membership::Left) => self.acceptor_left(acceptor.0),
            }
        }
        self.propose_queue();
        if !self.outgoing.forward.is_empty() {
            match self.leader {
                Some(leader) if leader != self.me => {
                    let commands = std::mem::take(&mut self.outgoing.forward);
                    self.send(Output::Peer(
                        ClusterId(leader),
                        ToProposer::Forward(commands),
                    ));
                }
                // No leader yet: they stay pending, and go when one is known.
                _ => self.outgoing.forward.clear(),
            }
        }
        self.out_room.take(&mut self.out)
    }

    fn send(&mut self, output: Output) {
        self.out.push(output);
    }

    // Clients.

    fn client(&mut self, connection: u64, event: ClientEvent<Request>) {
        match event {
            ClientEvent::Opened => {
                let client = ClientId {
                    proposer: self.me,
                    incarnation: self.incarnation,
                    connection,
                    // Numbered at its first command, if it sends one.
                    session: 0,
                };
                let authenticated = self.password.is_none();
                self.clients
                    .insert(connection, Connection::new(client, authenticated));
            }
            ClientEvent::Closed => {
                let Some(client) = self.clients.remove(&connection) else {
                    return;
                };
                // Its unanswered commands are not sent again: each was sent
                // to a leader before what follows, so is chosen before it.
                // Replicas forget its session where its end is chosen; sent
                // again until one says so, like any command.
                if let Some(end) = client.end_session() {
                    self.outgoing.route(self.leads(), &end);
                    self.ended.insert(connection, (end, self.now));
                }
            }
            ClientEvent::Request(request) => self.request(connection, request),
        }
    }

    fn request(&mut self, connection: u64, request: Request) {
        let leads = self.leads();
        let Some(client) = self.clients.get_mut(&connection) else {
            return;
        };
        let op = match request {
            Request::Auth(args) => {
                let (reply, ok) = auth::answer(self.password.as_ref(), &args);
                client.authenticated |= ok;
                client.answer_now(reply);
                self.release(connection);
                return;
            }
            _ if !client.authenticated => {
                client.answer_now(Reply::Error(auth::NOAUTH.into()));
                self.release(connection);
                return;
            }
            Request::Now(reply) => {
                client.answer_now(reply);
                self.release(connection);
                return;
            }
            Request::Op(Op::Get(key))
                if self
                    .local_reads
                    .as_ref()
                    .is_some_and(|c| c.contains_key(&key)) =>
            {
                // The planted bug: a read answered here, without the log.
                let value = self.local_reads.as_ref().and_then(|c| c[&key].clone());
                client.answer_now(Reply::Bulk(value));
                self.release(connection);
                return;
            }
            Request::Op(op) => op,
        };
        if client.waiting() >= MAX_UNANSWERED {
            client.answer_now(Reply::Error(TOO_MANY_UNANSWERED.into()));
            self.release(connection);
            return;
        }
        // Kept until answered (and sent again until then), and routed now.
        let command = client.command(op, self.now, &mut self.sessions_begun);
        self.outgoing.route(leads, command);
    }

    fn leads(&self) -> bool {
        matches!(self.role, Role::Leader { .. })
    }

    /// Sends every unanswered command again (to a new leader, say), or
    /// those last sent `older_than` clock ticks ago or more.
    fn route_pending(&mut self, older_than: Option<u64>) {
        let now = self.now;
        let mut due: Vec<Command> = Vec::new();
        for client in self.clients.values_mut() {
            due.extend(client.due(now, older_than));
        }
        for (end, sent) in self.ended.values_mut() {
            if older_than.is_none_or(|age| now >= *sent + age) {
                *sent = now;
                due.push(end.clone());
            }
        }
        // In the order they were given, as one map of them would be: the
        // same run gives the same log (the simulation tests replay runs).
        due.sort_by_key(|command| (command.client.connection, command.seq));
        self.outgoing.route_all(self.leads(), due);
    }

    fn answer(&mut self, answer: Answer) {
        if answer.client.incarnation != self.incarnation {
            return;
        }
        let connection = answer.client.connection;
        if !self.clients.contains_key(&connection) {
            // For a closed client: its end, or a command of it answered
            // after it closed (or answered already, by the other replica).
            if self
                .ended
                .get(&connection)
                .is_some_and(|(end, _)| end.seq == answer.seq)
            {
                self.ended.remove(&connection);
            }
            return;
        }
        self.answered(connection, answer.seq, answer.reply);
    }

    /// Command `seq` of open connection `connection` is answered `reply`
    /// (by a replica, or here for a `SET` chosen).
    fn answered(&mut self, connection: u64, seq: u64, reply: Reply) {
        self.answered_run(connection, std::iter::once((seq, reply)));
    }

    /// Commands of open connection `connection` answered, as (number,
    /// reply); then its replies that are next in order are sent. A
    /// pipeline's `SET`s are chosen together: its connection is looked up,
    /// and its replies released, once for them all.
    fn answered_run(&mut self, connection: u64, answers: impl IntoIterator<Item = (u64, Reply)>) {
        let Some(client) = self.clients.get_mut(&connection) else {
            return;
        };
        for (seq, reply) in answers {
            // None: answered already (by the other replica, or here).
            let Some(command) = client.answered(seq, reply) else {
                continue;
            };
            if let Some(cache) = &mut self.local_reads {
                match command.op {
                    Op::Set(key, value) => {
                        cache.insert(key, Some(value));
                    }
                    Op::Del(keys) => cache.extend(keys.into_iter().map(|k| (k, None))),
                    Op::Get(_) | Op::EndSession => {}
                }
            }
        }
        self.release(connection);
    }

    /// Sends the replies that are next in their connection's order.
    fn release(&mut self, connection: u64) {
        let Some(client) = self.clients.get_mut(&connection) else {
            return;
        };
        for reply in client.replies() {
            self.out
                .push(Output::Reply(ConnectionId(connection), reply));
        }
    }

    // Time.

    fn clock(&mut self) {
        self.now += 1;
        let now = self.now;
        self.send_held_chosen();
        match &mut self.role {
            Role::Leader { ballot, .. } => {
                let heartbeat = ToProposer::Heartbeat(*ballot);
                self.send(Output::Peers(heartbeat));
                self.accept_again(false);
            }
            Role::Candidate {
                ballot, started, ..
            } => {
                if now >= *started + PHASE1_RETRY {
                    // Lost, or only slow: sent again under the same ballot,
                    // so promises still on their way count. A higher one
                    // would void them, and where a round trip to the
                    // acceptors takes longer than the retry no candidate
                    // would ever gather a majority. A higher ballot, if an
                    // acceptor promised one, comes back as a rejection,
                    // which makes this a follower.
                    *started = now;
                    let prepare = ToAcceptor::Prepare(*ballot);
                    self.send(Output::Acceptors(prepare));
                }
            }
            Role::Follower => {
                if now >= self.stand_at {
                    self.stand();
                }
            }
        }
        if now.is_multiple_of(COMMAND_RETRY) {
            self.route_pending(Some(COMMAND_RETRY));
        }
    }

    // Election.

    /// Phase 1 with a ballot above every one seen.
    fn stand(&mut self) {
        let ballot = Ballot::above(self.highest, self.me, self.incarnation);
        self.highest = ballot;
        self.leader = None;
        self.role = Role::Candidate {
            ballot,
            started: self.now,
            promises: HashMap::new(),
        };
        self.send(Output::Acceptors(ToAcceptor::Prepare(ballot)));
    }

    fn heartbeat(&mut self, from: u32, ballot: Ballot) {
        if from == self.me || ballot < self.highest {
            // Our own, or from a leader that has been superseded.
            return;
        }
        self.highest = ballot;
        self.stand_after_silence();
        if !matches!(self.role, Role::Follower) {
            self.role = Role::Follower;
        }
        if self.leader != Some(from) {
            self.leader = Some(from);
            self.route_pending(None);
        }
    }

    /// Clock ticks this proposer waits after proposer 0 before standing.
    fn stagger(&self) -> u64 {
        TIMEOUT_STAGGER * u64::from(self.me)
    }

    /// Stands if no heartbeat comes for the heartbeat timeout (and its stagger).
    fn stand_after_silence(&mut self) {
        self.stand_at = self.now + HEARTBEAT_TIMEOUT + self.stagger();
    }

    /// Proposer `from` left: if it led, this one stands without waiting out
    /// its silence (after its stagger only, so the proposers stand in turn).
    fn left(&mut self, from: u32) {
        if self.leader == Some(from) && matches!(self.role, Role::Follower) {
            self.leader = None;
            self.stand_at = self.now + self.stagger();
        }
    }

    /// A higher ballot is about: stop leading or standing, and wait for its
    /// heartbeats.
    fn step_down(&mut self, promised: Ballot) {
        let mine = match &self.role {
            Role::Leader { ballot, .. } | Role::Candidate { ballot, .. } => *ballot,
            Role::Follower => return,
        };
        if promised > mine {
            self.highest = self.highest.max(promised);
            self.role = Role::Follower;
            self.leader = None;
            self.stand_after_silence();
            // Commands of other proposers' clients are sent again by them.
            self.outgoing.drop_proposed();
        }
    }

    fn acceptor(&mut self, from: u32, message: FromAcceptor) {
        match message {
            FromAcceptor::Rejected { promised } => self.step_down(promised),
            FromAcceptor::Promise {
                ballot,
                accepted,
                watermark,
            } => {
                let Role::Candidate {
                    ballot: mine,
                    promises,
                    ..
                } = &mut self.role
                else {
                    return;
                };
                if ballot != *mine {
                    return;
                }
                promises.insert(from, (accepted, watermark));
                if promises.len() >= self.quorum {
                    self.lead();
                }
            }
            FromAcceptor::Accepted { ballot, slot } => {
                let Role::Leader {
                    ballot: mine,
                    in_flight,
                    ..
                } = &mut self.role
                else {
                    return;
                };
                if ballot != *mine {
                    return;
                }
                let Some(flight) = in_flight.get_mut(&slot) else {
                    return;
                };
                flight.accepted |= 1 << (from % 64);
                if flight.accepted.count_ones() as usize >= self.quorum {
                    let InFlight {
                        value,
                        sets,
                        answered_here,
                        ..
                    } = in_flight.remove(&slot).expect("just seen");
                    self.keep_chosen(slot, value.clone());
                    let sets_answered_by = (!sets.is_empty()).then_some(self.outgoing.run);
                    // Chosen, so applied everywhere before any later slot:
                    // a `SET` is answered now, one hop sooner than a replica
                    // would, and its replica need not send the answer.
                    for run in sets.chunk_by(|a, b| a.0 == b.0) {
                        let answers = run.iter().map(|&(_, seq)| (seq, Reply::Ok));
                        self.answered_run(run[0].0, answers);
                    }
                    let chosen = Chosen {
                        slot,
                        value,
                        sets_answered_by,
                    };
                    if answered_here && self.held_chosen.len() < HOLD_CHOSEN {
                        self.held_chosen.push(chosen);
                    } else {
                        self.send_held_chosen();
                        self.send(Output::Replicas(chosen));
                    }
                }
            }
        }
    }

    /// Sends the replicas the chosen slots held back, in the order chosen.
    fn send_held_chosen(&mut self) {
        self.out
            .extend(self.held_chosen.drain(..).map(Output::Replicas));
    }

    /// Keeps chosen `slot` for replicas that miss it, and forgets the oldest
    /// past [`KEEP_CHOSEN`] slots or [`KEEP_CHOSEN_BYTES`] bytes.
    fn keep_chosen(&mut self, slot: Slot, value: Value) {
        self.recent_bytes += value.as_bytes().len();
        if let Some(again) = self.recent_chosen.insert(slot, value) {
            // Chosen again, as a new leader proposes the slots it took over.
            self.recent_bytes -= again.as_bytes().len();
        }
        while self.recent_chosen.len() > KEEP_CHOSEN
            || (self.recent_bytes > KEEP_CHOSEN_BYTES && self.recent_chosen.len() > 1)
        {
            let (_, oldest) = self.recent_chosen.pop_first().expect("more than one");
            self.recent_bytes -= oldest.as_bytes().len();
        }
    }

    /// Sends the replicas again what it chose from `slot` on (at most
    /// [`RESEND_AT_ONCE`] slots; a replica still behind asks again).
    fn resend_chosen(&mut self, slot: Slot) {
        if !matches!(self.role, Role::Leader { .. }) {
            return;
        }
        let again: Vec<(Slot, Value)> = self
            .recent_chosen
            .range(slot..)
            .take(RESEND_AT_ONCE)
            .map(|(&slot, value)| (slot, value.clone()))
            .collect();
        for (slot, value) in again {
            // Answered already: a replica that answers again is ignored.
            self.send(Output::Replicas(Chosen {
                slot,
                value,
                sets_answered_by: None,
            }));
        }
    }

    /// Phase 1 won: take over the acceptors' logs and lead.
    fn lead(&mut self) {
        let Role::Candidate {
            ballot, promises, ..
        } = std::mem::replace(&mut self.role, Role::Follower)
        else {
            unreachable!("only a candidate leads")
        };
        let start = promises.values().map(|(_, w)| *w).max().unwrap_or(0);
        let mut merged: BTreeMap<Slot, (Ballot, Value)> = BTreeMap::new();
        for (accepted, _) in promises.into_values() {
            for (slot, b, value) in accepted {
                if slot < start {
                    continue;
                }
                match merged.get(&slot) {
                    Some((seen, _)) if *seen >= b => {}
                    _ => {
                        merged.insert(slot, (b, value));
                    }
                }
            }
        }
        let next_slot = merged.keys().next_back().map_or(start, |&s| s + 1);
        println!(
            "leading with ballot {ballot}: slots {start}..{next_slot} proposed again, new commands from {next_slot}"
        );
        let mut in_flight = BTreeMap::new();
        for slot in start..next_slot {
            let value = merged
                .remove(&slot)
                .map_or_else(|| Value::new(&Vec::new()), |(_, v)| v);
            self.out.push(Output::Acceptors(ToAcceptor::Accept {
                ballot,
                slot,
                value: value.clone(),
            }));
            in_flight.insert(
                slot,
                InFlight {
                    value,
                    sets: Vec::new(),
                    accepted: 0,
                    sent: self.now,
                    to_majority: false,
                    answered_here: false,
                },
            );
        }
        self.role = Role::Leader {
            ballot,
            next_slot,
            in_flight,
        };
        self.leader = Some(self.me);
        self.send(Output::Peers(ToProposer::Heartbeat(ballot)));
        self.route_pending(None);
        self.outgoing.forward.clear();
    }

    /// While leading: this tick's commands become one new slot.
    fn propose_queue(&mut self) {
        let Role::Leader {
            ballot,
            next_slot,
            in_flight,
        } = &mut self.role
        else {
            return;
        };
        if self.outgoing.propose.is_empty() {
            return;
        }
        if in_flight.len() >= MAX_IN_FLIGHT {
            // No majority answers: what is proposed waits, and each of these
            // is pending at its proposer, which sends it again.
            self.outgoing.drop_proposed();
            return;
        }
        let slot = *next_slot;
        *next_slot += 1;
        let answered_here = self.outgoing.sets.len() == self.outgoing.propose.len();
        let value = self.outgoing.propose.take();
        let sets = std::mem::take(&mut self.outgoing.sets);
        let majority = majority_of(self.acceptors_up, self.quorum);
        in_flight.insert(
            slot,
            InFlight {
                value: value.clone(),
                sets,
                accepted: 0,
                sent: self.now,
                to_majority: majority.is_some(),
                answered_here,
            },
        );
        let accept = ToAcceptor::Accept {
            ballot: *ballot,
            slot,
            value,
        };
        match majority {
            Some(majority) => {
                for acceptor in majority {
                    self.send(Output::Acceptor(ClusterId(acceptor), accept.clone()));
                }
            }
            None => self.send(Output::Acceptors(accept)),
        }
    }

    /// An acceptor left: the slots in flight may have been sent to it, so
    /// every acceptor gets them now, not after their retry.
    fn acceptor_left(&mut self, acceptor: u32) {
        self.acceptors_up &= !(1 << (acceptor % 64));
        self.accept_again(true);
    }

    /// While leading: sends every acceptor the slots in flight whose retry
    /// is due (all of them with `all`), and starts their retry afresh.
    fn accept_again(&mut self, all: bool) {
        let Role::Leader {
            ballot, in_flight, ..
        } = &mut self.role
        else {
            return;
        };
        for (&slot, flight) in in_flight.iter_mut() {
            let retry = match flight.to_majority {
                true => MAJORITY_RETRY,
                false => ACCEPT_RETRY,
            };
            if all || self.now >= flight.sent + retry {
                flight.sent = self.now;
                flight.to_majority = false;
                self.out.push(Output::Acceptors(ToAcceptor::Accept {
                    ballot: *ballot,
                    slot,
                    value: flight.value.clone(),
                }));
            }
        }
    }
}

/// A new slot's accept goes to `quorum` of the acceptors linked (the lowest
/// numbered), not to all: a majority is all it needs, and each acceptor more
/// costs the leader a copy of the slot on a socket and the acceptor its
/// decoding and its log (docs/BENCHMARKS.md, the key-value store, run 14).
/// One that does not answer within [`MAJORITY_RETRY`] clock ticks is covered
/// by the retry, which goes to all, and one that leaves by
/// [`Proposer::acceptor_left`]. `None` while fewer than a
/// majority are linked: then to all.
fn majority_of(up: u64, quorum: usize) -> Option<impl Iterator<Item = u32>> {
    (up.count_ones() as usize >= quorum)
        .then(|| (0..64).filter(move |a| up & (1 << a) != 0).take(quorum))
}

#[cfg(test)]
mod tests {
    use super::super::replica::commands_of;
    use super::super::request::tests::from_line;
    use super::*;

    #[test]
    fn with_a_password_a_client_is_refused_until_it_authenticates() {
        let mut p = Proposer::new(ClusterId(0), 1, 3).with_password(Some(Password::new(b"pw")));
        let c = ConnectionId(7);
        let request = |text| Input::Client(c, ClientEvent::Request(from_line(text)));
        let out = p.tick(vec![
            Input::Client(c, ClientEvent::Opened),
            request("GET k"),
            request("AUTH nope"),
            request("AUTH pw"),
            request("PING"),
        ]);
        let replies: Vec<Reply> = out
            .into_iter()
            .filter_map(Output::into_reply)
            .map(|(_, r)| r)
            .collect();
        assert_eq!(replies.len(), 4, "{replies:?}");
        assert_eq!(replies[0], Reply::Error(auth::NOAUTH.into()));
        assert!(matches!(&replies[1], Reply::Error(e) if e.starts_with("WRONGPASS")));
        assert_eq!(replies[2..], [Reply::Ok, Reply::Pong]);
    }

    #[test]
    fn a_follower_stands_when_its_leader_leaves_without_waiting_out_its_silence() {
        let prepares = |out: Vec<Output>| {
            out.iter()
                .filter(|o| matches!(o, Output::Acceptors(ToAcceptor::Prepare(_))))
                .count()
        };
        let heartbeat = Input::Peer(ClusterId(1), ToProposer::Heartbeat(Ballot::of(1, 1)));
        let left = |id| Input::Proposer(ClusterId(id), Membership::Left);
        // Proposer 0 follows proposer 1, which then falls silent: it stands
        // only after the heartbeat timeout.
        let mut p = Proposer::new(ClusterId(0), 1, 3);
        p.tick(vec![heartbeat.clone()]);
        let clocks = (0..HEARTBEAT_TIMEOUT).map(|_| prepares(p.tick(vec![Input::Clock])));
        assert_eq!(clocks.collect::<Vec<_>>().iter().sum::<usize>(), 1);
        // Another proposer leaving changes nothing; the leader leaving (it
        // said it is stopping) makes it stand at its next clock.
        let mut p = Proposer::new(ClusterId(0), 1, 3);
        p.tick(vec![heartbeat, left(2)]);
        assert_eq!(prepares(p.tick(vec![Input::Clock])), 0);
        p.tick(vec![left(1)]);
        assert_eq!(prepares(p.tick(vec![Input::Clock])), 1);
    }

    fn promise(
        p: &mut Proposer,
        from: u32,
        ballot: Ballot,
        accepted: Vec<(Slot, Ballot, Value)>,
    ) -> Vec<Output> {
        let message = FromAcceptor::Promise {
            ballot,
            accepted,
            watermark: 0,
        };
        p.tick(vec![Input::Acceptor(ClusterId(from), message)])
    }

    fn accepts(out: &[Output]) -> Vec<(Slot, usize)> {
        out.iter()
            .filter_map(|o| match o {
                Output::Acceptors(ToAcceptor::Accept { slot, value, .. }) => {
                    Some((*slot, commands_of(value).unwrap().len()))
                }
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_new_leader_keeps_the_highest_ballots_value_and_fills_holes() {
        let (mut p, ballot) = candidate();
        let one = |n: u64| {
            let client = ClientId {
                proposer: 1,
                incarnation: 1,
                connection: 0,
                session: 0,
            };
            ValueBuilder::value_of(
                &(0..n)
                    .map(|seq| Command {
                        client,
                        seq,
                        op: Op::Get(vec![]),
                    })
                    .collect::<Vec<_>>(),
            )
        };
        // Acceptor 0 accepted slot 0 at ballot (1,1) with one command; acceptor 1 at (0,1) with two.
        assert!(accepts(&promise(
            &mut p,
            0,
            ballot,
            vec![(0, Ballot::of(1, 1), one(1)), (2, Ballot::of(1, 1), one(3))]
        ))
        .is_empty());
        let out = promise(&mut p, 1, ballot, vec![(0, Ballot::of(0, 1), one(2))]);
        assert_eq!(
            accepts(&out),
            vec![(0, 1), (1, 0), (2, 3)],
            "slot 1 is a hole: a no-op"
        );
    }

    #[test]
    fn a_closed_connection_ends_its_session_after_its_commands_and_sends_none_again() {
        let mut p = Proposer::new(ClusterId(0), 1, 3);
        let c = ConnectionId(7);
        p.tick(vec![
            Input::Client(c, ClientEvent::Opened),
            Input::Client(c, ClientEvent::Request(from_line("SET k v"))),
            Input::Client(c, ClientEvent::Closed),
        ]);
        let pending: Vec<(u64, Op)> = p.unanswered().map(|c| (c.seq, c.op.clone())).collect();
        assert_eq!(pending, vec![(1, Op::EndSession)]);
        // A connection that sent nothing has no session to end.
        let quiet = ConnectionId(8);
        p.tick(vec![
            Input::Client(quiet, ClientEvent::Opened),
            Input::Client(quiet, ClientEvent::Closed),
        ]);
        assert_eq!(p.unanswered().count(), 1);
    }

    impl Proposer {
        /// The commands of this proposer's clients not answered yet.
        fn unanswered(&self) -> impl Iterator<Item = &Command> {
            let open = self.clients.values().flat_map(|c| c.waiting_commands());
            open.chain(self.ended.values().map(|(end, _)| end))
        }
    }

    /// Proposer 0 of three acceptors, standing after hearing no leader:
    /// it and the ballot it stands with.
    fn candidate() -> (Proposer, Ballot) {
        candidate_in_run(1)
    }

    /// The same, in its run `incarnation`.
    fn candidate_in_run(incarnation: u64) -> (Proposer, Ballot) {
        let mut p = Proposer::new(ClusterId(0), incarnation, 3);
        let mut out = Vec::new();
        for _ in 0..HEARTBEAT_TIMEOUT {
            out.extend(p.tick(vec![Input::Clock]));
        }
        let ballot = prepared(&out)
            .into_iter()
            .next()
            .expect("stands after the timeout");
        (p, ballot)
    }

    /// The ballots of the prepares in `out`.
    fn prepared(out: &[Output]) -> Vec<Ballot> {
        out.iter()
            .filter_map(|o| match o {
                Output::Acceptors(ToAcceptor::Prepare(b)) => Some(*b),
                _ => None,
            })
            .collect()
    }

    /// A proposer restarted before any other stood knows no ballot, and
    /// stands with the number its earlier run stood with: still a higher
    /// ballot, so acceptors that promised the earlier run's promise it too,
    /// and no two runs propose under one ballot.
    #[test]
    fn a_restarted_proposer_stands_above_its_earlier_runs_ballot() {
        let (_, earlier) = candidate_in_run(1);
        let (_, later) = candidate_in_run(2);
        assert_eq!(earlier.number, later.number);
        assert!(later > earlier, "{later:?} is not above {earlier:?}");
    }

    /// Where a round trip to the acceptors takes longer than the retry, the
    /// prepare goes again under the same ballot, and the promises that
    /// come late still make the candidate leader.
    #[test]
    fn a_candidate_whose_promises_come_after_its_retries_still_leads() {
        let (mut p, ballot) = candidate();
        let mut out = Vec::new();
        for _ in 0..3 * PHASE1_RETRY {
            out.extend(p.tick(vec![Input::Clock]));
        }
        assert_eq!(prepared(&out), vec![ballot; 3], "sent again, unchanged");
        promise(&mut p, 0, ballot, vec![]);
        promise(&mut p, 2, ballot, vec![]);
        assert!(matches!(p.role, Role::Leader { ballot: b, .. } if b == ballot));
    }

    /// A proposer made leader of a fresh store (its ballot promised by two
    /// of three acceptors).
    fn leader() -> Proposer {
        let (mut p, ballot) = candidate();
        promise(&mut p, 0, ballot, vec![]);
        promise(&mut p, 1, ballot, vec![]);
        assert!(matches!(p.role, Role::Leader { .. }));
        p
    }

    #[test]
    fn a_connection_past_its_unanswered_commands_gets_an_error_and_the_others_go_on() {
        let mut p = leader();
        let c = ConnectionId(1);
        let mut inputs = vec![Input::Client(c, ClientEvent::Opened)];
        inputs.extend(
            (0..=MAX_UNANSWERED)
                .map(|_| Input::Client(c, ClientEvent::Request(from_line("GET k")))),
        );
        let out = p.tick(inputs);
        // The first commands wait for the log; the one past the limit gets
        // its error once they are answered, in its place.
        assert!(out.iter().all(|o| !matches!(o, Output::Reply(..))));
        assert_eq!(p.unanswered().count(), MAX_UNANSWERED);
        let answers: Vec<Input> = (0..MAX_UNANSWERED as u64)
            .map(|seq| {
                Input::Answer(Answer {
                    client: ClientId {
                        proposer: 0,
                        incarnation: 1,
                        connection: 1,
                        session: 0,
                    },
                    seq,
                    reply: Reply::Bulk(None),
                })
            })
            .collect();
        let replies: Vec<Reply> = p
            .tick(answers)
            .into_iter()
            .filter_map(Output::into_reply)
            .map(|(_, r)| r)
            .collect();
        assert_eq!(replies.len(), MAX_UNANSWERED + 1);
        assert_eq!(
            replies[MAX_UNANSWERED],
            Reply::Error(TOO_MANY_UNANSWERED.into())
        );
        // And the connection goes on.
        p.tick(vec![Input::Client(
            c,
            ClientEvent::Request(from_line("GET k")),
        )]);
        assert_eq!(p.unanswered().count(), 1);
    }

    #[test]
    fn the_leader_answers_its_own_clients_sets_when_chosen_and_the_rest_after_the_replica() {
        let mut p = leader();
        let ballot = p_ballot(&p);
        let c = ConnectionId(1);
        let request = |text| Input::Client(c, ClientEvent::Request(from_line(text)));
        p.tick(vec![Input::Client(c, ClientEvent::Opened)]);
        p.tick(vec![
            request("GET k"),
            request("SET k v"),
            request("SET j w"),
        ]);
        // A follower's client's SET, forwarded: its replica answers it.
        let theirs = Command {
            client: ClientId {
                proposer: 1,
                incarnation: 4,
                connection: 9,
                session: 0,
            },
            seq: 0,
            op: Op::Set(b"x".to_vec(), b"y".to_vec()),
        };
        p.tick(vec![Input::Peer(
            ClusterId(1),
            ToProposer::Forward(vec![theirs]),
        )]);
        let accepted =
            |from, slot| Input::Acceptor(ClusterId(from), FromAcceptor::Accepted { ballot, slot });
        let out = p.tick(vec![
            accepted(0, 0),
            accepted(1, 0),
            accepted(0, 1),
            accepted(1, 1),
        ]);
        let chosen: Vec<(Slot, Option<Run>)> = out
            .iter()
            .filter_map(|o| match o {
                Output::Replicas(c) => Some((c.slot, c.sets_answered_by)),
                _ => None,
            })
            .collect();
        assert_eq!(chosen, [(0, Some((0, 1))), (1, None)]);
        // The SETs are answered, but wait for the GET before them.
        assert!(out.iter().all(|o| !matches!(o, Output::Reply(..))));
        let get = Answer {
            client: ClientId {
                proposer: 0,
                incarnation: 1,
                connection: 1,
                session: 0,
            },
            seq: 0,
            reply: Reply::Bulk(None),
        };
        let replies: Vec<Reply> = p
            .tick(vec![Input::Answer(get)])
            .into_iter()
            .filter_map(Output::into_reply)
            .map(|(_, r)| r)
            .collect();
        assert_eq!(replies, [Reply::Bulk(None), Reply::Ok, Reply::Ok]);
        assert_eq!(p.unanswered().count(), 0);
    }

    /// The slots sent to the replicas as chosen, in order.
    fn chosen_sent(out: &[Output]) -> Vec<Slot> {
        out.iter()
            .filter_map(|o| match o {
                Output::Replicas(chosen) => Some(chosen.slot),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn slots_the_leader_answered_whole_reach_the_replicas_together_and_the_rest_at_once() {
        let mut p = leader();
        let ballot = p_ballot(&p);
        let c = ConnectionId(1);
        let request = |text: &str| Input::Client(c, ClientEvent::Request(from_line(text)));
        let accepted =
            |from, slot| Input::Acceptor(ClusterId(from), FromAcceptor::Accepted { ballot, slot });
        p.tick(vec![Input::Client(c, ClientEvent::Opened)]);
        // Each slot holds one SET of the leader's own client: answered at
        // once, and sent to the replicas with the slot after those held.
        let mut sent = Vec::new();
        for slot in 0..=HOLD_CHOSEN as Slot {
            p.tick(vec![request("SET k v")]);
            let out = p.tick(vec![accepted(0, slot), accepted(1, slot)]);
            let replies = out
                .iter()
                .filter(|o| matches!(o, Output::Reply(_, Reply::Ok)));
            assert_eq!(replies.count(), 1, "slot {slot}'s SET answered when chosen");
            sent.push(chosen_sent(&out));
        }
        let mut expected = vec![vec![]; HOLD_CHOSEN];
        expected.push((0..=HOLD_CHOSEN as Slot).collect());
        assert_eq!(sent, expected);
        // A slot a replica answers (a GET) goes at once, after those held.
        let next = HOLD_CHOSEN as Slot + 1;
        p.tick(vec![request("SET k w")]);
        assert!(chosen_sent(&p.tick(vec![accepted(0, next), accepted(1, next)])).is_empty());
        p.tick(vec![request("GET k")]);
        let out = p.tick(vec![accepted(0, next + 1), accepted(1, next + 1)]);
        assert_eq!(chosen_sent(&out), [next, next + 1]);
        // What is held goes at the next clock tick, whatever comes.
        p.tick(vec![request("SET k x")]);
        assert!(
            chosen_sent(&p.tick(vec![accepted(0, next + 2), accepted(1, next + 2)])).is_empty()
        );
        assert_eq!(chosen_sent(&p.tick(vec![Input::Clock])), [next + 2]);
    }

    /// The slots each acceptor is sent an accept for, by output: to one
    /// (`Some(acceptor)`) or to all (`None`).
    fn accepts_to(out: &[Output]) -> Vec<(Option<u32>, Slot)> {
        out.iter()
            .filter_map(|o| match o {
                Output::Acceptor(to, ToAcceptor::Accept { slot, .. }) => Some((Some(to.0), *slot)),
                Output::Acceptors(ToAcceptor::Accept { slot, .. }) => Some((None, *slot)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_new_slot_goes_to_a_majority_of_the_acceptors_linked_and_to_all_when_one_leaves() {
        let link = |id, event| Input::AcceptorLink(ClusterId(id), event);
        let request = |text| Input::Client(ConnectionId(1), ClientEvent::Request(from_line(text)));
        let mut p = leader();
        p.tick(vec![Input::Client(ConnectionId(1), ClientEvent::Opened)]);
        // One acceptor linked: not a majority, so to all.
        p.tick(vec![link(2, Membership::Joined)]);
        assert_eq!(accepts_to(&p.tick(vec![request("SET a 1")])), [(None, 0)]);
        // All three: to the two lowest.
        p.tick(vec![
            link(0, Membership::Joined),
            link(1, Membership::Joined),
        ]);
        assert_eq!(
            accepts_to(&p.tick(vec![request("SET b 2")])),
            [(Some(0), 1), (Some(1), 1)]
        );
        // Acceptor 1 leaves with slots 0 and 1 in flight: both go to all at
        // once, and the next slot to the two still linked.
        assert_eq!(
            accepts_to(&p.tick(vec![link(1, Membership::Left)])),
            [(None, 0), (None, 1)]
        );
        assert_eq!(
            accepts_to(&p.tick(vec![request("SET c 3")])),
            [(Some(0), 2), (Some(2), 2)]
        );
        // A slot one of them does not answer goes to all at its retry.
        let accepted = |from, slot| {
            Input::Acceptor(
                ClusterId(from),
                FromAcceptor::Accepted {
                    ballot: p_ballot(&p),
                    slot,
                },
            )
        };
        let chosen = p.tick(vec![
            accepted(0, 0),
            accepted(2, 0),
            accepted(0, 1),
            accepted(2, 1),
        ]);
        // Both chosen: their SETs are answered.
        assert_eq!(
            chosen
                .iter()
                .filter(|o| matches!(o, Output::Reply(_, Reply::Ok)))
                .count(),
            2
        );
        let mut retried = Vec::new();
        for _ in 0..MAJORITY_RETRY {
            retried.extend(accepts_to(&p.tick(vec![Input::Clock])));
        }
        assert_eq!(retried, [(None, 2)], "after {MAJORITY_RETRY} ticks");
        // Then, sent to all, at the usual retry.
        for _ in 0..ACCEPT_RETRY - 1 {
            assert_eq!(accepts_to(&p.tick(vec![Input::Clock])), []);
        }
        assert_eq!(accepts_to(&p.tick(vec![Input::Clock])), [(None, 2)]);
    }

    fn p_ballot(p: &Proposer) -> Ballot {
        match &p.role {
            Role::Leader { ballot, .. } => *ballot,
            _ => panic!("leads"),
        }
    }

    #[test]
    fn a_leader_without_a_majority_stops_proposing_at_its_limit() {
        let mut p = leader();
        let c = ConnectionId(1);
        p.tick(vec![Input::Client(c, ClientEvent::Opened)]);
        // No acceptor answers: one slot per tick, up to the limit.
        for _ in 0..MAX_IN_FLIGHT + 10 {
            p.tick(vec![Input::Client(
                c,
                ClientEvent::Request(from_line("GET k")),
            )]);
        }
        let Role::Leader { in_flight, .. } = &p.role else {
            panic!("leads")
        };
        assert_eq!(in_flight.len(), MAX_IN_FLIGHT);
        // What it did not propose stays pending at its proposer.
        assert_eq!(p.unanswered().count(), MAX_IN_FLIGHT + 10);
    }
}
