//! Deploys `two_pc`: a coordinator and three participants run 100 transactions.

use std::time::Duration;
use weir_deploy::{deploy_main, Deployment};

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    deploy_main("bins", |bins| {
        Deployment::new()
            .process("coordinator", bins.path("two_pc-coordinator"))
            .cluster("participant", bins.path("two_pc-participant"), 3)
            .timeout(Duration::from_secs(60))
    })
    .await
}
