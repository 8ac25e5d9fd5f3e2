//! `bench --instructions`: user-space instructions per record, counted by
//! valgrind's cachegrind, which noise cannot move (no hardware counters, no
//! timing). Each role of each system runs under `valgrind --tool=cachegrind`
//! at two sizes, `n` and `3n`; the difference over `2n` records is what a
//! record costs, with start-up and shutdown cancelled out. Answers are
//! checked as in the timed suite.

use crate::launch::{self, Instance, Until};
use crate::workloads::{System, Systems, Workload};
use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

/// The workloads counted, and `n` for each (full, quick).
const COUNTED: [(Workload, u64, u64); 3] = [
    (Workload::Pipe, 1_000_000, 50_000),
    (Workload::PipeStruct, 200_000, 10_000),
    (Workload::Broadcast, 1_000_000, 50_000),
];

const SYSTEMS: [System; 4] = [
    System::Weir,
    System::TokioSealed,
    System::WeirInClear,
    System::Tokio,
];

/// Counts every workload on every system; the table, in Markdown.
pub fn count(systems: &Systems, quick: bool, only: Option<&str>) -> Result<String, String> {
    if Command::new("valgrind").arg("--version").output().is_err() {
        return Err("`valgrind` is not installed (Debian: valgrind)".into());
    }
    let mut table = String::from(
        "| workload | role | weir | sealed tokio | weir ÷ sealed tokio | weir, in clear | tokio | weir in clear ÷ tokio |\n\
         |---|---|---|---|---|---|---|---|\n",
    );
    for (workload, full, small) in COUNTED {
        if only.is_some_and(|o| o != workload.name()) {
            continue;
        }
        let n = if quick { small } else { full };
        eprintln!("counting {} ({n} and {}) ...", workload.name(), 3 * n);
        // Per system, per role: instructions per record.
        let mut counts: BTreeMap<System, BTreeMap<String, f64>> = BTreeMap::new();
        for system in SYSTEMS {
            let at = |n| role_instructions(systems, workload, system, n);
            let (one, three) = (at(n)?, at(3 * n)?);
            let per_record = one
                .iter()
                .map(|(role, &i)| (role.clone(), (three[role] - i) / (2 * n) as f64))
                .collect();
            counts.insert(system, per_record);
        }
        for role in counts[&System::Weir].keys() {
            let of = |system: System| counts[&system][role];
            table.push_str(&format!(
                "| {} | {role} | {:.1} | {:.1} | {:.2} | {:.1} | {:.1} | {:.2} |\n",
                workload.name(),
                of(System::Weir),
                of(System::TokioSealed),
                of(System::Weir) / of(System::TokioSealed),
                of(System::WeirInClear),
                of(System::Tokio),
                of(System::WeirInClear) / of(System::Tokio),
            ));
        }
    }
    Ok(table)
}

/// One run at size `n` under cachegrind, answer checked: the instructions
/// each role executed (per instance of the role).
fn role_instructions(
    systems: &Systems,
    workload: Workload,
    system: System,
    n: u64,
) -> Result<BTreeMap<String, f64>, String> {
    let instances = workload
        .instances(systems, system, n)?
        .into_iter()
        .map(|i| Instance {
            command: under_cachegrind(&i.command),
            name: i.name,
        })
        .collect();
    let run = launch::run(instances, Until::AllExit, Duration::from_secs(600))
        .map_err(|e| format!("{}: {e}", system.name()))?;
    workload
        .check(&run, n, None)
        .map_err(|e| format!("{}: wrong answer: {e}", system.name()))?;
    let mut roles: BTreeMap<String, (f64, f64)> = BTreeMap::new();
    for instance in &run.instances {
        let refs = instruction_refs(&instance.stderr).ok_or_else(|| {
            format!(
                "{}: {}: no `I refs` line from cachegrind",
                system.name(),
                instance.name
            )
        })?;
        let role = instance.name.split('/').next().unwrap_or_default();
        let (sum, count) = roles.entry(role.to_string()).or_default();
        *sum += refs as f64;
        *count += 1.0;
    }
    Ok(roles
        .into_iter()
        .map(|(role, (sum, count))| (role, sum / count))
        .collect())
}

/// `command` run by `valgrind --tool=cachegrind`, counting instructions only.
fn under_cachegrind(command: &Command) -> Command {
    let mut wrapped = Command::new("valgrind");
    wrapped
        .args(["--tool=cachegrind", "--cache-sim=no"])
        .arg("--cachegrind-out-file=/dev/null")
        .arg(command.get_program())
        .args(command.get_args());
    for (key, value) in command.get_envs() {
        match value {
            Some(value) => wrapped.env(key, value),
            None => wrapped.env_remove(key),
        };
    }
    if let Some(dir) = command.get_current_dir() {
        wrapped.current_dir(dir);
    }
    wrapped
}

/// The count in cachegrind's `==PID== I   refs:      1,234,567` line.
fn instruction_refs(stderr: &str) -> Option<u64> {
    let line = stderr.lines().find(|l| l.contains("I   refs:"))?;
    let digits: String = line
        .split("refs:")
        .nth(1)?
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}
