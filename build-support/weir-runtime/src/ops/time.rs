//! Time: sources that tick on a clock, and the operators that watch it
//! (`sample_every`, `timeout`). Each clock runs on a task of its own that
//! wakes the node.

use super::source::AsyncSource;
use super::Witness;
use crate::node::Node;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

impl Node {
    /// A `source_interval`: the time, every `period`.
    pub fn source_interval(
        &mut self,
        period: Duration,
    ) -> (AsyncSource<Instant>, Witness<Instant>) {
        (self.spawn_source(Ticks::new(period)), Witness::new())
    }

    /// A `sample_every`: the singleton's latest value, every `period`.
    pub fn sample_every<T: Clone>(
        &mut self,
        _: &Witness<T>,
        period: Duration,
    ) -> (Sample<T>, Witness<T>) {
        let timer = self.spawn_source(Ticks::new(period));
        (
            Sample {
                latest: None,
                timer,
            },
            Witness::new(),
        )
    }

    /// A `source_interval_delayed`: the time, first after `delay`, then every
    /// `period`.
    pub fn source_interval_delayed(
        &mut self,
        delay: Duration,
        period: Duration,
    ) -> (AsyncSource<Instant>, Witness<Instant>) {
        (
            self.spawn_source(Ticks::after(delay, period)),
            Witness::new(),
        )
    }

    /// A `timeout`: `()` each time the input has been silent for `limit`.
    pub fn timeout<T>(&mut self, _: &Witness<T>, limit: Duration) -> (Timeout, Witness<()>) {
        let limit = limit.max(Duration::from_millis(1));
        let epoch = tokio::time::Instant::now();
        let deadline = Arc::new(AtomicU64::new(micros(limit)));
        let timer = TimeoutTimer {
            deadline: deadline.clone(),
            epoch,
            limit,
            sleep: Box::pin(tokio::time::sleep_until(epoch + limit)),
        };
        let fired = self.spawn_source(timer);
        (
            Timeout {
                deadline,
                epoch,
                limit,
                heard: false,
                fired,
            },
            Witness::new(),
        )
    }
}

/// A `futures_core::Stream` of the time every `period`.
struct Ticks {
    interval: tokio::time::Interval,
}

impl Ticks {
    fn new(period: Duration) -> Self {
        Ticks::after(period, period)
    }

    fn after(delay: Duration, period: Duration) -> Self {
        let start = tokio::time::Instant::now() + delay;
        let mut interval = tokio::time::interval_at(start, period.max(Duration::from_millis(1)));
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Ticks { interval }
    }
}

impl futures_core::Stream for Ticks {
    type Item = Instant;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Instant>> {
        self.interval.poll_tick(cx).map(|at| Some(at.into_std()))
    }
}

/// `sample_every`: remembers the latest value; emits it when the timer fired.
pub struct Sample<T> {
    latest: Option<T>,
    timer: AsyncSource<Instant>,
}

impl<T: Clone> Sample<T> {
    /// Takes in one of the tick's records.
    pub fn push(&mut self, value: T) {
        self.latest = Some(value);
    }

    /// Its output for this tick, once every input has run in it.
    pub fn emit(&mut self, node: &mut Node) -> std::option::IntoIter<T> {
        let fired = self.timer.chunk(node).count() > 0;
        if fired {
            self.latest.clone().into_iter()
        } else {
            None.into_iter()
        }
    }

    /// Whether it will emit nothing more.
    pub fn is_done(&self) -> bool {
        self.timer.is_done()
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// `timeout`: notes whether records arrived in a tick (pushing the deadline
/// back), and emits one `()` per firing of its timer in a silent tick.
pub struct Timeout {
    /// When the timer fires next, in microseconds since `epoch`.
    deadline: Arc<AtomicU64>,
    epoch: tokio::time::Instant,
    limit: Duration,
    heard: bool,
    fired: AsyncSource<()>,
}

impl Timeout {
    /// Takes in one of the tick's records.
    pub fn push<T>(&mut self, _: T) {
        self.heard = true;
    }

    /// Its output for this tick, once every input has run in it.
    pub fn emit(&mut self, node: &mut Node) -> std::iter::RepeatN<()> {
        let fired = self.fired.chunk(node).count();
        if std::mem::take(&mut self.heard) {
            let next = self.epoch.elapsed() + self.limit;
            self.deadline.store(micros(next), Ordering::Relaxed);
            return std::iter::repeat_n((), 0);
        }
        std::iter::repeat_n((), fired)
    }

    /// Whether it will emit nothing more.
    pub fn is_done(&self) -> bool {
        self.fired.is_done()
    }
}

/// The clock of a `timeout`: sleeps until the deadline, which records move
/// later; fires when it is reached unmoved, then waits another `limit`.
struct TimeoutTimer {
    deadline: Arc<AtomicU64>,
    epoch: tokio::time::Instant,
    limit: Duration,
    sleep: Pin<Box<tokio::time::Sleep>>,
}

impl futures_core::Stream for TimeoutTimer {
    type Item = ();

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<()>> {
        loop {
            let due = self.deadline.load(Ordering::Relaxed);
            let at = self.epoch + Duration::from_micros(due);
            if self.sleep.deadline() != at {
                self.sleep.as_mut().reset(at);
            }
            if self.sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            let next = due.saturating_add(micros(self.limit));
            if self
                .deadline
                .compare_exchange(due, next, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
            {
                return Poll::Ready(Some(()));
            }
            // A record moved the deadline meanwhile: sleep again.
        }
    }
}
