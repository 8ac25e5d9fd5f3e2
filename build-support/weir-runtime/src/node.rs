//! [`Node`]: one running instance, as generated code drives it.
//!
//! Each tick: [`Node::next_tick`] waits until there is something to do (a source
//! with more records, or frames from peers), generated code drains every root
//! through its fused operators into [`Outbox`]es, and each outbox is flushed as one
//! frame per destination. A channel closes once everything upstream of it has
//! ended; the node ends when its sources are done and every inbound channel is
//! closed, so finite flows terminate on their own.

use crate::cli::Config;
use crate::error::{Error, Result};
use crate::frame::{begin_frame, close_frame, finish_frame, CLOSE_BIT, DEFAULT_MAX_FRAME};
use crate::ops::Witness;
use crate::spec::{InstanceId, RoleSpec};
use crate::topology::Topology;
use crate::transport::{LinkEvent, LinkPlan, Links, Outgoing, PeerPlan, Tcp, Transport};
use serde::{de::DeserializeOwned, Serialize};
use std::io;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

struct Peer {
    name: String,
    address: String,
    role: String,
    out: mpsc::Sender<Outgoing>,
    writer: Option<JoinHandle<io::Result<()>>>,
    /// Inbound channels this peer has not closed yet.
    open_towards_us: Vec<u32>,
    /// Whether we told the writer to shut down our sending side.
    shut: bool,
}

impl Peer {
    fn describe(&self) -> String {
        format!("{} ({})", self.name, self.address)
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
    tick_requested: bool,
    /// A link failure, reported after the tick that processes what arrived before it.
    failure: Option<Error>,
}

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
        let plan = LinkPlan {
            me,
            listen,
            peers,
            flow: spec.flow,
            flow_hash: spec.flow_hash,
            connect_timeout: config.connect_timeout,
            max_frame: DEFAULT_MAX_FRAME,
        };
        let links = Tcp.connect(&plan).await?;
        Ok(Node::new(spec, &plan, links))
    }

    /// A node over already-established links (any transport).
    pub fn new(spec: &'static RoleSpec, plan: &LinkPlan, links: Links) -> Node {
        let Links {
            events,
            outgoing,
            writers,
        } = links;
        let peers: Vec<Peer> = plan
            .peers
            .iter()
            .zip(outgoing)
            .zip(writers)
            .map(|((p, out), writer)| Peer {
                name: p.name.clone(),
                address: p.address.clone(),
                role: p.id.role.clone(),
                out,
                writer: Some(writer),
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
                open: peers.iter().filter(|p| p.role == c.from).count(),
            })
            .collect();
        let outbound_open = spec
            .channels
            .iter()
            .filter(|c| c.from == spec.role)
            .map(|c| {
                // Every instance of the destination role: the one instance of a
                // process, or every member of a cluster for a broadcast.
                let dests: Vec<usize> = peers
                    .iter()
                    .enumerate()
                    .filter(|(_, p)| p.role == c.to)
                    .map(|(i, _)| i)
                    .collect();
                (c.id, dests)
            })
            .collect();
        Node {
            spec,
            peers,
            events,
            inbound,
            outbound_open,
            tick_requested: true,
            failure: None,
        }
    }

    /// Asks for another tick even if nothing arrives (a source has more records).
    pub fn request_tick(&mut self) {
        self.tick_requested = true;
    }

    /// Waits for the next tick. `false` once nothing more can happen: no tick was
    /// requested and every inbound channel is closed.
    pub async fn next_tick(&mut self) -> Result<bool> {
        if let Some(failure) = self.failure.take() {
            return Err(failure);
        }
        if std::mem::take(&mut self.tick_requested) {
            self.take_arrived()?;
            return Ok(true);
        }
        if self.inbound.iter().all(|c| c.open == 0) {
            return Ok(false);
        }
        match self.events.recv().await {
            Some(event) => self.handle(event)?,
            None => {
                return Err(Error::new(
                    "every link to the peers has ended while channels were still open",
                ))
            }
        }
        self.take_arrived()?;
        Ok(true)
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
            LinkEvent::Failed { peer, reason } => {
                let message = format!(
                    "link with peer {} failed: {reason}",
                    self.peers[peer].describe()
                );
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

    /// A typed sender for channel `id`.
    pub fn outbox<T: Serialize>(&mut self, id: u32, _records: &Witness<T>) -> Outbox<T> {
        let dests = self
            .outbound_open
            .iter()
            .find(|(c, _)| *c == id)
            .map(|(_, d)| d.clone())
            .unwrap_or_default();
        Outbox {
            channel: id,
            records: Vec::new(),
            dests,
            closed: false,
            frame_capacity: 1024,
        }
    }

    fn inbound_closed(&self, id: u32) -> bool {
        self.inbound
            .iter()
            .find(|c| c.id == id)
            .is_none_or(|c| c.open == 0)
    }

    async fn send(&mut self, dest: usize, message: Outgoing) -> Result<()> {
        let peer = &mut self.peers[dest];
        if peer.out.send(message).await.is_ok() {
            return Ok(());
        }
        // The writer stopped: say why.
        let reason = match peer.writer.take() {
            Some(writer) => match writer.await {
                Ok(Err(e)) => e.to_string(),
                _ => "its writer stopped".to_string(),
            },
            None => "its writer stopped".to_string(),
        };
        Err(Error::new(format!(
            "lost peer {}: sending failed: {reason}",
            peer.describe()
        )))
    }

    async fn close_channel(&mut self, id: u32) -> Result<()> {
        let Some(pos) = self.outbound_open.iter().position(|(c, _)| *c == id) else {
            return Ok(());
        };
        let (_, dests) = self.outbound_open.swap_remove(pos);
        let frame = Arc::new(close_frame(id));
        for &dest in &dests {
            self.send(dest, Outgoing::Frame(frame.clone())).await?;
            // Nothing more will go to a peer once all our channels to it are closed.
            if !self.outbound_open.iter().any(|(_, d)| d.contains(&dest)) {
                self.shut(dest).await?;
            }
        }
        Ok(())
    }

    async fn shut(&mut self, dest: usize) -> Result<()> {
        if !std::mem::replace(&mut self.peers[dest].shut, true) {
            self.send(dest, Outgoing::Shutdown).await?;
        }
        Ok(())
    }

    /// Ends the run: closes what is still open, and waits until every frame has
    /// been handed to the operating system.
    pub async fn finish(mut self) -> Result<()> {
        while let Some(&(id, _)) = self.outbound_open.first() {
            self.close_channel(id).await?;
        }
        for dest in 0..self.peers.len() {
            self.shut(dest).await?;
        }
        for peer in &mut self.peers {
            if let Some(writer) = peer.writer.take() {
                match writer.await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => {
                        return Err(Error::new(format!(
                            "lost peer {}: sending failed: {e}",
                            peer.describe()
                        )))
                    }
                    Err(e) => {
                        return Err(Error::new(format!(
                            "writer for peer {} failed: {e}",
                            peer.describe()
                        )))
                    }
                }
            }
        }
        Ok(())
    }
}

/// Receives one channel's batches, decoded into a buffer reused across ticks.
pub struct Inbox<T> {
    channel: u32,
    records: Vec<T>,
}

impl<T: DeserializeOwned> Inbox<T> {
    /// Decodes the frames that arrived for this tick.
    pub fn receive(&mut self, node: &mut Node) -> Result<()> {
        let Some(channel) = node.inbound.iter_mut().find(|c| c.id == self.channel) else {
            return Ok(());
        };
        for (peer, payload) in channel.frames.drain(..) {
            let batch: Vec<T> = weir_core::codec::decode_batch(&payload).map_err(|e| {
                Error::new(format!(
                    "frame from peer {} on channel {} does not decode as a batch of `{}`: {e}",
                    node.peers[peer].describe(),
                    self.channel,
                    std::any::type_name::<T>()
                ))
            })?;
            self.records.extend(batch);
        }
        Ok(())
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

/// Collects one channel's records for a tick and sends them as one frame.
pub struct Outbox<T> {
    channel: u32,
    records: Vec<T>,
    dests: Vec<usize>,
    closed: bool,
    /// Size of the last frame: the next one starts with that capacity.
    frame_capacity: usize,
}

impl<T: Serialize> Outbox<T> {
    pub fn push(&mut self, record: T) {
        self.records.push(record);
    }

    /// Sends this tick's records as one frame to every destination (encoded once),
    /// then closes the channel if `upstream_done`.
    pub async fn flush(&mut self, node: &mut Node, upstream_done: bool) -> Result<()> {
        if !self.records.is_empty() {
            let mut frame = Vec::with_capacity(self.frame_capacity);
            begin_frame(&mut frame, self.channel);
            weir_core::codec::encode_batch(&self.records, &mut frame).map_err(|e| {
                Error::new(format!(
                    "cannot encode a batch for channel {}: {e}",
                    self.channel
                ))
            })?;
            finish_frame(&mut frame)
                .map_err(|e| Error::new(format!("channel {}: {e}", self.channel)))?;
            self.records.clear();
            self.frame_capacity = frame.len();
            let frame = Arc::new(frame);
            for &dest in &self.dests {
                node.send(dest, Outgoing::Frame(frame.clone())).await?;
            }
        }
        if upstream_done && !self.closed {
            self.closed = true;
            node.close_channel(self.channel).await?;
        }
        Ok(())
    }
}
