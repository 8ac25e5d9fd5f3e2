//! Sources: where a tick's records come from besides the network.

use super::Witness;
use crate::node::Node;
use std::mem::ManuallyDrop;

use tokio::sync::mpsc;

/// Records a source hands out per tick: bounded work per tick, and a long
/// iterator is never materialised.
pub const SOURCE_CHUNK: usize = 4096;

/// A `source_iter`: its iterator, created once, drained a chunk per tick.
pub struct Source<I: Iterator> {
    /// Lent to each tick's [`Chunk`] (and given back when it is dropped).
    iter: Option<std::iter::Peekable<I>>,
    done: bool,
}

impl<I: Iterator> Source<I> {
    /// This tick's records (at most [`SOURCE_CHUNK`]); ends early when the node is
    /// stopping.
    pub fn chunk<'s>(&'s mut self, node: &'s mut Node) -> Chunk<'s, I> {
        self.done |= node.is_stopping();
        let iter = self.iter.take().expect("a source's chunks do not overlap");
        Chunk {
            left: if self.done { 0 } else { SOURCE_CHUNK },
            iter: ManuallyDrop::new(iter),
            source: self,
            node,
        }
    }

    /// Whether the iterator has ended.
    pub fn is_done(&self) -> bool {
        self.done
    }
}

/// One tick's worth of a [`Source`]. It holds the iterator by value while the
/// tick's loop runs: a local the compiler keeps in registers, rather than a field
/// of the async run function's state that every record would load and store.
/// When dropped, it gives the iterator back and looks ahead: the source is done
/// if nothing is left, and otherwise asks the node for another tick.
pub struct Chunk<'s, I: Iterator> {
    /// Taken back out exactly once, in `drop`.
    iter: ManuallyDrop<std::iter::Peekable<I>>,
    left: usize,
    source: &'s mut Source<I>,
    node: &'s mut Node,
}

impl<I: Iterator> Iterator for Chunk<'_, I> {
    type Item = I::Item;

    #[inline]
    fn next(&mut self) -> Option<I::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        self.iter.next()
    }
}

impl<I: Iterator> Drop for Chunk<'_, I> {
    fn drop(&mut self) {
        if self.source.done || self.iter.peek().is_none() {
            self.source.done = true;
        } else {
            self.node.request_tick();
        }
        // SAFETY: `iter` is taken once, here, and never used again: `self` is
        // being dropped, and ManuallyDrop keeps the field from being dropped twice.
        let iter = unsafe { ManuallyDrop::take(&mut self.iter) };
        self.source.iter = Some(iter);
    }
}

/// `source_iter`: `iter`'s items, fed across ticks in chunks.
pub fn source_iter<I: IntoIterator>(iter: I) -> (Source<I::IntoIter>, Witness<I::Item>) {
    (
        Source {
            iter: Some(iter.into_iter().peekable()),
            done: false,
        },
        Witness::new(),
    )
}

/// `spin` and `spin_batch`: `n` records `()` every tick until the node stops.
pub struct Spin {
    per_tick: usize,
    done: bool,
}

impl Spin {
    /// This tick's `()`s; asks the node for the next tick.
    pub fn chunk(&mut self, node: &mut Node) -> std::iter::RepeatN<()> {
        self.done |= node.is_stopping();
        if self.done {
            return std::iter::repeat_n((), 0);
        }
        node.request_tick();
        std::iter::repeat_n((), self.per_tick)
    }

    /// Whether it will emit nothing more.
    pub fn is_done(&self) -> bool {
        self.done
    }
}

/// `spin`: one `()` per tick, for ever.
pub fn spin() -> (Spin, Witness<()>) {
    spin_batch(1)
}

/// `spin_batch`: `per_tick` `()`s per tick, for ever.
pub fn spin_batch(per_tick: usize) -> (Spin, Witness<()>) {
    let spin = Spin {
        per_tick,
        done: false,
    };
    (spin, Witness::new())
}

/// A tick cycle's initial records, all in the first tick.
pub struct Initial<I> {
    iter: Option<I>,
}

impl<I: IntoIterator> Initial<I> {
    /// Its output for this tick, once every input has run in it.
    pub fn emit(&mut self) -> std::iter::Flatten<std::option::IntoIter<I>> {
        self.iter.take().into_iter().flatten()
    }

    /// Whether it will emit nothing more.
    pub fn is_done(&self) -> bool {
        self.iter.is_none()
    }
}

/// A cycle's initial batch: `iter`'s items, in the first tick.
pub fn initial<T, I: IntoIterator<Item = T>>(_: &Witness<T>, iter: I) -> Initial<I> {
    Initial { iter: Some(iter) }
}

/// A source fed by a task of its own (`source_stream`, `source_interval`, a
/// `sample_every` timer): the task forwards items and wakes the node.
pub struct AsyncSource<T> {
    items: mpsc::Receiver<T>,
    done: bool,
}

/// Items a task may run ahead of the ticks that take them.
const ASYNC_SOURCE_CAPACITY: usize = 1024;

impl<T> AsyncSource<T> {
    /// What arrived since the last tick (at most [`SOURCE_CHUNK`]).
    pub fn chunk(&mut self, node: &mut Node) -> std::vec::IntoIter<T> {
        let mut batch = Vec::new();
        if !self.done && node.is_stopping() {
            self.end(node);
        }
        while !self.done && batch.len() < SOURCE_CHUNK {
            match self.items.try_recv() {
                Ok(item) => batch.push(item),
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) => self.end(node),
            }
        }
        if batch.len() == SOURCE_CHUNK {
            node.request_tick();
        }
        batch.into_iter()
    }

    fn end(&mut self, node: &mut Node) {
        self.done = true;
        self.items.close();
        node.source_ended();
    }

    /// Whether it will emit nothing more.
    pub fn is_done(&self) -> bool {
        self.done
    }
}

impl Node {
    pub(super) fn spawn_source<T: Send + 'static, S>(&mut self, stream: S) -> AsyncSource<T>
    where
        S: futures_core::Stream<Item = T> + Send + 'static,
    {
        let (tx, items) = mpsc::channel(ASYNC_SOURCE_CAPACITY);
        let wake = self.waker();
        let task = tokio::spawn(async move {
            let mut stream = Box::pin(stream);
            while let Some(item) = std::future::poll_fn(|cx| stream.as_mut().poll_next(cx)).await {
                if tx.send(item).await.is_err() {
                    return;
                }
                wake.notify_one();
            }
            drop(tx);
            wake.notify_one();
        });
        self.source_started(task.abort_handle());
        AsyncSource { items, done: false }
    }

    /// A `source_stream`: the stream is polled on a task of its own.
    pub fn source_stream<S>(&mut self, stream: S) -> (AsyncSource<S::Item>, Witness<S::Item>)
    where
        S: futures_core::Stream + Send + 'static,
        S::Item: Send + 'static,
    {
        (self.spawn_source(stream), Witness::new())
    }
}
