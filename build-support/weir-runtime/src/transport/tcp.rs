//! TCP links: one connection per pair of instances, opened by one side.
//!
//! One task keeps every link of an instance: it listens for the peers that dial
//! us, dials the ones we dial (again, after a tolerated peer's link is
//! dropped), greets each connection, and hands each link's two halves to the
//! node, which reads and writes them itself. [`Tcp::connect`] returns once
//! every peer that is not tolerated is up.

use super::handshake::{greet, introduce, Greeting, Halves, Introduction};
use super::{LinkEvent, LinkId, LinkPlan, Links, Met, PeerPlan, Transport};
use crate::auth::Key;
use crate::error::{Error, Result};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
use tokio::time::{sleep, timeout, timeout_at, Instant};

/// How long a connecting peer may take to say who it is and prove it.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections being greeted at once; more are closed at once (a flood).
const MAX_PENDING_HANDSHAKES: usize = 64;
/// The longest pause between two attempts to reach a peer.
const MAX_BACKOFF: Duration = Duration::from_millis(500);
/// How often a tolerated peer that declined us (another build) is tried again.
const DECLINED_RETRY: Duration = Duration::from_secs(2);

/// TCP links: one connection per pair of instances, opened by one side.
pub struct Tcp;

impl Transport for Tcp {
    async fn connect(&self, plan: &LinkPlan) -> Result<Links> {
        let (events_tx, events) = mpsc::unbounded_channel();
        let (dropped, dropped_rx) = mpsc::unbounded_channel();
        let (ready_tx, ready) = oneshot::channel();
        let keeper = Keeper::new(plan.clone(), events_tx);
        tokio::spawn(keeper.run(dropped_rx, ready_tx));
        ready
            .await
            .unwrap_or_else(|_| Err(Error::new("the task keeping the links ended")))?;
        Ok(Links { events, dropped })
    }
}

/// What the keeper knows of one peer's link.
#[derive(Default)]
struct LinkState {
    /// The current (or last) link's number; 0 before the first.
    link: LinkId,
    up: bool,
    /// Whether a dial for this peer is under way.
    dialing: bool,
    /// Whether we said the peer is still missing after the connect timeout.
    reported_missing: bool,
}

impl LinkState {
    /// Whether the peer has never linked since start and nobody was told.
    /// (One that linked and dropped was reported as lost then: past the
    /// connect timeout, "no connection after 30s" would be wrong.)
    fn never_up_unreported(&self) -> bool {
        self.link == 0 && !self.reported_missing
    }
}

struct Keeper {
    plan: Arc<LinkPlan>,
    events: mpsc::UnboundedSender<LinkEvent>,
    links: Vec<LinkState>,
    /// Each peer's latest incarnation met so far (shared with handshakes).
    seen: Arc<Vec<AtomicU64>>,
}

/// The outcome of one dial: the peer, and its incarnation and link.
type Dialed = (usize, Result<(Met, Halves)>);

impl Keeper {
    fn new(plan: LinkPlan, events: mpsc::UnboundedSender<LinkEvent>) -> Keeper {
        Keeper {
            links: plan.peers.iter().map(|_| LinkState::default()).collect(),
            seen: Arc::new(plan.peers.iter().map(|_| AtomicU64::new(0)).collect()),
            plan: Arc::new(plan),
            events,
        }
    }

    /// Whether every peer that is not tolerated is up.
    fn required_up(&self) -> bool {
        self.plan
            .peers
            .iter()
            .zip(&self.links)
            .all(|(p, l)| p.tolerated || l.up)
    }

    /// The peers that are not tolerated and not up yet.
    fn missing_required(&self) -> Vec<String> {
        self.plan
            .peers
            .iter()
            .zip(&self.links)
            .filter(|(p, l)| !l.up && !p.tolerated)
            .map(|(p, _)| format!("{} at {}", p.name, p.address))
            .collect()
    }

    /// Keeps every link until the node is gone. `ready` gets the outcome of
    /// start-up: every peer that is not tolerated up, or why not.
    async fn run(
        mut self,
        mut dropped: mpsc::UnboundedReceiver<(usize, LinkId)>,
        ready: oneshot::Sender<Result<()>>,
    ) {
        let mut ready = Some(ready);
        let plan = self.plan.clone();
        let deadline = Instant::now() + plan.connect_timeout;
        let listener = if plan.peers.iter().any(|p| !p.dial) {
            match bind(&plan.listen, deadline).await {
                Ok(listener) => Some(listener),
                Err(e) => {
                    let _ = ready
                        .take()
                        .expect("not sent yet")
                        .send(Err(Error::new(format!(
                            "cannot listen on {} (this instance's address in the topology, or --listen): {e}",
                            plan.listen
                        ))));
                    return;
                }
            }
        } else {
            None
        };
        let mut dials: JoinSet<Dialed> = JoinSet::new();
        for i in 0..plan.peers.len() {
            if plan.peers[i].dial {
                self.dial(&mut dials, i, Duration::ZERO, deadline);
            }
        }
        let mut greetings = JoinSet::new();
        let mut turned_away = 0u64;
        loop {
            if ready.is_some() && self.required_up() {
                let _ = ready.take().expect("checked").send(Ok(()));
            }
            // Failures before start-up go to `connect`; after it, to the node.
            let outcome: Result<()> = tokio::select! {
                biased;
                Some(lost) = dropped.recv() => {
                    self.dropped(&mut dials, lost, deadline);
                    Ok(())
                }
                Some(joined) = dials.join_next() => match joined {
                    Ok((i, Ok((met, halves)))) => {
                        self.links[i].dialing = false;
                        self.up(i, halves, met);
                        Ok(())
                    }
                    Ok((i, Err(e))) => {
                        self.links[i].dialing = false;
                        Err(e)
                    }
                    Err(e) => Err(Error::new(format!("dialing task failed: {e}"))),
                },
                Some(joined) = greetings.join_next() => match joined {
                    Ok((remote, greeting)) => self.greeted(remote, greeting),
                    Err(e) => Err(Error::new(format!("handshake task failed: {e}"))),
                },
                accepted = accept(listener.as_ref()) => match accepted {
                    Ok((stream, remote)) => {
                        if greetings.len() >= MAX_PENDING_HANDSHAKES {
                            // A flood: close at once rather than hold a task and a socket each.
                            drop(stream);
                            turned_away += 1;
                            if turned_away.is_power_of_two() {
                                tracing::warn!("{}: refused connection from {remote}: {MAX_PENDING_HANDSHAKES} handshakes already in progress ({turned_away} turned away so far)", plan.me_name);
                            }
                        } else {
                            let (plan, seen) = (plan.clone(), self.seen.clone());
                            greetings.spawn(async move {
                                let greeting = timeout(HANDSHAKE_TIMEOUT, greet(&plan, &seen, stream)).await
                                    .unwrap_or_else(|_| Greeting::Refused(format!("no complete handshake within {HANDSHAKE_TIMEOUT:?}")));
                                (remote, greeting)
                            });
                        }
                        Ok(())
                    }
                    Err(e) => Err(e),
                },
                _ = tokio::time::sleep_until(deadline), if ready.is_some() || self.links.iter().any(LinkState::never_up_unreported) => {
                    if ready.is_some() {
                        Err(Error::new(format!(
                            "no connection with {} after {:?}: is it running, and is the topology the same everywhere?",
                            self.missing_required().join(", "), plan.connect_timeout
                        )))
                    } else {
                        for (i, link) in self.links.iter_mut().enumerate() {
                            if link.never_up_unreported() {
                                link.reported_missing = true;
                                let p = &plan.peers[i];
                                tracing::warn!("{}: no connection with {} at {} after {:?}; going on without it, and linking when it comes up", plan.me_name, p.name, p.address, plan.connect_timeout);
                            }
                        }
                        Ok(())
                    }
                }
            };
            if let Err(e) = outcome {
                match ready.take() {
                    Some(ready) => {
                        let _ = ready.send(Err(e));
                    }
                    None => {
                        let _ = self.events.send(LinkEvent::Fatal {
                            reason: e.to_string(),
                        });
                    }
                }
                return;
            }
            if self.events.is_closed() {
                return; // the node has finished
            }
        }
    }

    /// Starts dialing peer `i` after `wait`: until `deadline` for a peer that is
    /// not tolerated, for as long as it takes for one that is.
    fn dial(&mut self, dials: &mut JoinSet<Dialed>, i: usize, wait: Duration, deadline: Instant) {
        if std::mem::replace(&mut self.links[i].dialing, true) {
            return;
        }
        let plan = self.plan.clone();
        let seen = self.seen.clone();
        let until = (!plan.peers[i].tolerated).then_some(deadline);
        dials.spawn(async move {
            sleep(wait).await;
            (i, dial(&plan, &plan.peers[i], &seen[i], until).await)
        });
    }

    /// The node dropped link `link` of peer `i`: close it, and dial again if
    /// we are the side that dials.
    fn dropped(
        &mut self,
        dials: &mut JoinSet<Dialed>,
        (i, link): (usize, LinkId),
        deadline: Instant,
    ) {
        let state = &mut self.links[i];
        if state.link != link || !state.up {
            return;
        }
        state.up = false;
        if self.plan.peers[i].dial && self.plan.peers[i].tolerated {
            // A short pause: a peer that was just restarted may not listen yet.
            self.dial(dials, i, Duration::from_millis(50), deadline);
        }
    }

    fn greeted(&mut self, remote: std::net::SocketAddr, greeting: Greeting) -> Result<()> {
        match greeting {
            Greeting::Peer(i, halves, met) => {
                let state = &self.links[i];
                if state.link > 0 && !self.plan.peers[i].tolerated {
                    tracing::warn!(
                        "{}: refused a second connection from {} ({remote})",
                        self.plan.me_name,
                        self.plan.peers[i].name
                    );
                } else if met.incarnation < self.seen[i].load(Ordering::Relaxed) {
                    tracing::warn!(
                        "{}: refused a connection from {} ({remote}): stale incarnation {}",
                        self.plan.me_name,
                        self.plan.peers[i].name,
                        met.incarnation
                    );
                } else {
                    self.up(i, halves, met);
                }
                Ok(())
            }
            Greeting::Refused(reason) => {
                tracing::warn!(
                    "{}: refused connection from {remote}: {reason}",
                    self.plan.me_name
                );
                Ok(())
            }
            Greeting::Fatal(reason) => {
                Err(Error::new(format!("connection from {remote}: {reason}")))
            }
        }
    }

    /// A new link with peer `i`: it replaces the one before, if any.
    fn up(&mut self, i: usize, (reader, writer): Halves, met: Met) {
        self.seen[i].fetch_max(met.incarnation, Ordering::Relaxed);
        let state = &mut self.links[i];
        state.link += 1;
        state.up = true;
        let _ = self.events.send(LinkEvent::Up {
            peer: i,
            link: state.link,
            writer,
            reader,
            incarnation: met.incarnation,
            channels: met.channels,
        });
    }
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

/// Binds `address`, retrying until `deadline` while its name does not
/// resolve or the address is not this host's yet (a Kubernetes pod's DNS
/// record and address appear after the pod starts). Names are resolved here,
/// and a peer's name at each dial.
async fn bind(address: &str, deadline: Instant) -> std::io::Result<TcpListener> {
    let started = Instant::now();
    let mut backoff = Duration::from_millis(20);
    loop {
        let outcome = match tokio::net::lookup_host(address).await {
            Ok(resolved) => {
                let resolved: Vec<std::net::SocketAddr> = resolved.collect();
                match TcpListener::bind(&resolved[..]).await {
                    Err(e) if e.kind() == std::io::ErrorKind::AddrNotAvailable => Err(e),
                    bound => return bound,
                }
            }
            Err(e) => Err(std::io::Error::new(
                e.kind(),
                format!("the name does not resolve ({e})"),
            )),
        };
        if Instant::now() + backoff >= deadline {
            return outcome.map_err(|e| {
                let tried = started.elapsed().as_secs_f64();
                std::io::Error::new(
                    e.kind(),
                    format!("{e}; tried for {tried:.1} s (--connect-timeout)"),
                )
            });
        }
        sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Opens a connection to `peer`, retrying with backoff until `deadline` (for
/// ever without one), and returns what the peer's hello said and the link.
async fn dial(
    plan: &LinkPlan,
    peer: &PeerPlan,
    seen: &AtomicU64,
    deadline: Option<Instant>,
) -> Result<(Met, Halves)> {
    let mut backoff = Duration::from_millis(20);
    let far = Instant::now() + Duration::from_secs(365 * 24 * 3600);
    let until = deadline.unwrap_or(far);
    let keys: Vec<Option<&Key>> = match &plan.keys {
        Some(ring) => ring.to_dial().map(Some).collect(),
        None => vec![None],
    };
    let mut declined: Option<String> = None;
    loop {
        let last_error = match attempt(plan, peer, seen, &keys, until).await {
            Ok(link) => return Ok(link),
            Err(Introduction::Retry(reason)) => reason,
            Err(Introduction::Declined(reason)) => {
                // A tolerated peer that cannot link with us now: it may be
                // replaced by one that can (an upgrade rolled back). Said
                // once per reason; tried again now and then.
                if declined.as_ref() != Some(&reason) {
                    tracing::warn!(
                        "{}: not linking with peer {}: {reason}; trying again every {DECLINED_RETRY:?}",
                        plan.me_name,
                        peer.name
                    );
                    declined = Some(reason.clone());
                }
                backoff = DECLINED_RETRY;
                reason
            }
            Err(Introduction::WrongKey(reason) | Introduction::Fatal(reason)) => {
                return Err(Error::new(format!(
                    "peer {} at {} {reason}",
                    peer.name, peer.address
                )))
            }
        };
        if deadline.is_some() && Instant::now() + backoff >= until {
            return Err(Error::new(format!(
                "cannot reach peer {} at {} within {:?}: {last_error}",
                peer.name, peer.address, plan.connect_timeout
            )));
        }
        sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// One attempt to link with `peer`: a connection per key of `keys`, in turn,
/// for as long as the peer refuses the key (during a rotation, the previous
/// key first).
async fn attempt(
    plan: &LinkPlan,
    peer: &PeerPlan,
    seen: &AtomicU64,
    keys: &[Option<&Key>],
    until: Instant,
) -> std::result::Result<(Met, Halves), Introduction> {
    for (k, key) in keys.iter().enumerate() {
        let stream = match timeout_at(until, TcpStream::connect(&peer.address)).await {
            Err(_) => return Err(Introduction::Retry("timed out".into())),
            Ok(Err(e)) => return Err(Introduction::Retry(e.to_string())),
            Ok(Ok(stream)) => stream,
        };
        let introduced = timeout(HANDSHAKE_TIMEOUT, introduce(plan, peer, seen, *key, stream))
            .await
            .unwrap_or_else(|_| Err(Introduction::Retry("no complete handshake reply".into())));
        match introduced {
            Err(Introduction::WrongKey(reason)) if k + 1 < keys.len() => {
                tracing::info!(
                    "{}: {} {reason}; trying the next key",
                    plan.me_name,
                    peer.name
                );
            }
            outcome => return outcome,
        }
    }
    unreachable!("the last key's outcome is returned")
}
