//! The same seed gives the same run, in one process and across processes,
//! for a flow whose keyed operators emit their groups in hash order.

use crate::simulation;
use weir_sim::Sim;

fn map_reduce() -> Sim {
    Sim::new(&simulation::map_reduce::FLOW)
        .instances("worker", 3)
        .delays(0..10)
}

const SEEDS: std::ops::Range<u64> = 0..40;

fn trace_hashes() -> Vec<u64> {
    let sim = map_reduce();
    SEEDS.map(|seed| sim.run(seed).trace_hash()).collect()
}

#[test]
fn map_reduce_counts_every_word_under_every_seed() {
    let mut expected = std::collections::BTreeMap::new();
    for word in flow::map_reduce::TEXT.split_whitespace() {
        *expected.entry(word.to_string()).or_insert(0usize) += 1;
    }
    map_reduce().seeds(0..200).check(|run| {
        assert!(run.all_finished(), "{:?}", run.instances);
        let counted: std::collections::BTreeMap<String, usize> = run
            .lines_of("leader")
            .iter()
            .filter_map(|l| l.split_once(": "))
            .map(|(w, n)| (w.to_string(), n.parse().unwrap()))
            .collect();
        assert_eq!(counted, expected);
    });
}

#[test]
fn a_seed_run_twice_in_one_process_gives_the_same_trace() {
    let sim = map_reduce();
    let first = trace_hashes();
    for (seed, hash) in SEEDS.zip(&first) {
        assert_eq!(
            sim.run(seed).trace_hash(),
            *hash,
            "seed {seed} ran differently"
        );
    }
    let distinct: std::collections::BTreeSet<_> = first.iter().collect();
    assert!(
        distinct.len() > SEEDS.count() / 2,
        "seeds barely change the run: {distinct:?}"
    );
}

/// Prints each seed's trace hash (run by the test below, in another process).
#[test]
#[ignore = "run by the cross-process test"]
fn print_trace_hashes() {
    for (seed, hash) in SEEDS.zip(trace_hashes()) {
        println!("trace {seed} {hash:016x}");
    }
}

#[test]
fn a_seed_gives_the_same_trace_in_another_process() {
    let (passed, printed) =
        crate::run_in_another_process("sim::determinism::print_trace_hashes", &[]);
    assert!(passed, "{printed}");
    let theirs: Vec<u64> = printed
        .lines()
        .filter_map(|l| l.strip_prefix("trace "))
        .filter_map(|l| u64::from_str_radix(l.split(' ').nth(1)?, 16).ok())
        .collect();
    assert_eq!(
        theirs,
        trace_hashes(),
        "another process ran the seeds differently"
    );
}

/// The determinism check: a flow without `nondet!` prints the same lines on
/// every seed.
#[test]
fn map_reduce_and_two_pc_print_the_same_on_every_seed() {
    map_reduce().seeds(0..100).check_determinism();
    Sim::new(&simulation::two_pc::FLOW)
        .instances("participant", 3)
        .delays(0..10)
        .seeds(0..100)
        .check_determinism();
}

/// A fold declared commutative whose closure subtracts: the types accept
/// it, and seeds that deliver the workers' counts in another order print
/// another difference.
#[test]
fn a_false_commutativity_claim_is_caught_within_64_seeds() {
    let failure = Sim::new(&simulation::map_reduce_subtraction_bug::FLOW)
        .instances("worker", 3)
        .delays(0..10)
        .seeds(0..64)
        .find_nondeterminism()
        .expect("a subtraction declared commutative passed 64 seeds");
    assert!(
        failure
            .message
            .contains("the flow's output depends on the seed: leader printed \"difference: "),
        "{}",
        failure.message
    );
}

/// A flow that declares nondeterminism is not held to the same outputs:
/// the check refuses it, naming where it accepts it.
#[test]
#[should_panic(expected = "accepts nondeterminism")]
fn the_determinism_check_refuses_a_flow_that_accepts_nondeterminism() {
    Sim::new(&simulation::paxos_kv::FLOW)
        .instances("proposer", 2)
        .instances("acceptor", 3)
        .instances("replica", 2)
        .find_nondeterminism();
}
