//! Waiting for the next tick: what has arrived, keepalives for tolerated
//! peers, and stopping on SIGTERM/SIGINT.

use super::outbound::{poll_tolerated_writes, MAX_HELD_TICKS};
use super::Node;
use crate::error::{Error, Result};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
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
        self.observe_stop();
        self.keepalive_if_due();
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
            let inbound_open = self.inbound_open();
            let sources_live =
                self.source_tasks.len() > self.ended_sources && self.stopping.is_none();
            if !inbound_open && !sources_live {
                return Ok(false);
            }
            let grace = self.stopping;
            let keepalive = self.any_tolerated.then_some(self.next_keepalive);
            let backlog = self.tolerated_backlog();
            let wake = self.wake.clone();
            tokio::select! {
                biased;
                _ = wake.notified() => {
                    self.observe_stop();
                    break;
                }
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
                _ = std::future::poll_fn(|cx| poll_tolerated_writes(&mut self.peers, cx)), if backlog => {
                    self.take_broken();
                    if self.tick_requested {
                        break;
                    }
                }
                _ = sleep_until_or_never(keepalive) => {
                    self.keepalive_if_due();
                    self.write_all_pending().await?;
                }
                _ = sleep_until_or_never(grace) => {
                    let open: Vec<u32> = self.inbound.iter().filter(|c| c.open > 0).map(|c| c.id).collect();
                    eprintln!(
                        "warning: {}: stopping without waiting further for channels {open:?} to close",
                        self.me_name()
                    );
                    return Ok(false);
                }
            }
        }
        self.take_arrived()?;
        Ok(true)
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
