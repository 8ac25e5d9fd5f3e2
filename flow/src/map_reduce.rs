//! Word count. The leader partitions the words of a text over the workers by
//! hash; each worker counts its words and reports its partition's size; the leader
//! adds up the counts and prints `word: count` lines once the text has ended.

use weir::*;

/// The input text.
pub const TEXT: &str = "the quick brown fox jumps over the lazy dog \
    the dog barks and the fox runs \
    a quick brown dog jumps over a lazy fox \
    weir moves words over the wire and the workers count the words";

pub fn map_reduce(flow: &FlowBuilder) {
    let leader = flow.process("leader");
    let workers = flow.cluster("worker");
    let words = flow
        .source_iter(&leader, q!(TEXT.split_whitespace()))
        .map(q!(move |word| (
            partition(word, workers.members()),
            word.to_string()
        )))
        .send_bincode(&workers);
    words
        .clone()
        .count()
        .into_stream()
        .for_each(q!(move |n| println!(
            "partition count: {} - {n}",
            workers.self_id()
        )));
    words
        .map(q!(|word| (word, 1usize)))
        .fold_keyed(q!(|| 0usize), q!(|count, one| *count += one))
        .send_bincode_interleaved(&leader)
        // Sums: the workers' counts may come in any order.
        .reduce_keyed_commutative(q!(|total, count| *total += count))
        .for_each(q!(|(word, count)| println!("{word}: {count}")));
}

/// A planted bug for the simulator's determinism check: the leader folds the
/// workers' partition sizes with a subtraction, which it declares
/// commutative (it is not: the result depends on the order they arrive in).
pub fn map_reduce_subtraction_bug(flow: &FlowBuilder) {
    let leader = flow.process("leader");
    let workers = flow.cluster("worker");
    flow.source_iter(&leader, q!(TEXT.split_whitespace()))
        .map(q!(move |word| (
            partition(word, workers.members()),
            word.to_string()
        )))
        .send_bincode(&workers)
        .count()
        .into_stream()
        .send_bincode_interleaved(&leader)
        .fold_commutative(q!(|| 0i64), q!(|acc, n| *acc = n as i64 - *acc))
        .into_stream()
        .for_each(q!(|difference| println!("difference: {difference}")));
}

/// The member a word belongs to: FNV-1a of the word, modulo the members.
pub fn partition(word: &str, members: &[ClusterId]) -> ClusterId {
    let hash = word.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    members[(hash % members.len() as u64) as usize]
}
