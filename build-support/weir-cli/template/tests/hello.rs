//! The `hello` flow, deployed as a user would: one leader, three workers.

use std::time::Duration;
use weir_deploy::{Deployment, RoleBinaries};

#[tokio::test]
async fn every_worker_hears_every_greeting_once() {
    let bins = RoleBinaries::build("{{name}}-bins").expect("role binaries build");
    let mut running = Deployment::new()
        .process("leader", bins.path("hello-leader"))
        .cluster("worker", bins.path("hello-worker"), 3)
        .timeout(Duration::from_secs(60))
        .capture_output()
        .start()
        .await
        .expect("deployment starts");
    let mut lines = Vec::new();
    while let Some(line) = running.next_line().await {
        lines.push(line);
    }
    running.wait().await.expect("deployment ends cleanly");
    for worker in 0..3 {
        for n in 0..3 {
            let line = format!("[worker/{worker}] hello #{n}");
            let heard = lines.iter().filter(|l| **l == line).count();
            assert_eq!(heard, 1, "`{line}` seen {heard} times in {lines:#?}");
        }
    }
}
