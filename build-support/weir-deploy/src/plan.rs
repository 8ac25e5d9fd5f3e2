//! What to deploy: the roles, their binaries and instances, and how to run
//! them (a [`Deployment`], a plan). `running` starts one; `manifests`
//! writes one for a cluster manager.

use std::path::PathBuf;
use std::time::Duration;

pub(crate) struct RoleEntry {
    pub(crate) role: String,
    pub(crate) binary: PathBuf,
    pub(crate) members: Option<usize>,
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
    pub(crate) roles: Vec<RoleEntry>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) stop_after: Option<Duration>,
    pub(crate) args: Vec<String>,
    pub(crate) envs: Vec<(String, String)>,
    pub(crate) may_fail: Vec<String>,
    pub(crate) capture: bool,
    /// External endpoints: (role, name).
    pub(crate) endpoints: Vec<(String, String)>,
    /// Where instances run when not on this machine.
    pub(crate) hosts: Option<crate::hosts::Hosts>,
    /// Say on stderr what the deployment is doing (a deploy script does).
    pub(crate) progress: bool,
    /// Where instances keep durable state, if not in the run's directory.
    pub(crate) state_root: Option<PathBuf>,
}

impl Deployment {
    /// A deployment of no roles yet: add them with `process` and `cluster`.
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

    /// Every instance serves its external endpoints over TLS with this
    /// certificate and key (`--client-tls-cert`, `--client-tls-key`).
    pub fn client_tls(self, certificates: &crate::ClientCertificates) -> Self {
        self.arg("--client-tls-cert")
            .arg(certificates.cert.display().to_string())
            .arg("--client-tls-key")
            .arg(certificates.key.display().to_string())
    }

    /// An environment variable set for every instance.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.envs.push((key.into(), value.into()));
        self
    }

    /// Lets the instances of `role` fail (exit, crash, be killed) without
    /// stopping the rest: for flows whose edges to `role` are tolerant. A
    /// failure is reported on the deployment's stderr, and the instance can be
    /// started again with [`RunningDeployment::restart`](crate::RunningDeployment::restart).
    pub fn may_fail(mut self, role: &str) -> Self {
        self.may_fail.push(role.to_string());
        self
    }

    /// Gives every instance of `role` a free port for its external endpoint
    /// `name` (the flow's `source_external`): see
    /// [`RunningDeployment::endpoint`](crate::RunningDeployment::endpoint) for where clients connect.
    pub fn endpoint(mut self, role: &str, name: &str) -> Self {
        self.endpoints.push((role.to_string(), name.to_string()));
        self
    }

    /// Where the instances keep their durable state (`--state-dir root`):
    /// instance `worker/1` in `<root>/worker-1`, on SSH hosts the same path
    /// there. Without it, the root is in the deployment's run directory:
    /// kept across an instance's restarts and upgrades while the deployment
    /// runs, gone with it. Give one to keep state across deployments.
    pub fn state_dirs(mut self, root: impl Into<PathBuf>) -> Self {
        self.state_root = Some(root.into());
        self
    }

    /// Runs the instances on `hosts` (over SSH) instead of this machine:
    /// placed round robin, in the order of the roles.
    pub fn on_hosts(mut self, hosts: crate::hosts::Hosts) -> Self {
        self.hosts = Some(hosts);
        self
    }

    /// Says on stderr what the deployment is doing and how long it took:
    /// starting the instances, all connected, done (as `deploy_main` does).
    pub fn report_progress(mut self) -> Self {
        self.progress = true;
        self
    }

    /// Sends every instance's output lines (each prefixed with its name) to
    /// [`RunningDeployment::next_line`](crate::RunningDeployment::next_line) instead of this process's stdout and
    /// stderr: for tests and scripts that watch what a deployment says.
    pub fn capture_output(mut self) -> Self {
        self.capture = true;
        self
    }

    /// The flow's name, from the binaries (`broadcast-leader` → `broadcast`),
    /// or `weir` when they are not named `<flow>-<role>`.
    pub fn name(&self) -> String {
        self.roles
            .iter()
            .find_map(|entry| {
                let file = entry.binary.file_name()?.to_str()?;
                let flow = file.strip_suffix(&format!("-{}", entry.role))?;
                (!flow.is_empty()).then(|| flow.to_string())
            })
            .unwrap_or_else(|| "weir".to_string())
    }
}
