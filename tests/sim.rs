//! Simulation tests: every role of a flow in this one process, its real
//! generated programs on weir-sim's seeded network, in virtual time.

/// The generated programs of the flows named in `tests/build.rs`.
#[allow(clippy::all, unused_imports, dead_code)]
mod simulation {
    include!(concat!(env!("OUT_DIR"), "/weir_simulation.rs"));
}

/// The tests, in `tests/sim/`. Every test's name starts with `sim::`, so
/// `cargo test -- sim` picks them.
mod sim {
    mod determinism;
    mod membership;
    mod paxos_kv;
    mod two_pc;
}

/// Runs the test `name` (its whole path, `sim::..`; ignored or not) of this
/// binary in another process, with `env` set and no other `WEIR_SIM_`
/// variable, so that it runs what the caller asks whatever this process
/// was given. Whether it passed, and what it printed (stdout, then stderr).
fn run_in_another_process(name: &str, env: &[(&str, &str)]) -> (bool, String) {
    let mut command = std::process::Command::new(std::env::current_exe().unwrap());
    command.args(["--exact", name, "--include-ignored", "--nocapture"]);
    for (key, _) in std::env::vars() {
        if key.starts_with("WEIR_SIM_") {
            command.env_remove(key);
        }
    }
    let output = command.envs(env.iter().copied()).output().unwrap();
    let printed = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.success(), printed)
}

/// How many runs must have met what a test counts (a leader crash, say):
/// `count` for every `per` seeds, of the `seeds` that ran. So a replay of
/// one seed (`WEIR_SIM_SEED`) asks for none, and a longer search
/// (`WEIR_SIM_SEEDS`) for as many per seed as the test's own seeds.
fn expected(count: usize, per: u64, seeds: u64) -> usize {
    (count as u64 * seeds / per) as usize
}
