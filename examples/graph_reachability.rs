//! Deploys `graph_reachability`: one process finds the vertices reachable from 1.

use std::time::Duration;
use weir_deploy::{deploy_main, Deployment};

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    deploy_main("bins", |bins| {
        Deployment::new()
            .process("process", bins.path("graph_reachability-process"))
            .timeout(Duration::from_secs(60))
    })
    .await
}
