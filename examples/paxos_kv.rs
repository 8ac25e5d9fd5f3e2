//! Deploys the `paxos_kv` flow on this machine until Ctrl-C: 2 proposers, 3
//! acceptors and 2 replicas (f = 1), and prints where Redis clients connect.
//!
//! ```text
//! cargo run --release --example paxos_kv
//! redis-cli -p <port> SET greeting hello
//! ```
//!
//! Any instance may die (kill one by its pid): the store goes on while at
//! most one of each role is down, and the deployment keeps running.

use weir_deploy::{deploy_main_with, Deployment, RunningDeployment};

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    // The acceptors' state files, for this run only: the replicas keep none,
    // so a later run starts the whole store afresh.
    let state = std::env::temp_dir().join(format!("paxos_kv-{}", std::process::id()));
    let outcome = deploy_main_with(
        "bins",
        |bins| {
            Deployment::new()
                .env("PAXOS_KV_STATE_DIR", state.display().to_string())
                .cluster("proposer", bins.path("paxos_kv-proposer"), 2)
                .cluster("acceptor", bins.path("paxos_kv-acceptor"), 3)
                .cluster("replica", bins.path("paxos_kv-replica"), 2)
                .endpoint("proposer", "clients")
                .may_fail("proposer")
                .may_fail("acceptor")
                .may_fail("replica")
        },
        print_clients,
    )
    .await;
    let _ = std::fs::remove_dir_all(&state);
    outcome
}

/// Says where Redis clients connect, then waits for the store to end.
async fn print_clients(running: RunningDeployment) -> Result<(), weir_deploy::DeployError> {
    let clients = running.endpoint("proposer", "clients");
    for (i, address) in clients.iter().enumerate() {
        println!("paxos_kv: proposer/{i} serves Redis clients on {address}");
    }
    if let Some(port) = clients.first().and_then(|a| a.rsplit(':').next()) {
        println!("paxos_kv: try `redis-cli -p {port} SET greeting hello`; Ctrl-C stops the store");
    }
    running.wait().await
}
