//! The Multi-Paxos key-value store (`flow/src/paxos_kv`): real role binaries
//! over loopback, used by stock Redis clients (`redis-cli`, `redis-benchmark`)
//! and by a small RESP client here that records what was acknowledged while
//! instances are killed.

use crate::support::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use weir_deploy::{Deployment, RunningDeployment};
use weir_tests::linearizability;

const SOON: Duration = Duration::from_secs(20);
/// How long the first write after the store starts may take: an election,
/// which on an overloaded machine (every test at once) can take a while.
const STARTED: Duration = Duration::from_secs(60);

/// A stock Redis client (Debian's redis-tools).
fn redis_tool(tool: &str) -> Command {
    require(tool, "redis-tools")
}

/// `redis-cli -p PORT args...`: its output, trimmed.
fn redis_cli(address: &str, args: &[&str]) -> String {
    let port = address.rsplit(':').next().unwrap();
    let out = redis_tool("redis-cli")
        .args(["-h", "127.0.0.1", "-p", port])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "redis-cli {args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A RESP reply, as far as the store uses them.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Resp {
    Simple(String),
    Error(String),
    Integer(i64),
    Bulk(Option<Vec<u8>>),
}

/// A blocking RESP client with a timeout per reply.
struct Client {
    writer: TcpStream,
    reader: BufReader<TcpStream>,
}

impl Client {
    fn connect(address: &str) -> std::io::Result<Client> {
        let stream = TcpStream::connect(address)?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        stream.set_nodelay(true)?;
        Ok(Client {
            reader: BufReader::new(stream.try_clone()?),
            writer: stream,
        })
    }

    fn send(&mut self, args: &[&[u8]]) -> std::io::Result<()> {
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for arg in args {
            out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
            out.extend_from_slice(arg);
            out.extend_from_slice(b"\r\n");
        }
        self.writer.write_all(&out)
    }

    fn reply(&mut self) -> std::io::Result<Resp> {
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let line = line.trim_end();
        let bad = || std::io::Error::other(format!("not RESP: {line:?}"));
        let (kind, rest) = line.split_at(1.min(line.len()));
        Ok(match kind {
            "+" => Resp::Simple(rest.into()),
            "-" => Resp::Error(rest.into()),
            ":" => Resp::Integer(rest.parse().map_err(|_| bad())?),
            "$" if rest == "-1" => Resp::Bulk(None),
            "$" => {
                let len: usize = rest.parse().map_err(|_| bad())?;
                let mut value = vec![0; len + 2];
                self.reader.read_exact(&mut value)?;
                value.truncate(len);
                Resp::Bulk(Some(value))
            }
            _ => return Err(bad()),
        })
    }

    fn call(&mut self, args: &[&str]) -> std::io::Result<Resp> {
        let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        self.send(&args)?;
        self.reply()
    }
}

/// A fresh state root for the store run by hand.
fn state_dir() -> tempfile::TempDir {
    scratch("paxos")
}

/// The store (f = 1) as a local deployment, its output captured.
fn store() -> Deployment {
    store_of(|role| bin(&format!("paxos_kv-{role}"))).timeout(Duration::from_secs(300))
}

/// The store, every role allowed to fail.
async fn deploy() -> RunningDeployment {
    store()
        .may_fail("proposer")
        .may_fail("acceptor")
        .may_fail("replica")
        .start()
        .await
        .unwrap()
}

/// Runs `work` (a blocking client) off the test's runtime, and waits for it.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(work).await.unwrap()
}

/// Waits for a captured line starting with `prefix`.
async fn line_starting(running: &mut RunningDeployment, prefix: &str) -> String {
    let found = tokio::time::timeout(SOON, async {
        while let Some(line) = running.next_line().await {
            if line.starts_with(prefix) {
                return Some(line);
            }
        }
        None
    })
    .await;
    match found {
        Ok(Some(line)) => line,
        _ => panic!("no line starting with {prefix:?} within {SOON:?}"),
    }
}

/// SETs `value` until it is acknowledged (retrying a connection that broke).
fn set_until_ok(address: &str, key: &str, value: &str, limit: Duration) -> Duration {
    let start = Instant::now();
    let mut last = String::new();
    while start.elapsed() < limit {
        match Client::connect(address).map(|mut c| c.call(&["SET", key, value])) {
            Ok(Ok(Resp::Simple(ok))) if ok == "OK" => return start.elapsed(),
            other => last = format!("{other:?}"),
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("SET {key} was not acknowledged within {limit:?} (last: {last})");
}

/// Clients writing distinct keys as fast as they are answered, each
/// recording what was acknowledged and when.
struct Load {
    stop: Arc<AtomicBool>,
    acked: Acked,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Load {
    fn start(addresses: &[String], per_address: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let acked = Arc::new(Mutex::new(Vec::new()));
        let mut threads = Vec::new();
        for (a, address) in addresses.iter().enumerate() {
            for c in 0..per_address {
                let (stop, acked, address) = (stop.clone(), acked.clone(), address.clone());
                threads.push(std::thread::spawn(move || {
                    let mut n = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        let Ok(mut client) = Client::connect(&address) else {
                            std::thread::sleep(Duration::from_millis(50));
                            continue;
                        };
                        // Until the connection breaks (its proposer died) or
                        // an answer is slower than the client's timeout.
                        while !stop.load(Ordering::Relaxed) {
                            let (key, value) = (format!("load-{a}-{c}-{n}"), n.to_string());
                            n += 1;
                            match client.call(&["SET", &key, &value]) {
                                Ok(Resp::Simple(ok)) if ok == "OK" => {
                                    acked.lock().unwrap().push((key, value, Instant::now()))
                                }
                                Ok(other) => panic!("SET {key} answered {other:?}"),
                                Err(_) => break,
                            }
                        }
                    }
                }));
            }
        }
        Load {
            stop,
            acked,
            threads,
        }
    }

    fn finish(self) -> Vec<(String, String, Instant)> {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            t.join().expect("a load client panicked");
        }
        Arc::try_unwrap(self.acked).unwrap().into_inner().unwrap()
    }
}

/// Every acknowledged write reads back with its value.
fn read_back(address: &str, acked: &[(String, String, Instant)]) {
    let mut client = Client::connect(address).unwrap();
    for chunk in acked.chunks(256) {
        // Pipelined: every GET of the chunk, then every answer.
        for (key, _, _) in chunk {
            client.send(&[b"GET", key.as_bytes()]).unwrap();
        }
        for (key, value, _) in chunk {
            let got = client
                .reply()
                .unwrap_or_else(|e| panic!("GET {key} was not answered: {e}"));
            assert_eq!(
                got,
                Resp::Bulk(Some(value.clone().into_bytes())),
                "acknowledged SET {key} {value} does not read back"
            );
        }
    }
}

/// Acknowledgements recorded by a [`Load`], with when each came.
type Acked = Arc<Mutex<Vec<(String, String, Instant)>>>;

/// How long after `since` the first write was acknowledged, waiting up to `limit`.
fn acks_resume(acked: &Acked, since: Instant, limit: Duration) -> Option<Duration> {
    loop {
        let first = acked
            .lock()
            .unwrap()
            .iter()
            .map(|(_, _, t)| *t)
            .filter(|t| *t > since)
            .min();
        if let Some(first) = first {
            return Some(first - since);
        }
        if since.elapsed() > limit {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn run_by_hand_from_the_contract_topology_redis_cli_works_through_either_proposer() {
    let port = |_| format!("127.0.0.1:{}", free_port());
    let proposers: Vec<String> = (0..2).map(port).collect();
    let clients: Vec<String> = (0..2).map(port).collect();
    let acceptors: Vec<String> = (0..3).map(port).collect();
    let replicas: Vec<String> = (0..2).map(port).collect();
    let text = format!(
        "[proposer]\naddresses = [{}]\nclients = [{}]\n[acceptor]\naddresses = [{}]\n[replica]\naddresses = [{}]\n",
        toml_list(&proposers),
        toml_list(&clients),
        toml_list(&acceptors),
        toml_list(&replicas)
    );
    let topo = Topo::from_text(&text, Vec::new());
    let state = state_dir();
    // Any start order: replicas first, proposers last.
    let mut instances = Vec::new();
    for (role, n) in [("replica", 2), ("acceptor", 3), ("proposer", 2)] {
        for i in 0..n {
            let binary = format!("paxos_kv-{role}");
            let mut command = command(&binary, &topo.file, Some(i), &[]);
            command.env("WEIR_STATE_DIR", state.path());
            command.env("WEIR_DURABILITY", "flush");
            instances.push(Watched::start(&format!("{role}/{i}"), command));
        }
    }
    set_until_ok(&clients[0], "greeting", "hello", STARTED);
    assert_eq!(redis_cli(&clients[1], &["GET", "greeting"]), "hello");
    assert_eq!(
        redis_cli(&clients[1], &["SET", "greeting", "hi there"]),
        "OK"
    );
    assert_eq!(redis_cli(&clients[0], &["GET", "greeting"]), "hi there");
    assert_eq!(redis_cli(&clients[0], &["PING"]), "PONG");
    assert_eq!(redis_cli(&clients[0], &["DEL", "greeting", "absent"]), "1");
    assert_eq!(redis_cli(&clients[1], &["GET", "greeting"]), "");
    let unknown = redis_cli(&clients[0], &["FLUSHALL"]);
    assert!(unknown.contains("unknown command 'FLUSHALL'"), "{unknown}");

    // Pipelined: redis-benchmark keeps 16 requests in flight per connection.
    redis_benchmark_completes(&clients[1], &[]);
    // redis-benchmark's key (a 3-byte value by default), written through
    // proposer 1, read through proposer 0.
    let value = redis_cli(&clients[0], &["GET", "key:__rand_int__"]);
    assert_eq!(value.len(), 3, "redis-benchmark's value: {value:?}");

    // A pipelined batch from one connection is answered in order.
    let mut client = Client::connect(&clients[0]).unwrap();
    for n in 0..100 {
        client
            .send(&[b"SET", b"counter", n.to_string().as_bytes()])
            .unwrap();
        client.send(&[b"GET", b"counter"]).unwrap();
    }
    for n in 0..100 {
        assert_eq!(client.reply().unwrap(), Resp::Simple("OK".into()));
        assert_eq!(
            client.reply().unwrap(),
            Resp::Bulk(Some(n.to_string().into_bytes()))
        );
    }
    drop(instances);
}

/// Runs `redis-benchmark` (SET and GET, 16 requests in flight on each of 4
/// connections) against `address` with `extra` arguments, and asserts both
/// runs finished.
fn redis_benchmark_completes(address: &str, extra: &[&str]) {
    let port = address.rsplit(':').next().unwrap();
    let out = redis_tool("redis-benchmark")
        .args(["-h", "127.0.0.1", "-p", port])
        .args(extra)
        .args(["-t", "set,get", "-c", "4", "-n", "2000", "-P", "16", "-q"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).replace('\r', "\n");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}{err}");
    for test in ["SET", "GET"] {
        assert!(
            text.lines()
                .any(|l| l.starts_with(&format!("{test}: ")) && l.contains("requests per second")),
            "redis-benchmark finished no {test} run: {text}{err}"
        );
    }
}

/// `redis-cli --tls` against `address`, trusting `ca`: what it printed,
/// trimmed (refusals come on stdout or stderr).
fn redis_cli_tls(address: &str, ca: &Path, args: &[&str]) -> String {
    let ca = ca.display().to_string();
    let tls = ["--no-auth-warning", "--tls", "--cacert", &ca];
    redis_cli_within(address, &[&tls[..], args].concat())
}

#[tokio::test]
async fn tls_clients_that_authenticate_are_served_and_no_other_is() {
    let scratch = scratch("paxos-tls");
    let dir = scratch.path();
    let certificates = weir_deploy::client_certificates(dir, &["localhost", "127.0.0.1"]).unwrap();
    let password = dir.join("password");
    std::fs::write(&password, "correct horse\n").unwrap();
    let mut running = store()
        .env("PAXOS_KV_PASSWORD_FILE", password.display().to_string())
        .client_tls(&certificates)
        .start()
        .await
        .unwrap();
    running.ready().await.unwrap();
    let clients = running.endpoint("proposer", "clients");
    let ca = &certificates.ca;
    let auth = ["-a", "correct horse"];
    let start = Instant::now();
    while redis_cli_tls(
        &clients[0],
        ca,
        &[&auth[..], &["SET", "k", "over tls"]].concat(),
    ) != "OK"
    {
        assert!(
            start.elapsed() < STARTED,
            "SET over TLS was never acknowledged"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        redis_cli_tls(&clients[1], ca, &[&auth[..], &["GET", "k"]].concat()),
        "over tls"
    );
    // Without AUTH, or with a wrong password: refused as Redis refuses.
    assert_eq!(
        redis_cli_tls(&clients[1], ca, &["GET", "k"]),
        "NOAUTH Authentication required."
    );
    let wrong = redis_cli_tls(&clients[1], ca, &["-a", "battery staple", "GET", "k"]);
    assert!(wrong.contains("WRONGPASS"), "{wrong}");
    // In clear, nothing is served.
    let plain = redis_cli_within(&clients[0], &["GET", "k"]);
    assert!(!plain.contains("over tls"), "{plain}");
    // redis-benchmark over TLS, with AUTH and 16 requests in flight.
    let ca_path = ca.display().to_string();
    let tls = ["--tls", "--cacert", &ca_path, "-a", "correct horse"];
    redis_benchmark_completes(&clients[1], &tls);
    let value = redis_cli_tls(
        &clients[0],
        ca,
        &[&auth[..], &["GET", "key:__rand_int__"]].concat(),
    );
    assert_eq!(value.len(), 3, "redis-benchmark's value: {value:?}");
    running.stop();
    running.wait().await.unwrap();
}

#[tokio::test]
async fn bad_client_input_closes_only_that_connection() {
    let mut running = deploy().await;
    let address = running.endpoint("proposer", "clients")[0].clone();
    let check = address.clone();
    tokio::task::spawn_blocking(move || set_until_ok(&check, "kept", "yes", STARTED))
        .await
        .unwrap();
    let garbage = address.clone();
    let outcome = tokio::task::spawn_blocking(move || {
        let mut bad = Client::connect(&garbage).unwrap();
        let mut good = Client::connect(&garbage).unwrap();
        bad.writer
            .write_all(b"*2\r\n$3\r\nGET\r\n+oops\r\n")
            .unwrap();
        let mut rest = Vec::new();
        let closed = bad.reader.read_to_end(&mut rest).map(|_| rest.is_empty());
        let still = good.call(&["GET", "kept"]).unwrap();
        (closed, still)
    })
    .await
    .unwrap();
    assert!(
        matches!(outcome.0, Ok(true)),
        "the bad client's connection is closed: {:?}",
        outcome.0
    );
    assert_eq!(
        outcome.1,
        Resp::Bulk(Some(b"yes".to_vec())),
        "another client is unaffected"
    );
    let logged = line_starting(
        &mut running,
        "[proposer/0] warning: `clients` on proposer/0: closing client",
    )
    .await;
    assert!(
        logged.contains("bad input: expected a bulk string"),
        "{logged}"
    );
    running.stop();
    running.wait().await.unwrap();
}

#[tokio::test]
async fn killing_the_leader_under_load_loses_no_acknowledged_write() {
    let mut running = deploy().await;
    let clients = running.endpoint("proposer", "clients").to_vec();
    line_starting(&mut running, "[proposer/0] leading").await;
    let load = Load::start(&clients, 3);
    let acked = load.acked.clone();
    let warm = Instant::now();
    let warmed = tokio::task::spawn_blocking(move || acks_resume(&acked, warm, SOON));
    assert!(
        warmed.await.unwrap().is_some(),
        "no write acknowledged before the kill"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;

    running.kill("proposer/0").await.unwrap();
    let killed = Instant::now();
    let acked = load.acked.clone();
    let resumed =
        tokio::task::spawn_blocking(move || acks_resume(&acked, killed, Duration::from_secs(15)))
            .await
            .unwrap();
    let resumed = resumed.expect("no write acknowledged within 15 s of killing the leader");
    assert!(
        resumed < Duration::from_secs(5),
        "acknowledgements resumed only after {resumed:?}"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    line_starting(&mut running, "[proposer/1] leading").await;
    let acked = tokio::task::spawn_blocking(move || load.finish())
        .await
        .unwrap();
    assert!(acked
        .iter()
        .any(|(_, _, t)| *t > killed + Duration::from_millis(500)));
    let survivor = clients[1].clone();
    tokio::task::spawn_blocking(move || read_back(&survivor, &acked))
        .await
        .unwrap();
    running.stop();
    running.wait().await.unwrap();
}

#[tokio::test]
async fn one_acceptor_down_the_store_goes_on_two_down_it_stops_until_one_is_back() {
    let mut running = deploy().await;
    let clients = running.endpoint("proposer", "clients").to_vec();
    let address = clients[0].clone();
    let first = address.clone();
    tokio::task::spawn_blocking(move || set_until_ok(&first, "before", "1", STARTED))
        .await
        .unwrap();

    running.kill("acceptor/2").await.unwrap();
    let one_down = address.clone();
    let took = tokio::task::spawn_blocking(move || set_until_ok(&one_down, "one-down", "2", SOON))
        .await
        .unwrap();
    assert!(
        took < Duration::from_secs(5),
        "with one acceptor down, a SET took {took:?}"
    );

    running.kill("acceptor/1").await.unwrap();
    let two_down = address.clone();
    let (client, stalled) = tokio::task::spawn_blocking(move || {
        let mut client = Client::connect(&two_down).unwrap();
        client
            .writer
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        client.send(&[b"SET", b"two-down", b"3"]).unwrap();
        let answer = client.reply();
        (client, answer)
    })
    .await
    .unwrap();
    assert!(
        stalled.is_err(),
        "with two of three acceptors down, a SET was answered: {stalled:?}"
    );

    // It comes back with what it promised and accepted: its state file.
    running.restart("acceptor/1").unwrap();
    let recovered = line_starting(&mut running, "[acceptor/1] acceptor state read back from").await;
    assert!(recovered.contains("slots accepted"), "{recovered}");
    let resumed = tokio::task::spawn_blocking(move || {
        let mut client = client;
        client.writer.set_read_timeout(Some(SOON)).unwrap();
        client.reply()
    })
    .await
    .unwrap();
    assert_eq!(
        resumed.unwrap(),
        Resp::Simple("OK".into()),
        "the stalled SET completes once a majority is back"
    );
    let check = address.clone();
    let values = tokio::task::spawn_blocking(move || {
        let mut c = Client::connect(&check).unwrap();
        ["before", "one-down", "two-down"].map(|k| c.call(&["GET", k]).unwrap())
    })
    .await
    .unwrap();
    assert_eq!(
        values,
        [b"1", b"2", b"3"].map(|v| Resp::Bulk(Some(v.to_vec()))),
        "every acknowledged write reads back"
    );
    running.stop();
    running.wait().await.unwrap();
}

/// Every instance of the store killed (SIGKILL) and started again on its
/// state directory: every acknowledged write reads back. Then a replica
/// started on an empty directory catches up, and alone answers every read.
#[tokio::test]
async fn the_whole_store_killed_and_restarted_on_its_state_loses_no_acknowledged_write() {
    let state = state_dir();
    let root = state.path().to_path_buf();
    let mut running = store()
        .state_dirs(&root)
        .may_fail("proposer")
        .may_fail("acceptor")
        .may_fail("replica")
        .start()
        .await
        .unwrap();
    let address = running.endpoint("proposer", "clients")[0].clone();
    let first = address.clone();
    let acked = blocking(move || {
        set_until_ok(&first, "d:0", "v0", STARTED);
        let mut client = Client::connect(&first).unwrap();
        let mut acked = vec![("d:0".to_string(), "v0".to_string(), Instant::now())];
        // Past a checkpoint: the acceptors forget the first slots, which
        // then live only in the replicas' state.
        for i in 1..=1500 {
            let (key, value) = (format!("d:{i}"), format!("v{i}"));
            let answer = client.call(&["SET", &key, &value]).unwrap();
            assert_eq!(answer, Resp::Simple("OK".into()), "SET {key}");
            acked.push((key, value, Instant::now()));
        }
        acked
    })
    .await;
    let all = [
        "proposer/0",
        "proposer/1",
        "acceptor/0",
        "acceptor/1",
        "acceptor/2",
        "replica/0",
        "replica/1",
    ];
    for name in all {
        running.kill(name).await.unwrap();
    }
    for name in all {
        running.restart(name).unwrap();
    }
    let check = address.clone();
    let acked = blocking(move || {
        set_until_ok(&check, "after", "restart", STARTED);
        read_back(&check, &acked);
        acked
    })
    .await;

    running.kill("replica/1").await.unwrap();
    std::fs::remove_dir_all(root.join("replica-1")).unwrap();
    running.restart("replica/1").unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    running.kill("replica/0").await.unwrap();
    blocking(move || read_back(&address, &acked)).await;
    running.stop();
    running.wait().await.unwrap();
}

/// A restarted replica has missed what was chosen while it was down: it
/// takes the other's state, under load or on an idle store, and then serves
/// alone. Replica 0 is restarted under load; then, with no load, replica 1;
/// then replica 0 is killed, and every acknowledged write reads back.
#[tokio::test]
async fn a_restarted_replica_catches_up_from_the_other_and_then_serves_alone() {
    let mut running = deploy().await;
    let addresses = running.endpoint("proposer", "clients").to_vec();
    let first = addresses[0].clone();
    blocking(move || set_until_ok(&first, "before", "0", STARTED)).await;
    let load = Load::start(&addresses, 2);
    tokio::time::sleep(Duration::from_secs(2)).await;
    running.kill("replica/0").await.unwrap();
    running.restart("replica/0").unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut acked = load.finish();
    acked.push(("before".into(), "0".into(), Instant::now()));
    running.kill("replica/1").await.unwrap();
    running.restart("replica/1").unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    running.kill("replica/0").await.unwrap();
    let address = addresses[0].clone();
    blocking(move || read_back(&address, &acked)).await;
    running.stop();
    running.wait().await.unwrap();
}

#[tokio::test]
async fn with_one_replica_down_every_write_is_still_answered_by_the_other() {
    let mut running = deploy().await;
    let address = running.endpoint("proposer", "clients")[0].clone();
    let first = address.clone();
    tokio::task::spawn_blocking(move || set_until_ok(&first, "before", "0", STARTED))
        .await
        .unwrap();

    // One replica answers each slot; with replica 1 gone, its slots' answers
    // must come from replica 0 (after the proposer's retry).
    running.kill("replica/1").await.unwrap();
    let writes = address.clone();
    let slowest = tokio::task::spawn_blocking(move || {
        (0..8)
            .map(|n| set_until_ok(&writes, &format!("down-{n}"), &n.to_string(), SOON))
            .max()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        slowest < Duration::from_secs(5),
        "with one replica down, a SET took {slowest:?}"
    );
    let check = address.clone();
    tokio::task::spawn_blocking(move || {
        let mut c = Client::connect(&check).unwrap();
        for n in 0..8 {
            assert_eq!(
                c.call(&["GET", &format!("down-{n}")]).unwrap(),
                Resp::Bulk(Some(n.to_string().into_bytes())),
                "down-{n} does not read back"
            );
        }
    })
    .await
    .unwrap();
    running.stop();
    running.wait().await.unwrap();
}

/// Concurrent clients on both proposers running random `SET`/`GET`/`DEL` on a
/// few keys, each operation recorded with its call and return times; with
/// `kill_leader`, the leader is killed a second in (its clients' last
/// operations stay pending, and they go on through the other proposer).
async fn record_history(
    running: &mut RunningDeployment,
    run_for: Duration,
    kill_leader: bool,
) -> Vec<linearizability::Operation> {
    let clients = Clients::start(running, run_for).await;
    if kill_leader {
        tokio::time::sleep(Duration::from_secs(1)).await;
        running.kill("proposer/0").await.unwrap();
    }
    let history = clients.finish().await;
    running.stop();
    history
}

/// Six clients on both proposers, each recording every operation it makes
/// (and when it was answered, if it was) until `run_for` has passed.
struct Clients {
    threads: Vec<std::thread::JoinHandle<()>>,
    history: Arc<Mutex<Vec<linearizability::Operation>>>,
    /// When they started: the history's times count from it.
    start: Instant,
    /// Set: they stop before `run_for` has passed.
    stop: Arc<AtomicBool>,
}

impl Clients {
    async fn start(running: &mut RunningDeployment, run_for: Duration) -> Clients {
        use linearizability::{KvOp, KvRet, Operation};
        let clients = running.endpoint("proposer", "clients").to_vec();
        line_starting(running, "[proposer/0] leading").await;
        let start = Instant::now();
        let history = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        for id in 0..6 {
            let (history, clients, stop) = (history.clone(), clients.clone(), stop.clone());
            threads.push(std::thread::spawn(move || {
                // A small generator of its own: deterministic per client.
                let mut seed = 0x9e37_79b9_7f4a_7c15u64 ^ (id as u64) << 32;
                let mut random = move |n: u64| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    seed % n
                };
                let mut address = id % 2;
                let mut client = None;
                let mut n = 0;
                while start.elapsed() < run_for && !stop.load(Ordering::Relaxed) {
                    let Some(c) = client.as_mut() else {
                        client = Client::connect(&clients[address]).ok();
                        address = (address + 1) % 2;
                        if client.is_none() {
                            std::thread::sleep(Duration::from_millis(20));
                        }
                        continue;
                    };
                    let key = ["x", "y", "z"][random(3) as usize].to_string();
                    let op = match random(10) {
                        0..4 => KvOp::Set(key, format!("{id}-{n}")),
                        4..9 => KvOp::Get(key),
                        _ => KvOp::Del(key),
                    };
                    n += 1;
                    let call = start.elapsed().as_nanos() as u64;
                    let answer = match &op {
                        KvOp::Set(k, v) => c.call(&["SET", k, v]),
                        KvOp::Get(k) => c.call(&["GET", k]),
                        KvOp::Del(k) => c.call(&["DEL", k]),
                    };
                    let ret = match answer {
                        Ok(Resp::Simple(ok)) if ok == "OK" => Some(KvRet::Ok),
                        Ok(Resp::Bulk(v)) => {
                            Some(KvRet::Value(v.map(|v| String::from_utf8(v).unwrap())))
                        }
                        Ok(Resp::Integer(n)) => Some(KvRet::Deleted(n)),
                        Ok(other) => panic!("{op:?} answered {other:?}"),
                        Err(_) => {
                            // No answer: pending for ever; go on over a new connection.
                            client = None;
                            None
                        }
                    };
                    let ret = ret.map(|r| (start.elapsed().as_nanos() as u64, r));
                    history.lock().unwrap().push(Operation {
                        client: id,
                        op,
                        call,
                        ret,
                    });
                }
            }));
        }
        Clients {
            threads,
            history,
            start,
            stop,
        }
    }

    /// Waits for every client to finish; the history.
    async fn finish(self) -> Vec<linearizability::Operation> {
        let Clients {
            threads, history, ..
        } = self;
        tokio::task::spawn_blocking(move || {
            for t in threads {
                t.join().expect("a client panicked");
            }
            Arc::try_unwrap(history).unwrap().into_inner().unwrap()
        })
        .await
        .unwrap()
    }
}

#[tokio::test]
async fn concurrent_clients_histories_are_linearizable_across_a_leader_kill() {
    let mut running = deploy().await;
    let history = record_history(&mut running, Duration::from_secs(4), true).await;
    running.wait().await.unwrap();
    let answered = history.iter().filter(|o| o.ret.is_some()).count();
    let reads = history
        .iter()
        .filter(|o| matches!(o.ret, Some((_, linearizability::KvRet::Value(Some(_))))))
        .count();
    assert!(
        answered > 200 && reads > 50,
        "too little happened to check: {answered} answered, {reads} reads of a value"
    );
    if let Err(violation) = linearizability::check(&history) {
        panic!("{violation}");
    }
}

#[tokio::test]
async fn the_check_catches_a_planted_bug_proposers_answering_reads_locally() {
    let mut running = store()
        .env("PAXOS_KV_PLANTED_BUG", "local-reads")
        .start()
        .await
        .unwrap();
    let history = record_history(&mut running, Duration::from_secs(2), false).await;
    running.wait().await.unwrap();
    let violation = linearizability::check(&history).expect_err("the planted bug goes unnoticed");
    assert!(violation.to_string().contains("not linearizable"));
}

#[tokio::test]
async fn clients_beyond_max_clients_are_refused_and_the_others_served() {
    let mut running = store().arg("--max-clients").arg("2").start().await.unwrap();
    let address = running.endpoint("proposer", "clients")[0].clone();
    let (first, second, third) = tokio::task::spawn_blocking(move || {
        set_until_ok(&address, "k", "v", STARTED);
        let mut first = Client::connect(&address).unwrap();
        let mut second = Client::connect(&address).unwrap();
        // Both are served before the third connects, so both are counted.
        let answers = (
            first.call(&["PING"]).unwrap(),
            second.call(&["PING"]).unwrap(),
        );
        let mut third = Client::connect(&address).unwrap();
        let refused = third.call(&["PING"]);
        let still = first.call(&["GET", "k"]).unwrap();
        (answers, refused, still)
    })
    .await
    .unwrap();
    assert_eq!(
        first,
        (Resp::Simple("PONG".into()), Resp::Simple("PONG".into()))
    );
    assert!(second.is_err(), "the third client was served: {second:?}");
    assert_eq!(third, Resp::Bulk(Some(b"v".to_vec())));
    let logged = line_starting(
        &mut running,
        "[proposer/0] warning: `clients` on proposer/0: refusing client",
    )
    .await;
    assert!(
        logged.contains("2 clients are connected (--max-clients)"),
        "{logged}"
    );
    running.stop();
    running.wait().await.unwrap();
}

#[tokio::test]
async fn stopping_the_whole_store_ends_every_instance_without_waiting_out_the_grace() {
    // Its roles feed each other in a cycle: each one's streams end only when
    // the others' do. Stopped together, they settle rather than wait.
    let mut running = deploy().await;
    let address = running.endpoint("proposer", "clients")[0].clone();
    tokio::task::spawn_blocking(move || set_until_ok(&address, "k", "v", STARTED))
        .await
        .unwrap();
    running.stop();
    let names: Vec<String> = [("proposer", 2), ("acceptor", 3), ("replica", 2)]
        .iter()
        .flat_map(|(role, n)| (0..*n).map(move |i| format!("{role}/{i}")))
        .collect();
    let mut said = Vec::new();
    loop {
        match tokio::time::timeout(Duration::from_millis(200), running.next_line()).await {
            Ok(Some(line)) => said.push(line),
            _ if names.iter().all(|n| !running.is_running(n)) => break,
            _ => {}
        }
    }
    while let Ok(Some(line)) =
        tokio::time::timeout(Duration::from_millis(200), running.next_line()).await
    {
        said.push(line);
    }
    running.wait().await.unwrap();
    let complaints: Vec<&String> = said
        .iter()
        .filter(|l| l.contains("stopping without waiting further") || l.contains("lost peer"))
        .collect();
    assert!(
        complaints.is_empty(),
        "instances did not stop cleanly: {complaints:#?}"
    );
}

/// The paxos_kv flow's files, as a user project would hold them.
fn paxos_kv_files() -> Vec<(String, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .join("flow/src/paxos_kv");
    std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_str().unwrap().to_string();
            (
                format!("paxos_kv/{name}"),
                std::fs::read_to_string(&path).unwrap(),
            )
        })
        .collect()
}

/// The store (f = 1), each role's binary where `binary` says, its output captured.
fn store_of(binary: impl Fn(&str) -> std::path::PathBuf) -> Deployment {
    Deployment::new()
        // The tests kill processes, not machines: writes need not be synced.
        .arg("--durability")
        .arg("flush")
        .cluster("proposer", binary("proposer"), 2)
        .cluster("acceptor", binary("acceptor"), 3)
        .cluster("replica", binary("replica"), 2)
        .endpoint("proposer", "clients")
        .capture_output()
}

/// The stretches of `within` without an answer (how long, from when),
/// longest first, with the stretch from its start to the first answer and
/// from the last to its end.
fn longest_waits(
    history: &[linearizability::Operation],
    within: std::ops::Range<Duration>,
) -> Vec<(Duration, Duration)> {
    let mut answered: Vec<Duration> = history
        .iter()
        .filter_map(|o| o.ret.as_ref().map(|(at, _)| Duration::from_nanos(*at)))
        .filter(|at| within.contains(at))
        .collect();
    answered.sort();
    let mut marks = vec![within.start];
    marks.extend(answered);
    marks.push(within.end);
    let mut gaps: Vec<(Duration, Duration)> =
        marks.windows(2).map(|w| (w[1] - w[0], w[0])).collect();
    gaps.sort();
    gaps.reverse();
    gaps
}

/// Every instance replaced by a build whose proposer and replica code
/// changed but not its wire, one at a time, while clients run on both
/// proposers: nothing acknowledged is lost, the history is linearizable,
/// and operations are answered throughout but for the leaders' handovers,
/// under 2 s each. Then a build whose acceptors' replies
/// have a field more is refused at its first instance, which runs the build
/// before again, while the store serves on.
#[tokio::test]
async fn the_store_is_upgraded_instance_by_instance_under_load() {
    let project = crate::builds_apart::Project::with_files(
        "paxos_kv",
        paxos_kv_files(),
        &["proposer", "acceptor", "replica"],
    );
    let old = project.build("old", &|text| text.to_string());
    let next = project.build("next", &|text| {
        text.replace(
            "\"leading with ballot",
            "\"leading (next build) with ballot",
        )
        .replace(
            "-> Vec<FromReplica> {\n        let mut out = Vec::new();",
            "-> Vec<FromReplica> {\n        let mut out = Vec::with_capacity(inputs.len());",
        )
    });
    let wider = project.build("wider", &|text| {
        text.replace(
            "    Rejected { promised: Ballot },",
            "    Rejected { promised: Ballot, by: u64 },",
        )
        .replace(
            "                promised: self.promised,\n            },",
            "                promised: self.promised,\n                by: 0,\n            },",
        )
        .replace(
            "FromAcceptor::Rejected { promised } =>",
            "FromAcceptor::Rejected { promised, .. } =>",
        )
    });

    let mut running = store_of(|role| old.join(format!("paxos_kv-{role}")))
        .timeout(Duration::from_secs(600))
        .start()
        .await
        .unwrap();
    running.ready().await.unwrap();
    let clients = Clients::start(&mut running, Duration::from_secs(600)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let upgrade_began = clients.start.elapsed();
    // When each role's upgrade began, for the messages below.
    let mut steps = Vec::new();
    for role in ["acceptor", "replica", "proposer"] {
        steps.push((role, clients.start.elapsed()));
        let binary = next.join(format!("paxos_kv-{role}"));
        if let Err(e) = running
            .upgrade(role, &binary, Duration::from_secs(30))
            .await
        {
            panic!("{e}");
        }
    }
    let upgrade_ended = clients.start.elapsed();
    tokio::time::sleep(Duration::from_secs(1)).await;

    // A build whose acceptors answer with a field more: refused at once, and
    // the store serves on.
    let refused_began = clients.start.elapsed();
    let err = running
        .upgrade(
            "acceptor",
            &wider.join("paxos_kv-acceptor"),
            Duration::from_secs(15),
        )
        .await
        .expect_err("a build that changed the acceptors' replies was linked")
        .to_string();
    assert!(err.contains("stopped at acceptor/0"), "{err}");
    assert!(err.contains("Rejected"), "{err}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let ended = clients.start.elapsed();
    clients.stop.store(true, Ordering::Relaxed);
    let history = clients.finish().await;

    if let Err(violation) = linearizability::check(&history) {
        panic!("{violation}");
    }
    // Answered throughout the upgrade: the longest stretches without an
    // answer are the leaders' handovers (each proposer leads once, and says
    // it is stopping when replaced: the other stands at once), under 2 s;
    // any other is under a second (a replica back from a restart says it
    // serves only once the leader's slots reach it).
    let gaps = longest_waits(&history, upgrade_began..upgrade_ended);
    assert!(
        gaps[0].0 < Duration::from_secs(2) && gaps[2].0 < Duration::from_secs(1),
        "long stretches without an answer (how long, from when): {:?}; upgrades began (role, when): {steps:?}, ended {upgrade_ended:?}",
        &gaps[..3]
    );
    // Through the refused upgrade and after it, two acceptors of three
    // serve: no stretch without an answer longer than a second.
    let gaps = longest_waits(&history, refused_began..ended);
    assert!(
        gaps[0].0 < Duration::from_secs(1),
        "while acceptor/0 was refused, no answer for {:?} from {:?} (refused from {refused_began:?})",
        gaps[0].0,
        gaps[0].1,
    );
    running.stop();
    running.wait().await.unwrap();
}
