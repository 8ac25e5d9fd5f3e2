//! [`Singleton`] (exactly one value) and [`Optional`] (at most one value).
//!
//! At the tick level they hold one value per tick (a tick's `fold`, `first`, ...).
//! At the unbounded level they hold a value that changes over the run (a `fold`
//! over an unbounded stream): read it each tick with `latest()`, periodically with
//! `sample_every`, or once at the end with `into_stream()`.

use crate::ir::Operator;
use crate::level::{Bounded, Boundedness, ReadAsStream, TickLevel, Unbounded};
use crate::location::Location;
use crate::quote::IntoQuoted;
use crate::stream::{collection, Collection, Stream};
use std::panic::Location as Caller;
use std::time::Duration;

collection!(
    /// Exactly one value of type `T` at location `L`, per tick ([`Bounded`]) or
    /// over the run ([`Unbounded`]).
    #[must_use = "a singleton does nothing unless it is consumed"]
    Singleton
);

collection!(
    /// At most one value of type `T` at location `L`, per tick ([`Bounded`]) or
    /// over the run ([`Unbounded`]).
    #[must_use = "an optional does nothing unless it is consumed"]
    Optional
);

/// Operators both [`Singleton`] and [`Optional`] have, written once.
macro_rules! value_operators {
    ($name:ident) => {
        impl<'a, T, L: Location<'a>, B: Boundedness> $name<'a, T, L, B> {
            /// Applies `f` to the value.
            #[track_caller]
            pub fn map<U, F: FnMut(T) -> U>(self, f: impl IntoQuoted<F>) -> $name<'a, U, L, B> {
                self.quoted_op(Operator::Map, f, Caller::caller())
            }

            /// Keeps the value if `f` returns `true`.
            #[track_caller]
            pub fn filter<F: FnMut(&T) -> bool>(
                self,
                f: impl IntoQuoted<F>,
            ) -> Optional<'a, T, L, B> {
                self.quoted_op(Operator::Filter, f, Caller::caller())
            }

            /// The items of the iterable `f` returns for the value.
            #[track_caller]
            pub fn flat_map<I: IntoIterator, F: FnMut(T) -> I>(
                self,
                f: impl IntoQuoted<F>,
            ) -> Stream<'a, I::Item, L, B> {
                self.quoted_op(Operator::FlatMap, f, Caller::caller())
            }
        }

        impl<'a, T, L: Location<'a>, B: Boundedness> $name<'a, T, L, B> {
            /// Never callable: a value is not a stream. The bound makes
            /// `value.for_each(..)` a build error that says how to read it.
            #[doc(hidden)]
            pub fn for_each<F: FnMut(T)>(self, _f: impl IntoQuoted<F>)
            where
                Self: ReadAsStream,
            {
                unreachable!("ReadAsStream is implemented for nothing")
            }
        }

        impl<'a, T, L: Location<'a>> $name<'a, T, L, Bounded> {
            /// This tick's value as a one-record (or empty) stream.
            #[track_caller]
            pub fn into_stream(self) -> Stream<'a, T, L, Bounded> {
                self.derive(Operator::IntoStream, &[], Vec::new(), Caller::caller())
            }
        }

        impl<'a, T, L: Location<'a>, B: Boundedness> $name<'a, T, L, B> {
            /// Every tick's value, as an unbounded stream.
            #[track_caller]
            pub fn all_ticks(self) -> Stream<'a, T, L, Unbounded>
            where
                B: TickLevel,
            {
                self.derive(Operator::AllTicks, &[], Vec::new(), Caller::caller())
            }

            /// This tick's value, delivered in the next tick (none in the first).
            #[track_caller]
            pub fn defer_tick(self) -> Optional<'a, T, L, B>
            where
                B: TickLevel,
            {
                self.derive(Operator::DeferTick, &[], Vec::new(), Caller::caller())
            }
        }

        impl<'a, T: Clone, L: Location<'a>> $name<'a, T, L, Unbounded> {
            /// The value as it stands in each tick.
            #[track_caller]
            pub fn latest(self) -> $name<'a, T, L, Bounded> {
                self.derive(Operator::Latest, &[], Vec::new(), Caller::caller())
            }

            /// The final value, once the input has ended: one record (none for an
            /// empty `Optional`). For intermediate values use `latest` or
            /// `sample_every`.
            #[track_caller]
            pub fn into_stream(self) -> Stream<'a, T, L, Unbounded> {
                self.derive(Operator::IntoStreamFinal, &[], Vec::new(), Caller::caller())
            }

            /// The value as it stands every `period` (a `q!(Duration)`), as a stream.
            #[track_caller]
            pub fn sample_every(
                self,
                period: impl IntoQuoted<Duration>,
            ) -> Stream<'a, T, L, Unbounded> {
                self.quoted_op(Operator::SampleEvery, period, Caller::caller())
            }
        }
    };
}

value_operators!(Singleton);
value_operators!(Optional);
