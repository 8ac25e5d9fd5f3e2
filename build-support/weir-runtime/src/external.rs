//! External clients: a listener per endpoint, a reading and a writing task per
//! connection, and the two ends generated code sees: [`ExternalSource`] (what
//! clients sent, as `(ConnectionId, ClientEvent)` records) and [`Replies`]
//! (what goes back).
//!
//! Decoding happens on each connection's task, a read's worth of requests at a
//! time, so a tick takes whole batches. The bounds: at most `--max-clients`
//! connections (more are refused, logged); the tasks may run
//! [`BATCHES_AHEAD`] batches ahead of the ticks (then they stop reading, and
//! TCP pushes back on the clients); a request may be at most
//! [`MAX_REQUEST`] bytes; and a client that leaves [`MAX_UNREAD`] bytes of
//! replies unread is disconnected. Each of these closes one connection and
//! never disturbs the flow.

use crate::error::{Error, Result};
use crate::node::Node;
use crate::ops::{Witness, SOURCE_CHUNK};
use std::collections::HashMap;
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Notify};
use weir_core::{ClientCodec, ClientEvent, ConnectionId};

/// Batches of decoded requests the connection tasks may queue for the node.
pub const BATCHES_AHEAD: usize = 256;
/// The longest request a client may send: longer is bad input.
pub const MAX_REQUEST: usize = 64 << 20;
/// Reply bytes a client may leave unread before it is disconnected.
pub const MAX_UNREAD: usize = 64 << 20;
/// Bytes read from a client at a time.
const READ_SIZE: usize = 64 << 10;

type Batch<R> = Vec<(ConnectionId, ClientEvent<R>)>;
/// The records of an endpoint whose clients send `R`.
type Records<R> = Witness<(ConnectionId, ClientEvent<R>)>;

/// What the node and the tasks of one endpoint share: the open connections.
struct Endpoint {
    /// `clients` on `proposer/1`, for log lines.
    what: String,
    open: Mutex<HashMap<u64, Connection>>,
}

/// The node's way to a connection: its socket, for replies written at once,
/// and its writing task, for what the socket does not take at once.
struct Connection {
    peer: SocketAddr,
    stream: Arc<TcpStream>,
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
    /// Listens on this instance's address for endpoint `name` and accepts
    /// clients from the first tick on.
    pub fn source_external<C: ClientCodec>(
        &mut self,
        name: &str,
        codec: C,
    ) -> Result<(ExternalSource<C>, Records<C::Request>)> {
        let address = self.endpoint_address(name)?;
        let what = format!("`{name}` on {}", self.me_name());
        let listener = std::net::TcpListener::bind(&address)
            .and_then(|l| l.set_nonblocking(true).map(|()| l))
            .and_then(TcpListener::from_std)
            .map_err(|e| {
                Error::new(format!(
                    "cannot listen for the clients of {what} on {address}: {e}"
                ))
            })?;
        let endpoint = Arc::new(Endpoint {
            what,
            open: Mutex::new(HashMap::new()),
        });
        let (tx, batches) = mpsc::channel(BATCHES_AHEAD);
        let accept = tokio::spawn(accept(
            listener,
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
    pub fn chunk(
        &mut self,
        node: &mut Node,
    ) -> std::vec::IntoIter<(ConnectionId, ClientEvent<C::Request>)> {
        if !self.done && node.is_stopping() {
            self.done = true;
            self.batches.close();
            node.source_ended();
        }
        let mut records: Batch<C::Request> = Vec::new();
        while records.len() < SOURCE_CHUNK {
            match self.batches.try_recv() {
                Ok(batch) if records.is_empty() => records = batch,
                Ok(batch) => records.extend(batch),
                Err(_) => break,
            }
        }
        if records.len() >= SOURCE_CHUNK {
            node.request_tick();
        }
        records.into_iter()
    }

    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Where the replies to this endpoint's clients go.
    pub fn replies(&self, _: &Witness<(ConnectionId, C::Reply)>) -> Replies<C> {
        Replies {
            codec: self.codec.clone(),
            endpoint: self.endpoint.clone(),
            pending: HashMap::new(),
        }
    }
}

/// The replies of a tick, encoded per connection and handed to the
/// connections' writing tasks when the tick ends.
pub struct Replies<C: ClientCodec> {
    codec: C,
    endpoint: Arc<Endpoint>,
    pending: HashMap<u64, Vec<u8>>,
}

impl<C: ClientCodec> Replies<C> {
    #[inline]
    pub fn push(&mut self, (connection, reply): (ConnectionId, C::Reply)) {
        let out = self.pending.entry(connection.0).or_default();
        self.codec.encode(reply, out);
    }

    /// Hands this tick's replies over; those to connections that have closed
    /// are dropped, and a client with too much unread is disconnected.
    pub fn flush(&mut self) {
        if self.pending.is_empty() {
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
            if connection.unread.load(Ordering::Relaxed) == 0 {
                match connection.stream.try_write(&bytes) {
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
    listener: TcpListener,
    codec: C,
    endpoint: Arc<Endpoint>,
    batches: mpsc::Sender<Batch<C::Request>>,
    wake: Arc<Notify>,
    max_clients: usize,
) {
    let mut next_id = 0u64;
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors, say: wait for some to be freed.
                eprintln!("warning: {}: cannot accept a client: {e}", endpoint.what);
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let id = next_id;
        next_id += 1;
        let _ = stream.set_nodelay(true);
        let stream = Arc::new(stream);
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
                peer,
                stream: stream.clone(),
                bytes,
                unread: unread.clone(),
                close: close.clone(),
            };
            open.insert(id, connection);
        }
        tokio::spawn(write_replies(stream.clone(), queued, unread));
        let reading = Reading {
            id,
            peer,
            codec: codec.clone(),
            endpoint: endpoint.clone(),
            batches: batches.clone(),
            wake: wake.clone(),
        };
        tokio::spawn(reading.run(stream, close));
    }
}

/// One connection's reading task.
struct Reading<C: ClientCodec> {
    id: u64,
    peer: SocketAddr,
    codec: C,
    endpoint: Arc<Endpoint>,
    batches: mpsc::Sender<Batch<C::Request>>,
    wake: Arc<Notify>,
}

impl<C: ClientCodec> Reading<C> {
    async fn run(mut self, stream: Arc<TcpStream>, close: Arc<Notify>) {
        let connection = ConnectionId(self.id);
        if self.send(vec![(connection, ClientEvent::Opened)]).await {
            let problem = self.read_requests(&stream, &close).await;
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
    async fn read_requests(&mut self, stream: &TcpStream, close: &Notify) -> Option<String> {
        let connection = ConnectionId(self.id);
        let mut buffer: Vec<u8> = Vec::with_capacity(READ_SIZE);
        loop {
            if buffer.capacity() - buffer.len() < READ_SIZE / 4 {
                buffer.reserve(READ_SIZE);
            }
            tokio::select! {
                biased;
                _ = close.notified() => return None,
                ready = stream.readable() => {
                    if let Err(e) = ready {
                        return Some(format!("cannot read from it: {e}"));
                    }
                }
            }
            match stream.try_read_buf(&mut buffer) {
                Ok(0) if buffer.is_empty() => return None,
                Ok(0) => {
                    return Some(format!(
                        "it closed the connection in the middle of a request ({} bytes)",
                        buffer.len()
                    ))
                }
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => continue,
                Err(e) => return Some(format!("cannot read from it: {e}")),
            }
            let mut batch = Vec::new();
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
    stream: Arc<TcpStream>,
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
        let mut left = &out[..];
        while !left.is_empty() {
            if stream.writable().await.is_err() {
                return;
            }
            match stream.try_write(left) {
                Ok(n) => left = &left[n..],
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(_) => return,
            }
        }
        unread.fetch_sub(out.len(), Ordering::Relaxed);
    }
}
