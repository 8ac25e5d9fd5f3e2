//! [`Stream`]: a sequence of records at one location, and its operators.

use crate::builder::FlowBuilder;
use crate::ir::{LocationId, NodeId, Operator, QuotedExpr};
use crate::level::{Bounded, Boundedness, TickLevel, Unbounded};
use crate::location::Location;
use crate::quote::IntoQuoted;
use crate::singleton::{Optional, Singleton};
use std::hash::Hash;
use std::panic::Location as Caller;
use std::time::Duration;

/// Defines a collection type: a node of the flow graph, typed by its records `T`,
/// its location `L` and its level `B`.
macro_rules! collection {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        pub struct $name<'a, T, L, B = Unbounded> {
            pub(crate) node: $crate::ir::NodeId,
            pub(crate) location: L,
            _marker: ::std::marker::PhantomData<(fn() -> T, fn() -> B, &'a $crate::FlowBuilder)>,
        }

        impl<'a, T, L: $crate::Location<'a>, B> $crate::stream::Collection<'a, L>
            for $name<'a, T, L, B>
        {
            fn from_node(node: $crate::ir::NodeId, location: L) -> Self {
                $name { node, location, _marker: ::std::marker::PhantomData }
            }
            fn node(&self) -> $crate::ir::NodeId {
                self.node
            }
            fn location(&self) -> &L {
                &self.location
            }
        }

        /// Another handle on the same records: each consumer gets every record
        /// (cloned at run time, hence `T: Clone`).
        impl<'a, T: Clone, L: Clone, B> Clone for $name<'a, T, L, B> {
            fn clone(&self) -> Self {
                $name {
                    node: self.node,
                    location: self.location.clone(),
                    _marker: ::std::marker::PhantomData,
                }
            }
        }
    };
}
pub(crate) use collection;

/// What every collection type shares: how operators make new nodes from it.
pub(crate) trait Collection<'a, L: Location<'a>>: Sized {
    fn from_node(node: NodeId, location: L) -> Self;
    fn node(&self) -> NodeId;
    fn location(&self) -> &L;

    fn flow(&self) -> &'a FlowBuilder {
        self.location().flow()
    }

    /// A node at this collection's location consuming it (then `others`, which
    /// must live at the same location).
    fn derive<C: Collection<'a, L>>(
        self,
        op: Operator,
        others: &[(NodeId, LocationId)],
        args: Vec<QuotedExpr>,
        at: &'static Caller<'static>,
    ) -> C {
        let node = self
            .flow()
            .derive_node(self.node(), self.location().id(), op, others, args, at);
        C::from_node(node, self.location().clone())
    }

    /// A node at this location consuming this collection, with one `q!` argument.
    fn quoted_op<C: Collection<'a, L>, F>(
        self,
        op: Operator,
        f: impl IntoQuoted<F>,
        at: &'static Caller<'static>,
    ) -> C {
        let f = self.flow().quoted(f, at);
        self.derive(op, &[], vec![f], at)
    }

    /// The node and location of a second input, for [`Collection::derive`].
    fn other(&self) -> (NodeId, LocationId) {
        (self.node(), self.location().id())
    }
}

collection!(
    /// Records of type `T` flowing at location `L`, at level `B` ([`Unbounded`]
    /// across the run, or [`Bounded`] to one tick).
    ///
    /// Element-wise operators take `q!` closures and stay where they are; network
    /// operators move the stream to another location.
    #[must_use = "a stream does nothing unless it is consumed (for example by `for_each`)"]
    Stream
);

impl<'a, T, L: Location<'a>, B: Boundedness> Stream<'a, T, L, B> {
    /// Applies `f` to every record.
    #[track_caller]
    pub fn map<U, F: FnMut(T) -> U>(self, f: impl IntoQuoted<F>) -> Stream<'a, U, L, B> {
        self.quoted_op(Operator::Map, f, Caller::caller())
    }

    /// Keeps the records for which `f` returns `true`.
    #[track_caller]
    pub fn filter<F: FnMut(&T) -> bool>(self, f: impl IntoQuoted<F>) -> Stream<'a, T, L, B> {
        self.quoted_op(Operator::Filter, f, Caller::caller())
    }

    /// Applies `f` to every record and keeps the `Some` results.
    #[track_caller]
    pub fn filter_map<U, F: FnMut(T) -> Option<U>>(
        self,
        f: impl IntoQuoted<F>,
    ) -> Stream<'a, U, L, B> {
        self.quoted_op(Operator::FilterMap, f, Caller::caller())
    }

    /// Applies `f` to every record and flattens the iterables it returns.
    #[track_caller]
    pub fn flat_map<I: IntoIterator, F: FnMut(T) -> I>(
        self,
        f: impl IntoQuoted<F>,
    ) -> Stream<'a, I::Item, L, B> {
        self.quoted_op(Operator::FlatMap, f, Caller::caller())
    }

    /// Calls `f` on a reference to every record, passing the records on unchanged.
    #[track_caller]
    pub fn inspect<F: FnMut(&T)>(self, f: impl IntoQuoted<F>) -> Stream<'a, T, L, B> {
        self.quoted_op(Operator::Inspect, f, Caller::caller())
    }

    /// Pairs every record with its position, counted from 0 since the role started.
    #[track_caller]
    pub fn enumerate(self) -> Stream<'a, (usize, T), L, B> {
        self.derive(Operator::Enumerate, &[], Vec::new(), Caller::caller())
    }

    /// The records of both streams (in no particular order between the two).
    #[track_caller]
    pub fn union(self, other: Stream<'a, T, L, B>) -> Stream<'a, T, L, B> {
        let other = other.other();
        self.derive(Operator::Union, &[other], Vec::new(), Caller::caller())
    }

    /// Folds the records into one value: per tick on a bounded stream, over the
    /// whole run on an unbounded one. `init` makes the starting value.
    #[track_caller]
    pub fn fold<A: Clone, I: Fn() -> A, F: FnMut(&mut A, T)>(
        self,
        init: impl IntoQuoted<I>,
        f: impl IntoQuoted<F>,
    ) -> Singleton<'a, A, L, B> {
        let at = Caller::caller();
        let args = self.flow().quoted_pair(init, f, at);
        self.derive(Operator::Fold { level: B::LEVEL }, &[], args, at)
    }

    /// Combines the records into the first one; empty if there were none.
    #[track_caller]
    pub fn reduce<F: FnMut(&mut T, T)>(self, f: impl IntoQuoted<F>) -> Optional<'a, T, L, B>
    where
        T: Clone,
    {
        self.quoted_op(Operator::Reduce { level: B::LEVEL }, f, Caller::caller())
    }

    /// How many records there were (this tick, or so far).
    #[track_caller]
    pub fn count(self) -> Singleton<'a, usize, L, B> {
        self.derive(
            Operator::Count { level: B::LEVEL },
            &[],
            Vec::new(),
            Caller::caller(),
        )
    }

    /// Consumes every record with `f`. The closure is created once when the role
    /// starts, so state it owns lives for the whole run.
    #[track_caller]
    pub fn for_each<F: FnMut(T)>(self, f: impl IntoQuoted<F>) {
        let _: Stream<'a, (), L, B> = self.quoted_op(Operator::ForEach, f, Caller::caller());
    }

    /// Sends every record into a `futures::Sink` (made once when the role starts).
    /// Records are fed in order and flushed at the end of each tick; the sink is
    /// closed once the stream ends. A sink error stops the role with that error.
    #[track_caller]
    pub fn dest_sink<S>(self, sink: impl IntoQuoted<S>)
    where
        S: futures_sink::Sink<T>,
        S::Error: std::fmt::Display,
    {
        let _: Stream<'a, (), L, B> = self.quoted_op(Operator::DestSink, sink, Caller::caller());
    }
}

impl<'a, 'r, U: Clone + 'r, L: Location<'a>, B: Boundedness> Stream<'a, &'r U, L, B> {
    /// Clones every record out of its reference.
    #[track_caller]
    pub fn cloned(self) -> Stream<'a, U, L, B> {
        self.derive(Operator::Cloned, &[], Vec::new(), Caller::caller())
    }
}

impl<'a, T, L: Location<'a>> Stream<'a, T, L, Unbounded> {
    /// The records that arrive in each tick, as that tick's bounded batch.
    #[track_caller]
    pub fn tick_batch(self) -> Stream<'a, T, L, Bounded> {
        self.derive(Operator::TickBatch, &[], Vec::new(), Caller::caller())
    }

    /// A failure detector: one `()` each time this stream has had no record
    /// for `limit` (a `q!(Duration)`), counted from the start and from its
    /// last record, and again after every further `limit` of silence. Feed it
    /// a leader's heartbeats and it says when to elect another.
    #[track_caller]
    pub fn timeout(self, limit: impl IntoQuoted<Duration>) -> Stream<'a, (), L, Unbounded> {
        self.quoted_op(Operator::Timeout, limit, Caller::caller())
    }
}

/// Tick-level operators: they see one tick's whole batch.
impl<'a, T, L: Location<'a>, B: Boundedness> Stream<'a, T, L, B> {
    /// Back to the unbounded level: every tick's records, one tick after another.
    #[track_caller]
    pub fn all_ticks(self) -> Stream<'a, T, L, Unbounded>
    where
        B: TickLevel,
    {
        self.derive(Operator::AllTicks, &[], Vec::new(), Caller::caller())
    }

    /// This tick's records without repeats, in first-seen order.
    #[track_caller]
    pub fn unique(self) -> Stream<'a, T, L, B>
    where
        B: TickLevel,
        T: Eq + Hash + Clone,
    {
        self.derive(Operator::Unique, &[], Vec::new(), Caller::caller())
    }

    /// This tick's records in ascending order.
    #[track_caller]
    pub fn sort(self) -> Stream<'a, T, L, B>
    where
        B: TickLevel,
        T: Ord,
    {
        self.derive(Operator::Sort, &[], Vec::new(), Caller::caller())
    }

    /// Every record seen so far, replayed in each tick (oldest first).
    #[track_caller]
    pub fn persist(self) -> Stream<'a, T, L, B>
    where
        B: TickLevel,
        T: Clone,
    {
        self.derive(Operator::Persist, &[], Vec::new(), Caller::caller())
    }

    /// The records of this tick that were not in the previous tick's batch.
    #[track_caller]
    pub fn delta(self) -> Stream<'a, T, L, B>
    where
        B: TickLevel,
        T: Eq + Hash + Clone,
    {
        self.derive(Operator::Delta, &[], Vec::new(), Caller::caller())
    }

    /// This tick's records, delivered in the next tick.
    #[track_caller]
    pub fn defer_tick(self) -> Stream<'a, T, L, B>
    where
        B: TickLevel,
    {
        self.derive(Operator::DeferTick, &[], Vec::new(), Caller::caller())
    }

    /// The first record of this tick, if any.
    #[track_caller]
    pub fn first(self) -> Optional<'a, T, L, B>
    where
        B: TickLevel,
    {
        self.derive(Operator::First, &[], Vec::new(), Caller::caller())
    }

    /// Every pair of a record of this stream and one of `other`.
    #[track_caller]
    pub fn cross_product<U: Clone>(self, other: Stream<'a, U, L, B>) -> Stream<'a, (T, U), L, B>
    where
        B: TickLevel,
        T: Clone,
    {
        let other = other.other();
        self.derive(
            Operator::CrossProduct,
            &[other],
            Vec::new(),
            Caller::caller(),
        )
    }

    /// The records that do not occur in `other`.
    #[track_caller]
    pub fn filter_not_in(self, other: Stream<'a, T, L, B>) -> Stream<'a, T, L, B>
    where
        B: TickLevel,
        T: Eq + Hash,
    {
        let other = other.other();
        self.derive(
            Operator::FilterNotIn,
            &[other],
            Vec::new(),
            Caller::caller(),
        )
    }

    /// Pairs every record with this tick's value of `singleton`.
    #[track_caller]
    pub fn cross_singleton<U: Clone>(
        self,
        singleton: Singleton<'a, U, L, B>,
    ) -> Stream<'a, (T, U), L, B>
    where
        B: TickLevel,
    {
        let other = singleton.other();
        self.derive(
            Operator::CrossSingleton,
            &[other],
            Vec::new(),
            Caller::caller(),
        )
    }

    /// This tick's records if `condition` has a value this tick, else none.
    #[track_caller]
    pub fn continue_if<U>(self, condition: Optional<'a, U, L, B>) -> Stream<'a, T, L, B>
    where
        B: TickLevel,
    {
        let other = condition.other();
        self.derive(Operator::ContinueIf, &[other], Vec::new(), Caller::caller())
    }

    /// This tick's records if `condition` is empty this tick, else none.
    #[track_caller]
    pub fn continue_unless<U>(self, condition: Optional<'a, U, L, B>) -> Stream<'a, T, L, B>
    where
        B: TickLevel,
    {
        let other = condition.other();
        self.derive(
            Operator::ContinueUnless,
            &[other],
            Vec::new(),
            Caller::caller(),
        )
    }
}

/// Operators on key-value records.
impl<'a, K: Eq + Hash, V, L: Location<'a>, B: Boundedness> Stream<'a, (K, V), L, B> {
    /// Folds the values of each key: per tick (emitted every tick) on a bounded
    /// stream; over the whole run on an unbounded one, emitted once the stream
    /// has ended.
    #[track_caller]
    pub fn fold_keyed<A, I: Fn() -> A, F: FnMut(&mut A, V)>(
        self,
        init: impl IntoQuoted<I>,
        f: impl IntoQuoted<F>,
    ) -> Stream<'a, (K, A), L, B> {
        let at = Caller::caller();
        let args = self.flow().quoted_pair(init, f, at);
        self.derive(Operator::FoldKeyed { level: B::LEVEL }, &[], args, at)
    }

    /// Combines the values of each key into its first value; emitted like
    /// [`fold_keyed`](Stream::fold_keyed).
    #[track_caller]
    pub fn reduce_keyed<F: FnMut(&mut V, V)>(
        self,
        f: impl IntoQuoted<F>,
    ) -> Stream<'a, (K, V), L, B> {
        self.quoted_op(
            Operator::ReduceKeyed { level: B::LEVEL },
            f,
            Caller::caller(),
        )
    }
}

/// Tick-level operators on key-value records.
impl<'a, K: Eq + Hash + Clone, V, L: Location<'a>, B: Boundedness> Stream<'a, (K, V), L, B> {
    /// Pairs the records of both streams that have equal keys.
    #[track_caller]
    pub fn join<V2: Clone>(self, other: Stream<'a, (K, V2), L, B>) -> Stream<'a, (K, (V, V2)), L, B>
    where
        B: TickLevel,
        V: Clone,
    {
        let other = other.other();
        self.derive(Operator::Join, &[other], Vec::new(), Caller::caller())
    }

    /// The records whose key does not occur in `keys`.
    #[track_caller]
    pub fn anti_join(self, keys: Stream<'a, K, L, B>) -> Stream<'a, (K, V), L, B>
    where
        B: TickLevel,
    {
        let other = keys.other();
        self.derive(Operator::AntiJoin, &[other], Vec::new(), Caller::caller())
    }
}
