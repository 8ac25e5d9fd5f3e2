//! The simulated network. A link is two pipes, one per direction. Bytes
//! written to a pipe arrive after a seeded delay and in order, as on TCP;
//! pipes are reordered against each other, and a hold (a partition that
//! heals) keeps a pair's bytes back until it ends. One task, [`carry`],
//! delivers everything, in the order of (arrival time, seeded tiebreak).

use crate::rng::{Rng, Trace};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;
use tokio::time::Instant;

/// The network's state, shared with the pipes' ends (which the nodes own).
#[derive(Clone)]
pub(crate) struct Network {
    wire: Arc<Mutex<Wire>>,
    /// Wakes [`carry`] when something new is in flight.
    sent: Arc<Notify>,
}

/// Instances `a` and `b` cannot reach each other in `[from, until)`.
#[derive(Debug, Clone)]
pub(crate) struct Hold {
    pub a: usize,
    pub b: usize,
    pub from: Instant,
    pub until: Instant,
}

struct Wire {
    rng: Rng,
    /// Each write's delay, in milliseconds.
    delays: std::ops::Range<u64>,
    start: Instant,
    pipes: Vec<Pipe>,
    /// (arrival, tiebreak, pipe): each entry delivers its pipe's oldest chunk.
    queue: BinaryHeap<Reverse<(Instant, u64, usize)>>,
    holds: Vec<Hold>,
    trace: Trace,
}

struct Pipe {
    from: usize,
    to: usize,
    in_flight: VecDeque<Chunk>,
    /// When the last chunk arrives: later chunks never overtake it.
    last_arrival: Instant,
    arrived: Vec<u8>,
    read: usize,
    /// The writer's end arrived: the reader sees end of file.
    ended: bool,
    writer_done: bool,
    reader_gone: bool,
    reader: Option<Waker>,
}

enum Chunk {
    Data(Vec<u8>),
    End,
}

impl Network {
    pub(crate) fn new(seed: u64, delays: std::ops::Range<u64>, holds: Vec<Hold>) -> Network {
        Network {
            wire: Arc::new(Mutex::new(Wire {
                rng: Rng::new(seed.rotate_left(17)),
                delays,
                start: Instant::now(),
                pipes: Vec::new(),
                queue: BinaryHeap::new(),
                holds,
                trace: Trace::default(),
            })),
            sent: Arc::new(Notify::new()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Wire> {
        // One thread uses it; a poisoned lock means a panic already failed the run.
        self.wire.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A new pipe from instance `from` to `to`: its two ends.
    pub(crate) fn pipe(&self, from: usize, to: usize) -> (PipeWriter, PipeReader) {
        let mut wire = self.lock();
        let id = wire.pipes.len();
        let now = Instant::now();
        wire.pipes.push(Pipe {
            from,
            to,
            in_flight: VecDeque::new(),
            last_arrival: now,
            arrived: Vec::new(),
            read: 0,
            ended: false,
            writer_done: false,
            reader_gone: false,
            reader: None,
        });
        let writer = PipeWriter {
            network: self.clone(),
            pipe: id,
        };
        let reader = PipeReader {
            network: self.clone(),
            pipe: id,
        };
        (writer, reader)
    }

    /// The end of a hold on the pair, if one holds it now.
    pub(crate) fn held_until(&self, a: usize, b: usize) -> Option<Instant> {
        let now = Instant::now();
        self.lock()
            .holds
            .iter()
            .filter(|h| (h.a, h.b) == (a, b) || (h.a, h.b) == (b, a))
            .filter(|h| h.from <= now && now < h.until)
            .map(|h| h.until)
            .max()
    }

    /// Adds what the run did outside the network (lines, faults) to the trace.
    pub(crate) fn trace(&self, bytes: &[u8]) {
        self.lock().trace.add(bytes);
    }

    pub(crate) fn trace_hash(&self) -> u64 {
        self.lock().trace.value()
    }

    fn send(&self, pipe: usize, chunk: Chunk) {
        self.lock().send(pipe, chunk);
        self.sent.notify_one();
    }
}

impl Wire {
    fn send(&mut self, pipe: usize, chunk: Chunk) {
        let now = Instant::now();
        let delay = Duration::from_millis(self.rng.in_range(self.delays.clone()));
        let (from, to) = (self.pipes[pipe].from, self.pipes[pipe].to);
        let mut at = (now + delay).max(self.pipes[pipe].last_arrival);
        for hold in &self.holds {
            let pair = (hold.a, hold.b) == (from, to) || (hold.a, hold.b) == (to, from);
            if pair && hold.from <= at && at < hold.until {
                at = hold.until;
            }
        }
        let tiebreak = self.rng.next();
        let p = &mut self.pipes[pipe];
        p.last_arrival = at;
        p.in_flight.push_back(chunk);
        self.queue.push(Reverse((at, tiebreak, pipe)));
    }

    fn next_arrival(&self) -> Option<Instant> {
        self.queue.peek().map(|Reverse((at, _, _))| *at)
    }

    /// Delivers the earliest chunk in flight.
    fn deliver(&mut self) {
        let Some(Reverse((at, _, pipe))) = self.queue.pop() else {
            return;
        };
        let since = at.duration_since(self.start).as_millis() as u64;
        let p = &mut self.pipes[pipe];
        let Some(chunk) = p.in_flight.pop_front() else {
            return; // The reader went away: what was in flight is gone.
        };
        let mut record = since.to_le_bytes().to_vec();
        record.extend((pipe as u64).to_le_bytes());
        match chunk {
            Chunk::Data(bytes) => {
                record.extend(&bytes);
                if p.read == p.arrived.len() {
                    p.arrived.clear();
                    p.read = 0;
                }
                p.arrived.extend(bytes);
            }
            Chunk::End => {
                record.push(0xee);
                p.ended = true;
            }
        }
        if let Some(reader) = p.reader.take() {
            reader.wake();
        }
        self.trace.add(&record);
    }
}

/// Delivers what is in flight, each chunk at its arrival time, for as long
/// as the run lasts. Between deliveries due at one instant it sometimes
/// yields (a seeded choice), so that the receivers see them in one tick or
/// in several.
pub(crate) async fn carry(network: Network, seed: u64) {
    let mut rng = Rng::new(seed.rotate_left(41));
    loop {
        let next = network.lock().next_arrival();
        match next {
            Some(at) if at <= Instant::now() => {
                network.lock().deliver();
                if rng.chance(0.5) {
                    tokio::task::yield_now().await;
                }
            }
            Some(at) => {
                tokio::select! {
                    biased;
                    _ = network.sent.notified() => {}
                    _ = tokio::time::sleep_until(at) => {}
                }
            }
            None => network.sent.notified().await,
        }
    }
}

/// The sending end of a pipe.
pub(crate) struct PipeWriter {
    network: Network,
    pipe: usize,
}

impl PipeWriter {
    fn end(&mut self) {
        let mut wire = self.network.lock();
        let p = &mut wire.pipes[self.pipe];
        if std::mem::replace(&mut p.writer_done, true) || p.reader_gone {
            return;
        }
        drop(wire);
        self.network.send(self.pipe, Chunk::End);
    }
}

impl AsyncWrite for PipeWriter {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        {
            let wire = this.network.lock();
            let p = &wire.pipes[this.pipe];
            if p.reader_gone {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::BrokenPipe,
                    "the peer is gone (a simulated crash)",
                )));
            }
            if p.writer_done {
                return Poll::Ready(Err(io::ErrorKind::NotConnected.into()));
            }
        }
        this.network.send(this.pipe, Chunk::Data(buf.to_vec()));
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().end();
        Poll::Ready(Ok(()))
    }
}

impl Drop for PipeWriter {
    fn drop(&mut self) {
        self.end();
    }
}

/// The receiving end of a pipe.
pub(crate) struct PipeReader {
    network: Network,
    pipe: usize,
}

impl AsyncRead for PipeReader {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let mut wire = self.network.lock();
        let p = &mut wire.pipes[self.pipe];
        if p.read < p.arrived.len() {
            let n = buf.remaining().min(p.arrived.len() - p.read);
            buf.put_slice(&p.arrived[p.read..p.read + n]);
            p.read += n;
            return Poll::Ready(Ok(()));
        }
        if p.ended {
            return Poll::Ready(Ok(())); // end of file
        }
        p.reader = Some(cx.waker().clone());
        Poll::Pending
    }
}

impl Drop for PipeReader {
    fn drop(&mut self) {
        let mut wire = self.network.lock();
        let p = &mut wire.pipes[self.pipe];
        p.reader_gone = true;
        p.in_flight.clear();
        p.arrived = Vec::new();
        p.read = 0;
    }
}
