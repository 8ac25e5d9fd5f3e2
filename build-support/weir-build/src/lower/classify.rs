//! Which node of the flow is which at this role (a root, fused, a stage, ...),
//! and the order a tick runs them in.

use crate::error::Problem;
use std::collections::BTreeSet;
use weir::ir::{FlowGraph, Level, LocationId, NodeId, Operator};

use super::{op_var, recv_var, send_var};
use proc_macro2::Ident;

/// How a node takes part in this role's ticks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Part {
    /// Produces records at the start of its turn: a source or a received channel.
    Root,
    /// Record by record, inlined into its input's code.
    Fused,
    /// Needs its inputs' whole tick: fed by `push`, drained by `emit`.
    Stage,
    /// Takes records in one tick and releases them in the next.
    Deferred,
    /// A network edge leaving this role.
    Send,
    /// A network edge between members of this role (a cluster): sent like
    /// `Send`, received like a `Root`.
    Loop,
    /// Not part of this role.
    Elsewhere,
}

/// A node's part in its own role's ticks, as a picture shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NodePart {
    /// Waits for its inputs' whole tick.
    Stage,
    /// Holds records until the next tick.
    Deferred,
    Other,
}

/// Each node's part in the ticks of the role it runs at.
pub(crate) fn node_parts(graph: &FlowGraph) -> Vec<NodePart> {
    let by_role: Vec<Vec<Part>> = (0..graph.locations.len())
        .map(|role| Lowering::new(graph, role).parts)
        .collect();
    graph
        .nodes
        .iter()
        .enumerate()
        .map(|(id, node)| match by_role[node.location][id] {
            Part::Stage => NodePart::Stage,
            Part::Deferred => NodePart::Deferred,
            _ => NodePart::Other,
        })
        .collect()
}

pub(super) struct Lowering<'g> {
    pub(super) graph: &'g FlowGraph,
    pub(super) role: LocationId,
    pub(super) parts: Vec<Part>,
    /// For each node: its consumers in this role, with the input slot they use.
    pub(super) consumers: Vec<Vec<(NodeId, usize)>>,
}

impl<'g> Lowering<'g> {
    pub(super) fn new(graph: &'g FlowGraph, role: LocationId) -> Self {
        let here = |id: NodeId| graph.nodes[id].location == role;
        let parts: Vec<Part> = (0..graph.nodes.len())
            .map(|id| {
                let node = &graph.nodes[id];
                let is_network = matches!(node.op, Operator::Network { .. });
                if !here(id) {
                    return if is_network && node.inputs.iter().any(|&i| here(i)) {
                        Part::Send
                    } else {
                        Part::Elsewhere
                    };
                }
                match &node.op {
                    Operator::Network { .. } if node.inputs.iter().any(|&i| here(i)) => Part::Loop,
                    Operator::Network { .. } => Part::Root,
                    op if op.is_source() => Part::Root,
                    Operator::Cycle {
                        level: Level::Unbounded,
                        ..
                    }
                    | Operator::DeferTick => Part::Deferred,
                    Operator::Cycle { .. }
                    | Operator::Map
                    | Operator::Filter
                    | Operator::FilterMap
                    | Operator::Demux { .. }
                    | Operator::Branch { .. }
                    | Operator::FlatMap
                    | Operator::Inspect
                    | Operator::Cloned
                    | Operator::Enumerate
                    | Operator::Union
                    | Operator::TickBatch
                    | Operator::AssumeOrdering { .. }
                    | Operator::AllTicks
                    | Operator::Latest
                    | Operator::IntoStream
                    | Operator::ForEach
                    | Operator::DestSink
                    | Operator::SendExternal { .. } => Part::Fused,
                    _ => Part::Stage,
                }
            })
            .collect();
        let mut consumers = vec![Vec::new(); graph.nodes.len()];
        for (c, node) in graph.nodes.iter().enumerate() {
            let receives = parts[c] == Part::Root && matches!(node.op, Operator::Network { .. });
            if parts[c] == Part::Elsewhere || receives {
                // A received channel's input is a node of another role.
                continue;
            }
            for (slot, &input) in node.inputs.iter().enumerate() {
                consumers[input].push((c, slot));
            }
        }
        Lowering {
            graph,
            role,
            parts,
            consumers,
        }
    }

    pub(super) fn role_name(&self, id: LocationId) -> &str {
        &self.graph.locations[id].name
    }

    pub(super) fn op(&self, id: NodeId) -> &Operator {
        &self.graph.nodes[id].op
    }

    /// The local holding node `id`'s operator.
    pub(super) fn var(&self, id: NodeId) -> Ident {
        match self.op(id) {
            Operator::Network { .. } if self.parts[id] == Part::Send => send_var(id),
            Operator::Network { .. } => recv_var(id),
            op => op_var(id, op),
        }
    }

    /// Roots, stages and deferred buffers in an order where every node comes after
    /// everything that feeds it within a tick. A loop that does not pass through a
    /// deferred buffer has no such order: that is a build error.
    pub(super) fn tick_order(&self) -> Result<Vec<NodeId>, Problem> {
        let n = self.graph.nodes.len();
        let in_tick = |id: NodeId| {
            matches!(
                self.parts[id],
                Part::Root | Part::Loop | Part::Fused | Part::Stage | Part::Deferred
            )
        };
        // Roots, loops and deferred buffers need nothing else in the tick.
        let fed = |id: NodeId| !matches!(self.parts[id], Part::Deferred | Part::Root | Part::Loop);
        let mut waiting = vec![0usize; n];
        for (id, node) in self.graph.nodes.iter().enumerate() {
            if in_tick(id) && fed(id) {
                waiting[id] = node.inputs.iter().filter(|&&i| in_tick(i)).count();
            }
        }
        let mut ready: BTreeSet<NodeId> = (0..n)
            .filter(|&id| in_tick(id) && waiting[id] == 0)
            .collect();
        let mut order = Vec::new();
        while let Some(id) = ready.pop_first() {
            order.push(id);
            for &(c, _) in &self.consumers[id] {
                if in_tick(c) && fed(c) {
                    waiting[c] -= 1;
                    if waiting[c] == 0 {
                        ready.insert(c);
                    }
                }
            }
        }
        if let Some(stuck) = (0..n).find(|&id| in_tick(id) && !order.contains(&id)) {
            let culprit = (0..n)
                .find(|&id| !order.contains(&id) && matches!(self.op(id), Operator::Cycle { .. }))
                .unwrap_or(stuck);
            return Err(Problem {
                message: format!(
                    "the loop through this `{}` stays within one tick: pass the stream given to `complete` through `.defer_tick()`",
                    self.op(culprit).name()
                ),
                at: Some(self.graph.nodes[culprit].at.to_string()),
            });
        }
        Ok(order
            .into_iter()
            .filter(|&id| self.parts[id] != Part::Fused || self.has_initial(id))
            .collect())
    }

    /// Whether a network edge joins location `here` and role `other`, in
    /// either direction.
    pub(super) fn exchanges_with(&self, here: LocationId, other: &str) -> bool {
        self.graph.nodes.iter().any(|n| {
            if !matches!(n.op, Operator::Network { .. }) {
                return false;
            }
            let from = self.graph.nodes[n.inputs[0]].location;
            let ends = [self.role_name(from), self.role_name(n.location)];
            let here = self.role_name(here);
            (ends[0] == here && ends[1] == other) || (ends[1] == here && ends[0] == other)
        })
    }

    /// A `tick_cycle_with_initial`, whose initial records are emitted in tick one.
    pub(super) fn has_initial(&self, id: NodeId) -> bool {
        matches!(
            self.op(id),
            Operator::Cycle {
                level: Level::Tick,
                ..
            }
        ) && !self.graph.nodes[id].args.is_empty()
    }
}
