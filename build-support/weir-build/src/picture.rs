//! Pictures of a flow, for people: a Mermaid (`flow.mmd`) and a Graphviz
//! (`flow.dot`) drawing of the same graph, written beside the generated code.
//!
//! Roles are boxes; operators are nodes labelled with their name and the line
//! that called them. A network edge is drawn bold into the operator that
//! received it, labelled with its delivery and record type. Operators that
//! wait for their inputs' whole tick (a stage boundary) have a double border;
//! what crosses into the next tick (`defer_tick`, an unbounded `cycle`) leaves
//! on dashed edges.

use crate::lower::{node_parts, NodePart};
use std::fmt::Write as _;
use weir::ir::{Delivery, Failure, FlowGraph, LocationKind, Node, Operator};

/// Both pictures of flow `name`.
pub struct Pictures {
    /// For Mermaid (`flow.mmd`).
    pub mermaid: String,
    /// For Graphviz (`flow.dot`).
    pub dot: String,
}

/// Draws flow `name`.
pub fn flow_pictures(name: &str, graph: &FlowGraph) -> Pictures {
    let drawing = Drawing::of(graph);
    Pictures {
        mermaid: drawing.mermaid(name),
        dot: drawing.dot(name),
    }
}

/// What both pictures draw: boxes of nodes, and edges.
struct Drawing {
    /// Each role's title and its nodes.
    boxes: Vec<(String, Vec<Shape>)>,
    edges: Vec<Edge>,
}

struct Shape {
    id: usize,
    /// The operator's name, then where it was called.
    lines: [String; 2],
    kind: ShapeKind,
}

#[derive(Clone, Copy, PartialEq)]
enum ShapeKind {
    Source,
    /// Record by record.
    Plain,
    /// Waits for its inputs' whole tick.
    Stage,
    /// Holds records until the next tick.
    Deferred,
    Sink,
}

struct Edge {
    from: usize,
    to: usize,
    kind: EdgeKind,
}

enum EdgeKind {
    Local,
    /// Into the next tick.
    NextTick,
    /// Over the network: the label.
    Network(String),
}

impl Drawing {
    fn of(graph: &FlowGraph) -> Drawing {
        let parts = node_parts(graph);
        let mut boxes: Vec<(String, Vec<Shape>)> = graph
            .locations
            .iter()
            .map(|l| {
                let kind = match l.kind {
                    LocationKind::Process => "process",
                    LocationKind::Cluster => "cluster",
                };
                (format!("{} ({kind})", l.name), Vec::new())
            })
            .collect();
        let mut edges = Vec::new();
        for (id, node) in graph.nodes.iter().enumerate() {
            let kind = match parts[id] {
                _ if node.op.is_source() => ShapeKind::Source,
                _ if node.op.is_sink() => ShapeKind::Sink,
                NodePart::Stage => ShapeKind::Stage,
                NodePart::Deferred => ShapeKind::Deferred,
                NodePart::Other => ShapeKind::Plain,
            };
            boxes[node.location].1.push(Shape {
                id,
                lines: [label(graph, node), node.at.to_string()],
                kind,
            });
            for &input in &node.inputs {
                let kind = match &node.op {
                    Operator::Network {
                        delivery,
                        element_type,
                        failure,
                        ..
                    } => EdgeKind::Network(network_label(*delivery, *failure, element_type)),
                    _ if parts[input] == NodePart::Deferred => EdgeKind::NextTick,
                    _ => EdgeKind::Local,
                };
                edges.push(Edge {
                    from: input,
                    to: id,
                    kind,
                });
            }
        }
        Drawing { boxes, edges }
    }

    fn mermaid(&self, name: &str) -> String {
        let mut out = format!(
            "%% Flow `{name}`, drawn by weir-build (bold: network; double border: waits for the tick; dashed: next tick).\nflowchart TB\n"
        );
        for (i, (title, shapes)) in self.boxes.iter().enumerate() {
            let _ = writeln!(out, "  subgraph role{i}[\"{}\"]", mermaid_text(title));
            for shape in shapes {
                let text = format!(
                    "{}<br/><small>{}</small>",
                    mermaid_text(&shape.lines[0]),
                    mermaid_text(&shape.lines[1])
                );
                let (open, close) = match shape.kind {
                    ShapeKind::Source => ("([", "])"),
                    ShapeKind::Plain => ("[", "]"),
                    ShapeKind::Stage => ("[[", "]]"),
                    ShapeKind::Deferred => ("{{", "}}"),
                    ShapeKind::Sink => ("[/", "\\]"),
                };
                let _ = writeln!(out, "    n{}{open}\"{text}\"{close}", shape.id);
            }
            out.push_str("  end\n");
        }
        for edge in &self.edges {
            let arrow = match &edge.kind {
                EdgeKind::Local => "-->".to_string(),
                EdgeKind::NextTick => "-.->|next tick|".to_string(),
                EdgeKind::Network(label) => format!("==>|\"{}\"|", mermaid_text(label)),
            };
            let _ = writeln!(out, "  n{} {arrow} n{}", edge.from, edge.to);
        }
        out
    }

    fn dot(&self, name: &str) -> String {
        let mut out = format!(
            "// Flow `{name}`, drawn by weir-build. Render: dot -Tsvg flow.dot -o flow.svg\n\
             // Bold edges cross the network; a double border waits for the whole tick;\n\
             // dashed edges carry records into the next tick.\n\
             digraph {} {{\n  rankdir=TB;\n  fontname=\"Helvetica\";\n  node [shape=box, style=rounded, fontname=\"Helvetica\", fontsize=10];\n  edge [fontname=\"Helvetica\", fontsize=9];\n",
            dot_string(name)
        );
        for (i, (title, shapes)) in self.boxes.iter().enumerate() {
            let _ = writeln!(
                out,
                "  subgraph cluster_{i} {{\n    label={};\n    style=rounded;",
                dot_string(title)
            );
            for shape in shapes {
                let attrs = match shape.kind {
                    ShapeKind::Source => ", shape=oval, style=\"\"",
                    ShapeKind::Plain => "",
                    ShapeKind::Stage => ", peripheries=2",
                    ShapeKind::Deferred => ", shape=hexagon, style=\"\"",
                    ShapeKind::Sink => ", shape=invhouse, style=\"\"",
                };
                let _ = writeln!(
                    out,
                    "    n{} [label={}{attrs}];",
                    shape.id,
                    dot_string(&format!("{}\n{}", shape.lines[0], shape.lines[1]))
                );
            }
            out.push_str("  }\n");
        }
        for edge in &self.edges {
            let attrs = match &edge.kind {
                EdgeKind::Local => String::new(),
                EdgeKind::NextTick => " [style=dashed, label=\"next tick\"]".to_string(),
                EdgeKind::Network(label) => {
                    format!(" [style=bold, label={}]", dot_string(label))
                }
            };
            let _ = writeln!(out, "  n{} -> n{}{attrs};", edge.from, edge.to);
        }
        out.push_str("}\n");
        out
    }
}

/// An operator's name, with what tells it apart.
fn label(graph: &FlowGraph, node: &Node) -> String {
    match &node.op {
        Operator::Membership { cluster } => {
            format!("membership of {}", graph.locations[*cluster].name)
        }
        Operator::SourceExternal { name } => format!("source_external \"{name}\""),
        Operator::AssumeOrdering { reason } => format!("nondet!: {reason}"),
        Operator::Cycle { element_type, .. } => {
            format!("{} of {}", node.op.name(), short_type(element_type))
        }
        op => op.name().to_string(),
    }
}

fn network_label(delivery: Delivery, failure: Failure, element_type: &str) -> String {
    let how = match delivery {
        Delivery::ToProcess => "send",
        Delivery::Broadcast => "broadcast",
        Delivery::ToMember => "send to member",
        Delivery::RoundRobin => "round robin",
    };
    let failure = match failure {
        Failure::FailStop => "",
        Failure::Tolerant => ", tolerant",
    };
    format!("{how}{failure}: {}", short_type(element_type))
}

/// A type name without its paths: `(u32, Vec<Reading>)` for
/// `(u32, alloc::vec::Vec<flow::Reading>)`.
fn short_type(name: &str) -> String {
    let mut out = String::new();
    let mut word = String::new();
    let mut chars = name.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_alphanumeric() || c == '_' {
            word.push(c);
        } else if c == ':' && chars.peek() == Some(&':') {
            chars.next();
            word.clear(); // a path segment: keep only the last
        } else {
            out.push_str(&word);
            word.clear();
            out.push(c);
        }
    }
    out.push_str(&word);
    out
}

/// Text inside a Mermaid label's quotes.
fn mermaid_text(text: &str) -> String {
    text.replace('"', "#quot;")
        .replace('<', "#lt;")
        .replace('>', "#gt;")
}

/// A Graphviz quoted string (newlines as `\n`).
fn dot_string(text: &str) -> String {
    let escaped = text
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n");
    format!("\"{escaped}\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_names_lose_their_paths() {
        assert_eq!(
            short_type("(u32, alloc::vec::Vec<flow::Reading>)"),
            "(u32, Vec<Reading>)"
        );
        assert_eq!(short_type("u64"), "u64");
    }
}
