use weir::*;

// A cluster's records reach the leader interleaved, in an order that changes
// from run to run: an order-dependent fold over them does not compile.
fn flow(flow: &FlowBuilder) {
    let leader = flow.process("leader");
    let workers = flow.cluster("worker");
    flow.source_iter(&workers, q!(0..10u64))
        .send_bincode(&leader)
        .fold(q!(|| 0u64), q!(|acc, (_from, n)| *acc = *acc * 2 + n))
        .into_stream()
        .for_each(q!(|n| println!("{n}")));
}

fn main() {
    flow(&FlowBuilder::new());
}
