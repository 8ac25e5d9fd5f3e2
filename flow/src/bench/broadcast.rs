//! Broadcast: a leader sends every record to each member of a cluster; each
//! member counts and sums what it got.

use weir::*;

pub fn bench_broadcast(flow: &FlowBuilder) {
    let leader = flow.process("leader");
    let members = flow.cluster("member");
    flow.source_iter(&leader, q!(0..crate::bench::size(1_000_000)))
        .broadcast_bincode(&members)
        .fold(
            q!(crate::bench::Tally::default),
            q!(|tally, n| tally.add(n)),
        )
        .into_stream()
        .for_each(q!(|tally| println!("{}", tally.report())));
}
