//! Waiting for the next tick: what has arrived, keepalives for tolerated
//! peers, and stopping on SIGTERM/SIGINT.

use super::inbound::read_available;
use super::outbound::{poll_tolerated_writes, MAX_HELD_TICKS};
use super::Node;
use crate::error::{Error, Result};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

/// How long a stopping node waits for its peers to close their channels.
const DRAIN_GRACE: Duration = Duration::from_secs(5);

impl Node {
    /// Waits for the next tick. `false` once nothing more can happen: no tick was
    /// requested, every inbound channel is closed and every source has ended (or
    /// the node is stopping and its peers had their grace period).
    pub async fn next_tick(&mut self) -> Result<bool> {
        if let Some(failure) = self.failure.take() {
            return Err(failure);
        }
        // Every frame of the last tick is decoded: the read buffers may move.
        self.release_frames();
        self.take_later();
        self.observe_stop();
        if self.inbound_open() && self.stopping.is_some_and(|grace| Instant::now() >= grace) {
            // Busy to the end (a peer that never stops sending): the grace
            // holds all the same.
            self.stop_draining();
            return Ok(false);
        }
        self.keepalive_if_due();
        self.print_stats_if_due();
        if std::mem::take(&mut self.tick_requested) {
            // Busy: frames may wait a few ticks to leave in fewer, larger writes.
            self.held_ticks += 1;
            if self.held_ticks >= MAX_HELD_TICKS {
                self.write_all_pending().await?;
                // Let the source tasks, timers and the link keeper run. Not
                // every busy tick: a yield costs a poll of the I/O driver, and
                // the node reads its own sockets anyway. (Yielding only when
                // tokio's budget runs out measured no faster: docs/BENCHMARKS.md,
                // run 12.)
                tokio::task::yield_now().await;
            }
            self.take_arrived().await?;
            return Ok(true);
        }
        // Going idle: nothing may wait.
        self.write_all_pending().await?;
        if self.take_arrived().await? || self.tick_requested {
            return Ok(true);
        }
        loop {
            let inbound_open = self.inbound_open();
            let sources_live =
                self.source_tasks.len() > self.ended_sources && self.stopping.is_none();
            if !inbound_open && !sources_live {
                return Ok(false);
            }
            let grace = self.stopping;
            let settle = self.settle_time();
            let keepalive = self.any_tolerated.then_some(self.next_keepalive);
            let backlog = self.tolerated_backlog();
            let wake = self.wake.clone();
            tokio::select! {
                biased;
                // A frame that arrives while the node waits wakes this task
                // itself: no reader task, no queue in between.
                arrived = std::future::poll_fn(|cx| {
                    if read_available(&mut self.peers, cx) {
                        return Poll::Ready(true);
                    }
                    if backlog && poll_tolerated_writes(&mut self.peers, cx).is_ready() {
                        return Poll::Ready(false);
                    }
                    Poll::Pending
                }) => {
                    if arrived {
                        break;
                    }
                    self.take_broken();
                    if self.tick_requested {
                        break;
                    }
                }
                _ = wake.notified() => {
                    self.observe_stop();
                    break;
                }
                event = self.events.recv(), if self.links_open => match event {
                    Some(event) => {
                        self.handle(event);
                        break;
                    }
                    None if inbound_open => {
                        return Err(Error::new(
                            "every link to the peers has ended while channels were still open",
                        ))
                    }
                    None => self.links_open = false,
                },
                _ = sleep_until_or_never(keepalive) => {
                    self.keepalive_if_due();
                    self.write_all_pending().await?;
                    if self.take_arrived().await? || self.tick_requested {
                        break;
                    }
                }
                _ = sleep_until_or_never(settle) => {
                    self.settle();
                    break;
                }
                _ = sleep_until_or_never(grace) => {
                    self.stop_draining();
                    return Ok(false);
                }
            }
        }
        self.take_arrived().await?;
        Ok(true)
    }

    /// Takes in what the transport said and what the links brought, without
    /// waiting; whether anything arrived. Stops at a link failure: this tick
    /// still processes what came before it.
    async fn take_arrived(&mut self) -> Result<bool> {
        while self.failure.is_none() {
            match self.events.try_recv() {
                Ok(event) => self.handle(event),
                Err(_) => break,
            }
        }
        let arrived = self.read_arrived().await?;
        if arrived {
            self.last_arrival = Instant::now();
        }
        self.check_silence();
        Ok(arrived)
    }

    /// Gives up waiting for the peers to close their channels.
    fn stop_draining(&self) {
        let open: Vec<u32> = self
            .inbound
            .iter()
            .filter(|c| c.open > 0)
            .map(|c| c.id)
            .collect();
        eprintln!(
            "warning: {}: stopping without waiting further for channels {open:?} to close",
            self.me_name()
        );
    }

    /// Drops the links of tolerated peers that have sent nothing, not even a
    /// keepalive, for the peer timeout.
    fn check_silence(&mut self) {
        if !self.any_tolerated {
            return;
        }
        let timeout = self.peer_timeout;
        for peer in 0..self.peers.len() {
            let p = &self.peers[peer];
            if p.tolerated && p.reader.is_some() && p.last_heard.elapsed() > timeout {
                let reason = format!("silent for {timeout:?} (no frame and no keepalive)");
                self.lost(peer, reason, true);
            }
        }
    }

    /// Queues keepalives for tolerated peers when they are due.
    fn keepalive_if_due(&mut self) {
        if !self.any_tolerated {
            return;
        }
        let now = Instant::now();
        if now >= self.next_keepalive {
            self.queue_keepalives();
            self.next_keepalive = now + self.peer_timeout / 4;
        }
    }

    /// Turns a received stop signal into a stopping node: one more tick, in which
    /// sources end and channels close.
    fn observe_stop(&mut self) {
        if self.stopping.is_none() && self.stop.load(Ordering::Relaxed) {
            self.stopping = Some(Instant::now() + DRAIN_GRACE);
            self.last_arrival = Instant::now();
            self.queue_stopping();
            self.tick_requested = true;
            for task in &self.source_tasks {
                task.abort();
            }
        }
    }
}

/// Sleeps until `deadline`, or for ever without one.
async fn sleep_until_or_never(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// Sets `stop` and wakes the node once standard input reaches its end (or
/// fails): its controller went away. A thread of its own, since reading
/// stdin blocks.
pub(super) fn stop_on_stdin_eof(stop: Arc<AtomicBool>, wake: Arc<Notify>) {
    std::thread::spawn(move || {
        use std::io::Read;
        let mut buf = [0u8; 512];
        let mut stdin = std::io::stdin().lock();
        while matches!(stdin.read(&mut buf), Ok(n) if n > 0) {}
        stop.store(true, Ordering::Relaxed);
        wake.notify_one();
    });
}

/// On the first SIGTERM or SIGINT, sets `stop` and wakes the node; on a second,
/// exits at once.
pub(super) fn stop_on_signals(stop: Arc<AtomicBool>, wake: Arc<Notify>) {
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
