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
    /// 1-based.
    pub line: u32,
    /// 1-based, in characters.
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
    /// Written as Rust source.
    Literal {
        /// The value's type.
        ty: String,
        /// An expression that builds the value.
        expr: String,
    },
    /// Encoded with the wire codec.
    Serde {
        /// `std::any::type_name` of the value.
        ty: String,
        /// The value, encoded.
        bytes: Vec<u8>,
    },
    /// A cluster, for `self_id()` and `members()` in quoted code.
    Cluster {
        /// The cluster's role name.
        role: String,
    },
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
    /// Traits in scope at the `q!` (imported or defined in its module), as
    /// generated code names them: their methods may be called in `code`.
    /// Filled by the build helper, which reads the module.
    pub traits_in_scope: Vec<String>,
}

/// A location's index in [`FlowGraph::locations`].
pub type LocationId = usize;
/// A node's index in [`FlowGraph::nodes`].
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
    /// One instance or many.
    pub kind: LocationKind,
    /// Where `flow.process(..)` or `flow.cluster(..)` made it.
    pub at: SourceLoc,
}

/// How a network edge delivers each record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Delivery {
    /// To the single instance of a process.
    ToProcess,
    /// To every member of a cluster.
    Broadcast,
    /// Records are `(ClusterId, T)`: each `T` goes to the member named.
    ToMember,
    /// To the members of a cluster in turn.
    RoundRobin,
}

/// What a network edge does when an instance at either end is lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Failure {
    /// The loss is an error: the instances that talk to the lost one fail.
    #[default]
    FailStop,
    /// The lost instance's part of the stream ends; the others go on, and it
    /// may rejoin.
    Tolerant,
}

/// Where a value lives in time: one tick's batch, or the whole run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Level {
    /// Bounded: this tick's records only.
    Tick,
    /// Unbounded: records across all ticks.
    Unbounded,
}

/// What a node does. Inputs and quoted arguments are on the [`Node`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Operator {
    // Sources (no inputs).
    /// args: the iterator.
    SourceIter,
    /// args: the `futures::Stream`.
    SourceStream,
    /// args: the period.
    SourceInterval,
    /// args: the delay before the first, then the period.
    SourceIntervalDelayed,
    /// One `()` per tick, for ever.
    Spin,
    /// `(member, Joined | Left)` as links with the members of cluster
    /// `cluster` come and go.
    Membership {
        /// The cluster watched.
        cluster: LocationId,
    },
    /// args: records per tick.
    SpinBatch,
    /// `(connection, Opened | Request | Closed)` from clients that are not
    /// Weir instances, on the address the topology lists under `name`.
    /// args: the `ClientCodec`.
    SourceExternal {
        /// The endpoint's name.
        name: String,
    },
    /// A feedback loop: its records are those of the stream given to `complete`
    /// (its one input, once completed). At `Level::Unbounded` they arrive a tick
    /// later; at `Level::Tick` the loop must pass through `defer_tick`.
    /// args: an initial batch, emitted in the first tick (optional).
    Cycle {
        /// Unbounded (a tick later) or tick (within the tick).
        level: Level,
        /// `std::any::type_name` of its records.
        element_type: String,
    },

    // Record by record (fused into the code of their input).
    /// args: the closure applied to each record.
    Map,
    /// args: the predicate records must pass.
    Filter,
    /// args: the closure; its `Some`s go on.
    FilterMap,
    /// Each record to one of `branches` [`Operator::Branch`]es, the one its
    /// `q!` argument numbers (none if the number is `branches` or more).
    /// Its consumers are its branches.
    Demux {
        /// How many branches it has.
        branches: usize,
    },
    /// The records a [`Operator::Demux`] (its one input) numbers `index`.
    Branch {
        /// Which branch, from 0.
        index: usize,
    },
    /// args: the closure; each item of what it returns goes on.
    FlatMap,
    /// args: the closure each record is shown to, unchanged.
    Inspect,
    /// Owned copies of borrowed records.
    Cloned,
    /// `(n, record)`, numbered from 0 over the whole run.
    Enumerate,
    /// Records of every input.
    Union,
    /// The input, declared to be in an order the flow relies on, though it
    /// is not the same on every run (`assume_ordering(nondet!(reason))`).
    AssumeOrdering {
        /// Why the flow may rely on it, as `nondet!` gave it.
        reason: String,
    },
    /// Unbounded → this tick's batch.
    TickBatch,
    /// Tick level → unbounded.
    AllTicks,
    /// An unbounded singleton's value in each tick.
    Latest,
    /// A tick-level singleton's value as a stream.
    IntoStream,

    // Once a tick has all their inputs (stratum boundaries).
    /// The tick's first occurrence of each record.
    Unique,
    /// The tick's records in ascending order.
    Sort,
    /// Every record so far, every tick.
    Persist,
    /// The tick's records that were not in the previous tick's.
    Delta,
    /// The tick's first record.
    First,
    /// args: `init`, then the closure folding each record into the state.
    Fold {
        /// Per tick (`Tick`) or over the run (`Unbounded`).
        level: Level,
    },
    /// args: the closure combining two records into one.
    Reduce {
        /// Per tick (`Tick`) or over the run (`Unbounded`).
        level: Level,
    },
    /// How many records.
    Count {
        /// Per tick (`Tick`) or over the run (`Unbounded`).
        level: Level,
    },
    /// [`Operator::Fold`] per key of `(key, value)` records.
    FoldKeyed {
        /// Per tick (`Tick`) or over the run (`Unbounded`).
        level: Level,
    },
    /// [`Operator::Reduce`] per key of `(key, value)` records.
    ReduceKeyed {
        /// Per tick (`Tick`) or over the run (`Unbounded`).
        level: Level,
    },
    /// `(key, (left, right))` for each pair of equal keys.
    Join,
    /// Every pair of a left and a right record.
    CrossProduct,
    /// Left `(key, value)`s whose key is not among the right's keys.
    AntiJoin,
    /// Left records that are not among the right's.
    FilterNotIn,
    /// Each left record with the right singleton's value.
    CrossSingleton,
    /// The left records, if the right optional has a value this tick.
    ContinueIf,
    /// The left records, if the right optional is empty this tick.
    ContinueUnless,
    /// An unbounded singleton's final value, once its input has ended.
    IntoStreamFinal,
    /// args: the period.
    SampleEvery,
    /// `()` each time the input has been silent for the duration (args).
    Timeout,
    /// Next tick: this tick's records.
    DeferTick,

    // Sinks.
    /// args: the closure each record is given to.
    ForEach,
    /// args: the sink records are written to.
    DestSink,
    /// `(connection, reply)` records, encoded and written to the clients of
    /// the endpoint made by node `source` (a `SourceExternal`).
    SendExternal {
        /// The endpoint's `SourceExternal` node.
        source: NodeId,
    },

    /// Moves records from the input's location to this node's location.
    Network {
        /// How each record is delivered.
        delivery: Delivery,
        /// `std::any::type_name` of the records on the wire.
        element_type: String,
        /// The records' serde shape, traced where the flow is evaluated: what
        /// two builds must agree on to link (or why it could not be traced).
        shape: Result<weir_core::shape::WireShape, String>,
        /// Whether the receiver gets `(ClusterId, T)`, tagged with the sender.
        tagged: bool,
        /// Fail-stop or tolerant.
        failure: Failure,
    },
}

impl Operator {
    /// The operator's name as the user wrote it.
    pub fn name(&self) -> &'static str {
        use Operator::*;
        match self {
            SourceIter => "source_iter",
            SourceStream => "source_stream",
            SourceInterval => "source_interval",
            SourceIntervalDelayed => "source_interval_delayed",
            Spin => "spin",
            Membership { .. } => "membership",
            SpinBatch => "spin_batch",
            SourceExternal { .. } => "source_external",
            Cycle {
                level: Level::Tick, ..
            } => "tick_cycle",
            Cycle { .. } => "cycle",
            Map => "map",
            Filter => "filter",
            FilterMap => "filter_map",
            Demux { .. } => "demux",
            Branch { .. } => "branch",
            FlatMap => "flat_map",
            Inspect => "inspect",
            Cloned => "cloned",
            Enumerate => "enumerate",
            Union => "union",
            AssumeOrdering { .. } => "assume_ordering",
            TickBatch => "tick_batch",
            AllTicks => "all_ticks",
            Latest => "latest",
            IntoStream => "into_stream",
            Unique => "unique",
            Sort => "sort",
            Persist => "persist",
            Delta => "delta",
            First => "first",
            Fold { .. } => "fold",
            Reduce { .. } => "reduce",
            Count { .. } => "count",
            FoldKeyed { .. } => "fold_keyed",
            ReduceKeyed { .. } => "reduce_keyed",
            Join => "join",
            CrossProduct => "cross_product",
            AntiJoin => "anti_join",
            FilterNotIn => "filter_not_in",
            CrossSingleton => "cross_singleton",
            ContinueIf => "continue_if",
            ContinueUnless => "continue_unless",
            IntoStreamFinal => "into_stream",
            SampleEvery => "sample_every",
            Timeout => "timeout",
            DeferTick => "defer_tick",
            ForEach => "for_each",
            DestSink => "dest_sink",
            SendExternal { .. } => "send_external",
            Network {
                delivery,
                failure: Failure::FailStop,
                ..
            } => match delivery {
                Delivery::Broadcast => "broadcast_bincode",
                Delivery::RoundRobin => "round_robin_bincode",
                Delivery::ToProcess | Delivery::ToMember => "send_bincode",
            },
            Network { delivery, .. } => match delivery {
                Delivery::Broadcast => "broadcast_bincode_tolerant",
                Delivery::RoundRobin => "round_robin_bincode_tolerant",
                Delivery::ToProcess | Delivery::ToMember => "send_bincode_tolerant",
            },
        }
    }

    /// Whether the operator makes records from nothing the flow feeds it: an
    /// iterator, a stream, a clock, links coming and going, clients.
    pub fn is_source(&self) -> bool {
        use Operator::*;
        matches!(
            self,
            SourceIter
                | SourceStream
                | SourceInterval
                | SourceIntervalDelayed
                | Membership { .. }
                | SourceExternal { .. }
                | Spin
                | SpinBatch
        )
    }

    /// Whether the operator ends a stream (nothing can consume its output).
    pub fn is_sink(&self) -> bool {
        matches!(
            self,
            Operator::ForEach | Operator::DestSink | Operator::SendExternal { .. }
        )
    }
}

/// An operator placed at a location.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Node {
    /// Where it runs.
    pub location: LocationId,
    /// What it does.
    pub op: Operator,
    /// The nodes it consumes, in the order the operator names them (`join`: left,
    /// right).
    pub inputs: Vec<NodeId>,
    /// Its `q!` arguments, in order.
    pub args: Vec<QuotedExpr>,
    /// Where the operator was called in the flow.
    pub at: SourceLoc,
}

impl Node {
    /// Where and why the flow accepts nondeterminism here, if it does:
    /// `assume_ordering(nondet!("reason")) at file:line`.
    pub fn nondet(&self) -> Option<String> {
        match &self.op {
            Operator::AssumeOrdering { reason } => Some(format!(
                "assume_ordering(nondet!({reason:?})) at {}",
                self.at
            )),
            _ => None,
        }
    }
}

/// A mistake in a flow definition, found while evaluating it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowError {
    /// What is wrong, and how to fix it.
    pub message: String,
    /// The call that made the mistake.
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
    /// Its roles, in creation order.
    pub locations: Vec<LocationDecl>,
    /// In creation order: every input comes before its consumer, except the
    /// input of a `Cycle`, which is completed later.
    pub nodes: Vec<Node>,
    /// Every mistake found; a graph with errors is not lowered.
    pub errors: Vec<FlowError>,
}

/// A network edge of the graph: what generated code declares of it and what
/// two builds compare at their handshake.
#[derive(Debug)]
pub struct Channel<'g> {
    /// The edge's node: its number in generated code and on the wire.
    pub id: NodeId,
    /// The sending role.
    pub from: &'g str,
    /// The receiving role.
    pub to: &'g str,
    /// How each record is delivered.
    pub delivery: Delivery,
    /// What a lost instance at either end does to it.
    pub failure: Failure,
    /// `std::any::type_name` of its records.
    pub element_type: &'g str,
    /// Its records' traced shape, or why it could not be traced.
    pub shape: &'g Result<weir_core::shape::WireShape, String>,
    /// The operator that makes it and where: `send_bincode at flow/src/lib.rs:12:10`.
    pub made_by: String,
}

impl FlowGraph {
    /// Every network edge, in the order the flow makes them.
    pub fn channels(&self) -> impl Iterator<Item = Channel<'_>> {
        self.nodes.iter().enumerate().filter_map(|(id, node)| {
            let Operator::Network {
                delivery,
                failure,
                element_type,
                shape,
                ..
            } = &node.op
            else {
                return None;
            };
            Some(Channel {
                id,
                from: &self.locations[self.nodes[node.inputs[0]].location].name,
                to: &self.locations[node.location].name,
                delivery: *delivery,
                failure: *failure,
                element_type,
                shape,
                made_by: format!("{} at {}", node.op.name(), node.at),
            })
        })
    }
}
