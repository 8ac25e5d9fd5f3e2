//! The example flows, deployed by hand from a topology file.

use crate::support::*;
use std::time::Duration;

fn numbers(text: &str) -> Vec<u32> {
    let mut n: Vec<u32> = text
        .lines()
        .map(|l| l.trim().parse().expect("a number per line"))
        .collect();
    n.sort();
    n
}

fn broadcast(workers_first: bool) {
    let topo = Topo::new(&[("leader", 1), ("worker", 2)]);
    let leader = (!workers_first).then(|| start("broadcast-leader", &topo.file, None, &[]));
    if leader.is_some() {
        std::thread::sleep(Duration::from_millis(300));
    }
    let workers: Vec<_> = (0..2)
        .map(|i| start("broadcast-worker", &topo.file, Some(i), &[]))
        .collect();
    let leader = leader.unwrap_or_else(|| {
        std::thread::sleep(Duration::from_millis(300));
        start("broadcast-leader", &topo.file, None, &[])
    });
    let leader = finish(leader, LIMIT);
    assert!(leader.status.success(), "leader: {}", stderr(&leader));
    for (i, worker) in workers.into_iter().enumerate() {
        let out = finish(worker, LIMIT);
        assert!(out.status.success(), "worker {i}: {}", stderr(&out));
        assert_eq!(
            numbers(&stdout(&out)),
            (0..10).collect::<Vec<_>>(),
            "worker {i}"
        );
    }
}

#[test]
fn broadcast_reaches_every_worker_when_the_leader_starts_first() {
    broadcast(false);
}

#[test]
fn broadcast_reaches_every_worker_when_the_workers_start_first() {
    broadcast(true);
}

#[test]
fn pipeline_filters_with_captured_values_and_delivers_in_order() {
    let topo = Topo::new(&[("producer", 1), ("consumer", 1)]);
    let consumer = start("pipeline-consumer", &topo.file, None, &[]);
    let producer = start("pipeline-producer", &topo.file, None, &[]);
    let producer = finish(producer, LIMIT);
    assert!(producer.status.success(), "producer: {}", stderr(&producer));
    let consumer = finish(consumer, LIMIT);
    assert!(consumer.status.success(), "consumer: {}", stderr(&consumer));
    // Readings inside the captured band [0, 40], shifted by the captured 0.5, in order.
    assert_eq!(stdout(&consumer), "a: 13.0°C\nd: 21.5°C\nf: 40.0°C\n");
}

#[test]
fn every_role_binary_explains_its_flags() {
    let out = std::process::Command::new(bin("broadcast-worker"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = stdout(&out);
    for expected in [
        "worker",
        "broadcast",
        "--topology",
        "--index",
        "WEIR_TOPOLOGY",
        "WEIR_INDEX",
    ] {
        assert!(help.contains(expected), "--help lacks {expected}:\n{help}");
    }
}
