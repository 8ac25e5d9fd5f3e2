use weir::*;

// Two streams in order make, together, a stream without one.
fn flow(flow: &FlowBuilder) {
    let a = flow.process("a");
    let odd = flow.source_iter(&a, q!([1, 3, 5]));
    let even = flow.source_iter(&a, q!([0, 2, 4]));
    odd.union(even)
        .enumerate()
        .for_each(q!(|(i, n)| println!("{i}: {n}")));
}

fn main() {
    flow(&FlowBuilder::new());
}
