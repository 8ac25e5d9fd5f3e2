//! A count that outlives the process: each `counter` adds up the numbers
//! the leader sends it, keeping every number it took in a durable log, and
//! says its total. Restarted on its state directory, it reads the log back
//! and goes on from the total it had.

use weir::*;

pub fn tally(flow: &FlowBuilder) {
    let leader = flow.process("leader");
    let counters = flow.cluster("counter");
    flow.source_iter(&leader, q!(1..=5u64))
        .broadcast_bincode(&counters)
        .for_each(q!({
            let (mut log, earlier) = weir::durable::Log::<u64>::open(&counters.durable(), "taken")
                .unwrap_or_else(|e| {
                    eprintln!("error: {e}");
                    std::process::exit(1)
                });
            let mut total: u64 = earlier.iter().sum();
            println!("read back {} numbers, total {total}", earlier.len());
            move |n: u64| {
                log.append(&n);
                total += n;
                println!("total {total}");
            }
        }));
}
