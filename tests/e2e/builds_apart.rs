//! Two builds of one flow, as a project changes over time: they link when
//! every channel between their roles carries records of the same shape,
//! whatever else changed, and refuse each other, naming the channel and the
//! first difference, when one does not.

use crate::support::*;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// A flow whose record type the builds below change.
const FLOW: &str = r#"use serde::{Deserialize, Serialize};
use weir::*;

#[derive(Serialize, Deserialize, Clone, Debug)]
pub enum Kind {
    Plain,
}

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Rec {
    pub a: u32,
    pub kind: Kind,
}

impl Rec {
    pub fn new(a: u32) -> Rec {
        Rec { a, kind: Kind::Plain }
    }
}

pub fn skew(flow: &FlowBuilder) {
    let leader = flow.process("leader");
    let sink = flow.process("sink");
    flow.source_iter(&leader, q!((1u32..=5).map(|a| Rec::new(a))))
        .send_bincode(&sink)
        .for_each(q!(|r| println!("got {:?}", r)));
    // (another channel)
}
"#;

/// A project made with `weir new`, holding one flow of ours: module
/// `module`, function `module`, its source files and its roles.
pub(crate) struct Project {
    dir: PathBuf,
    module: &'static str,
    /// Paths under `flow/src/`, and their text.
    files: Vec<(String, String)>,
    roles: &'static [&'static str],
    /// Where each build's binaries are kept.
    builds: PathBuf,
}

impl Drop for Project {
    /// Its copy and its builds' binaries (a few hundred MB) go with it.
    fn drop(&mut self) {
        if let Some(parent) = self.dir.parent() {
            let _ = std::fs::remove_dir_all(parent);
        }
    }
}

impl Project {
    pub(crate) fn new(
        module: &'static str,
        source: &'static str,
        roles: &'static [&'static str],
    ) -> Project {
        let files = vec![(format!("{module}.rs"), source.to_string())];
        Project::with_files(module, files, roles)
    }

    /// A project whose module `module` is `files` (paths under `flow/src/`).
    pub(crate) fn with_files(
        module: &'static str,
        files: Vec<(String, String)>,
        roles: &'static [&'static str],
    ) -> Project {
        // One directory per project: tests run in parallel.
        static PROJECTS: AtomicUsize = AtomicUsize::new(0);
        let n = PROJECTS.fetch_add(1, Ordering::Relaxed);
        let parent =
            std::env::temp_dir().join(format!("weir-apart-{module}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&parent);
        let dir = parent.join("skewapp");
        let out = weir(&["new", dir.to_str().unwrap()]);
        assert!(out.status.success(), "weir new failed:\n{}", stderr(&out));
        let edit = |file: &str, change: &dyn Fn(String) -> String| {
            let path = dir.join(file);
            let text = std::fs::read_to_string(&path).unwrap();
            std::fs::write(&path, change(text)).unwrap();
        };
        edit("flow/src/lib.rs", &|t| {
            t + &format!("\npub mod {module};\n")
        });
        // What the flows here use besides weir (paxos_kv's values: `Arc`s,
        // its keys and values: bytes, its maps of connections: Fx hashing,
        // its store: aHash).
        edit("flow/Cargo.toml", &|t| {
            t + "serde = { version = \"1\", features = [\"derive\", \"rc\"] }\nserde_bytes = \"0.11\"\nrustc-hash = \"2\"\nahash = \"0.8\"\n"
        });
        edit("bins/build.rs", &|t| {
            t.replace(
                "        .build();",
                &format!("        .flow(\"{module}\", skewapp_flow::{module}::{module})\n        .build();"),
            )
        });
        for role in roles {
            let stub =
                format!("include!(concat!(env!(\"OUT_DIR\"), \"/{module}/{role}/main.rs\"));\n");
            std::fs::write(dir.join(format!("bins/src/bin/{module}-{role}.rs")), stub).unwrap();
        }
        let builds = parent.join("builds");
        std::fs::create_dir_all(&builds).unwrap();
        Project {
            dir,
            module,
            files,
            roles,
            builds,
        }
    }

    /// Writes the flow's files as `change` makes each, builds, and keeps this
    /// build's binaries under `name`.
    pub(crate) fn build(&self, name: &str, change: &dyn Fn(&str) -> String) -> PathBuf {
        // Projects share a target directory (and their binaries' names):
        // one build and copy at a time.
        static BUILDING: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let _one = BUILDING.lock().unwrap_or_else(|e| e.into_inner());
        for (path, text) in &self.files {
            let file = self.dir.join("flow/src").join(path);
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            std::fs::write(file, change(text)).unwrap();
        }
        let out = user_cargo(&self.dir, &["build", "-q", "-p", "skewapp-bins"]);
        assert!(out.status.success(), "cargo build:\n{}", stderr(&out));
        let kept = self.builds.join(name);
        std::fs::create_dir_all(&kept).unwrap();
        for role in self.roles {
            let binary = format!("{}-{role}", self.module);
            std::fs::copy(
                user_target().join("debug").join(&binary),
                kept.join(&binary),
            )
            .unwrap();
        }
        kept
    }
}

const LIMIT: Duration = Duration::from_secs(60);

/// Runs the leader of build `leader` and the sink of build `sink` together.
fn run(leader: &Path, sink: &Path) -> (std::process::Output, std::process::Output) {
    let topo = Topo::new(&[("leader", 1), ("sink", 1)]);
    let extra = ["--connect-timeout", "10"];
    let start = |path: PathBuf| {
        command_at(&path, &topo.file, None, &extra)
            .spawn()
            .expect("starting a role binary")
    };
    let sink = start(sink.join("skew-sink"));
    let leader = start(leader.join("skew-leader"));
    (finish(leader, LIMIT), finish(sink, LIMIT))
}

/// A second channel from the leader to the sink, `tolerant` or fail-stop.
fn with_channel(flow: &str, tolerant: bool) -> String {
    let send = if tolerant {
        "send_bincode_tolerant"
    } else {
        "send_bincode"
    };
    flow.replace(
        "    // (another channel)",
        &format!(
            "    flow.source_iter(&leader, q!(0..3u8))\n        .{send}(&sink)\n        .for_each(q!(|n| println!(\"extra {{}}\", n)));"
        ),
    )
}

/// Asserts both instances refused each other, each naming the channel and
/// saying `why`, and that nothing was delivered.
fn refused(leader: &std::process::Output, sink: &std::process::Output, why: &[&str]) {
    assert!(!leader.status.success() && !sink.status.success());
    assert_eq!(
        stdout(sink),
        "",
        "a record was read with another build's type"
    );
    for out in [leader, sink] {
        let said = stderr(out);
        assert!(said.contains("send_bincode at flow/src/skew.rs:"), "{said}");
        assert!(why.iter().any(|w| said.contains(w)), "{said}");
    }
}

#[test]
fn builds_link_when_their_records_agree_and_refuse_naming_the_first_difference() {
    let project = Project::new("skew", FLOW, &["leader", "sink"]);
    let v1 = project.build("v1", &|flow| flow.to_string());
    // Only a closure changed: the records on the wire did not.
    let reworded = project.build("reworded", &|flow| flow.replace("got {:?}", "got: {:?}"));
    // The record's field changed type, with the flow's code and lines as they were.
    let retyped = project.build("retyped", &|flow| {
        flow.replace("    pub a: u32,", "    pub a: (u16, u16),")
            .replace("Rec { a, kind", "Rec { a: (a as u16, 7), kind")
    });
    let widened = project.build("widened", &|flow| {
        flow.replace("    pub kind: Kind,", "    pub kind: Kind,\n    pub b: u8,")
            .replace("kind: Kind::Plain }", "kind: Kind::Plain, b: 0 }")
    });
    let variant = project.build("variant", &|flow| {
        flow.replace("    Plain,", "    Plain,\n    Loud,")
    });
    let more_tolerant = project.build("more_tolerant", &|flow| with_channel(flow, true));
    let more_fail_stop = project.build("more_fail_stop", &|flow| with_channel(flow, false));

    let records = |prefix: &str| -> String {
        (1..=5)
            .map(|a| format!("{prefix} Rec {{ a: {a}, kind: Plain }}\n"))
            .collect()
    };
    let (leader, sink) = run(&v1, &reworded);
    assert!(leader.status.success(), "{}", stderr(&leader));
    assert!(sink.status.success(), "{}", stderr(&sink));
    assert_eq!(stdout(&sink), records("got:"));

    let (leader, sink) = run(&v1, &retyped);
    refused(
        &leader,
        &sink,
        &[
            "Rec.a: u32 at leader, (u16, u16) at sink",
            "Rec.a: (u16, u16) at sink, u32 at leader",
        ],
    );
    let (leader, sink) = run(&v1, &widened);
    refused(
        &leader,
        &sink,
        &[
            "Rec: no such field at leader, field `b` at sink",
            "Rec: field `b` at sink, no such field at leader",
        ],
    );
    let (leader, sink) = run(&v1, &variant);
    refused(
        &leader,
        &sink,
        &[
            "Kind, variant 1: none at leader, `Loud` at sink",
            "Kind, variant 1: `Loud` at sink, none at leader",
        ],
    );

    // A tolerant channel one build lacks: the builds link; what goes on it
    // to the build without it is dropped, and from it nothing comes.
    for (leader_build, sink_build) in [(&more_tolerant, &v1), (&v1, &more_tolerant)] {
        let (leader, sink) = run(leader_build, sink_build);
        assert!(leader.status.success(), "{}", stderr(&leader));
        assert!(sink.status.success(), "{}", stderr(&sink));
        assert_eq!(stdout(&sink), records("got"));
        let said = format!("{}{}", stderr(&leader), stderr(&sink));
        assert!(said.contains("runs a build without channels"), "{said}");
    }
    // A fail-stop one: refused, naming it.
    let (leader, sink) = run(&more_fail_stop, &v1);
    assert!(!leader.status.success() && !sink.status.success());
    for out in [&leader, &sink] {
        let said = stderr(out);
        assert!(
            said.contains("it is fail-stop: both ends must have it"),
            "{said}"
        );
        assert!(said.contains("skew.rs:"), "{said}");
    }
}

/// A leader that beats every 50 ms to every worker, over a tolerant edge.
pub(crate) const BEAT: &str = r#"use serde::{Deserialize, Serialize};
use weir::*;

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Beat {
    pub n: u64,
}

pub fn beat(flow: &FlowBuilder) {
    let leader = flow.process("leader");
    let workers = flow.cluster("worker");
    flow.source_interval(&leader, q!(std::time::Duration::from_millis(50)))
        .enumerate()
        .map(q!(|(n, _)| Beat { n: n as u64 }))
        .broadcast_bincode_tolerant(&workers)
        .for_each(q!(|b| println!("beat {}", b.n)));
}
"#;

/// Waits until every worker printed a line starting with `prefix`.
pub(crate) async fn every_worker_says(running: &mut weir_deploy::RunningDeployment, prefix: &str) {
    let mut heard = [false, false];
    let waited = tokio::time::timeout(Duration::from_secs(30), async {
        while heard.contains(&false) {
            let line = running.next_line().await.expect("the deployment runs");
            for (w, seen) in heard.iter_mut().enumerate() {
                *seen |= line.starts_with(&format!("[worker/{w}] {prefix}"));
            }
        }
    })
    .await;
    assert!(waited.is_ok(), "workers heard saying `{prefix}`: {heard:?}");
}

/// Three builds of the beat flow: the first, one that only says more (it
/// agrees on the wire), and one whose records changed.
/// The three builds, and the project that holds them (their binaries go
/// with it).
fn beat_builds() -> (Project, [PathBuf; 3]) {
    let project = Project::new("beat", BEAT, &["leader", "worker"]);
    let builds = [
        project.build("v1", &|flow| flow.to_string()),
        project.build("v2", &|flow| flow.replace("\"beat {}\"", "\"beat v2 {}\"")),
        project.build("v3", &|flow| {
            flow.replace("pub n: u64", "pub n: u32")
                .replace("n as u64", "n as u32")
        }),
    ];
    (project, builds)
}

/// Upgrades the running beat deployment's workers to `v2` (it rolls in),
/// then to `v3` (it stops at the first worker, and every worker is served
/// on `v2` still).
async fn upgrade_workers(running: &mut weir_deploy::RunningDeployment, v2: &Path, v3: &Path) {
    running.ready().await.expect("every instance is ready");
    every_worker_says(running, "beat ").await;

    running
        .upgrade("worker", &v2.join("beat-worker"), Duration::from_secs(20))
        .await
        .expect("a build that agrees on the wire rolls in");
    every_worker_says(running, "beat v2 ").await;

    let err = running
        .upgrade("worker", &v3.join("beat-worker"), Duration::from_secs(10))
        .await
        .expect_err("a build whose records differ is refused")
        .to_string();
    assert!(err.contains("stopped at worker/0"), "{err}");
    assert!(err.contains("Beat.n"), "{err}");
    assert!(err.contains("as do worker/1"), "{err}");
    // The store of the analogy keeps serving: both workers, on the build
    // before, hear the leader still.
    assert!(running.is_running("worker/0") && running.is_running("worker/1"));
    every_worker_says(running, "beat v2 ").await;
}

/// Runs the beat flow's first build (as `place` places it), upgrades its
/// workers as [`upgrade_workers`] does, and stops it.
pub(crate) async fn beat_upgraded(
    place: impl FnOnce(weir_deploy::Deployment) -> weir_deploy::Deployment,
) {
    let (_project, [v1, v2, v3]) = beat_builds();
    let deployment = weir_deploy::Deployment::new()
        .process("leader", v1.join("beat-leader"))
        .cluster("worker", v1.join("beat-worker"), 2)
        .capture_output()
        .timeout(Duration::from_secs(180));
    let mut running = place(deployment)
        .start()
        .await
        .expect("the deployment starts");
    upgrade_workers(&mut running, &v2, &v3).await;
    running.stop();
    running.wait().await.expect("the deployment stops cleanly");
}

#[tokio::test]
async fn a_role_is_upgraded_one_instance_at_a_time_and_stops_at_a_build_its_peers_refuse() {
    beat_upgraded(|here| here).await;
}
