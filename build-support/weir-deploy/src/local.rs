//! A deployment on this machine: every instance a local process.

use std::fmt;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::watch;
use tokio::task::JoinSet;
use weir_runtime::auth::Key;
use weir_runtime::topology::Topology;

/// Why a deployment failed, naming the instance where it can.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeployError {
    message: String,
}

impl DeployError {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        DeployError {
            message: message.into(),
        }
    }
}

impl fmt::Display for DeployError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DeployError {}

struct RoleEntry {
    role: String,
    binary: PathBuf,
    members: Option<usize>,
}

/// Role binaries to start together on localhost.
///
/// [`run`](Deployment::run) picks free ports, writes the topology file and a new
/// key (mode 0600), starts every instance (`--topology`, `--key-file`,
/// `--index`), prefixes each output line with the
/// instance's name (`[worker/1] ...`), and waits. If an instance fails, the others
/// are stopped and the error names it; nothing is left running.
#[must_use = "call `.run()` to start the deployment"]
#[derive(Default)]
pub struct Deployment {
    roles: Vec<RoleEntry>,
    timeout: Option<Duration>,
    stop_after: Option<Duration>,
    args: Vec<String>,
    envs: Vec<(String, String)>,
}

impl Deployment {
    pub fn new() -> Self {
        Self::default()
    }

    /// One instance of `role`, named `role`.
    pub fn process(mut self, role: &str, binary: impl Into<PathBuf>) -> Self {
        self.roles.push(RoleEntry {
            role: role.into(),
            binary: binary.into(),
            members: None,
        });
        self
    }

    /// `members` instances of `role`, named `role/0`, `role/1`, ...
    pub fn cluster(mut self, role: &str, binary: impl Into<PathBuf>, members: usize) -> Self {
        self.roles.push(RoleEntry {
            role: role.into(),
            binary: binary.into(),
            members: Some(members),
        });
        self
    }

    /// Stops everything and fails if the deployment has not ended after `limit`.
    pub fn timeout(mut self, limit: Duration) -> Self {
        self.timeout = Some(limit);
        self
    }

    /// Sends SIGTERM to every instance after `period`, for flows that run until
    /// stopped: each then drains and must exit successfully.
    pub fn stop_after(mut self, period: Duration) -> Self {
        self.stop_after = Some(period);
        self
    }

    /// Extra arguments given to every instance.
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// An environment variable set for every instance.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.envs.push((key.into(), value.into()));
        self
    }

    /// Starts every instance and waits for all to exit. SIGINT or SIGTERM (Ctrl-C)
    /// is passed on to every instance as SIGTERM: each drains and exits, and the
    /// deployment ends when all have; a second signal, or instances still running
    /// 10 s later, are killed. Nothing is left running either way.
    pub async fn run(self) -> Result<(), DeployError> {
        // One directory per run: a process may run several deployments at once.
        static RUNS: AtomicUsize = AtomicUsize::new(0);
        let run = RUNS.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("weir-deploy-{}-{run}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir); // left by a killed run with this pid
        std::fs::create_dir_all(&dir)
            .map_err(|e| DeployError::new(format!("cannot create {}: {e}", dir.display())))?;
        let outcome = self.run_in(&dir).await;
        let _ = std::fs::remove_dir_all(&dir);
        outcome
    }

    async fn run_in(self, dir: &std::path::Path) -> Result<(), DeployError> {
        let mut topology = Topology::default();
        let mut instances = Vec::new(); // (name, binary, index)
        for entry in &self.roles {
            let count = entry.members.unwrap_or(1);
            let mut addresses = Vec::with_capacity(count);
            for index in 0..count {
                addresses.push(format!("127.0.0.1:{}", free_port()?));
                let (name, index) = match entry.members {
                    Some(_) => (format!("{}/{index}", entry.role), Some(index)),
                    None => (entry.role.clone(), None),
                };
                instances.push((name, entry.binary.clone(), index));
            }
            topology.set(&entry.role, addresses);
        }
        let topology_file = dir.join("topology.toml");
        std::fs::write(&topology_file, topology.to_toml()).map_err(|e| {
            DeployError::new(format!("cannot write {}: {e}", topology_file.display()))
        })?;
        // A fresh key per deployment: instances of another one cannot join.
        let key_file = dir.join("weir.key");
        Key::generate(&key_file).map_err(|e| DeployError::new(e.to_string()))?;

        let (stop, stop_rx) = watch::channel(false);
        let (terminate, terminate_rx) = watch::channel(false);
        let (stop, terminate) = (Arc::new(stop), Arc::new(terminate));
        if let Some(period) = self.stop_after {
            let terminate = terminate.clone();
            tokio::spawn(async move {
                tokio::time::sleep(period).await;
                let _ = terminate.send(true);
            });
        }
        let signals = tokio::spawn(pass_on_signals(terminate.clone(), stop.clone()));
        let mut exits = JoinSet::new();
        let mut output = JoinSet::new();
        let mut last_errors = Vec::new();
        let mut started = Ok(());
        for (name, binary, index) in instances {
            let mut command = Command::new(&binary);
            command
                .arg("--topology")
                .arg(&topology_file)
                .arg("--key-file")
                .arg(&key_file)
                .args(&self.args)
                .envs(self.envs.iter().map(|(k, v)| (k, v)));
            if let Some(index) = index {
                command.arg("--index").arg(index.to_string());
            }
            command
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .kill_on_drop(true);
            let mut child = match command.spawn() {
                Ok(child) => child,
                Err(e) => {
                    started = Err(DeployError::new(format!(
                        "cannot start {name} ({}): {e}",
                        binary.display()
                    )));
                    break;
                }
            };
            let stdout = child.stdout.take().expect("piped");
            let stderr = child.stderr.take().expect("piped");
            let last_error = Arc::new(Mutex::new(None));
            last_errors.push((name.clone(), last_error.clone()));
            output.spawn(prefix_lines(
                name.clone(),
                stdout,
                tokio::io::stdout(),
                None,
            ));
            output.spawn(prefix_lines(
                name.clone(),
                stderr,
                tokio::io::stderr(),
                Some(last_error),
            ));
            exits.spawn(supervise(
                name,
                child,
                stop_rx.clone(),
                terminate_rx.clone(),
            ));
        }

        let waited = match started {
            Err(e) => Err(e.into()),
            Ok(()) => match self.timeout {
                Some(limit) => tokio::time::timeout(limit, first_failure(&mut exits))
                    .await
                    .unwrap_or_else(|_| {
                        Err(DeployError::new(format!(
                            "the deployment did not end within {limit:?}; it was stopped"
                        ))
                        .into())
                    }),
                None => first_failure(&mut exits).await,
            },
        };
        // On failure, stop the rest; either way, wait for every instance and line.
        let _ = stop.send(true);
        signals.abort();
        while exits.join_next().await.is_some() {}
        while output.join_next().await.is_some() {}
        waited.map_err(|failure| match failure {
            Failure::Instance(name, status) => {
                let said = last_errors
                    .iter()
                    .find(|(n, _)| *n == name)
                    .and_then(|(_, line)| line.lock().ok()?.clone())
                    .map(|line| format!(": {line}"))
                    .unwrap_or_default();
                DeployError::new(format!(
                    "{name} failed ({status}); the other instances were stopped{said}"
                ))
            }
            Failure::Other(e) => e,
        })
    }
}

/// How long instances have to exit after SIGTERM before they are killed.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// Passes SIGINT/SIGTERM on to every instance (`terminate`); kills them all
/// (`stop`) on a second signal or when they take longer than [`STOP_GRACE`].
async fn pass_on_signals(terminate: Arc<watch::Sender<bool>>, stop: Arc<watch::Sender<bool>>) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut interrupt), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        eprintln!(
            "warning: cannot listen for SIGINT/SIGTERM; instances get them only from the terminal"
        );
        return;
    };
    tokio::select! {
        _ = interrupt.recv() => {}
        _ = term.recv() => {}
    }
    eprintln!("stopping every instance (SIGTERM); a second Ctrl-C kills them");
    let _ = terminate.send(true);
    tokio::select! {
        _ = interrupt.recv() => {}
        _ = term.recv() => {}
        _ = tokio::time::sleep(STOP_GRACE) => {}
    }
    eprintln!("killing the instances still running");
    let _ = stop.send(true);
}

/// Waits for one instance: its exit status, or `None` if it was killed. On
/// `terminate` it gets SIGTERM and is still waited for.
async fn supervise(
    name: String,
    mut child: Child,
    mut stop: watch::Receiver<bool>,
    mut terminate: watch::Receiver<bool>,
) -> (String, Option<ExitStatus>) {
    let mut terminated = false;
    loop {
        tokio::select! {
            status = child.wait() => return (name, status.ok()),
            _ = stop.wait_for(|&stop| stop) => break,
            _ = terminate.wait_for(|&t| t), if !terminated => {
                terminated = true;
                if let Some(pid) = child.id() {
                    // SAFETY: kill(2) on our own child's pid; no memory is involved.
                    unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
                }
            }
        }
    }
    let _ = child.kill().await;
    (name, None)
}

/// Why a deployment ended early.
enum Failure {
    /// This instance exited unsuccessfully.
    Instance(String, ExitStatus),
    Other(DeployError),
}

impl From<DeployError> for Failure {
    fn from(e: DeployError) -> Self {
        Failure::Other(e)
    }
}

/// Waits until every instance has exited successfully, or returns the first failure.
async fn first_failure(exits: &mut JoinSet<(String, Option<ExitStatus>)>) -> Result<(), Failure> {
    while let Some(joined) = exits.join_next().await {
        let (name, status) =
            joined.map_err(|e| DeployError::new(format!("supervisor task failed: {e}")))?;
        match status {
            Some(status) if status.success() => {}
            Some(status) => return Err(Failure::Instance(name, status)),
            None => return Err(DeployError::new(format!("{name} could not be waited for")).into()),
        }
    }
    Ok(())
}

/// Copies lines from an instance to `out`, each prefixed with `[name] `; keeps
/// the last `error:` line in `last_error` (the instance's own account of a failure).
async fn prefix_lines(
    name: String,
    from: impl tokio::io::AsyncRead + Unpin,
    mut out: impl AsyncWrite + Unpin,
    last_error: Option<Arc<Mutex<Option<String>>>>,
) {
    let mut lines = BufReader::new(from).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if let (Some(slot), Some(error)) = (&last_error, line.strip_prefix("error: ")) {
            if let Ok(mut slot) = slot.lock() {
                *slot = Some(error.to_string());
            }
        }
        let _ = out.write_all(format!("[{name}] {line}\n").as_bytes()).await;
        let _ = out.flush().await;
    }
}

/// A TCP port the OS considers free on 127.0.0.1 right now (for topologies).
pub fn free_port() -> Result<u16, DeployError> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .map_err(|e| DeployError::new(format!("cannot find a free port: {e}")))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| DeployError::new(format!("cannot find a free port: {e}")))
}
