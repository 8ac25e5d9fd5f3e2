//! The semantics of each operator (docs/SEMANTICS.md), checked on the `operators`
//! flow's roles: `batch` (one tick), `clock` (ticks 0 to 3, and one more), and
//! `streams` (async sources and sinks, stopped by SIGTERM).

use crate::support::*;
use std::collections::BTreeSet;
use std::time::Duration;

const ROLES: &[(&str, Option<usize>)] = &[("batch", None), ("clock", None), ("streams", None)];

fn run(role: &str) -> String {
    let out = Running::start_only("operators", ROLES, &[role]).outputs();
    output_of(&out, role).to_string()
}

#[test]
fn one_tick_operators_compute_what_they_say() {
    let out = run("batch");
    let expected = [
        "map 30 10 40 10 50 90 20 60",
        "filter 4 2 6",
        "filter_map big5 big9 big6",
        "flat_map 1 1 2 2",
        "enumerate 0:3 1:1 2:4",
        "cloned X Y",
        // By `n % 4`, of three branches: those at 3 go nowhere.
        "demux0 4",
        "demux1 1 1 5 9",
        "demux2 2 6",
        "sort 1 1 2 3 4 5 6 9",
        "unique 3 1 4 5 9 2 6",
        "union 1 1 6 9",
        "count 8",
        "reduce 31",
        "first 3",
        "fold_keyed 0=12 1=19",
        "reduce_keyed 0=6 1=9",
        "join 1=one 1=one 3=three",
        "anti_join 7=seven",
        "filter_not_in 3 4 5 2 6",
        "cross_product 1a 1b 2a 2b",
        "cross_singleton 9/31 6/31",
        "continue_if 1 1",
        "continue_unless 1 1",
        "continue_unless_some",
    ];
    let got: Vec<&str> = out.lines().map(str::trim_end).collect();
    // One tick: every whole-tick operator emits exactly once.
    assert_eq!(got.len(), expected.len(), "{out}");
    let got: BTreeSet<&str> = got.into_iter().collect();
    let expected: BTreeSet<&str> = expected.into_iter().collect();
    assert_eq!(got, expected);
}

#[test]
fn tick_level_operators_across_ticks() {
    let out = run("clock");
    let lines: Vec<&str> = out.lines().collect();
    let with = |prefix: &str| -> BTreeSet<&str> {
        lines
            .iter()
            .copied()
            .filter(|l| l.starts_with(prefix))
            .collect()
    };
    // Ticks 0 to 3 carry the clock's value; `defer_tick` carries 3 into a fifth
    // tick, where the clock is empty (and `now` is its fold's initial 0).
    let mut persist = BTreeSet::new();
    for now in 0..4 {
        for t in 0..=now {
            persist.insert(format!("persist {now}: {t}"));
        }
    }
    for t in 0..4 {
        persist.insert(format!("persist 0: {t}"));
    }
    let persist: BTreeSet<&str> = persist.iter().map(String::as_str).collect();
    assert_eq!(with("persist "), persist);
    // `delta` of the persisted halves {0}, {0}, {0,1}, {0,1}: new only in 0 and 2.
    assert_eq!(with("delta "), BTreeSet::from(["delta 0: 0", "delta 2: 1"]));
    assert_eq!(
        with("defer_tick "),
        BTreeSet::from([
            "defer_tick 1: 0",
            "defer_tick 2: 1",
            "defer_tick 3: 2",
            "defer_tick 0: 3"
        ])
    );
    // Singleton operators, at the tick level: odd ticks only.
    assert_eq!(
        with("singleton "),
        BTreeSet::from(["singleton 10", "singleton 30"])
    );
    // An unbounded cycle delivers each tick's records in the next tick.
    assert_eq!(
        with("cycle "),
        BTreeSet::from(["cycle 1: 0", "cycle 2: 100", "cycle 3: 200", "cycle 0: 300"])
    );
    // `latest` reads the running count in every tick.
    let latest: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| l.starts_with("latest "))
        .collect();
    assert_eq!(latest.first(), Some(&"latest 1"));
    assert_eq!(latest.last(), Some(&"latest 4"));
    // A quoted closure's state is created once and lives across ticks.
    let stateful: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| l.starts_with("stateful "))
        .collect();
    assert_eq!(
        stateful,
        ["stateful 1", "stateful 2", "stateful 3", "stateful 4"]
    );
    // Unbounded aggregation: one final value, once the loop has ended.
    assert_eq!(
        with("final "),
        BTreeSet::from(["final sum 6", "final count 4"])
    );
}

#[test]
fn async_sources_and_sinks_run_until_stopped() {
    let running = Running::start_only("operators", ROLES, &["streams"]);
    std::thread::sleep(Duration::from_millis(800));
    running.terminate();
    let out = running.outputs();
    let lines: Vec<&str> = output_of(&out, "streams").lines().collect();
    let sink: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| l.starts_with("countdown") || l.starts_with("sink"))
        .collect();
    assert_eq!(
        sink,
        ["countdown 3", "countdown 2", "countdown 1", "sink closed"]
    );
    let interval: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| l.starts_with("interval"))
        .collect();
    assert_eq!(interval, ["interval 0", "interval 1", "interval 2"]);
    // `timeout` is quiet while beats come every 50 ms, then fires every 200 ms
    // of silence after the last.
    let last_beat = lines.iter().position(|l| *l == "interval 2").unwrap();
    let timeouts: Vec<usize> = (0..lines.len())
        .filter(|&i| lines[i] == "timeout")
        .collect();
    assert!(
        !timeouts.is_empty(),
        "no timeout after the beats stopped: {lines:?}"
    );
    assert!(
        timeouts.iter().all(|&i| i > last_beat),
        "a timeout while beats came: {lines:?}"
    );
    assert!(
        timeouts.len() <= 3,
        "more timeouts than 800 ms of silence allows: {lines:?}"
    );
    // A delayed interval: its first time after 300 ms, the next a minute later.
    assert_eq!(
        lines.iter().filter(|l| **l == "delayed").count(),
        1,
        "{lines:?}"
    );
}
