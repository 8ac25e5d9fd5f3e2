//! Building the binaries once, topologies on free ports, running instances.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
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

/// A fresh directory of a test's own, `weir-<what>-...` in the system's
/// temporary directory, removed when dropped: also when the test fails.
pub fn scratch(what: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("weir-{what}-"))
        .tempdir()
        .expect("a scratch directory")
}

pub fn free_port() -> u16 {
    weir_deploy::free_port().expect("a free loopback port")
}

/// A topology file with fresh loopback ports: `roles` gives each role's size.
pub struct Topo {
    pub file: PathBuf,
    pub addresses: Vec<(String, Vec<String>)>,
    /// The file's directory (also the tests' state and key files), removed with it.
    _dir: tempfile::TempDir,
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
        let dir = scratch("e2e");
        let file = dir.path().join("topology.toml");
        std::fs::write(&file, text).unwrap();
        Key::generate(&key_beside(&file)).unwrap();
        Topo {
            file,
            addresses,
            _dir: dir,
        }
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
    command_at(&bin(binary), topo, index, extra)
}

/// [`command`] for the binary at `path` (one a test built itself).
pub fn command_at(path: &Path, topo: &Path, index: Option<usize>, extra: &[&str]) -> Command {
    let mut command = Command::new(path);
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
    /// Their topology: instances read it (and their key) as they start.
    _topo: Topo,
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
        Running {
            instances,
            _topo: topo,
        }
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

/// A running instance whose output is collected as it comes, for tests that
/// act on it while it runs (kill, pause, restart).
pub struct Watched {
    pub name: String,
    child: Child,
    stdout: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    stderr: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Watched {
    pub fn start(name: &str, mut command: Command) -> Watched {
        let mut child = command.spawn().expect("starting a role binary");
        let collect = |from: Box<dyn std::io::Read + Send>| {
            let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
            let sink = lines.clone();
            std::thread::spawn(move || {
                use std::io::BufRead;
                for line in std::io::BufReader::new(from).lines().map_while(Result::ok) {
                    sink.lock().unwrap().push(line);
                }
            });
            lines
        };
        let stdout = collect(Box::new(child.stdout.take().expect("piped")));
        let stderr = collect(Box::new(child.stderr.take().expect("piped")));
        Watched {
            name: name.to_string(),
            child,
            stdout,
            stderr,
        }
    }

    pub fn stdout(&self) -> Vec<String> {
        self.stdout.lock().unwrap().clone()
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().join("\n")
    }

    /// How many stdout lines start with `prefix`.
    pub fn count(&self, prefix: &str) -> usize {
        self.stdout
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.starts_with(prefix))
            .count()
    }

    /// Waits up to `limit` for a stdout line equal to `line`; how long it took.
    pub fn wait_for(&self, line: &str, limit: Duration) -> Option<Duration> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if self.stdout.lock().unwrap().iter().any(|l| l == line) {
                return Some(start.elapsed());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Waits up to `limit` for `count(prefix)` to pass `more_than`.
    pub fn wait_for_more(&self, prefix: &str, more_than: usize, limit: Duration) -> bool {
        let start = Instant::now();
        while start.elapsed() < limit {
            if self.count(prefix) > more_than {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    pub fn signal(&self, signal: libc::c_int) {
        // SAFETY: kill(2) on a child we started; no memory is involved.
        unsafe { libc::kill(self.child.id() as libc::pid_t, signal) };
    }

    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// The peak resident memory so far, in KiB (Linux).
    pub fn peak_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmHWM in /proc/PID/status")
    }

    /// Kills the instance (SIGKILL) and reaps it.
    pub fn kill_now(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(mut self, limit: Duration) -> std::process::ExitStatus {
        self.signal(libc::SIGTERM);
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            if start.elapsed() > limit {
                let _ = self.child.kill();
                panic!(
                    "{} still running {limit:?} after SIGTERM: {}",
                    self.name,
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        // Nothing a failed test started outlives it.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Connects to `address`, retrying until something listens there.
pub async fn connect(address: &str) -> tokio::net::TcpStream {
    loop {
        match tokio::net::TcpStream::connect(address).await {
            Ok(s) => return s,
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

/// Who a test claims to be in a handshake it plays by hand.
pub struct Peer<'a> {
    pub flow: &'a str,
    pub role: &'a str,
    pub index: u32,
    pub incarnation: u64,
    /// What its build says of the channels to the instance it dials.
    pub channels: Vec<weir_runtime::wire::WireChannel>,
}

/// The channels between `role` and `peer_role` of flow `f`, as the role's
/// binary lists them in its hello: what a test playing it by hand says.
pub fn hello_channels(
    f: fn(&weir::FlowBuilder),
    role: &str,
    peer_role: &str,
) -> Vec<weir_runtime::wire::WireChannel> {
    use weir::ir::{Delivery, Failure};
    let graph = weir_build::evaluate(f);
    graph
        .channels()
        .filter(|c| (c.from == role && c.to == peer_role) || (c.from == peer_role && c.to == role))
        .map(|c| weir_runtime::wire::WireChannel {
            id: c.id as u32,
            from: c.from.to_string(),
            to: c.to.to_string(),
            delivery: match c.delivery {
                Delivery::ToProcess => "to the process",
                Delivery::Broadcast => "to every member",
                Delivery::ToMember => "to the member named",
                Delivery::RoundRobin => "to the members in turn",
            }
            .to_string(),
            tolerant: c.failure == Failure::Tolerant,
            made_by: c.made_by,
            record: c.element_type.to_string(),
            shape: c.shape.as_ref().map(|s| s.encode()).unwrap_or_default(),
        })
        .collect()
}

/// A link a test joined by hand: what the instance sends, and where the
/// test writes its frames (sealed, with a key).
pub struct Joined {
    #[allow(dead_code)] // held: the link stays open while the test writes
    pub reader: weir_runtime::transport::PeerReader,
    pub writer: weir_runtime::transport::PeerWriter,
}

impl std::fmt::Debug for Joined {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a joined link")
    }
}

/// Connects to `address` (retrying until it listens) and plays the dialing
/// side of the handshake as `me`, under `key` (none: unprotected). The link,
/// or the reason the instance gave for refusing it.
pub async fn handshake_as(
    address: &str,
    me: &Peer<'_>,
    key: Option<&Key>,
) -> Result<Joined, String> {
    use tokio::io::AsyncWriteExt;
    use weir_runtime::frame::Handshake;
    let mut stream = connect(address).await;
    let hello = Handshake::Hello {
        flow: me.flow.into(),
        role: me.role.into(),
        index: me.index,
        incarnation: me.incarnation,
        channels: me.channels.clone(),
    };
    let Some(key) = key else {
        stream.write_all(&hello.encode()).await.unwrap();
        return match Handshake::read(&mut stream)
            .await
            .map_err(|e| e.to_string())?
        {
            Handshake::Refusal { reason } => Err(reason),
            _ => {
                let (reader, writer) = stream.into_split();
                Ok(Joined {
                    reader: Box::new(reader),
                    writer: Box::new(writer),
                })
            }
        };
    };
    let dialed = weir_runtime::secure::dial(stream, key, &hello)
        .await
        .map_err(|e| e.to_string())?;
    if let Handshake::Refusal { reason } = &dialed.answer {
        return Err(reason.clone());
    }
    let (reader, writer) = dialed.confirm().await.map_err(|e| e.to_string())?;
    Ok(Joined {
        reader: Box::new(reader),
        writer: Box::new(writer),
    })
}

/// Runs `cargo run -p weir-cli -- <args>` in this workspace.
pub fn weir(args: &[&str]) -> Output {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    Command::new(env!("CARGO"))
        .args(["run", "-q", "-p", "weir-cli", "--"])
        .args(args)
        .current_dir(root)
        .output()
        .unwrap()
}

/// Runs `cargo <args>` in a project outside this workspace (one a test made),
/// with a target directory all such projects share: built once per run, not
/// once per test.
pub fn user_cargo(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO"))
        .args(args)
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", user_target())
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_MANIFEST_DIR")
        .env_remove("WEIR_BIN_DIR")
        .output()
        .expect("cargo runs")
}

/// The target directory of the projects tests make (a `CARGO_TARGET_DIR`
/// outside each of them).
pub fn user_target() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is in the workspace")
        .join("target/user-projects")
}

/// A command for `program`, which is not built by cargo: the test fails
/// with one line naming the Debian `package` to install if it is missing
/// (`tests/run` installs every one).
pub fn require(program: &str, package: &str) -> Command {
    let found = Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !found {
        panic!("`{program}` is not installed: install Debian's {package} (tests/run does)");
    }
    Command::new(program)
}

/// `redis-cli -h 127.0.0.1 -p PORT args...` against `address`, given 10 s:
/// what it printed (stdout, then stderr), trimmed. Never fails: a refusal or
/// no answer is what some tests look for.
pub fn redis_cli_within(address: &str, args: &[&str]) -> String {
    let port = address.rsplit(':').next().unwrap();
    drop(require("redis-cli", "redis-tools"));
    let out = Command::new("timeout")
        .args(["10", "redis-cli", "-h", "127.0.0.1", "-p", port])
        .args(args)
        .output()
        .expect("timeout runs");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    text.trim().to_string()
}

/// `addresses` as the items of a TOML array: `"a", "b"`.
pub fn toml_list(addresses: &[String]) -> String {
    addresses
        .iter()
        .map(|a| format!("\"{a}\""))
        .collect::<Vec<_>>()
        .join(", ")
}
