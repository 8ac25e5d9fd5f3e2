//! Levels: whether a collection holds one tick's records or the whole run's.
//!
//! Every [`Stream`](crate::Stream), [`Singleton`](crate::Singleton) and
//! [`Optional`](crate::Optional) carries its level as a type parameter, so an
//! operator that only makes sense on one tick's batch (`sort`, `join`, `persist`,
//! ...) does not type-check on an unbounded stream.

use crate::ir::Level;

/// This tick's records only: `tick_batch()` gives one, `all_ticks()` leaves it.
pub enum Bounded {}

/// Records across all ticks: what sources and network edges produce.
pub enum Unbounded {}

/// [`Bounded`] or [`Unbounded`].
pub trait Boundedness: sealed::Sealed + 'static {
    /// The level the IR records.
    const LEVEL: Level;
}

impl Boundedness for Bounded {
    const LEVEL: Level = Level::Tick;
}

impl Boundedness for Unbounded {
    const LEVEL: Level = Level::Unbounded;
}

/// Implemented for [`Bounded`] only: the bound of tick-level operators.
#[diagnostic::on_unimplemented(
    message = "this operator works on one tick's batch, but the stream is unbounded",
    label = "called on an unbounded stream",
    note = "take this tick's records first with `.tick_batch()`; go back with `.all_ticks()`"
)]
pub trait TickLevel: Boundedness {}

impl TickLevel for Bounded {}

/// Implemented for nothing: the bound of the stream operators a
/// [`Singleton`](crate::Singleton) or [`Optional`](crate::Optional) has
/// only to say how to read it as a stream.
#[diagnostic::on_unimplemented(
    message = "`{Self}` holds one value, not a stream of records",
    label = "a value, read as a stream",
    note = "read it as a stream with `.into_stream()` (this tick's value; over an unbounded input, the final one), `.all_ticks()` (every tick's value) or `.sample_every(q!(period))`"
)]
pub trait ReadAsStream {}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::Bounded {}
    impl Sealed for super::Unbounded {}
}
