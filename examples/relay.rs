//! Deploys the `relay` flow: a leader, two `front` members and two `back`
//! members; the leader prints each number's route through the two clusters.

use std::time::Duration;
use weir_deploy::{deploy_main, Deployment};

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    deploy_main("bins", |bins| {
        Deployment::new()
            .process("leader", bins.path("relay-leader"))
            .cluster("front", bins.path("relay-front"), 2)
            .cluster("back", bins.path("relay-back"), 2)
            .timeout(Duration::from_secs(60))
    })
    .await
}
