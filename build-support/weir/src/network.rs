//! Network operators: moving a stream from one location to another.
//!
//! | from → to | operator | each record goes to | receiver gets |
//! |---|---|---|---|
//! | process → process | `send_bincode` | the process | `T` |
//! | process → cluster | `broadcast_bincode` | every member | `T` |
//! | process → cluster | `round_robin_bincode` | the members in turn | `T` |
//! | process → cluster | `send_bincode` on `(ClusterId, T)` | the member named | `T` |
//! | cluster → process | `send_bincode` | the process | `(ClusterId, T)`, tagged with the sender |
//! | cluster → process | `send_bincode_interleaved` | the process | `T` |
//! | cluster → cluster (the same or another) | as from a process | as from a process | `(ClusterId, T)` |
//!
//! Records travel in order between each pair of instances, batched into one frame
//! per channel per tick. Every record type must serialise with serde. A
//! process's records arrive in the order they were sent; a cluster's are
//! interleaved across its members in an order that changes from run to run,
//! so they arrive as a [`NoOrder`] stream (see [`order`](crate::order)).
//!
//! Each operator has a `_tolerant` form (`broadcast_bincode_tolerant`, ...). By
//! default an edge is *fail-stop*: losing an instance at the other end is an
//! error, and the instances that talk to it fail. On a tolerant edge, a lost
//! instance's part of the stream ends (records from it stop, records to it are
//! dropped and counted), the others go on, and it may rejoin later (see
//! [`Cluster::membership`] to watch that happen).

use crate::ir::{Delivery, Failure, Operator};
use crate::level::Unbounded;
use crate::location::{Cluster, ClusterId, Location, Process};
use crate::order::{NoOrder, Ordering};
use crate::stream::{Collection, Stream};
use serde::{de::DeserializeOwned, Serialize};
use std::panic::Location as Caller;

/// A record type that can cross the network (serde both ways).
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be sent over the network",
    label = "records of this stream must implement serde's `Serialize` and `DeserializeOwned`",
    note = "derive them: `#[derive(serde::Serialize, serde::Deserialize)]`"
)]
pub trait NetworkRecord: Serialize + DeserializeOwned {}
impl<T: Serialize + DeserializeOwned> NetworkRecord for T {}

/// What a location's records look like on arrival elsewhere: a cluster's are
/// tagged with the member that sent them, and interleaved with the other
/// members' in an order that changes from run to run.
pub trait Sender<'a>: Location<'a> {
    /// A record `T` as it arrives: `T` from a process, `(ClusterId, T)` from a cluster.
    type Received<T>;
    /// The order records sent in order `O` arrive in.
    type Arrives<O: Ordering>: Ordering;
    /// Whether records arrive tagged with their sender.
    const TAGGED: bool;
}

impl<'a, Tag> Sender<'a> for Process<'a, Tag> {
    type Received<T> = T;
    /// One sender: records arrive in the order they were sent.
    type Arrives<O: Ordering> = O;
    const TAGGED: bool = false;
}

impl<'a, Tag> Sender<'a> for Cluster<'a, Tag> {
    type Received<T> = (ClusterId, T);
    /// Each member's records in order, the members' interleaved.
    type Arrives<O: Ordering> = NoOrder;
    const TAGGED: bool = true;
}

/// Where `send_bincode` can send records of type `R` from location `From`.
#[diagnostic::on_unimplemented(
    message = "`send_bincode` cannot send records of type `{R}` to this location",
    label = "to a cluster, records must be `(ClusterId, T)`: the member each goes to",
    note = "to send to every member use `broadcast_bincode`; to spread records over the members use `round_robin_bincode`"
)]
pub trait SendTarget<'a, From: Sender<'a>, R>: Location<'a> {
    /// The record type on the wire.
    type Wire;
    /// How each record is delivered.
    const DELIVERY: Delivery;
}

impl<'a, From: Sender<'a>, T, Tag> SendTarget<'a, From, T> for Process<'a, Tag> {
    type Wire = T;
    const DELIVERY: Delivery = Delivery::ToProcess;
}

impl<'a, From: Sender<'a>, T, Tag> SendTarget<'a, From, (ClusterId, T)> for Cluster<'a, Tag> {
    type Wire = T;
    const DELIVERY: Delivery = Delivery::ToMember;
}

impl<'a, T, L: Sender<'a>, B, O: Ordering> Stream<'a, T, L, B, O> {
    /// Adds a network edge from this stream's location to `to`.
    fn network<U, L2: Location<'a>, Wire: NetworkRecord, O2>(
        self,
        to: &L2,
        (delivery, failure): (Delivery, Failure),
        tagged: bool,
        at: &'static Caller<'static>,
    ) -> Stream<'a, U, L2, Unbounded, O2> {
        let op = Operator::Network {
            delivery,
            element_type: std::any::type_name::<Wire>().to_string(),
            shape: weir_core::shape::trace::<Wire>(),
            tagged,
            failure,
        };
        let node = self.location.flow().network_node(
            self.node,
            self.location.id(),
            (to.flow(), to.id()),
            op,
            at,
        );
        Stream::from_node(node, to.clone())
    }

    /// Sends every record to `to`: a process, or, for records `(ClusterId, T)`, the
    /// cluster member named. Records from a cluster arrive tagged with the sender.
    #[track_caller]
    pub fn send_bincode<D: SendTarget<'a, L, T>>(
        self,
        to: &D,
    ) -> Stream<'a, L::Received<D::Wire>, D, Unbounded, L::Arrives<O>>
    where
        D::Wire: NetworkRecord,
    {
        self.network::<_, _, D::Wire, _>(
            to,
            (D::DELIVERY, Failure::FailStop),
            L::TAGGED,
            Caller::caller(),
        )
    }

    /// Sends every record to every member of the cluster `to`.
    #[track_caller]
    pub fn broadcast_bincode<Tag2>(
        self,
        to: &Cluster<'a, Tag2>,
    ) -> Stream<'a, L::Received<T>, Cluster<'a, Tag2>, Unbounded, L::Arrives<O>>
    where
        T: NetworkRecord,
    {
        self.network::<_, _, T, _>(
            to,
            (Delivery::Broadcast, Failure::FailStop),
            L::TAGGED,
            Caller::caller(),
        )
    }

    /// Sends the records to the members of the cluster `to` in turn.
    #[track_caller]
    pub fn round_robin_bincode<Tag2>(
        self,
        to: &Cluster<'a, Tag2>,
    ) -> Stream<'a, L::Received<T>, Cluster<'a, Tag2>, Unbounded, L::Arrives<O>>
    where
        T: NetworkRecord,
    {
        self.network::<_, _, T, _>(
            to,
            (Delivery::RoundRobin, Failure::FailStop),
            L::TAGGED,
            Caller::caller(),
        )
    }

    /// [`send_bincode`](Stream::send_bincode) over a tolerant edge: a lost
    /// instance at either end ends only its own part of the stream.
    #[track_caller]
    pub fn send_bincode_tolerant<D: SendTarget<'a, L, T>>(
        self,
        to: &D,
    ) -> Stream<'a, L::Received<D::Wire>, D, Unbounded, L::Arrives<O>>
    where
        D::Wire: NetworkRecord,
    {
        self.network::<_, _, D::Wire, _>(
            to,
            (D::DELIVERY, Failure::Tolerant),
            L::TAGGED,
            Caller::caller(),
        )
    }

    /// [`broadcast_bincode`](Stream::broadcast_bincode) over a tolerant edge:
    /// every member that is up gets every record; a lost member misses what is
    /// sent while it is down.
    #[track_caller]
    pub fn broadcast_bincode_tolerant<Tag2>(
        self,
        to: &Cluster<'a, Tag2>,
    ) -> Stream<'a, L::Received<T>, Cluster<'a, Tag2>, Unbounded, L::Arrives<O>>
    where
        T: NetworkRecord,
    {
        self.network::<_, _, T, _>(
            to,
            (Delivery::Broadcast, Failure::Tolerant),
            L::TAGGED,
            Caller::caller(),
        )
    }

    /// [`round_robin_bincode`](Stream::round_robin_bincode) over a tolerant
    /// edge: records whose turn falls on a member that is down are dropped.
    #[track_caller]
    pub fn round_robin_bincode_tolerant<Tag2>(
        self,
        to: &Cluster<'a, Tag2>,
    ) -> Stream<'a, L::Received<T>, Cluster<'a, Tag2>, Unbounded, L::Arrives<O>>
    where
        T: NetworkRecord,
    {
        self.network::<_, _, T, _>(
            to,
            (Delivery::RoundRobin, Failure::Tolerant),
            L::TAGGED,
            Caller::caller(),
        )
    }
}

impl<'a, T, Tag, B, O: Ordering> Stream<'a, T, Cluster<'a, Tag>, B, O> {
    /// Sends every record to the process `to`, without the sender's id.
    #[track_caller]
    pub fn send_bincode_interleaved<Tag2>(
        self,
        to: &Process<'a, Tag2>,
    ) -> Stream<'a, T, Process<'a, Tag2>, Unbounded, NoOrder>
    where
        T: NetworkRecord,
    {
        self.network::<_, _, T, _>(
            to,
            (Delivery::ToProcess, Failure::FailStop),
            false,
            Caller::caller(),
        )
    }

    /// [`send_bincode_interleaved`](Stream::send_bincode_interleaved) over a
    /// tolerant edge.
    #[track_caller]
    pub fn send_bincode_interleaved_tolerant<Tag2>(
        self,
        to: &Process<'a, Tag2>,
    ) -> Stream<'a, T, Process<'a, Tag2>, Unbounded, NoOrder>
    where
        T: NetworkRecord,
    {
        self.network::<_, _, T, _>(
            to,
            (Delivery::ToProcess, Failure::Tolerant),
            false,
            Caller::caller(),
        )
    }
}
