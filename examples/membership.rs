//! Deploys the `membership` flow: a leader and three workers, until Ctrl-C.
//!
//! The leader sends a counter to every live worker over a tolerant edge and
//! prints `member <i> joined` / `member <i> left`; workers print `got <n>`.
//! Workers may fail without stopping the rest. With `--kill-and-restart NAME`
//! (say `worker/1`), the script kills that instance after 3 s and starts it
//! again 3 s later, so the loss and the rejoin show in the output.

use std::time::Duration;
use weir_deploy::{deploy_main_with_flags, flag_value, DeployError, Deployment, RunningDeployment};

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    deploy_main_with_flags(
        "bins",
        &["--kill-and-restart"],
        |bins| {
            Deployment::new()
                .process("leader", bins.path("membership-leader"))
                .cluster("worker", bins.path("membership-worker"), 3)
                .may_fail("worker")
        },
        |running| kill_and_restart(running, flag_value("--kill-and-restart")),
    )
    .await
}

/// With a victim, kills it after 3 s and starts it again 3 s later; then
/// waits for the deployment (until Ctrl-C).
async fn kill_and_restart(
    mut running: RunningDeployment,
    victim: Option<String>,
) -> Result<(), DeployError> {
    if let Some(name) = victim {
        tokio::time::sleep(Duration::from_secs(3)).await;
        eprintln!("membership: killing {name}");
        running.kill(&name).await?;
        tokio::time::sleep(Duration::from_secs(3)).await;
        eprintln!("membership: restarting {name}");
        running.restart(&name)?;
    }
    running.wait().await
}
