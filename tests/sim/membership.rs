//! A flow with tolerant edges under crashes, restarts and holds: the leader
//! goes on without a worker, a worker goes on without the leader, and
//! whoever comes back is counted in again.

use crate::simulation;
use std::time::Duration;
use weir_sim::{Outcome, Run, Sim};

const WORKERS: u32 = 3;
/// When every instance is stopped.
const STOP: Duration = Duration::from_secs(8);

fn membership() -> Sim {
    Sim::new(&simulation::membership::FLOW)
        .instances("worker", WORKERS)
        .delays(0..10)
        .crashes(0.3)
        .holds(0.2)
        .fault_window(Duration::from_secs(2))
        // Holds last at most 3 s and the crashed are back within 2 s: by 6 s
        // every fault is over.
        .stop_after(STOP)
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
        // Before the stop: a worker that stops first says so, and the
        // leader may report it leaving before it stops itself.
        let last_event = run
            .lines
            .iter()
            .filter(|l| l.instance == "leader" && l.at < STOP)
            .map(|l| l.text.as_str())
            .rfind(|l| l.starts_with(&format!("member {w} ")));
        assert_eq!(last_event, Some(format!("member {w} joined").as_str()));
    }
}

#[test]
fn tolerant_edges_outlive_crashes_restarts_and_holds() {
    let faulted = std::sync::atomic::AtomicUsize::new(0);
    let seeds = membership().seeds(0..150).check(|run| {
        check_recovered(run);
        if run.faults.iter().any(|f| f.contains("crash leader")) {
            faulted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    });
    assert!(
        faulted.into_inner() >= crate::expected(11, 150, seeds),
        "the leader seldom crashed"
    );
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

/// 60 runs in which each worker may crash in the first 2 s and come back on
/// `next`, stopped after 8 s.
fn workers_restarted_on(next: &'static weir_sim::Flow) -> Sim {
    Sim::new(&simulation::membership::FLOW)
        .upgrade_to(next)
        .instances("worker", WORKERS)
        .crashes_of("worker", 0.5)
        .fault_window(Duration::from_secs(2))
        .stop_after(STOP)
        .seeds(0..60)
}

/// Workers crash and come back on a later build that agrees on the wire (a
/// rolling upgrade under faults): every worker is served throughout, and
/// those that came back print as the new build does.
#[test]
fn workers_upgraded_by_restarts_to_a_build_that_agrees_are_served() {
    let upgraded = std::sync::atomic::AtomicUsize::new(0);
    let seeds = workers_restarted_on(&simulation::membership_next::FLOW).check(|run| {
        for w in 0..WORKERS {
            let worker = format!("worker/{w}");
            let restarted = run
                .faults
                .iter()
                .any(|f| f.contains(&format!("restart {worker} on flow `membership_next`")));
            let late: Vec<&str> = run
                .lines
                .iter()
                .filter(|l| l.instance == worker && l.at >= Duration::from_secs(7))
                .map(|l| l.text.as_str())
                .filter(|t| t.starts_with("got "))
                .collect();
            assert!(late.len() >= 5, "{worker} got {late:?} in its last second");
            let next = late.iter().all(|t| t.ends_with("(next build)"));
            assert_eq!(next, restarted, "{worker}: {late:?}");
            if restarted {
                upgraded.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
    });
    assert!(
        upgraded.into_inner() >= crate::expected(11, 60, seeds),
        "few workers were upgraded"
    );
}

/// Workers that come back on a build whose records changed are refused by
/// the leader (of the build before) and never receive; the others go on.
#[test]
fn workers_restarted_on_a_build_whose_records_differ_are_never_linked() {
    let refused = std::sync::atomic::AtomicUsize::new(0);
    let seeds = workers_restarted_on(&simulation::membership_retyped::FLOW).check(|run| {
        for w in 0..WORKERS {
            let worker = format!("worker/{w}");
            let back = run.faults.iter().find_map(|f| {
                let (at, rest) = f.split_once(" ms: ")?;
                (rest == format!("restart {worker} on flow `membership_retyped`"))
                    .then(|| Duration::from_millis(at.parse().unwrap()))
            });
            let got_after = |t: Duration| {
                run.lines
                    .iter()
                    .filter(|l| l.instance == worker && l.at > t)
                    .filter(|l| l.text.starts_with("got "))
                    .count()
            };
            match back {
                Some(at) => {
                    assert_eq!(got_after(at), 0, "{worker} received after coming back");
                    assert!(
                        run.faults.iter().any(|f| f.contains("refuse each other")
                            && f.contains(&format!("u32 at {worker}"))
                            && f.contains("u64 at leader")),
                        "{:?}",
                        run.faults
                    );
                    refused.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                None => assert!(got_after(Duration::from_secs(7)) >= 5, "{worker}"),
            }
        }
    });
    assert!(
        refused.into_inner() >= crate::expected(11, 60, seeds),
        "few workers came back on the retyped build"
    );
}
