//! A leader broadcasts 0..10 to every worker; each worker prints what it receives.

use weir::*;

pub fn broadcast(flow: &FlowBuilder) {
    let leader = flow.process("leader");
    let workers = flow.cluster("worker");
    flow.source_iter(&leader, q!(0..10))
        .broadcast_bincode(&workers)
        .for_each(q!(|n| println!("{}", n)));
}
