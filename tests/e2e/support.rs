//! Building the binaries once, topologies on free ports, running instances.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use weir_deploy::RoleBinaries;
use weir_runtime::auth::Key;

/// The role binaries of `bins`, built on first use (debug profile, like the tests).
pub fn bins() -> &'static RoleBinaries {
    static BINS: OnceLock<RoleBinaries> = OnceLock::new();
    BINS.get_or_init(|| RoleBinaries::build("bins").expect("building the role binaries"))
}

pub fn bin(name: &str) -> PathBuf {
    bins().path(name)
}

/// The deploy script `examples/<name>.rs`, built as a user builds it (debug).
pub fn deploy_script(name: &str) -> PathBuf {
    weir_deploy::cargo_build(&["-p", "examples", "--example", name], None)
        .expect("building the deploy script")
        .join("examples")
        .join(name)
}

pub fn free_port() -> u16 {
    weir_deploy::free_port().expect("a free loopback port")
}

/// A topology file with fresh loopback ports: `roles` gives each role's size.
pub struct Topo {
    pub file: PathBuf,
    pub addresses: Vec<(String, Vec<String>)>,
}

impl Topo {
    pub fn new(roles: &[(&str, usize)]) -> Topo {
        let addresses: Vec<(String, Vec<String>)> = roles
            .iter()
            .map(|(role, n)| {
                (
                    role.to_string(),
                    (0..*n)
                        .map(|_| format!("127.0.0.1:{}", free_port()))
                        .collect(),
                )
            })
            .collect();
        let text: String = addresses
            .iter()
            .map(|(role, addrs)| {
                let quoted: Vec<String> = addrs.iter().map(|a| format!("\"{a}\"")).collect();
                format!("[{role}]\naddresses = [{}]\n", quoted.join(", "))
            })
            .collect();
        Topo::from_text(&text, addresses)
    }

    pub fn from_text(text: &str, addresses: Vec<(String, Vec<String>)>) -> Topo {
        // One directory per topology: tests run in parallel.
        static TOPOLOGIES: AtomicUsize = AtomicUsize::new(0);
        let n = TOPOLOGIES.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("weir-e2e-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir); // left by an earlier run with this pid
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("topology.toml");
        std::fs::write(&file, text).unwrap();
        Key::generate(&key_beside(&file)).unwrap();
        Topo { file, addresses }
    }

    /// This deployment's key file.
    pub fn key(&self) -> PathBuf {
        key_beside(&self.file)
    }

    pub fn address(&self, role: &str, index: usize) -> &str {
        &self.addresses.iter().find(|(r, _)| r == role).unwrap().1[index]
    }
}

/// The key of the deployment whose topology file is `topo`: `weir.key` beside it.
pub fn key_beside(topo: &Path) -> PathBuf {
    topo.with_file_name("weir.key")
}

/// The command that starts one instance, with the deployment's key if there is
/// one beside the topology file (and `extra` chooses none).
pub fn command(binary: &str, topo: &Path, index: Option<usize>, extra: &[&str]) -> Command {
    let mut command = Command::new(bin(binary));
    command.arg("--topology").arg(topo);
    let chosen = extra
        .iter()
        .any(|a| *a == "--key-file" || *a == "--insecure-no-auth");
    if key_beside(topo).exists() && !chosen {
        command.arg("--key-file").arg(key_beside(topo));
    }
    command.args(extra);
    if let Some(index) = index {
        command.arg("--index").arg(index.to_string());
    }
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    command
}

/// Starts one instance with its output captured.
pub fn start(binary: &str, topo: &Path, index: Option<usize>, extra: &[&str]) -> Child {
    command(binary, topo, index, extra)
        .spawn()
        .expect("starting a role binary")
}

/// Waits for an instance, killing it (and failing the test) if it hangs.
pub fn finish(mut child: Child, limit: Duration) -> Output {
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > limit {
            child.kill().unwrap();
            let out = child.wait_with_output().unwrap();
            panic!(
                "instance still running after {limit:?}\nstdout: {}\nstderr: {}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub const LIMIT: Duration = Duration::from_secs(30);

/// Every instance of a flow, started together on a fresh topology. `roles` gives
/// `(role, None)` for a process and `(role, Some(members))` for a cluster; the
/// binaries are `<flow>-<role>`.
pub struct Running {
    pub instances: Vec<(String, Child)>,
}

impl Running {
    pub fn start(flow: &str, roles: &[(&str, Option<usize>)]) -> Running {
        let all: Vec<&str> = roles.iter().map(|&(r, _)| r).collect();
        Running::start_only(flow, roles, &all)
    }

    /// Like [`Running::start`], but starts only the roles in `only` (the topology
    /// still lists every role, as the binaries require).
    pub fn start_only(flow: &str, roles: &[(&str, Option<usize>)], only: &[&str]) -> Running {
        let sizes: Vec<(&str, usize)> = roles.iter().map(|&(r, n)| (r, n.unwrap_or(1))).collect();
        let topo = Topo::new(&sizes);
        let mut instances = Vec::new();
        for &(role, members) in roles.iter().filter(|(r, _)| only.contains(r)) {
            let binary = format!("{flow}-{role}");
            match members {
                None => instances.push((role.to_string(), start(&binary, &topo.file, None, &[]))),
                Some(n) => {
                    for i in 0..n {
                        let child = start(&binary, &topo.file, Some(i), &[]);
                        instances.push((format!("{role}/{i}"), child));
                    }
                }
            }
        }
        Running { instances }
    }

    /// Sends SIGTERM to every instance.
    pub fn terminate(&self) {
        for (_, child) in &self.instances {
            // SAFETY: kill(2) on a child we started; no memory is involved.
            unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
        }
    }

    /// Waits for every instance, asserting each exits successfully; returns each
    /// instance's standard output by name.
    pub fn outputs(self) -> Vec<(String, String)> {
        self.instances
            .into_iter()
            .map(|(name, child)| {
                let out = finish(child, LIMIT);
                assert!(out.status.success(), "{name} failed: {}", stderr(&out));
                (name, stdout(&out))
            })
            .collect()
    }
}

/// The output of the instance called `name`.
pub fn output_of<'o>(outputs: &'o [(String, String)], name: &str) -> &'o str {
    &outputs
        .iter()
        .find(|(n, _)| n == name)
        .expect("instance exists")
        .1
}
