//! Word count: each worker generates its share of the text's lines, splits them
//! into words and counts them; the leader merges the workers' counts and prints a
//! summary to check against a single-threaded count.

use weir::*;

pub fn bench_word_count(flow: &FlowBuilder) {
    let leader = flow.process("leader");
    let workers = flow.cluster("worker");
    flow.source_iter(
        &workers,
        q!(crate::bench::text::lines(
            workers.self_id().index(),
            workers.members().len(),
            crate::bench::size(1 << 20)
        )),
    )
    .flat_map(q!(|line| line
        .split_whitespace()
        .map(str::to_owned)
        .collect::<Vec<String>>()))
    .map(q!(|word| (word, 1u64)))
    .fold_keyed(q!(|| 0u64), q!(|count, one| *count += one))
    .send_bincode_interleaved(&leader)
    .reduce_keyed(q!(|total, count| *total += count))
    .fold(
        q!(crate::bench::text::Summary::default),
        q!(|summary, (word, count)| summary.add(&word, count)),
    )
    .into_stream()
    .for_each(q!(|summary| println!("{}", summary.report())));
}
