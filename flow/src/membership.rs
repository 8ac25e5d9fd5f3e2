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
