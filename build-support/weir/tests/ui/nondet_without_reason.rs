use weir::*;

fn flow(flow: &FlowBuilder) {
    let leader = flow.process("leader");
    let workers = flow.cluster("worker");
    flow.source_iter(&workers, q!(0..10u64))
        .send_bincode(&leader)
        .assume_ordering(nondet!(""))
        .enumerate()
        .for_each(q!(|n| println!("{n:?}")));
}

fn main() {
    flow(&FlowBuilder::new());
}
