//! What generated code builds its operators with.
//!
//! Each helper takes the [`Witness`] of its input's record type and returns the
//! operator plus the witness of its output. Generated code never names a stream's
//! type: rustc infers every closure's parameters from these signatures, just as it
//! did in the flow crate. The helpers return the closures unchanged, so calls
//! compile to direct, inlinable calls.

use crate::node::Node;
use std::marker::PhantomData;

/// Carries a record type from one operator to the next; zero-sized.
pub struct Witness<T>(PhantomData<fn() -> T>);

impl<T> Witness<T> {
    pub(crate) fn new() -> Self {
        Witness(PhantomData)
    }
}

/// Records a source hands out per tick: bounded work per tick, and a long
/// iterator is never materialised.
pub const SOURCE_CHUNK: usize = 4096;

/// A `source_iter`: its iterator, created once, drained a chunk per tick.
pub struct Source<I> {
    iter: I,
    done: bool,
}

impl<I: Iterator> Source<I> {
    /// This tick's records. Asks the node for another tick while more may remain.
    pub fn chunk(&mut self, node: &mut Node) -> Chunk<'_, I> {
        if !self.done {
            node.request_tick();
        }
        Chunk {
            source: self,
            left: SOURCE_CHUNK,
        }
    }

    /// Whether the iterator has ended.
    pub fn is_done(&self) -> bool {
        self.done
    }
}

/// One tick's worth of a [`Source`].
pub struct Chunk<'s, I> {
    source: &'s mut Source<I>,
    left: usize,
}

impl<I: Iterator> Iterator for Chunk<'_, I> {
    type Item = I::Item;

    fn next(&mut self) -> Option<I::Item> {
        if self.left == 0 || self.source.done {
            return None;
        }
        self.left -= 1;
        let next = self.source.iter.next();
        self.source.done = next.is_none();
        next
    }
}

pub fn source_iter<I: IntoIterator>(iter: I) -> (Source<I::IntoIter>, Witness<I::Item>) {
    (
        Source {
            iter: iter.into_iter(),
            done: false,
        },
        Witness::new(),
    )
}

pub fn map<T, U, F: FnMut(T) -> U>(_: &Witness<T>, f: F) -> (F, Witness<U>) {
    (f, Witness::new())
}

pub fn filter<T, F: FnMut(&T) -> bool>(_: &Witness<T>, f: F) -> (F, Witness<T>) {
    (f, Witness::new())
}

pub fn filter_map<T, U, F: FnMut(T) -> Option<U>>(_: &Witness<T>, f: F) -> (F, Witness<U>) {
    (f, Witness::new())
}

pub fn flat_map<T, I: IntoIterator, F: FnMut(T) -> I>(
    _: &Witness<T>,
    f: F,
) -> (F, Witness<I::Item>) {
    (f, Witness::new())
}

pub fn inspect<T, F: FnMut(&T)>(_: &Witness<T>, f: F) -> (F, Witness<T>) {
    (f, Witness::new())
}

pub fn for_each<T, F: FnMut(T)>(_: &Witness<T>, f: F) -> (F, Witness<()>) {
    (f, Witness::new())
}
