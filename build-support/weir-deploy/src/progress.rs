//! What a deploy script says it is doing, on stderr: building, starting the
//! instances, all connected, running, stopping, done, each with how long it
//! took. On a terminal the count of connected instances is updated in place;
//! otherwise (CI, a pipe) every step is one plain line.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The line updated in place while one is open (the cursor is at its end).
/// Process-wide: instances' lines written to the same terminal meanwhile must
/// clear it first and draw it again after, or the two split each other.
static OPEN_LINE: Mutex<Option<String>> = Mutex::new(None);

/// Whether progress is shown on a terminal: then instances' lines are written
/// under [`OPEN_LINE`]'s lock, also while no line is open, so none is halfway
/// out when one opens.
static ON_TERMINAL: AtomicBool = AtomicBool::new(false);

fn open_line() -> MutexGuard<'static, Option<String>> {
    OPEN_LINE
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[derive(Debug)]
pub(crate) struct Progress {
    terminal: bool,
    started: Instant,
}

impl Progress {
    pub(crate) fn new() -> Progress {
        let terminal = std::io::stderr().is_terminal();
        if terminal {
            ON_TERMINAL.store(true, Ordering::Relaxed);
        }
        Progress {
            terminal,
            started: Instant::now(),
        }
    }

    /// A step, on a line of its own (after the open line, which stays).
    pub(crate) fn step(&mut self, what: &str) {
        let mut open = open_line();
        let after_open = if open.take().is_some() { "\n" } else { "" };
        // One write: stderr is unbuffered, and a line written in pieces can
        // be split by another writer.
        let _ = std::io::stderr()
            .lock()
            .write_all(format!("{after_open}weir-deploy: {what}\n").as_bytes());
    }

    /// How far a step is: in place on a terminal, nothing otherwise.
    pub(crate) fn update(&mut self, what: &str) {
        if self.terminal {
            let mut open = open_line();
            let line = format!("weir-deploy: {what}");
            let mut err = std::io::stderr().lock();
            let _ = err.write_all(format!("\r\x1b[2K{line}").as_bytes());
            let _ = err.flush();
            *open = Some(line);
        }
    }

    /// Time since the deployment started.
    pub(crate) fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }
}

/// Writes an instance's `line` to this process's stdout (or stderr) while
/// progress is shown on a terminal, beside the open line if there is one
/// (cleared first, drawn again after). `false` (nothing written) otherwise,
/// for the caller to write as usual.
pub(crate) fn write_beside_open_line(line: &str, to_stderr: bool) -> bool {
    if !ON_TERMINAL.load(Ordering::Relaxed) {
        return false;
    }
    let open = open_line();
    let mut err = std::io::stderr().lock();
    if open.is_some() {
        let _ = err.write_all(b"\r\x1b[2K");
    }
    if to_stderr {
        let _ = err.write_all(line.as_bytes());
    } else {
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(line.as_bytes());
        let _ = out.flush();
    }
    if let Some(open) = open.as_deref() {
        let _ = err.write_all(open.as_bytes());
    }
    let _ = err.flush();
    true
}

/// `1.23 s` or `45 ms`.
pub(crate) fn took(d: Duration) -> String {
    if d >= Duration::from_secs(1) {
        format!("{:.2} s", d.as_secs_f64())
    } else {
        format!("{} ms", d.as_millis())
    }
}
