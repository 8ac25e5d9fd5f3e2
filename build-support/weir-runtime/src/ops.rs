//! What generated code builds its operators with.
//!
//! Each constructor takes the [`Witness`] of its inputs' record types and returns
//! the operator plus the witness of its output. Generated code never names a
//! stream's type: rustc infers every closure's parameters from these signatures,
//! just as it did in the flow crate. Record-by-record operators are the user's
//! closures themselves, called directly in fused code; operators that need a whole
//! tick (stratum boundaries) are structs, fed with `push` and drained with `emit`
//! once everything upstream of them has run in the tick: those of one input
//! below, aggregations in `aggregate`, two inputs in `binary`, and those whose
//! state outlives the tick in `across_ticks`.

use std::collections::HashSet;
use std::hash::Hash;

mod across_ticks;
mod aggregate;
mod binary;
mod hashing;
mod sink;
mod source;
mod time;

pub use crate::witness::{witness, Witness};
pub use across_ticks::{
    cycle, defer_tick, delta, final_value, persist, Deferred, Delta, FinalValue, Persist,
};
pub use aggregate::{
    count, count_all, fold, fold_all, fold_keyed, fold_keyed_all, reduce, reduce_all, reduce_keyed,
    reduce_keyed_all, Count, Fold, Keyed, Reduce,
};
pub use binary::{
    anti_join, continue_if, continue_unless, cross_product, cross_singleton, filter_not_in, join,
    Binary,
};
pub use hashing::{deterministic_hashing, GroupHasher, Groups};
pub use sink::{dest_sink, DestSink};
pub use source::{
    initial, source_iter, spin, spin_batch, AsyncSource, Initial, Source, Spin, SOURCE_CHUNK,
};
pub use time::{Sample, Timeout};

// Record by record: the closure is the operator.

/// `map`: the closure is the operator.
pub fn map<T, U, F: FnMut(T) -> U>(_: &Witness<T>, f: F) -> (F, Witness<U>) {
    (f, Witness::new())
}

/// `filter`: the predicate is the operator.
pub fn filter<T, F: FnMut(&T) -> bool>(_: &Witness<T>, f: F) -> (F, Witness<T>) {
    (f, Witness::new())
}

/// `filter_map`: the closure is the operator.
pub fn filter_map<T, U, F: FnMut(T) -> Option<U>>(_: &Witness<T>, f: F) -> (F, Witness<U>) {
    (f, Witness::new())
}

/// `demux`: the closure numbers each record's branch.
pub fn demux<T, F: FnMut(&T) -> usize>(_: &Witness<T>, f: F) -> (F, Witness<T>) {
    (f, Witness::new())
}

/// `flat_map`: the closure is the operator; its items go on.
pub fn flat_map<T, I: IntoIterator, F: FnMut(T) -> I>(
    _: &Witness<T>,
    f: F,
) -> (F, Witness<I::Item>) {
    (f, Witness::new())
}

/// `inspect`: the closure sees each record, which goes on.
pub fn inspect<T, F: FnMut(&T)>(_: &Witness<T>, f: F) -> (F, Witness<T>) {
    (f, Witness::new())
}

/// `for_each`: the closure is the sink.
pub fn for_each<T, F: FnMut(T)>(_: &Witness<T>, f: F) -> (F, Witness<()>) {
    (f, Witness::new())
}

/// Operators that pass records on unchanged (`tick_batch`, `all_ticks`, ...).
pub fn same<T>(_: &Witness<T>) -> Witness<T> {
    Witness::new()
}

/// `union`: the records of both inputs.
pub fn union<T>(_: &Witness<T>, _: &Witness<T>) -> Witness<T> {
    Witness::new()
}

/// `cloned`: owned copies of borrowed records.
pub fn cloned<T: Clone>(_: &Witness<&T>) -> Witness<T> {
    Witness::new()
}

/// Numbers records from 0, across the whole run.
pub struct Enumerate {
    next: usize,
}

impl Enumerate {
    /// The next record, with its number.
    pub fn number<T>(&mut self, record: T) -> (usize, T) {
        self.next += 1;
        (self.next - 1, record)
    }
}

/// `enumerate`, numbering from 0.
pub fn enumerate<T>(_: &Witness<T>) -> (Enumerate, Witness<(usize, T)>) {
    (Enumerate { next: 0 }, Witness::new())
}

// Whole-tick operators.

/// `unique`: first occurrences, in order.
pub struct Unique<T> {
    seen: HashSet<T>,
    out: Vec<T>,
}

impl<T: Eq + Hash + Clone> Unique<T> {
    /// Takes in one of the tick's records.
    pub fn push(&mut self, record: T) {
        if self.seen.insert(record.clone()) {
            self.out.push(record);
        }
    }
    /// Its output for this tick, once every input has run in it.
    pub fn emit(&mut self) -> std::vec::Drain<'_, T> {
        self.seen.clear();
        self.out.drain(..)
    }
}

/// `unique`, empty.
pub fn unique<T>(_: &Witness<T>) -> (Unique<T>, Witness<T>) {
    (
        Unique {
            seen: HashSet::new(),
            out: Vec::new(),
        },
        Witness::new(),
    )
}

/// `sort`: the tick's records in ascending order.
pub struct Sort<T>(Vec<T>);

impl<T: Ord> Sort<T> {
    /// Takes in one of the tick's records.
    pub fn push(&mut self, record: T) {
        self.0.push(record);
    }
    /// Its output for this tick, once every input has run in it.
    pub fn emit(&mut self) -> std::vec::Drain<'_, T> {
        self.0.sort();
        self.0.drain(..)
    }
}

/// `sort`, empty.
pub fn sort<T>(_: &Witness<T>) -> (Sort<T>, Witness<T>) {
    (Sort(Vec::new()), Witness::new())
}

/// `first`: the tick's first record.
pub struct First<T>(Option<T>);

impl<T> First<T> {
    /// Takes in one of the tick's records.
    pub fn push(&mut self, record: T) {
        if self.0.is_none() {
            self.0 = Some(record);
        }
    }
    /// Its output for this tick, once every input has run in it.
    pub fn emit(&mut self) -> std::option::IntoIter<T> {
        self.0.take().into_iter()
    }
}

/// `first`, empty.
pub fn first<T>(_: &Witness<T>) -> (First<T>, Witness<T>) {
    (First(None), Witness::new())
}
