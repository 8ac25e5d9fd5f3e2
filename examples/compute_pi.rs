//! Deploys `compute_pi`: a leader and two workers estimate π for four seconds, then
//! every instance is sent SIGTERM, drains and exits.

use std::time::Duration;
use weir_deploy::{deploy_main, Deployment};

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    deploy_main("bins", |bins| {
        Deployment::new()
            .process("leader", bins.path("compute_pi-leader"))
            .cluster("worker", bins.path("compute_pi-worker"), 2)
            .stop_after(Duration::from_millis(4500))
            .timeout(Duration::from_secs(60))
    })
    .await
}
