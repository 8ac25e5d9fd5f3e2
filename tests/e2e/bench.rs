//! The benchmark suite's quick mode: every workload on every system, small sizes.
//! Asserts only that every answer is right (the driver checks each run), never speed.

use crate::support::require;
use std::process::Command;

/// `cargo run -p examples --example EXAMPLE -- ARGS`, which must succeed:
/// what it printed on stdout.
fn run_example(example: &str, args: &[&str]) -> String {
    let output = Command::new(env!("CARGO"))
        .args([
            "run",
            "--quiet",
            "-p",
            "examples",
            "--example",
            example,
            "--",
        ])
        .args(args)
        .output()
        .expect("cargo runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{example} {} failed:\n{stdout}\n{stderr}",
        args.join(" ")
    );
    stdout
}

#[test]
fn quick_benchmark_suite_gets_every_answer_right() {
    let stdout = run_example("bench", &["--quick", "--reps", "1"]);
    for workload in [
        "pipe",
        "pipe_struct",
        "broadcast",
        "ping_pong",
        "word_count",
    ] {
        for system in [
            "weir",
            "weir, in clear",
            "sealed tokio (by hand)",
            "tokio (by hand)",
        ] {
            assert!(
                stdout
                    .lines()
                    .any(|l| l.starts_with(&format!("| {workload} "))
                        && l.contains(&format!("| {system} "))),
                "no {workload} row for {system}:\n{stdout}"
            );
        }
    }
    // The headline throughput workloads run at a second, smaller size too.
    for workload in ["pipe", "pipe_struct", "broadcast"] {
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with(&format!("| {workload} (")) && l.contains("| weir ")),
            "no second size of {workload}:\n{stdout}"
        );
    }
    assert!(
        stdout.lines().filter(|l| l.contains("| timely ")).count() == 7,
        "Timely runs pipe, pipe_struct, broadcast (two sizes each) and word_count:\n{stdout}"
    );
}

/// The suite's instruction-count mode on the quick sizes: every role of the
/// pipe, pipe_struct and broadcast, on every system, under cachegrind, each
/// answer checked; the counts are printed, never judged (this is a debug
/// build).
#[test]
fn quick_instruction_counts_cover_every_role_of_every_system() {
    drop(require("valgrind", "valgrind"));
    let stdout = run_example("bench", &["--instructions", "--quick"]);
    for (workload, role) in [
        ("pipe", "sender"),
        ("pipe", "receiver"),
        ("pipe_struct", "sender"),
        ("pipe_struct", "receiver"),
        ("broadcast", "leader"),
        ("broadcast", "member"),
    ] {
        let row = stdout
            .lines()
            .find(|l| l.starts_with(&format!("| {workload} | {role} |")))
            .unwrap_or_else(|| panic!("no row for {workload} {role}:\n{stdout}"));
        let counts: Vec<f64> = row
            .split('|')
            .skip(3)
            .filter_map(|cell| cell.trim().parse().ok())
            .collect();
        assert!(
            counts.len() == 6 && counts.iter().all(|c| *c > 0.0),
            "{workload} {role}: six positive figures expected: {row}"
        );
    }
}

/// The key-value benchmark's quick mode: `redis-benchmark` against the Paxos
/// store and a `redis-server`, in clear and over TLS with `AUTH`, and with
/// each durability beside Redis's append-only file; every row, the
/// machine's phase and Hydro's lines printed.
#[test]
fn quick_key_value_benchmark_runs_both_systems() {
    drop(require("redis-benchmark", "redis-tools"));
    drop(require("redis-server", "redis-server"));
    let stdout = run_example("bench_kv", &["--quick"]);
    for test in ["SET", "GET"] {
        for (clients, pipeline, redis, durability) in [
            ("plain", 1, "none", "flush"),
            ("plain", 16, "none", "flush"),
            ("TLS + AUTH", 16, "none", "flush"),
            ("plain", 16, "AOF everysec", "flush"),
            ("plain", 1, "AOF always", "sync"),
            ("plain", 16, "AOF always", "sync"),
        ] {
            for (system, kept) in [("redis-server", redis), ("paxos_kv f=1", durability)] {
                let row = format!("| {test} | {clients} | {pipeline} | {kept} | {system} |");
                assert!(stdout.contains(&row), "no row {row}:\n{stdout}");
            }
            let line =
                format!("paxos_kv {test} -P {pipeline} ({clients}, {durability}): Throughput: ");
            assert!(stdout.contains(&line), "no line {line:?}:\n{stdout}");
        }
    }
    assert!(
        stdout.lines().any(|line| line.starts_with("phase: ")
            && line.contains("redis-server in memory ran SET -P 16 at")),
        "no phase line:\n{stdout}"
    );
}

/// `bench_kv --phase`: a lone `redis-server`'s `SET -P 16` rate, and the
/// phase that rate names, without the store.
#[test]
fn key_value_benchmark_reads_the_phase_alone() {
    drop(require("redis-benchmark", "redis-tools"));
    drop(require("redis-server", "redis-server"));
    let stdout = run_example("bench_kv", &["--phase"]);
    let line = stdout
        .lines()
        .find(|l| l.starts_with("phase: "))
        .unwrap_or_else(|| panic!("no phase line:\n{stdout}"));
    let number_after = |mark: &str| -> f64 {
        line.split(mark)
            .nth(1)
            .and_then(|rest| rest.split([' ', ')']).next())
            .and_then(|m| m.parse().ok())
            .unwrap_or_else(|| panic!("no number after {mark:?} in {line:?}"))
    };
    let (rate, fast_from) = (
        number_after(" ran SET -P 16 at "),
        number_after("fast from "),
    );
    assert!(rate > 0.0, "{line}");
    // The rate is printed rounded: within that rounding of the line, either phase is right.
    if (rate - fast_from).abs() > 0.01 {
        let fast = line.starts_with("phase: fast;");
        assert_eq!(
            fast,
            rate >= fast_from,
            "the phase disagrees with the rate: {line}"
        );
    }
    assert!(
        !stdout.contains("| paxos_kv"),
        "--phase runs Redis alone:\n{stdout}"
    );
}

/// 300 k SETs to one key, each on a new connection, against the store (the
/// key-value benchmark's soak mode): no instance dies, and none grows by
/// 8 MiB or more between the 100 k and 300 k marks (memory that grows with
/// every connection ever made would: replicas that kept every session grew
/// by 40 MiB per 100 k).
#[test]
fn the_store_under_300k_reconnecting_clients_keeps_its_memory() {
    drop(require("redis-benchmark", "redis-tools"));
    drop(require("redis-server", "redis-server"));
    let stdout = run_example(
        "bench_kv",
        &["--soak", "300000", "--steps", "3", "--max-growth-mib", "8"],
    );
    for mark in [100_000, 200_000, 300_000] {
        let row = format!("| reconnecting | {mark} |");
        assert!(stdout.contains(&row), "no row {row}:\n{stdout}");
    }
    assert!(
        stdout.contains("no instance grew by 8 MiB or more between 100000 and 300000"),
        "{stdout}"
    );
}
