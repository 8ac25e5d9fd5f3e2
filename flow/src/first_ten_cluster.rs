//! A leader hands 0 to 9 to the workers in turn; each worker doubles what it gets
//! and sends it back, and the leader prints every result with the worker's id.

use weir::*;

pub fn first_ten_cluster(flow: &FlowBuilder) {
    let leader = flow.process("leader");
    let workers = flow.cluster("worker");
    flow.source_iter(&leader, q!(0..10))
        .round_robin_bincode(&workers)
        .map(q!(|n| {
            println!("doubling {n}");
            (workers.self_id(), n * 2)
        }))
        .map(q!(|(_me, doubled)| doubled))
        .send_bincode(&leader)
        .for_each(q!(|(worker, doubled)| println!(
            "{doubled} from worker {worker}"
        )));
}
