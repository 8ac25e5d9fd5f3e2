//! The benchmark suite's quick mode: every workload on every system, small sizes.
//! Asserts only that every answer is right (the driver checks each run), never speed.

use std::process::Command;

#[test]
fn quick_benchmark_suite_gets_every_answer_right() {
    let output = Command::new(env!("CARGO"))
        .args([
            "run",
            "--quiet",
            "-p",
            "examples",
            "--example",
            "bench",
            "--",
        ])
        .args(["--quick", "--reps", "1"])
        .output()
        .expect("cargo runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "bench failed:\n{stdout}\n{stderr}");
    for workload in [
        "pipe",
        "pipe_struct",
        "broadcast",
        "ping_pong",
        "word_count",
    ] {
        for system in ["weir", "tokio (by hand)"] {
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
