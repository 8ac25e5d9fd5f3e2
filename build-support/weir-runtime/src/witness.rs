//! The witness: the type of a stream's records, carried from one operator's
//! call to the next in generated code. Its own module, so that the node and the
//! operators can both name it without naming each other.

use std::marker::PhantomData;

/// Carries a record type from one operator to the next; zero-sized.
pub struct Witness<T>(PhantomData<fn() -> T>);

impl<T> Witness<T> {
    pub(crate) fn new() -> Self {
        Witness(PhantomData)
    }
}

/// The witness of a type generated code names (a cycle's records).
pub fn witness<T>() -> Witness<T> {
    Witness::new()
}
