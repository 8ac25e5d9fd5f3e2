use std::rc::Rc;
use weir::*;

fn flow(flow: &FlowBuilder) {
    let p = flow.process("p");
    let shared = Rc::new(5u32);
    flow.source_iter(&p, q!(0..10u32))
        .map(q!(move |n| n + *shared))
        .for_each(q!(|n| println!("{n}")));
}

fn main() {
    flow(&FlowBuilder::new());
}
