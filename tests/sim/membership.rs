//! A flow with tolerant edges under crashes, restarts and holds: the leader
//! goes on without a worker, a worker goes on without the leader, and
//! whoever comes back is counted in again.

use crate::simulation;
use std::time::Duration;
use weir_sim::{Outcome, Run, Sim};

const WORKERS: u32 = 3;

fn membership() -> Sim {
    Sim::new(&simulation::membership::FLOW)
        .instances("worker", WORKERS)
        .delays(0..10)
        .crashes(0.3)
        .holds(0.2)
        .fault_window(Duration::from_secs(2))
        // Holds last at most 3 s and the crashed are back within 2 s: by 6 s
        // every fault is over.
        .stop_after(Duration::from_secs(8))
}

/// After the faults, every instance is up and the records flow to every
/// worker; at the stop, everyone ends cleanly.
fn check_recovered(run: &Run) {
    for (name, outcome) in &run.instances {
        assert_eq!(*outcome, Outcome::Finished, "{name}");
    }
    for w in 0..WORKERS {
        let worker = format!("worker/{w}");
        let late: Vec<u64> = run
            .lines
            .iter()
            .filter(|l| l.instance == worker && l.at >= Duration::from_secs(7))
            .filter_map(|l| l.text.strip_prefix("got ")?.parse().ok())
            .collect();
        assert!(late.len() >= 5, "{worker} got {late:?} in its last second");
        assert!(
            late.windows(2).all(|p| p[1] == p[0] + 1),
            "{worker} got {late:?}: records lost or out of order on a live link"
        );
        let last_event = run
            .lines_of("leader")
            .into_iter()
            .rfind(|l| l.starts_with(&format!("member {w} ")));
        assert_eq!(last_event, Some(format!("member {w} joined").as_str()));
    }
}

#[test]
fn tolerant_edges_outlive_crashes_restarts_and_holds() {
    let faulted = std::sync::atomic::AtomicUsize::new(0);
    membership().seeds(0..150).check(|run| {
        check_recovered(run);
        if run.faults.iter().any(|f| f.contains("crash leader")) {
            faulted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    });
    assert!(faulted.into_inner() > 10, "the leader seldom crashed");
}

#[test]
fn a_run_that_never_ends_is_reported_as_hung_with_each_instances_last_step() {
    // Without `stop_after`, this flow runs for ever.
    let failure = Sim::new(&simulation::membership::FLOW)
        .instances("worker", 2)
        .time_limit(Duration::from_secs(3))
        .seeds(0..1)
        .find_failure(|_| {})
        .expect("a flow that never ends passed");
    assert!(
        failure.message.contains("hung: leader, worker/0, worker/1"),
        "{}",
        failure.message
    );
    let report = failure.report();
    assert!(report.contains("worker/1: last ran at 2"), "{report}");
    assert!(report.contains("last line \"got "), "{report}");
}
