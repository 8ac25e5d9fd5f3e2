//! What a run reports: each instance's outcome, the lines printed, the
//! faults, and the trace hash.

use std::time::Duration;

/// How an instance's run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Its program returned `Ok`.
    Finished,
    /// Its program returned this error.
    Failed(String),
    /// The run crashed it (and did not bring it back).
    Crashed,
    /// Still running at the time limit.
    Hung,
}

/// A line an instance printed, and when.
#[derive(Debug, Clone)]
pub struct Line {
    /// Who printed it (`participant/1`).
    pub instance: String,
    /// Virtual time since the run's start.
    pub at: Duration,
    /// The line, without its newline.
    pub text: String,
}

/// What one seeded run did.
#[derive(Debug, Clone)]
pub struct Run {
    /// The seed that chose its faults and timings.
    pub seed: u64,
    /// Every instance (`coordinator`, `participant/0`, ...), with its outcome.
    pub instances: Vec<(String, Outcome)>,
    /// Every line printed, in the order printed.
    pub lines: Vec<Line>,
    /// The faults that happened, in order (`120 ms: crash participant/1`).
    pub faults: Vec<String>,
    /// Each instance's last step: when it last ran, and its last line.
    pub last_steps: Vec<String>,
    /// Virtual time from start to the end of the run.
    pub elapsed: Duration,
    pub(crate) trace_hash: u64,
}

impl Run {
    /// The lines instance `name` printed.
    pub fn lines_of(&self, name: &str) -> Vec<&str> {
        self.lines
            .iter()
            .filter(|l| l.instance == name)
            .map(|l| l.text.as_str())
            .collect()
    }

    /// How instance `name` ended, if it is one of the run's.
    pub fn outcome(&self, name: &str) -> Option<&Outcome> {
        self.instances
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, o)| o)
    }

    /// Whether any fault (crash or hold) happened.
    pub fn faulted(&self) -> bool {
        !self.faults.is_empty()
    }

    /// Whether every instance finished.
    pub fn all_finished(&self) -> bool {
        self.instances.iter().all(|(_, o)| *o == Outcome::Finished)
    }

    /// A hash of everything the run did, in order: deliveries, faults and
    /// lines, with their virtual times. The same seed gives the same hash.
    pub fn trace_hash(&self) -> u64 {
        self.trace_hash
    }

    pub(crate) fn hung(&self) -> Vec<&str> {
        self.instances
            .iter()
            .filter(|(_, o)| *o == Outcome::Hung)
            .map(|(n, _)| n.as_str())
            .collect()
    }
}
