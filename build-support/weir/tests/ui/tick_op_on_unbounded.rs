use weir::*;

fn flow(flow: &FlowBuilder) {
    let a = flow.process("a");
    flow.source_iter(&a, q!([3, 1, 2]))
        .sort()
        .for_each(q!(|n| println!("{n}")));
}

fn main() {
    flow(&FlowBuilder::new());
}
