//! The key-value benchmark: `redis-benchmark` against the `paxos_kv` store
//! (f = 1: 2 proposers, 3 acceptors, 2 replicas, every write on 2 acceptors
//! before it is acknowledged) and against a single `redis-server`, side by
//! side in one run.
//!
//! ```sh
//! cargo run --release -p examples --example bench_kv            # 200 k requests (1 M with -P 16), 5 repetitions
//! cargo run --release -p examples --example bench_kv -- --quick # 5 k requests, 1 repetition
//! cargo run --release -p examples --example bench_kv -- --soak 1000000 # connection churn: memory
//! cargo run --release -p examples --example bench_kv -- --phase  # is the machine fast? (Redis alone, 2 runs)
//! ```
//!
//! The store keeps its state in files with `--durability flush` (written
//! each tick, not synced), beside Redis without persistence; then both
//! again with clients over TLS that `AUTH` (the store with
//! `--client-tls-cert`/`--client-tls-key` and a password file, Redis with
//! `--tls-port` and `--requirepass`), pipelined 16 deep. Then like for like
//! on durability: `flush` beside Redis's append-only file synced each second
//! (both survive the process's death), and `sync` beside the append-only
//! file synced on every write (both survive a power loss).
//!
//! Each row also gives the server's CPU time per request, over that test
//! alone: Redis's process, and the store's seven with its proposers',
//! acceptors' and replicas' parts (counts the machine's phase moves less
//! than throughput). Under the table, the phase itself: from Redis's own
//! `SET -P 16` rate in memory.
//!
//! Redis is unreplicated and written in C with years of tuning: an upper
//! bound to measure against, not a peer. Each configuration runs Redis and
//! the store turn about, repetition by repetition; the table gives medians,
//! and the ratio is the median of the ratios of runs made back to back.
//! Needs `redis-server` and `redis-benchmark` (Debian's redis-server and
//! redis-tools).

mod kv_soak;

use kv_soak::Soak;
use std::path::PathBuf;
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};
use weir_deploy::{
    client_certificates, free_port, ClientCertificates, Deployment, RoleBinaries, RunningDeployment,
};

const CLIENTS: u32 = 50;

/// `redis-server` alone, in memory, above this many `SET`s a second with
/// `-P 16`: the machine is in its fast phase. Below it every hop and every
/// wake-up costs more, and the two slow by different amounts: the ratio
/// says little.
const FAST_PHASE_REDIS_SETS: f64 = 1.5e6;
/// `SET`s of each run that reads the phase (`-P 16`): about a second.
const PHASE_REQUESTS: u32 = 1_000_000;

/// Requests per run with `pipeline`: pipelined runs are five times as long,
/// so that one lasts a second or more at the store's pace (200 k requests
/// took a third of a second, and a run's first and last moments weighed on
/// its figure).
fn requests_at(requests: u32, pipeline: u32) -> u32 {
    if pipeline > 1 {
        requests * 5
    } else {
        requests
    }
}

/// One `redis-benchmark` test's figures.
#[derive(Debug, Clone, Copy)]
struct Figures {
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    /// The server's CPU time (user + system) per request, in µs: all of
    /// its processes, then the store's proposers, acceptors and replicas.
    cpu_us: [f64; 4],
}

/// The roles whose CPU time is counted apart, in [`Figures::cpu_us`] order.
const ROLES: [&str; 3] = ["proposer", "acceptor", "replica"];

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--phase") {
        return exit_code(phase_alone());
    }
    let quick = args.iter().any(|a| a == "--quick");
    let (requests, reps) = if quick { (5_000, 1) } else { (200_000, 5) };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let done = runtime.block_on(async {
        match Soak::from_args(&args)? {
            Some(soak) => soak.run().await,
            None => run(requests, reps).await,
        }
    });
    exit_code(done)
}

fn exit_code(done: Result<(), String>) -> ExitCode {
    match done {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// One side-by-side comparison: how clients connect, how each system keeps
/// its writes, and the pipeline depths.
struct Setup<'a> {
    clients: Option<&'a Secured>,
    redis: Persistence,
    /// The store's `--durability`.
    durability: &'static str,
    pipelines: &'static [u32],
}

/// How `redis-server` keeps its writes: the table's name, and its flags.
type Persistence = (&'static str, &'static [&'static str]);

const IN_MEMORY: Persistence = ("none", &["--appendonly", "no"]);
/// The append-only file written each event loop, synced each second:
/// survives the process's death, like the store's `flush`.
const AOF_EVERYSEC: Persistence = (
    "AOF everysec",
    &["--appendonly", "yes", "--appendfsync", "everysec"],
);
/// Synced before the reply: survives a power loss, like the store's `sync`.
const AOF_ALWAYS: Persistence = (
    "AOF always",
    &["--appendonly", "yes", "--appendfsync", "always"],
);

fn require_redis() -> Result<(), String> {
    for tool in ["redis-server", "redis-benchmark"] {
        if Command::new(tool).arg("--version").output().is_err() {
            return Err(format!(
                "`{tool}` is not installed (Debian: redis-server, redis-tools)"
            ));
        }
    }
    Ok(())
}

/// The phase line printed under the table, from Redis's `SET -P 16` rate.
fn phase_line(redis_sets: f64) -> String {
    let phase = if redis_sets >= FAST_PHASE_REDIS_SETS {
        "fast"
    } else {
        "slow (ratios say little)"
    };
    format!(
        "phase: {phase}; redis-server in memory ran SET -P 16 at {:.2} M requests/s (fast from {:.1})",
        redis_sets / 1e6,
        FAST_PHASE_REDIS_SETS / 1e6
    )
}

/// `--phase`: the machine's phase without the store, from two runs against
/// a lone `redis-server`; the slower one decides, so a moment's burst does
/// not pass for a fast machine. Seconds, to know whether a suite's ratios
/// will say anything now.
fn phase_alone() -> Result<(), String> {
    require_redis()?;
    let redis = Redis::start(None, IN_MEMORY.1)?;
    let target = Target {
        address: redis.address.clone(),
        secured: None,
        processes: vec![],
    };
    let first = target.benchmark_one("SET", PHASE_REQUESTS, 16)?.rps;
    let second = target.benchmark_one("SET", PHASE_REQUESTS, 16)?.rps;
    drop(redis);
    let _ = std::fs::remove_dir_all(state_dir());
    println!("{}", phase_line(first.min(second)));
    Ok(())
}

async fn run(requests: u32, reps: usize) -> Result<(), String> {
    require_redis()?;
    println!(
        "redis-benchmark -c {CLIENTS} -n {requests} ({} with -P 16), {reps} repetition(s), medians; \
         ratio = paxos_kv / redis-server, the median of back-to-back pairs; \
         state and Redis's append-only file on {}\n",
        requests_at(requests, 16),
        std::env::temp_dir().display()
    );
    println!(
        "| test | clients | pipeline | durability | system | requests/s | p50 ms | p99 ms | paxos_kv ÷ redis | CPU µs per request (proposers, acceptors, replicas) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    let mut hydro_lines = Vec::new();
    let mut hydro_seen = std::collections::BTreeSet::new();
    let mut redis_sets_alone = None;
    let secured = Secured::make()?;
    let setups = [
        Setup {
            clients: None,
            redis: IN_MEMORY,
            durability: "flush",
            pipelines: &[1, 16],
        },
        Setup {
            clients: Some(&secured),
            redis: IN_MEMORY,
            durability: "flush",
            pipelines: &[16],
        },
        Setup {
            clients: None,
            redis: AOF_EVERYSEC,
            durability: "flush",
            pipelines: &[16],
        },
        Setup {
            clients: None,
            redis: AOF_ALWAYS,
            durability: "sync",
            pipelines: &[1, 16],
        },
    ];
    for setup in &setups {
        let clients = setup.clients;
        let redis = Redis::start(clients, setup.redis.1)?;
        let store = start_store(clients, setup.durability).await?;
        let store_address = store.endpoint("proposer", "clients")[0].clone();
        let (redis_at, store_at) = (
            Target {
                address: redis.address.clone(),
                secured: clients,
                processes: vec![("redis-server".into(), redis.child.id())],
            },
            Target {
                address: store_address,
                secured: clients,
                processes: store.local_processes(),
            },
        );
        store_at.wait_for_ping()?;
        let how = if clients.is_some() {
            "TLS + AUTH"
        } else {
            "plain"
        };
        for &pipeline in setup.pipelines {
            let requests = requests_at(requests, pipeline);
            let mut runs: Vec<[(Figures, Figures); 2]> = Vec::new();
            for rep in 0..reps {
                // Turn about: who goes first alternates.
                let (redis_figures, store_figures) = if rep % 2 == 0 {
                    let r = redis_at.benchmark(requests, pipeline)?;
                    (r, store_at.benchmark(requests, pipeline)?)
                } else {
                    let s = store_at.benchmark(requests, pipeline)?;
                    (redis_at.benchmark(requests, pipeline)?, s)
                };
                runs.push([
                    (redis_figures[0], store_figures[0]),
                    (redis_figures[1], store_figures[1]),
                ]);
            }
            for (t, test) in ["SET", "GET"].into_iter().enumerate() {
                let pairs: Vec<(Figures, Figures)> = runs.iter().map(|r| r[t]).collect();
                let redis = median_figures(pairs.iter().map(|p| p.0));
                let store = median_figures(pairs.iter().map(|p| p.1));
                let ratio = median(pairs.iter().map(|(r, s)| s.rps / r.rps).collect());
                let (redis_durability, durability) = (setup.redis.0, setup.durability);
                println!(
                    "| {test} | {how} | {pipeline} | {redis_durability} | redis-server | {:.0} | {:.3} | {:.3} | | {:.2} |",
                    redis.rps, redis.p50_ms, redis.p99_ms, redis.cpu_us[0]
                );
                if (test, how, pipeline, redis_durability) == ("SET", "plain", 16, IN_MEMORY.0) {
                    redis_sets_alone = Some(redis.rps);
                }
                let [all, proposers, acceptors, replicas] = store.cpu_us;
                println!(
                    "| {test} | {how} | {pipeline} | {durability} | paxos_kv f=1 | {:.0} | {:.3} | {:.3} | {ratio:.2} | {all:.2} ({proposers:.2}, {acceptors:.2}, {replicas:.2}) |",
                    store.rps, store.p50_ms, store.p99_ms
                );
                if !hydro_seen.insert((test, pipeline, how, durability)) {
                    continue; // The same store measured again, beside another Redis.
                }
                hydro_lines.push(format!(
                    "paxos_kv {test} -P {pipeline} ({how}, {durability}): Throughput: {:.0} requests/s\n\
                     paxos_kv {test} -P {pipeline} ({how}, {durability}): Latency p50: {:.3} | p99 {:.3} ms",
                    store.rps, store.p50_ms, store.p99_ms
                ));
            }
        }
        store.stop();
        let stopped = store.wait().await;
        let _ = std::fs::remove_dir_all(state_dir());
        stopped.map_err(|e| format!("the store did not stop cleanly: {e}"))?;
    }
    if let Some(rate) = redis_sets_alone {
        println!("\n{}", phase_line(rate));
    }
    println!("\nIn Hydro's format:");
    for line in hydro_lines {
        println!("{line}");
    }
    let _ = std::fs::remove_dir_all(&secured.dir);
    Ok(())
}

/// What clients over TLS need: the certificates and the password.
struct Secured {
    dir: PathBuf,
    certificates: ClientCertificates,
    password: String,
    password_file: PathBuf,
}

impl Secured {
    fn make() -> Result<Secured, String> {
        let dir = std::env::temp_dir().join(format!("weir-bench-kv-tls-{}", std::process::id()));
        let certificates =
            client_certificates(&dir, &["localhost", "127.0.0.1"]).map_err(|e| e.to_string())?;
        let password = "bench-password".to_string();
        let password_file = dir.join("password");
        std::fs::write(&password_file, &password).map_err(|e| e.to_string())?;
        Ok(Secured {
            dir,
            certificates,
            password,
            password_file,
        })
    }
}

/// Where `redis-benchmark` and `redis-cli` connect, and how; and the
/// server's processes, whose CPU time each test counts.
struct Target<'a> {
    address: String,
    secured: Option<&'a Secured>,
    processes: Vec<(String, u32)>,
}

impl Target<'_> {
    /// `-h 127.0.0.1 -p PORT`, with `--tls --cacert CA -a PASSWORD` when secured.
    fn args(&self) -> Vec<String> {
        let port = self.address.rsplit(':').next().expect("host:port");
        let mut args: Vec<String> = ["-h", "127.0.0.1", "-p", port].map(String::from).to_vec();
        if let Some(s) = self.secured {
            args.extend([
                "--tls".into(),
                "--cacert".into(),
                s.certificates.ca.display().to_string(),
            ]);
            args.extend(["-a".into(), s.password.clone()]);
        }
        args
    }

    fn wait_for_ping(&self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            let out = Command::new("redis-cli")
                .args(self.args())
                .args(["--no-auth-warning", "PING"])
                .output();
            if out.is_ok_and(|o| o.stdout.starts_with(b"PONG")) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(format!("nothing answers PING on {}", self.address))
    }

    /// `redis-benchmark -t set`, then `-t get`: each one's figures.
    fn benchmark(&self, requests: u32, pipeline: u32) -> Result<[Figures; 2], String> {
        Ok([
            self.benchmark_one("SET", requests, pipeline)?,
            self.benchmark_one("GET", requests, pipeline)?,
        ])
    }

    /// The server's CPU time so far, in clock ticks: in all, then by role.
    fn cpu_ticks(&self) -> [u64; 4] {
        let mut ticks = [0; 4];
        for (name, pid) in &self.processes {
            let spent = cpu_ticks(*pid);
            ticks[0] += spent;
            let role = name.split('/').next().unwrap_or_default();
            if let Some(i) = ROLES.iter().position(|r| *r == role) {
                ticks[i + 1] += spent;
            }
        }
        ticks
    }

    /// `redis-benchmark -t test`, and the server's CPU time meanwhile.
    fn benchmark_one(&self, test: &str, requests: u32, pipeline: u32) -> Result<Figures, String> {
        let before = self.cpu_ticks();
        let out = Command::new("redis-benchmark")
            .args(self.args())
            .args(["-t", &test.to_ascii_lowercase(), "--csv"])
            .args(["-c", &CLIENTS.to_string(), "-n", &requests.to_string()])
            .args(["-P", &pipeline.to_string()])
            .output()
            .map_err(|e| format!("cannot run redis-benchmark: {e}"))?;
        let after = self.cpu_ticks();
        let tick_us = 1e6 / clock_ticks_per_second();
        let cpu_us = std::array::from_fn(|i| {
            after[i].saturating_sub(before[i]) as f64 * tick_us / f64::from(requests)
        });
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        let address = &self.address;
        let row = text
            .lines()
            .find(|l| l.starts_with(&format!("\"{test}\"")))
            .ok_or_else(|| format!("redis-benchmark on {address} printed no {test} row: {text}"))?;
        let cells: Vec<f64> = row
            .split(',')
            .skip(1)
            .map(|c| c.trim_matches('"').parse().unwrap_or(f64::NAN))
            .collect();
        // rps, avg, min, p50, p95, p99, max
        match cells.as_slice() {
            [rps, _, _, p50, _, p99, _] => Ok(Figures {
                rps: *rps,
                p50_ms: *p50,
                p99_ms: *p99,
                cpu_us,
            }),
            _ => Err(format!("unexpected redis-benchmark row: {row}")),
        }
    }
}

/// The CPU time process `pid` has spent (user + system), in clock ticks;
/// 0 once it is gone.
fn cpu_ticks(pid: u32) -> u64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0;
    };
    // After the command name (in parentheses, which may hold spaces): the
    // state, then utime and stime as the 12th and 13th fields.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(vec![], |(_, rest)| rest.split_whitespace().collect());
    let field = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
    field(11).unwrap_or(0) + field(12).unwrap_or(0)
}

fn clock_ticks_per_second() -> f64 {
    // SAFETY: sysconf reads a constant of the system.
    match unsafe { libc::sysconf(libc::_SC_CLK_TCK) } {
        n if n > 0 => n as f64,
        _ => 100.0,
    }
}

/// Where this run's instances (and Redis) keep their state.
fn state_dir() -> std::path::PathBuf {
    std::env::temp_dir().join(format!("weir-bench-kv-{}", std::process::id()))
}

/// The store on this machine, from the binaries of this driver's profile,
/// keeping its state in files as deployed, under `durability`.
async fn start_store(
    secured: Option<&Secured>,
    durability: &str,
) -> Result<RunningDeployment, String> {
    let bins = RoleBinaries::of("bins").map_err(|e| e.to_string())?;
    let state = state_dir().join("store");
    let _ = std::fs::remove_dir_all(&state);
    let mut deployment = Deployment::new()
        .state_dirs(&state)
        .arg("--durability")
        .arg(durability)
        .cluster("proposer", bins.path("paxos_kv-proposer"), 2)
        .cluster("acceptor", bins.path("paxos_kv-acceptor"), 3)
        .cluster("replica", bins.path("paxos_kv-replica"), 2)
        .endpoint("proposer", "clients")
        .capture_output();
    if let Some(s) = secured {
        deployment = deployment
            .env(
                "PAXOS_KV_PASSWORD_FILE",
                s.password_file.display().to_string(),
            )
            .client_tls(&s.certificates);
    }
    bins.build_used().map_err(|e| e.to_string())?;
    let mut running = deployment.start().await.map_err(|e| e.to_string())?;
    // The first leader is proposer 0: benchmark it, as clients of a
    // follower pay a forwarding hop.
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        let line = tokio::time::timeout(Duration::from_secs(1), running.next_line()).await;
        if let Ok(Some(line)) = line {
            if line.starts_with("[proposer/0] leading") {
                return Ok(running);
            }
        }
    }
    Err("proposer/0 did not start leading within 20 s".into())
}

/// A `redis-server` of its own, with the persistence flags given (its files
/// in the state directory), stopped when dropped.
struct Redis {
    address: String,
    child: Child,
}

impl Redis {
    fn start(secured: Option<&Secured>, persistence: &[&str]) -> Result<Redis, String> {
        let port = free_port().map_err(|e| e.to_string())?.to_string();
        let dir = state_dir().join("redis");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| format!("cannot make {}: {e}", dir.display()))?;
        let mut command = Command::new("redis-server");
        command
            .args(["--bind", "127.0.0.1", "--save", ""])
            .args(persistence)
            .arg("--dir")
            .arg(&dir);
        match secured {
            None => command.args(["--port", &port]),
            Some(s) => command
                .args([
                    "--port",
                    "0",
                    "--tls-port",
                    &port,
                    "--tls-auth-clients",
                    "no",
                ])
                .arg("--tls-cert-file")
                .arg(&s.certificates.cert)
                .arg("--tls-key-file")
                .arg(&s.certificates.key)
                .args(["--requirepass", &s.password]),
        };
        let child = command
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start redis-server: {e}"))?;
        let redis = Redis {
            address: format!("127.0.0.1:{port}"),
            child,
        };
        let target = Target {
            address: redis.address.clone(),
            secured,
            processes: vec![],
        };
        target.wait_for_ping()?;
        Ok(redis)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn median_figures(runs: impl Iterator<Item = Figures> + Clone) -> Figures {
    Figures {
        rps: median(runs.clone().map(|f| f.rps).collect()),
        p50_ms: median(runs.clone().map(|f| f.p50_ms).collect()),
        p99_ms: median(runs.clone().map(|f| f.p99_ms).collect()),
        cpu_us: std::array::from_fn(|i| median(runs.clone().map(|f| f.cpu_us[i]).collect())),
    }
}
