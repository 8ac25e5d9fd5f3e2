//! The smallest flow: one process prints 0 to 9.

use weir::*;

pub fn first_ten(flow: &FlowBuilder) {
    let process = flow.process("process");
    flow.source_iter(&process, q!(0..10))
        .for_each(q!(|n| println!("{n}")));
}
