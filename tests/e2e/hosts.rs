//! Deploy scripts with `--hosts`: the same deployment over SSH. The hosts
//! are `sshd` instances this test starts on 127.0.0.2, 127.0.0.3, ... (each
//! with its own host key, authorized key, port and directory); every address
//! used is in 127.0.0.0/8.

use crate::support::*;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// One test host: an sshd on its own loopback address.
struct SshHost {
    address: String,
    port: u16,
    /// Where the deployment's files go there.
    dir: PathBuf,
    sshd: Child,
}

/// Test hosts and the client key that logs in to them.
struct SshHosts {
    root: PathBuf,
    hosts: Vec<SshHost>,
}

fn run(command: &mut Command) {
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("{command:?}: {e}"));
    assert!(out.status.success(), "{command:?}: {}", stderr(&out));
}

impl SshHosts {
    /// `n` sshd instances on 127.0.0.2, 127.0.0.3, ...
    fn start(name: &str, n: usize) -> SshHosts {
        let sshd = Path::new("/usr/sbin/sshd");
        if !sshd.exists() {
            panic!("`/usr/sbin/sshd` is not installed: install Debian's openssh-server (tests/run does)");
        }
        drop(require("ssh-keygen", "openssh-client"));
        std::fs::create_dir_all("/run/sshd").unwrap(); // its privilege separation directory
        let root = std::env::temp_dir().join(format!("weir-hosts-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        run(Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(root.join("id_ed25519")));
        let mut hosts = Vec::new();
        for i in 0..n {
            let address = format!("127.0.0.{}", i + 2);
            let port = std::net::TcpListener::bind((address.as_str(), 0))
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let home = root.join(format!("host-{i}"));
            std::fs::create_dir_all(&home).unwrap();
            run(Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                .arg(home.join("host_key")));
            std::fs::copy(root.join("id_ed25519.pub"), home.join("authorized_keys")).unwrap();
            let config = format!(
                "ListenAddress {address}:{port}\nHostKey {home}/host_key\nAuthorizedKeysFile {home}/authorized_keys\n\
                 PidFile {home}/sshd.pid\nUsePAM no\nStrictModes no\nPasswordAuthentication no\n\
                 KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\nLogLevel ERROR\n",
                home = home.display()
            );
            std::fs::write(home.join("sshd_config"), config).unwrap();
            let sshd = Command::new(sshd)
                .args(["-D", "-e", "-f"])
                .arg(home.join("sshd_config"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            let ready = (0..200).any(|_| {
                std::thread::sleep(Duration::from_millis(20));
                std::net::TcpStream::connect((address.as_str(), port)).is_ok()
            });
            assert!(ready, "sshd on {address}:{port} did not start");
            hosts.push(SshHost {
                address,
                port,
                dir: home.join("deploy"),
                sshd,
            });
        }
        SshHosts { root, hosts }
    }

    /// A hosts file for them; `edit` may change each entry's text.
    fn hosts_file(&self, edit: impl Fn(usize, String) -> String) -> PathBuf {
        let mut text = String::new();
        for (i, h) in self.hosts.iter().enumerate() {
            let entry = format!(
                "[[host]]\nssh = \"ssh://root@{}:{}\"\naddress = \"{}\"\ndir = \"{}\"\nidentity = \"{}\"\nknown_hosts = \"{}\"\n",
                h.address,
                h.port,
                h.address,
                h.dir.display(),
                self.root.join("id_ed25519").display(),
                self.root.join("known_hosts").display(),
            );
            text.push_str(&edit(i, entry));
        }
        let file = self.root.join(format!("hosts-{}.toml", text.len()));
        std::fs::write(&file, text).unwrap();
        file
    }

    /// Weir processes running from any host's directory (not the local
    /// `ssh` processes whose command lines name them).
    fn weir_processes(&self) -> Vec<String> {
        let prefix = self.root.display().to_string();
        processes(&self.root.join("host-"), |words| {
            words.get(1).is_some_and(|program| {
                program.starts_with(&prefix) && program.contains("/deploy/bin/")
            })
        })
    }

    /// The local `ssh` master connections (`-M`) to these hosts, found by
    /// the known-hosts file every connection to them names.
    fn ssh_connections(&self) -> Vec<String> {
        processes(&self.root.join("known_hosts"), |words| {
            words.contains(&"-M")
        })
    }
}

/// `pid command line` of each process whose command line names `path` and
/// whose words (the pid first) `keep` keeps.
fn processes(path: &Path, keep: impl Fn(&[&str]) -> bool) -> Vec<String> {
    let out = Command::new("pgrep")
        .args(["-a", "-f"])
        .arg(path)
        .output()
        .unwrap();
    stdout(&out)
        .lines()
        .filter(|l| keep(&l.split_whitespace().collect::<Vec<_>>()))
        .map(String::from)
        .collect()
}

impl SshHosts {
    /// No Weir process runs on any host, and no master connection to one
    /// is up here (given a moment to exit once told to).
    fn assert_nothing_left(&self) {
        self.assert_nothing_left_within(Duration::from_secs(5));
    }

    fn assert_nothing_left_within(&self, limit: Duration) {
        let start = Instant::now();
        let left = || [self.weir_processes(), self.ssh_connections()].concat();
        while !left().is_empty() && start.elapsed() < limit {
            std::thread::sleep(Duration::from_millis(100));
        }
        let left = left();
        assert!(left.is_empty(), "still running after {limit:?}: {left:?}");
    }

    /// Waits (up to a minute) until `n` instances run on the hosts.
    fn wait_for_instances(&self, n: usize) {
        let started = Instant::now();
        while self.weir_processes().len() < n && started.elapsed() < Duration::from_secs(60) {
            std::thread::sleep(Duration::from_millis(100));
        }
        assert_eq!(self.weir_processes().len(), n, "not every instance started");
    }
}

/// Starts deploy script `name` with `--hosts file`, its output captured, in
/// a process group of its own (so that a SIGINT reaches it alone).
fn spawn_deploy(name: &str, file: &Path) -> Child {
    Command::new(deploy_script(name))
        .arg("--hosts")
        .arg(file)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap()
}

impl Drop for SshHosts {
    fn drop(&mut self) {
        for h in &mut self.hosts {
            let _ = h.sshd.kill();
            let _ = h.sshd.wait();
        }
        // The hosts' homes hold every binary they were sent.
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// Deploy script `name` with `--hosts file`, to its end.
fn deploy(name: &str, hosts: &Path) -> std::process::Output {
    finish(spawn_deploy(name, hosts), Duration::from_secs(120))
}

/// The lines `[name] text` of a deployment's output, sorted.
fn instance_lines(out: &str) -> Vec<String> {
    let mut lines: Vec<String> = out
        .lines()
        .filter(|l| l.starts_with('['))
        .map(String::from)
        .collect();
    lines.sort();
    lines
}

#[test]
fn broadcast_over_three_ssh_hosts_prints_what_it_prints_locally_and_uploads_once() {
    let hosts = SshHosts::start("broadcast", 3);
    let file = hosts.hosts_file(|_, entry| entry);
    let out = deploy("broadcast", &file);
    let (printed, said) = (stdout(&out), stderr(&out));
    assert!(out.status.success(), "{said}");
    let mut expected: Vec<String> = (0..2)
        .flat_map(|w| (0..10).map(move |n| format!("[worker/{w}] {n}")))
        .collect();
    expected.sort();
    assert_eq!(instance_lines(&printed), expected, "{said}");
    // Round robin: leader, worker/0, worker/1 on the three hosts in order.
    for (instance, host) in [("leader", 0), ("worker/0", 1), ("worker/1", 2)] {
        let address = &hosts.hosts[host].address;
        assert!(
            said.contains(&format!(
                "weir-deploy: {instance} runs on host ssh://root@{address}:"
            )),
            "{said}"
        );
    }
    assert!(
        said.contains("1 binaries uploaded, 0 already there"),
        "{said}"
    );
    // Progress, over ssh as on this machine.
    for step in [
        "weir-deploy: connecting to 3 hosts over ssh\n",
        "weir-deploy: connected to 3 hosts in ",
        "weir-deploy: all 3 instances connected in ",
        "weir-deploy: done in ",
    ] {
        assert!(said.contains(step), "no `{step}` in:\n{said}");
    }
    for h in &hosts.hosts {
        let key = h.dir.join("weir.key");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    // Again: the same binaries are there, so nothing is uploaded.
    let again = deploy("broadcast", &file);
    assert!(again.status.success(), "{}", stderr(&again));
    assert!(
        stderr(&again).contains("0 binaries uploaded, 1 already there"),
        "{}",
        stderr(&again)
    );
    assert!(
        !stderr(&again).contains("1 binaries uploaded"),
        "{}",
        stderr(&again)
    );
    assert_eq!(instance_lines(&stdout(&again)), expected);
    hosts.assert_nothing_left();
}

#[test]
fn a_flow_through_two_clusters_over_ssh_hosts_prints_what_it_prints_locally() {
    let hosts = SshHosts::start("relay", 3);
    let file = hosts.hosts_file(|_, entry| entry);
    let remote = deploy("relay", &file);
    assert!(remote.status.success(), "{}", stderr(&remote));
    let local = Command::new(deploy_script("relay")).output().unwrap();
    assert!(local.status.success(), "{}", stderr(&local));
    assert_eq!(
        instance_lines(&stdout(&remote)),
        instance_lines(&stdout(&local))
    );
    assert!(!instance_lines(&stdout(&local)).is_empty());
    hosts.assert_nothing_left();
}

#[test]
fn ctrl_c_stops_every_remote_instance_and_leaves_no_process_on_any_host() {
    let hosts = SshHosts::start("ctrl-c", 2);
    let file = hosts.hosts_file(|_, entry| entry);
    // The Paxos store runs until Ctrl-C: 7 instances on 2 hosts, with client
    // endpoints on ports chosen there.
    let child = spawn_deploy("paxos_kv", &file);
    hosts.wait_for_instances(7);
    std::thread::sleep(Duration::from_secs(2));
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = finish(child, Duration::from_secs(60));
    assert!(out.status.success(), "{}", stderr(&out));
    let printed = stdout(&out);
    // A leader was elected (whichever proposer's timeout came first).
    assert!(
        printed
            .lines()
            .any(|l| l.starts_with("[proposer/") && l.contains("] leading with ballot")),
        "{printed}"
    );
    assert!(
        printed.contains("proposer/0 serves Redis clients on 127.0.0.2:"),
        "{printed}"
    );
    hosts.assert_nothing_left();
}

#[cfg(unix)]
use std::os::unix::process::CommandExt;

#[test]
fn a_killed_remote_instance_fails_the_deployment_naming_it_and_stops_the_rest() {
    let hosts = SshHosts::start("killed", 2);
    let file = hosts.hosts_file(|_, entry| entry);
    let child = spawn_deploy("compute_pi", &file);
    hosts.wait_for_instances(3);
    let Some(victim) = hosts
        .weir_processes()
        .into_iter()
        .find(|p| p.contains("--index 0"))
    else {
        let out = finish(child, Duration::from_secs(60));
        panic!("no worker/0 ran:\n{}\n{}", stdout(&out), stderr(&out));
    };
    let pid = victim.split_whitespace().next().unwrap();
    run(Command::new("kill").args(["-9", pid]));
    let out = finish(child, Duration::from_secs(60));
    assert!(!out.status.success());
    // Named by the deployment, or by the peer that lost it first.
    let said = stderr(&out);
    assert!(
        said.contains("error: worker/0 on host ssh://root@127.0.0.3:")
            || said.contains("lost peer worker/0"),
        "{said}"
    );
    hosts.assert_nothing_left();
}

#[test]
fn each_bad_host_is_a_clear_error_naming_it() {
    let hosts = SshHosts::start("bad", 1);
    let h = &hosts.hosts[0];
    let cases: Vec<(String, &str)> = vec![
        // Nothing listens there.
        (
            format!("[[host]]\nssh = \"ssh://root@127.0.0.9:{}\"\naddress = \"127.0.0.9\"\nidentity = \"{}\"\nknown_hosts = \"{}\"\n", free_port(), hosts.root.join("id_ed25519").display(), hosts.root.join("known_hosts").display()),
            "127.0.0.9",
        ),
        // A key the host does not accept.
        (
            hosts.hosts_file(|_, e| e.replace("id_ed25519", "host-0/host_key")).to_string_lossy().into_owned(),
            "Permission denied",
        ),
        // A directory that cannot be made.
        (
            hosts.hosts_file(|_, e| e.replace(&h.dir.display().to_string(), "/proc/weir-cannot")).to_string_lossy().into_owned(),
            "cannot use directory /proc/weir-cannot",
        ),
    ];
    for (hosts_file, expected) in cases {
        let file = if hosts_file.starts_with("[[host]]") {
            let file = hosts.root.join("unreachable.toml");
            std::fs::write(&file, &hosts_file).unwrap();
            file
        } else {
            PathBuf::from(hosts_file)
        };
        let out = deploy("broadcast", &file);
        assert!(!out.status.success());
        let said = stderr(&out);
        assert!(
            said.contains(expected) && said.contains("host ssh://"),
            "expected {expected:?} in:\n{said}"
        );
    }
    // A malformed hosts file names itself.
    let file = hosts.root.join("typo.toml");
    std::fs::write(&file, "[[host]]\nssh = \"x\"\nadress = \"127.0.0.2\"\n").unwrap();
    let out = deploy("broadcast", &file);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("typo.toml") && stderr(&out).contains("adress"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_dead_controller_leaves_nothing_running_on_either_side() {
    let hosts = SshHosts::start("dead-controller", 2);
    let file = hosts.hosts_file(|_, entry| entry);
    let mut child = spawn_deploy("paxos_kv", &file);
    hosts.wait_for_instances(7);
    assert_eq!(
        hosts.ssh_connections().len(),
        2,
        "one master connection a host"
    );
    // SIGKILL: the deploy script cannot stop anything itself.
    child.kill().unwrap();
    child.wait().unwrap();
    // The instances read the end of their input; the master connections
    // follow 10 s after their last use.
    hosts.assert_nothing_left_within(Duration::from_secs(30));
}

#[tokio::test]
async fn a_binary_that_cannot_run_on_a_host_is_an_error_naming_the_host() {
    let hosts = SshHosts::start("wrong-binary", 1);
    let file = hosts.hosts_file(|_, entry| entry);
    // Not a program for this machine: what a binary for another
    // architecture looks like to the host.
    let binary = hosts.root.join("garbage-leader");
    std::fs::write(
        &binary,
        [
            0x7fu8, b'E', b'L', b'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0xb7,
        ],
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&binary, std::fs::Permissions::from_mode(0o755)).unwrap();
    let outcome = weir_deploy::Deployment::new()
        .process("leader", &binary)
        .on_hosts(weir_deploy::Hosts::load(&file).unwrap())
        .run()
        .await;
    let err = outcome.expect_err("a garbage binary ran").to_string();
    assert!(
        err.contains("garbage-leader does not run there")
            && err.contains("host ssh://root@127.0.0.2:"),
        "{err}"
    );
}

/// A small tmpfs, unmounted when dropped.
struct TinyDisk(PathBuf);

impl Drop for TinyDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_on_a_host_is_an_error_naming_the_host() {
    let hosts = SshHosts::start("full-disk", 1);
    let dir = hosts.root.join("tiny");
    std::fs::create_dir_all(&dir).unwrap();
    run(Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=256k", "tmpfs"])
        .arg(&dir));
    let _disk = TinyDisk(dir.clone());
    let file = hosts.hosts_file(|_, e| {
        e.replace(
            &hosts.hosts[0].dir.display().to_string(),
            &dir.display().to_string(),
        )
    });
    let out = deploy("broadcast", &file);
    assert!(!out.status.success());
    let said = stderr(&out);
    assert!(
        said.contains("No space left on device") && said.contains("host ssh://root@127.0.0.2:"),
        "{said}"
    );
}

/// Over SSH hosts an upgrade uploads each new binary before it starts it,
/// and the one it puts back when the new build is refused.
#[tokio::test]
async fn a_role_on_ssh_hosts_is_upgraded_one_instance_at_a_time() {
    let hosts = SshHosts::start("upgrade", 2);
    let file = hosts.hosts_file(|_, entry| entry);
    let on_hosts = weir_deploy::Hosts::load(&file).unwrap();
    crate::builds_apart::beat_upgraded(|deployment| deployment.on_hosts(on_hosts)).await;
    hosts.assert_nothing_left();
}
