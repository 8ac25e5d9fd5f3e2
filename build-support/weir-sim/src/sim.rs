//! [`Sim`]: runs a flow under many seeds, checks each run, and on a failure
//! shrinks its faults and prints how to replay it.

use crate::client::{Client, Script};
use crate::faults::{Faults, Timing};
use crate::outcome::Run;
use crate::run::run;
use crate::Flow;
use std::cell::Cell;
use std::collections::BTreeMap;
use std::ops::Range;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Once;
use std::time::Duration;

/// Runs of one flow under a range of seeds.
#[must_use = "call `.check(..)` to run the seeds"]
pub struct Sim {
    flow: &'static Flow,
    sizes: Vec<(String, u32)>,
    clients: Vec<Script>,
    seeds: Range<u64>,
    faults: Faults,
    timing: Timing,
}

/// A seed whose run failed the check, with its faults shrunk.
#[derive(Debug, Clone)]
pub struct Failure {
    /// The seed that failed.
    pub seed: u64,
    /// What the check said (its panic message).
    pub message: String,
    /// The smallest faults found that still fail with this seed.
    pub faults: Faults,
    /// The run with those faults.
    pub run: Run,
    /// Environment variables that replay exactly this run in [`Sim::check`].
    pub replay_env: Vec<(String, String)>,
}

impl Failure {
    /// The command that replays the failure: this test alone, with its seed
    /// and faults.
    pub fn replay_command(&self) -> String {
        let env: Vec<String> = self
            .replay_env
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let package = std::env::var("CARGO_PKG_NAME").unwrap_or_else(|_| "PACKAGE".into());
        let target = std::env::current_exe()
            .ok()
            .and_then(|exe| exe.file_stem().map(|s| s.to_string_lossy().into_owned()))
            .map(|stem| match stem.rsplit_once('-') {
                Some((name, _hash)) => name.to_string(),
                None => stem,
            })
            .unwrap_or_else(|| "TEST".into());
        let test = std::thread::current()
            .name()
            .filter(|n| *n != "main")
            .unwrap_or("TEST_NAME")
            .to_string();
        format!(
            "{} cargo test -p {package} --test {target} -- --exact {test}",
            env.join(" ")
        )
    }

    /// Everything to print: the seed, the message, the faults, the replay.
    pub fn report(&self) -> String {
        let mut out = format!(
            "weir-sim: seed {} fails: {}\n  faults: {}\n",
            self.seed,
            self.message,
            self.faults.describe()
        );
        for fault in &self.run.faults {
            out.push_str(&format!("    {fault}\n"));
        }
        out.push_str("  last steps:\n");
        for step in &self.run.last_steps {
            out.push_str(&format!("    {step}\n"));
        }
        out.push_str(&format!("  replay: {}\n", self.replay_command()));
        out
    }
}

impl Sim {
    /// Runs of `flow`: seeds 0..100, writes delayed 0..10 ms, no crashes or
    /// holds, crashed instances restarted where their edges are tolerant.
    pub fn new(flow: &'static Flow) -> Sim {
        Sim {
            flow,
            sizes: Vec::new(),
            clients: Vec::new(),
            seeds: 0..100,
            faults: Faults {
                delays: 0..10,
                crashes: 0.0,
                crashes_of: Vec::new(),
                holds: 0.0,
                restarts: true,
                restart_with: None,
            },
            timing: Timing {
                fault_window: Duration::from_secs(1),
                stop_after: None,
                time_limit: Duration::from_secs(60),
                peer_timeout: Duration::from_secs(2),
            },
        }
    }

    /// Two builds side by side: a crashed instance comes back running `next`
    /// (a later build of the flow: its program for the instance's role), as
    /// in a rolling upgrade. Links between builds are made as the role
    /// binaries make them at their handshake: channels matched by direction,
    /// delivery and records' shape, or refused (the refusal is in the run's
    /// `faults`, and the pair stays unlinked).
    pub fn upgrade_to(mut self, next: &'static Flow) -> Sim {
        self.faults.restart_with = Some(next);
        self
    }

    /// Cluster `role` has `n` instances.
    pub fn instances(mut self, role: &str, n: u32) -> Sim {
        self.sizes.retain(|(r, _)| r != role);
        self.sizes.push((role.to_string(), n));
        self
    }

    /// Adds a client: `script` runs as a task of every run, connects to
    /// instances' external endpoints ([`Client::connect`]) and records what
    /// it saw ([`Client::log`]). Clients are `client/0`, `client/1`, ... in
    /// the order added.
    pub fn client<F, Fut>(mut self, script: F) -> Sim
    where
        F: Fn(Client) -> Fut + 'static,
        Fut: std::future::Future<Output = ()> + 'static,
    {
        self.clients
            .push(std::rc::Rc::new(move |client| Box::pin(script(client))));
        self
    }

    /// Runs these seeds instead of 0..100.
    pub fn seeds(mut self, seeds: Range<u64>) -> Sim {
        self.seeds = seeds;
        self
    }

    /// Each write arrives this many milliseconds later (drawn per write).
    pub fn delays(mut self, ms: Range<u64>) -> Sim {
        self.faults.delays = ms;
        self
    }

    /// Each instance crashes with this chance, at a time in the fault window.
    pub fn crashes(mut self, chance: f64) -> Sim {
        self.faults.crashes = chance;
        self
    }

    /// Each instance of `role` crashes with this chance (instead of the
    /// chance [`Sim::crashes`] gives every instance).
    pub fn crashes_of(mut self, role: &str, chance: f64) -> Sim {
        self.faults.crashes_of.retain(|(r, _)| r != role);
        self.faults.crashes_of.push((role.to_string(), chance));
        self
    }

    /// Each linked pair is held apart with this chance, for 0.1–3 s.
    pub fn holds(mut self, chance: f64) -> Sim {
        self.faults.holds = chance;
        self
    }

    /// Whether crashed instances come back (where their edges are tolerant).
    pub fn restarts(mut self, on: bool) -> Sim {
        self.faults.restarts = on;
        self
    }

    /// Faults happen within this long of the start (virtual time; default 1 s).
    pub fn fault_window(mut self, window: Duration) -> Sim {
        self.timing.fault_window = window;
        self
    }

    /// Tells every instance to stop after this long (for flows that run until
    /// stopped), as SIGTERM would.
    pub fn stop_after(mut self, after: Duration) -> Sim {
        self.timing.stop_after = Some(after);
        self
    }

    /// A run not over after this long (virtual time; default 60 s) has hung.
    pub fn time_limit(mut self, limit: Duration) -> Sim {
        self.timing.time_limit = limit;
        self
    }

    /// One run with `seed`, as configured (no environment overrides).
    pub fn run(&self, seed: u64) -> Run {
        run(
            self.flow,
            &self.sizes,
            &self.clients,
            seed,
            &self.faults,
            &self.timing,
        )
    }

    /// Runs every seed and checks each run with `check` (which panics, as
    /// `assert!` does, on a wrong run). Panics with the failure's report:
    /// the seed, the message, the shrunk faults and the command that
    /// replays it. `WEIR_SIM_SEEDS` (`a..b`, a longer search),
    /// `WEIR_SIM_SEED` (one seed, a replay), `WEIR_SIM_DELAYS` (`a..b`),
    /// `WEIR_SIM_CRASHES` (every instance's chance) and `WEIR_SIM_HOLDS`
    /// override the seeds and faults. Returns how many seeds ran, for a test
    /// that counts what its runs met (a replay runs one).
    pub fn check(self, check: impl Fn(&Run)) -> u64 {
        self.with_env()
            .over_seeds("passed", |sim| sim.find_failure(check))
    }

    /// Runs `find` over the seeds: panics with the failure it finds, else
    /// says how many seeds `passed` and how fast.
    fn over_seeds(&self, passed: &str, find: impl FnOnce(&Sim) -> Option<Failure>) -> u64 {
        let started = std::time::Instant::now();
        if let Some(failure) = find(self) {
            panic!("{}", failure.report());
        }
        let seeds = self.seeds.end.saturating_sub(self.seeds.start);
        let took = started.elapsed().as_secs_f64();
        println!(
            "weir-sim: flow `{}`: {seeds} seeds {passed} in {took:.2} s ({:.0} seeds/s)",
            self.flow.name,
            seeds as f64 / took.max(1e-9)
        );
        seeds
    }

    /// Runs every seed and checks that the flow's outputs do not depend on
    /// it: each instance prints the same lines on every seed as on the first
    /// (as a multiset: the order of its lines may change, since a stream's
    /// type says whether its order can be trusted, not its sink's). Seeds
    /// change every delivery's timing and order, so a flow whose types
    /// claim more than its closures keep (a commutative fold whose closure
    /// is not) is caught. Refused for a flow that accepts nondeterminism
    /// (`nondet!`): its outputs may differ, and `check` says what must hold.
    pub fn check_determinism(self) {
        self.with_env()
            .over_seeds("printed the same lines", Sim::find_nondeterminism);
    }

    /// The first seed on which an instance prints other lines than on the
    /// first seed, shrunk (see [`check_determinism`](Sim::check_determinism));
    /// `None` when there is none. Environment overrides are not applied.
    pub fn find_nondeterminism(&self) -> Option<Failure> {
        let flow = self.flow;
        if !flow.nondet.is_empty() {
            panic!(
                "weir-sim: flow `{}` accepts nondeterminism, so its outputs may differ from seed to seed:\n  {}\ncheck what must hold of them with `check` instead",
                flow.name,
                flow.nondet.join("\n  ")
            );
        }
        let first = self.seeds.start;
        let expected = printed(&self.run(first));
        self.find_failure(move |run| {
            let got = printed(run);
            for instance in expected.keys().chain(got.keys()) {
                let (want, have) = (expected.get(instance), got.get(instance));
                if want == have {
                    continue;
                }
                let count = |of: Option<&BTreeMap<String, usize>>, line: &str| {
                    of.and_then(|lines| lines.get(line)).copied().unwrap_or(0)
                };
                let line = want
                    .into_iter()
                    .chain(have)
                    .flat_map(BTreeMap::keys)
                    .find(|line| count(want, line) != count(have, line))
                    .expect("the two differ in some line");
                panic!(
                    "the flow's output depends on the seed: {instance} printed {line:?} {} time(s) on seed {first} and {} on this one",
                    count(want, line),
                    count(have, line)
                );
            }
        })
    }

    /// The first seed whose run fails `check` (or hangs), shrunk; `None` when
    /// every seed passes. Environment overrides are not applied.
    pub fn find_failure(&self, check: impl Fn(&Run)) -> Option<Failure> {
        let seed = self
            .seeds
            .clone()
            .find(|&seed| self.failure_of(seed, &self.faults, &check).is_some())?;
        Some(self.shrink(seed, &check))
    }

    /// Whether the run of `seed` with `faults` fails, and how.
    fn failure_of(
        &self,
        seed: u64,
        faults: &Faults,
        check: &impl Fn(&Run),
    ) -> Option<(String, Run)> {
        let run = run(
            self.flow,
            &self.sizes,
            &self.clients,
            seed,
            faults,
            &self.timing,
        );
        let hung = run.hung();
        if !hung.is_empty() {
            let message = format!(
                "hung: {} still running after {:?} of virtual time",
                hung.join(", "),
                self.timing.time_limit
            );
            return Some((message, run));
        }
        quietly(|| catch_unwind(AssertUnwindSafe(|| check(&run))))
            .err()
            .map(|panic| (panic_message(&*panic), run))
    }

    /// Fewer faults and shorter delays, as long as the seed still fails.
    fn shrink(&self, seed: u64, check: &impl Fn(&Run)) -> Failure {
        let mut faults = self.faults.clone();
        let (mut message, mut run) = self
            .failure_of(seed, &faults, check)
            .expect("the seed failed a moment ago: runs are deterministic");
        // Take the first smaller setting that still fails, until none does.
        for _ in 0..16 {
            let smaller = smaller_faults(&faults)
                .into_iter()
                .find_map(|f| Some((self.failure_of(seed, &f, check)?, f)));
            let Some(((m, r), f)) = smaller else {
                break;
            };
            (message, run, faults) = (m, r, f);
        }
        // The seed and delays always; crashes and holds where shrinking
        // turned them off (else the test's own chances hold).
        let mut replay_env = vec![
            ("WEIR_SIM_SEED".to_string(), seed.to_string()),
            (
                "WEIR_SIM_DELAYS".to_string(),
                format!("{}..{}", faults.delays.start, faults.delays.end),
            ),
        ];
        if !faults.any_crashes() {
            replay_env.push(("WEIR_SIM_CRASHES".to_string(), "0".to_string()));
        }
        if faults.holds == 0.0 {
            replay_env.push(("WEIR_SIM_HOLDS".to_string(), "0".to_string()));
        }
        Failure {
            seed,
            message,
            faults,
            run,
            replay_env,
        }
    }

    /// The seeds and faults the environment asks for, if it does.
    fn with_env(mut self) -> Sim {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let bad = |name: &str, value: &str, want: &str| -> ! {
            panic!("weir-sim: {name}={value:?} is not {want}")
        };
        let range = |name: &str| {
            var(name).map(|value| {
                value
                    .split_once("..")
                    .and_then(|(a, b)| Some(a.parse().ok()?..b.parse().ok()?))
                    .unwrap_or_else(|| bad(name, &value, "a range like 0..10"))
            })
        };
        // More seeds than the test names, for a long search; one seed replays.
        if let Some(seeds) = range("WEIR_SIM_SEEDS") {
            self.seeds = seeds;
        }
        if let Some(seed) = var("WEIR_SIM_SEED") {
            let s: u64 = seed
                .parse()
                .unwrap_or_else(|_| bad("WEIR_SIM_SEED", &seed, "a number"));
            self.seeds = s..s + 1;
        }
        if let Some(delays) = range("WEIR_SIM_DELAYS") {
            self.faults.delays = delays;
        }
        let chance = |name: &str| {
            var(name).map(|value| {
                value
                    .parse::<f64>()
                    .unwrap_or_else(|_| bad(name, &value, "a chance like 0.05"))
            })
        };
        if let Some(p) = chance("WEIR_SIM_CRASHES") {
            // Every instance's chance, roles named by `crashes_of` too.
            self.faults.crashes = p;
            self.faults.crashes_of.clear();
        }
        if let Some(p) = chance("WEIR_SIM_HOLDS") {
            self.faults.holds = p;
        }
        self
    }
}

/// Settings one step smaller than `faults`: no crashes, no holds, half the
/// longest delay, no shortest delay.
fn smaller_faults(faults: &Faults) -> Vec<Faults> {
    let mut out = Vec::new();
    if faults.any_crashes() {
        out.push(Faults {
            crashes: 0.0,
            crashes_of: Vec::new(),
            ..faults.clone()
        });
    }
    if faults.holds > 0.0 {
        out.push(Faults {
            holds: 0.0,
            ..faults.clone()
        });
    }
    let Range { start, end } = faults.delays;
    let half = (end / 2).max(start + 1);
    if half < end {
        out.push(Faults {
            delays: start..half,
            ..faults.clone()
        });
    }
    if start > 0 {
        out.push(Faults {
            delays: 0..end,
            ..faults.clone()
        });
    }
    out
}

thread_local! {
    static QUIET: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` with panic messages on this thread kept quiet: a failing check
/// is reported once, by [`Failure::report`], not at every shrinking step.
fn quietly<T>(f: impl FnOnce() -> T) -> T {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !QUIET.with(Cell::get) {
                previous(info);
            }
        }));
    });
    QUIET.with(|q| q.set(true));
    let out = f();
    QUIET.with(|q| q.set(false));
    out
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "the check panicked".to_string())
}

/// What each instance of the flow printed: each line, with how many times.
fn printed(run: &Run) -> BTreeMap<String, BTreeMap<String, usize>> {
    let mut printed: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
    for (instance, _) in &run.instances {
        let lines = printed.entry(instance.clone()).or_default();
        for line in run.lines_of(instance) {
            *lines.entry(line.to_string()).or_default() += 1;
        }
    }
    printed
}
