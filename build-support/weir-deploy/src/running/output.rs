//! Instances' output: each line copied out with its instance's name, and
//! the lines an instance says of itself to the deployment taken instead.

use crate::progress::write_beside_open_line;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;
use weir_runtime::{LINKED_LINE, READY_LINE, UNLINKED_LINE};

/// What an instance says of itself on its stderr, for the deployment.
pub(crate) enum Said {
    /// Linked with every peer it needs, and listening: it runs.
    Ready,
    /// Linked with an instance of every role it exchanges records with, or not, and why.
    Linked(Result<(), String>),
}

/// Where instances' output lines go.
#[derive(Clone)]
pub(super) enum Lines {
    /// This process's stdout and stderr.
    Inherit,
    /// `RunningDeployment::next_line`.
    Captured(mpsc::UnboundedSender<String>),
}

/// The line kept in `slot` after `before`, or nothing if none was.
pub(crate) fn last_line(slot: &Mutex<Option<String>>, before: &str) -> String {
    slot.lock()
        .ok()
        .and_then(|line| line.clone())
        .map(|line| format!("{before}{line}"))
        .unwrap_or_default()
}

/// Where the lines of instance `i`'s stderr that are not output go: its
/// last `error:` and `warning:` lines, and what it says of itself (to the
/// deployment, by index).
pub(super) struct StderrOf {
    pub(super) last_error: Arc<Mutex<Option<String>>>,
    pub(super) last_warning: Arc<Mutex<Option<String>>>,
    pub(super) index: usize,
    pub(super) said: mpsc::UnboundedSender<(usize, Said)>,
}

/// Copies lines from an instance to `out`, each prefixed with `[name] `. Of
/// instance `i`'s stderr, keeps the last `error:` line (its own account of a
/// failure) and takes its ready line.
pub(super) async fn prefix_lines(
    name: String,
    from: impl tokio::io::AsyncRead + Unpin,
    out: Lines,
    is_stderr: bool,
    stderr_of: Option<StderrOf>,
) {
    let mut lines = BufReader::new(from).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if let Some(of) = &stderr_of {
            let said = if line == READY_LINE {
                Some(Said::Ready)
            } else if line == LINKED_LINE {
                Some(Said::Linked(Ok(())))
            } else {
                line.strip_prefix(UNLINKED_LINE)
                    .map(|why| Said::Linked(Err(why.trim().to_string())))
            };
            if let Some(said) = said {
                let _ = of.said.send((of.index, said));
                continue;
            }
            let keep = |slot: &Mutex<Option<String>>, text: &str| {
                if let Ok(mut slot) = slot.lock() {
                    *slot = Some(text.to_string());
                }
            };
            // `error: ...` as it exits; warnings as it logs them (after a
            // timestamp and ` WARN `) or says them at start (`warning: `).
            if let Some(error) = line.strip_prefix("error: ") {
                keep(&of.last_error, error);
            } else if let Some(warning) = line
                .strip_prefix("warning: ")
                .or_else(|| line.split_once(" WARN ").map(|(_, w)| w))
            {
                keep(&of.last_warning, warning.trim());
            }
        }
        let line = format!("[{name}] {line}\n");
        match &out {
            Lines::Captured(tx) => {
                let _ = tx.send(line.trim_end().to_string());
            }
            Lines::Inherit if write_beside_open_line(&line, is_stderr) => {}
            Lines::Inherit if is_stderr => write_line(tokio::io::stderr(), &line).await,
            Lines::Inherit => write_line(tokio::io::stdout(), &line).await,
        }
    }
}

async fn write_line(mut out: impl AsyncWrite + Unpin, line: &str) {
    let _ = out.write_all(line.as_bytes()).await;
    let _ = out.flush().await;
}
