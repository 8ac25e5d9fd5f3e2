use weir::*;

pub struct Opaque(pub u32);

fn flow(flow: &FlowBuilder) {
    let a = flow.process("a");
    let b = flow.process("b");
    flow.source_iter(&a, q!((0..10u32).map(Opaque)))
        .send_bincode(&b)
        .for_each(q!(|o| println!("{}", o.0)));
}

fn main() {
    flow(&FlowBuilder::new());
}
