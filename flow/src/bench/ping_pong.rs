//! Ping-pong: one small message goes back and forth between two processes; the
//! serving side times each round trip.
//!
//! The ball travels through a cycle that crosses the network, so the channels never
//! close: after the last round trip both processes idle until stopped.

use weir::*;

pub fn bench_ping_pong(flow: &FlowBuilder) {
    let ping = flow.process("ping");
    let pong = flow.process("pong");
    // Fed by a union (the first ball, then the returns): no order to rely on.
    let (returns, returned) = ping.cycle_unordered::<u64>();
    let rounds = returned
        .map(q!({
            let mut clock = crate::bench::RoundTrips::new(crate::bench::size(10_000));
            move |ball| {
                if let Some(report) = clock.returned() {
                    println!("{report}");
                }
                ball + 1
            }
        }))
        .filter(q!(|ball| *ball < crate::bench::size(10_000)));
    let back = flow
        .source_iter(&ping, q!([0u64]))
        .union(rounds)
        .send_bincode(&pong)
        .send_bincode(&ping);
    returns.complete(back);
}
