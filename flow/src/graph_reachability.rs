//! The vertices reachable from vertex 1, found by a loop over ticks: each tick
//! joins the newly reached vertices with the edges and feeds their neighbours back
//! into the next tick, until nothing new is reached.

use weir::*;

/// The graph's edges, `(from, to)`.
pub const EDGES: &[(u32, u32)] = &[
    (1, 2),
    (2, 3),
    (3, 1),
    (3, 4),
    (4, 5),
    (6, 7),
    (7, 1),
    (5, 8),
    (8, 4),
    (9, 10),
];

pub fn graph_reachability(flow: &FlowBuilder) {
    let process = flow.process("process");
    let roots = flow.source_iter(&process, q!([1u32]));
    let edges = flow
        .source_iter(&process, q!(EDGES.iter().copied()))
        .tick_batch()
        .persist();
    let (next_frontier, frontier) = process.tick_cycle_unordered::<u32>();
    // Every vertex reached so far; `delta` keeps those new in this tick.
    let reached = roots.tick_batch().union(frontier).persist().unique();
    let new = reached.delta();
    let neighbours = new
        .clone()
        .map(q!(|v| (v, ())))
        .join(edges)
        .map(q!(|(_from, ((), to))| to));
    next_frontier.complete(neighbours.defer_tick());
    new.all_ticks().for_each(q!(|v| println!("reached {v}")));
}
