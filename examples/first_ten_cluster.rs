//! Deploys `first_ten_cluster`: a leader and four workers, which double 0 to 9.

use std::time::Duration;
use weir_deploy::{deploy_main, Deployment};

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    deploy_main("bins", |bins| {
        Deployment::new()
            .process("leader", bins.path("first_ten_cluster-leader"))
            .cluster("worker", bins.path("first_ten_cluster-worker"), 4)
            .timeout(Duration::from_secs(60))
    })
    .await
}
