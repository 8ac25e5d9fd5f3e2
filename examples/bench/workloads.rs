//! The workloads, how each system runs them, and how each answer is checked.

use crate::launch::{self, Instance, Run, Until};
use crate::table::Row;
use flow::bench::{expected_sum, text, SIZE_VAR};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use weir_deploy::{cargo_build, free_port};
use weir_runtime::auth::Key;
use weir_runtime::topology::Topology;

/// Where every system's programs are, built for this driver's profile.
pub struct Systems {
    /// `target/<profile>`: the role binaries, and the counterparts under `examples/`.
    dir: PathBuf,
    timely: bool,
    /// Topology and host files of the runs.
    scratch: PathBuf,
    /// The Weir instances' deployment key (protected links, as deployed), and
    /// the sealed tokio counterpart's.
    key: PathBuf,
}

impl Systems {
    /// Builds the role binaries and the counterparts (Timely's only if `timely`).
    pub fn build(timely: bool) -> Result<Systems, String> {
        eprintln!("building the role binaries and the counterparts ...");
        let dir = cargo_build(&["-p", "bins", "--bins"], None).map_err(|e| e.to_string())?;
        let mut counterparts = vec!["-p", "examples", "--example", "bench_tokio"];
        if timely {
            counterparts.extend(["--example", "bench_timely", "--features", "timely"]);
        }
        cargo_build(&counterparts, None).map_err(|e| e.to_string())?;
        let scratch = std::env::temp_dir().join(format!("weir-bench-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&scratch); // left by a killed run with this pid
        std::fs::create_dir_all(&scratch)
            .map_err(|e| format!("cannot create {}: {e}", scratch.display()))?;
        let key = scratch.join("weir.key");
        Key::generate(&key).map_err(|e| e.to_string())?;
        Ok(Systems {
            dir,
            timely,
            scratch,
            key,
        })
    }

    fn counterpart(&self, name: &str) -> Command {
        Command::new(self.dir.join("examples").join(name))
    }
}

impl Drop for Systems {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.scratch);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum System {
    /// As deployed: links sealed with the deployment key.
    Weir,
    /// `--insecure-no-auth`: the cost of protection, side by side.
    WeirInClear,
    /// By hand, with the same Noise suite as Weir's links.
    TokioSealed,
    Tokio,
    Timely,
}

impl System {
    /// The Weir run a system is compared with, like for like: sealed with
    /// sealed, in clear with in clear. Weir in clear is compared with Weir:
    /// its ratio is the cost of protection.
    pub(crate) fn baseline(self) -> Option<System> {
        match self {
            System::Weir => None,
            System::WeirInClear | System::TokioSealed => Some(System::Weir),
            System::Tokio | System::Timely => Some(System::WeirInClear),
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            System::Weir => "weir",
            System::WeirInClear => "weir, in clear",
            System::TokioSealed => "sealed tokio (by hand)",
            System::Tokio => "tokio (by hand)",
            System::Timely => "timely",
        }
    }
}

/// Each workload's size: records, round trips, or bytes of text.
pub struct Sizes {
    pipe: u64,
    pipe_struct: u64,
    broadcast: u64,
    ping_pong: u64,
    word_count: u64,
}

impl Sizes {
    pub const FULL: Sizes = Sizes {
        pipe: 200_000_000,
        pipe_struct: 20_000_000,
        broadcast: 100_000_000,
        ping_pong: 100_000,
        word_count: 100_000_000,
    };
    pub const QUICK: Sizes = Sizes {
        pipe: 2_000_000,
        pipe_struct: 200_000,
        broadcast: 1_000_000,
        ping_pong: 2_000,
        word_count: 2_000_000,
    };
}

#[derive(Debug, Clone, Copy)]
pub enum Workload {
    Pipe,
    PipeStruct,
    Broadcast,
    PingPong,
    WordCount,
    Build,
}

pub const ALL: [Workload; 6] = [
    Workload::Pipe,
    Workload::PipeStruct,
    Workload::Broadcast,
    Workload::PingPong,
    Workload::WordCount,
    Workload::Build,
];

/// One run's figure: the main one (what the median and ratio are of) and, for
/// latency, the p99 beside the p50.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sample {
    value: f64,
    second: f64,
}

/// CPU time of one role in one run, per record (per instance of the role).
#[derive(Clone, Copy, Default)]
struct CpuPerRecord {
    user_ns: f64,
    system_ns: f64,
}

impl CpuPerRecord {
    fn total(self) -> f64 {
        self.user_ns + self.system_ns
    }
}

impl Workload {
    pub fn name(self) -> &'static str {
        match self {
            Workload::Pipe => "pipe",
            Workload::PipeStruct => "pipe_struct",
            Workload::Broadcast => "broadcast",
            Workload::PingPong => "ping_pong",
            Workload::WordCount => "word_count",
            Workload::Build => "build",
        }
    }

    /// Too slow for the quick suite.
    pub fn full_only(self) -> bool {
        matches!(self, Workload::Build)
    }

    /// The sizes to run at: the headline throughput workloads also run at a
    /// tenth of their size, so a run bound by the loopback (where both
    /// programs meet the same ceiling) shows as such.
    pub fn sizes(self, sizes: &Sizes) -> Vec<u64> {
        let n = self.size(sizes);
        match self {
            Workload::Pipe | Workload::PipeStruct | Workload::Broadcast => vec![n, n / 10],
            _ => vec![n],
        }
    }

    fn size(self, sizes: &Sizes) -> u64 {
        match self {
            Workload::Pipe => sizes.pipe,
            Workload::PipeStruct => sizes.pipe_struct,
            Workload::Broadcast => sizes.broadcast,
            Workload::PingPong => sizes.ping_pong,
            Workload::WordCount => sizes.word_count,
            Workload::Build => 0,
        }
    }

    /// The flow's roles, each with its instance count (`None`: a process).
    fn roles(self) -> &'static [(&'static str, Option<usize>)] {
        match self {
            Workload::Pipe | Workload::PipeStruct => &[("sender", None), ("receiver", None)],
            Workload::Broadcast => &[("leader", None), ("member", Some(2))],
            Workload::PingPong => &[("ping", None), ("pong", None)],
            Workload::WordCount => &[("leader", None), ("worker", Some(2))],
            Workload::Build => &[],
        }
    }

    fn systems(self, timely: bool) -> Vec<System> {
        let mut systems = vec![
            System::Weir,
            System::WeirInClear,
            System::TokioSealed,
            System::Tokio,
        ];
        if timely && !matches!(self, Workload::PingPong) {
            systems.push(System::Timely);
        }
        systems
    }

    /// Runs every system `reps` times at size `n`, alternating (Weir, then each
    /// counterpart, back to back), and returns the table rows: medians, and
    /// Weir's ratio to each counterpart as the median of the ratios of the
    /// pairs run back to back, with their range. `main` says whether `n` is
    /// the workload's headline size (its rows are then named plainly).
    pub fn measure(
        self,
        systems: &Systems,
        n: u64,
        main: bool,
        reps: usize,
    ) -> Result<Vec<Row>, String> {
        if let Workload::Build = self {
            return measure_build(systems, reps);
        }
        let label = if main {
            self.name().to_string()
        } else {
            format!("{} ({})", self.name(), count(n))
        };
        let reference = matches!(self, Workload::WordCount).then(|| text::reference(n));
        let candidates = self.systems(systems.timely);
        let mut samples: BTreeMap<System, Vec<Sample>> = BTreeMap::new();
        let mut peaks: BTreeMap<System, BTreeMap<String, u64>> = BTreeMap::new();
        // Per system and role, one entry per run.
        let mut cpu: BTreeMap<System, BTreeMap<String, Vec<CpuPerRecord>>> = BTreeMap::new();
        for _ in 0..reps {
            for &system in &candidates {
                let until = match self {
                    Workload::PingPong => Until::FirstReport,
                    _ => Until::AllExit,
                };
                let instances = self.instances(systems, system, n)?;
                let run = launch::run(instances, until, Duration::from_secs(300))
                    .map_err(|e| format!("{}: {e}", system.name()))?;
                let sample = self
                    .check(&run, n, reference.as_ref())
                    .map_err(|e| format!("{}: wrong answer: {e}", system.name()))?;
                samples.entry(system).or_default().push(sample);
                let roles = peaks.entry(system).or_default();
                let mut used: BTreeMap<String, (CpuPerRecord, f64)> = BTreeMap::new();
                for instance in &run.instances {
                    let role = instance.name.split('/').next().unwrap_or_default();
                    let peak = roles.entry(role.to_string()).or_default();
                    *peak = (*peak).max(instance.peak_rss_kib);
                    let (sum, instances) = used.entry(role.to_string()).or_default();
                    sum.user_ns += instance.user.as_nanos() as f64 / n as f64;
                    sum.system_ns += instance.system.as_nanos() as f64 / n as f64;
                    *instances += 1.0;
                }
                let roles = cpu.entry(system).or_default();
                for (role, (sum, instances)) in used {
                    roles.entry(role).or_default().push(CpuPerRecord {
                        user_ns: sum.user_ns / instances,
                        system_ns: sum.system_ns / instances,
                    });
                }
            }
        }
        Ok(candidates
            .iter()
            .map(|system| {
                let value = median(samples[system].iter().map(|s| s.value));
                let second = median(samples[system].iter().map(|s| s.second));
                // Pair by pair: a machine that slows down mid-run slows both.
                let pairs: Vec<f64> = match system.baseline() {
                    Some(baseline) => samples[&baseline]
                        .iter()
                        .zip(&samples[system])
                        .map(|(w, s)| w.value / s.value)
                        .collect(),
                    None => Vec::new(),
                };
                // CPU per record of every role together, Weir's over this
                // system's, pair by pair too.
                let total = |system: &System, run: usize| -> f64 {
                    cpu[system].values().map(|runs| runs[run].total()).sum()
                };
                let cpu_ratio = system.baseline().map(|baseline| {
                    median(
                        (0..samples[system].len())
                            .map(|run| total(&baseline, run) / total(system, run)),
                    )
                });
                let spread = pairs.iter().copied().fold(None, |range, r| match range {
                    None => Some((r, r)),
                    Some((lo, hi)) => Some((f64::min(lo, r), f64::max(hi, r))),
                });
                Row {
                    workload: label.clone(),
                    system: system.name().to_string(),
                    figure: self.describe(value, second),
                    value,
                    ratio: (!pairs.is_empty()).then(|| median(pairs.iter().copied())),
                    spread,
                    peak_rss: peaks[system]
                        .iter()
                        .map(|(role, kib)| format!("{role} {:.1}", *kib as f64 / 1024.0))
                        .collect::<Vec<_>>()
                        .join(", "),
                    cpu: cpu[system]
                        .iter()
                        .map(|(role, runs)| {
                            let user = median(runs.iter().map(|r| r.user_ns));
                            let system = median(runs.iter().map(|r| r.system_ns));
                            format!("{role} {:.1} (sys {system:.1})", user + system)
                        })
                        .collect::<Vec<_>>()
                        .join(", "),
                    cpu_ratio,
                }
            })
            .collect())
    }

    /// The hand-written pipe in clear, run once at its headline size: what
    /// tells the machine's phase when the pipe workload itself did not run.
    pub fn probe_phase(systems: &Systems) -> Result<f64, String> {
        let n = Sizes::FULL.pipe;
        let instances = Workload::Pipe.instances(systems, System::Tokio, n)?;
        let run = launch::run(instances, Until::AllExit, Duration::from_secs(300))?;
        Ok(Workload::Pipe.check(&run, n, None)?.value)
    }

    fn describe(self, value: f64, second: f64) -> String {
        match self {
            Workload::Pipe => format!("{:.1} M rec/s, {:.0} MB/s", value / 1e6, value * 8.0 / 1e6),
            Workload::PipeStruct => {
                format!(
                    "{:.1} M rec/s, {:.0} MB/s",
                    value / 1e6,
                    value * 100.0 / 1e6
                )
            }
            Workload::Broadcast => format!("{:.1} M rec/s per member", value / 1e6),
            Workload::PingPong => format!("p50 {value:.1} µs, p99 {second:.1} µs"),
            Workload::WordCount => format!("{:.1} MB/s", value / 1e6),
            Workload::Build => format!("{value:.1} s"),
        }
    }

    /// Checks a run's answer; its figure.
    pub(crate) fn check(
        self,
        run: &Run,
        n: u64,
        reference: Option<&(u64, text::Summary)>,
    ) -> Result<Sample, String> {
        match self {
            Workload::Pipe | Workload::PipeStruct => {
                let rate = check_tally(run.report("receiver")?, n)?;
                Ok(Sample {
                    value: rate,
                    second: 0.0,
                })
            }
            Workload::Broadcast => {
                let mut slowest = f64::INFINITY;
                for member in ["member/0", "member/1"] {
                    let rate = check_tally(run.report(member)?, n)
                        .map_err(|e| format!("{member}: {e}"))?;
                    slowest = slowest.min(rate);
                }
                Ok(Sample {
                    value: slowest,
                    second: 0.0,
                })
            }
            Workload::PingPong => {
                let report = run.report("ping")?;
                expect(report, "rounds", n)?;
                Ok(Sample {
                    value: number(report, "p50_us")?,
                    second: number(report, "p99_us")?,
                })
            }
            Workload::WordCount => {
                let (bytes, summary) = reference.expect("word count has a reference");
                let report = run.report("leader")?;
                expect(report, "words", summary.words)?;
                expect(report, "distinct", summary.distinct)?;
                expect(report, "checksum", summary.checksum)?;
                Ok(Sample {
                    value: *bytes as f64 / run.wall.as_secs_f64(),
                    second: 0.0,
                })
            }
            Workload::Build => unreachable!("build is measured apart"),
        }
    }

    /// The processes of one run of `system`.
    pub(crate) fn instances(
        self,
        systems: &Systems,
        system: System,
        n: u64,
    ) -> Result<Vec<Instance>, String> {
        // Every instance, named as the Weir deployment names it, with an address.
        let mut named = Vec::new();
        for &(role, members) in self.roles() {
            for index in 0..members.unwrap_or(1) {
                let name = match members {
                    Some(_) => format!("{role}/{index}"),
                    None => role.to_string(),
                };
                let address = format!("127.0.0.1:{}", free_port().map_err(|e| e.to_string())?);
                named.push((role, members.map(|_| index), name, address));
            }
        }
        let mut instances = Vec::new();
        match system {
            System::Weir | System::WeirInClear => {
                let topology = systems.scratch.join(format!("{}.toml", self.name()));
                let mut roles = Topology::default();
                for &(role, _) in self.roles() {
                    let addresses = named
                        .iter()
                        .filter(|(r, ..)| *r == role)
                        .map(|(.., address)| address.clone())
                        .collect();
                    roles.set(role, addresses);
                }
                write(&topology, &roles.to_toml())?;
                for (role, index, name, _) in &named {
                    let binary = format!("bench_{}-{role}", self.name());
                    let mut command = Command::new(systems.dir.join(binary));
                    command.arg("--topology").arg(&topology);
                    if system == System::Weir {
                        command.arg("--key-file").arg(&systems.key);
                    } else {
                        command.arg("--insecure-no-auth");
                    }
                    if let Some(index) = index {
                        command.arg("--index").arg(index.to_string());
                    }
                    instances.push(Instance {
                        name: name.clone(),
                        command,
                    });
                }
            }
            System::Tokio | System::TokioSealed => {
                // The receiving side listens: receiver, members, pong, leader of the word count.
                let listener = |role: &str| -> Vec<String> {
                    named
                        .iter()
                        .filter(|(r, ..)| *r == role)
                        .map(|(.., a)| a.clone())
                        .collect()
                };
                for (role, index, name, address) in &named {
                    let mut command = systems.counterpart("bench_tokio");
                    command.arg(self.name()).arg(role);
                    if system == System::TokioSealed {
                        command.env("BENCH_NOISE_KEY_FILE", &systems.key);
                    }
                    match (self, *role) {
                        (Workload::Pipe | Workload::PipeStruct, _) => {
                            command.args(listener("receiver"));
                        }
                        (Workload::Broadcast, "leader") => {
                            command.args(listener("member"));
                        }
                        (Workload::Broadcast, _) => {
                            command.arg(address);
                        }
                        (Workload::PingPong, _) => {
                            command.args(listener("pong"));
                        }
                        (Workload::WordCount, _) => {
                            command
                                .arg(index.unwrap_or(0).to_string())
                                .arg("2")
                                .args(listener("leader"));
                        }
                        (Workload::Build, _) => unreachable!(),
                    }
                    instances.push(Instance {
                        name: name.clone(),
                        command,
                    });
                }
            }
            System::Timely => {
                let hosts = systems.scratch.join(format!("{}.hosts", self.name()));
                let lines: Vec<&str> = named.iter().map(|(.., a)| a.as_str()).collect();
                write(&hosts, &(lines.join("\n") + "\n"))?;
                for (process, (.., name, _)) in named.iter().enumerate() {
                    let mut command = systems.counterpart("bench_timely");
                    command
                        .arg(self.name())
                        .args(["-w", "1", "-n"])
                        .arg(named.len().to_string())
                        .arg("-p")
                        .arg(process.to_string())
                        .arg("-h")
                        .arg(&hosts);
                    instances.push(Instance {
                        name: name.clone(),
                        command,
                    });
                }
            }
        }
        for instance in &mut instances {
            instance.command.env(SIZE_VAR, n.to_string());
        }
        Ok(instances)
    }
}

fn write(path: &Path, contents: &str) -> Result<(), String> {
    std::fs::write(path, contents).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

fn number(report: &launch::Report, key: &str) -> Result<f64, String> {
    report
        .get(key)
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| format!("no number `{key}` in {report:?}"))
}

fn expect(report: &launch::Report, key: &str, wanted: u64) -> Result<(), String> {
    match report.get(key) {
        Some(value) if *value == wanted.to_string() => Ok(()),
        other => Err(format!("{key} is {other:?}, expected {wanted}")),
    }
}

/// Checks a `Tally` of `0..n` (or of the records numbered so); records per second.
fn check_tally(report: &launch::Report, n: u64) -> Result<f64, String> {
    expect(report, "count", n)?;
    expect(report, "sum", expected_sum(n))?;
    Ok(n as f64 / number(report, "seconds")?)
}

/// `200 M`, `20 M`, `100 k`: a size for a row's name.
fn count(n: u64) -> String {
    match n {
        n if n >= 1_000_000 && n % 1_000_000 == 0 => format!("{} M", n / 1_000_000),
        n if n >= 1_000 && n % 1_000 == 0 => format!("{} k", n / 1_000),
        n => n.to_string(),
    }
}

fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut values: Vec<f64> = values.collect();
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

/// Cold build of the role binaries in a fresh target directory, then rebuilds
/// after editing one `q!` closure of one flow.
fn measure_build(systems: &Systems, reps: usize) -> Result<Vec<Row>, String> {
    let cold_target = systems.scratch.join("cold-target");
    let started = Instant::now();
    cargo_build(&["-p", "bins", "--bins"], Some(&cold_target)).map_err(|e| e.to_string())?;
    let cold = started.elapsed().as_secs_f64();
    let _ = std::fs::remove_dir_all(&cold_target);

    let flow = Path::new(env!("CARGO_MANIFEST_DIR")).join("../flow/src/bench/pipe.rs");
    let original = std::fs::read_to_string(&flow).map_err(|e| e.to_string())?;
    let edited = original.replacen("tally.add(n)", "tally.add(n ^ 0)", 1);
    assert_ne!(
        original,
        edited,
        "the closure to edit is in {}",
        flow.display()
    );
    let restore = Restore {
        path: &flow,
        original: &original,
    };
    // What a q! edit costs: rebuilding the whole package, and rebuilding only the
    // edited flow's roles (what a deploy script builds).
    let whole: &[&str] = &["-p", "bins", "--bins"];
    let roles: &[&str] = &[
        "-p",
        "bins",
        "--bin",
        "bench_pipe-sender",
        "--bin",
        "bench_pipe-receiver",
    ];
    let mut times = [Vec::new(), Vec::new()];
    let mut edits = 0;
    for (args, times) in [whole, roles].into_iter().zip(&mut times) {
        for _ in 0..reps {
            // Every timed build follows a change: edited, original, edited, ...
            edits += 1;
            write(&flow, if edits % 2 == 1 { &edited } else { &original })?;
            let started = Instant::now();
            cargo_build(args, None).map_err(|e| e.to_string())?;
            times.push(started.elapsed().as_secs_f64());
        }
    }
    drop(restore);
    cargo_build(whole, None).map_err(|e| e.to_string())?;
    let row = |what: &str, seconds: f64| Row {
        workload: format!("build ({what})"),
        system: System::Weir.name().to_string(),
        figure: Workload::Build.describe(seconds, 0.0),
        value: seconds,
        ratio: None,
        spread: None,
        peak_rss: String::new(),
        cpu: String::new(),
        cpu_ratio: None,
    };
    let [whole, roles] = times;
    Ok(vec![
        row("cold, release", cold),
        row("q! edit, all roles", median(whole.into_iter())),
        row("q! edit, its flow's roles", median(roles.into_iter())),
    ])
}

/// Puts a source file back as it was, whatever happens to the measurement.
struct Restore<'a> {
    path: &'a Path,
    original: &'a str,
}

impl Drop for Restore<'_> {
    fn drop(&mut self) {
        let _ = std::fs::write(self.path, self.original);
    }
}
