use weir::*;

fn flow(flow: &FlowBuilder) {
    let a = flow.process("a");
    flow.source_iter(&a, q!(0..10))
        .tick_batch()
        .count()
        .for_each(q!(|n| println!("{n}")));
}

fn main() {
    flow(&FlowBuilder::new());
}
