//! Deploys the `membership` flow: a leader and three workers, until Ctrl-C.
//!
//! The leader sends a counter to every live worker over a tolerant edge and
//! prints `member <i> joined` / `member <i> left`; workers print `got <n>`.
//! Workers may fail without stopping the rest. With `--kill-and-restart NAME`
//! (say `worker/1`), the script kills that instance after 3 s and starts it
//! again 3 s later, so the loss and the rejoin show in the output.

use std::time::Duration;
use weir_deploy::{DeployError, Deployment, RoleBinaries};

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    let victim = match std::env::args().skip(1).collect::<Vec<_>>().as_slice() {
        [] => None,
        [flag, name] if flag == "--kill-and-restart" => Some(name.clone()),
        _ => {
            eprintln!(
                "usage: membership [--kill-and-restart NAME]   (NAME: worker/0, worker/1, ...)"
            );
            return std::process::ExitCode::from(2);
        }
    };
    match deploy(victim).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn deploy(victim: Option<String>) -> Result<(), DeployError> {
    let bins = RoleBinaries::of("bins")?;
    let deployment = Deployment::new()
        .process("leader", bins.path("membership-leader"))
        .cluster("worker", bins.path("membership-worker"), 3)
        .may_fail("worker");
    bins.build_used()?;
    let mut running = deployment.start().await?;
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
