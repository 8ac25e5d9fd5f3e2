// A function passed by name is read as a captured local: its value cannot
// reach the generated code, and the error says to call it in a closure.
use weir::*;

pub fn double(x: u32) -> u32 {
    x * 2
}

fn flow(flow: &FlowBuilder) {
    let p = flow.process("p");
    flow.source_iter(&p, q!(0u32..3))
        .map(q!(double))
        .for_each(q!(|x| println!("{x}")));
}

fn main() {
    flow(&FlowBuilder::new());
}
