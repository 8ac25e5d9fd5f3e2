//! A leader floods every live worker with a counter, as fast as it can, over a
//! tolerant edge; each worker prints every millionth record it gets. A worker
//! that stops reading must not slow the leader or the other workers.

use weir::*;

/// A worker prints one record in this many.
pub const EVERY: u64 = 1 << 20;

pub fn flood(flow: &FlowBuilder) {
    let leader = flow.process("leader");
    let workers = flow.cluster("worker");
    flow.spin_batch(&leader, q!(4096))
        .all_ticks()
        .enumerate()
        .map(q!(|(n, ())| n as u64))
        .broadcast_bincode_tolerant(&workers)
        .filter(q!(|n| n % EVERY == 0))
        .for_each(q!(|n| println!("got {n}")));
    workers
        .membership(&leader)
        .for_each(q!(|(member, event)| println!("member {member} {event}")));
}
