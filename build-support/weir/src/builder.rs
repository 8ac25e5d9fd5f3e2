//! [`FlowBuilder`]: what a flow function receives, and where the IR accumulates.

use crate::cycle::{Cycle, CycleHandle};
use crate::ir::{
    FlowError, FlowGraph, LocationDecl, LocationId, LocationKind, Node, NodeId, Operator,
    QuotedExpr, SourceLoc,
};
use crate::level::{Bounded, Boundedness};
use crate::location::{Cluster, Location, Process, Role};
use crate::order::Ordering;
use crate::quote::{self, IntoQuoted};
use crate::stream::{Collection, Stream};
use std::cell::RefCell;
use std::marker::PhantomData;
use std::panic::Location as Caller;
use std::time::{Duration, Instant};

/// Builds one flow. A flow function takes `&FlowBuilder`, declares locations and
/// wires streams between them; `weir-build` then calls [`FlowBuilder::finish`].
///
/// Mistakes (a role declared twice, an edge to another flow's location, a `q!`
/// that cannot be used) are collected with the place they were made, not panicked
/// on, so one build reports all of them.
#[derive(Debug, Default)]
pub struct FlowBuilder {
    graph: RefCell<FlowGraph>,
}

impl FlowBuilder {
    /// An empty flow, to give a flow function (the build helper makes one per flow).
    pub fn new() -> Self {
        quote::clear_pending();
        Self::default()
    }

    /// Declares a process (one instance) named `name`.
    #[track_caller]
    pub fn process(&self, name: &str) -> Process<'_> {
        Process::new(
            self.declare(name, LocationKind::Process, Caller::caller()),
            self,
        )
    }

    /// Declares a cluster (any number of members) named `name`.
    #[track_caller]
    pub fn cluster(&self, name: &str) -> Cluster<'_> {
        Cluster::new(
            self.declare(name, LocationKind::Cluster, Caller::caller()),
            self,
        )
    }

    /// Declares a process named after the marker type `R`, with a type of its own.
    #[track_caller]
    pub fn process_of<R: Role>(&self) -> Process<'_, R> {
        let name = R::role_name();
        Process::new(
            self.declare(&name, LocationKind::Process, Caller::caller()),
            self,
        )
    }

    /// Declares a cluster named after the marker type `R`, with a type of its own.
    #[track_caller]
    pub fn cluster_of<R: Role>(&self) -> Cluster<'_, R> {
        let name = R::role_name();
        Cluster::new(
            self.declare(&name, LocationKind::Cluster, Caller::caller()),
            self,
        )
    }

    /// A source: a node without inputs at `location`.
    pub(crate) fn source<'a, L: Location<'a>, T, B, O>(
        &'a self,
        location: &L,
        op: Operator,
        args: Vec<QuotedExpr>,
        at: &'static Caller<'static>,
    ) -> Stream<'a, T, L, B, O> {
        let node = self.source_node((location.flow(), location.id()), op, args, at);
        Stream::from_node(node, location.clone())
    }

    /// A source node with no `q!` arguments at `location`.
    pub(crate) fn source_node_at<'a, L: Location<'a>>(
        &self,
        location: &L,
        op: Operator,
        at: &'static Caller<'static>,
    ) -> NodeId {
        self.source_node((location.flow(), location.id()), op, Vec::new(), at)
    }

    fn source_node(
        &self,
        (flow, location): (&FlowBuilder, LocationId),
        op: Operator,
        args: Vec<QuotedExpr>,
        at: &'static Caller<'static>,
    ) -> NodeId {
        if !std::ptr::eq(flow, self) {
            self.error(at, format!("`{}` at a location of another flow", op.name()));
        }
        self.add_node(location, op, Vec::new(), args, at)
    }

    /// A stream of the items of `iter`, produced at `location`.
    ///
    /// The iterator is created once when the role starts and drained in chunks, one
    /// chunk per tick: a long (or endless) iterator is never materialised at once.
    #[track_caller]
    pub fn source_iter<'a, L, E>(
        &'a self,
        location: &L,
        iter: impl IntoQuoted<E>,
    ) -> Stream<'a, E::Item, L>
    where
        L: Location<'a>,
        E: IntoIterator,
    {
        let at = Caller::caller();
        let iter = self.quoted(iter, at);
        self.source(location, Operator::SourceIter, vec![iter], at)
    }

    /// A stream of the items of a `futures::Stream` (lines of stdin, connections of
    /// a listener, ...), created once when the role starts and polled on its own
    /// task. The stream ends when it returns `None`.
    #[track_caller]
    pub fn source_stream<'a, L, S>(
        &'a self,
        location: &L,
        stream: impl IntoQuoted<S>,
    ) -> Stream<'a, S::Item, L>
    where
        L: Location<'a>,
        S: futures_core::Stream + Send + 'static,
        S::Item: Send + 'static,
    {
        let at = Caller::caller();
        let stream = self.quoted(stream, at);
        self.source(location, Operator::SourceStream, vec![stream], at)
    }

    /// The time, every `period` (a `q!(Duration)`), for as long as the role runs.
    #[track_caller]
    pub fn source_interval<'a, L: Location<'a>>(
        &'a self,
        location: &L,
        period: impl IntoQuoted<Duration>,
    ) -> Stream<'a, Instant, L> {
        let at = Caller::caller();
        let period = self.quoted(period, at);
        self.source(location, Operator::SourceInterval, vec![period], at)
    }

    /// Like [`source_interval`](FlowBuilder::source_interval), but the first
    /// time comes after `delay` rather than after one `period`: a failure
    /// detector's first check can wait for peers to link.
    #[track_caller]
    pub fn source_interval_delayed<'a, L: Location<'a>>(
        &'a self,
        location: &L,
        delay: impl IntoQuoted<Duration>,
        period: impl IntoQuoted<Duration>,
    ) -> Stream<'a, Instant, L> {
        let at = Caller::caller();
        let args = self.quoted_pair(delay, period, at);
        self.source(location, Operator::SourceIntervalDelayed, args, at)
    }

    /// One `()` per tick, tick after tick, for as long as the role runs.
    #[track_caller]
    pub fn spin<'a, L: Location<'a>>(&'a self, location: &L) -> Stream<'a, (), L> {
        self.source(location, Operator::Spin, Vec::new(), Caller::caller())
    }

    /// `n` records `()` in every tick, for as long as the role runs.
    #[track_caller]
    pub fn spin_batch<'a, L: Location<'a>>(
        &'a self,
        location: &L,
        n: impl IntoQuoted<usize>,
    ) -> Stream<'a, (), L, Bounded> {
        let at = Caller::caller();
        let n = self.quoted(n, at);
        self.source(location, Operator::SpinBatch, vec![n], at)
    }

    pub(crate) fn new_cycle<'a, T, L: Location<'a>, B: Boundedness, O: Ordering>(
        &'a self,
        location: &L,
        args: Vec<QuotedExpr>,
        at: &'static Caller<'static>,
    ) -> Cycle<'a, T, L, B, O> {
        let op = Operator::Cycle {
            level: B::LEVEL,
            element_type: std::any::type_name::<T>().to_string(),
        };
        let stream: Stream<'a, T, L, B, O> = self.source(location, op, args, at);
        let handle = CycleHandle {
            node: stream.node,
            location: location.clone(),
            at,
            completed: false,
            _marker: PhantomData,
        };
        (handle, stream)
    }

    pub(crate) fn complete_cycle(&self, cycle: NodeId, input: NodeId) {
        self.graph.borrow_mut().nodes[cycle].inputs = vec![input];
    }

    /// Ends the flow definition and returns its IR.
    pub fn finish(self) -> FlowGraph {
        self.graph.into_inner()
    }

    fn declare(&self, name: &str, kind: LocationKind, at: &'static Caller<'static>) -> LocationId {
        if !is_plain_name(name) {
            self.error(
                at,
                format!("role name `{name}` must be lowercase ASCII letters, digits and `_`, starting with a letter (it names a binary)"),
            );
        }
        let mut graph = self.graph.borrow_mut();
        if let Some(first) = graph.locations.iter().find(|l| l.name == name) {
            let message = format!("role `{name}` is declared twice (first at {})", first.at);
            graph.errors.push(FlowError {
                message,
                at: SourceLoc::caller(at),
            });
        }
        graph.locations.push(LocationDecl {
            name: name.to_string(),
            kind,
            at: SourceLoc::caller(at),
        });
        graph.locations.len() - 1
    }

    pub(crate) fn add_node(
        &self,
        location: LocationId,
        op: Operator,
        inputs: Vec<NodeId>,
        args: Vec<QuotedExpr>,
        at: &'static Caller<'static>,
    ) -> NodeId {
        let mut graph = self.graph.borrow_mut();
        graph.nodes.push(Node {
            location,
            op,
            inputs,
            args,
            at: SourceLoc::caller(at),
        });
        graph.nodes.len() - 1
    }

    /// A node at `here` consuming `input` (then `others`, which must live at
    /// `here` too). Non-generic: every collection type's operators end here.
    pub(crate) fn derive_node(
        &self,
        input: NodeId,
        here: LocationId,
        op: Operator,
        others: &[(NodeId, LocationId)],
        args: Vec<QuotedExpr>,
        at: &'static Caller<'static>,
    ) -> NodeId {
        for &(_, location) in others {
            if location != here {
                self.error(
                    at,
                    format!(
                        "`{}` combines streams at `{}` and `{}`: move one of them with a network operator first",
                        op.name(),
                        self.location_name(here),
                        self.location_name(location)
                    ),
                );
            }
        }
        let mut inputs = vec![input];
        inputs.extend(others.iter().map(|&(node, _)| node));
        self.add_node(here, op, inputs, args, at)
    }

    /// A network node moving `input` from `from` to `to` (a location of `to_flow`).
    pub(crate) fn network_node(
        &self,
        input: NodeId,
        from: LocationId,
        (to_flow, to): (&FlowBuilder, LocationId),
        op: Operator,
        at: &'static Caller<'static>,
    ) -> NodeId {
        if !std::ptr::eq(to_flow, self) {
            self.error(at, format!("`{}` to a location of another flow", op.name()));
        } else if to == from && !self.is_cluster(to) {
            let name = self.location_name(to);
            self.error(
                at,
                format!(
                    "`{}` from process `{name}` to itself: records are already there",
                    op.name()
                ),
            );
        }
        self.add_node(to, op, vec![input], Vec::new(), at)
    }

    /// An external endpoint's name becomes a key of its role in the
    /// topology: a plain name, not `addresses`, once per location.
    pub(crate) fn check_endpoint_name(
        &self,
        location: LocationId,
        name: &str,
        at: &'static Caller<'static>,
    ) {
        if !is_plain_name(name) || name == "addresses" {
            self.error(
                at,
                format!("endpoint name `{name}` must be lowercase ASCII letters, digits and `_`, starting with a letter, and not `addresses` (it is a key of the role in the topology file)"),
            );
        }
        let taken = self.graph.borrow().nodes.iter().any(|n| {
            n.location == location
                && matches!(&n.op, Operator::SourceExternal { name: other } if other == name)
        });
        if taken {
            let role = self.location_name(location);
            self.error(
                at,
                format!("`{role}` already has an external endpoint named `{name}`"),
            );
        }
    }

    pub(crate) fn error(&self, at: &'static Caller<'static>, message: String) {
        let at = SourceLoc::caller(at);
        self.graph
            .borrow_mut()
            .errors
            .push(FlowError { message, at });
    }

    pub(crate) fn is_cluster(&self, id: LocationId) -> bool {
        self.graph.borrow().locations[id].kind == LocationKind::Cluster
    }

    pub(crate) fn location_name(&self, id: LocationId) -> String {
        self.graph.borrow().locations[id].name.clone()
    }

    /// Takes the records of an operator's two `q!` arguments (`fold`'s init and
    /// step), in order; a failure becomes a flow error.
    ///
    /// The closures only carry types: the generic shims drop them at once, so each
    /// call site compiles to a call of the one non-generic body.
    #[inline]
    pub(crate) fn quoted_pair<A, B>(
        &self,
        _first: impl IntoQuoted<A>,
        _second: impl IntoQuoted<B>,
        at: &'static Caller<'static>,
    ) -> Vec<QuotedExpr> {
        self.take_quotes(2, at)
    }

    /// Takes the record of the `q!` just evaluated; a failure becomes a flow error.
    #[inline]
    pub(crate) fn quoted<T>(
        &self,
        _quoted: impl IntoQuoted<T>,
        at: &'static Caller<'static>,
    ) -> QuotedExpr {
        self.take_quote(at)
    }

    fn take_quote(&self, at: &'static Caller<'static>) -> QuotedExpr {
        // On error, a placeholder: the flow error is what the build reports.
        self.take_quotes(1, at).pop().unwrap_or_else(|| QuotedExpr {
            code: "()".into(),
            at: SourceLoc::caller(at),
            module: String::new(),
            captures: Vec::new(),
            traits_in_scope: Vec::new(),
        })
    }

    fn take_quotes(&self, count: usize, at: &'static Caller<'static>) -> Vec<QuotedExpr> {
        quote::take_records(count).unwrap_or_else(|err| {
            self.error(at, err.to_string());
            Vec::new()
        })
    }
}

/// Lowercase ASCII letters, digits and `_`, starting with a letter: a name
/// that can be part of a binary's name and a key of a topology file.
fn is_plain_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}
