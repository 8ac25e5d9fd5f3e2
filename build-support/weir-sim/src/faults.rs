//! What a run may do to the flow, and how long it lasts.

use std::time::Duration;

/// What a run may do to the flow: the faults a seed chooses among.
#[derive(Debug, Clone, PartialEq)]
pub struct Faults {
    /// Each write's delay in milliseconds, drawn from this range.
    pub delays: std::ops::Range<u64>,
    /// The chance that an instance crashes during the run.
    pub crashes: f64,
    /// The same, for the instances of one role (instead of `crashes`).
    pub crashes_of: Vec<(String, f64)>,
    /// The chance that a pair of linked instances is held apart for a while.
    pub holds: f64,
    /// Whether a crashed instance comes back, where every edge to its role
    /// is tolerant.
    pub restarts: bool,
    /// The flow (a later build of it) whose program for its role a crashed
    /// instance comes back with: an upgrade, under the seed's faults.
    pub restart_with: Option<&'static crate::Flow>,
}

impl Faults {
    pub(crate) fn describe(&self) -> String {
        let by_role: String = self
            .crashes_of
            .iter()
            .map(|(role, p)| format!(" ({role} {p})"))
            .collect();
        format!(
            "delays {}..{} ms, crashes {}{by_role}, holds {}{}",
            self.delays.start,
            self.delays.end,
            self.crashes,
            self.holds,
            if self.restarts { "" } else { ", no restarts" }
        )
    }

    /// The chance that an instance of `role` crashes.
    pub(crate) fn crash_chance(&self, role: &str) -> f64 {
        self.crashes_of
            .iter()
            .find(|(r, _)| r == role)
            .map_or(self.crashes, |(_, p)| *p)
    }

    pub(crate) fn any_crashes(&self) -> bool {
        self.crashes > 0.0 || self.crashes_of.iter().any(|(_, p)| *p > 0.0)
    }
}

/// How long runs last, in virtual time.
#[derive(Debug, Clone)]
pub(crate) struct Timing {
    /// Faults happen in the run's first this long.
    pub fault_window: Duration,
    /// When every instance is told to stop (flows that run until stopped).
    pub stop_after: Option<Duration>,
    /// A run not over by then has hung.
    pub time_limit: Duration,
    pub peer_timeout: Duration,
}
