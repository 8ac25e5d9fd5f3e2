//! Deploys the `paxos_kv` flow on this machine until Ctrl-C: 2 proposers, 3
//! acceptors and 2 replicas (f = 1), and prints where Redis clients connect.
//!
//! ```text
//! cargo run --release --example paxos_kv
//! redis-cli -p <port> SET greeting hello
//! ```
//!
//! With `--secure-clients DIR`, clients connect over TLS and must `AUTH`:
//! the script makes (or keeps) in DIR a certificate authority `ca.pem`, the
//! proposers' certificate and key, and a `password`, and prints the
//! `redis-cli --tls --cacert DIR/ca.pem -a ...` line to use.
//!
//! Any instance may die (kill one by its pid): the store goes on while at
//! most one of each role is down, and the deployment keeps running.

use std::path::{Path, PathBuf};
use weir_deploy::{
    client_certificates, deploy_main_with_flags, flag_value, ClientCertificates, DeployError,
    Deployment, RunningDeployment,
};
use weir_runtime::auth::Key;

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    // The store's state, for this run only: a later run starts afresh.
    let state = std::env::temp_dir().join(format!("paxos_kv-{}", std::process::id()));
    let secure = flag_value("--secure-clients").map(PathBuf::from);
    let secured = match secure.as_deref().map(secure_clients).transpose() {
        Ok(secured) => secured,
        Err(e) => {
            eprintln!("error: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let outcome = deploy_main_with_flags(
        "bins",
        &["--secure-clients"],
        |bins| {
            let mut store = Deployment::new()
                .state_dirs(&state)
                .cluster("proposer", bins.path("paxos_kv-proposer"), 2)
                .cluster("acceptor", bins.path("paxos_kv-acceptor"), 3)
                .cluster("replica", bins.path("paxos_kv-replica"), 2)
                .endpoint("proposer", "clients")
                .may_fail("proposer")
                .may_fail("acceptor")
                .may_fail("replica");
            if let Some(secured) = &secured {
                store = store
                    .env(
                        "PAXOS_KV_PASSWORD_FILE",
                        secured.password.display().to_string(),
                    )
                    .client_tls(&secured.certificates);
            }
            store
        },
        |running| print_clients(running, secured.clone()),
    )
    .await;
    let _ = std::fs::remove_dir_all(&state);
    outcome
}

/// What clients need to connect when they are secured.
#[derive(Clone)]
struct Secured {
    certificates: ClientCertificates,
    password: PathBuf,
}

/// Makes (or keeps) the certificates and the password in `dir`.
fn secure_clients(dir: &Path) -> Result<Secured, DeployError> {
    let certificates = client_certificates(dir, &["localhost", "127.0.0.1"])?;
    let password = dir.join("password");
    if !password.exists() {
        // A random secret in hex, readable by its owner only: what a key file is.
        Key::generate(&password).map_err(|e| DeployError::new(e.to_string()))?;
    }
    Ok(Secured {
        certificates,
        password,
    })
}

/// Says where Redis clients connect, then waits for the store to end.
async fn print_clients(
    running: RunningDeployment,
    secured: Option<Secured>,
) -> Result<(), DeployError> {
    let clients = running.endpoint("proposer", "clients");
    for (i, address) in clients.iter().enumerate() {
        println!("paxos_kv: proposer/{i} serves Redis clients on {address}");
    }
    if let Some(port) = clients.first().and_then(|a| a.rsplit(':').next()) {
        let how = match &secured {
            Some(s) => format!(
                "redis-cli -p {port} --tls --cacert {} --no-auth-warning -a \"$(cat {})\" SET greeting hello",
                s.certificates.ca.display(),
                s.password.display()
            ),
            None => format!("redis-cli -p {port} SET greeting hello"),
        };
        println!("paxos_kv: try `{how}`; Ctrl-C stops the store");
    }
    running.wait().await
}
