//! Deploys `first_ten_distributed`: `first` sends 0 to 9 to `second`, which prints them.

use std::time::Duration;
use weir_deploy::{deploy_main, Deployment};

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    deploy_main("bins", |bins| {
        Deployment::new()
            .process("first", bins.path("first_ten_distributed-first"))
            .process("second", bins.path("first_ten_distributed-second"))
            .timeout(Duration::from_secs(60))
    })
    .await
}
