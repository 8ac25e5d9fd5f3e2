//! External clients: a listener per endpoint, a reading and a writing task per
//! connection, and the two ends generated code sees: [`ExternalSource`] (what
//! clients sent, as `(ConnectionId, ClientEvent)` records) and [`Replies`]
//! (what goes back).
//!
//! Clients connect over TCP, or, under a harness that runs nodes in-process
//! (the simulator), through [`InProcessClient`]s it hands the node.
//!
//! Decoding happens on each connection's task, a read's worth of requests at a
//! time, so a tick takes whole batches. The bounds: at most `--max-clients`
//! connections (more are refused, logged); the tasks may run
//! [`BATCHES_AHEAD`] batches ahead of the ticks (then they stop reading, and
//! TCP pushes back on the clients); a request may be at most
//! [`MAX_REQUEST`] bytes; and a client that leaves [`MAX_UNREAD`] bytes of
//! replies unread is disconnected. Each of these closes one connection and
//! never disturbs the flow.

use crate::client_tls::ClientTls;
use crate::error::{Error, Result};
pub use crate::node::InProcessClient;
use crate::node::{bind_endpoint, Node};
use crate::ops::{Witness, SOURCE_CHUNK};
use crate::transport::{PeerReader, PeerWriter};
use rustc_hash::FxHashMap;
use std::collections::BTreeMap;
use std::io::ErrorKind;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Notify};
use tokio::task::JoinSet;
use weir_core::{ClientCodec, ClientEvent, ConnectionId};

/// Batches of decoded requests the connection tasks may queue for the node.
pub const BATCHES_AHEAD: usize = 256;
/// The longest request a client may send: longer is bad input.
pub const MAX_REQUEST: usize = 64 << 20;
/// Reply bytes a client may leave unread before it is disconnected.
pub const MAX_UNREAD: usize = 64 << 20;
/// Bytes read from a client at a time.
const READ_SIZE: usize = 64 << 10;
/// The bytes a connection's replies of one tick start with room for.
const REPLIES_START: usize = 256;
/// Requests a connection's batch starts with room for, at most (it starts
/// as large as the connection's last batch).
const BATCH_START: usize = 1024;

type Batch<R> = Vec<(ConnectionId, ClientEvent<R>)>;

/// A tick's requests: its batches, one after another.
pub type Chunk<R> = std::iter::Flatten<std::vec::IntoIter<Batch<R>>>;

/// The records of an endpoint whose clients send `R`.
type Records<R> = Witness<(ConnectionId, ClientEvent<R>)>;

/// What the node and the tasks of one endpoint share: the open connections.
struct Endpoint {
    /// `clients` on `proposer/1`, for log lines.
    what: String,
    /// The instance's durable state: committed before replies leave.
    storage: weir_durable::Storage,
    /// By number: closed in that order when the node goes (the same order every run).
    open: Mutex<BTreeMap<u64, Connection>>,
}

/// Where an endpoint's clients come from.
enum Clients {
    Tcp(TcpListener),
    /// TLS over TCP: each connection's handshake runs in a task of its own.
    Tls {
        listener: TcpListener,
        tls: ClientTls,
        handshakes: JoinSet<Option<Accepted>>,
    },
    InProcess(mpsc::UnboundedReceiver<InProcessClient>),
}

/// A client ready to serve: its name for log lines, its socket when replies
/// may be written to it directly (plain TCP), and its two ends.
type Accepted = (String, Option<Arc<OwnedWriteHalf>>, PeerReader, PeerWriter);

/// How long a client may take over its TLS handshake.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// TLS handshakes under way at once; more connections are closed at once.
const MAX_TLS_HANDSHAKES: usize = 64;

/// The node's way to a connection: its socket (TCP), for replies written at
/// once, and its writing task, for what the socket does not take at once.
struct Connection {
    peer: String,
    socket: Option<Arc<OwnedWriteHalf>>,
    bytes: mpsc::UnboundedSender<Vec<u8>>,
    /// Reply bytes queued and not yet written.
    unread: Arc<AtomicUsize>,
    /// Tells the reading task to close the connection.
    close: Arc<Notify>,
}

/// The records of an external endpoint: what its clients sent since the last
/// tick.
pub struct ExternalSource<C: ClientCodec> {
    batches: mpsc::Receiver<Batch<C::Request>>,
    endpoint: Arc<Endpoint>,
    codec: C,
    done: bool,
}

impl Node {
    /// How messages name endpoint `name` of this instance.
    pub(crate) fn endpoint_what(&self, name: &str) -> String {
        format!("`{name}` on {}", self.me_name())
    }

    /// Listens on this instance's address for endpoint `name` and accepts
    /// clients from the first tick on.
    pub fn source_external<C: ClientCodec>(
        &mut self,
        name: &str,
        codec: C,
    ) -> Result<(ExternalSource<C>, Records<C::Request>)> {
        let what = self.endpoint_what(name);
        let clients = match self.take_in_process_clients(name) {
            Some(clients) => Clients::InProcess(clients),
            None => {
                let bound = self.bound_endpoints.iter().position(|(n, _)| n == name);
                let listener = match bound {
                    Some(at) => self.bound_endpoints.remove(at).1,
                    None => bind_endpoint(&what, &self.endpoint_address(name)?)?,
                };
                let listener = TcpListener::from_std(listener).map_err(|e| {
                    Error::new(format!("cannot listen for the clients of {what}: {e}"))
                })?;
                match self.client_tls.clone() {
                    Some(tls) => Clients::Tls {
                        listener,
                        tls,
                        handshakes: JoinSet::new(),
                    },
                    None => Clients::Tcp(listener),
                }
            }
        };
        let endpoint = Arc::new(Endpoint {
            what,
            storage: self.storage.clone(),
            open: Mutex::new(BTreeMap::new()),
        });
        let (tx, batches) = mpsc::channel(BATCHES_AHEAD);
        let accept = tokio::spawn(accept(
            clients,
            codec.clone(),
            endpoint.clone(),
            tx,
            self.waker(),
            self.max_clients(),
        ));
        self.source_started(accept.abort_handle());
        let source = ExternalSource {
            batches,
            endpoint,
            codec,
            done: false,
        };
        Ok((source, Witness::new()))
    }
}

impl<C: ClientCodec> ExternalSource<C> {
    /// What arrived since the last tick: whole batches, until
    /// [`SOURCE_CHUNK`] records. The endpoint closes when the node stops.
    /// The batches are handed out one after another, not joined: joining
    /// them copied every record again, growing the joint vector as it went.
    pub fn chunk(&mut self, node: &mut Node) -> Chunk<C::Request> {
        if !self.done && node.is_stopping() {
            self.done = true;
            self.batches.close();
            node.source_ended();
        }
        let mut batches = Vec::new();
        let mut records = 0;
        while records < SOURCE_CHUNK {
            match self.batches.try_recv() {
                Ok(batch) => {
                    records += batch.len();
                    batches.push(batch);
                }
                Err(_) => break,
            }
        }
        if records >= SOURCE_CHUNK {
            node.request_tick();
        }
        batches.into_iter().flatten()
    }

    /// Whether the endpoint has closed: the node is stopping.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Where the replies to this endpoint's clients go.
    pub fn replies(&self, _: &Witness<(ConnectionId, C::Reply)>) -> Replies<C> {
        Replies {
            codec: self.codec.clone(),
            endpoint: self.endpoint.clone(),
            pending: FxHashMap::default(),
        }
    }
}

impl<C: ClientCodec> Drop for ExternalSource<C> {
    /// The node is gone: so are its clients' connections.
    fn drop(&mut self) {
        if let Ok(open) = self.endpoint.open.lock() {
            for connection in open.values() {
                connection.close.notify_one();
            }
        }
    }
}

/// The replies of a tick, encoded per connection and handed to the
/// connections' writing tasks when the tick ends.
pub struct Replies<C: ClientCodec> {
    codec: C,
    endpoint: Arc<Endpoint>,
    /// Looked up once per reply, by numbers the endpoint gave: hashed with
    /// Fx, not SipHash, as no client picks them. Drained in hash order,
    /// which Fx keeps the same every run (a simulation replays its writes).
    pending: FxHashMap<u64, Vec<u8>>,
}

impl<C: ClientCodec> Replies<C> {
    /// Queues `reply` for `connection`, after its earlier replies.
    #[inline]
    pub fn push(&mut self, (connection, reply): (ConnectionId, C::Reply)) {
        // Room for a pipeline of short replies from the start: grown from
        // empty, the buffer would be copied at each doubling, every tick.
        let out = self
            .pending
            .entry(connection.0)
            .or_insert_with(|| Vec::with_capacity(REPLIES_START));
        self.codec.encode(reply, out);
    }

    /// Hands this tick's replies over; those to connections that have closed
    /// are dropped, and a client with too much unread is disconnected.
    pub fn flush(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        if let Err(e) = self.endpoint.storage.commit() {
            // No reply may rest on what was not written; the node stops at
            // its next write, which fails the same way.
            eprintln!("error: {}: {e}: replies withheld", self.endpoint.what);
            self.pending.clear();
            return;
        }
        let mut open = self
            .endpoint
            .open
            .lock()
            .expect("no task panics holding it");
        for (id, mut bytes) in self.pending.drain() {
            let Some(connection) = open.get(&id) else {
                continue;
            };
            // Nothing queued (and the tasks run on this thread, so none is
            // mid-write): write straight to the socket, no hand-over.
            let socket = connection.socket.as_ref();
            if let Some(socket) = socket.filter(|_| connection.unread.load(Ordering::Relaxed) == 0)
            {
                match socket.try_write(&bytes) {
                    Ok(n) if n == bytes.len() => continue,
                    Ok(n) => drop(bytes.drain(..n)),
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                    // Broken: its reading task sees it too, and closes it.
                    Err(_) => continue,
                }
            }
            let unread = connection.unread.fetch_add(bytes.len(), Ordering::Relaxed) + bytes.len();
            if unread > MAX_UNREAD {
                eprintln!(
                    "warning: {}: disconnecting client {}: it left {unread} bytes of replies unread",
                    self.endpoint.what, connection.peer
                );
                connection.close.notify_one();
                open.remove(&id);
            } else {
                let _ = connection.bytes.send(bytes);
            }
        }
    }
}

/// Accepts clients for as long as the node runs, up to `max_clients` at once.
async fn accept<C: ClientCodec>(
    mut clients: Clients,
    codec: C,
    endpoint: Arc<Endpoint>,
    batches: mpsc::Sender<Batch<C::Request>>,
    wake: Arc<Notify>,
    max_clients: usize,
) {
    let mut next_id = 0u64;
    loop {
        let Some((peer, socket, reader, writer)) = next_client(&mut clients, &endpoint.what).await
        else {
            continue;
        };
        let id = next_id;
        next_id += 1;
        let (bytes, queued) = mpsc::unbounded_channel();
        let unread = Arc::new(AtomicUsize::new(0));
        let close = Arc::new(Notify::new());
        {
            let mut open = endpoint.open.lock().expect("no task panics holding it");
            if open.len() >= max_clients {
                eprintln!(
                    "warning: {}: refusing client {peer}: {max_clients} clients are connected (--max-clients)",
                    endpoint.what
                );
                continue;
            }
            let connection = Connection {
                peer: peer.clone(),
                socket,
                bytes,
                unread: unread.clone(),
                close: close.clone(),
            };
            open.insert(id, connection);
        }
        tokio::spawn(write_replies(writer, queued, unread));
        let reading = Reading {
            id,
            peer,
            codec: codec.clone(),
            endpoint: endpoint.clone(),
            batches: batches.clone(),
            wake: wake.clone(),
        };
        tokio::spawn(reading.run(reader, close));
    }
}

/// The next client to serve, or `None` when the one that came is not (yet)
/// one: a TLS handshake is under way or failed, or accepting failed.
async fn next_client(clients: &mut Clients, what: &str) -> Option<Accepted> {
    let accept_failed = |e: std::io::Error| async move {
        // Out of file descriptors, say: wait for some to be freed.
        eprintln!("warning: {what}: cannot accept a client: {e}");
        tokio::time::sleep(Duration::from_millis(100)).await;
        None
    };
    match clients {
        Clients::Tcp(listener) => match listener.accept().await {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                // Read through tokio's own half: a read that leaves room in
                // the buffer drained the socket, and the next one waits for
                // epoll rather than asking the socket again.
                let (reader, writer) = stream.into_split();
                let writer = Arc::new(writer);
                Some((
                    peer.to_string(),
                    Some(writer.clone()),
                    Box::new(reader),
                    Box::new(SharedWriter(writer)),
                ))
            }
            Err(e) => accept_failed(e).await,
        },
        Clients::Tls {
            listener,
            tls,
            handshakes,
        } => tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => return accept_failed(e).await,
                };
                if handshakes.len() >= MAX_TLS_HANDSHAKES {
                    eprintln!("warning: {what}: refusing client {peer}: {MAX_TLS_HANDSHAKES} TLS handshakes already in progress");
                    return None;
                }
                let _ = stream.set_nodelay(true);
                let (acceptor, what) = (tls.acceptor.clone(), what.to_string());
                handshakes.spawn(async move {
                    match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(stream)) => {
                            let (reader, writer) = tokio::io::split(stream);
                            Some((peer.to_string(), None, Box::new(reader) as PeerReader, Box::new(writer) as PeerWriter))
                        }
                        Ok(Err(e)) => {
                            eprintln!("warning: {what}: closing client {peer}: TLS handshake failed: {e}");
                            None
                        }
                        Err(_) => {
                            eprintln!("warning: {what}: closing client {peer}: no TLS handshake within {TLS_HANDSHAKE_TIMEOUT:?}");
                            None
                        }
                    }
                });
                None
            }
            Some(Ok(done)) = handshakes.join_next() => done,
        },
        Clients::InProcess(incoming) => match incoming.recv().await {
            Some(client) => Some((client.peer, None, client.reader, client.writer)),
            None => std::future::pending().await,
        },
    }
}

/// A TCP connection's sending half, shared by its writing task and the
/// node's direct writes (tokio's write half writes through `&self`).
struct SharedWriter(Arc<OwnedWriteHalf>);

impl AsyncWrite for SharedWriter {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let half: &OwnedWriteHalf = &self.0;
        let stream: &TcpStream = half.as_ref();
        loop {
            ready!(stream.poll_write_ready(cx))?;
            match half.try_write(buf) {
                Err(e) if e.kind() == ErrorKind::WouldBlock => continue,
                written => return Poll::Ready(written),
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// One connection's reading task.
struct Reading<C: ClientCodec> {
    id: u64,
    peer: String,
    codec: C,
    endpoint: Arc<Endpoint>,
    batches: mpsc::Sender<Batch<C::Request>>,
    wake: Arc<Notify>,
}

impl<C: ClientCodec> Reading<C> {
    async fn run(mut self, mut reader: PeerReader, close: Arc<Notify>) {
        let connection = ConnectionId(self.id);
        if self.send(vec![(connection, ClientEvent::Opened)]).await {
            let problem = self.read_requests(&mut reader, &close).await;
            if let Some(problem) = problem {
                eprintln!(
                    "warning: {}: closing client {}: {problem}",
                    self.endpoint.what, self.peer
                );
            }
        }
        // Its writing task ends once the queued replies are written.
        self.endpoint
            .open
            .lock()
            .expect("no task panics holding it")
            .remove(&self.id);
        self.send(vec![(connection, ClientEvent::Closed)]).await;
    }

    /// Reads and decodes until the client closes (`None`) or misbehaves
    /// (what it did), or the node stops listening.
    async fn read_requests(&mut self, reader: &mut PeerReader, close: &Notify) -> Option<String> {
        let connection = ConnectionId(self.id);
        let mut buffer: Vec<u8> = Vec::with_capacity(READ_SIZE);
        // A pipelining client sends about as many requests per read as it
        // did the read before: each batch starts with room for them.
        let mut last_batch = 0;
        loop {
            if buffer.capacity() - buffer.len() < READ_SIZE / 4 {
                buffer.reserve(READ_SIZE);
            }
            // `read_buf` is cancel-safe: a close loses no bytes read.
            let read = tokio::select! {
                biased;
                _ = close.notified() => return None,
                read = reader.read_buf(&mut buffer) => read,
            };
            // A TLS client that closes without saying so (most do: redis-cli,
            // redis-benchmark) ends like a TCP client that closes.
            let read = match read {
                Err(e) if e.kind() == ErrorKind::UnexpectedEof => Ok(0),
                read => read,
            };
            match read {
                Ok(0) if buffer.is_empty() => return None,
                Ok(0) => {
                    return Some(format!(
                        "it closed the connection in the middle of a request ({} bytes)",
                        buffer.len()
                    ))
                }
                Ok(_) => {}
                Err(e) => return Some(format!("cannot read from it: {e}")),
            }
            let mut batch = Vec::with_capacity(last_batch.min(BATCH_START));
            let mut used = 0;
            let bad = loop {
                match self.codec.decode(&buffer[used..]) {
                    Ok(Some((request, 0))) => {
                        drop(request);
                        break Some(
                            "internal error: its codec decoded a request from no bytes".to_string(),
                        );
                    }
                    Ok(Some((request, n))) => {
                        used += n;
                        batch.push((connection, ClientEvent::Request(request)));
                    }
                    Ok(None) => break None,
                    Err(bad) => break Some(format!("bad input: {bad}")),
                }
            };
            buffer.drain(..used);
            last_batch = batch.len();
            if !batch.is_empty() && !self.send(batch).await {
                return None;
            }
            if bad.is_some() {
                return bad;
            }
            if buffer.len() > MAX_REQUEST {
                return Some(format!("a request longer than {MAX_REQUEST} bytes"));
            }
        }
    }

    /// Queues a batch for the node; `false` once the node no longer listens.
    async fn send(&mut self, batch: Batch<C::Request>) -> bool {
        let sent = self.batches.send(batch).await.is_ok();
        self.wake.notify_one();
        sent
    }
}

/// One connection's writing task: writes what the node could not write at
/// once, several replies at a time when they queue up, until the connection
/// is gone.
async fn write_replies(
    mut writer: PeerWriter,
    mut queued: mpsc::UnboundedReceiver<Vec<u8>>,
    unread: Arc<AtomicUsize>,
) {
    let mut out = Vec::new();
    while let Some(bytes) = queued.recv().await {
        out.clear();
        out.extend_from_slice(&bytes);
        while let Ok(more) = queued.try_recv() {
            out.extend_from_slice(&more);
        }
        if writer.write_all(&out).await.is_err() {
            return;
        }
        unread.fetch_sub(out.len(), Ordering::Relaxed);
    }
    let _ = writer.shutdown().await;
}
