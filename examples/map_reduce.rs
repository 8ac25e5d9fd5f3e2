//! Deploys `map_reduce`: a leader and three workers count the words of a text.

use std::time::Duration;
use weir_deploy::{deploy_main, Deployment};

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    deploy_main("bins", |bins| {
        Deployment::new()
            .process("leader", bins.path("map_reduce-leader"))
            .cluster("worker", bins.path("map_reduce-worker"), 3)
            .timeout(Duration::from_secs(60))
    })
    .await
}
