use weir::*;

// The two ways to fold a stream without a deterministic order, and what
// `union` and the network make of orderings.
fn flow(flow: &FlowBuilder) {
    let leader = flow.process("leader");
    let workers = flow.cluster("worker");
    let from_workers: Stream<'_, (ClusterId, u64), Process<'_>, Unbounded, NoOrder> =
        flow.source_iter(&workers, q!(0..10u64)).send_bincode(&leader);

    // A sum does not depend on the order: the commutative form.
    from_workers
        .clone()
        .map(q!(|(_from, n)| n))
        .fold_commutative(q!(|| 0u64), q!(|sum, n| *sum += n))
        .into_stream()
        .for_each(q!(|sum| println!("sum {sum}")));

    // Keyed by sender, whose records arrive in the order it sent them.
    from_workers
        .assume_ordering(nondet!("each sender's records arrive in the order it sent them"))
        .fold_keyed(q!(Vec::new), q!(|seen: &mut Vec<u64>, n| seen.push(n)))
        .for_each(q!(|(from, seen)| println!("{from}: {seen:?}")));

    // Two streams in order are, together, without one; a process's stream
    // sent to another process keeps its order.
    let odd = flow.source_iter(&leader, q!([1u64, 3]));
    let even = flow.source_iter(&leader, q!([0u64, 2]));
    let _: Stream<'_, u64, Process<'_>, Unbounded, NoOrder> = odd.union(even);
    let other = flow.process("other");
    let _: Stream<'_, u64, Process<'_>, Unbounded, TotalOrder> =
        flow.source_iter(&leader, q!([7u64])).send_bincode(&other);

    // Sorting gives an order back.
    let a = flow.source_iter(&leader, q!([1u64]));
    let b = flow.source_iter(&leader, q!([2u64]));
    a.union(b)
        .tick_batch()
        .sort()
        .enumerate()
        .all_ticks()
        .for_each(q!(|(i, n)| println!("{i}: {n}")));
}

fn main() {
    let builder = FlowBuilder::new();
    flow(&builder);
    assert!(builder.finish().errors.is_empty());
}
