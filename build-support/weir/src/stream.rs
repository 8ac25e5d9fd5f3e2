//! [`Stream`]: a sequence of records at one location, and its operators.

use crate::builder::FlowBuilder;
use crate::ir::{LocationId, NodeId, Operator, QuotedExpr};
use crate::level::{Bounded, Boundedness, TickLevel, Unbounded};
use crate::location::Location;
use crate::order::{Both, Meet, NoOrder, NonDet, Ordered, Ordering, TotalOrder};
use crate::quote::IntoQuoted;
use crate::singleton::{Optional, Singleton};
use std::hash::Hash;
use std::marker::PhantomData;
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

/// Records of type `T` flowing at location `L`, at level `B` ([`Unbounded`]
/// across the run, or [`Bounded`] to one tick), in order `O` ([`TotalOrder`],
/// the same on every run, or [`NoOrder`]: see [`order`](crate::order)).
///
/// Element-wise operators take `q!` closures and stay where they are; network
/// operators move the stream to another location.
#[must_use = "a stream does nothing unless it is consumed (for example by `for_each`)"]
pub struct Stream<'a, T, L, B = Unbounded, O = TotalOrder> {
    pub(crate) node: NodeId,
    pub(crate) location: L,
    _marker: Marker<'a, T, B, O>,
}

/// What a collection's type says of it beyond its node and location.
pub(crate) type Marker<'a, T, B, O> =
    PhantomData<(fn() -> T, fn() -> B, fn() -> O, &'a FlowBuilder)>;

impl<'a, T, L: Location<'a>, B, O> Collection<'a, L> for Stream<'a, T, L, B, O> {
    fn from_node(node: NodeId, location: L) -> Self {
        Stream {
            node,
            location,
            _marker: PhantomData,
        }
    }
    fn node(&self) -> NodeId {
        self.node
    }
    fn location(&self) -> &L {
        &self.location
    }
}

/// Another handle on the same records: each consumer gets every record
/// (cloned at run time, hence `T: Clone`).
impl<'a, T: Clone, L: Clone, B, O> Clone for Stream<'a, T, L, B, O> {
    fn clone(&self) -> Self {
        Stream {
            node: self.node,
            location: self.location.clone(),
            _marker: PhantomData,
        }
    }
}

impl<'a, T, L: Location<'a>, B: Boundedness, O: Ordering> Stream<'a, T, L, B, O> {
    /// Applies `f` to every record.
    #[track_caller]
    pub fn map<U, F: FnMut(T) -> U>(self, f: impl IntoQuoted<F>) -> Stream<'a, U, L, B, O> {
        self.quoted_op(Operator::Map, f, Caller::caller())
    }

    /// Keeps the records for which `f` returns `true`.
    #[track_caller]
    pub fn filter<F: FnMut(&T) -> bool>(self, f: impl IntoQuoted<F>) -> Stream<'a, T, L, B, O> {
        self.quoted_op(Operator::Filter, f, Caller::caller())
    }

    /// Applies `f` to every record and keeps the `Some` results.
    #[track_caller]
    pub fn filter_map<U, F: FnMut(T) -> Option<U>>(
        self,
        f: impl IntoQuoted<F>,
    ) -> Stream<'a, U, L, B, O> {
        self.quoted_op(Operator::FilterMap, f, Caller::caller())
    }

    /// Splits the stream in `N`: each record goes, moved rather than
    /// cloned, to the branch that `branch(&record)` numbers, or nowhere if
    /// the number is `N` or more. Where records of several kinds go to
    /// several places (an enum's variants, each to its own channel), each
    /// record goes once: consuming one stream several times clones every
    /// record for every consumer but the last.
    ///
    /// ```ignore
    /// let [replies, peers] = outputs.demux(q!(|o: &Output| match o {
    ///     Output::Reply(..) => 0,
    ///     Output::Peer(..) => 1,
    /// }));
    /// ```
    #[track_caller]
    pub fn demux<const N: usize, F: FnMut(&T) -> usize>(
        self,
        branch: impl IntoQuoted<F>,
    ) -> [Stream<'a, T, L, B, O>; N] {
        let at = Caller::caller();
        let location = self.location().clone();
        let demux: Stream<'a, T, L, B, O> =
            self.quoted_op(Operator::Demux { branches: N }, branch, at);
        std::array::from_fn(|index| {
            let node = demux.flow().derive_node(
                demux.node(),
                location.id(),
                Operator::Branch { index },
                &[],
                Vec::new(),
                at,
            );
            Stream::from_node(node, location.clone())
        })
    }

    /// Applies `f` to every record and flattens the iterables it returns.
    #[track_caller]
    pub fn flat_map<I: IntoIterator, F: FnMut(T) -> I>(
        self,
        f: impl IntoQuoted<F>,
    ) -> Stream<'a, I::Item, L, B, O> {
        self.quoted_op(Operator::FlatMap, f, Caller::caller())
    }

    /// Calls `f` on a reference to every record, passing the records on unchanged.
    #[track_caller]
    pub fn inspect<F: FnMut(&T)>(self, f: impl IntoQuoted<F>) -> Stream<'a, T, L, B, O> {
        self.quoted_op(Operator::Inspect, f, Caller::caller())
    }

    /// Pairs every record with its position, counted from 0 since the role
    /// started (so the stream's order must be the same on every run).
    #[track_caller]
    pub fn enumerate(self) -> Stream<'a, (usize, T), L, B, O>
    where
        O: Ordered,
    {
        self.derive(Operator::Enumerate, &[], Vec::new(), Caller::caller())
    }

    /// The records of both streams, in no order between the two that is the
    /// same on every run: [`NoOrder`].
    #[track_caller]
    pub fn union<O2: Ordering>(
        self,
        other: Stream<'a, T, L, B, O2>,
    ) -> Stream<'a, T, L, B, NoOrder> {
        let other = other.other();
        self.derive(Operator::Union, &[other], Vec::new(), Caller::caller())
    }

    /// Folds the records into one value, in their order: per tick on a
    /// bounded stream, over the whole run on an unbounded one. `init` makes
    /// the starting value. On a [`NoOrder`] stream, see
    /// [`fold_commutative`](Stream::fold_commutative).
    #[track_caller]
    pub fn fold<A: Clone, I: Fn() -> A, F: FnMut(&mut A, T)>(
        self,
        init: impl IntoQuoted<I>,
        f: impl IntoQuoted<F>,
    ) -> Singleton<'a, A, L, B>
    where
        O: Ordered,
    {
        self.fold_any_order(init, f, Caller::caller())
    }

    /// [`fold`](Stream::fold) on a stream in any order, for a closure whose
    /// result does not depend on the order of the records (adding, taking
    /// the largest, inserting into a set). A promise the types cannot check:
    /// the simulator's determinism check tries it over many orders.
    #[track_caller]
    pub fn fold_commutative<A: Clone, I: Fn() -> A, F: FnMut(&mut A, T)>(
        self,
        init: impl IntoQuoted<I>,
        f: impl IntoQuoted<F>,
    ) -> Singleton<'a, A, L, B> {
        self.fold_any_order(init, f, Caller::caller())
    }

    fn fold_any_order<A: Clone, I: Fn() -> A, F: FnMut(&mut A, T)>(
        self,
        init: impl IntoQuoted<I>,
        f: impl IntoQuoted<F>,
        at: &'static Caller<'static>,
    ) -> Singleton<'a, A, L, B> {
        let args = self.flow().quoted_pair(init, f, at);
        self.derive(Operator::Fold { level: B::LEVEL }, &[], args, at)
    }

    /// Combines the records into the first one, in their order; empty if
    /// there were none. On a [`NoOrder`] stream, see
    /// [`reduce_commutative`](Stream::reduce_commutative).
    #[track_caller]
    pub fn reduce<F: FnMut(&mut T, T)>(self, f: impl IntoQuoted<F>) -> Optional<'a, T, L, B>
    where
        T: Clone,
        O: Ordered,
    {
        self.quoted_op(Operator::Reduce { level: B::LEVEL }, f, Caller::caller())
    }

    /// [`reduce`](Stream::reduce) on a stream in any order, for a closure
    /// whose result does not depend on the order (see
    /// [`fold_commutative`](Stream::fold_commutative)).
    #[track_caller]
    pub fn reduce_commutative<F: FnMut(&mut T, T)>(
        self,
        f: impl IntoQuoted<F>,
    ) -> Optional<'a, T, L, B>
    where
        T: Clone,
    {
        self.quoted_op(Operator::Reduce { level: B::LEVEL }, f, Caller::caller())
    }

    /// The same records, no longer relied on for their order: a [`NoOrder`]
    /// stream (to join one, say). Nothing runs.
    pub fn unordered(self) -> Stream<'a, T, L, B, NoOrder> {
        Stream::from_node(self.node, self.location)
    }

    /// This stream, declared to be in an order the flow can rely on: the
    /// nondeterminism of its order is accepted, for the reason given with
    /// [`nondet!`](crate::nondet). The reason is written beside it in the
    /// generated code and the flow's pictures; nothing runs.
    #[track_caller]
    pub fn assume_ordering(self, nondet: NonDet) -> Stream<'a, T, L, B, TotalOrder> {
        let op = Operator::AssumeOrdering {
            reason: nondet.reason.to_string(),
        };
        self.derive(op, &[], Vec::new(), Caller::caller())
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
        let _: Stream<'a, (), L, B, O> = self.quoted_op(Operator::ForEach, f, Caller::caller());
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
        let _: Stream<'a, (), L, B, O> = self.quoted_op(Operator::DestSink, sink, Caller::caller());
    }
}

impl<'a, 'r, U: Clone + 'r, L: Location<'a>, B: Boundedness, O: Ordering>
    Stream<'a, &'r U, L, B, O>
{
    /// Clones every record out of its reference.
    #[track_caller]
    pub fn cloned(self) -> Stream<'a, U, L, B, O> {
        self.derive(Operator::Cloned, &[], Vec::new(), Caller::caller())
    }
}

impl<'a, T, L: Location<'a>, O: Ordering> Stream<'a, T, L, Unbounded, O> {
    /// The records that arrive in each tick, as that tick's bounded batch.
    #[track_caller]
    pub fn tick_batch(self) -> Stream<'a, T, L, Bounded, O> {
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
impl<'a, T, L: Location<'a>, B: Boundedness, O: Ordering> Stream<'a, T, L, B, O> {
    /// Back to the unbounded level: every tick's records, one tick after another.
    #[track_caller]
    pub fn all_ticks(self) -> Stream<'a, T, L, Unbounded, O>
    where
        B: TickLevel,
    {
        self.derive(Operator::AllTicks, &[], Vec::new(), Caller::caller())
    }

    /// This tick's records without repeats, in first-seen order.
    #[track_caller]
    pub fn unique(self) -> Stream<'a, T, L, B, O>
    where
        B: TickLevel,
        T: Eq + Hash + Clone,
    {
        self.derive(Operator::Unique, &[], Vec::new(), Caller::caller())
    }

    /// This tick's records in ascending order: the same order on every run
    /// whatever order they came in.
    #[track_caller]
    pub fn sort(self) -> Stream<'a, T, L, B, TotalOrder>
    where
        B: TickLevel,
        T: Ord,
    {
        self.derive(Operator::Sort, &[], Vec::new(), Caller::caller())
    }

    /// Every record seen so far, replayed in each tick (oldest first).
    #[track_caller]
    pub fn persist(self) -> Stream<'a, T, L, B, O>
    where
        B: TickLevel,
        T: Clone,
    {
        self.derive(Operator::Persist, &[], Vec::new(), Caller::caller())
    }

    /// The records of this tick that were not in the previous tick's batch.
    #[track_caller]
    pub fn delta(self) -> Stream<'a, T, L, B, O>
    where
        B: TickLevel,
        T: Eq + Hash + Clone,
    {
        self.derive(Operator::Delta, &[], Vec::new(), Caller::caller())
    }

    /// This tick's records, delivered in the next tick.
    #[track_caller]
    pub fn defer_tick(self) -> Stream<'a, T, L, B, O>
    where
        B: TickLevel,
    {
        self.derive(Operator::DeferTick, &[], Vec::new(), Caller::caller())
    }

    /// The first record of this tick, if any (so the stream's order must be
    /// the same on every run).
    #[track_caller]
    pub fn first(self) -> Optional<'a, T, L, B>
    where
        B: TickLevel,
        O: Ordered,
    {
        self.derive(Operator::First, &[], Vec::new(), Caller::caller())
    }

    /// Every pair of a record of this stream and one of `other`.
    #[track_caller]
    pub fn cross_product<U: Clone, O2: Ordering>(
        self,
        other: Stream<'a, U, L, B, O2>,
    ) -> Stream<'a, (T, U), L, B, Both<O, O2>>
    where
        B: TickLevel,
        T: Clone,
        O: Meet<O2>,
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
    pub fn filter_not_in<O2: Ordering>(
        self,
        other: Stream<'a, T, L, B, O2>,
    ) -> Stream<'a, T, L, B, O>
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
    ) -> Stream<'a, (T, U), L, B, O>
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
    pub fn continue_if<U>(self, condition: Optional<'a, U, L, B>) -> Stream<'a, T, L, B, O>
    where
        B: TickLevel,
    {
        let other = condition.other();
        self.derive(Operator::ContinueIf, &[other], Vec::new(), Caller::caller())
    }

    /// This tick's records if `condition` is empty this tick, else none.
    #[track_caller]
    pub fn continue_unless<U>(self, condition: Optional<'a, U, L, B>) -> Stream<'a, T, L, B, O>
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
impl<'a, K: Eq + Hash, V, L: Location<'a>, B: Boundedness, O: Ordering>
    Stream<'a, (K, V), L, B, O>
{
    /// Folds the values of each key, in their order: per tick (emitted every
    /// tick) on a bounded stream; over the whole run on an unbounded one,
    /// emitted once the stream has ended. The keys come out in no order that
    /// is the same on every run ([`NoOrder`]). On a `NoOrder` stream, see
    /// [`fold_keyed_commutative`](Stream::fold_keyed_commutative).
    #[track_caller]
    pub fn fold_keyed<A, I: Fn() -> A, F: FnMut(&mut A, V)>(
        self,
        init: impl IntoQuoted<I>,
        f: impl IntoQuoted<F>,
    ) -> Stream<'a, (K, A), L, B, NoOrder>
    where
        O: Ordered,
    {
        self.fold_keyed_any_order(init, f, Caller::caller())
    }

    /// [`fold_keyed`](Stream::fold_keyed) on a stream in any order, for a
    /// closure whose result does not depend on the order of a key's values.
    #[track_caller]
    pub fn fold_keyed_commutative<A, I: Fn() -> A, F: FnMut(&mut A, V)>(
        self,
        init: impl IntoQuoted<I>,
        f: impl IntoQuoted<F>,
    ) -> Stream<'a, (K, A), L, B, NoOrder> {
        self.fold_keyed_any_order(init, f, Caller::caller())
    }

    fn fold_keyed_any_order<A, I: Fn() -> A, F: FnMut(&mut A, V)>(
        self,
        init: impl IntoQuoted<I>,
        f: impl IntoQuoted<F>,
        at: &'static Caller<'static>,
    ) -> Stream<'a, (K, A), L, B, NoOrder> {
        let args = self.flow().quoted_pair(init, f, at);
        self.derive(Operator::FoldKeyed { level: B::LEVEL }, &[], args, at)
    }

    /// Combines the values of each key into its first value, in their order;
    /// emitted like [`fold_keyed`](Stream::fold_keyed).
    #[track_caller]
    pub fn reduce_keyed<F: FnMut(&mut V, V)>(
        self,
        f: impl IntoQuoted<F>,
    ) -> Stream<'a, (K, V), L, B, NoOrder>
    where
        O: Ordered,
    {
        self.quoted_op(
            Operator::ReduceKeyed { level: B::LEVEL },
            f,
            Caller::caller(),
        )
    }

    /// [`reduce_keyed`](Stream::reduce_keyed) on a stream in any order, for a
    /// closure whose result does not depend on the order of a key's values.
    #[track_caller]
    pub fn reduce_keyed_commutative<F: FnMut(&mut V, V)>(
        self,
        f: impl IntoQuoted<F>,
    ) -> Stream<'a, (K, V), L, B, NoOrder> {
        self.quoted_op(
            Operator::ReduceKeyed { level: B::LEVEL },
            f,
            Caller::caller(),
        )
    }
}

/// Tick-level operators on key-value records.
impl<'a, K: Eq + Hash + Clone, V, L: Location<'a>, B: Boundedness, O: Ordering>
    Stream<'a, (K, V), L, B, O>
{
    /// Pairs the records of both streams that have equal keys.
    #[track_caller]
    #[allow(clippy::type_complexity)] // the signature is the documentation
    pub fn join<V2: Clone, O2: Ordering>(
        self,
        other: Stream<'a, (K, V2), L, B, O2>,
    ) -> Stream<'a, (K, (V, V2)), L, B, Both<O, O2>>
    where
        B: TickLevel,
        V: Clone,
        O: Meet<O2>,
    {
        let other = other.other();
        self.derive(Operator::Join, &[other], Vec::new(), Caller::caller())
    }

    /// The records whose key does not occur in `keys`.
    #[track_caller]
    pub fn anti_join<O2: Ordering>(
        self,
        keys: Stream<'a, K, L, B, O2>,
    ) -> Stream<'a, (K, V), L, B, O>
    where
        B: TickLevel,
    {
        let other = keys.other();
        self.derive(Operator::AntiJoin, &[other], Vec::new(), Caller::caller())
    }
}
