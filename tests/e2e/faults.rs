//! Faults: instances killed mid-stream, stopped by signals, or paused. Nothing
//! is lost that was accepted, nothing waits forever, nothing is left running.

use crate::support::*;
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};
use weir_deploy::Deployment;

fn signal(child: &Child, signal: libc::c_int) {
    signal_pid(child.id(), signal);
}

fn signal_pid(pid: u32, signal: libc::c_int) {
    // SAFETY: kill(2) on a process this test started; no memory is involved.
    unsafe { libc::kill(pid as libc::pid_t, signal) };
}

/// Starts a pipe (`bench_pipe`: the sender streams `0..records` to the
/// receiver, which prints its count and sum): receiver first, then sender.
/// Their topology's directory lives as long as the `Topo`.
fn pipe(records: u64) -> (Child, Child, Topo) {
    let topo = Topo::new(&[("sender", 1), ("receiver", 1)]);
    let spawn = |role: &str| {
        command(&format!("bench_pipe-{role}"), &topo.file, None, &[])
            .env(flow::bench::SIZE_VAR, records.to_string())
            .spawn()
            .unwrap()
    };
    let receiver = spawn("receiver");
    let sender = spawn("sender");
    (sender, receiver, topo)
}

/// The receiver's `count` and `sum`.
fn tally(out: &str) -> (u64, u64) {
    let field = |key: &str| -> u64 {
        let start = out.find(&format!("{key}=")).expect(key) + key.len() + 1;
        out[start..]
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    (field("count"), field("sum"))
}

/// A value from `/proc/<pid>/status`, in KiB (`VmRSS`, `VmHWM`).
fn status_kib(pid: u32, key: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with(key)).expect(key);
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Enough records that the pipe runs for many seconds in a debug build.
const ENDLESS: u64 = 1 << 40;

/// Kills one end of a running pipe; the other must exit non-zero naming it.
fn kill_mid_stream(victim: &str) {
    let (sender, receiver, _topo) = pipe(ENDLESS);
    std::thread::sleep(Duration::from_millis(1500));
    let (killed, survivor, survivor_name) = match victim {
        "sender" => (sender, receiver, "receiver"),
        _ => (receiver, sender, "sender"),
    };
    signal(&killed, libc::SIGKILL);
    let out = finish(survivor, LIMIT);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains(&format!("error: {survivor_name}")), "{err}");
    assert!(err.contains(&format!("lost peer {victim}")), "{err}");
    finish(killed, LIMIT);
}

#[test]
fn a_killed_sender_is_reported_by_the_receiver_as_lost() {
    kill_mid_stream("sender");
}

#[test]
fn a_killed_receiver_stops_the_sender_naming_it() {
    kill_mid_stream("receiver");
}

#[test]
fn sigterm_flushes_what_was_sent_and_exits_0() {
    let (sender, receiver, _topo) = pipe(ENDLESS);
    std::thread::sleep(Duration::from_millis(1500));
    signal(&sender, libc::SIGTERM);
    let (sender, receiver) = (finish(sender, LIMIT), finish(receiver, LIMIT));
    assert!(sender.status.success(), "{}", stderr(&sender));
    assert!(receiver.status.success(), "{}", stderr(&receiver));
    // The receiver got a whole prefix 0..count: nothing accepted was lost.
    let (count, sum) = tally(&stdout(&receiver));
    assert!(count > 0, "nothing arrived before SIGTERM");
    assert_eq!(sum, flow::bench::expected_sum(count), "count {count}");
}

#[test]
fn with_stop_on_eof_the_end_of_stdin_stops_an_instance_as_sigterm_does() {
    // What a controller over SSH relies on: its death closes the instance's
    // stdin, and the instance stops itself, losing nothing.
    let topo = Topo::new(&[("sender", 1), ("receiver", 1)]);
    let spawn = |role: &str, extra: &[&str]| {
        command(&format!("bench_pipe-{role}"), &topo.file, None, extra)
            .env(flow::bench::SIZE_VAR, ENDLESS.to_string())
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let receiver = spawn("receiver", &[]);
    let mut sender = spawn("sender", &["--stop-on-eof"]);
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        sender.try_wait().unwrap().is_none(),
        "the sender stopped by itself"
    );
    drop(sender.stdin.take());
    let (sender, receiver) = (finish(sender, LIMIT), finish(receiver, LIMIT));
    assert!(sender.status.success(), "{}", stderr(&sender));
    assert!(receiver.status.success(), "{}", stderr(&receiver));
    let (count, sum) = tally(&stdout(&receiver));
    assert!(count > 0, "nothing arrived");
    assert_eq!(sum, flow::bench::expected_sum(count), "count {count}");
}

#[test]
fn a_paused_receiver_slows_the_sender_without_growing_its_memory() {
    // About 5 s of records in a debug build, of which 3 s are sent while the
    // receiver is stopped: unbounded buffering would hold well over 100 MiB.
    let records = 30_000_000;
    let (sender, receiver, _topo) = pipe(records);
    std::thread::sleep(Duration::from_millis(500));
    signal(&receiver, libc::SIGSTOP);
    std::thread::sleep(Duration::from_secs(3));
    let peak = status_kib(sender.id(), "VmHWM");
    let still_sending = sender_is_running(&sender);
    signal(&receiver, libc::SIGCONT);
    let (sender, receiver) = (finish(sender, LIMIT), finish(receiver, LIMIT));
    assert!(sender.status.success(), "{}", stderr(&sender));
    assert!(receiver.status.success(), "{}", stderr(&receiver));
    assert!(
        still_sending,
        "the sender finished while its receiver was paused"
    );
    assert!(
        peak < 32 * 1024,
        "the sender's peak RSS reached {peak} KiB while its receiver was paused"
    );
    assert_eq!(
        tally(&stdout(&receiver)),
        (records, flow::bench::expected_sum(records)),
        "records were lost"
    );
}

/// Pauses each member of a broadcast in turn while the leader streams to
/// both, then stops the leader: each member got the same whole prefix.
fn broadcast_with_members_paused_in_turn(extra: &[&str]) {
    let topo = Topo::new(&[("leader", 1), ("member", 2)]);
    let spawn = |role: &str, index: Option<usize>| {
        command(&format!("bench_broadcast-{role}"), &topo.file, index, extra)
            .env(flow::bench::SIZE_VAR, ENDLESS.to_string())
            .spawn()
            .unwrap()
    };
    let members = [spawn("member", Some(0)), spawn("member", Some(1))];
    let leader = spawn("leader", None);
    std::thread::sleep(Duration::from_millis(1000));
    // The later member first: the leader writes its frames straight from the
    // bytes encoded for the first, and queues what a full socket leaves.
    for member in members.iter().rev() {
        signal(member, libc::SIGSTOP);
        std::thread::sleep(Duration::from_millis(700));
        signal(member, libc::SIGCONT);
    }
    std::thread::sleep(Duration::from_millis(300));
    signal(&leader, libc::SIGTERM);
    let leader = finish(leader, LIMIT);
    assert!(leader.status.success(), "{}", stderr(&leader));
    let tallies: Vec<(u64, u64)> = members
        .into_iter()
        .map(|member| {
            let out = finish(member, LIMIT);
            assert!(out.status.success(), "{}", stderr(&out));
            tally(&stdout(&out))
        })
        .collect();
    let (count, sum) = tallies[0];
    assert!(count > 0, "nothing arrived");
    assert_eq!(sum, flow::bench::expected_sum(count), "count {count}");
    assert_eq!(tallies[1], tallies[0], "the members got different records");
}

#[test]
fn a_broadcast_to_members_paused_in_turn_loses_nothing_over_sealed_links() {
    broadcast_with_members_paused_in_turn(&[]);
}

#[test]
fn a_broadcast_to_members_paused_in_turn_loses_nothing_in_clear() {
    broadcast_with_members_paused_in_turn(&["--insecure-no-auth"]);
}

fn sender_is_running(child: &Child) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", child.id())).unwrap();
    // The state follows the parenthesised command name; Z is a zombie.
    let state = stat.rsplit(')').next().unwrap().split_whitespace().next();
    state != Some("Z")
}

/// Processes whose parent is `parent`, with their command lines.
fn children_of(parent: u32) -> Vec<(u32, String)> {
    let mut children = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let ppid = stat.rsplit(')').next().unwrap().split_whitespace().nth(1);
        if ppid == Some(&parent.to_string()) {
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            children.push((pid, cmdline));
        }
    }
    children
}

fn is_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Waits until `parent` has `n` children whose command lines contain every one
/// of `needles`.
fn wait_for_children(parent: u32, needles: &[&str], n: usize) -> Vec<(u32, String)> {
    let started = Instant::now();
    loop {
        let found: Vec<_> = children_of(parent)
            .into_iter()
            .filter(|(_, cmd)| needles.iter().all(|needle| cmd.contains(needle)))
            .collect();
        if found.len() >= n {
            return found;
        }
        assert!(
            started.elapsed() < LIMIT,
            "only {} of {n} instances started",
            found.len()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test]
async fn a_killed_instance_fails_the_deployment_naming_it_and_stops_the_rest() {
    let deployment = Deployment::new()
        .process("leader", bin("compute_pi-leader"))
        .cluster("worker", bin("compute_pi-worker"), 2)
        .timeout(Duration::from_secs(60))
        .run();
    let killer = tokio::task::spawn_blocking(|| {
        let me = std::process::id();
        let instances = wait_for_children(me, &["compute_pi-", "weir-deploy-"], 3);
        std::thread::sleep(Duration::from_millis(500));
        let (victim, _) = instances
            .iter()
            .find(|(_, cmd)| cmd.contains("compute_pi-worker") && cmd.contains("--index 1"))
            .expect("worker/1 runs");
        signal_pid(*victim, libc::SIGKILL);
        instances
    });
    let started = Instant::now();
    let err = deployment
        .await
        .expect_err("the deployment must fail")
        .to_string();
    let instances = killer.await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "the deployment took {:?} to end",
        started.elapsed()
    );
    assert!(err.contains("worker/1"), "{err}");
    assert!(err.contains("the other instances were stopped"), "{err}");
    for (pid, cmd) in instances {
        assert!(!is_alive(pid), "{cmd} is still running");
    }
}

#[test]
fn ctrl_c_stops_a_deployment_cleanly_and_leaves_no_process() {
    let script = Command::new(deploy_script("compute_pi"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let instances = wait_for_children(script.id(), &["compute_pi-"], 3);
    // Long enough for a first estimate; the script itself stops them at 4.5 s.
    std::thread::sleep(Duration::from_millis(1500));
    signal(&script, libc::SIGINT);
    let out = finish(script, LIMIT);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("stopping every instance"), "{err}");
    for (pid, cmd) in instances {
        assert!(!is_alive(pid), "{cmd} is still running");
    }
    let output = stdout(&out);
    assert!(output.contains("[leader] pi: 3.1"), "{output}");
}
