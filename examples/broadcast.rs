//! Deploys the `broadcast` flow on this machine: one leader, two workers.
//!
//! `cargo run --release --example broadcast` builds the role binaries (same
//! profile), starts them with a generated topology, and prints every line of
//! their output prefixed with the instance's name, e.g. `[worker/0] 3`.

use std::time::Duration;
use weir_deploy::{deploy_main, Deployment};

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    deploy_main("bins", |bins| {
        Deployment::new()
            .process("leader", bins.path("broadcast-leader"))
            .cluster("worker", bins.path("broadcast-worker"), 2)
            .timeout(Duration::from_secs(60))
    })
    .await
}
