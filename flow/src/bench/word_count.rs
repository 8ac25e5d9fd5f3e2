//! Word count: each worker generates its share of the text's lines, splits them
//! into words and counts them; the leader merges the workers' counts and prints a
//! summary to check against a single-threaded count.
//!
//! Workers count with the same step as the hand-written and Timely programs
//! (`text::count_words`: a new `String` only for a new word), then send their
//! counts when their share ends.

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
    .fold(
        q!(crate::bench::text::Counts::default),
        q!(|counts, line| crate::bench::text::count_words(counts, &line)),
    )
    .into_stream()
    .flat_map(q!(|counts| counts))
    .send_bincode_interleaved(&leader)
    // Sums: the workers' counts may come in any order.
    .reduce_keyed_commutative(q!(|total, count| *total += count))
    .fold_commutative(
        q!(crate::bench::text::Summary::default),
        q!(|summary, (word, count)| summary.add(&word, count)),
    )
    .into_stream()
    .for_each(q!(|summary| println!("{}", summary.report())));
}
