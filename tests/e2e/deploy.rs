//! Local deployments: the deploy script's output, and failing instances.

use crate::support::*;
use std::process::Command;
use std::time::{Duration, Instant};
use weir_deploy::Deployment;

#[test]
fn the_broadcast_deploy_script_prints_every_worker_line_and_exits_0() {
    // The deploy script as a user runs it (the debug build of the example).
    let script = deploy_script("broadcast");
    let out = finish(
        Command::new(script)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
        LIMIT,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let mut lines: Vec<String> = stdout(&out).lines().map(str::to_string).collect();
    lines.sort();
    let mut expected: Vec<String> = (0..2)
        .flat_map(|w| (0..10).map(move |n| format!("[worker/{w}] {n}")))
        .collect();
    expected.sort();
    assert_eq!(lines, expected);
}

#[tokio::test]
async fn a_failing_instance_is_named_and_the_others_are_stopped() {
    // The workers run the wrong program: it rejects the topology at once, while the
    // leader would keep trying to reach them for 30 s.
    let started = Instant::now();
    let result = Deployment::new()
        .process("leader", bin("broadcast-leader"))
        .cluster("worker", bin("pipeline-consumer"), 2)
        .timeout(Duration::from_secs(60))
        .run()
        .await;
    let err = result.expect_err("the deployment must fail").to_string();
    assert!(err.starts_with("worker/"), "{err}");
    assert!(
        err.contains("failed") && err.contains("the other instances were stopped"),
        "{err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "the leader was not stopped: {:?}",
        started.elapsed()
    );
}

#[test]
fn a_binary_the_package_lacks_is_named_with_the_binaries_it_has() {
    let bins = weir_deploy::RoleBinaries::of("bins").unwrap();
    bins.path("broadcast-leader");
    bins.path("brodcast-worker");
    let err = bins.build_used().unwrap_err().to_string();
    assert!(
        err.starts_with(
            "package `bins` has no binary `brodcast-worker`: is the flow in its build.rs"
        ),
        "{err}"
    );
    assert!(err.contains("broadcast-worker"), "{err}");
    let err = weir_deploy::RoleBinaries::of("binz").unwrap();
    err.path("broadcast-leader");
    let err = err.build_used().unwrap_err().to_string();
    assert!(
        err.starts_with("no package `binz` in the workspace"),
        "{err}"
    );
    assert!(err.contains("bins"), "{err}");
}

/// Once `ready` returns, every instance is linked and its endpoints listen:
/// a client connects at once, with no retry, and is answered.
#[tokio::test]
async fn once_ready_a_client_connects_to_an_endpoint_at_the_first_try() {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let mut running = Deployment::new()
        .process("front", bin("corpus_counter-front"))
        .cluster("shard", bin("corpus_counter-shard"), 2)
        .endpoint("front", "clients")
        .timeout(Duration::from_secs(60))
        .capture_output()
        .start()
        .await
        .expect("the deployment starts");
    running.ready().await.expect("every instance is ready");
    let address = running.endpoint("front", "clients")[0].clone();
    let stream = tokio::net::TcpStream::connect(&address)
        .await
        .expect("the endpoint listens once the deployment is ready");
    let (read, mut write) = stream.into_split();
    write.write_all(b"k 5\n").await.unwrap();
    let mut answer = String::new();
    BufReader::new(read).read_line(&mut answer).await.unwrap();
    assert_eq!(answer, "k=5\n");
    running.stop();
    running.wait().await.expect("the deployment stops cleanly");
}

/// A deployment that cannot become ready says why, as `wait` would.
#[tokio::test]
async fn ready_fails_naming_the_instance_that_failed() {
    let mut running = Deployment::new()
        .process("leader", bin("broadcast-leader"))
        .cluster("worker", bin("pipeline-consumer"), 2)
        .timeout(Duration::from_secs(60))
        .capture_output()
        .start()
        .await
        .expect("the deployment starts");
    let err = running
        .ready()
        .await
        .expect_err("a worker fails")
        .to_string();
    assert!(err.contains("worker/"), "{err}");
    assert!(err.contains("failed"), "{err}");
    let err = running.wait().await.expect_err("the same failure");
    assert!(err.to_string().contains("worker/"), "{err}");
}
