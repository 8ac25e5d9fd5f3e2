//! Durable state (`weir::durable`) in real role binaries: `tally`'s counters
//! keep every number they took in a log in their state directory.

use crate::support::*;

/// One run of `tally`: the leader and one counter (with `counter_flags`);
/// the counter's output. The leader gives up on a counter that never comes
/// up (one refused its state directory) well within the wait for it: with
/// the default 30 s it raced the limit.
fn run_tally(topo: &Topo, counter_flags: &[&str]) -> std::process::Output {
    let counter = start("tally-counter", &topo.file, Some(0), counter_flags);
    let leader = start(
        "tally-leader",
        &topo.file,
        None,
        &["--connect-timeout", "10"],
    );
    let counter = finish(counter, LIMIT);
    finish(leader, LIMIT);
    counter
}

#[test]
fn a_counter_restarted_on_its_state_directory_goes_on_from_its_total() {
    let topo = Topo::new(&[("leader", 1), ("counter", 1)]);
    let state = topo.file.with_file_name("state");
    let dir = state.to_str().unwrap();
    let first = run_tally(&topo, &["--state-dir", dir]);
    assert!(first.status.success(), "{}", stderr(&first));
    assert!(
        stdout(&first).starts_with("read back 0 numbers, total 0\n"),
        "{}",
        stdout(&first)
    );
    assert!(stdout(&first).ends_with("total 15\n"), "{}", stdout(&first));
    // Restarted on the same directory: the five numbers are read back.
    let second = run_tally(&topo, &["--state-dir", dir]);
    assert!(second.status.success(), "{}", stderr(&second));
    assert!(
        stdout(&second).starts_with("read back 5 numbers, total 15\n"),
        "{}",
        stdout(&second)
    );
    assert!(
        stdout(&second).ends_with("total 30\n"),
        "{}",
        stdout(&second)
    );
}

#[test]
fn a_torn_last_commit_is_dropped_with_a_warning_naming_file_and_byte() {
    let topo = Topo::new(&[("leader", 1), ("counter", 1)]);
    let state = topo.file.with_file_name("state");
    let dir = state.to_str().unwrap();
    assert!(run_tally(&topo, &["--state-dir", dir]).status.success());
    // A crash while a commit was being written: half a frame at the end.
    let log = state.join("counter-0/taken.log");
    let whole = std::fs::read(&log).unwrap();
    let mut torn = whole.clone();
    torn.extend_from_slice(&whole[..whole.len().min(20) / 2]);
    std::fs::write(&log, &torn).unwrap();
    let again = run_tally(&topo, &["--state-dir", dir, "--log", "warn"]);
    assert!(
        stdout(&again).starts_with("read back 5 numbers, total 15\n"),
        "{}",
        stdout(&again)
    );
    let said = stderr(&again);
    assert!(
        said.contains("taken.log") && said.contains(&format!("from byte {}", whole.len())),
        "{said}"
    );
}

#[test]
fn damage_before_the_end_stops_the_counter_naming_the_file() {
    let topo = Topo::new(&[("leader", 1), ("counter", 1)]);
    let state = topo.file.with_file_name("state");
    let dir = state.to_str().unwrap();
    assert!(run_tally(&topo, &["--state-dir", dir]).status.success());
    assert!(run_tally(&topo, &["--state-dir", dir]).status.success());
    let log = state.join("counter-0/taken.log");
    let mut bytes = std::fs::read(&log).unwrap();
    bytes[14] ^= 0xff;
    std::fs::write(&log, &bytes).unwrap();
    let out = run_tally(&topo, &["--state-dir", dir]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("taken.log: the commit at byte 0 is damaged"),
        "{}",
        stderr(&out)
    );
    assert_eq!(stdout(&out), "", "it counted from part of its state");
}

#[test]
fn without_a_state_directory_the_state_is_in_memory_and_said_so_and_one_held_is_refused() {
    let topo = Topo::new(&[("leader", 1), ("counter", 1)]);
    for _ in 0..2 {
        let out = run_tally(&topo, &[]);
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(
            stderr(&out).contains("warning: counter/0: role `counter` keeps durable state, but no --state-dir (WEIR_STATE_DIR) was given: it is kept in memory only"),
            "{}",
            stderr(&out)
        );
        assert!(
            stdout(&out).starts_with("read back 0 numbers"),
            "{}",
            stdout(&out)
        );
    }
    // Two processes as counter/0 on one state root: the second is refused.
    let shared = topo.file.with_file_name("shared");
    let holder = held_by_another_counter(&shared);
    let out = run_tally(&topo, &["--state-dir", shared.to_str().unwrap()]);
    drop(holder);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("is in use by another process"),
        "{}",
        stderr(&out)
    );
}

/// Another process's hold on state directory `dir`: a counter started on it
/// and left waiting for its leader.
fn held_by_another_counter(dir: &std::path::Path) -> Watched {
    let topo = Topo::new(&[("leader", 1), ("counter", 1)]);
    let holder = Watched::start(
        "holder",
        command(
            "tally-counter",
            &topo.file,
            Some(0),
            &["--state-dir", dir.to_str().unwrap()],
        ),
    );
    let start = std::time::Instant::now();
    while !dir.join("counter-0/.lock").exists() && start.elapsed() < LIMIT {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    holder
}

/// A deployment gives each instance a state directory of its own; given a
/// root, the next deployment finds them there.
#[tokio::test]
async fn a_deployment_keeps_each_instances_state_under_its_root_across_runs() {
    let topo = Topo::new(&[]);
    let root = topo.file.with_file_name("states");
    for expected in [
        "read back 0 numbers, total 0",
        "read back 5 numbers, total 15",
    ] {
        let mut running = weir_deploy::Deployment::new()
            .process("leader", bin("tally-leader"))
            .cluster("counter", bin("tally-counter"), 2)
            .state_dirs(&root)
            .capture_output()
            .timeout(LIMIT)
            .start()
            .await
            .unwrap();
        let mut lines = Vec::new();
        while let Some(line) = running.next_line().await {
            lines.push(line);
        }
        running.wait().await.unwrap();
        for i in 0..2 {
            let said = format!("[counter/{i}] {expected}");
            assert!(lines.contains(&said), "no `{said}` in {lines:#?}");
        }
    }
    for i in 0..2 {
        assert!(root.join(format!("counter-{i}/taken.log")).is_file());
    }
}
