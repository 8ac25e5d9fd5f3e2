//! One instance's process: started with the deployment's flags (here or
//! over ssh), signalled by name, and supervised until it exits.

use super::output::{prefix_lines, StderrOf};
use super::RunningDeployment;
use crate::error::DeployError;
use crate::hosts::Host;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::process::{Child, Command};
use tokio::sync::watch;

/// How long instances have to exit after SIGTERM before they are killed.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// One instance of the deployment.
pub(crate) struct Instance {
    /// `worker/1`, or `leader` for a process.
    pub(crate) name: String,
    pub(crate) role: String,
    pub(crate) binary: PathBuf,
    pub(super) index: Option<usize>,
    /// Where it runs, when not here.
    pub(crate) host: Option<Arc<Host>>,
    /// While it runs (for a remote instance, its local `ssh`'s).
    pub(crate) pid: Option<u32>,
    /// Its own last `error:` and `warning:` lines.
    pub(super) last_error: Arc<Mutex<Option<String>>>,
    pub(crate) last_warning: Arc<Mutex<Option<String>>>,
    /// Whether it is linked with an instance of every role it exchanges
    /// records with, as it last said (and if not, why); `None`: not said.
    pub(crate) linked: Option<Result<(), String>>,
}

impl RunningDeployment {
    /// Starts instance `i` with the deployment's flags.
    pub(crate) fn spawn(&mut self, i: usize) -> Result<(), DeployError> {
        let instance = &mut self.instances[i];
        let mut command = match &instance.host {
            Some(host) => {
                let mut args = vec![
                    "--topology".to_string(),
                    format!("{}/topology.toml", host.dir),
                    "--key-file".to_string(),
                    format!("{}/weir.key", host.dir),
                    // Its stdin is the deployment's hold on it.
                    "--stop-on-eof".to_string(),
                    "--state-dir".to_string(),
                    state_root(self.state_root.as_deref(), Path::new(&host.dir))
                        .display()
                        .to_string(),
                ];
                args.extend(self.args.iter().cloned());
                if let Some(index) = instance.index {
                    args.extend(["--index".to_string(), index.to_string()]);
                }
                host.command(&self.envs, &remote_binary(host, &instance.binary), &args)
            }
            None => {
                let mut command = Command::new(&instance.binary);
                command
                    .arg("--topology")
                    .arg(&self.topology_file)
                    .arg("--key-file")
                    .arg(&self.key_file)
                    .arg("--state-dir")
                    .arg(state_root(self.state_root.as_deref(), &self.dir))
                    .args(&self.args)
                    .envs(self.envs.iter().map(|(k, v)| (k, v)));
                if let Some(index) = instance.index {
                    command.arg("--index").arg(index.to_string());
                }
                command.stdin(Stdio::null());
                command
            }
        };
        command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            // A process group of its own: a terminal's Ctrl-C reaches the
            // deployment only, which passes it on once (a second signal would
            // make an instance exit at once, without draining).
            .process_group(0);
        die_with_parent(&mut command);
        let mut child = command.spawn().map_err(|e| {
            DeployError::new(format!(
                "cannot start {} ({}): {e}",
                instance.name,
                instance.binary.display()
            ))
        })?;
        instance.pid = child.id();
        let stdout = child.stdout.take().expect("piped");
        let stderr = child.stderr.take().expect("piped");
        let name = instance.name.clone();
        self.output.spawn(prefix_lines(
            name.clone(),
            stdout,
            self.lines.clone(),
            false,
            None,
        ));
        self.output.spawn(prefix_lines(
            name,
            stderr,
            self.lines.clone(),
            true,
            Some(StderrOf {
                last_error: instance.last_error.clone(),
                last_warning: instance.last_warning.clone(),
                index: i,
                said: self.said_tx.clone(),
            }),
        ));
        let exits = self.exits_tx.clone();
        let (stop, terminate) = (self.stop.subscribe(), self.terminate.subscribe());
        // A remote instance stops when its stdin closes (not on a signal to
        // the local ssh, which would cut its last lines off).
        let hold = child.stdin.take();
        tokio::spawn(async move {
            let status = supervise(child, hold, stop, terminate).await;
            let _ = exits.send((i, status));
        });
        Ok(())
    }

    /// Sends `signal` to the running instance `name`.
    pub(crate) fn signal(&mut self, name: &str, signal: libc::c_int) -> Result<usize, DeployError> {
        self.take_exits();
        let i = self.find(name)?;
        let instance = &self.instances[i];
        let Some(pid) = instance.pid else {
            return Err(DeployError::new(format!("{name} is not running")));
        };
        if let Some(host) = &instance.host {
            let signal = match signal {
                libc::SIGKILL => "KILL",
                libc::SIGSTOP => "STOP",
                libc::SIGCONT => "CONT",
                _ => "TERM",
            };
            host.signal(signal, &remote_pattern(host, instance))?;
            return Ok(i);
        }
        // SAFETY: kill(2) on our own child's pid; no memory is involved.
        unsafe { libc::kill(pid as libc::pid_t, signal) };
        Ok(i)
    }
}

/// Where instance binary `local` is on `host`.
fn remote_binary(host: &Host, local: &Path) -> String {
    let name = local
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("binary");
    format!("{}/bin/{name}", host.dir)
}

/// A `pkill -f` pattern for exactly this instance's process on its host.
fn remote_pattern(host: &Host, instance: &Instance) -> String {
    let binary = remote_binary(host, &instance.binary);
    match instance.index {
        Some(index) => format!("^{binary} .*--index {index}( |$)"),
        None => format!("^{binary} "),
    }
}

/// Makes the instance get SIGTERM if the deployment dies without stopping it
/// (killed with SIGKILL, say): no instance outlives its deployment.
fn die_with_parent(command: &mut Command) {
    #[cfg(target_os = "linux")]
    // SAFETY: prctl(2) only sets a flag of the new process; nothing is
    // allocated or locked between fork and exec.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    #[cfg(not(target_os = "linux"))]
    let _ = command;
}

/// Passes SIGINT/SIGTERM on to every instance (`terminate`); kills them all
/// (`stop`) on a second signal or when they take longer than [`STOP_GRACE`].
pub(super) async fn pass_on_signals(
    terminate: Arc<watch::Sender<bool>>,
    stop: Arc<watch::Sender<bool>>,
) {
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

/// Waits for one instance: its exit status, or `None` if it was killed on
/// `stop`. On `terminate` it gets SIGTERM and is still waited for.
async fn supervise(
    mut child: Child,
    mut hold: Option<tokio::process::ChildStdin>,
    mut stop: watch::Receiver<bool>,
    mut terminate: watch::Receiver<bool>,
) -> Option<ExitStatus> {
    let mut terminated = false;
    loop {
        tokio::select! {
            status = child.wait() => return status.ok(),
            _ = stop.wait_for(|&stop| stop) => break,
            _ = terminate.wait_for(|&t| t), if !terminated => {
                terminated = true;
                if hold.take().is_some() {
                    // A remote instance: the end of its stdin stops it.
                } else if let Some(pid) = child.id() {
                    // SAFETY: kill(2) on our own child's pid; no memory is involved.
                    unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
                }
            }
        }
    }
    let _ = child.kill().await;
    None
}

/// The instances' state root (`--state-dir`: each keeps its state in
/// `<root>/worker-1`): `root` if given, else in the run's directory `run`
/// (here or on the instance's host).
fn state_root(root: Option<&Path>, run: &Path) -> PathBuf {
    match root {
        Some(root) => root.to_path_buf(),
        None => run.join("state"),
    }
}
