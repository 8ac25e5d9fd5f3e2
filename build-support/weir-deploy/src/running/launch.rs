//! Starting a deployment: where each instance runs, its ports, the
//! topology and key every instance is given, and the hosts made ready.

use super::output::Lines;
use super::process::{pass_on_signals, Instance};
use super::RunningDeployment;
use crate::error::DeployError;
use crate::hosts::{connect_all, Host};
use crate::plan::Deployment;
use crate::ports::free_port;
use crate::progress::{took, Progress};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;
use weir_runtime::auth::Key;
use weir_runtime::topology::Topology;
use weir_runtime::READY_ENV;

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
