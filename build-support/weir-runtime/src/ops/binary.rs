//! Two-input operators: both sides buffered for the tick, then combined.

// Constructors return (operator, witness) pairs: long types are their nature.
#![allow(clippy::type_complexity)]

use super::Witness;
use std::collections::{HashMap, HashSet};
use std::hash::Hash;

/// Two-input operators buffer both sides for the tick, then compute the output.
pub struct Binary<L, R, O, C> {
    left: Vec<L>,
    right: Vec<R>,
    out: Vec<O>,
    combine: C,
}

impl<L, R, O, C: FnMut(&mut Vec<L>, &mut Vec<R>, &mut Vec<O>)> Binary<L, R, O, C> {
    /// Takes in one of the tick's records.
    pub fn push(&mut self, record: L) {
        self.left.push(record);
    }
    /// Takes in one of the tick's records of the right input.
    pub fn push_right(&mut self, record: R) {
        self.right.push(record);
    }
    /// Its output for this tick, once every input has run in it.
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
