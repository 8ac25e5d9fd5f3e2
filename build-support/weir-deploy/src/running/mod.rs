//! A deployment while it runs: its instances as child processes, their
//! prefixed output, and what a script or test may do to them by name.
//!
//! `launch` starts it, `process` starts and signals one instance, `output`
//! copies instances' lines and takes what they say of themselves; this file
//! holds the state they share and what a script may do with it.

mod launch;
mod output;
mod process;

pub(crate) use output::last_line;
use output::{Lines, Said};
use process::Instance;

use crate::error::DeployError;
use crate::hosts::Host;
use crate::plan::Deployment;
use crate::progress::{took, Progress};
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;
use weir_runtime::topology::Topology;

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

async fn sleep_until_or_never(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
