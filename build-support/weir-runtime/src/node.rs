//! [`Node`]: one running instance, as generated code drives it.
//!
//! Each tick: [`Node::next_tick`] waits until there is something to do (a source
//! with more records, or frames from peers), generated code drains every root
//! through its fused operators into [`Outbox`]es, and each outbox is flushed as one
//! frame per destination. A channel closes once everything upstream of it has
//! ended; the node ends when its sources are done and every inbound channel is
//! closed, so finite flows terminate on their own.

use crate::auth::Key;
use crate::cli::{Auth, Config};
use crate::error::{Error, Result};
use crate::frame::{append_close, append_frame, Header, CLOSE_BIT, DEFAULT_MAX_FRAME, HEADER_LEN};
use crate::ops::Witness;
use crate::spec::{InstanceId, RoleKind, RoleSpec};
use crate::topology::Topology;
use crate::transport::{LinkEvent, LinkPlan, Links, PeerPlan, PeerWriter, Tcp, Transport};
use serde::{de::DeserializeOwned, Serialize};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, Notify};
use tokio::task::AbortHandle;
use tokio::time::Instant;
use weir_core::ClusterId;

struct Peer {
    name: String,
    address: String,
    role: String,
    index: u32,
    writer: PeerWriter,
    /// Frames queued for this peer, written out in one syscall once they pass
    /// [`WRITE_AT`] bytes, when the node goes idle, or after [`MAX_HELD_TICKS`]
    /// busy ticks.
    pending: Vec<u8>,
    /// How much of `pending` the current write-out has handed to the socket.
    written: usize,
    /// Inbound channels this peer has not closed yet.
    open_towards_us: Vec<u32>,
    /// Whether our sending side is shut.
    shut: bool,
}

impl Peer {
    fn describe(&self) -> String {
        format!("{} ({})", self.name, self.address)
    }

    fn sending_failed(&self, e: std::io::Error) -> Error {
        Error::new(format!(
            "lost peer {}: sending failed: {e}",
            self.describe()
        ))
    }
}

struct InboundChannel {
    id: u32,
    /// Frames received this tick: (peer, payload).
    frames: Vec<(usize, Vec<u8>)>,
    /// Senders that have not closed the channel yet.
    open: usize,
}

/// One running instance of a role.
pub struct Node {
    spec: &'static RoleSpec,
    peers: Vec<Peer>,
    events: mpsc::Receiver<LinkEvent>,
    inbound: Vec<InboundChannel>,
    /// Outbound channels still open, with their destination peers.
    outbound_open: Vec<(u32, Vec<usize>)>,
    /// Frames this instance sends itself, taken in as soon as they are queued.
    loopback: Vec<u8>,
    /// Busy ticks since the peers' queues were last all written out.
    held_ticks: u32,
    tick_requested: bool,
    /// A link failure, reported after the tick that processes what arrived before it.
    failure: Option<Error>,
    me: InstanceId,
    /// Every role's instance count, from the topology.
    sizes: Vec<(&'static str, u32)>,
    /// Woken by source tasks and by the stop signal.
    wake: Arc<Notify>,
    /// Set once SIGTERM or SIGINT arrived.
    stop: Arc<AtomicBool>,
    /// When stopping: sources have ended, and inbound channels have until then to
    /// close.
    stopping: Option<Instant>,
    /// Every source task started (aborted when stopping), and how many ended.
    source_tasks: Vec<AbortHandle>,
    ended_sources: usize,
    /// Whether the transport still delivers events.
    links_open: bool,
}

/// The destination that is this instance itself (sends between members of one
/// cluster).
const LOOPBACK: usize = usize::MAX;

/// A peer's queued frames are written out once they reach this size, whatever
/// the tick.
const WRITE_AT: usize = 64 * 1024;

/// Otherwise they are written when the node goes idle, or after this many busy
/// ticks: a node that never waits still sends what it queued.
const MAX_HELD_TICKS: u32 = 4;

/// How long a stopping node waits for its peers to close their channels.
const DRAIN_GRACE: Duration = Duration::from_secs(5);

impl Node {
    /// Reads the topology, links with every peer, and prepares the channels.
    pub(crate) async fn start(spec: &'static RoleSpec, config: Config) -> Result<Node> {
        let origin = config.topology.display().to_string();
        let topology = Topology::load(&config.topology)?;
        let me = topology.check(spec, config.index, &origin)?;
        let listen = topology.addresses(spec.role)[me.index as usize].clone();

        let mut peers = Vec::new();
        for role in spec.linked_roles() {
            let kind = spec
                .role_decl(role)
                .expect("channels name declared roles")
                .kind;
            for (index, address) in topology.addresses(role).iter().enumerate() {
                let id = InstanceId {
                    role: role.to_string(),
                    index: index as u32,
                };
                if id == me {
                    continue;
                }
                let dial = (me.role.as_str(), me.index) < (role, id.index);
                peers.push(PeerPlan {
                    name: id.display(kind),
                    id,
                    address: address.clone(),
                    dial,
                });
            }
        }
        let key = match &config.auth {
            Auth::KeyFile(path) => Some(Key::load(path)?),
            Auth::Insecure => {
                eprintln!(
                    "warning: {}: running without authentication (--insecure-no-auth): any process that can reach {listen} can join the flow",
                    me.display(spec.kind())
                );
                None
            }
            Auth::Missing => {
                return Err(Error::new(
                    "no deployment key: pass --key-file FILE (or set WEIR_KEY_FILE) with the key every instance shares, or --insecure-no-auth to run without authentication",
                ))
            }
        };
        let plan = LinkPlan {
            me,
            listen,
            peers,
            flow: spec.flow,
            flow_hash: spec.flow_hash,
            connect_timeout: config.connect_timeout,
            max_frame: DEFAULT_MAX_FRAME,
            key,
        };
        let links = Tcp.connect(&plan).await?;
        let sizes = spec
            .roles
            .iter()
            .map(|r| (r.name, topology.addresses(r.name).len() as u32))
            .collect();
        let node = Node::new(spec, &plan, links, sizes);
        stop_on_signals(node.stop.clone(), node.wake.clone());
        Ok(node)
    }

    /// A node over already-established links (any transport). `sizes` gives every
    /// role's instance count.
    pub fn new(
        spec: &'static RoleSpec,
        plan: &LinkPlan,
        links: Links,
        sizes: Vec<(&'static str, u32)>,
    ) -> Node {
        let Links { events, writers } = links;
        let peers: Vec<Peer> = plan
            .peers
            .iter()
            .zip(writers)
            .map(|(p, writer)| Peer {
                name: p.name.clone(),
                address: p.address.clone(),
                role: p.id.role.clone(),
                index: p.id.index,
                writer,
                pending: Vec::new(),
                written: 0,
                open_towards_us: spec
                    .channels
                    .iter()
                    .filter(|c| c.to == spec.role && c.from == p.id.role)
                    .map(|c| c.id)
                    .collect(),
                shut: false,
            })
            .collect();
        let inbound = spec
            .channels
            .iter()
            .filter(|c| c.to == spec.role)
            .map(|c| InboundChannel {
                id: c.id,
                frames: Vec::new(),
                // Between members of one cluster, this instance is a sender too.
                open: peers.iter().filter(|p| p.role == c.from).count()
                    + usize::from(c.from == spec.role),
            })
            .collect();
        let outbound_open = spec
            .channels
            .iter()
            .filter(|c| c.from == spec.role)
            .map(|c| {
                // Every instance of the destination role: the one instance of a
                // process, or every member of a cluster for a broadcast.
                // In member order, with this instance itself when it is a member.
                let mut dests: Vec<(u32, usize)> = peers
                    .iter()
                    .enumerate()
                    .filter(|(_, p)| p.role == c.to)
                    .map(|(i, p)| (p.index, i))
                    .collect();
                if c.to == spec.role {
                    dests.push((plan.me.index, LOOPBACK));
                }
                dests.sort();
                (c.id, dests.into_iter().map(|(_, dest)| dest).collect())
            })
            .collect();
        Node {
            spec,
            peers,
            events,
            inbound,
            outbound_open,
            loopback: Vec::new(),
            held_ticks: 0,
            tick_requested: true,
            failure: None,
            me: plan.me.clone(),
            sizes,
            wake: Arc::new(Notify::new()),
            stop: Arc::new(AtomicBool::new(false)),
            stopping: None,
            source_tasks: Vec::new(),
            ended_sources: 0,
            links_open: true,
        }
    }

    /// Whether the node was told to stop: sources end, channels drain.
    pub fn is_stopping(&self) -> bool {
        self.stopping.is_some()
    }

    pub(crate) fn waker(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    pub(crate) fn source_started(&mut self, task: AbortHandle) {
        self.source_tasks.push(task);
    }

    pub(crate) fn source_ended(&mut self) {
        self.ended_sources += 1;
    }

    /// The members of cluster `role`, for `self_id()` and `members()` in quoted code.
    pub fn cluster(&self, role: &str) -> ClusterView {
        let size = self
            .sizes
            .iter()
            .find(|(r, _)| *r == role)
            .map_or(0, |&(_, n)| n);
        ClusterView {
            self_id: (self.me.role == role).then_some(ClusterId(self.me.index)),
            members: (0..size).map(ClusterId).collect(),
            role: role.to_string(),
        }
    }

    /// Asks for another tick even if nothing arrives (a source has more records).
    pub fn request_tick(&mut self) {
        self.tick_requested = true;
    }

    /// Waits for the next tick. `false` once nothing more can happen: no tick was
    /// requested, every inbound channel is closed and every source has ended (or
    /// the node is stopping and its peers had their grace period).
    pub async fn next_tick(&mut self) -> Result<bool> {
        if let Some(failure) = self.failure.take() {
            return Err(failure);
        }
        self.observe_stop();
        if std::mem::take(&mut self.tick_requested) {
            // Busy: frames may wait a few ticks to leave in fewer, larger writes.
            self.held_ticks += 1;
            if self.held_ticks >= MAX_HELD_TICKS {
                self.write_all_pending().await?;
            }
            // Let the readers and source tasks run between busy ticks.
            tokio::task::yield_now().await;
            self.take_arrived()?;
            return Ok(true);
        }
        // Going idle: nothing may wait.
        self.write_all_pending().await?;
        loop {
            let inbound_open = self.inbound.iter().any(|c| c.open > 0);
            let sources_live =
                self.source_tasks.len() > self.ended_sources && self.stopping.is_none();
            if !inbound_open && !sources_live {
                return Ok(false);
            }
            let grace = self.stopping;
            tokio::select! {
                event = self.events.recv(), if self.links_open => match event {
                    Some(event) => {
                        self.handle(event)?;
                        break;
                    }
                    None if inbound_open => {
                        return Err(Error::new(
                            "every link to the peers has ended while channels were still open",
                        ))
                    }
                    None => self.links_open = false,
                },
                _ = self.wake.notified() => {
                    self.observe_stop();
                    break;
                }
                _ = sleep_until_or_never(grace) => {
                    let open: Vec<u32> = self.inbound.iter().filter(|c| c.open > 0).map(|c| c.id).collect();
                    eprintln!(
                        "warning: {}: stopping without waiting further for channels {open:?} to close",
                        self.me.display(self.kind())
                    );
                    return Ok(false);
                }
            }
        }
        self.take_arrived()?;
        Ok(true)
    }

    fn kind(&self) -> RoleKind {
        self.spec.kind()
    }

    /// Turns a received stop signal into a stopping node: one more tick, in which
    /// sources end and channels close.
    fn observe_stop(&mut self) {
        if self.stopping.is_none() && self.stop.load(Ordering::Relaxed) {
            self.stopping = Some(Instant::now() + DRAIN_GRACE);
            self.tick_requested = true;
            for task in &self.source_tasks {
                task.abort();
            }
        }
    }

    /// Handles everything that has already arrived, without waiting. Stops at a
    /// link failure: this tick still processes what came before it.
    fn take_arrived(&mut self) -> Result<()> {
        while self.failure.is_none() {
            match self.events.try_recv() {
                Ok(event) => self.handle(event)?,
                Err(_) => break,
            }
        }
        Ok(())
    }

    /// Takes in one event. Protocol violations fail at once; a lost or failed link
    /// is kept in `failure` for the next tick.
    fn handle(&mut self, event: LinkEvent) -> Result<()> {
        match event {
            LinkEvent::Frame {
                peer,
                channel,
                payload,
            } => {
                let closing = channel & CLOSE_BIT != 0;
                let id = channel & !CLOSE_BIT;
                let p = &mut self.peers[peer];
                let Some(pos) = p.open_towards_us.iter().position(|&c| c == id) else {
                    return Err(Error::new(format!(
                        "peer {} sent a frame on channel {id}, which it has no open stream on to {}",
                        p.describe(),
                        self.spec.role
                    )));
                };
                if closing {
                    if !payload.is_empty() {
                        return Err(Error::new(format!(
                            "peer {} sent a malformed close of channel {id}",
                            p.describe()
                        )));
                    }
                    p.open_towards_us.swap_remove(pos);
                    let channel = self
                        .inbound
                        .iter_mut()
                        .find(|c| c.id == id)
                        .expect("open channels are inbound");
                    channel.open -= 1;
                } else {
                    let channel = self
                        .inbound
                        .iter_mut()
                        .find(|c| c.id == id)
                        .expect("open channels are inbound");
                    channel.frames.push((peer, payload));
                }
                Ok(())
            }
            LinkEvent::Eof { peer } => {
                let p = &self.peers[peer];
                if !p.open_towards_us.is_empty() {
                    self.failure = Some(Error::new(format!(
                        "lost peer {}: its connection closed before its streams ended (channels {:?} still open)",
                        p.describe(),
                        p.open_towards_us
                    )));
                }
                Ok(())
            }
            LinkEvent::Failed {
                peer,
                reason,
                vanished,
            } => {
                let peer = self.peers[peer].describe();
                let message = if vanished {
                    format!("lost peer {peer}: {reason}")
                } else {
                    format!("link with peer {peer} failed: {reason}")
                };
                self.failure = Some(Error::new(message));
                Ok(())
            }
        }
    }

    /// A typed receiver for channel `id`.
    pub fn inbox<T: DeserializeOwned>(&mut self, id: u32) -> (Inbox<T>, Witness<T>) {
        (
            Inbox {
                channel: id,
                records: Vec::new(),
            },
            Witness::new(),
        )
    }

    /// A typed receiver for channel `id` from a cluster: records come tagged with
    /// the member that sent them.
    pub fn inbox_tagged<T: DeserializeOwned>(
        &mut self,
        id: u32,
    ) -> (TaggedInbox<T>, Witness<(ClusterId, T)>) {
        (
            TaggedInbox {
                channel: id,
                records: Vec::new(),
                batch: Vec::new(),
            },
            Witness::new(),
        )
    }

    fn dests(&self, id: u32) -> Vec<usize> {
        self.outbound_open
            .iter()
            .find(|(c, _)| *c == id)
            .map(|(_, d)| d.clone())
            .unwrap_or_default()
    }

    /// A sender for channel `id` whose records are `(ClusterId, T)`: each `T` goes
    /// to the member named.
    pub fn outbox_to_members<T: Serialize>(
        &mut self,
        id: u32,
        _records: &Witness<(ClusterId, T)>,
    ) -> MemberOutbox<T> {
        MemberOutbox::new(id, self.dests(id), self.channel_role(id))
    }

    /// A sender for channel `id` that hands records to the members in turn.
    pub fn outbox_round_robin<T: Serialize>(
        &mut self,
        id: u32,
        _records: &Witness<T>,
    ) -> RoundRobinOutbox<T> {
        RoundRobinOutbox {
            inner: MemberOutbox::new(id, self.dests(id), self.channel_role(id)),
            next: 0,
        }
    }

    fn channel_role(&self, id: u32) -> &'static str {
        self.spec
            .channels
            .iter()
            .find(|c| c.id == id)
            .map_or("?", |c| c.to)
    }

    /// A typed sender for channel `id`.
    pub fn outbox<T: Serialize>(&mut self, id: u32, _records: &Witness<T>) -> Outbox<T> {
        let dests = self.dests(id);
        Outbox {
            channel: id,
            records: Vec::new(),
            dests,
            closed: false,
        }
    }

    fn inbound_closed(&self, id: u32) -> bool {
        self.inbound
            .iter()
            .find(|c| c.id == id)
            .is_none_or(|c| c.open == 0)
    }

    /// The buffer frames for `dest` are queued in.
    fn queue_of(&mut self, dest: usize) -> &mut Vec<u8> {
        match dest {
            LOOPBACK => &mut self.loopback,
            peer => &mut self.peers[peer].pending,
        }
    }

    /// Queues one frame of `channel` for every destination in `dests`, its payload
    /// encoded once (into the first destination's queue, then copied).
    async fn send_frame(
        &mut self,
        dests: &[usize],
        channel: u32,
        payload: impl FnOnce(&mut Vec<u8>) -> std::result::Result<(), String>,
    ) -> Result<()> {
        let Some((&first, rest)) = dests.split_first() else {
            return Ok(());
        };
        let queue = self.queue_of(first);
        let start = queue.len();
        append_frame(queue, channel, payload)
            .map_err(|e| Error::new(format!("cannot encode a batch for channel {channel}: {e}")))?;
        if !rest.is_empty() {
            let source = std::mem::take(self.queue_of(first));
            for &dest in rest {
                self.queue_of(dest).extend_from_slice(&source[start..]);
            }
            *self.queue_of(first) = source;
        }
        self.queued(dests).await
    }

    /// After frames were queued for `dests`: takes in the ones sent to this
    /// instance, and writes out the queues that are full.
    async fn queued(&mut self, dests: &[usize]) -> Result<()> {
        for &dest in dests {
            if dest == LOOPBACK {
                self.deliver_locally();
            } else if self.peers[dest].pending.len() >= WRITE_AT {
                self.write_pending(dest).await?;
            }
        }
        Ok(())
    }

    /// Writes out everything queued for `dest`.
    async fn write_pending(&mut self, dest: usize) -> Result<()> {
        self.write_out(Some(dest)).await
    }

    async fn write_all_pending(&mut self) -> Result<()> {
        self.write_out(None).await
    }

    /// Writes out the queues of `only` (or of every peer), to all of them at once:
    /// a peer whose socket is full does not hold up the others.
    async fn write_out(&mut self, only: Option<usize>) -> Result<()> {
        if only.is_none() {
            self.held_ticks = 0;
        }
        let peers = match only {
            Some(dest) => &mut self.peers[dest..=dest],
            None => &mut self.peers[..],
        };
        if peers.iter().all(|p| p.pending.is_empty()) {
            return Ok(());
        }
        std::future::poll_fn(|cx| {
            let mut waiting = false;
            for peer in peers.iter_mut() {
                while peer.written < peer.pending.len() {
                    let rest = &peer.pending[peer.written..];
                    match Pin::new(&mut peer.writer).poll_write(cx, rest) {
                        Poll::Ready(Ok(0)) => {
                            let e = std::io::Error::from(std::io::ErrorKind::WriteZero);
                            return Poll::Ready(Err(peer.sending_failed(e)));
                        }
                        Poll::Ready(Ok(n)) => peer.written += n,
                        Poll::Ready(Err(e)) => return Poll::Ready(Err(peer.sending_failed(e))),
                        Poll::Pending => {
                            waiting = true;
                            break;
                        }
                    }
                }
            }
            if waiting {
                Poll::Pending
            } else {
                Poll::Ready(Ok(()))
            }
        })
        .await?;
        for peer in peers {
            peer.pending.clear();
            peer.written = 0;
            if peer.pending.capacity() > 4 * WRITE_AT {
                // One huge batch should not pin its memory for the rest of the run.
                peer.pending = Vec::new();
            }
        }
        Ok(())
    }

    async fn close_channel(&mut self, id: u32) -> Result<()> {
        let Some(pos) = self.outbound_open.iter().position(|(c, _)| *c == id) else {
            return Ok(());
        };
        let (_, dests) = self.outbound_open.swap_remove(pos);
        for &dest in &dests {
            append_close(self.queue_of(dest), id);
        }
        self.queued(&dests).await?;
        for &dest in &dests {
            // Nothing more will go to a peer once all our channels to it are closed.
            if !self.outbound_open.iter().any(|(_, d)| d.contains(&dest)) {
                self.shut(dest).await?;
            }
        }
        Ok(())
    }

    /// Takes in the frames this instance sent to itself (between members of one
    /// cluster), at the next tick, as if they had arrived.
    fn deliver_locally(&mut self) {
        let frames = std::mem::take(&mut self.loopback);
        let mut rest = &frames[..];
        while rest.len() >= HEADER_LEN {
            let header = Header::parse(rest[..HEADER_LEN].try_into().expect("a header"));
            let end = HEADER_LEN + header.len as usize;
            let id = header.channel & !CLOSE_BIT;
            if let Some(inbound) = self.inbound.iter_mut().find(|c| c.id == id) {
                if header.channel & CLOSE_BIT != 0 {
                    inbound.open -= 1;
                } else {
                    inbound
                        .frames
                        .push((LOOPBACK, rest[HEADER_LEN..end].to_vec()));
                }
            }
            rest = &rest[end..];
        }
        self.tick_requested = true;
    }

    /// Writes out what is queued for `dest`, then shuts our sending side.
    async fn shut(&mut self, dest: usize) -> Result<()> {
        if dest == LOOPBACK || std::mem::replace(&mut self.peers[dest].shut, true) {
            return Ok(());
        }
        self.write_pending(dest).await?;
        let peer = &mut self.peers[dest];
        peer.writer
            .shutdown()
            .await
            .map_err(|e| peer.sending_failed(e))
    }

    /// Ends the run: closes what is still open, and waits until every frame has
    /// been handed to the operating system.
    pub async fn finish(mut self) -> Result<()> {
        for task in &self.source_tasks {
            task.abort();
        }
        while let Some(&(id, _)) = self.outbound_open.first() {
            self.close_channel(id).await?;
        }
        for dest in 0..self.peers.len() {
            self.shut(dest).await?;
        }
        Ok(())
    }
}

/// Decodes the frames that arrived on `channel` for this tick, batch by batch,
/// appending each to `out`; `each` then gets the sender's index in its role.
fn receive_batches<T: DeserializeOwned>(
    node: &mut Node,
    channel: u32,
    out: &mut Vec<T>,
    mut each: impl FnMut(u32, &mut Vec<T>),
) -> Result<()> {
    let Some(inbound) = node.inbound.iter_mut().find(|c| c.id == channel) else {
        return Ok(());
    };
    for (peer, payload) in inbound.frames.drain(..) {
        let sender = node.peers.get(peer);
        weir_core::codec::decode_batch_into(&payload, out).map_err(|e| {
            let sender = match sender {
                Some(p) => format!("peer {}", p.describe()),
                None => "this instance".to_string(),
            };
            Error::new(format!(
                "frame from {sender} on channel {channel} does not decode as a batch of `{}`: {e}",
                std::any::type_name::<T>()
            ))
        })?;
        each(sender.map_or(node.me.index, |p| p.index), out);
    }
    Ok(())
}

/// Receives one channel's batches, decoded into a buffer reused across ticks.
pub struct Inbox<T> {
    channel: u32,
    records: Vec<T>,
}

impl<T: DeserializeOwned> Inbox<T> {
    /// Decodes the frames that arrived for this tick.
    pub fn receive(&mut self, node: &mut Node) -> Result<()> {
        receive_batches(node, self.channel, &mut self.records, |_, _| {})
    }

    /// This tick's records.
    pub fn drain(&mut self) -> std::vec::Drain<'_, T> {
        self.records.drain(..)
    }

    /// Whether every sender has closed the channel.
    pub fn is_closed(&self, node: &Node) -> bool {
        node.inbound_closed(self.channel)
    }
}

/// An [`Inbox`] for records from a cluster, tagged with the sending member.
pub struct TaggedInbox<T> {
    channel: u32,
    records: Vec<(ClusterId, T)>,
    /// One batch, before tagging.
    batch: Vec<T>,
}

impl<T: DeserializeOwned> TaggedInbox<T> {
    /// Decodes the frames that arrived for this tick.
    pub fn receive(&mut self, node: &mut Node) -> Result<()> {
        receive_batches(node, self.channel, &mut self.batch, |sender, batch| {
            let id = ClusterId(sender);
            self.records.extend(batch.drain(..).map(|r| (id, r)));
        })
    }

    /// This tick's records.
    pub fn drain(&mut self) -> std::vec::Drain<'_, (ClusterId, T)> {
        self.records.drain(..)
    }

    /// Whether every sender has closed the channel.
    pub fn is_closed(&self, node: &Node) -> bool {
        node.inbound_closed(self.channel)
    }
}

/// What quoted code sees of a cluster: its members, and its own id at a member.
#[derive(Debug, Clone)]
pub struct ClusterView {
    self_id: Option<ClusterId>,
    members: Vec<ClusterId>,
    role: String,
}

impl ClusterView {
    /// The id of the member running this code.
    pub fn self_id(&self) -> ClusterId {
        match self.self_id {
            Some(id) => id,
            None => panic!("`self_id()` of cluster `{}` used outside it", self.role),
        }
    }

    /// Every member, in index order.
    pub fn members(&self) -> &[ClusterId] {
        &self.members
    }
}

/// Encodes `records` as a frame's payload.
fn encode_records<T: Serialize>(
    records: &[T],
) -> impl FnOnce(&mut Vec<u8>) -> std::result::Result<(), String> + '_ {
    move |buf| weir_core::codec::encode_batch(records, buf).map_err(|e| e.to_string())
}

/// Sends each record to one member of a cluster: one frame per member per tick.
pub struct MemberOutbox<T> {
    channel: u32,
    /// Records per member, in member order.
    records: Vec<Vec<T>>,
    dests: Vec<usize>,
    role: &'static str,
    /// A record named a member the cluster does not have.
    unknown_member: Option<ClusterId>,
    closed: bool,
}

impl<T: Serialize> MemberOutbox<T> {
    fn new(channel: u32, dests: Vec<usize>, role: &'static str) -> Self {
        MemberOutbox {
            channel,
            records: dests.iter().map(|_| Vec::new()).collect(),
            dests,
            role,
            unknown_member: None,
            closed: false,
        }
    }

    pub fn push(&mut self, (member, record): (ClusterId, T)) {
        match self.records.get_mut(member.index()) {
            Some(records) => records.push(record),
            None => self.unknown_member = Some(member),
        }
    }

    /// Sends this tick's records, one frame per member that has some, then closes
    /// the channel if `upstream_done`.
    pub async fn flush(&mut self, node: &mut Node, upstream_done: bool) -> Result<()> {
        if let Some(member) = self.unknown_member {
            return Err(Error::new(format!(
                "a record on channel {} is for member {member} of cluster `{}`, which has {} members",
                self.channel,
                self.role,
                self.dests.len()
            )));
        }
        for (records, &dest) in self.records.iter_mut().zip(&self.dests) {
            if !records.is_empty() {
                node.send_frame(&[dest], self.channel, encode_records(records))
                    .await?;
                records.clear();
            }
        }
        if upstream_done && !self.closed {
            self.closed = true;
            node.close_channel(self.channel).await?;
        }
        Ok(())
    }
}

/// Hands records to the members of a cluster in turn.
pub struct RoundRobinOutbox<T> {
    inner: MemberOutbox<T>,
    next: usize,
}

impl<T: Serialize> RoundRobinOutbox<T> {
    pub fn push(&mut self, record: T) {
        let members = self.inner.records.len();
        if members == 0 {
            self.inner.unknown_member = Some(ClusterId(0));
            return;
        }
        self.inner.records[self.next].push(record);
        self.next = (self.next + 1) % members;
    }

    pub async fn flush(&mut self, node: &mut Node, upstream_done: bool) -> Result<()> {
        self.inner.flush(node, upstream_done).await
    }
}

/// Collects one channel's records for a tick and sends them as one frame.
pub struct Outbox<T> {
    channel: u32,
    records: Vec<T>,
    dests: Vec<usize>,
    closed: bool,
}

impl<T: Serialize> Outbox<T> {
    pub fn push(&mut self, record: T) {
        self.records.push(record);
    }

    /// Sends this tick's records as one frame to every destination (encoded once),
    /// then closes the channel if `upstream_done`.
    pub async fn flush(&mut self, node: &mut Node, upstream_done: bool) -> Result<()> {
        if !self.records.is_empty() {
            node.send_frame(&self.dests, self.channel, encode_records(&self.records))
                .await?;
            self.records.clear();
        }
        if upstream_done && !self.closed {
            self.closed = true;
            node.close_channel(self.channel).await?;
        }
        Ok(())
    }
}

/// Sleeps until `deadline`, or for ever without one.
async fn sleep_until_or_never(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// On the first SIGTERM or SIGINT, sets `stop` and wakes the node; on a second,
/// exits at once.
fn stop_on_signals(stop: Arc<AtomicBool>, wake: Arc<Notify>) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        eprintln!("warning: cannot listen for SIGTERM/SIGINT; the default handlers stay");
        return;
    };
    tokio::spawn(async move {
        for round in 0.. {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            if round > 0 {
                std::process::exit(130);
            }
            stop.store(true, Ordering::Relaxed);
            wake.notify_one();
        }
    });
}
