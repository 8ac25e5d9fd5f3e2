use weir::*;

pub struct Point {
    pub x: u32,
}

fn flow(flow: &FlowBuilder) {
    let p = flow.process("p");
    flow.source_iter(&p, q!((0..10u32).map(|x| Point { x })))
        .map(q!(|p| p.y))
        .for_each(q!(|n| println!("{n}")));
}

fn main() {
    flow(&FlowBuilder::new());
}
