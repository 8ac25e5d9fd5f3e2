//! The classic programs, each checked against a direct computation of its answer.

use crate::support::*;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

fn lines(text: &str) -> Vec<&str> {
    text.lines().collect()
}

#[test]
fn first_ten_prints_zero_to_nine() {
    let out = Running::start("first_ten", &[("process", None)]).outputs();
    let expected: Vec<String> = (0..10).map(|n| n.to_string()).collect();
    assert_eq!(lines(output_of(&out, "process")), expected);
}

#[test]
fn first_ten_distributed_prints_at_the_second_process() {
    let out = Running::start(
        "first_ten_distributed",
        &[("first", None), ("second", None)],
    )
    .outputs();
    let expected: Vec<String> = (0..10).map(|n| n.to_string()).collect();
    assert_eq!(lines(output_of(&out, "second")), expected);
    assert_eq!(output_of(&out, "first"), "");
}

#[test]
fn first_ten_cluster_doubles_round_robin_and_tags_the_sender() {
    let out = Running::start(
        "first_ten_cluster",
        &[("leader", None), ("worker", Some(4))],
    )
    .outputs();
    let mut got: Vec<(u32, u32)> = lines(output_of(&out, "leader"))
        .iter()
        .map(|line| {
            let (doubled, worker) = line.split_once(" from worker ").expect("result line");
            (doubled.parse().unwrap(), worker.parse().unwrap())
        })
        .collect();
    got.sort();
    // Round robin: n goes to member n % 4, which sends back 2n tagged with its id.
    let expected: Vec<(u32, u32)> = (0..10).map(|n| (2 * n, n % 4)).collect();
    assert_eq!(got, expected);
    for member in 0..4 {
        let doubled: BTreeSet<u32> = lines(output_of(&out, &format!("worker/{member}")))
            .iter()
            .map(|l| l.trim_start_matches("doubling ").parse().unwrap())
            .collect();
        assert_eq!(doubled, (0..10).filter(|n| n % 4 == member).collect());
    }
}

#[test]
fn compute_pi_estimates_pi_and_stops_cleanly_on_sigterm() {
    let running = Running::start("compute_pi", &[("leader", None), ("worker", Some(2))]);
    std::thread::sleep(Duration::from_millis(2600));
    running.terminate();
    let out = running.outputs();
    let last = lines(output_of(&out, "leader"))
        .into_iter()
        .filter_map(|l| l.strip_prefix("pi: "))
        .next_back()
        .expect("at least one estimate");
    let (estimate, trials) = last.split_once(" (").expect("pi: X (N trials)");
    let estimate: f64 = estimate.parse().unwrap();
    let trials: u64 = trials.trim_end_matches(" trials)").parse().unwrap();
    assert!((estimate - std::f64::consts::PI).abs() < 0.05, "{last}");
    assert!(trials > 0 && trials.is_multiple_of(flow::compute_pi::POINTS_PER_TICK as u64));
}

#[test]
fn map_reduce_counts_every_word() {
    let members = 3;
    let out =
        Running::start("map_reduce", &[("leader", None), ("worker", Some(members))]).outputs();
    let words: Vec<&str> = flow::map_reduce::TEXT.split_whitespace().collect();
    let mut expected: BTreeMap<String, usize> = BTreeMap::new();
    for w in &words {
        *expected.entry(w.to_string()).or_default() += 1;
    }
    let got: BTreeMap<String, usize> = lines(output_of(&out, "leader"))
        .iter()
        .map(|l| {
            let (w, n) = l.split_once(": ").expect("word: count");
            (w.to_string(), n.parse().unwrap())
        })
        .collect();
    assert_eq!(got, expected);
    let ids: Vec<weir::ClusterId> = (0..members as u32).map(weir::ClusterId).collect();
    for member in 0..members {
        let in_partition = words
            .iter()
            .filter(|w| flow::map_reduce::partition(w, &ids).index() == member)
            .count();
        assert_eq!(
            output_of(&out, &format!("worker/{member}")).trim(),
            format!("partition count: {member} - {in_partition}")
        );
    }
}

#[test]
fn graph_reachability_matches_a_breadth_first_search() {
    let out = Running::start("graph_reachability", &[("process", None)]).outputs();
    let got: Vec<u32> = lines(output_of(&out, "process"))
        .iter()
        .map(|l| l.trim_start_matches("reached ").parse().unwrap())
        .collect();
    let unique: BTreeSet<u32> = got.iter().copied().collect();
    assert_eq!(unique.len(), got.len(), "each vertex is reported once");
    let mut reached = BTreeSet::from([1u32]);
    let mut queue = VecDeque::from([1u32]);
    while let Some(v) = queue.pop_front() {
        for &(from, to) in flow::graph_reachability::EDGES {
            if from == v && reached.insert(to) {
                queue.push_back(to);
            }
        }
    }
    assert_eq!(unique, reached);
}

#[test]
fn two_pc_decides_every_transaction() {
    let out =
        Running::start("two_pc", &[("coordinator", None), ("participant", Some(3))]).outputs();
    let mut decisions: BTreeMap<u32, &str> = BTreeMap::new();
    for line in lines(output_of(&out, "coordinator")) {
        let (decision, tx) = line.split_once(' ').expect("decision tx");
        assert!(decisions.insert(tx.parse().unwrap(), decision).is_none());
    }
    let expected: BTreeMap<u32, &str> = (1..=flow::two_pc::TRANSACTIONS)
        .map(|tx| {
            (
                tx,
                if tx.is_multiple_of(10) {
                    "abort"
                } else {
                    "commit"
                },
            )
        })
        .collect();
    assert_eq!(decisions, expected);
}

#[test]
fn relay_routes_through_two_clusters_and_tags_each_hop() {
    let (fronts, backs) = (3u32, 2u32);
    let out = Running::start(
        "relay",
        &[
            ("leader", None),
            ("front", Some(fronts as usize)),
            ("back", Some(backs as usize)),
        ],
    )
    .outputs();
    let mut routes: Vec<(u32, u32, u32)> = lines(output_of(&out, "leader"))
        .iter()
        .map(|l| {
            let (n, rest) = l.split_once(" via front ").expect("route line");
            let (front, back) = rest.split_once(" and back ").expect("route line");
            (
                n.parse().unwrap(),
                front.parse().unwrap(),
                back.parse().unwrap(),
            )
        })
        .collect();
    routes.sort();
    let expected: Vec<(u32, u32, u32)> = (0..12).map(|n| (n, n % fronts, n % backs)).collect();
    assert_eq!(routes, expected);
}

#[test]
fn members_of_one_cluster_send_to_each_other_and_themselves() {
    let n = 3u32;
    let out = Running::start("ring", &[("member", Some(n as usize))]).outputs();
    for member in 0..n {
        let text = output_of(&out, &format!("member/{member}"));
        let previous = (member + n - 1) % n;
        let passed: Vec<&str> = text.lines().filter(|l| l.starts_with("passed")).collect();
        assert_eq!(passed, [format!("passed from {previous}: {previous}")]);
        let heard: BTreeSet<&str> = text.lines().filter(|l| l.starts_with("heard")).collect();
        let expected: BTreeSet<String> = (0..n).map(|s| format!("heard from {s}: {s}")).collect();
        assert_eq!(heard, expected.iter().map(String::as_str).collect());
    }
}
