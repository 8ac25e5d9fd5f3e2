//! Aggregations: `fold`, `count`, `reduce` and their keyed forms, each per
//! tick (emitted and restarted every tick) or over the run.

// Constructors return (operator, witness) pairs: long types are their nature.
#![allow(clippy::type_complexity)]

use super::{Groups, Witness};
use std::hash::Hash;

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
    /// Takes in one of the tick's records.
    #[inline]
    pub fn push<T>(&mut self, record: T)
    where
        F: FnMut(&mut A, T),
    {
        (self.f)(&mut self.value, record);
    }
    /// Its output for this tick, once every input has run in it.
    pub fn emit(&mut self) -> std::option::IntoIter<A> {
        let value = if self.per_tick {
            std::mem::replace(&mut self.value, (self.init)())
        } else {
            self.value.clone()
        };
        Some(value).into_iter()
    }
}

/// `fold` per tick: `init()` each tick, `f` per record.
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

/// `fold` over the run: the running value, every tick.
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
    /// Takes in one of the tick's records.
    pub fn push<T>(&mut self, _: T) {
        self.n += 1;
    }
    /// Its output for this tick, once every input has run in it.
    pub fn emit(&mut self) -> std::option::IntoIter<usize> {
        let n = self.n;
        if self.per_tick {
            self.n = 0;
        }
        Some(n).into_iter()
    }
}

/// `count` per tick.
pub fn count<T>(_: &Witness<T>) -> (Count, Witness<usize>) {
    (
        Count {
            n: 0,
            per_tick: true,
        },
        Witness::new(),
    )
}

/// `count` over the run.
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
    /// Takes in one of the tick's records.
    pub fn push(&mut self, record: T) {
        match &mut self.value {
            Some(value) => (self.f)(value, record),
            None => self.value = Some(record),
        }
    }
    /// Its output for this tick, once every input has run in it.
    pub fn emit(&mut self) -> std::option::IntoIter<T> {
        if self.per_tick {
            self.value.take().into_iter()
        } else {
            self.value.clone().into_iter()
        }
    }
}

/// `reduce` per tick.
pub fn reduce<T, F: FnMut(&mut T, T)>(_: &Witness<T>, f: F) -> (Reduce<T, F>, Witness<T>) {
    let reduce = Reduce {
        value: None,
        f,
        per_tick: true,
    };
    (reduce, Witness::new())
}

/// `reduce` over the run.
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
    /// Takes in one of the tick's records.
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

/// `fold_keyed` per tick: each key's value from `init()`.
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

/// `fold_keyed` over the run: every group once the input has ended.
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

/// `reduce_keyed` per tick.
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

/// `reduce_keyed` over the run: every group once the input has ended.
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
