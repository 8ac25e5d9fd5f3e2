//! Deploys the `hello` flow on this machine: one leader, two workers.
//!
//! `cargo run --example hello` builds the role binaries (in this script's
//! profile), starts them, and prints their output as `[worker/0] hello #0`.
//! `-- --hosts hosts.toml` runs them on other machines over ssh instead, and
//! `-- --manifests DIR --image IMAGE` writes Kubernetes manifests.

use std::time::Duration;
use weir_deploy::{deploy_main, Deployment};

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    deploy_main("{{name}}-bins", |bins| {
        Deployment::new()
            .process("leader", bins.path("hello-leader"))
            .cluster("worker", bins.path("hello-worker"), 2)
            .timeout(Duration::from_secs(60))
    })
    .await
}
