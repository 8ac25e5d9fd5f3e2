//! Figures of a run, per channel and peer: records, frames and bytes each
//! way, records dropped (a tolerated peer down or not reading), and time the
//! node spent blocked on back-pressure. Counted once per frame, never per
//! record; printed with `--stats` at exit, and every `--stats-every`.

use super::{Node, LOOPBACK};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;
use tokio::time::Instant;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct Counts {
    frames: u64,
    records: u64,
    bytes: u64,
    /// Records not sent: the peer was down, or stuck.
    dropped: u64,
}

/// What a node counts as it runs.
#[derive(Debug)]
pub(crate) struct Stats {
    started: Instant,
    /// By (channel, destination); the destination `LOOPBACK` is this instance.
    pub(super) sent: BTreeMap<(u32, usize), Counts>,
    /// By (channel, sender).
    pub(super) received: BTreeMap<(u32, usize), Counts>,
    pub(super) blocked: Duration,
    /// Print at exit.
    pub(super) enabled: bool,
    /// Print this often too, next at `next`.
    pub(super) every: Option<(Duration, Instant)>,
}

impl Stats {
    pub(super) fn new() -> Stats {
        Stats {
            started: Instant::now(),
            sent: BTreeMap::new(),
            received: BTreeMap::new(),
            blocked: Duration::ZERO,
            enabled: false,
            every: None,
        }
    }

    pub(super) fn sent(&mut self, channel: u32, dest: usize, records: usize, bytes: usize) {
        let c = self.sent.entry((channel, dest)).or_default();
        c.frames += 1;
        c.records += records as u64;
        c.bytes += bytes as u64;
    }

    pub(super) fn dropped(&mut self, channel: u32, dest: usize, records: usize) {
        self.sent.entry((channel, dest)).or_default().dropped += records as u64;
    }

    pub(super) fn received(&mut self, channel: u32, from: usize, records: usize, bytes: usize) {
        let c = self.received.entry((channel, from)).or_default();
        c.frames += 1;
        c.records += records as u64;
        c.bytes += bytes as u64;
    }
}

impl Node {
    fn instance_of(&self, peer: usize) -> String {
        match peer {
            LOOPBACK => format!("{} (itself)", self.me_name()),
            peer => self.peers[peer].name.clone(),
        }
    }

    /// Prints the figures, if `--stats-every` says it is time.
    pub(super) fn print_stats_if_due(&mut self) {
        let Some((every, next)) = self.stats.every else {
            return;
        };
        let now = Instant::now();
        if now >= next {
            self.stats.every = Some((every, now + every));
            eprint!("{}", self.stats_summary("so far"));
        }
    }

    /// Prints the figures at exit, with `--stats`.
    pub(super) fn print_final_stats(&self) {
        if self.stats.enabled {
            eprint!("{}", self.stats_summary("at exit"));
        }
    }

    /// The figures, a line per channel and peer each way.
    fn stats_summary(&self, when: &str) -> String {
        let s = &self.stats;
        let mut out = format!(
            "stats of {} (flow `{}`) {when}, after {:.2} s: {} ms blocked on back-pressure\n",
            self.me_name(),
            self.spec.flow,
            s.started.elapsed().as_secs_f64(),
            s.blocked.as_millis()
        );
        let describe = |channel: u32| {
            self.spec
                .channels
                .iter()
                .find(|c| c.id == channel)
                .map(|c| format!("channel {channel} ({} → {})", c.from, c.to))
                .unwrap_or_else(|| format!("channel {channel}"))
        };
        for (&(channel, dest), c) in &s.sent {
            let _ = writeln!(
                out,
                "  sent {} to {}: {} records in {} frames, {} bytes{}",
                describe(channel),
                self.instance_of(dest),
                c.records,
                c.frames,
                c.bytes,
                if c.dropped > 0 {
                    format!(", {} records dropped", c.dropped)
                } else {
                    String::new()
                }
            );
        }
        for (&(channel, from), c) in &s.received {
            let _ = writeln!(
                out,
                "  received {} from {}: {} records in {} frames, {} bytes",
                describe(channel),
                self.instance_of(from),
                c.records,
                c.frames,
                c.bytes
            );
        }
        if s.sent.is_empty() && s.received.is_empty() {
            out.push_str("  nothing sent or received\n");
        }
        out
    }
}
