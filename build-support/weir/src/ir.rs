//! The IR: a flow as a plain graph of locations and operator nodes.
//!
//! Evaluating a flow function builds a [`FlowGraph`]; `weir-build` validates it and
//! lowers it to Rust, one program per role. Nothing here runs at run time.

use std::fmt;

/// A place in the flow crate's source (from `file!()`/`line!()` or `#[track_caller]`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SourceLoc {
    /// Relative to the workspace root, as rustc was given it (`flow/src/broadcast.rs`).
    pub file: String,
    pub line: u32,
    pub column: u32,
}

impl SourceLoc {
    pub(crate) fn caller(at: &'static std::panic::Location<'static>) -> Self {
        SourceLoc {
            file: at.file().to_string(),
            line: at.line(),
            column: at.column(),
        }
    }
}

impl fmt::Display for SourceLoc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// The value of a local captured by `q!`, ready to splice into generated code.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CaptureValue {
    /// Written as Rust source: `ty` names the type, `expr` builds the value.
    Literal { ty: String, expr: String },
    /// Encoded with the wire codec; `ty` is `std::any::type_name` of the value.
    Serde { ty: String, bytes: Vec<u8> },
}

/// An expression quoted with `q!`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct QuotedExpr {
    /// The expression's tokens. Items of the flow crate are written from the
    /// placeholders `__weir_crate` (crate root) and `__weir_self` (the module of the
    /// `q!`), which the build helper resolves.
    pub code: String,
    /// Where the `q!` is.
    pub at: SourceLoc,
    /// `module_path!()` at the `q!`, e.g. `flow::broadcast`.
    pub module: String,
    /// Captured locals by name, in order of first use.
    pub captures: Vec<(String, CaptureValue)>,
}

pub type LocationId = usize;
pub type NodeId = usize;

/// How many instances a location has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LocationKind {
    /// Exactly one instance.
    Process,
    /// Any number of instances, fixed at deploy time.
    Cluster,
}

/// A location (role) of the flow.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LocationDecl {
    /// The role name: binaries are called `<flow>-<name>`.
    pub name: String,
    pub kind: LocationKind,
    pub at: SourceLoc,
}

/// How a network edge delivers each record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Delivery {
    /// To the single instance of a process.
    ToProcess,
    /// To every member of a cluster.
    Broadcast,
}

/// One operator of the dataflow.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Operator {
    SourceIter {
        iter: QuotedExpr,
    },
    Map {
        input: NodeId,
        f: QuotedExpr,
    },
    Filter {
        input: NodeId,
        f: QuotedExpr,
    },
    FilterMap {
        input: NodeId,
        f: QuotedExpr,
    },
    FlatMap {
        input: NodeId,
        f: QuotedExpr,
    },
    Inspect {
        input: NodeId,
        f: QuotedExpr,
    },
    ForEach {
        input: NodeId,
        f: QuotedExpr,
    },
    /// Moves records from the input's location to this node's location.
    Network {
        input: NodeId,
        delivery: Delivery,
        /// `std::any::type_name` of the records.
        element_type: String,
    },
}

impl Operator {
    /// The node this operator consumes, if any.
    pub fn input(&self) -> Option<NodeId> {
        match self {
            Operator::SourceIter { .. } => None,
            Operator::Map { input, .. }
            | Operator::Filter { input, .. }
            | Operator::FilterMap { input, .. }
            | Operator::FlatMap { input, .. }
            | Operator::Inspect { input, .. }
            | Operator::ForEach { input, .. }
            | Operator::Network { input, .. } => Some(*input),
        }
    }

    /// The quoted expression this operator was given, if any.
    pub fn quoted(&self) -> Option<&QuotedExpr> {
        match self {
            Operator::SourceIter { iter: f }
            | Operator::Map { f, .. }
            | Operator::Filter { f, .. }
            | Operator::FilterMap { f, .. }
            | Operator::FlatMap { f, .. }
            | Operator::Inspect { f, .. }
            | Operator::ForEach { f, .. } => Some(f),
            Operator::Network { .. } => None,
        }
    }

    /// The operator's name as the user wrote it.
    pub fn name(&self) -> &'static str {
        match self {
            Operator::SourceIter { .. } => "source_iter",
            Operator::Map { .. } => "map",
            Operator::Filter { .. } => "filter",
            Operator::FilterMap { .. } => "filter_map",
            Operator::FlatMap { .. } => "flat_map",
            Operator::Inspect { .. } => "inspect",
            Operator::ForEach { .. } => "for_each",
            Operator::Network {
                delivery: Delivery::ToProcess,
                ..
            } => "send_bincode",
            Operator::Network {
                delivery: Delivery::Broadcast,
                ..
            } => "broadcast_bincode",
        }
    }

    /// Whether the operator ends a stream (nothing can consume its output).
    pub fn is_sink(&self) -> bool {
        matches!(self, Operator::ForEach { .. })
    }
}

/// An operator placed at a location.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Node {
    pub location: LocationId,
    pub op: Operator,
    /// Where the operator was called in the flow.
    pub at: SourceLoc,
}

/// A mistake in a flow definition, found while evaluating it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowError {
    pub message: String,
    pub at: SourceLoc,
}

impl fmt::Display for FlowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.at, self.message)
    }
}

/// A whole flow: what evaluating a flow function produced.
#[derive(Debug, Clone, Default)]
pub struct FlowGraph {
    pub locations: Vec<LocationDecl>,
    /// In creation order, so every node's input comes before it.
    pub nodes: Vec<Node>,
    /// Every mistake found; a graph with errors is not lowered.
    pub errors: Vec<FlowError>,
}
