//! Simulated clients of a flow's external endpoints: tasks of the run that
//! connect to an instance's endpoint through the simulated network, speak
//! its codec's bytes, and record what they saw as lines.

use crate::network::{PipeReader, PipeWriter};
use crate::observe::print_line;
use crate::run::Shared;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use weir_runtime::external::InProcessClient;

/// A client's program.
pub(crate) type Script = std::rc::Rc<dyn Fn(Client) -> Pin<Box<dyn Future<Output = ()>>>>;

/// What a client script gets: a way to connect, a clock, and a log.
pub struct Client {
    pub(crate) index: usize,
    /// Its index among every instance and client of the run.
    pub(crate) node: usize,
    pub(crate) world: Shared,
}

impl Client {
    /// This client's number (`client/N` in the run's lines).
    pub fn index(&self) -> usize {
        self.index
    }

    /// Connects to endpoint `endpoint` of `instance` (`proposer/0`); `None`
    /// while that instance is down or has no such endpoint.
    pub fn connect(&self, instance: &str, endpoint: &str) -> Option<Connection> {
        let world = self.world.borrow();
        let (i, target) = world
            .instances
            .iter()
            .enumerate()
            .find(|(_, x)| x.name == instance)?;
        if !target.live {
            return None;
        }
        let (_, clients) = target.clients.iter().find(|(name, _)| name == endpoint)?;
        let (to_node, from_client) = world.network.pipe(self.node, i);
        let (to_client, from_node) = world.network.pipe(i, self.node);
        clients
            .send(InProcessClient {
                peer: format!("client/{}", self.index),
                reader: Box::new(from_client),
                writer: Box::new(to_client),
            })
            .ok()?;
        Some(Connection {
            writer: to_node,
            reader: from_node,
        })
    }

    /// Virtual time since the run started.
    pub fn now(&self) -> Duration {
        self.world.borrow().start.elapsed()
    }

    /// Records a line under this client's name (for the run's check).
    pub fn log(&self, text: impl Into<String>) {
        print_line(text.into());
    }
}

/// A client's connection to an endpoint: bytes both ways, in order.
pub struct Connection {
    writer: PipeWriter,
    reader: PipeReader,
}

impl AsyncRead for Connection {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.reader).poll_read(cx, buf)
    }
}

impl AsyncWrite for Connection {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.writer).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.writer).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.writer).poll_shutdown(cx)
    }
}
