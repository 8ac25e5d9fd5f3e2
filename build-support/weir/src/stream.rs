//! [`Stream`]: an unbounded sequence of records at one location, and its operators.

use crate::builder::FlowBuilder;
use crate::ir::{Delivery, NodeId, Operator};
use crate::location::{Cluster, Location, Process};
use crate::quote::IntoQuoted;
use serde::{de::DeserializeOwned, Serialize};
use std::marker::PhantomData;
use std::panic::Location as Caller;

/// Records of type `T` flowing at location `L`.
///
/// Element-wise operators take `q!` closures and stay at `L`; network operators
/// (`send_bincode`, `broadcast_bincode`) move the stream to another location.
#[must_use = "a stream does nothing unless it is consumed (for example by `for_each`)"]
pub struct Stream<'a, T, L> {
    node: NodeId,
    location: L,
    _records: PhantomData<fn() -> T>,
    _flow: PhantomData<&'a FlowBuilder>,
}

impl<'a, T, L: Location<'a>> Stream<'a, T, L> {
    pub(crate) fn new(node: NodeId, location: L) -> Self {
        Stream {
            node,
            location,
            _records: PhantomData,
            _flow: PhantomData,
        }
    }

    fn flow(&self) -> &'a FlowBuilder {
        self.location.flow()
    }

    /// Adds an element-wise operator at this stream's location.
    fn then<U>(
        self,
        at: &'static Caller<'static>,
        op: impl FnOnce(NodeId) -> Operator,
    ) -> Stream<'a, U, L> {
        let node = self.flow().add_node(self.location.id(), op(self.node), at);
        Stream::new(node, self.location)
    }

    /// Applies `f` to every record.
    #[track_caller]
    pub fn map<U, F: FnMut(T) -> U>(self, f: impl IntoQuoted<F>) -> Stream<'a, U, L> {
        let at = Caller::caller();
        let f = self.flow().quoted(f, at);
        self.then(at, |input| Operator::Map { input, f })
    }

    /// Keeps the records for which `f` returns `true`.
    #[track_caller]
    pub fn filter<F: FnMut(&T) -> bool>(self, f: impl IntoQuoted<F>) -> Stream<'a, T, L> {
        let at = Caller::caller();
        let f = self.flow().quoted(f, at);
        self.then(at, |input| Operator::Filter { input, f })
    }

    /// Applies `f` to every record and keeps the `Some` results.
    #[track_caller]
    pub fn filter_map<U, F: FnMut(T) -> Option<U>>(
        self,
        f: impl IntoQuoted<F>,
    ) -> Stream<'a, U, L> {
        let at = Caller::caller();
        let f = self.flow().quoted(f, at);
        self.then(at, |input| Operator::FilterMap { input, f })
    }

    /// Applies `f` to every record and flattens the iterables it returns.
    #[track_caller]
    pub fn flat_map<I: IntoIterator, F: FnMut(T) -> I>(
        self,
        f: impl IntoQuoted<F>,
    ) -> Stream<'a, I::Item, L> {
        let at = Caller::caller();
        let f = self.flow().quoted(f, at);
        self.then(at, |input| Operator::FlatMap { input, f })
    }

    /// Calls `f` on a reference to every record, passing the records on unchanged.
    #[track_caller]
    pub fn inspect<F: FnMut(&T)>(self, f: impl IntoQuoted<F>) -> Stream<'a, T, L> {
        let at = Caller::caller();
        let f = self.flow().quoted(f, at);
        self.then(at, |input| Operator::Inspect { input, f })
    }

    /// Consumes every record with `f`. The closure is created once when the role
    /// starts, so state it owns lives for the whole run.
    #[track_caller]
    pub fn for_each<F: FnMut(T)>(self, f: impl IntoQuoted<F>) {
        let at = Caller::caller();
        let f = self.flow().quoted(f, at);
        let _sink: Stream<'a, (), L> = self.then(at, |input| Operator::ForEach { input, f });
    }

    /// Adds a network edge from this stream's location to `to`.
    fn network<U, L2: Location<'a>>(
        self,
        to: &L2,
        delivery: Delivery,
        at: &'static Caller<'static>,
    ) -> Stream<'a, U, L2>
    where
        T: NetworkRecord,
    {
        let flow = self.flow();
        let op_name = match delivery {
            Delivery::ToProcess => "send_bincode",
            Delivery::Broadcast => "broadcast_bincode",
        };
        if !std::ptr::eq(to.flow(), flow) {
            flow.error(at, format!("`{op_name}` to a location of another flow"));
        } else if to.id() == self.location.id() {
            let name = flow.location_name(to.id());
            flow.error(
                at,
                format!("`{op_name}` from `{name}` to itself: records are already there"),
            );
        }
        let op = Operator::Network {
            input: self.node,
            delivery,
            element_type: std::any::type_name::<T>().to_string(),
        };
        Stream::new(flow.add_node(to.id(), op, at), to.clone())
    }
}

/// A record type that can cross the network (serde both ways).
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be sent over the network",
    label = "records of this stream must implement serde's `Serialize` and `DeserializeOwned`",
    note = "derive them: `#[derive(serde::Serialize, serde::Deserialize)]`"
)]
pub trait NetworkRecord: Serialize + DeserializeOwned {}
impl<T: Serialize + DeserializeOwned> NetworkRecord for T {}

impl<'a, T, Tag> Stream<'a, T, Process<'a, Tag>> {
    /// Sends every record to the process `to`, in order.
    #[track_caller]
    pub fn send_bincode<Tag2>(self, to: &Process<'a, Tag2>) -> Stream<'a, T, Process<'a, Tag2>>
    where
        T: NetworkRecord,
    {
        self.network(to, Delivery::ToProcess, Caller::caller())
    }

    /// Sends every record to every member of the cluster `to`, in order.
    #[track_caller]
    pub fn broadcast_bincode<Tag2>(self, to: &Cluster<'a, Tag2>) -> Stream<'a, T, Cluster<'a, Tag2>>
    where
        T: NetworkRecord,
    {
        self.network(to, Delivery::Broadcast, Caller::caller())
    }
}
