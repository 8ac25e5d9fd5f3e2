//! The flows of {{name}}. Each is a function over a `FlowBuilder`; `bins/build.rs`
//! turns each of its roles into a binary.

use weir::*;

/// A leader greets every worker `rounds` times; each worker prints what it hears.
/// Roles: `leader` (one process) and `worker` (a cluster of any size).
pub fn hello(flow: &FlowBuilder) {
    let leader = flow.process("leader");
    let workers = flow.cluster("worker");
    // Captured by the `q!` below: its value is copied into the leader's binary.
    let rounds = 3u32;
    flow.source_iter(&leader, q!(0..rounds))
        .map(q!(|n| format!("hello #{n}")))
        .broadcast_bincode(&workers)
        .for_each(q!(|greeting: String| println!("{greeting}")));
}
