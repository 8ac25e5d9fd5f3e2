//! Flows that outlive a failure: tolerant edges, the membership stream, late
//! starts, restarts, paused members, and deployments that let a role fail. The
//! `membership` flow (a counter every 100 ms to every live worker) and the
//! `flood` flow (as fast as the leader can) run as real processes over loopback.

use crate::support::*;
use std::time::Duration;
use weir_deploy::Deployment;

const WORKERS: usize = 3;
const SOON: Duration = Duration::from_secs(10);

/// A leader and its workers, each watched as it runs.
struct Flow {
    name: &'static str,
    topo: Topo,
    leader: Watched,
    workers: Vec<Option<Watched>>,
}

impl Flow {
    /// Starts the leader and every worker not in `absent`, all with `extra`.
    fn start(name: &'static str, absent: &[usize], extra: &[&str]) -> Flow {
        let topo = Topo::new(&[("leader", 1), ("worker", WORKERS)]);
        let leader = Watched::start(
            "leader",
            command(&format!("{name}-leader"), &topo.file, None, extra),
        );
        let mut flow = Flow {
            name,
            topo,
            leader,
            workers: Vec::new(),
        };
        for i in 0..WORKERS {
            let worker = (!absent.contains(&i)).then(|| flow.worker(i, extra));
            flow.workers.push(worker);
        }
        flow
    }

    /// Starts worker `i` with the flags every instance has.
    fn worker(&self, i: usize, extra: &[&str]) -> Watched {
        let binary = format!("{}-worker", self.name);
        Watched::start(
            &format!("worker/{i}"),
            command(&binary, &self.topo.file, Some(i), extra),
        )
    }

    fn w(&self, i: usize) -> &Watched {
        self.workers[i].as_ref().expect("worker is running")
    }

    /// Waits until every running worker has printed a `got` line.
    fn receiving(&self) {
        for w in self.workers.iter().flatten() {
            assert!(
                w.wait_for_more("got ", 0, SOON),
                "{} received nothing: {}",
                w.name,
                w.stderr()
            );
        }
    }

    /// Asserts worker `i` is still receiving: more `got` lines within a while.
    fn still_receiving(&self, i: usize) {
        let w = self.w(i);
        let before = w.count("got ");
        assert!(
            w.wait_for_more("got ", before, SOON),
            "{} stopped receiving: {}\nthe leader: {}",
            w.name,
            w.stderr(),
            self.leader.stderr()
        );
    }

    /// Asserts no instance has exited.
    fn all_running(&mut self) {
        assert!(
            self.leader.is_running(),
            "leader exited: {}",
            self.leader.stderr()
        );
        for w in self.workers.iter_mut().flatten() {
            assert!(w.is_running(), "{} exited: {}", w.name, w.stderr());
        }
    }

    /// Stops everything with SIGTERM; each must exit 0.
    fn stop(self) {
        for w in self.workers.into_iter().flatten() {
            let name = w.name.clone();
            let status = w.terminate(LIMIT);
            assert!(status.success(), "{name} exited with {status}");
        }
        let status = self.leader.terminate(LIMIT);
        assert!(status.success(), "the leader exited with {status}");
    }
}

#[test]
fn a_killed_member_is_reported_left_and_the_others_go_on() {
    let mut flow = Flow::start("membership", &[], &[]);
    flow.receiving();
    assert!(flow.leader.wait_for("member 1 joined", SOON).is_some());
    flow.workers[1].as_mut().unwrap().kill_now();
    flow.workers[1] = None;
    let took = flow
        .leader
        .wait_for("member 1 left", Duration::from_secs(5));
    assert!(
        took.is_some(),
        "no `member 1 left` within 5 s: {}",
        flow.leader.stderr()
    );
    // Its stderr is read apart from its stdout: the line may lag a little.
    assert!(
        wait_until(SOON, || flow.leader.stderr().contains("lost peer worker/1")),
        "the leader's log does not name the lost peer: {}",
        flow.leader.stderr()
    );
    flow.all_running();
    flow.still_receiving(0);
    flow.still_receiving(2);
    flow.stop();
}

#[test]
fn a_member_asked_to_stop_is_reported_left_once_as_it_begins_to_drain() {
    let mut flow = Flow::start("membership", &[], &["--connect-timeout", "1"]);
    flow.receiving();
    assert!(flow.leader.wait_for("member 1 joined", SOON).is_some());
    // Past the leader's connect timeout, with every member linked.
    std::thread::sleep(Duration::from_millis(1200));
    let mut worker = flow.workers[1].take().unwrap();
    worker.signal(libc::SIGTERM);
    // It drains for a while (the leader's channel to it stays open), but
    // said it is stopping: those that watch learn now, not when it is gone.
    assert!(
        flow.leader
            .wait_for("member 1 left", Duration::from_secs(2))
            .is_some(),
        "no `member 1 left` within 2 s of SIGTERM: {:?}",
        flow.leader.stdout()
    );
    assert!(worker.is_running(), "reported left only once it had exited");
    assert!(wait_until(SOON, || !worker.is_running()), "it never exited");
    // Not again when its link drops.
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        flow.leader.count("member 1 left"),
        1,
        "{:?}",
        flow.leader.stdout()
    );
    // Lost, not missing since start.
    assert!(
        !flow.leader.stderr().contains("no connection with worker/1"),
        "{}",
        flow.leader.stderr()
    );
    flow.all_running();
    flow.still_receiving(0);
    flow.stop();
}

#[test]
fn a_restarted_member_rejoins_as_a_new_incarnation_and_receives_again() {
    let mut flow = Flow::start("membership", &[], &[]);
    flow.receiving();
    flow.workers[1].as_mut().unwrap().kill_now();
    flow.workers[1] = None;
    assert!(flow.leader.wait_for("member 1 left", SOON).is_some());
    // Started again by hand, with the same topology, index and key.
    flow.workers[1] = Some(flow.worker(1, &[]));
    let rejoined = || flow.leader.count("member 1 joined") == 2;
    assert!(
        wait_until(SOON, rejoined),
        "no second `member 1 joined`: {:?}",
        flow.leader.stdout()
    );
    flow.receiving();
    assert!(
        flow.leader.stderr().contains("is back (incarnation"),
        "{}",
        flow.leader.stderr()
    );
    // Its state starts empty: it gets the counter from where the leader is now.
    let first: u64 = flow.w(1).stdout()[0]["got ".len()..].parse().unwrap();
    assert!(first > 0, "the restarted worker started from 0");
    flow.all_running();
    flow.stop();
}

#[tokio::test]
async fn a_connection_from_an_older_incarnation_is_refused() {
    let mut flow = Flow::start("membership", &[1, 2], &[]);
    flow.receiving();
    // A leader left over from an earlier run (incarnation 1, long before the
    // real leader's) is refused, though it holds the key.
    let stale = Peer {
        flow: "membership",
        role: "leader",
        index: 0,
        incarnation: 1,
        channels: hello_channels(flow::membership::membership, "leader", "worker"),
    };
    let key = weir_runtime::auth::Key::load(&flow.topo.key()).unwrap();
    let refused = handshake_as(flow.topo.address("worker", 0), &stale, Some(&key)).await;
    let reason = refused.expect_err("a stale incarnation was accepted");
    assert!(reason.contains("stale incarnation"), "{reason}");
    assert!(
        wait_until(SOON, || flow.w(0).stderr().contains("stale incarnation")),
        "the worker did not log the refusal: {}",
        flow.w(0).stderr()
    );
    flow.still_receiving(0);
    flow.all_running();
    flow.stop();
}

#[test]
fn a_member_started_late_joins_and_receives() {
    let mut flow = Flow::start("membership", &[1], &["--connect-timeout", "2"]);
    flow.receiving();
    // Past the connect timeout: the leader goes on without worker 1.
    std::thread::sleep(Duration::from_secs(5));
    flow.all_running();
    assert!(
        flow.leader.stderr().contains("going on without it"),
        "{}",
        flow.leader.stderr()
    );
    assert_eq!(flow.leader.count("member 1 joined"), 0);
    flow.workers[1] = Some(flow.worker(1, &["--connect-timeout", "2"]));
    assert!(flow.leader.wait_for("member 1 joined", SOON).is_some());
    flow.receiving();
    flow.all_running();
    flow.stop();
}

#[test]
fn a_paused_member_is_reported_left_then_rejoins_when_it_resumes() {
    let mut flow = Flow::start("membership", &[], &[]);
    flow.receiving();
    flow.w(2).signal(libc::SIGSTOP);
    // The peer timeout is 2 s by default.
    let took = flow
        .leader
        .wait_for("member 2 left", Duration::from_secs(6));
    assert!(
        took.is_some(),
        "a paused member was not reported: {}",
        flow.leader.stderr()
    );
    flow.still_receiving(0);
    flow.w(2).signal(libc::SIGCONT);
    let before = flow.w(2).count("got ");
    assert!(
        wait_until(SOON, || flow.leader.count("member 2 joined") == 2),
        "the resumed member did not rejoin: {}",
        flow.leader.stderr()
    );
    assert!(flow.w(2).wait_for_more("got ", before, SOON));
    flow.all_running();
    flow.stop();
}

#[test]
fn a_member_that_stops_reading_stalls_no_one_and_bounds_the_senders_memory() {
    // A long peer timeout: the bounded queue, not liveness, must save the rest.
    let mut flow = Flow::start("flood", &[], &["--peer-timeout", "60"]);
    flow.receiving();
    flow.w(2).signal(libc::SIGSTOP);
    std::thread::sleep(Duration::from_secs(1));
    for _ in 0..3 {
        flow.still_receiving(0);
        flow.still_receiving(1);
    }
    assert!(
        flow.leader.stderr().contains("peer worker/2")
            && flow.leader.stderr().contains("dropping records to it"),
        "{}",
        flow.leader.stderr()
    );
    let peak = flow.leader.peak_rss_kib();
    assert!(peak < 64 * 1024, "the leader's peak RSS grew to {peak} KiB");
    flow.w(2).signal(libc::SIGCONT);
    flow.still_receiving(2);
    flow.all_running();
    flow.stop();
}

#[test]
fn a_worker_whose_only_sender_dies_says_so_and_takes_it_back() {
    let mut flow = Flow::start("membership", &[], &[]);
    flow.receiving();
    flow.leader.kill_now();
    for i in 0..WORKERS {
        assert!(
            wait_until(SOON, || flow.w(i).stderr().contains("lost peer leader")),
            "worker/{i} did not log the loss of its only sender: {}",
            flow.w(i).stderr()
        );
    }
    // No panic, no exit: each waits for its sender to come back.
    for w in flow.workers.iter_mut().flatten() {
        assert!(w.is_running(), "{} exited: {}", w.name, w.stderr());
    }
    flow.leader = Watched::start(
        "leader",
        command("membership-leader", &flow.topo.file, None, &[]),
    );
    for i in 0..WORKERS {
        let before = flow.w(i).count("got ");
        assert!(
            flow.w(i).wait_for_more("got ", before, SOON),
            "worker/{i} got nothing from the new leader"
        );
    }
    flow.stop();
}

/// Restarts worker `i` with `extra` (killed: a stopped worker waits out its
/// sender's grace before it exits, and the test has six to restart).
fn restart_worker(flow: &mut Flow, i: usize, extra: &[&str]) {
    flow.workers[i]
        .as_mut()
        .expect("worker is running")
        .kill_now();
    flow.workers[i] = Some(flow.worker(i, extra));
    flow.still_receiving(i);
}

#[tokio::test]
async fn the_key_is_rotated_one_instance_at_a_time_without_a_stop() {
    let mut flow = Flow::start("membership", &[], &[]);
    flow.receiving();
    let old = flow.topo.key();
    let new = old.with_file_name("next.key");
    weir_runtime::auth::Key::generate(&new).unwrap();
    let (old, new) = (old.display().to_string(), new.display().to_string());
    let restart_leader = |flow: &mut Flow, extra: &[&str]| {
        // Killed, not stopped: a leader told to stop closes its stream, and
        // the workers, their only input ended, would stop too.
        flow.leader.kill_now();
        flow.leader = Watched::start(
            "leader",
            command("membership-leader", &flow.topo.file, None, extra),
        );
        for i in 0..WORKERS {
            flow.still_receiving(i);
        }
    };
    // 1. Each instance in turn gets the new key and still accepts the old one.
    let both = ["--key-file", &new, "--previous-key-file", &old];
    for i in 0..WORKERS {
        restart_worker(&mut flow, i, &both);
    }
    restart_leader(&mut flow, &both);
    // 2. Each in turn drops the old key.
    let only_new = ["--key-file", &new];
    for i in 0..WORKERS {
        restart_worker(&mut flow, i, &only_new);
    }
    restart_leader(&mut flow, &only_new);
    flow.all_running();
    // The old key now opens no link.
    let leader = Peer {
        flow: "membership",
        role: "leader",
        index: 0,
        incarnation: u64::MAX,
        channels: hello_channels(flow::membership::membership, "leader", "worker"),
    };
    let old_key = weir_runtime::auth::Key::load(std::path::Path::new(&old)).unwrap();
    let refused = handshake_as(flow.topo.address("worker", 0), &leader, Some(&old_key)).await;
    let reason = refused.expect_err("a peer holding only the old key was let in");
    assert!(reason.contains("authentication failed"), "{reason}");
    flow.still_receiving(0);
    flow.stop();
}

#[tokio::test]
async fn a_deployment_lets_a_role_fail_and_restarts_an_instance_by_name() {
    let mut running = Deployment::new()
        .process("leader", bin("membership-leader"))
        .cluster("worker", bin("membership-worker"), WORKERS)
        .may_fail("worker")
        .capture_output()
        .timeout(Duration::from_secs(120))
        .start()
        .await
        .unwrap();
    let mut seen = Vec::new();
    let mut until = async |running: &mut weir_deploy::RunningDeployment, wanted: &str| {
        let found = tokio::time::timeout(SOON, async {
            while let Some(line) = running.next_line().await {
                let hit = line.starts_with(wanted);
                seen.push(line);
                if hit {
                    return true;
                }
            }
            false
        })
        .await;
        assert_eq!(found, Ok(true), "no line `{wanted}...` in {seen:?}");
    };
    until(&mut running, "[worker/1] got ").await;
    running.kill("worker/1").await.unwrap();
    until(&mut running, "[leader] member 1 left").await;
    assert!(running.is_running("leader") && running.is_running("worker/0"));
    running.restart("worker/1").unwrap();
    until(&mut running, "[leader] member 1 joined").await;
    until(&mut running, "[worker/1] got ").await;
    let err = running.restart("worker/9").unwrap_err().to_string();
    assert!(err.contains("no instance named `worker/9`"), "{err}");
    running.stop();
    running.wait().await.unwrap();
}

#[tokio::test]
async fn without_may_fail_a_killed_instance_still_fails_the_deployment() {
    let mut running = Deployment::new()
        .process("leader", bin("membership-leader"))
        .cluster("worker", bin("membership-worker"), 2)
        .capture_output()
        .start()
        .await
        .unwrap();
    while let Some(line) = running.next_line().await {
        if line.starts_with("[worker/1] got ") {
            break;
        }
    }
    running.kill("worker/1").await.unwrap();
    let err = running.wait().await.unwrap_err().to_string();
    assert!(err.starts_with("worker/1 failed"), "{err}");
    assert!(err.contains("the other instances were stopped"), "{err}");
}

/// Polls `done` until it holds or `limit` passes.
fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let start = std::time::Instant::now();
    while start.elapsed() < limit {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}
