//! Seeing a flow run: log lines on stderr, `--stats` figures, and what a
//! deploy script says it is doing. (Pictures: codegen.rs.)

use crate::support::*;
use std::io::Write;
use std::process::{Command, Output};

/// Runs broadcast (a leader, `workers` workers) with `extra` flags and
/// `RUST_LOG=log`; the leader's output, then each worker's.
fn broadcast(workers: usize, extra: &[&str], log: Option<&str>) -> (Output, Vec<Output>) {
    let topo = Topo::new(&[("leader", 1), ("worker", workers)]);
    let with_log = |mut command: Command| {
        match log {
            Some(filter) => command.env("RUST_LOG", filter),
            None => command.env_remove("RUST_LOG"),
        };
        command.spawn().unwrap()
    };
    let members: Vec<_> = (0..workers)
        .map(|i| with_log(command("broadcast-worker", &topo.file, Some(i), extra)))
        .collect();
    let leader = finish(
        with_log(command("broadcast-leader", &topo.file, None, extra)),
        LIMIT,
    );
    let members = members.into_iter().map(|m| finish(m, LIMIT)).collect();
    (leader, members)
}

#[test]
fn connections_are_logged_at_info_on_stderr_and_nothing_at_the_default_level() {
    let (leader, workers) = broadcast(2, &[], Some("info"));
    let said = stderr(&leader);
    assert!(leader.status.success(), "{said}");
    for line in [
        "INFO leader: starting: flow `broadcast` (hash ",
        "role `leader`",
        "INFO leader: peer worker/0 (127.0.0.1:",
        "INFO leader: peer worker/1 (127.0.0.1:",
        "INFO leader: connected to every peer it needs; running",
        "INFO leader: stopping: its inputs ended",
    ] {
        assert!(said.contains(line), "no `{line}` in:\n{said}");
    }
    let said = stderr(&workers[1]);
    assert!(
        said.contains("INFO worker/1: peer leader (127.0.0.1:"),
        "{said}"
    );
    assert!(said.contains(") connected (incarnation "), "{said}");
    // The flow's own output stays alone on stdout.
    let printed = stdout(&workers[1]);
    assert!(
        printed.lines().all(|l| l.parse::<u32>().is_ok()),
        "{printed}"
    );

    let (leader, _) = broadcast(1, &[], None);
    assert_eq!(stderr(&leader), "", "the default level logs only problems");
}

#[test]
fn a_refused_connection_is_a_warning_with_its_address_and_reason() {
    let topo = Topo::new(&[("leader", 1), ("worker", 1)]);
    let worker = start("broadcast-worker", &topo.file, Some(0), &["--log", "warn"]);
    let address = topo.address("worker", 0).to_string();
    let mut stranger = loop {
        match std::net::TcpStream::connect(&address) {
            Ok(stream) => break stream,
            Err(_) => std::thread::sleep(std::time::Duration::from_millis(20)),
        }
    };
    stranger.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
    drop(stranger);
    let leader = finish(start("broadcast-leader", &topo.file, None, &[]), LIMIT);
    assert!(leader.status.success(), "{}", stderr(&leader));
    let said = stderr(&finish(worker, LIMIT));
    let line = said
        .lines()
        .find(|l| l.contains("refused connection from 127.0.0.1:"))
        .unwrap_or_else(|| panic!("no refusal in:\n{said}"));
    assert!(
        line.contains(" WARN worker/0: refused connection"),
        "{line}"
    );
    assert!(
        line.ends_with("not a Weir peer (bad magic bytes)"),
        "{line}"
    );
}

/// `(records, frames, bytes)` of the `--stats` line starting with `prefix`.
fn figures(said: &str, prefix: &str) -> (u64, u64, u64) {
    let line = said
        .lines()
        .find(|l| l.trim_start().starts_with(prefix))
        .unwrap_or_else(|| panic!("no `{prefix}` in:\n{said}"));
    let numbers: Vec<u64> = line
        .rsplit(": ")
        .next()
        .unwrap()
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse().ok())
        .collect();
    (numbers[0], numbers[1], numbers[2])
}

#[test]
fn stats_at_exit_count_what_was_sent_and_received() {
    let (leader, workers) = broadcast(2, &["--stats"], None);
    let said = stderr(&leader);
    assert!(
        said.contains("stats of leader (flow `broadcast`) at exit"),
        "{said}"
    );
    for (i, worker) in workers.iter().enumerate() {
        let sent = figures(
            &said,
            &format!("sent channel 1 (leader → worker) to worker/{i}:"),
        );
        assert_eq!((sent.0, sent.1), (10, 1), "{said}");
        let got = figures(
            &stderr(worker),
            "received channel 1 (leader → worker) from leader:",
        );
        assert_eq!(
            got, sent,
            "worker/{i} received other figures than were sent"
        );
        assert_eq!(stdout(worker).lines().count(), 10);
    }
}

#[test]
fn a_deploy_script_says_what_it_is_doing_on_stderr() {
    let out = Command::new(deploy_script("broadcast")).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let said = stderr(&out);
    let steps: Vec<&str> = said
        .lines()
        .filter_map(|l| l.strip_prefix("weir-deploy: "))
        .collect();
    let expected = [
        "building the role binaries of `bins`",
        "built in ",
        "starting 3 instances: leader, worker/0, worker/1",
        "all 3 instances connected in ",
        "done in ",
    ];
    assert_eq!(steps.len(), expected.len(), "{said}");
    for (step, start) in steps.iter().zip(expected) {
        assert!(
            step.starts_with(start),
            "`{step}` is not `{start}...`:\n{said}"
        );
    }
    assert!(
        !stdout(&out).contains("weir-deploy"),
        "progress went to stdout"
    );
    assert!(
        !said.contains("weir: ready"),
        "the ready lines are the deployment's own"
    );
}

#[test]
fn stats_every_prints_growing_figures_while_the_flow_runs() {
    let topo = Topo::new(&[("leader", 1), ("worker", 1)]);
    let leader = Watched::start(
        "leader",
        command(
            "membership-leader",
            &topo.file,
            None,
            &["--stats-every", "0.2"],
        ),
    );
    let worker = Watched::start(
        "worker/0",
        command("membership-worker", &topo.file, Some(0), &[]),
    );
    let sent_so_far = |leader: &Watched| -> Vec<u64> {
        leader
            .stderr()
            .lines()
            .filter(|l| l.trim_start().starts_with("sent channel"))
            .map(|l| figures(l, "sent channel").0)
            .collect()
    };
    let start = std::time::Instant::now();
    while sent_so_far(&leader).len() < 3 && start.elapsed() < LIMIT {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let sent = sent_so_far(&leader);
    assert!(sent.len() >= 3, "{}", leader.stderr());
    assert!(sent.windows(2).all(|w| w[0] <= w[1]), "{sent:?}");
    assert!(
        sent.last() > sent.first(),
        "nothing more was sent: {sent:?}"
    );
    assert!(
        leader.stderr().contains(") so far, after "),
        "{}",
        leader.stderr()
    );
    for instance in [&worker, &leader] {
        instance.signal(libc::SIGTERM);
    }
    let start = std::time::Instant::now();
    while !leader.stderr().contains(") at exit, after ") && start.elapsed() < LIMIT {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(
        leader.stderr().contains(") at exit, after "),
        "{}",
        leader.stderr()
    );
}

/// On a terminal (a pty, from util-linux's `script`), the count of connected
/// instances is one line rewritten in place.
#[test]
fn on_a_terminal_the_connected_count_is_updated_in_place() {
    let script = deploy_script("broadcast");
    let out = require("script", "bsdutils")
        .args(["-q", "-e", "-c"])
        .arg(script.as_os_str())
        .arg("/dev/null")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let said = stdout(&out);
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains("\r\x1b[2Kweir-deploy: 1 of 3 instances connected"),
        "{said:?}"
    );
    assert!(
        said.contains("weir-deploy: all 3 instances connected in "),
        "{said:?}"
    );
}
