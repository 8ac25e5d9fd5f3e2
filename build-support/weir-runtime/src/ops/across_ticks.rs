//! Whole-tick operators whose state outlives the tick: what was seen before
//! (`persist`, `delta`), what comes in the next tick (`defer_tick`, cycles),
//! and a value held until the input ends.

use super::Witness;
use crate::node::Node;
use std::collections::HashSet;
use std::hash::Hash;

/// `persist`: everything so far, every tick.
pub struct Persist<T>(Vec<T>);

impl<T: Clone> Persist<T> {
    /// Takes in one of the tick's records.
    pub fn push(&mut self, record: T) {
        self.0.push(record);
    }
    /// Its output for this tick, once every input has run in it.
    pub fn emit(&mut self) -> std::iter::Cloned<std::slice::Iter<'_, T>> {
        self.0.iter().cloned()
    }
}

/// `persist`, empty.
pub fn persist<T>(_: &Witness<T>) -> (Persist<T>, Witness<T>) {
    (Persist(Vec::new()), Witness::new())
}

/// `delta`: this tick's records that were not in the previous tick's batch.
pub struct Delta<T> {
    previous: HashSet<T>,
    current: HashSet<T>,
    out: Vec<T>,
}

impl<T: Eq + Hash + Clone> Delta<T> {
    /// Takes in one of the tick's records.
    pub fn push(&mut self, record: T) {
        if self.current.insert(record.clone()) && !self.previous.contains(&record) {
            self.out.push(record);
        }
    }
    /// Its output for this tick, once every input has run in it.
    pub fn emit(&mut self) -> std::vec::Drain<'_, T> {
        self.previous = std::mem::take(&mut self.current);
        self.out.drain(..)
    }
}

/// `delta`, with no previous tick.
pub fn delta<T>(_: &Witness<T>) -> (Delta<T>, Witness<T>) {
    (
        Delta {
            previous: HashSet::new(),
            current: HashSet::new(),
            out: Vec::new(),
        },
        Witness::new(),
    )
}

/// `into_stream` of an unbounded singleton: its value once the input has ended.
pub struct FinalValue<T> {
    value: Option<T>,
    emitted: bool,
}

impl<T> FinalValue<T> {
    /// Takes in one of the tick's records.
    pub fn push(&mut self, value: T) {
        self.value = Some(value);
    }
    /// Its output for this tick, once every input has run in it.
    pub fn emit(&mut self, input_done: bool) -> std::option::IntoIter<T> {
        if input_done && !self.emitted {
            self.emitted = true;
            return self.value.take().into_iter();
        }
        None.into_iter()
    }
}

/// `into_stream` of an unbounded singleton, with no value yet.
pub fn final_value<T>(_: &Witness<T>) -> (FinalValue<T>, Witness<T>) {
    (
        FinalValue {
            value: None,
            emitted: false,
        },
        Witness::new(),
    )
}

/// `defer_tick` (and unbounded cycles): what is pushed in one tick comes out in
/// the next.
pub struct Deferred<T> {
    next: Vec<T>,
    now: Vec<T>,
    /// What `next` starts a tick with (started empty, it grew every tick).
    room: weir_core::TickRoom,
}

impl<T> Deferred<T> {
    /// Takes in one of the tick's records.
    pub fn push(&mut self, record: T) {
        self.next.push(record);
    }
    /// At the start of a tick: what was pushed in the previous one becomes current.
    pub fn start_tick(&mut self) {
        self.now = self.room.take(&mut self.next);
    }
    /// Owned, because a loop may push into this very buffer while its records
    /// are handed out (they go to `next`).
    pub fn emit(&mut self) -> std::vec::IntoIter<T> {
        std::mem::take(&mut self.now).into_iter()
    }
    /// At the end of a tick: anything pushed needs a next tick.
    pub fn end_tick(&mut self, node: &mut Node) {
        if !self.next.is_empty() {
            node.request_tick();
        }
    }
    /// Nothing waiting.
    pub fn is_idle(&self) -> bool {
        self.next.is_empty() && self.now.is_empty()
    }
}

/// `defer_tick`, empty.
pub fn defer_tick<T>(_: &Witness<T>) -> (Deferred<T>, Witness<T>) {
    (
        Deferred {
            next: Vec::new(),
            now: Vec::new(),
            room: weir_core::TickRoom::EMPTY,
        },
        Witness::new(),
    )
}

/// An unbounded cycle: what is completed into it arrives a tick later.
pub fn cycle<T>() -> (Deferred<T>, Witness<T>) {
    defer_tick(&Witness::new())
}
