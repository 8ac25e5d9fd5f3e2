//! What a deploy script says it is doing, on stderr: building, starting the
//! instances, all connected, running, stopping, done, each with how long it
//! took. On a terminal the count of connected instances is updated in place;
//! otherwise (CI, a pipe) every step is one plain line.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

#[derive(Debug)]
pub(crate) struct Progress {
    terminal: bool,
    started: Instant,
    /// Whether a line updated in place is open (the cursor is on it).
    open_line: bool,
}

impl Progress {
    pub(crate) fn new() -> Progress {
        Progress {
            terminal: std::io::stderr().is_terminal(),
            started: Instant::now(),
            open_line: false,
        }
    }

    /// A step, on a line of its own.
    pub(crate) fn step(&mut self, what: &str) {
        let mut err = std::io::stderr().lock();
        if std::mem::take(&mut self.open_line) {
            let _ = writeln!(err);
        }
        let _ = writeln!(err, "weir-deploy: {what}");
    }

    /// How far a step is: in place on a terminal, nothing otherwise.
    pub(crate) fn update(&mut self, what: &str) {
        if self.terminal {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[2Kweir-deploy: {what}");
            let _ = err.flush();
            self.open_line = true;
        }
    }

    /// Time since the deployment started.
    pub(crate) fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }
}

/// `1.23 s` or `45 ms`.
pub(crate) fn took(d: Duration) -> String {
    if d >= Duration::from_secs(1) {
        format!("{:.2} s", d.as_secs_f64())
    } else {
        format!("{} ms", d.as_millis())
    }
}
