//! Deploys `first_ten`: one process prints 0 to 9.

use std::time::Duration;
use weir_deploy::{deploy_main, Deployment};

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    deploy_main("bins", |bins| {
        Deployment::new()
            .process("process", bins.path("first_ten-process"))
            .timeout(Duration::from_secs(60))
    })
    .await
}
