//! [`Node`]: one running instance, as generated code drives it.
//!
//! Each tick: [`Node::next_tick`] waits until there is something to do (a source
//! with more records, or frames from peers), generated code drains every root
//! through its fused operators into [`Outbox`]es, and each outbox is flushed as one
//! frame per destination. A channel closes once everything upstream of it has
//! ended; the node ends when its sources are done and every inbound channel is
//! closed, so finite flows terminate on their own.
//!
//! The node's concerns, one file each:
//! - `peers`: the peers and their links, as they come up and go down, and the
//!   membership events that follow;
//! - `inbound`: frames arriving, and the typed inboxes generated code reads;
//! - `outbox`: the typed outboxes generated code fills, a frame per tick;
//! - `outbound`: each peer's queue of frames and its writing out;
//! - `tick`: waiting for the next tick, keepalives, stopping on a signal.

mod endpoints;
mod inbound;
mod outbound;
mod outbox;
mod peers;
mod stats;
mod tick;

pub(crate) use endpoints::bind_endpoint;
pub use endpoints::InProcessClient;
pub use inbound::{Inbox, TaggedInbox};
pub use outbox::{MemberOutbox, Outbox, RoundRobinOutbox};
pub use peers::{ClusterView, MembershipSource};

use crate::auth::{Key, KeyRing};
use crate::cli::{Auth, Config, DEFAULT_MAX_CLIENTS};
use crate::client_tls::ClientTls;
use crate::error::{Error, Result};
use crate::frame::DEFAULT_MAX_FRAME;
use crate::spec::{InstanceId, RoleKind, RoleSpec};
use crate::topology::Topology;
use crate::transport::{LinkEvent, LinkPlan, Links, PeerPlan, Tcp, Transport};
use inbound::InboundChannel;
use peers::{MembershipFeed, Peer};
use stats::Stats;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, Notify};
use tokio::task::AbortHandle;
use tokio::time::Instant;
use weir_core::ClusterId;

/// One running instance of a role.
pub struct Node {
    spec: &'static RoleSpec,
    peers: Vec<Peer>,
    events: mpsc::UnboundedReceiver<LinkEvent>,
    /// Links that came up while their peer's old frames waited to be decoded.
    later: Vec<LinkEvent>,
    /// Frames longer than this are refused.
    max_frame: u32,
    /// Where dropped links are reported to the transport.
    dropped: mpsc::UnboundedSender<(usize, crate::transport::LinkId)>,
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
    /// Which run of this instance this is.
    incarnation: u64,
    /// Every role's instance count, from the topology.
    sizes: Vec<(&'static str, u32)>,
    /// Membership streams of the flow at this role.
    feeds: Vec<MembershipFeed>,
    /// Whether any peer is tolerated (keepalives are due then).
    any_tolerated: bool,
    /// How long a tolerated peer may stay silent; keepalives go out four
    /// times as often.
    peer_timeout: Duration,
    next_keepalive: Instant,
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
    /// This instance's listen address for each external endpoint, by name.
    endpoints: Vec<(String, String)>,
    /// The endpoints' sockets, bound before the instance says it is ready
    /// (so that clients may connect from then on), by name.
    pub(crate) bound_endpoints: Vec<(String, std::net::TcpListener)>,
    /// Client connections an endpoint accepts at once.
    max_clients: usize,
    /// What external endpoints serve TLS with, if they do.
    pub(crate) client_tls: Option<ClientTls>,
    /// What `--health` answers, once the instance runs (set then).
    health: Option<crate::health::Health>,
    /// This instance's durable state (`--state-dir`; without it, in memory),
    /// committed before anything a tick produced leaves: see `commit_durable`.
    pub(crate) storage: weir_durable::Storage,
    /// Whether it was linked with every role it needs, as last said
    /// (`None` before it runs).
    linked: Option<bool>,
    /// When frames last arrived (or the stop signal, once stopping).
    last_arrival: Instant,
    /// Whether, stopping, the node counted its inbound streams as ended.
    settled: bool,
    /// Client connections a harness makes in-process, by endpoint name
    /// (instead of a listener on the endpoint's address).
    in_process_clients: Vec<(String, mpsc::UnboundedReceiver<InProcessClient>)>,
    /// Figures of the run, for `--stats`.
    stats: Stats,
}

impl Drop for Node {
    /// A node dropped before it finished (an error, or a harness that crashes
    /// it) takes its source tasks with it, as the end of its process would.
    fn drop(&mut self) {
        for task in &self.source_tasks {
            task.abort();
        }
        // Finished or failed: the figures are final either way.
        self.print_final_stats();
    }
}

/// Stops a [`Node`] from outside: sources end, channels drain, as on SIGTERM.
#[derive(Clone)]
pub struct Stopper {
    stop: Arc<AtomicBool>,
    wake: Arc<Notify>,
}

impl Stopper {
    /// Stops the node.
    pub fn stop(&self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.wake.notify_one();
    }
}

/// The destination that is this instance itself (sends between members of one
/// cluster).
const LOOPBACK: usize = usize::MAX;

impl Node {
    /// Reads the topology, links with every peer, and prepares the channels.
    pub(crate) async fn start(spec: &'static RoleSpec, config: Config) -> Result<Node> {
        let origin = config.topology.display().to_string();
        let topology = Topology::load(&config.topology)?;
        let me = topology.check(spec, config.index, &origin)?;
        let me_index = me.index as usize;
        let listen = config
            .listen
            .clone()
            .unwrap_or_else(|| topology.addresses(spec.role)[me_index].clone());

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
                    tolerated: spec.tolerates(role),
                });
            }
        }
        let keys = match &config.auth {
            Auth::KeyFiles { current, previous } => Some(KeyRing {
                current: Key::load(current)?,
                previous: previous.as_deref().map(Key::load).transpose()?,
            }),
            Auth::Insecure => {
                eprintln!(
                    "warning: {}: running without authentication or encryption (--insecure-no-auth): any process that can reach {listen} can join the flow, and anyone on the path can read and change its links",
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
        // Read before linking: a bad file is reported at once, not after the peers.
        let client_tls = match &config.client_tls {
            Some((cert, key)) => Some(ClientTls::load(cert, key)?),
            None => None,
        };
        let plan = LinkPlan {
            me_name: me.display(spec.kind()),
            me,
            incarnation: incarnation(),
            listen,
            peers,
            flow: spec.flow,
            channels: spec.channels,
            connect_timeout: config.connect_timeout,
            peer_timeout: config.peer_timeout,
            max_frame: DEFAULT_MAX_FRAME,
            keys,
        };
        tracing::info!(
            "{}: starting: flow `{}` (hash {:016x}), role `{}`, incarnation {}, listening on {}, {} peers",
            plan.me_name,
            spec.flow,
            spec.flow_hash,
            spec.role,
            plan.incarnation,
            plan.listen,
            plan.peers.len()
        );
        crate::wire::check_listed(spec.channels, spec.role, &spec.linked_roles())
            .map_err(Error::new)?;
        // The instance's own directory under the state root, held from the
        // start: one another process holds is refused before linking.
        let storage = match &config.state_dir {
            Some(root) => {
                let mine = root.join(config.instance_name(spec).replace('/', "-"));
                weir_durable::Storage::in_dir(&mine, config.durability)
                    .map_err(|e| Error::new(e.to_string()))?
            }
            None => weir_durable::Storage::volatile(),
        };
        // Answering from the start: "not ready" while linking is an answer too.
        let health = match &config.health {
            Some(address) => {
                let health = crate::health::Health::default();
                crate::health::serve(address, health.clone()).await?;
                Some(health)
            }
            None => None,
        };
        let links = Tcp.connect(&plan).await?;
        let sizes = spec
            .roles
            .iter()
            .map(|r| (r.name, topology.addresses(r.name).len() as u32))
            .collect();
        let mut node = Node::new(spec, &plan, links, sizes);
        node.storage = storage;
        node.max_clients = config.max_clients;
        node.client_tls = client_tls;
        node.endpoints = spec
            .externals
            .iter()
            .filter(|e| e.role == spec.role)
            .map(|e| {
                let address = topology.endpoint(spec.role, e.name)[me_index].clone();
                (
                    e.name.to_string(),
                    listen_at(config.listen.as_deref(), address),
                )
            })
            .collect();
        node.stats.enabled = config.stats;
        node.stats.every = config
            .stats_every
            .map(|every| (every, Instant::now() + every));
        node.await_required_peers().await?;
        for (name, address) in node.endpoints.clone() {
            let listener = bind_endpoint(&node.endpoint_what(&name), &address)?;
            node.bound_endpoints.push((name, listener));
        }
        tracing::info!(
            "{}: connected to every peer it needs; running",
            node.me_name()
        );
        if std::env::var_os(crate::READY_ENV).is_some() {
            eprintln!("{}", crate::READY_LINE);
        }
        node.health = health;
        node.linked = Some(false);
        node.update_health();
        tick::stop_on_signals(node.stop.clone(), node.wake.clone());
        if config.stop_on_eof {
            tick::stop_on_stdin_eof(node.stop.clone(), node.wake.clone());
        }
        Ok(node)
    }

    /// A node over links from any transport. `sizes` gives every role's
    /// instance count. Peers are linked as their `Up` events arrive.
    pub fn new(
        spec: &'static RoleSpec,
        plan: &LinkPlan,
        links: Links,
        sizes: Vec<(&'static str, u32)>,
    ) -> Node {
        let Links { events, dropped } = links;
        let peers: Vec<Peer> = plan.peers.iter().map(|p| Peer::new(p, spec)).collect();
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
            any_tolerated: peers.iter().any(|p| p.tolerated),
            peers,
            events,
            later: Vec::new(),
            max_frame: plan.max_frame,
            dropped,
            inbound,
            outbound_open,
            loopback: Vec::new(),
            held_ticks: 0,
            tick_requested: true,
            failure: None,
            me: plan.me.clone(),
            incarnation: plan.incarnation,
            sizes,
            feeds: Vec::new(),
            peer_timeout: plan.peer_timeout,
            next_keepalive: Instant::now(),
            wake: Arc::new(Notify::new()),
            stop: Arc::new(AtomicBool::new(false)),
            stopping: None,
            source_tasks: Vec::new(),
            ended_sources: 0,
            links_open: true,
            endpoints: Vec::new(),
            bound_endpoints: Vec::new(),
            max_clients: DEFAULT_MAX_CLIENTS,
            health: None,
            storage: weir_durable::Storage::volatile(),
            linked: None,
            client_tls: None,
            last_arrival: Instant::now(),
            settled: false,
            stats: Stats::new(),
            in_process_clients: Vec::new(),
        }
    }

    /// Takes endpoint `name`'s clients from `clients` instead of listening
    /// on its address (a harness running nodes in-process).
    pub fn set_in_process_clients(
        &mut self,
        name: &str,
        clients: mpsc::UnboundedReceiver<InProcessClient>,
    ) {
        self.in_process_clients.retain(|(n, _)| n != name);
        self.in_process_clients.push((name.to_string(), clients));
    }

    pub(crate) fn take_in_process_clients(
        &mut self,
        name: &str,
    ) -> Option<mpsc::UnboundedReceiver<InProcessClient>> {
        let at = self
            .in_process_clients
            .iter()
            .position(|(n, _)| n == name)?;
        Some(self.in_process_clients.remove(at).1)
    }

    /// Sets this instance's listen address for external endpoint `name`
    /// (`Node::start` takes them from the topology).
    pub fn set_endpoint(&mut self, name: &str, address: String) {
        self.endpoints.retain(|(n, _)| n != name);
        self.endpoints.push((name.to_string(), address));
    }

    pub(crate) fn endpoint_address(&self, name: &str) -> Result<String> {
        self.endpoints
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, address)| address.clone())
            .ok_or_else(|| {
                Error::new(format!(
                    "no address for external endpoint `{name}` of {}: list one per instance under `{name}` in the topology",
                    self.me_name()
                ))
            })
    }

    pub(crate) fn max_clients(&self) -> usize {
        self.max_clients
    }

    /// Whether the node was told to stop: sources end, channels drain.
    pub fn is_stopping(&self) -> bool {
        self.stopping.is_some()
    }

    /// A handle that stops this node as SIGTERM would (for a harness that
    /// runs nodes in-process).
    pub fn stopper(&self) -> Stopper {
        Stopper {
            stop: self.stop.clone(),
            wake: self.wake.clone(),
        }
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
            incarnation: self.incarnation,
            members: (0..size).map(ClusterId).collect(),
            role: role.to_string(),
            storage: self.storage.clone(),
            me: self.me_name(),
        }
    }

    /// Uses `storage` for this instance's durable state (a harness's
    /// simulated disk, say).
    pub fn set_storage(&mut self, storage: weir_durable::Storage) {
        self.storage = storage;
    }

    /// Writes what durable state this tick changed (saying first what
    /// reading it back dropped). Called before anything leaves the instance:
    /// a failure stops it, since what it would send may rest on what was
    /// not written.
    pub(crate) fn commit_durable(&mut self) -> Result<()> {
        let storage = &self.storage;
        for warning in storage.take_warnings() {
            tracing::warn!("{}: {warning}", self.me_name());
        }
        // Also with nothing to write: a failed commit fails every later one.
        storage.commit().map_err(|e| {
            Error::new(format!(
                "{}: {e}; stopping, since what it would send may rest on it",
                self.me_name()
            ))
        })
    }

    /// Asks for another tick even if nothing arrives (a source has more records).
    pub fn request_tick(&mut self) {
        self.tick_requested = true;
    }

    fn kind(&self) -> RoleKind {
        self.spec.kind()
    }

    /// This instance, for messages: `worker/1` or `leader`.
    pub(crate) fn me_name(&self) -> String {
        self.me.display(self.kind())
    }
}

/// Where to listen for an endpoint advertised at `advertised`: with
/// `--listen HOST:PORT`, on HOST at the advertised port (a pod listens on
/// 0.0.0.0 behind its DNS name), else at the advertised address itself.
fn listen_at(listen: Option<&str>, advertised: String) -> String {
    let host = listen
        .and_then(|l| l.rsplit_once(':'))
        .map(|(host, _)| host);
    match (host, advertised.rsplit_once(':')) {
        (Some(host), Some((_, port))) => format!("{host}:{port}"),
        _ => advertised,
    }
}

/// This run's incarnation: the start time in microseconds, which grows from one
/// run of an instance to the next (a restart takes longer than a microsecond).
fn incarnation() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_micros() as u64)
}

#[cfg(test)]
mod tests {
    use super::listen_at;

    #[test]
    fn endpoints_listen_on_the_listen_host_at_their_own_port() {
        let advertised = "proposer-0.weir:6379".to_string();
        assert_eq!(
            listen_at(Some("0.0.0.0:7000"), advertised.clone()),
            "0.0.0.0:6379"
        );
        assert_eq!(
            listen_at(Some("[::]:7000"), advertised.clone()),
            "[::]:6379"
        );
        assert_eq!(listen_at(None, advertised.clone()), advertised);
    }
}
