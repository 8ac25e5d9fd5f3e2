//! Deployments on other hosts, over the system's OpenSSH (through the
//! `openssh` crate: one multiplexed master connection per host, so users keep
//! their `~/.ssh/config`, agents and jump hosts).
//!
//! Per host: its directory is created, the role binaries it runs are uploaded
//! unless the same content is there already (by SHA-256), the topology and the
//! key (mode 0600) are written, and free ports are chosen among those not in
//! use there. Each instance then runs as `ssh ... -- exec <binary> ...
//! --stop-on-eof` through the master connection: its output comes back on the
//! local `ssh`'s, its exit status is `ssh`'s, and when the deployment closes
//! its stdin (to stop it) or dies, the instance stops itself.

use crate::error::DeployError;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;

/// The hosts of a deployment, as a `--hosts` file lists them:
///
/// ```toml
/// [[host]]
/// ssh = "ssh://root@127.0.0.2:2222"   # anything OpenSSH accepts as a destination
/// address = "127.0.0.2"                # the address peers use to reach this host
/// dir = "/tmp/weir-a"                  # where binaries and the key go (optional)
/// identity = "/path/to/id_ed25519"     # optional; otherwise ssh's own config/agent
/// known_hosts = "/path/to/known_hosts" # optional; new host keys are accepted and kept
/// roles = ["worker"]                   # optional: only these roles' instances
/// ```
#[derive(Debug, Clone)]
pub struct Hosts {
    pub(crate) hosts: Vec<HostEntry>,
    origin: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct HostsFile {
    host: Vec<HostEntry>,
}

/// One `[[host]]` of a hosts file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostEntry {
    /// Anything OpenSSH accepts as a destination (`ssh://root@host-a:22`).
    pub ssh: String,
    /// The address the other instances reach this host at.
    pub address: String,
    /// Where binaries, the topology and the key go (default `/tmp/weir-<flow>`).
    pub dir: Option<String>,
    /// The private key to log in with; otherwise ssh's own config and agent.
    pub identity: Option<PathBuf>,
    /// The known-hosts file; new host keys are accepted and kept there.
    pub known_hosts: Option<PathBuf>,
    /// Only these roles' instances run here (default: any).
    pub roles: Option<Vec<String>>,
}

impl Hosts {
    /// Reads a hosts file; a malformed one is an error naming the file and
    /// what is wrong.
    pub fn load(path: &Path) -> Result<Hosts, DeployError> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|e| DeployError::new(format!("cannot read the hosts file {origin}: {e}")))?;
        Hosts::parse(&text, &origin)
    }

    /// Reads a hosts file's text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Hosts, DeployError> {
        let file: HostsFile = toml::from_str(text)
            .map_err(|e| DeployError::new(format!("hosts file {origin}: {e}")))?;
        if file.host.is_empty() {
            return Err(DeployError::new(format!(
                "hosts file {origin} lists no [[host]]"
            )));
        }
        for (i, host) in file.host.iter().enumerate() {
            if host.address.is_empty() || host.address.contains(char::is_whitespace) {
                return Err(DeployError::new(format!(
                    "hosts file {origin}: host {} (`{}`): `address` must be the host name or IP peers reach it at",
                    i + 1,
                    host.ssh
                )));
            }
        }
        Ok(Hosts {
            hosts: file.host,
            origin: origin.to_string(),
        })
    }

    /// For each instance (role, in order), the host it runs on: round robin
    /// over the hosts that take its role.
    pub(crate) fn place(&self, instances: &[String]) -> Result<Vec<usize>, DeployError> {
        let mut next = 0usize;
        instances
            .iter()
            .map(|role| {
                let takers: Vec<usize> = (0..self.hosts.len())
                    .filter(|&h| {
                        self.hosts[h]
                            .roles
                            .as_ref()
                            .is_none_or(|roles| roles.iter().any(|r| r == role))
                    })
                    .collect();
                if takers.is_empty() {
                    return Err(DeployError::new(format!(
                        "hosts file {}: no host takes role `{role}` (see each host's `roles`)",
                        self.origin
                    )));
                }
                let host = takers[next % takers.len()];
                next += 1;
                Ok(host)
            })
            .collect()
    }
}

/// A host connected and prepared for a deployment.
pub(crate) struct Host {
    pub(crate) entry: HostEntry,
    /// The deployment's directory there.
    pub(crate) dir: String,
    session: openssh::Session,
    /// Keeps the master connection in use for as long as this process
    /// lives: see [`MASTER_OUTLIVES_ITS_LAST_USE`].
    _keepalive: tokio::process::Child,
}

/// How long a host's master connection stays up once nothing uses it. While
/// a deployment runs, a `cat` there reading this process's pipe uses it (as
/// well as its instances); when this process dies however it dies, even
/// killed, that `cat` reads the end of its input and ends, and the master
/// connection follows, instead of staying up on both machines for ever.
const MASTER_OUTLIVES_ITS_LAST_USE: usize = 10;

impl Host {
    /// Connects to the host of `entry` and creates its directory.
    pub(crate) async fn connect(entry: HostEntry, default_dir: &str) -> Result<Host, DeployError> {
        let mut builder = openssh::SessionBuilder::default();
        // New host keys are accepted and kept; a changed one is refused.
        builder
            .known_hosts_check(openssh::KnownHosts::Add)
            .connect_timeout(Duration::from_secs(10))
            .server_alive_interval(Duration::from_secs(5))
            .control_persist(openssh::ControlPersist::IdleFor(
                NonZeroUsize::new(MASTER_OUTLIVES_ITS_LAST_USE).expect("not zero"),
            ));
        if let Some(identity) = &entry.identity {
            builder.keyfile(identity);
        }
        if let Some(known_hosts) = &entry.known_hosts {
            builder.user_known_hosts_file(known_hosts);
        }
        let session = builder.connect(&entry.ssh).await.map_err(|e| {
            DeployError::new(format!(
                "host {}: cannot connect over ssh: {}",
                entry.ssh,
                error_chain(&e)
            ))
        })?;
        let keepalive =
            tokio::process::Command::from(through(session.control_socket(), "exec cat"))
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .map_err(|e| {
                    DeployError::new(format!("host {}: cannot run ssh: {e}", entry.ssh))
                })?;
        let dir = entry.dir.clone().unwrap_or_else(|| default_dir.to_string());
        let host = Host {
            entry,
            dir,
            session,
            _keepalive: keepalive,
        };
        host.run(
            &format!("mkdir -p {0}/bin && test -w {0}", quote(&host.dir)),
            None,
        )
        .await
        .map_err(|e| host.error(&format!("cannot use directory {}", host.dir), e))?;
        Ok(host)
    }

    /// `host ssh://... (address)`, for messages.
    pub(crate) fn name(&self) -> String {
        format!("host {} ({})", self.entry.ssh, self.entry.address)
    }

    fn error(&self, what: &str, detail: String) -> DeployError {
        DeployError::new(format!("{}: {what}: {detail}", self.name()))
    }

    /// Runs `script` with `sh -c` there, feeding it `stdin`; its stdout, or
    /// what went wrong (its stderr and status).
    async fn run(&self, script: &str, stdin: Option<&[u8]>) -> Result<String, String> {
        let mut command = self.session.command("sh");
        command
            .arg("-c")
            .arg(script)
            .stdin(if stdin.is_some() {
                openssh::Stdio::piped()
            } else {
                openssh::Stdio::null()
            })
            .stdout(openssh::Stdio::piped())
            .stderr(openssh::Stdio::piped());
        let mut child = command.spawn().await.map_err(|e| error_chain(&e))?;
        // A write that fails (the command died: a full disk, say) is
        // reported by what the command said, once it has ended.
        let wrote = match (stdin, child.stdin().take()) {
            (Some(bytes), Some(mut input)) => {
                let written = input.write_all(bytes).await;
                written.and(input.shutdown().await)
            }
            _ => Ok(()),
        };
        let out = child
            .wait_with_output()
            .await
            .map_err(|e| error_chain(&e))?;
        if out.status.success() && wrote.is_ok() {
            return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
        }
        let said = String::from_utf8_lossy(&out.stderr).trim().to_string();
        Err(match wrote {
            _ if !said.is_empty() => said,
            Err(e) => format!("sending it the data failed: {e}"),
            Ok(()) => format!("exited with {}", out.status),
        })
    }

    /// `n` TCP ports not in use there (from /proc/net/tcp and tcp6).
    pub(crate) async fn free_ports(&self, n: usize, seed: u64) -> Result<Vec<u16>, DeployError> {
        let table = self
            .run("cat /proc/net/tcp /proc/net/tcp6 2>/dev/null; true", None)
            .await
            .map_err(|e| self.error("cannot list the ports in use", e))?;
        let used: BTreeSet<u16> = table
            .lines()
            .filter_map(|line| line.split_whitespace().nth(1))
            .filter_map(|local| local.rsplit_once(':'))
            .filter_map(|(_, port)| u16::from_str_radix(port, 16).ok())
            .collect();
        let mut ports = Vec::new();
        let mut candidate = 20000 + (seed % 20000) as u16;
        while ports.len() < n {
            candidate = if candidate >= 60000 {
                20000
            } else {
                candidate + 1
            };
            if !used.contains(&candidate) && !ports.contains(&candidate) {
                ports.push(candidate);
            }
        }
        Ok(ports)
    }

    /// Uploads `local` as `bin/<name>` unless the same content is there;
    /// whether it uploaded. Then checks that it runs there.
    pub(crate) async fn upload_binary(&self, local: &Path) -> Result<bool, DeployError> {
        let name = local
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| DeployError::new(format!("{} has no file name", local.display())))?;
        let bytes = std::fs::read(local)
            .map_err(|e| DeployError::new(format!("cannot read {}: {e}", local.display())))?;
        let digest: String = Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let target = format!("{}/bin/{name}", self.dir);
        let there = self
            .run(
                &format!("sha256sum {} 2>/dev/null; true", quote(&target)),
                None,
            )
            .await
            .map_err(|e| self.error("cannot read what is there", e))?;
        let fresh = there.split_whitespace().next() != Some(digest.as_str());
        if fresh {
            let partial = format!("{target}.partial");
            let script = format!(
                "cat > {p} && chmod 755 {p} && mv {p} {t}",
                p = quote(&partial),
                t = quote(&target)
            );
            self.run(&script, Some(&bytes))
                .await
                .map_err(|e| self.error(&format!("cannot upload {name} to {}", self.dir), e))?;
        }
        // A binary of another architecture fails here, not at start-up.
        self.run(&format!("{} --help > /dev/null", quote(&target)), None)
            .await
            .map_err(|e| {
                self.error(
                    &format!("{name} does not run there (another architecture or C library?)"),
                    e,
                )
            })?;
        Ok(fresh)
    }

    /// Writes `bytes` to `<dir>/<name>`, readable by its owner only.
    pub(crate) async fn write_private(&self, name: &str, bytes: &[u8]) -> Result<(), DeployError> {
        let target = format!("{}/{name}", self.dir);
        let script = format!(
            "umask 077 && cat > {t}.partial && mv {t}.partial {t}",
            t = quote(&target)
        );
        self.run(&script, Some(bytes))
            .await
            .map(drop)
            .map_err(|e| self.error(&format!("cannot write {target}"), e))
    }

    /// The local `ssh` command that runs `program args` there through the
    /// master connection, with `envs` set.
    pub(crate) fn command(
        &self,
        envs: &[(String, String)],
        program: &str,
        args: &[String],
    ) -> tokio::process::Command {
        let mut remote = String::from("exec");
        if !envs.is_empty() {
            remote.push_str(" env");
            for (k, v) in envs {
                remote.push(' ');
                remote.push_str(&quote(&format!("{k}={v}")));
            }
        }
        for word in std::iter::once(program).chain(args.iter().map(String::as_str)) {
            remote.push(' ');
            remote.push_str(&quote(word));
        }
        let mut command = through(self.session.control_socket(), &remote);
        command.stdin(Stdio::piped());
        command.into()
    }

    /// Sends `signal` to the processes there whose command line matches
    /// `pattern` (a blocking call: for kills and pauses, and cleanup on drop).
    pub(crate) fn signal(&self, signal: &str, pattern: &str) -> Result<(), DeployError> {
        let status = through(
            self.session.control_socket(),
            &format!("pkill -{signal} -f {}", quote(pattern)),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|e| self.error("cannot run ssh", e.to_string()))?;
        // pkill: 0 some matched, 1 none did.
        match status.code() {
            Some(0 | 1) => Ok(()),
            _ => Err(self.error(&format!("cannot send SIG{signal}"), status.to_string())),
        }
    }

    /// Kills whatever of this deployment still runs there (its binaries'
    /// directory): nothing outlives the deployment.
    pub(crate) fn kill_leftovers(&self) {
        let _ = self.signal("KILL", &format!("^{}/bin/", self.dir));
    }
}

/// The local `ssh` command that runs `remote` (a shell command line) there
/// as `openssh` does: through the master (`-S`), never a new connection
/// (`-p 9`: the discard port), and no password prompt.
fn through(control_socket: &Path, remote: &str) -> std::process::Command {
    let mut command = std::process::Command::new("ssh");
    command
        .arg("-S")
        .arg(control_socket)
        .args(["-o", "BatchMode=yes", "-T", "-p", "9", "none", "--"])
        .arg(remote);
    command
}

/// Connects to every host at once.
pub(crate) async fn connect_all(
    hosts: &Hosts,
    default_dir: &str,
) -> Result<Vec<Arc<Host>>, DeployError> {
    let tasks: Vec<_> = hosts
        .hosts
        .iter()
        .cloned()
        .map(|entry| {
            let dir = default_dir.to_string();
            tokio::spawn(async move { Host::connect(entry, &dir).await })
        })
        .collect();
    let mut connected = Vec::new();
    for task in tasks {
        let host = task
            .await
            .map_err(|e| DeployError::new(format!("connecting to a host: {e}")))??;
        connected.push(Arc::new(host));
    }
    Ok(connected)
}

/// A word for `sh`, quoted.
pub(crate) fn quote(word: &str) -> String {
    if !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-=:,@%+".contains(c))
    {
        return word.to_string();
    }
    format!("'{}'", word.replace('\'', "'\\''"))
}

/// An error with its causes, for messages (openssh's carry ssh's own words).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
