//! `--manifests DIR --image IMAGE` on a deploy script: Kubernetes objects,
//! a compose file and a Containerfile, validated against the Kubernetes
//! schemas offline (`kubernetes-validate --strict`) and checked for what
//! matters: indexes, addresses, the key mounted and never printed.

use crate::support::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use weir_runtime::topology::Topology;

const IMAGE: &str = "registry.example/weir-test:1";

/// Runs deploy script `name` with `--manifests` into a fresh directory.
fn manifests(name: &str) -> (tempfile::TempDir, String) {
    let dir = scratch(&format!("manifests-{name}"));
    let printed = write_manifests(name, dir.path());
    (dir, printed)
}

/// Runs deploy script `name` with `--manifests dir`; what it printed.
fn write_manifests(name: &str, dir: &Path) -> String {
    let out = Command::new(deploy_script(name))
        .args(["--manifests", dir.to_str().unwrap(), "--image", IMAGE])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out) + &stderr(&out)
}

fn read(dir: &Path, file: &str) -> String {
    std::fs::read_to_string(dir.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"))
}

/// The topology inside the ConfigMap's block scalar.
fn config_map_topology(dir: &Path) -> Topology {
    let text = read(dir, "topology-configmap.yaml");
    let (_, block) = text
        .split_once("topology.toml: |\n")
        .expect("a topology block");
    let toml: String = block
        .lines()
        .map(|l| l.strip_prefix("    ").unwrap_or(l))
        .collect::<Vec<_>>()
        .join("\n");
    Topology::parse(&toml, "the ConfigMap").unwrap()
}

/// `kubernetes-validate`, as `tests/run` installs it (or from `PATH`).
fn kubernetes_validate() -> Command {
    let tool = std::env::var("WEIR_KUBERNETES_VALIDATE")
        .unwrap_or_else(|_| "kubernetes-validate".to_string());
    let found = Command::new(&tool).arg("--version").output().is_ok();
    if !found {
        panic!("`{tool}` is not installed: `pip install kubernetes-validate` in a venv (tests/run does)");
    }
    Command::new(tool)
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn broadcast_manifests_validate_and_say_what_each_instance_needs() {
    let (scratch, printed) = manifests("broadcast");
    let dir = scratch.path();
    let key = read(dir, "weir.key").trim().to_string();
    assert!(!printed.contains(&key), "the key was printed:\n{printed}");
    assert_eq!(mode(&dir.join("weir.key")), 0o600);
    assert_eq!(mode(&dir.join("key-secret.yaml")), 0o600);

    // Offline validation against the schemas, rejecting unknown fields.
    let kubernetes: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    assert_eq!(kubernetes.len(), 6, "{kubernetes:?}");
    let out = kubernetes_validate()
        .arg("--strict")
        .args(&kubernetes)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));

    // Members take their index from their pod; the process has none.
    let workers = read(dir, "broadcast-worker-statefulset.yaml");
    assert!(workers.contains("replicas: 2"), "{workers}");
    assert!(
        workers.contains("podManagementPolicy: Parallel"),
        "{workers}"
    );
    assert!(workers.contains("name: \"WEIR_INDEX\""), "{workers}");
    assert!(
        workers.contains("fieldPath: \"metadata.labels['apps.kubernetes.io/pod-index']\""),
        "{workers}"
    );
    assert!(
        workers.contains(&format!("image: \"{IMAGE}\"")),
        "{workers}"
    );
    assert!(
        workers.contains("\"/usr/local/bin/broadcast-worker\""),
        "{workers}"
    );
    let leader = read(dir, "broadcast-leader-statefulset.yaml");
    assert!(
        leader.contains("replicas: 1") && !leader.contains("WEIR_INDEX"),
        "{leader}"
    );
    // The key is mounted from the Secret, the topology from the ConfigMap.
    for set in [&workers, &leader] {
        assert!(set.contains("secretName: \"broadcast-key\""), "{set}");
        assert!(
            set.contains("\"--key-file\", \"/etc/weir-key/weir.key\""),
            "{set}"
        );
        assert!(set.contains("name: \"broadcast-topology\""), "{set}");
        // Upgrades roll one pod at a time, each once the one before is ready:
        // linked with its peers, as `--health` answers.
        assert!(
            set.contains("updateStrategy:\n    type: RollingUpdate"),
            "{set}"
        );
        assert!(set.contains("\"--health\", \"0.0.0.0:7070\""), "{set}");
        assert!(
            set.contains("readinessProbe:\n            httpGet:\n              path: \"/ready\"\n              port: 7070"),
            "{set}"
        ); // Each pod has a volume of its own for its durable state.
        assert!(
            set.contains("\"--state-dir\", \"/var/lib/weir/state\""),
            "{set}"
        );
        assert!(
            set.contains("volumeClaimTemplates:\n    - metadata:\n        name: \"state\""),
            "{set}"
        );
        assert!(
            set.contains("- name: \"state\"\n              mountPath: \"/var/lib/weir/state\""),
            "{set}"
        );
    }
    assert!(read(dir, "key-secret.yaml").contains(&format!("weir.key: \"{key}\"")));
    let service = read(dir, "broadcast-worker-service.yaml");
    assert!(service.contains("clusterIP: None"), "{service}");
    assert!(
        service.contains("publishNotReadyAddresses: true"),
        "{service}"
    );

    // Every address is a pod's DNS name under its role's headless Service.
    let topology = config_map_topology(dir);
    assert_eq!(
        topology.addresses("worker"),
        [0, 1].map(|i| format!(
            "broadcast-worker-{i}.broadcast-worker.default.svc.cluster.local:7000"
        ))
    );
    assert_eq!(
        topology.addresses("leader"),
        ["broadcast-leader-0.broadcast-leader.default.svc.cluster.local:7000"]
    );

    // Compose: one service per instance, the index on its command line.
    let compose = read(dir, "compose.json");
    assert!(
        compose.contains("\"volumes\": [\"broadcast-worker-1-state:/var/lib/weir/state\"]"),
        "{compose}"
    );
    for i in 0..2 {
        assert!(
            compose.contains(&format!("    \"broadcast-worker-{i}\": {{")),
            "{compose}"
        );
        assert!(
            compose.contains(&format!("\"--index\", \"{i}\"")),
            "{compose}"
        );
    }
    // It is JSON (compose reads it as YAML).
    let parsed = Command::new("python3")
        .args([
            "-c",
            "import json,sys; d=json.load(open(sys.argv[1])); print(len(d['services']))",
        ])
        .arg(dir.join("compose.json"))
        .output()
        .unwrap();
    assert_eq!(stdout(&parsed).trim(), "3", "{}", stderr(&parsed));
    let compose_topology = Topology::parse(&read(dir, "compose-topology.toml"), "compose").unwrap();
    assert_eq!(
        compose_topology.addresses("worker"),
        ["broadcast-worker-0:7000", "broadcast-worker-1:7000"]
    );

    // The image: the role binaries, copied beside the Containerfile.
    let containerfile = read(dir, "Containerfile");
    for role in ["leader", "worker"] {
        assert!(dir.join("bin").join(format!("broadcast-{role}")).exists());
        assert!(
            containerfile.contains(&format!(
                "COPY bin/broadcast-{role} /usr/local/bin/broadcast-{role}"
            )),
            "{containerfile}"
        );
    }

    // Written again, the deployment keeps its key.
    write_manifests("broadcast", dir);
    assert_eq!(read(dir, "weir.key").trim(), key);
}

#[test]
fn a_key_rotation_puts_both_keys_in_the_secret_then_only_the_new_one() {
    // A directory of its own: the other broadcast test writes its own at once.
    let scratch = scratch("manifests-rotation");
    let dir = scratch.path();
    write_manifests("broadcast", dir);
    let old = read(dir, "weir.key").trim().to_string();
    let previous_arg = "\"--previous-key-file\", \"/etc/weir-key/weir.previous.key\"";
    // 1. The old key becomes the previous one; writing again makes a new key.
    std::fs::rename(dir.join("weir.key"), dir.join("weir.previous.key")).unwrap();
    write_manifests("broadcast", dir);
    let new = read(dir, "weir.key").trim().to_string();
    assert_ne!(new, old);
    let secret = read(dir, "key-secret.yaml");
    assert!(secret.contains(&format!("weir.key: \"{new}\"")), "{secret}");
    assert!(
        secret.contains(&format!("weir.previous.key: \"{old}\"")),
        "{secret}"
    );
    for role in ["leader", "worker"] {
        let set = read(dir, &format!("broadcast-{role}-statefulset.yaml"));
        assert!(set.contains(previous_arg), "{set}");
    }
    let compose = read(dir, "compose.json");
    assert!(
        compose.contains("\"weir_previous_key\": {\"file\": \"./weir.previous.key\"}"),
        "{compose}"
    );
    let validated = kubernetes_validate()
        .current_dir(dir)
        .args([
            "--strict",
            "key-secret.yaml",
            "broadcast-worker-statefulset.yaml",
        ])
        .output()
        .unwrap();
    assert!(
        validated.status.success(),
        "{}{}",
        stdout(&validated),
        stderr(&validated)
    );
    // 2. Once every instance runs with both, the previous key goes.
    std::fs::remove_file(dir.join("weir.previous.key")).unwrap();
    write_manifests("broadcast", dir);
    assert_eq!(read(dir, "weir.key").trim(), new);
    let secret = read(dir, "key-secret.yaml");
    assert!(
        !secret.contains(&old) && !secret.contains("weir.previous.key"),
        "{secret}"
    );
    let set = read(dir, "broadcast-worker-statefulset.yaml");
    assert!(!set.contains("--previous-key-file"), "{set}");
}

#[test]
fn an_external_endpoint_gets_a_port_in_the_pod_and_the_service() {
    let (scratch, _) = manifests("paxos_kv");
    let dir = scratch.path();
    let out = kubernetes_validate()
        .arg("--strict")
        .arg(dir.join("paxos-kv-proposer-statefulset.yaml"))
        .arg(dir.join("paxos-kv-proposer-service.yaml"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    let topology = config_map_topology(dir);
    assert_eq!(
        topology.endpoint("proposer", "clients"),
        [0, 1].map(|i| format!(
            "paxos-kv-proposer-{i}.paxos-kv-proposer.default.svc.cluster.local:6379"
        ))
    );
    for file in [
        "paxos-kv-proposer-statefulset.yaml",
        "paxos-kv-proposer-service.yaml",
    ] {
        let text = read(dir, file);
        assert!(text.contains("name: \"clients\""), "{text}");
        assert!(text.contains("6379"), "{text}");
    }
}

#[test]
fn manifests_without_an_image_is_a_clear_error() {
    let out = Command::new(deploy_script("broadcast"))
        .args(["--manifests", "/tmp/weir-manifests-unused"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("--manifests needs --image"),
        "{}",
        stderr(&out)
    );
    let out = Command::new(deploy_script("broadcast"))
        .arg("--frobnicate")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("unknown argument `--frobnicate`"),
        "{}",
        stderr(&out)
    );
}
