//! `dest_sink`: records into a `futures_sink::Sink`.

use super::Witness;
use crate::error::{Error, Result};
use futures_sink::Sink;
use std::fmt::Display;
use std::future::poll_fn;
use std::pin::Pin;

/// Buffers a tick's records, then feeds them into the sink and flushes it.
pub struct DestSink<S, T> {
    sink: Pin<Box<S>>,
    records: Vec<T>,
    closed: bool,
    at: &'static str,
}

impl<T, S: Sink<T>> DestSink<S, T>
where
    S::Error: Display,
{
    /// Takes in one of the tick's records.
    pub fn push(&mut self, record: T) {
        self.records.push(record);
    }

    /// Sends this tick's records and flushes; closes the sink once `input_done`.
    pub async fn flush(&mut self, input_done: bool) -> Result<()> {
        let at = self.at;
        let fail = move |e: S::Error| Error::new(format!("dest_sink at {at}: {e}"));
        if self.closed {
            return Ok(());
        }
        if !self.records.is_empty() {
            for record in self.records.drain(..) {
                poll_fn(|cx| self.sink.as_mut().poll_ready(cx))
                    .await
                    .map_err(fail)?;
                self.sink.as_mut().start_send(record).map_err(fail)?;
            }
            poll_fn(|cx| self.sink.as_mut().poll_flush(cx))
                .await
                .map_err(fail)?;
        }
        if input_done {
            self.closed = true;
            poll_fn(|cx| self.sink.as_mut().poll_close(cx))
                .await
                .map_err(fail)?;
        }
        Ok(())
    }
}

/// `at` names the `dest_sink` call in the flow, for errors.
pub fn dest_sink<T, S: Sink<T>>(
    _: &Witness<T>,
    sink: S,
    at: &'static str,
) -> (DestSink<S, T>, Witness<()>) {
    let sink = DestSink {
        sink: Box::pin(sink),
        records: Vec::new(),
        closed: false,
        at,
    };
    (sink, Witness::new())
}
