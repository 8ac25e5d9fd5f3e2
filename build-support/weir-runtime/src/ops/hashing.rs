//! The hasher of keyed operators' groups.
//!
//! Keyed operators emit their groups in hash-map order, so with std's random
//! keys two runs of one flow emit in different orders. A simulation needs
//! the same order every run: [`deterministic_hashing`] turns the random keys
//! off for the current thread (role binaries keep them, against inputs chosen
//! to collide).

use std::cell::Cell;
use std::collections::hash_map::{DefaultHasher, RandomState};
use std::hash::BuildHasher;

thread_local! {
    static DETERMINISTIC: Cell<bool> = const { Cell::new(false) };
}

/// Whether keyed operators created from now on, on this thread, hash with
/// fixed keys (the same group order every run).
pub fn deterministic_hashing(on: bool) {
    DETERMINISTIC.with(|d| d.set(on));
}

/// SipHash with random keys, or with fixed keys under [`deterministic_hashing`].
#[derive(Clone)]
pub struct GroupHasher(Option<RandomState>);

impl Default for GroupHasher {
    fn default() -> Self {
        GroupHasher((!DETERMINISTIC.with(Cell::get)).then(RandomState::new))
    }
}

impl BuildHasher for GroupHasher {
    type Hasher = DefaultHasher;
    fn build_hasher(&self) -> DefaultHasher {
        match &self.0 {
            Some(random) => random.build_hasher(),
            None => DefaultHasher::new(),
        }
    }
}

/// A keyed operator's groups.
pub type Groups<K, A> = std::collections::HashMap<K, A, GroupHasher>;
