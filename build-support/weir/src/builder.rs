//! [`FlowBuilder`]: what a flow function receives, and where the IR accumulates.

use crate::ir::{
    FlowError, FlowGraph, LocationDecl, LocationId, LocationKind, Node, NodeId, Operator,
    QuotedExpr, SourceLoc,
};
use crate::location::{Cluster, Location, Process, Role};
use crate::quote::{self, IntoQuoted};
use crate::stream::Stream;
use std::cell::RefCell;
use std::panic::Location as Caller;

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
        if !std::ptr::eq(location.flow(), self) {
            self.error(at, "`source_iter` at a location of another flow".into());
        }
        let node = self.add_node(location.id(), Operator::SourceIter { iter }, at);
        Stream::new(node, location.clone())
    }

    /// Ends the flow definition and returns its IR.
    pub fn finish(self) -> FlowGraph {
        self.graph.into_inner()
    }

    fn declare(&self, name: &str, kind: LocationKind, at: &'static Caller<'static>) -> LocationId {
        let valid = !name.is_empty()
            && name.starts_with(|c: char| c.is_ascii_lowercase())
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !valid {
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
        at: &'static Caller<'static>,
    ) -> NodeId {
        let mut graph = self.graph.borrow_mut();
        graph.nodes.push(Node {
            location,
            op,
            at: SourceLoc::caller(at),
        });
        graph.nodes.len() - 1
    }

    pub(crate) fn error(&self, at: &'static Caller<'static>, message: String) {
        let at = SourceLoc::caller(at);
        self.graph
            .borrow_mut()
            .errors
            .push(FlowError { message, at });
    }

    pub(crate) fn location_name(&self, id: LocationId) -> String {
        self.graph.borrow().locations[id].name.clone()
    }

    /// Takes the record of the `q!` just evaluated; a failure becomes a flow error.
    pub(crate) fn quoted<T>(
        &self,
        quoted: impl IntoQuoted<T>,
        at: &'static Caller<'static>,
    ) -> QuotedExpr {
        quote::take_record(quoted).unwrap_or_else(|err| {
            self.error(at, err.to_string());
            QuotedExpr {
                code: "()".into(),
                at: SourceLoc::caller(at),
                module: String::new(),
                captures: Vec::new(),
            }
        })
    }
}
