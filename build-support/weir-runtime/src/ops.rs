//! What generated code builds its operators with.
//!
//! Each constructor takes the [`Witness`] of its inputs' record types and returns
//! the operator plus the witness of its output. Generated code never names a
//! stream's type: rustc infers every closure's parameters from these signatures,
//! just as it did in the flow crate. Record-by-record operators are the user's
//! closures themselves, called directly in fused code; operators that need a whole
//! tick (stratum boundaries) are the structs below, fed with `push` and drained
//! with `emit` once everything upstream of them has run in the tick.

// Constructors return (operator, witness) pairs: long types are their nature.
#![allow(clippy::type_complexity)]

use crate::node::Node;
use std::collections::{HashMap, HashSet};
use std::hash::Hash;

mod hashing;
mod sink;
mod source;
mod time;

pub use crate::witness::{witness, Witness};
pub use hashing::{deterministic_hashing, GroupHasher, Groups};
pub use sink::{dest_sink, DestSink};
pub use source::{
    initial, source_iter, spin, spin_batch, AsyncSource, Initial, Source, Spin, SOURCE_CHUNK,
};
pub use time::{Sample, Timeout};

// Record by record: the closure is the operator.

pub fn map<T, U, F: FnMut(T) -> U>(_: &Witness<T>, f: F) -> (F, Witness<U>) {
    (f, Witness::new())
}

pub fn filter<T, F: FnMut(&T) -> bool>(_: &Witness<T>, f: F) -> (F, Witness<T>) {
    (f, Witness::new())
}

pub fn filter_map<T, U, F: FnMut(T) -> Option<U>>(_: &Witness<T>, f: F) -> (F, Witness<U>) {
    (f, Witness::new())
}

pub fn demux<T, F: FnMut(&T) -> usize>(_: &Witness<T>, f: F) -> (F, Witness<T>) {
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

/// Operators that pass records on unchanged (`tick_batch`, `all_ticks`, ...).
pub fn same<T>(_: &Witness<T>) -> Witness<T> {
    Witness::new()
}

pub fn union<T>(_: &Witness<T>, _: &Witness<T>) -> Witness<T> {
    Witness::new()
}

pub fn cloned<T: Clone>(_: &Witness<&T>) -> Witness<T> {
    Witness::new()
}

/// Numbers records from 0, across the whole run.
pub struct Enumerate {
    next: usize,
}

impl Enumerate {
    pub fn number<T>(&mut self, record: T) -> (usize, T) {
        self.next += 1;
        (self.next - 1, record)
    }
}

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
    pub fn push(&mut self, record: T) {
        if self.seen.insert(record.clone()) {
            self.out.push(record);
        }
    }
    pub fn emit(&mut self) -> std::vec::Drain<'_, T> {
        self.seen.clear();
        self.out.drain(..)
    }
}

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
    pub fn push(&mut self, record: T) {
        self.0.push(record);
    }
    pub fn emit(&mut self) -> std::vec::Drain<'_, T> {
        self.0.sort();
        self.0.drain(..)
    }
}

pub fn sort<T>(_: &Witness<T>) -> (Sort<T>, Witness<T>) {
    (Sort(Vec::new()), Witness::new())
}

/// `persist`: everything so far, every tick.
pub struct Persist<T>(Vec<T>);

impl<T: Clone> Persist<T> {
    pub fn push(&mut self, record: T) {
        self.0.push(record);
    }
    pub fn emit(&mut self) -> std::iter::Cloned<std::slice::Iter<'_, T>> {
        self.0.iter().cloned()
    }
}

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
    pub fn push(&mut self, record: T) {
        if self.current.insert(record.clone()) && !self.previous.contains(&record) {
            self.out.push(record);
        }
    }
    pub fn emit(&mut self) -> std::vec::Drain<'_, T> {
        self.previous = std::mem::take(&mut self.current);
        self.out.drain(..)
    }
}

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

/// `first`: the tick's first record.
pub struct First<T>(Option<T>);

impl<T> First<T> {
    pub fn push(&mut self, record: T) {
        if self.0.is_none() {
            self.0 = Some(record);
        }
    }
    pub fn emit(&mut self) -> std::option::IntoIter<T> {
        self.0.take().into_iter()
    }
}

pub fn first<T>(_: &Witness<T>) -> (First<T>, Witness<T>) {
    (First(None), Witness::new())
}

/// `fold`: per tick (`per_tick`, emitted and restarted every tick) or over the run
/// (the running value, emitted every tick).
pub struct Fold<A, I, F> {
    /// Made by `init` up front (and after each tick's emit, per tick): no
    /// check per record of whether it exists yet.
    value: A,
    init: I,
    f: F,
    per_tick: bool,
}

impl<A: Clone, I: Fn() -> A, F> Fold<A, I, F> {
    #[inline]
    pub fn push<T>(&mut self, record: T)
    where
        F: FnMut(&mut A, T),
    {
        (self.f)(&mut self.value, record);
    }
    pub fn emit(&mut self) -> std::option::IntoIter<A> {
        let value = if self.per_tick {
            std::mem::replace(&mut self.value, (self.init)())
        } else {
            self.value.clone()
        };
        Some(value).into_iter()
    }
}

pub fn fold<T, A, I: Fn() -> A, F: FnMut(&mut A, T)>(
    _: &Witness<T>,
    init: I,
    f: F,
) -> (Fold<A, I, F>, Witness<A>) {
    let fold = Fold {
        value: init(),
        init,
        f,
        per_tick: true,
    };
    (fold, Witness::new())
}

pub fn fold_all<T, A, I: Fn() -> A, F: FnMut(&mut A, T)>(
    w: &Witness<T>,
    init: I,
    f: F,
) -> (Fold<A, I, F>, Witness<A>) {
    let (mut fold, w) = fold(w, init, f);
    fold.per_tick = false;
    (fold, w)
}

/// `count`: per tick or over the run.
pub struct Count {
    n: usize,
    per_tick: bool,
}

impl Count {
    pub fn push<T>(&mut self, _: T) {
        self.n += 1;
    }
    pub fn emit(&mut self) -> std::option::IntoIter<usize> {
        let n = self.n;
        if self.per_tick {
            self.n = 0;
        }
        Some(n).into_iter()
    }
}

pub fn count<T>(_: &Witness<T>) -> (Count, Witness<usize>) {
    (
        Count {
            n: 0,
            per_tick: true,
        },
        Witness::new(),
    )
}

pub fn count_all<T>(_: &Witness<T>) -> (Count, Witness<usize>) {
    (
        Count {
            n: 0,
            per_tick: false,
        },
        Witness::new(),
    )
}

/// `reduce`: per tick or over the run; empty until a record arrives.
pub struct Reduce<T, F> {
    value: Option<T>,
    f: F,
    per_tick: bool,
}

impl<T: Clone, F: FnMut(&mut T, T)> Reduce<T, F> {
    pub fn push(&mut self, record: T) {
        match &mut self.value {
            Some(value) => (self.f)(value, record),
            None => self.value = Some(record),
        }
    }
    pub fn emit(&mut self) -> std::option::IntoIter<T> {
        if self.per_tick {
            self.value.take().into_iter()
        } else {
            self.value.clone().into_iter()
        }
    }
}

pub fn reduce<T, F: FnMut(&mut T, T)>(_: &Witness<T>, f: F) -> (Reduce<T, F>, Witness<T>) {
    let reduce = Reduce {
        value: None,
        f,
        per_tick: true,
    };
    (reduce, Witness::new())
}

pub fn reduce_all<T, F: FnMut(&mut T, T)>(w: &Witness<T>, f: F) -> (Reduce<T, F>, Witness<T>) {
    let (mut reduce, w) = reduce(w, f);
    reduce.per_tick = false;
    (reduce, w)
}

/// Keyed aggregation state: per tick (emitted every tick), or over the run
/// (emitted once, when the input has ended).
pub struct Keyed<K, A, G> {
    groups: Groups<K, A>,
    update: G,
    per_tick: bool,
    emitted: bool,
}

impl<K: Eq + Hash, A, G> Keyed<K, A, G> {
    pub fn push<V>(&mut self, (key, value): (K, V))
    where
        G: FnMut(&mut Groups<K, A>, K, V),
    {
        (self.update)(&mut self.groups, key, value);
    }
    /// This tick's groups (per tick), or every group once `input_done` (over the run).
    pub fn emit(
        &mut self,
        input_done: bool,
    ) -> std::iter::Flatten<std::option::IntoIter<std::collections::hash_map::Drain<'_, K, A>>>
    {
        let ready = self.per_tick || (input_done && !self.emitted);
        self.emitted |= ready;
        ready.then(|| self.groups.drain()).into_iter().flatten()
    }
}

pub fn fold_keyed<K: Eq + Hash, V, A, I: Fn() -> A, F: FnMut(&mut A, V)>(
    _: &Witness<(K, V)>,
    init: I,
    mut f: F,
) -> (
    Keyed<K, A, impl FnMut(&mut Groups<K, A>, K, V)>,
    Witness<(K, A)>,
) {
    let update = move |groups: &mut Groups<K, A>, key: K, value: V| {
        f(groups.entry(key).or_insert_with(&init), value)
    };
    (keyed(update, true), Witness::new())
}

pub fn fold_keyed_all<K: Eq + Hash, V, A, I: Fn() -> A, F: FnMut(&mut A, V)>(
    w: &Witness<(K, V)>,
    init: I,
    f: F,
) -> (
    Keyed<K, A, impl FnMut(&mut Groups<K, A>, K, V)>,
    Witness<(K, A)>,
) {
    let (mut keyed, w) = fold_keyed(w, init, f);
    keyed.per_tick = false;
    (keyed, w)
}

pub fn reduce_keyed<K: Eq + Hash, V, F: FnMut(&mut V, V)>(
    _: &Witness<(K, V)>,
    mut f: F,
) -> (
    Keyed<K, V, impl FnMut(&mut Groups<K, V>, K, V)>,
    Witness<(K, V)>,
) {
    let update = move |groups: &mut Groups<K, V>, key: K, value: V| match groups.entry(key) {
        std::collections::hash_map::Entry::Occupied(mut e) => f(e.get_mut(), value),
        std::collections::hash_map::Entry::Vacant(e) => {
            e.insert(value);
        }
    };
    (keyed(update, true), Witness::new())
}

pub fn reduce_keyed_all<K: Eq + Hash, V, F: FnMut(&mut V, V)>(
    w: &Witness<(K, V)>,
    f: F,
) -> (
    Keyed<K, V, impl FnMut(&mut Groups<K, V>, K, V)>,
    Witness<(K, V)>,
) {
    let (mut keyed, w) = reduce_keyed(w, f);
    keyed.per_tick = false;
    (keyed, w)
}

fn keyed<K, A, G>(update: G, per_tick: bool) -> Keyed<K, A, G> {
    Keyed {
        groups: Groups::default(),
        update,
        per_tick,
        emitted: false,
    }
}

/// Two-input operators buffer both sides for the tick, then compute the output.
pub struct Binary<L, R, O, C> {
    left: Vec<L>,
    right: Vec<R>,
    out: Vec<O>,
    combine: C,
}

impl<L, R, O, C: FnMut(&mut Vec<L>, &mut Vec<R>, &mut Vec<O>)> Binary<L, R, O, C> {
    pub fn push(&mut self, record: L) {
        self.left.push(record);
    }
    pub fn push_right(&mut self, record: R) {
        self.right.push(record);
    }
    pub fn emit(&mut self) -> std::vec::Drain<'_, O> {
        (self.combine)(&mut self.left, &mut self.right, &mut self.out);
        self.left.clear();
        self.right.clear();
        self.out.drain(..)
    }
}

fn binary<L, R, O, C>(combine: C) -> (Binary<L, R, O, C>, Witness<O>) {
    let op = Binary {
        left: Vec::new(),
        right: Vec::new(),
        out: Vec::new(),
        combine,
    };
    (op, Witness::new())
}

type BinaryOp<L, R, O> = Binary<L, R, O, fn(&mut Vec<L>, &mut Vec<R>, &mut Vec<O>)>;

/// `join`: pairs of equal keys.
pub fn join<K: Eq + Hash + Clone, V1: Clone, V2: Clone>(
    _: &Witness<(K, V1)>,
    _: &Witness<(K, V2)>,
) -> (
    BinaryOp<(K, V1), (K, V2), (K, (V1, V2))>,
    Witness<(K, (V1, V2))>,
) {
    binary(|left, right, out| {
        let mut by_key: HashMap<K, Vec<V1>> = HashMap::new();
        for (k, v) in left.drain(..) {
            by_key.entry(k).or_default().push(v);
        }
        for (k, v2) in right.drain(..) {
            if let Some(v1s) = by_key.get(&k) {
                out.extend(v1s.iter().map(|v1| (k.clone(), (v1.clone(), v2.clone()))));
            }
        }
    })
}

/// `cross_product`: every pair.
pub fn cross_product<T: Clone, U: Clone>(
    _: &Witness<T>,
    _: &Witness<U>,
) -> (BinaryOp<T, U, (T, U)>, Witness<(T, U)>) {
    binary(|left, right, out| {
        for t in left.iter() {
            out.extend(right.iter().map(|u| (t.clone(), u.clone())));
        }
    })
}

/// `anti_join`: records whose key is not among the right side's keys.
pub fn anti_join<K: Eq + Hash, V>(
    _: &Witness<(K, V)>,
    _: &Witness<K>,
) -> (BinaryOp<(K, V), K, (K, V)>, Witness<(K, V)>) {
    binary(|left, right, out| {
        let keys: HashSet<K> = right.drain(..).collect();
        out.extend(left.drain(..).filter(|(k, _)| !keys.contains(k)));
    })
}

/// `filter_not_in`: records that are not on the right side.
pub fn filter_not_in<T: Eq + Hash>(
    _: &Witness<T>,
    _: &Witness<T>,
) -> (BinaryOp<T, T, T>, Witness<T>) {
    binary(|left, right, out| {
        let other: HashSet<T> = right.drain(..).collect();
        out.extend(left.drain(..).filter(|t| !other.contains(t)));
    })
}

/// `cross_singleton`: every record with the singleton's value.
pub fn cross_singleton<T, U: Clone>(
    _: &Witness<T>,
    _: &Witness<U>,
) -> (BinaryOp<T, U, (T, U)>, Witness<(T, U)>) {
    binary(|left, right, out| {
        if let Some(u) = right.last() {
            out.extend(left.drain(..).map(|t| (t, u.clone())));
        }
    })
}

/// `continue_if`: the records, if the optional has a value this tick.
pub fn continue_if<T, U>(_: &Witness<T>, _: &Witness<U>) -> (BinaryOp<T, U, T>, Witness<T>) {
    binary(|left, right, out| {
        if !right.is_empty() {
            out.append(left);
        }
    })
}

/// `continue_unless`: the records, if the optional is empty this tick.
pub fn continue_unless<T, U>(_: &Witness<T>, _: &Witness<U>) -> (BinaryOp<T, U, T>, Witness<T>) {
    binary(|left, right, out| {
        if right.is_empty() {
            out.append(left);
        }
    })
}

/// `into_stream` of an unbounded singleton: its value once the input has ended.
pub struct FinalValue<T> {
    value: Option<T>,
    emitted: bool,
}

impl<T> FinalValue<T> {
    pub fn push(&mut self, value: T) {
        self.value = Some(value);
    }
    pub fn emit(&mut self, input_done: bool) -> std::option::IntoIter<T> {
        if input_done && !self.emitted {
            self.emitted = true;
            return self.value.take().into_iter();
        }
        None.into_iter()
    }
}

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

pub fn cycle<T>() -> (Deferred<T>, Witness<T>) {
    defer_tick(&Witness::new())
}
