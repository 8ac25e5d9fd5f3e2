//! A local deployment while it runs: its instances as child processes, their
//! prefixed output, and what a script or test may do to them by name.

use crate::error::DeployError;
use crate::hosts::{connect_all, Host};
use crate::plan::Deployment;
use crate::ports::free_port;
use crate::progress::{took, write_beside_open_line, Progress};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, watch};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;
use weir_runtime::auth::Key;
use weir_runtime::topology::Topology;
use weir_runtime::{LINKED_LINE, READY_ENV, READY_LINE, UNLINKED_LINE};

/// How long instances have to exit after SIGTERM before they are killed.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// One instance of the deployment.
pub(crate) struct Instance {
    /// `worker/1`, or `leader` for a process.
    pub(crate) name: String,
    pub(crate) role: String,
    pub(crate) binary: PathBuf,
    index: Option<usize>,
    /// Where it runs, when not here.
    pub(crate) host: Option<Arc<Host>>,
    /// While it runs (for a remote instance, its local `ssh`'s).
    pub(crate) pid: Option<u32>,
    /// Its own last `error:` and `warning:` lines.
    last_error: Arc<Mutex<Option<String>>>,
    pub(crate) last_warning: Arc<Mutex<Option<String>>>,
    /// Whether it is linked with an instance of every role it exchanges
    /// records with, as it last said (and if not, why); `None`: not said.
    pub(crate) linked: Option<Result<(), String>>,
}

/// What an instance says of itself on its stderr, for the deployment.
pub(crate) enum Said {
    /// Linked with every peer it needs, and listening: it runs.
    Ready,
    /// Linked with an instance of every role it exchanges records with, or not, and why.
    Linked(Result<(), String>),
}

/// Where instances' output lines go.
#[derive(Clone)]
enum Lines {
    /// This process's stdout and stderr.
    Inherit,
    /// [`RunningDeployment::next_line`].
    Captured(mpsc::UnboundedSender<String>),
}

/// A deployment whose instances are running (see [`Deployment::start`]).
///
/// Dropping it kills every instance still running.
pub struct RunningDeployment {
    dir: PathBuf,
    /// The hosts instances run on (none: this machine).
    hosts: Vec<Arc<Host>>,
    topology_file: PathBuf,
    key_file: PathBuf,
    /// Where the instances' state directories are made, if not in the run's
    /// directory (see `state_root`).
    state_root: Option<PathBuf>,
    topology: Topology,
    args: Vec<String>,
    envs: Vec<(String, String)>,
    pub(crate) instances: Vec<Instance>,
    may_fail: Vec<String>,
    lines: Lines,
    captured: Option<mpsc::UnboundedReceiver<String>>,
    /// Each instance's end: its index, and its status (`None`: killed by us).
    exits: mpsc::UnboundedReceiver<(usize, Option<ExitStatus>)>,
    exits_tx: mpsc::UnboundedSender<(usize, Option<ExitStatus>)>,
    /// Kills every instance.
    stop: Arc<watch::Sender<bool>>,
    /// Sends SIGTERM to every instance.
    terminate: Arc<watch::Sender<bool>>,
    signals: JoinHandle<()>,
    output: JoinSet<()>,
    deadline: Option<(Instant, Duration)>,
    /// The first failure that ends the deployment.
    pub(crate) failure: Option<DeployError>,
    /// Whether that failure is an instance that exited with an error (it
    /// may have lost a peer that was killed: that one is the cause).
    failure_exited: bool,
    /// What the deployment says it is doing, if asked to.
    progress: Option<Progress>,
    /// What instances said of themselves (by index).
    said: mpsc::UnboundedReceiver<(usize, Said)>,
    said_tx: mpsc::UnboundedSender<(usize, Said)>,
    /// Instances that said they are linked with every peer they need.
    ready_seen: Vec<bool>,
    /// The instance an upgrade is replacing: its exit is the upgrade's
    /// business, not a failure of the deployment.
    pub(crate) replacing: Option<usize>,
    /// How that instance exited, if it did.
    pub(crate) replaced_exit: Option<String>,
}

impl Deployment {
    /// Starts every instance and waits for all to exit. SIGINT or SIGTERM (Ctrl-C)
    /// is passed on to every instance as SIGTERM: each drains and exits, and the
    /// deployment ends when all have; a second signal, or instances still running
    /// 10 s later, are killed. Nothing is left running either way.
    pub async fn run(self) -> Result<(), DeployError> {
        self.start().await?.wait().await
    }

    /// Starts every instance, and hands back the running deployment: kill,
    /// pause, resume or restart instances by name, then
    /// [`wait`](RunningDeployment::wait) for it to end.
    pub async fn start(self) -> Result<RunningDeployment, DeployError> {
        RunningDeployment::start(self).await
    }
}

impl RunningDeployment {
    pub(crate) async fn start(plan: Deployment) -> Result<RunningDeployment, DeployError> {
        // One directory per run: a process may run several deployments at once.
        static RUNS: AtomicUsize = AtomicUsize::new(0);
        let run = RUNS.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("weir-deploy-{}-{run}", std::process::id()));
        if run == 0 {
            sweep_killed_runs(&std::env::temp_dir());
        }
        let _ = std::fs::remove_dir_all(&dir); // left by a killed run with this pid
        std::fs::create_dir_all(&dir)
            .map_err(|e| DeployError::new(format!("cannot create {}: {e}", dir.display())))?;

        let mut progress = plan.progress.then(Progress::new);
        // Where each instance runs: here, or on the hosts, round robin.
        let roles: Vec<String> = plan
            .roles
            .iter()
            .flat_map(|e| std::iter::repeat_n(e.role.clone(), e.members.unwrap_or(1)))
            .collect();
        let (hosts, placement) = match &plan.hosts {
            Some(file) => {
                let placement = file.place(&roles)?;
                let default_dir = format!("/tmp/weir-{}", plan.name());
                let count = file.hosts.len();
                if let Some(progress) = &mut progress {
                    progress.step(&format!("connecting to {count} hosts over ssh"));
                }
                let hosts = connect_all(file, &default_dir).await?;
                if let Some(progress) = &mut progress {
                    let took = took(progress.elapsed());
                    progress.step(&format!("connected to {count} hosts in {took}"));
                }
                (hosts, placement)
            }
            None => (Vec::new(), Vec::new()),
        };
        // Ports: free ones here, or free ones on each host.
        let mut ports_on: Vec<Vec<u16>> = Vec::new();
        for (h, host) in hosts.iter().enumerate() {
            let on_host = placement.iter().filter(|&&p| p == h).count();
            let per_instance = 1 + plan.endpoints.len();
            let seed = std::process::id() as u64 * 31 + h as u64 * 977;
            ports_on.push(host.free_ports(on_host * per_instance, seed).await?);
        }
        let mut address = |k: usize| -> Result<String, DeployError> {
            match placement.get(k) {
                Some(&h) => {
                    let port = ports_on[h].pop().expect("enough ports were chosen");
                    Ok(format!("{}:{port}", hosts[h].entry.address))
                }
                None => Ok(format!("127.0.0.1:{}", free_port()?)),
            }
        };

        let mut topology = Topology::default();
        let mut instances = Vec::new();
        for entry in &plan.roles {
            let count = entry.members.unwrap_or(1);
            let first = instances.len();
            let mut addresses = Vec::with_capacity(count);
            for index in 0..count {
                let k = instances.len();
                addresses.push(address(k)?);
                let (name, index) = match entry.members {
                    Some(_) => (format!("{}/{index}", entry.role), Some(index)),
                    None => (entry.role.clone(), None),
                };
                instances.push(Instance {
                    name,
                    role: entry.role.clone(),
                    binary: entry.binary.clone(),
                    index,
                    host: placement.get(k).map(|&h| hosts[h].clone()),
                    pid: None,
                    last_error: Arc::new(Mutex::new(None)),
                    last_warning: Arc::new(Mutex::new(None)),
                    linked: None,
                });
            }
            topology.set(&entry.role, addresses);
            for (_, name) in plan.endpoints.iter().filter(|(r, _)| *r == entry.role) {
                let clients = (first..first + count)
                    .map(&mut address)
                    .collect::<Result<Vec<_>, _>>()?;
                topology.set_endpoint(&entry.role, name, clients);
            }
        }
        let topology_file = dir.join("topology.toml");
        std::fs::write(&topology_file, topology.to_toml()).map_err(|e| {
            DeployError::new(format!("cannot write {}: {e}", topology_file.display()))
        })?;
        // A fresh key per deployment: instances of another one cannot join.
        let key_file = dir.join("weir.key");
        Key::generate(&key_file).map_err(|e| DeployError::new(e.to_string()))?;
        prepare_hosts(&hosts, &instances, &topology_file, &key_file).await?;

        let (stop, _) = watch::channel(false);
        let (terminate, _) = watch::channel(false);
        let (stop, terminate) = (Arc::new(stop), Arc::new(terminate));
        if let Some(period) = plan.stop_after {
            let terminate = terminate.clone();
            let says = plan.progress;
            tokio::spawn(async move {
                tokio::time::sleep(period).await;
                if says {
                    Progress::new().step(&format!(
                        "stopping every instance (SIGTERM): {} passed",
                        took(period)
                    ));
                }
                let _ = terminate.send(true);
            });
        }
        let signals = tokio::spawn(pass_on_signals(terminate.clone(), stop.clone()));
        let (lines, captured) = if plan.capture {
            let (tx, rx) = mpsc::unbounded_channel();
            (Lines::Captured(tx), Some(rx))
        } else {
            (Lines::Inherit, None)
        };
        let (exits_tx, exits) = mpsc::unbounded_channel();
        let (said_tx, said) = mpsc::unbounded_channel();
        let count = instances.len();
        // Each instance says when it is linked and listening (a line of its
        // stderr that is taken, not shown): for `ready` and the progress.
        let mut envs = plan.envs;
        envs.push((READY_ENV.to_string(), "1".to_string()));
        let mut running = RunningDeployment {
            dir,
            hosts,
            topology_file,
            state_root: plan.state_root.clone(),
            key_file,
            args: plan.args,
            envs,
            topology,
            instances,
            may_fail: plan.may_fail,
            lines,
            captured,
            exits,
            exits_tx,
            stop,
            terminate,
            signals,
            output: JoinSet::new(),
            deadline: plan.timeout.map(|limit| (Instant::now() + limit, limit)),
            failure: None,
            failure_exited: false,
            progress,
            said,
            said_tx,
            ready_seen: vec![false; count],
            replacing: None,
            replaced_exit: None,
        };
        if let Some(progress) = &mut running.progress {
            let names: Vec<&str> = running.instances.iter().map(|i| i.name.as_str()).collect();
            progress.step(&format!(
                "starting {} instances: {}",
                names.len(),
                names.join(", ")
            ));
        }
        for i in 0..running.instances.len() {
            if let Err(e) = running.spawn(i) {
                running.fail(e);
                break;
            }
        }
        Ok(running)
    }

    /// The topology file every instance was given.
    pub fn topology_file(&self) -> &Path {
        &self.topology_file
    }

    /// Where clients connect to endpoint `name` of `role`: one address per
    /// instance, in index order (empty if the deployment gave it none).
    pub fn endpoint(&self, role: &str, name: &str) -> &[String] {
        self.topology.endpoint(role, name)
    }

    /// The deployment's key file.
    pub fn key_file(&self) -> &Path {
        &self.key_file
    }

    /// Each instance running on this machine (`worker/1`), with its process
    /// id: to watch its memory, say.
    pub fn local_processes(&self) -> Vec<(String, u32)> {
        self.instances
            .iter()
            .filter(|i| i.host.is_none())
            .filter_map(|i| Some((i.name.clone(), i.pid?)))
            .collect()
    }

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

    fn find(&self, name: &str) -> Result<usize, DeployError> {
        self.instances
            .iter()
            .position(|i| i.name == name)
            .ok_or_else(|| {
                let names: Vec<&str> = self.instances.iter().map(|i| i.name.as_str()).collect();
                DeployError::new(format!(
                    "no instance named `{name}` in this deployment (it has {})",
                    names.join(", ")
                ))
            })
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

    /// Kills instance `name` (SIGKILL, as a crash would) and waits until it
    /// has exited. Unless its role [may fail](Deployment::may_fail), the
    /// deployment then fails, as it would for any instance that dies.
    pub async fn kill(&mut self, name: &str) -> Result<(), DeployError> {
        let i = self.signal(name, libc::SIGKILL)?;
        while self.instances[i].pid.is_some() {
            let Some((j, status)) = self.exits.recv().await else {
                break;
            };
            self.exited(j, status);
        }
        Ok(())
    }

    /// Pauses instance `name` (SIGSTOP): it keeps its sockets open but reads
    /// and sends nothing, as a hung host would.
    pub fn pause(&mut self, name: &str) -> Result<(), DeployError> {
        self.signal(name, libc::SIGSTOP).map(drop)
    }

    /// Resumes a paused instance (SIGCONT).
    pub fn resume(&mut self, name: &str) -> Result<(), DeployError> {
        self.signal(name, libc::SIGCONT).map(drop)
    }

    /// Starts instance `name` again, with the flags it had (same topology,
    /// index and key): a restart after a crash. It must have exited.
    pub fn restart(&mut self, name: &str) -> Result<(), DeployError> {
        self.take_exits();
        let i = self.find(name)?;
        if self.instances[i].pid.is_some() {
            return Err(DeployError::new(format!(
                "{name} is still running: kill it before restarting it"
            )));
        }
        if self.failure.is_some() {
            return Err(DeployError::new(format!(
                "cannot restart {name}: the deployment has failed and is stopping"
            )));
        }
        *self.instances[i]
            .last_error
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = None;
        self.spawn(i)
    }

    /// Whether instance `name` is running.
    pub fn is_running(&mut self, name: &str) -> bool {
        self.take_exits();
        self.find(name)
            .is_ok_and(|i| self.instances[i].pid.is_some())
    }

    /// The next captured output line, `[name] text` (with
    /// [`Deployment::capture_output`]); `None` once every instance's output
    /// has ended.
    pub async fn next_line(&mut self) -> Option<String> {
        loop {
            self.take_exits();
            let running = self.instances.iter().any(|i| i.pid.is_some());
            let captured = self.captured.as_mut()?;
            if !running && self.output.is_empty() {
                // Every copier is done: what is left is already queued.
                return captured.try_recv().ok();
            }
            tokio::select! {
                biased;
                line = captured.recv() => return line,
                Some((i, status)) = self.exits.recv(), if running => self.exited(i, status),
                Some(_) = self.output.join_next(), if !self.output.is_empty() => {}
            }
        }
    }

    /// Waits until every instance still running is linked with every peer it
    /// needs and listens on its external endpoints, so that clients may
    /// connect. (Peers over tolerant edges are not needed: they may link
    /// later, and records sent to them before are dropped.) Fails, with the deployment stopped, as [`wait`](Self::wait)
    /// would: an instance failed (unless its role may fail), or the
    /// deployment's timeout passed.
    pub async fn ready(&mut self) -> Result<(), DeployError> {
        loop {
            self.take_exits();
            while let Ok((i, said)) = self.said.try_recv() {
                self.heard(i, said);
            }
            if let Some(failure) = &self.failure {
                return Err(failure.clone());
            }
            let waiting = self
                .instances
                .iter()
                .zip(&self.ready_seen)
                .any(|(instance, ready)| !ready && instance.pid.is_some());
            if !waiting {
                return Ok(());
            }
            tokio::select! {
                biased;
                Some((i, said)) = self.said.recv() => self.heard(i, said),
                Some((i, status)) = self.exits.recv() => self.exited(i, status),
                _ = sleep_until_or_never(self.deadline.map(|(at, _)| at)) => {
                    let limit = self.deadline.expect("armed").1;
                    self.fail(DeployError::new(format!(
                        "the deployment was not ready within {limit:?}; it was stopped"
                    )));
                }
            }
        }
    }

    /// Sends SIGTERM to every instance: each drains and exits.
    pub fn stop(&self) {
        let _ = self.terminate.send(true);
    }

    /// Waits until every instance has exited. Fails with the first instance
    /// that failed (unless its role may fail), naming it and its own last
    /// `error:` line, once the others were stopped; or when the deployment's
    /// timeout passed.
    pub async fn wait(mut self) -> Result<(), DeployError> {
        self.take_exits();
        while self.instances.iter().any(|i| i.pid.is_some()) {
            let deadline = self.deadline.filter(|_| self.failure.is_none());
            tokio::select! {
                biased;
                Some((i, said)) = self.said.recv() => self.heard(i, said),
                exit = self.exits.recv() => match exit {
                    Some((i, status)) => self.exited(i, status),
                    None => break,
                },
                _ = sleep_until_or_never(deadline.map(|(at, _)| at)) => {
                    let limit = deadline.expect("armed").1;
                    self.fail(DeployError::new(format!(
                        "the deployment did not end within {limit:?}; it was stopped"
                    )));
                }
            }
        }
        self.signals.abort();
        // Every line is out before the outcome is.
        self.captured = None;
        while self.output.join_next().await.is_some() {}
        // Ready lines read after their instance's exit.
        while let Ok((i, said)) = self.said.try_recv() {
            self.heard(i, said);
        }
        for host in &self.hosts {
            host.kill_leftovers();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
        match self.failure.take() {
            Some(failure) => Err(failure),
            None => {
                if let Some(progress) = &mut self.progress {
                    let took = took(progress.elapsed());
                    progress.step(&format!("done in {took}: every instance exited"));
                }
                Ok(())
            }
        }
    }

    /// Says what the deployment is doing, if asked to.
    pub(crate) fn say(&mut self, text: &str) {
        if let Some(progress) = &mut self.progress {
            progress.step(text);
        }
    }

    /// Takes in what instance `i` said of itself.
    pub(crate) fn heard(&mut self, i: usize, said: Said) {
        match said {
            Said::Ready => self.now_ready(i),
            Said::Linked(linked) => self.instances[i].linked = Some(linked),
        }
    }

    /// Takes in what instances said, waiting for the next word, an exit, or
    /// `until`; whether `until` passed first.
    pub(crate) async fn listen_until(&mut self, until: Instant) -> bool {
        tokio::select! {
            biased;
            Some((i, said)) = self.said.recv() => {
                self.heard(i, said);
                false
            }
            Some((i, status)) = self.exits.recv() => {
                self.exited(i, status);
                false
            }
            _ = tokio::time::sleep_until(until) => true,
        }
    }

    /// Instance `i` is linked with every peer it needs.
    fn now_ready(&mut self, i: usize) {
        if std::mem::replace(&mut self.ready_seen[i], true) {
            let name = &self.instances[i].name;
            if let Some(progress) = &mut self.progress {
                progress.step(&format!("{name} is connected again"));
            }
            return;
        }
        let (ready, all) = (
            self.ready_seen.iter().filter(|r| **r).count(),
            self.ready_seen.len(),
        );
        let Some(progress) = &mut self.progress else {
            return;
        };
        if ready == all {
            let took = took(progress.elapsed());
            progress.step(&format!("all {all} instances connected in {took}; running"));
        } else {
            progress.update(&format!("{ready} of {all} instances connected"));
        }
    }

    /// Takes in the exits that have already happened.
    fn take_exits(&mut self) {
        while let Ok((i, status)) = self.exits.try_recv() {
            self.exited(i, status);
        }
    }

    pub(crate) fn exited(&mut self, i: usize, status: Option<ExitStatus>) {
        let instance = &mut self.instances[i];
        instance.pid = None;
        instance.linked = None;
        if self.replacing == Some(i) {
            // An upgrade stopped it, or its new build failed: the upgrade's to say.
            let said = last_line(&instance.last_error, ": ");
            self.replaced_exit = Some(match status {
                Some(status) => format!("it exited ({status}){said}"),
                None => "it could not be waited for".to_string(),
            });
            return;
        }
        let stopping = self.failure.is_some() || *self.terminate.borrow();
        // Killed by a signal other than the stop's, while the deployment
        // stops for an instance that exited with an error: most likely that
        // one exited because it lost this one, which is then the cause.
        let crashed = status
            .and_then(|s| std::os::unix::process::ExitStatusExt::signal(&s))
            .filter(|&s| s != libc::SIGTERM);
        if let (Some(signal), true) = (crashed, self.failure_exited) {
            if !*self.terminate.borrow() && !self.may_fail.contains(&instance.role) {
                self.failure = Some(DeployError::new(format!(
                    "{} was killed (signal {signal}); the other instances were stopped",
                    instance.name
                )));
                self.failure_exited = false;
                return;
            }
        }
        match status {
            Some(status) if status.success() => {}
            _ if stopping && self.failure.is_some() => {} // we stopped it
            Some(status) if self.may_fail.contains(&instance.role) => {
                eprintln!(
                    "weir-deploy: {} exited ({status}); role `{}` may fail, so the others go on",
                    instance.name, instance.role
                );
            }
            Some(status) => {
                let said = last_line(&instance.last_error, ": ");
                let on = instance
                    .host
                    .as_ref()
                    .map(|h| format!(" on {}", h.name()))
                    .unwrap_or_default();
                let error = DeployError::new(format!(
                    "{}{on} failed ({status}); the other instances were stopped{said}",
                    instance.name
                ));
                if self.failure.is_none() {
                    self.failure_exited = status.code().is_some();
                }
                self.fail(error);
            }
            None => {
                let error = DeployError::new(format!("{} could not be waited for", instance.name));
                self.fail(error);
            }
        }
    }

    /// Records the failure that ends the deployment, and stops every instance.
    fn fail(&mut self, error: DeployError) {
        if self.failure.is_none() {
            self.failure = Some(error);
        }
        let _ = self.stop.send(true);
    }
}

/// Removes the directories of runs whose controller was killed (so never
/// dropped its deployment): `weir-deploy-PID-N` where no process PID lives.
/// A PID reused since is taken as alive, and its directories kept.
fn sweep_killed_runs(temp: &Path) {
    let Ok(entries) = std::fs::read_dir(temp) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix("weir-deploy-")) else {
            continue;
        };
        let Some(Ok(pid)) = rest.split('-').next().map(str::parse::<libc::pid_t>) else {
            continue;
        };
        // SAFETY: kill(2) with signal 0 sends nothing; it only asks whether `pid` exists.
        let gone = unsafe { libc::kill(pid, 0) } == -1
            && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH);
        if gone && pid > 0 {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

impl Drop for RunningDeployment {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        for instance in &self.instances {
            if let Some(pid) = instance.pid {
                // SAFETY: kill(2) on our own child's pid; no memory is involved.
                unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
            }
        }
        self.signals.abort();
        for host in &self.hosts {
            host.kill_leftovers();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
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

/// Uploads to every host (at once) the binaries its instances run, the
/// topology and the key, and says where each instance runs.
async fn prepare_hosts(
    hosts: &[Arc<Host>],
    instances: &[Instance],
    topology_file: &Path,
    key_file: &Path,
) -> Result<(), DeployError> {
    if hosts.is_empty() {
        return Ok(());
    }
    let read = |path: &Path| {
        std::fs::read(path)
            .map_err(|e| DeployError::new(format!("cannot read {}: {e}", path.display())))
    };
    let (topology, key) = (read(topology_file)?, read(key_file)?);
    let mut tasks = Vec::new();
    for host in hosts {
        let binaries: std::collections::BTreeSet<PathBuf> = instances
            .iter()
            .filter(|i| i.host.as_ref().is_some_and(|h| Arc::ptr_eq(h, host)))
            .map(|i| i.binary.clone())
            .collect();
        let (host, topology, key) = (host.clone(), topology.clone(), key.clone());
        tasks.push(tokio::spawn(async move {
            let mut uploaded = 0;
            for binary in &binaries {
                uploaded += usize::from(host.upload_binary(binary).await?);
            }
            host.write_private("topology.toml", &topology).await?;
            host.write_private("weir.key", &key).await?;
            let fresh = binaries.len() - uploaded;
            eprintln!(
                "weir-deploy: {}: {uploaded} binaries uploaded, {fresh} already there, in {}",
                host.name(),
                host.dir
            );
            Ok::<(), DeployError>(())
        }));
    }
    for task in tasks {
        task.await
            .map_err(|e| DeployError::new(format!("preparing a host: {e}")))??;
    }
    for instance in instances {
        if let Some(host) = &instance.host {
            eprintln!("weir-deploy: {} runs on {}", instance.name, host.name());
        }
    }
    Ok(())
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

async fn sleep_until_or_never(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

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

/// The line kept in `slot` after `before`, or nothing if none was.
pub(crate) fn last_line(slot: &Mutex<Option<String>>, before: &str) -> String {
    slot.lock()
        .ok()
        .and_then(|line| line.clone())
        .map(|line| format!("{before}{line}"))
        .unwrap_or_default()
}

/// Where the lines of instance `i`'s stderr that are not output go: its
/// last `error:` and `warning:` lines, and what it says of itself (to the
/// deployment, by index).
struct StderrOf {
    last_error: Arc<Mutex<Option<String>>>,
    last_warning: Arc<Mutex<Option<String>>>,
    index: usize,
    said: mpsc::UnboundedSender<(usize, Said)>,
}

/// Copies lines from an instance to `out`, each prefixed with `[name] `. Of
/// instance `i`'s stderr, keeps the last `error:` line (its own account of a
/// failure) and takes its ready line.
async fn prefix_lines(
    name: String,
    from: impl tokio::io::AsyncRead + Unpin,
    out: Lines,
    is_stderr: bool,
    stderr_of: Option<StderrOf>,
) {
    let mut lines = BufReader::new(from).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if let Some(of) = &stderr_of {
            let said = if line == READY_LINE {
                Some(Said::Ready)
            } else if line == LINKED_LINE {
                Some(Said::Linked(Ok(())))
            } else {
                line.strip_prefix(UNLINKED_LINE)
                    .map(|why| Said::Linked(Err(why.trim().to_string())))
            };
            if let Some(said) = said {
                let _ = of.said.send((of.index, said));
                continue;
            }
            let keep = |slot: &Mutex<Option<String>>, text: &str| {
                if let Ok(mut slot) = slot.lock() {
                    *slot = Some(text.to_string());
                }
            };
            // `error: ...` as it exits; warnings as it logs them (after a
            // timestamp and ` WARN `) or says them at start (`warning: `).
            if let Some(error) = line.strip_prefix("error: ") {
                keep(&of.last_error, error);
            } else if let Some(warning) = line
                .strip_prefix("warning: ")
                .or_else(|| line.split_once(" WARN ").map(|(_, w)| w))
            {
                keep(&of.last_warning, warning.trim());
            }
        }
        let line = format!("[{name}] {line}\n");
        match &out {
            Lines::Captured(tx) => {
                let _ = tx.send(line.trim_end().to_string());
            }
            Lines::Inherit if write_beside_open_line(&line, is_stderr) => {}
            Lines::Inherit if is_stderr => write_line(tokio::io::stderr(), &line).await,
            Lines::Inherit => write_line(tokio::io::stdout(), &line).await,
        }
    }
}

async fn write_line(mut out: impl AsyncWrite + Unpin, line: &str) {
    let _ = out.write_all(line.as_bytes()).await;
    let _ = out.flush().await;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_killed_runs_directory_is_swept_and_a_live_ones_kept() {
        let temp = tempfile::tempdir().unwrap();
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let killed = temp.path().join(format!("weir-deploy-{dead}-0"));
        let live = temp
            .path()
            .join(format!("weir-deploy-{}-3", std::process::id()));
        let other = temp.path().join("weir-deploy-notapid");
        for dir in [&killed, &live, &other] {
            std::fs::create_dir_all(dir.join("state")).unwrap();
        }
        sweep_killed_runs(temp.path());
        assert!(!killed.exists());
        assert!(live.exists() && other.exists());
    }
}
