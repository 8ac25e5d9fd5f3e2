//! Pipe: one process sends records to another, which counts and sums them.

use weir::*;

/// Records sent when `WEIR_BENCH_N` is unset.
pub const DEFAULT_RECORDS: u64 = 1_000_000;

/// `u64` records, `0..n`.
pub fn bench_pipe(flow: &FlowBuilder) {
    let sender = flow.process("sender");
    let receiver = flow.process("receiver");
    flow.source_iter(&sender, q!(0..crate::bench::size(DEFAULT_RECORDS)))
        .send_bincode(&receiver)
        .fold(
            q!(crate::bench::Tally::default),
            q!(|tally, n| tally.add(n)),
        )
        .into_stream()
        .for_each(q!(|tally| println!("{}", tally.report())));
}

/// 100-byte serde structs, checked field by field on arrival.
pub fn bench_pipe_struct(flow: &FlowBuilder) {
    let sender = flow.process("sender");
    let receiver = flow.process("receiver");
    flow.source_iter(
        &sender,
        q!((0..crate::bench::size(DEFAULT_RECORDS)).map(crate::bench::Record::new)),
    )
    .send_bincode(&receiver)
    .fold(
        q!(crate::bench::Tally::default),
        q!(|tally, record| tally.add(record.check())),
    )
    .into_stream()
    .for_each(q!(|tally| println!("{}", tally.report())));
}
