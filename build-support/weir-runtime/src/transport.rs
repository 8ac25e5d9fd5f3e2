//! Links between instances, behind an interface.
//!
//! A [`Transport`] turns a [`LinkPlan`] (who I am, whom I talk to, where they
//! listen) into [`Links`]: one stream of [`LinkEvent`]s from every peer, and one
//! byte sink per peer that the node writes its frames to. The [`Node`](crate::Node) and the
//! generated code see nothing else, so an in-process simulated network can stand
//! in for [`Tcp`] without changing them.

use crate::auth::{self, Key, Nonce, Side};
use crate::error::{Error, Result};
use crate::frame::{read_frame, Handshake};
use crate::spec::InstanceId;
use std::future::Future;
use std::time::Duration;
use tokio::io::{AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::tcp::OwnedReadHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::{sleep, timeout, timeout_at, Instant};

/// A peer to link with.
#[derive(Debug, Clone)]
pub struct PeerPlan {
    pub id: InstanceId,
    /// `worker/1` or `leader`, for messages.
    pub name: String,
    pub address: String,
    /// Whether we open the connection (else the peer does). Exactly one side of
    /// each pair dials: the one whose (role, index) sorts first.
    pub dial: bool,
}

/// Everything a transport needs to link one instance with its peers.
#[derive(Debug, Clone)]
pub struct LinkPlan {
    pub me: InstanceId,
    pub listen: String,
    pub peers: Vec<PeerPlan>,
    pub flow: &'static str,
    pub flow_hash: u64,
    /// How long to keep trying to reach (or wait for) every peer.
    pub connect_timeout: Duration,
    pub max_frame: u32,
    /// The deployment key both sides prove they hold; `None` runs without
    /// authentication (only when asked for explicitly).
    pub key: Option<Key>,
}

/// Something that happened on a link. `peer` indexes [`LinkPlan::peers`].
#[derive(Debug)]
pub enum LinkEvent {
    /// A frame (a batch, or a channel close if the channel has `CLOSE_BIT`).
    Frame {
        peer: usize,
        channel: u32,
        payload: Vec<u8>,
    },
    /// The peer closed its side cleanly, at a frame boundary.
    Eof { peer: usize },
    /// The link broke or the peer sent something unacceptable. `vanished`: the
    /// connection itself ended (reset, or closed inside a frame), as when the
    /// peer's process dies.
    Failed {
        peer: usize,
        reason: String,
        vanished: bool,
    },
}

/// Established links to every peer of a [`LinkPlan`].
pub struct Links {
    pub events: mpsc::Receiver<LinkEvent>,
    /// Where to write each peer's frames, in plan order. The node writes from its
    /// own task, whole ticks at a time: a slow peer slows the sender.
    pub writers: Vec<PeerWriter>,
}

/// The sending side of a link.
pub type PeerWriter = Box<dyn AsyncWrite + Send + Unpin>;

/// Establishes links.
pub trait Transport {
    fn connect(&self, plan: &LinkPlan) -> impl Future<Output = Result<Links>>;
}

/// Frames received but not yet taken by the node, over all peers.
const EVENT_QUEUE: usize = 16;
const IO_BUFFER: usize = 64 * 1024;
/// How long a connecting peer may take to say who it is and prove it.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections being greeted at once; more are closed at once (a flood).
const MAX_PENDING_HANDSHAKES: usize = 64;

/// TCP links: one connection per pair of instances, opened by one side.
pub struct Tcp;

impl Transport for Tcp {
    async fn connect(&self, plan: &LinkPlan) -> Result<Links> {
        let streams = establish(plan).await?;
        let (events_tx, events) = mpsc::channel(EVENT_QUEUE);
        let mut writers = Vec::new();
        for (peer, stream) in streams.into_iter().enumerate() {
            let (read, write) = stream.into_split();
            tokio::spawn(read_frames(peer, read, events_tx.clone(), plan.max_frame));
            writers.push(Box::new(write) as PeerWriter);
        }
        Ok(Links { events, writers })
    }
}

fn hello(plan: &LinkPlan, nonce: Nonce) -> Handshake {
    Handshake::Hello {
        flow_hash: plan.flow_hash,
        role: plan.me.role.clone(),
        index: plan.me.index,
        authenticated: plan.key.is_some(),
        nonce,
    }
}

fn other_build(plan: &LinkPlan, theirs: u64) -> String {
    format!(
        "it runs a different build of flow `{}` (flow hash {theirs:016x}, ours {:016x}): rebuild and redeploy all roles together",
        plan.flow, plan.flow_hash
    )
}

/// Why two instances disagree about authentication, from `ours`' point of view.
fn auth_mismatch(ours: bool) -> &'static str {
    if ours {
        "it runs without authentication (--insecure-no-auth) while this instance requires the deployment key"
    } else {
        "it authenticates with a deployment key while this instance runs with --insecure-no-auth: give every instance the same key"
    }
}

/// Connects to every peer (dialing or accepting), handshakes, and returns the
/// streams in plan order; fails naming the peers still missing at the deadline.
async fn establish(plan: &LinkPlan) -> Result<Vec<TcpStream>> {
    let deadline = Instant::now() + plan.connect_timeout;
    let mut streams: Vec<Option<TcpStream>> = plan.peers.iter().map(|_| None).collect();
    if plan.peers.is_empty() {
        return Ok(Vec::new());
    }
    let must_accept = plan.peers.iter().any(|p| !p.dial);
    let listener = if must_accept {
        Some(TcpListener::bind(&plan.listen).await.map_err(|e| {
            Error::new(format!(
                "cannot listen on {} (this instance's address in the topology): {e}",
                plan.listen
            ))
        })?)
    } else {
        None
    };

    let mut dials = JoinSet::new();
    for (i, peer) in plan.peers.iter().enumerate().filter(|(_, p)| p.dial) {
        let (peer, plan) = (peer.clone(), plan.clone());
        dials.spawn(async move { dial(&plan, &peer, deadline).await.map(|s| (i, s)) });
    }
    let mut greetings = JoinSet::new();
    let mut turned_away = 0u64;

    while streams.iter().any(Option::is_none) {
        tokio::select! {
            Some(joined) = dials.join_next() => {
                let (i, stream) = joined.map_err(|e| Error::new(format!("dialing task failed: {e}")))??;
                streams[i] = Some(stream);
            }
            accepted = accept(listener.as_ref()) => {
                let (stream, remote) = accepted?;
                if greetings.len() >= MAX_PENDING_HANDSHAKES {
                    // A flood: close at once rather than hold a task and a socket each.
                    drop(stream);
                    turned_away += 1;
                    if turned_away.is_power_of_two() {
                        eprintln!("weir: refused connection from {remote}: {MAX_PENDING_HANDSHAKES} handshakes already in progress ({turned_away} turned away so far)");
                    }
                    continue;
                }
                let plan = plan.clone();
                greetings.spawn(async move {
                    let greeting = timeout(HANDSHAKE_TIMEOUT, greet(&plan, stream)).await
                        .unwrap_or_else(|_| Greeting::Refused(format!("no complete handshake within {HANDSHAKE_TIMEOUT:?}")));
                    (remote, greeting)
                });
            }
            Some(joined) = greetings.join_next() => {
                let (remote, outcome) = joined.map_err(|e| Error::new(format!("handshake task failed: {e}")))?;
                match outcome {
                    Greeting::Peer(i, stream) if streams[i].is_none() => streams[i] = Some(stream),
                    Greeting::Peer(i, _) => eprintln!("weir: refused a second connection from {} ({remote})", plan.peers[i].name),
                    Greeting::Refused(reason) => eprintln!("weir: refused connection from {remote}: {reason}"),
                    Greeting::Fatal(reason) => return Err(Error::new(format!("connection from {remote}: {reason}"))),
                }
            }
            _ = tokio::time::sleep_until(deadline) => {
                let missing: Vec<String> = plan.peers.iter().zip(&streams)
                    .filter(|(_, s)| s.is_none())
                    .map(|(p, _)| format!("{} at {}", p.name, p.address))
                    .collect();
                return Err(Error::new(format!(
                    "no connection with {} after {:?}: is it running, and is the topology the same everywhere?",
                    missing.join(", "), plan.connect_timeout
                )));
            }
        }
    }
    Ok(streams
        .into_iter()
        .map(|s| s.expect("every peer connected"))
        .collect())
}

async fn accept(listener: Option<&TcpListener>) -> Result<(TcpStream, std::net::SocketAddr)> {
    match listener {
        Some(listener) => listener
            .accept()
            .await
            .map_err(|e| Error::new(format!("accepting connections failed: {e}"))),
        None => std::future::pending().await,
    }
}

/// Opens a connection to `peer`, retrying with backoff until `deadline`.
async fn dial(plan: &LinkPlan, peer: &PeerPlan, deadline: Instant) -> Result<TcpStream> {
    let mut backoff = Duration::from_millis(20);
    loop {
        let last_error = match timeout_at(deadline, TcpStream::connect(&peer.address)).await {
            Err(_) => "timed out".to_string(),
            Ok(Err(e)) => e.to_string(),
            Ok(Ok(mut stream)) => {
                let introduced = timeout(HANDSHAKE_TIMEOUT, introduce(plan, peer, &mut stream))
                    .await
                    .unwrap_or_else(|_| {
                        Err(Introduction::Retry("no complete handshake reply".into()))
                    });
                match introduced {
                    Ok(()) => return Ok(stream),
                    Err(Introduction::Fatal(reason)) => {
                        return Err(Error::new(format!(
                            "peer {} at {} {reason}",
                            peer.name, peer.address
                        )))
                    }
                    Err(Introduction::Retry(reason)) => reason,
                }
            }
        };
        if Instant::now() + backoff >= deadline {
            return Err(Error::new(format!(
                "cannot reach peer {} at {} within {:?}: {last_error}",
                peer.name, peer.address, plan.connect_timeout
            )));
        }
        sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_millis(500));
    }
}

enum Introduction {
    Retry(String),
    Fatal(String),
}

/// Reads the next handshake message, or says why there is none.
async fn next_message(stream: &mut TcpStream) -> Result<Handshake, String> {
    Handshake::read(stream).await.map_err(|e| e.to_string())
}

/// The dialing side of the handshake: hello, hello back, then (with a key) our
/// proof and theirs.
async fn introduce(
    plan: &LinkPlan,
    peer: &PeerPlan,
    stream: &mut TcpStream,
) -> Result<(), Introduction> {
    let _ = stream.set_nodelay(true);
    let nonce = auth::nonce().map_err(|e| Introduction::Fatal(e.to_string()))?;
    let ours = hello(plan, nonce).encode();
    stream
        .write_all(&ours)
        .await
        .map_err(|e| Introduction::Retry(e.to_string()))?;
    let reply = next_message(stream).await.map_err(Introduction::Retry)?;
    let theirs = match &reply {
        Handshake::Refusal { reason } => {
            return Err(Introduction::Fatal(format!(
                "refused the connection: {reason}"
            )))
        }
        Handshake::Proof { .. } => {
            return Err(Introduction::Retry("sent a proof before its hello".into()))
        }
        Handshake::Hello { authenticated, .. } if *authenticated != plan.key.is_some() => {
            return Err(Introduction::Fatal(
                auth_mismatch(plan.key.is_some()).to_string(),
            ))
        }
        Handshake::Hello { .. } => reply.encode(),
    };
    if let Some(key) = &plan.key {
        let transcript = [ours, theirs].concat();
        let proof = Handshake::Proof {
            tag: key.tag(Side::Dialer, &transcript),
        };
        stream
            .write_all(&proof.encode())
            .await
            .map_err(|e| Introduction::Retry(e.to_string()))?;
        match next_message(stream).await.map_err(Introduction::Retry)? {
            Handshake::Proof { tag } if key.verify(Side::Acceptor, &transcript, &tag) => {}
            Handshake::Refusal { reason } => {
                return Err(Introduction::Fatal(format!(
                    "refused the connection: {reason}"
                )))
            }
            _ => {
                return Err(Introduction::Fatal(
                    "answered without proving it holds this deployment's key".into(),
                ))
            }
        }
    }
    let Handshake::Hello {
        flow_hash,
        role,
        index,
        ..
    } = reply
    else {
        unreachable!("only a hello gets this far")
    };
    if flow_hash != plan.flow_hash {
        return Err(Introduction::Fatal(other_build(plan, flow_hash)));
    }
    if role != peer.id.role || index != peer.id.index {
        return Err(Introduction::Fatal(format!(
            "answered as {role}/{index}: the topology files differ between instances"
        )));
    }
    Ok(())
}

enum Greeting {
    Peer(usize, TcpStream),
    /// Not one of ours (or broken): refuse it and keep waiting for the real peer.
    Refused(String),
    /// One of ours (it proved it holds the key), but unusable: stop.
    Fatal(String),
}

/// The accepting side of the handshake. Nothing a connection says before it has
/// proved it holds the key can stop this instance: it is refused and logged.
async fn greet(plan: &LinkPlan, mut stream: TcpStream) -> Greeting {
    let _ = stream.set_nodelay(true);
    let first = match next_message(&mut stream).await {
        Err(reason) => return Greeting::Refused(reason),
        Ok(first) => first,
    };
    let Handshake::Hello {
        flow_hash,
        ref role,
        index,
        authenticated,
        ..
    } = first
    else {
        return Greeting::Refused("it did not start with a hello".into());
    };
    let name = format!("{role}/{index}");
    if authenticated != plan.key.is_some() {
        let reason = auth_mismatch(plan.key.is_some());
        refuse(&mut stream, reason.to_string()).await;
        return Greeting::Refused(format!("{name}: {reason}"));
    }
    let nonce = match auth::nonce() {
        Ok(nonce) => nonce,
        Err(e) => return Greeting::Fatal(e.to_string()),
    };
    let ours = hello(plan, nonce).encode();
    let mut transcript = Vec::new();
    if let Some(key) = &plan.key {
        if let Err(e) = stream.write_all(&ours).await {
            return Greeting::Refused(e.to_string());
        }
        transcript = [first.encode(), ours.clone()].concat();
        match next_message(&mut stream).await {
            Ok(Handshake::Proof { tag }) if key.verify(Side::Dialer, &transcript, &tag) => {}
            Ok(_) => {
                let reason = "authentication failed: it does not hold this deployment's key";
                refuse(&mut stream, reason.to_string()).await;
                return Greeting::Refused(format!("claims to be {name}, but {reason}"));
            }
            Err(reason) => return Greeting::Refused(format!("{name}: {reason}")),
        }
    }
    // From here on the peer is one of ours (or authentication is off).
    if flow_hash != plan.flow_hash {
        let reason = other_build(plan, flow_hash);
        refuse(&mut stream, reason.clone()).await;
        return Greeting::Fatal(format!("{name}: {reason}"));
    }
    let Some(i) = plan
        .peers
        .iter()
        .position(|p| !p.dial && p.id.role == *role && p.id.index == index)
    else {
        let reason = format!("{name} is not a peer that connects to {}", plan.me);
        refuse(&mut stream, reason.clone()).await;
        return Greeting::Refused(reason);
    };
    let last = match &plan.key {
        Some(key) => Handshake::Proof {
            tag: key.tag(Side::Acceptor, &transcript),
        }
        .encode(),
        None => ours,
    };
    if let Err(e) = stream.write_all(&last).await {
        return Greeting::Refused(e.to_string());
    }
    Greeting::Peer(i, stream)
}

/// Tells a connecting peer why it is refused (best effort: it may be gone).
async fn refuse(stream: &mut TcpStream, reason: String) {
    let _ = stream
        .write_all(&Handshake::Refusal { reason }.encode())
        .await;
}

/// Reads frames from one peer until its clean end, a failure, or the node leaving.
async fn read_frames(
    peer: usize,
    read: OwnedReadHalf,
    events: mpsc::Sender<LinkEvent>,
    max_frame: u32,
) {
    let mut reader = BufReader::with_capacity(IO_BUFFER, read);
    let event = loop {
        let (channel, payload) = match read_frame(&mut reader, max_frame, IO_BUFFER).await {
            Ok(Some(frame)) => frame,
            Ok(None) => break LinkEvent::Eof { peer },
            Err(e) => {
                break LinkEvent::Failed {
                    peer,
                    reason: e.to_string(),
                    vanished: e.is_disconnect(),
                }
            }
        };
        if events
            .send(LinkEvent::Frame {
                peer,
                channel,
                payload,
            })
            .await
            .is_err()
        {
            return; // the node has finished
        }
    };
    let _ = events.send(event).await;
}
