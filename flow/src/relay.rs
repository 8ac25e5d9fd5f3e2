//! Records through two clusters: the leader hands numbers to the `front` members
//! in turn; each front member sends every number to the `back` member chosen by
//! the number; back members report to the leader. Every hop tags the sender, so
//! the leader can print the whole route.

use weir::*;

pub fn relay(flow: &FlowBuilder) {
    let leader = flow.process("leader");
    let front = flow.cluster("front");
    let back = flow.cluster("back");
    flow.source_iter(&leader, q!(0u32..12))
        .round_robin_bincode(&front)
        .map(q!(move |n| (
            back.members()[n as usize % back.members().len()],
            n
        )))
        .send_bincode(&back)
        .send_bincode(&leader)
        .for_each(q!(|(back, (front, n))| println!(
            "{n} via front {front} and back {back}"
        )));
}
