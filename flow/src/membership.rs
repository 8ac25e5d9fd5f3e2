//! A leader sends an increasing counter to every live worker about every
//! 100 ms, over a tolerant edge, and reports workers joining and leaving. Kill a
//! worker and the others go on; restart it with the same flags and it rejoins.

use weir::*;

pub fn membership(flow: &FlowBuilder) {
    let leader = flow.process("leader");
    let workers = flow.cluster("worker");
    flow.source_interval(&leader, q!(std::time::Duration::from_millis(100)))
        .enumerate()
        .map(q!(|(n, _)| n as u64))
        .broadcast_bincode_tolerant(&workers)
        .for_each(q!(|n| println!("got {n}")));
    workers
        .membership(&leader)
        .for_each(q!(|(member, event)| println!("member {member} {event}")));
}

/// [`membership`] a build later, as an upgrade brings it: its workers say
/// more, and nothing on the wire changed, so it links with the build before.
/// (Its leader reports no membership: only the workers' program matters to
/// the simulation tests that bring workers back on it.)
pub fn membership_next(flow: &FlowBuilder) {
    let leader = flow.process("leader");
    let workers = flow.cluster("worker");
    flow.source_interval(&leader, q!(std::time::Duration::from_millis(100)))
        .enumerate()
        .map(q!(|(n, _)| n as u64))
        .broadcast_bincode_tolerant(&workers)
        .for_each(q!(|n| println!("got {n} (next build)")));
}

/// A later build whose records changed (the counter is a `u32`): it cannot
/// link with [`membership`].
pub fn membership_retyped(flow: &FlowBuilder) {
    let leader = flow.process("leader");
    let workers = flow.cluster("worker");
    flow.source_interval(&leader, q!(std::time::Duration::from_millis(100)))
        .map(q!(|_| 0u32))
        .broadcast_bincode_tolerant(&workers)
        .for_each(q!(|n| println!("got {n}")));
}
