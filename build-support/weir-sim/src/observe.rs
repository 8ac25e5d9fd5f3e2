//! What instances print, and which instance is being polled: a log per
//! run, on the thread that runs it.

use crate::network::Network;
use crate::outcome::Line;
use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::Instant;

thread_local! {
    /// The run on this thread: where `print_line` records, and which
    /// instance is being polled.
    pub(crate) static CURRENT: RefCell<Option<Log>> = const { RefCell::new(None) };
}

pub(crate) struct Log {
    pub(crate) start: Instant,
    pub(crate) polling: Option<usize>,
    pub(crate) names: Vec<String>,
    pub(crate) lines: Vec<Line>,
    pub(crate) last_polled: Vec<Duration>,
    pub(crate) network: Network,
}

/// Records a line printed by quoted code (generated simulation modules send
/// `println!` here). Outside a simulated instance, prints it.
pub fn print_line(text: String) {
    let unprinted = CURRENT.with(|c| {
        let mut c = c.borrow_mut();
        let Some(log) = c.as_mut() else {
            return Some(text);
        };
        let Some(i) = log.polling else {
            return Some(text);
        };
        let at = log.start.elapsed();
        let mut record = (at.as_millis() as u64).to_le_bytes().to_vec();
        record.extend(format!("{}: {text}", log.names[i]).into_bytes());
        log.network.trace(&record);
        log.lines.push(Line {
            instance: log.names[i].clone(),
            at,
            text,
        });
        None
    });
    if let Some(text) = unprinted {
        println!("{text}");
    }
}

/// An instance's future, marked as that instance while it is polled.
pub(crate) struct Tagged<F: ?Sized> {
    pub(crate) instance: usize,
    pub(crate) future: Pin<Box<F>>,
}

impl<F: Future + ?Sized> Future for Tagged<F> {
    type Output = F::Output;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let instance = self.instance;
        CURRENT.with(|c| {
            if let Some(log) = c.borrow_mut().as_mut() {
                log.polling = Some(instance);
                log.last_polled[instance] = log.start.elapsed();
            }
        });
        let out = self.future.as_mut().poll(cx);
        CURRENT.with(|c| {
            if let Some(log) = c.borrow_mut().as_mut() {
                log.polling = None;
            }
        });
        out
    }
}
