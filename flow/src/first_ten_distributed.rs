//! 0 to 9, produced by one process and printed by another.

use weir::*;

pub fn first_ten_distributed(flow: &FlowBuilder) {
    let first = flow.process("first");
    let second = flow.process("second");
    flow.source_iter(&first, q!(0..10))
        .send_bincode(&second)
        .for_each(q!(|n| println!("{n}")));
}
