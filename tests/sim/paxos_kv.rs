//! The Paxos key-value store under the simulator: clients speaking RESP to
//! both proposers while the leader, acceptors and replicas may crash (and
//! come back on their simulated disks, torn mid-commit or not); every
//! history is linearizable, and with a majority of acceptors and one
//! proposer left, every client is answered.

use crate::simulation;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use weir_sim::{Client, Connection, Run, Sim};
use weir_tests::linearizability::{self, KvOp, KvRet, Operation};

const CLIENTS: usize = 3;
const OPS: usize = 30;
const KEYS: u64 = 2;
/// How long a client waits for an answer before it gives up on it (the
/// operation stays pending) and tries the other proposer.
const PATIENCE: Duration = Duration::from_secs(2);
/// When every instance is stopped.
const STOP: Duration = Duration::from_secs(9);
/// Each write's delay in milliseconds, unless a search asks for others.
const DELAYS: std::ops::Range<u64> = 0..5;

fn store() -> Sim {
    let mut sim = Sim::new(&simulation::paxos_kv::FLOW)
        .instances("proposer", 2)
        .instances("acceptor", 3)
        .instances("replica", 2)
        .delays(DELAYS)
        // Crashed instances stay down unless a test brings them back.
        .restarts(false)
        .fault_window(Duration::from_secs(3))
        .stop_after(STOP)
        .time_limit(Duration::from_secs(30));
    for _ in 0..CLIENTS {
        sim = sim.client(client);
    }
    sim
}

/// A client: `OPS` operations on a few keys, one at a time, paced, on its
/// proposer until that fails it, then on the other.
async fn client(client: Client) {
    operations(client, false, PATIENCE).await
}

/// A client that opens a new connection for every operation and gives up
/// on an answer after 300 ms: its connections close while their commands
/// may still be in flight (and sent again), so sessions end under them.
async fn churning_client(client: Client) {
    operations(client, true, Duration::from_millis(300)).await
}

async fn operations(client: Client, reconnect_each: bool, patience: Duration) {
    let me = client.index();
    let mut target = me % 2;
    let mut connection: Option<Connection> = None;
    let mut state = me as u64 * 7919 + 1;
    for n in 0..OPS {
        tokio::time::sleep(Duration::from_millis(50)).await;
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let key = format!("k{}", (state >> 33) % KEYS);
        let words: Vec<String> = if (state >> 40).is_multiple_of(2) {
            vec!["SET".into(), key, format!("{me}-{n}")]
        } else {
            vec!["GET".into(), key]
        };
        let conn = loop {
            if let Some(conn) = connection.as_mut() {
                break conn;
            }
            connection = client.connect(&format!("proposer/{target}"), "clients");
            if connection.is_none() {
                target = 1 - target;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        };
        client.log(format!("call {n} {}", words.join(" ")));
        let answer = tokio::time::timeout(patience, request(conn, &words)).await;
        match answer {
            Ok(Some(reply)) => {
                client.log(format!("ret {n} {reply}"));
                if reconnect_each {
                    connection = None;
                }
            }
            // Unanswered: pending for ever; the other proposer from now on.
            _ => {
                connection = None;
                target = 1 - target;
            }
        }
    }
}

/// One request and its reply (`OK`, `nil`, `value V`), or `None` if the
/// connection ended.
async fn request(conn: &mut Connection, words: &[String]) -> Option<String> {
    let mut out = format!("*{}\r\n", words.len());
    for w in words {
        out.push_str(&format!("${}\r\n{w}\r\n", w.len()));
    }
    conn.write_all(out.as_bytes()).await.ok()?;
    let line = read_line(conn).await?;
    match line.as_bytes().first()? {
        b'+' => Some(line[1..].to_string()),
        b'$' if line == "$-1" => Some("nil".into()),
        b'$' => {
            let len: usize = line[1..].parse().ok()?;
            let mut value = vec![0; len + 2];
            conn.read_exact(&mut value).await.ok()?;
            value.truncate(len);
            Some(format!("value {}", String::from_utf8(value).ok()?))
        }
        _ => panic!("unexpected reply {line:?}"),
    }
}

async fn read_line(conn: &mut Connection) -> Option<String> {
    let mut line = Vec::new();
    loop {
        let byte = conn.read_u8().await.ok()?;
        if byte == b'\n' {
            line.pop(); // '\r'
            return String::from_utf8(line).ok();
        }
        line.push(byte);
    }
}

/// The clients' operations, from their lines (times in microseconds).
fn history(run: &Run) -> Vec<Operation> {
    let mut operations: Vec<Operation> = Vec::new();
    let mut open = std::collections::BTreeMap::new();
    for line in &run.lines {
        let Some(client) = line.instance.strip_prefix("client/") else {
            continue;
        };
        let client: usize = client.parse().unwrap();
        let at = line.at.as_micros() as u64;
        let words: Vec<&str> = line.text.split(' ').collect();
        match words[..] {
            ["call", n, "SET", key, value] => {
                open.insert((client, n.to_string()), operations.len());
                operations.push(Operation {
                    client,
                    op: KvOp::Set(key.into(), value.into()),
                    call: at,
                    ret: None,
                });
            }
            ["call", n, "GET", key] => {
                open.insert((client, n.to_string()), operations.len());
                operations.push(Operation {
                    client,
                    op: KvOp::Get(key.into()),
                    call: at,
                    ret: None,
                });
            }
            ["ret", n, ref reply @ ..] => {
                let index = open.remove(&(client, n.to_string())).expect("called first");
                let ret = match reply {
                    ["OK"] => KvRet::Ok,
                    ["nil"] => KvRet::Value(None),
                    ["value", v] => KvRet::Value(Some(v.to_string())),
                    other => panic!("unexpected answer {other:?}"),
                };
                operations[index].ret = Some((at, ret));
            }
            _ => panic!("unexpected client line {:?}", line.text),
        }
    }
    operations
}

/// How many instances of `role` met `event` (`crash`, `restart`).
fn faults(run: &Run, event: &str, role: &str) -> usize {
    run.faults
        .iter()
        .filter(|f| f.contains(&format!("{event} {role}/")))
        .count()
}

/// When the last fault was over, in the history's microseconds (a link held
/// apart let go, an instance crashed or back), if a link was held apart.
fn faults_over(run: &Run) -> Option<u64> {
    fn held(what: &str) -> Option<&str> {
        Some(what.split_once(" held apart for ")?.1)
    }
    if !run.faults.iter().any(|fault| held(fault).is_some()) {
        return None;
    }
    run.faults
        .iter()
        .filter_map(|fault| {
            let (at, what) = fault.split_once(" ms: ")?;
            let lasted: u64 = match held(what) {
                Some(lasted) => lasted.strip_suffix(" ms")?.parse().ok()?,
                None => 0,
            };
            Some((at.parse::<u64>().ok()? + lasted) * 1000)
        })
        .max()
}

fn check_store(run: &Run) {
    let history = history(run);
    if let Err(violation) = linearizability::check(&history) {
        panic!("{violation}");
    }
    let crashed = |role| faults(run, "crash", role);
    let lost = |role| crashed(role).saturating_sub(faults(run, "restart", role));
    let enough_left = crashed("proposer") <= 1 && crashed("acceptor") <= 1 && lost("replica") <= 1;
    if enough_left && !delays_stretched() {
        // Still a leader to elect, a majority and a replica: everyone goes
        // on, with at most two operations lost to a crash. Links held apart
        // can keep every proposer from a majority for longer than a client
        // waits (seed 11742 of 10 000 more: three lost), but every operation
        // sent once the faults are over is answered.
        let healed = faults_over(run);
        for c in 0..CLIENTS {
            let calls = history.iter().filter(|o| o.client == c).count();
            let unanswered: Vec<&Operation> = history
                .iter()
                .filter(|o| o.client == c && o.ret.is_none())
                .collect();
            match healed {
                None => {
                    assert_eq!(calls, OPS, "client/{c} did not get through its operations");
                    assert!(
                        unanswered.len() <= 2,
                        "client/{c}: {} of {OPS} operations unanswered",
                        unanswered.len()
                    );
                }
                Some(healed) => {
                    // Not one sent just before, still waiting out its
                    // patience on a link that died, nor one sent too late
                    // to be answered before the stop.
                    let patience = PATIENCE.as_micros() as u64;
                    let due = healed + patience..(STOP.as_micros() as u64).saturating_sub(patience);
                    let late = unanswered.iter().find(|o| due.contains(&o.call));
                    assert!(
                        late.is_none(),
                        "client/{c}: {late:?} unanswered, sent after every fault was over"
                    );
                }
            }
        }
    }
}

/// Whether a search asked for longer delays than the test's own
/// (`WEIR_SIM_DELAYS`, docs/SIMULATION.md). The clients' patience and
/// number of operations fit the test's own: under longer ones they give up
/// on operations the store would answer, so only safety is judged.
fn delays_stretched() -> bool {
    std::env::var("WEIR_SIM_DELAYS")
        .ok()
        .and_then(|delays| delays.split_once("..")?.1.parse::<u64>().ok())
        .is_some_and(|end| end > DELAYS.end)
}

#[test]
fn the_store_stays_linearizable_and_live_through_leader_and_acceptor_crashes() {
    let leader_crashes = std::sync::atomic::AtomicUsize::new(0);
    let seeds = store()
        .crashes_of("proposer", 0.4)
        .crashes_of("acceptor", 0.3)
        .crashes_of("replica", 0.0)
        .seeds(0..24)
        .check(|run| {
            check_store(run);
            if run.faults.iter().any(|f| f.ends_with("crash proposer/0")) {
                leader_crashes.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        });
    assert!(
        leader_crashes.into_inner() >= crate::expected(3, 24, seeds),
        "the leader seldom crashed"
    );
}

/// Acceptors and replicas crash and come back on their disks (each keeps
/// what its ticks committed, as under `--durability sync`): the histories
/// stay linearizable, and the clients get through, also when both replicas
/// were down while slots were chosen (the leader sends those again).
#[test]
fn the_store_stays_linearizable_through_acceptors_and_replicas_crashing_and_coming_back() {
    let restarts = std::sync::atomic::AtomicUsize::new(0);
    let seeds = store()
        .restarts(true)
        .crashes_of("proposer", 0.0)
        .crashes_of("acceptor", 0.4)
        .crashes_of("replica", 0.4)
        .seeds(0..300)
        .check(|run| {
            check_store(run);
            let back = run
                .faults
                .iter()
                .filter(|f| f.contains(": restart "))
                .count();
            restarts.fetch_add(back, std::sync::atomic::Ordering::Relaxed);
        });
    assert!(
        restarts.into_inner() >= crate::expected(10, 300, seeds),
        "acceptors and replicas seldom came back"
    );
}

#[test]
fn a_store_seed_runs_the_same_twice() {
    let sim = store().crashes_of("proposer", 0.5);
    for seed in 0..3 {
        assert_eq!(
            sim.run(seed).trace_hash(),
            sim.run(seed).trace_hash(),
            "seed {seed}"
        );
    }
}

/// The store with a planted bug (set by the test below, in another process,
/// since the bug is read from the environment): proposers answer `GET`s from
/// their own clients' writes.
#[test]
#[ignore = "fails by design: run by the test below"]
fn store_with_local_reads() {
    store().seeds(0..16).check(check_store);
}

#[test]
fn the_check_catches_proposers_answering_reads_locally() {
    assert_the_check_catches("store_with_local_reads", "local-reads");
}

/// Runs the ignored test `test` with `PAXOS_KV_PLANTED_BUG=bug`, in another
/// process (the bug is read from the environment): it must fail, naming a
/// history that is not linearizable and the seed to replay.
fn assert_the_check_catches(test: &str, bug: &str) {
    let (passed, printed) = crate::run_in_another_process(
        &format!("sim::paxos_kv::{test}"),
        &[("PAXOS_KV_PLANTED_BUG", bug)],
    );
    assert!(!passed, "the planted bug {bug} passed:\n{printed}");
    assert!(
        printed.contains("is not linearizable") && printed.contains("WEIR_SIM_SEED="),
        "{printed}"
    );
}

/// Sessions end while their commands may still be in flight: three more
/// clients open a connection per operation and drop it after 300 ms without
/// an answer, while proposers crash between a command being chosen and its
/// answer and come back as a later run (ending their earlier run's
/// sessions). No
/// command is applied twice: every history is linearizable.
#[test]
fn sessions_ending_under_retries_and_proposer_restarts_never_apply_a_command_twice() {
    let mut sim = store()
        .restarts(true)
        .crashes_of("proposer", 0.6)
        .crashes_of("acceptor", 0.2)
        .crashes_of("replica", 0.2)
        .holds(0.2)
        .seeds(0..150);
    for _ in 0..CLIENTS {
        sim = sim.client(churning_client);
    }
    let restarted = std::sync::atomic::AtomicUsize::new(0);
    let seeds = sim.check(|run| {
        let history = history(run);
        if let Err(violation) = linearizability::check(&history) {
            panic!("{violation}");
        }
        let back = run
            .faults
            .iter()
            .filter(|f| f.contains(": restart proposer/"))
            .count();
        restarted.fetch_add(back, std::sync::atomic::Ordering::Relaxed);
    });
    assert!(
        restarted.into_inner() >= crate::expected(20, 150, seeds),
        "proposers seldom came back"
    );
}

/// Leader changes (proposers crash, links are held apart) while acceptors
/// crash, half the time in the middle of a commit, and come back on what
/// their disks kept.
fn store_through_acceptor_restarts() -> Sim {
    store()
        .restarts(true)
        .crashes_of("proposer", 0.5)
        .crashes_of("acceptor", 0.9)
        .crashes_of("replica", 0.0)
        .holds(0.3)
        .seeds(0..300)
}

#[test]
fn the_store_stays_linearizable_through_leader_changes_and_acceptors_torn_mid_commit() {
    let torn = std::sync::atomic::AtomicUsize::new(0);
    let seeds = store_through_acceptor_restarts().check(|run| {
        check_store(run);
        let mid_commit = run
            .faults
            .iter()
            .filter(|f| f.contains("during a commit") && f.contains("unsynced bytes"))
            .count();
        torn.fetch_add(mid_commit, std::sync::atomic::Ordering::Relaxed);
    });
    assert!(
        torn.into_inner() >= crate::expected(20, 300, seeds),
        "acceptors were seldom torn mid-commit"
    );
}

/// The store with a planted bug (set by the test below): acceptors write
/// each tick's promises and accepts a tick late, so their answers leave
/// before what they promise is on disk.
#[test]
#[ignore = "fails by design: run by the test below"]
fn store_with_acceptors_writing_late() {
    store_through_acceptor_restarts().check(check_store);
}

#[test]
fn the_check_catches_acceptors_answering_before_their_writes_are_durable() {
    assert_the_check_catches("store_with_acceptors_writing_late", "late-writes");
}
