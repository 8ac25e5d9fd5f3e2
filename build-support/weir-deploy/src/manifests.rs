//! What a cluster manager needs to run a deployment: Kubernetes objects (per
//! role a StatefulSet and a headless Service, a ConfigMap with the topology,
//! a Secret with the key), a Containerfile that puts the role binaries into
//! an image, and a compose file (`compose.json`) with one service per instance.
//!
//! Written as YAML by hand: every value that comes from the user is quoted
//! (JSON string syntax, which YAML reads as is), so the files stay readable.

use crate::error::DeployError;
use crate::plan::Deployment;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use weir_runtime::auth::Key;
use weir_runtime::topology::Topology;

/// The port every instance listens on for peers inside its pod or container.
pub const PEER_PORT: u16 = 7000;
/// The first port of external endpoints (`clients`, ...), one per endpoint.
pub const ENDPOINT_PORT: u16 = 6379;
/// Where every instance answers `GET /ready` (`--health`) for the
/// readiness probe.
pub const HEALTH_PORT: u16 = 7070;

/// Where the topology and the key are mounted in each container.
const TOPOLOGY_DIR: &str = "/etc/weir";
const KEY_DIR: &str = "/etc/weir-key";
const BIN_DIR: &str = "/usr/local/bin";
/// Where each pod's own volume (its durable state) is mounted.
const STATE_DIR: &str = "/var/lib/weir/state";
/// What each pod's state volume asks for.
const STATE_SIZE: &str = "1Gi";

/// The deployment key, beside the manifests and in the Secret.
pub const KEY_FILE: &str = "weir.key";
/// During a key rotation, the key [`KEY_FILE`] replaces: while this file is
/// beside the manifests, the Secret holds both and every instance is given
/// both (`--previous-key-file`). See docs/DEPLOYMENT.md, "Rotating the key".
pub const PREVIOUS_KEY_FILE: &str = "weir.previous.key";

/// Options of [`Deployment::write_manifests`].
#[derive(Debug, Clone)]
pub struct ManifestOptions {
    /// The image the Containerfile builds, which every pod runs.
    pub image: String,
    /// The Kubernetes namespace the DNS names are in.
    pub namespace: String,
    /// The flow's name, prefixed to every object's name (`broadcast-worker`).
    pub name: String,
}

/// What every instance gets besides its role's flags.
struct Extra {
    args: Vec<String>,
    envs: Vec<(String, String)>,
}

/// One role as the manifests see it.
struct RoleObjects {
    role: String,
    /// DNS-1123 name: `<flow>-<role>`, lower case, `_` as `-`.
    object: String,
    binary: String,
    count: usize,
    cluster: bool,
    endpoints: Vec<(String, u16)>,
}

impl Deployment {
    /// Writes the manifests of this deployment into `dir` (created if need
    /// be), and the role binaries beside them under `dir/bin/` for the
    /// Containerfile. The key is `dir/weir.key` (kept if it exists: one key
    /// per deployment); with `dir/weir.previous.key` beside it (a rotation),
    /// instances are given both. Returns the files written.
    pub fn write_manifests(
        &self,
        dir: &Path,
        options: &ManifestOptions,
    ) -> Result<Vec<PathBuf>, DeployError> {
        let io = |what: &Path, e: std::io::Error| {
            DeployError::new(format!("cannot write {}: {e}", what.display()))
        };
        std::fs::create_dir_all(dir.join("bin")).map_err(|e| io(dir, e))?;
        let roles = self.role_objects(&options.name)?;
        let extra = Extra {
            args: self.args.clone(),
            envs: self.envs.clone(),
        };
        let key_file = dir.join(KEY_FILE);
        if !key_file.exists() {
            Key::generate(&key_file).map_err(|e| DeployError::new(e.to_string()))?;
        }
        let key = std::fs::read_to_string(&key_file).map_err(|e| io(&key_file, e))?;
        let previous_file = dir.join(PREVIOUS_KEY_FILE);
        let previous = match std::fs::read_to_string(&previous_file) {
            Ok(previous) => {
                Key::load(&previous_file).map_err(|e| DeployError::new(e.to_string()))?;
                Some(previous)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(io(&previous_file, e)),
        };
        let rotating = previous.is_some();
        let mut written = vec![key_file.clone()];
        let mut write = |name: &str, text: String, secret: bool| -> Result<(), DeployError> {
            let path = dir.join(name);
            crate::files::write(&path, &text, secret)?;
            written.push(path);
            Ok(())
        };

        let dns = |r: &RoleObjects, i: usize| {
            format!(
                "{}-{i}.{}.{}.svc.cluster.local",
                r.object, r.object, options.namespace
            )
        };
        write(
            "topology-configmap.yaml",
            config_map(options, &topology(&roles, dns).to_toml()),
            false,
        )?;
        write(
            "key-secret.yaml",
            secret(options, key.trim(), previous.as_deref().map(str::trim)),
            true,
        )?;
        for r in &roles {
            write(
                &format!("{}-statefulset.yaml", r.object),
                stateful_set(options, r, &extra, rotating),
                false,
            )?;
            write(
                &format!("{}-service.yaml", r.object),
                service(options, r),
                false,
            )?;
        }
        let compose_topology = topology(&roles, |r, i| format!("{}-{i}", r.object)).to_toml();
        write("compose-topology.toml", compose_topology, false)?;
        write(
            "compose.json",
            compose(options, &roles, &extra, rotating),
            false,
        )?;
        write("Containerfile", containerfile(&roles), false)?;

        for r in &roles {
            let from = self
                .roles
                .iter()
                .find(|e| e.role == r.role)
                .map(|e| e.binary.clone())
                .expect("from the roles");
            let to = dir.join("bin").join(&r.binary);
            std::fs::copy(&from, &to).map_err(|e| {
                DeployError::new(format!(
                    "cannot copy role binary {} to {}: {e}",
                    from.display(),
                    to.display()
                ))
            })?;
            written.push(to);
        }
        Ok(written)
    }

    fn role_objects(&self, name: &str) -> Result<Vec<RoleObjects>, DeployError> {
        self.roles
            .iter()
            .map(|entry| {
                let binary = entry
                    .binary
                    .file_name()
                    .and_then(|n| n.to_str())
                    .ok_or_else(|| {
                        DeployError::new(format!(
                            "role `{}`: binary {} has no file name",
                            entry.role,
                            entry.binary.display()
                        ))
                    })?
                    .to_string();
                let endpoints = self
                    .endpoints
                    .iter()
                    .filter(|(role, _)| *role == entry.role)
                    .enumerate()
                    .map(|(i, (_, endpoint))| (endpoint.clone(), ENDPOINT_PORT + i as u16))
                    .collect();
                Ok(RoleObjects {
                    role: entry.role.clone(),
                    object: dns_label(&format!("{name}-{}", entry.role)),
                    binary,
                    count: entry.members.unwrap_or(1),
                    cluster: entry.members.is_some(),
                    endpoints,
                })
            })
            .collect()
    }
}

/// A name Kubernetes accepts as an object and DNS label.
fn dns_label(name: &str) -> String {
    let label: String = name
        .chars()
        .map(|c| match c {
            'a'..='z' | '0'..='9' | '-' => c,
            'A'..='Z' => c.to_ascii_lowercase(),
            _ => '-',
        })
        .collect();
    label.trim_matches('-').chars().take(52).collect()
}

/// The topology with instance `i` of role `r` at `host(r, i)`.
fn topology(roles: &[RoleObjects], host: impl Fn(&RoleObjects, usize) -> String) -> Topology {
    let mut topology = Topology::default();
    for r in roles {
        let at = |port: u16| {
            (0..r.count)
                .map(|i| format!("{}:{port}", host(r, i)))
                .collect()
        };
        topology.set(&r.role, at(PEER_PORT));
        for (endpoint, port) in &r.endpoints {
            topology.set_endpoint(&r.role, endpoint, at(*port));
        }
    }
    topology
}

/// A YAML scalar: JSON string syntax.
fn q(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn labels(options: &ManifestOptions, role: &str, indent: &str) -> String {
    format!(
        "{indent}app.kubernetes.io/name: {}\n{indent}app.kubernetes.io/component: {}\n",
        q(&options.name),
        q(&dns_label(role))
    )
}

fn header(what: &str) -> String {
    format!("# Generated by weir-deploy: {what}. Regenerate rather than edit.\n")
}

fn config_map(options: &ManifestOptions, topology: &str) -> String {
    let mut data = String::new();
    for line in topology.lines() {
        if line.is_empty() {
            data.push('\n');
        } else {
            let _ = writeln!(data, "    {line}");
        }
    }
    format!(
        "{}apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {}\n  namespace: {}\n  labels:\n{}data:\n  topology.toml: |\n{data}",
        header("every instance's address, as DNS names of the headless Services"),
        q(&format!("{}-topology", dns_label(&options.name))),
        q(&options.namespace),
        labels(options, "topology", "    "),
    )
}

fn secret(options: &ManifestOptions, key: &str, previous: Option<&str>) -> String {
    let mut data = format!("  {KEY_FILE}: {}\n", q(key));
    if let Some(previous) = previous {
        let _ = writeln!(data, "  {PREVIOUS_KEY_FILE}: {}", q(previous));
    }
    let what = if previous.is_some() {
        "the deployment key that protects every link, and during this rotation the key it replaces (keep this file private)"
    } else {
        "the deployment key that protects every link (keep this file private)"
    };
    format!(
        "{}apiVersion: v1\nkind: Secret\nmetadata:\n  name: {}\n  namespace: {}\n  labels:\n{}type: Opaque\nstringData:\n{data}",
        header(what),
        q(&format!("{}-key", dns_label(&options.name))),
        q(&options.namespace),
        labels(options, "key", "    "),
    )
}

/// Every instance's arguments: it listens on all of its pod's addresses and
/// is dialled at its DNS name. `key` and `previous`: where its key files are
/// mounted (the previous one only during a rotation).
fn args(topology: &str, key: &str, previous: Option<&str>) -> Vec<String> {
    let mut args = vec![
        "--topology".into(),
        topology.into(),
        "--key-file".into(),
        key.into(),
    ];
    if let Some(previous) = previous {
        args.extend(["--previous-key-file".into(), previous.into()]);
    }
    args.extend(["--state-dir".into(), STATE_DIR.into()]);
    args.extend(["--listen".into(), format!("0.0.0.0:{PEER_PORT}")]);
    args.extend(["--health".into(), format!("0.0.0.0:{HEALTH_PORT}")]);
    args
}

fn stateful_set(
    options: &ManifestOptions,
    r: &RoleObjects,
    extra: &Extra,
    rotating: bool,
) -> String {
    let previous = format!("{KEY_DIR}/{PREVIOUS_KEY_FILE}");
    let args: Vec<String> = args(
        &format!("{TOPOLOGY_DIR}/topology.toml"),
        &format!("{KEY_DIR}/{KEY_FILE}"),
        rotating.then_some(previous.as_str()),
    )
    .iter()
    .chain(&extra.args)
    .map(|a| q(a))
    .collect();
    let mut env = String::new();
    if r.cluster {
        // A member's index is its pod's: the StatefulSet's pod-index label.
        env.push_str("            - name: \"WEIR_INDEX\"\n              valueFrom:\n                fieldRef:\n                  fieldPath: \"metadata.labels['apps.kubernetes.io/pod-index']\"\n");
    }
    for (key, value) in &extra.envs {
        let _ = write!(
            env,
            "            - name: {}\n              value: {}\n",
            q(key),
            q(value)
        );
    }
    if !env.is_empty() {
        env.insert_str(0, "          env:\n");
    }
    let ports: String = r
        .ports()
        .map(|(name, port)| {
            format!(
                "            - name: {}\n              containerPort: {port}\n",
                q(&name)
            )
        })
        .collect();
    format!(
        "{header}apiVersion: apps/v1\nkind: StatefulSet\nmetadata:\n  name: {name}\n  namespace: {ns}\n  labels:\n{labels}spec:\n  serviceName: {name}\n  replicas: {count}\n  # Members start together: each waits for its peers itself (--connect-timeout).\n  podManagementPolicy: Parallel\n  # A changed pod template (a new image: an upgrade) replaces pods one at a\n  # time, each once the one before is ready (linked with its peers: builds\n  # that do not match stay unready, and the rollout stops there).\n  updateStrategy:\n    type: RollingUpdate\n  selector:\n    matchLabels:\n{labels6}  template:\n    metadata:\n      labels:\n{labels8}    spec:\n      containers:\n        - name: {container}\n          image: {image}\n          command: [{command}]\n          args: [{args}]\n{env}          ports:\n{ports}          readinessProbe:\n            httpGet:\n              path: \"/ready\"\n              port: {health_port}\n            periodSeconds: 2\n            failureThreshold: 1\n          volumeMounts:\n            - name: \"topology\"\n              mountPath: {topology_dir}\n              readOnly: true\n            - name: \"key\"\n              mountPath: {key_dir}\n              readOnly: true\n            - name: \"state\"\n              mountPath: {state_dir}\n      volumes:\n        - name: \"topology\"\n          configMap:\n            name: {config}\n        - name: \"key\"\n          secret:\n            secretName: {secret}\n            defaultMode: 256 # 0400: readable by its owner only\n  # Each pod's durable state (--state-dir), its own volume: kept across\n  # restarts and upgrades, and given back to the pod of the same index.\n  volumeClaimTemplates:\n    - metadata:\n        name: \"state\"\n      spec:\n        accessModes: [\"ReadWriteOnce\"]\n        resources:\n          requests:\n            storage: {state_size}\n",
        header = header(&format!("role `{}`, {} instance(s)", r.role, r.count)),
        name = q(&r.object),
        ns = q(&options.namespace),
        labels = labels(options, &r.role, "    "),
        labels6 = labels(options, &r.role, "      "),
        labels8 = labels(options, &r.role, "        "),
        count = r.count,
        container = q(&dns_label(&r.role)),
        image = q(&options.image),
        command = q(&format!("{BIN_DIR}/{}", r.binary)),
        args = args.join(", "),
        health_port = HEALTH_PORT,
        topology_dir = q(TOPOLOGY_DIR),
        key_dir = q(KEY_DIR),
        state_dir = q(STATE_DIR),
        state_size = q(STATE_SIZE),
        config = q(&format!("{}-topology", dns_label(&options.name))),
        secret = q(&format!("{}-key", dns_label(&options.name))),
    )
}

impl RoleObjects {
    /// Every port an instance of the role listens on, named: `weir` for its
    /// peers, then one per external endpoint.
    fn ports(&self) -> impl Iterator<Item = (String, u16)> + '_ {
        let endpoints = self
            .endpoints
            .iter()
            .enumerate()
            .map(|(i, (endpoint, port))| (port_name(endpoint, i), *port));
        std::iter::once(("weir".to_string(), PEER_PORT)).chain(endpoints)
    }
}

/// A container port's name: at most 15 characters, lower case.
fn port_name(endpoint: &str, i: usize) -> String {
    let name: String = dns_label(endpoint).chars().take(15).collect();
    if name.is_empty() {
        format!("endpoint-{i}")
    } else {
        name
    }
}

fn service(options: &ManifestOptions, r: &RoleObjects) -> String {
    let ports: String = r
        .ports()
        .map(|(name, port)| {
            format!(
                "    - name: {}\n      port: {port}\n      targetPort: {port}\n",
                q(&name)
            )
        })
        .collect();
    format!(
        "{}apiVersion: v1\nkind: Service\nmetadata:\n  name: {}\n  namespace: {}\n  labels:\n{}spec:\n  # Headless: each pod gets a DNS name, <pod>.{}.{}.svc.cluster.local.\n  clusterIP: None\n  # Names exist before pods are ready: peers find each other while starting.\n  publishNotReadyAddresses: true\n  selector:\n{}  ports:\n{ports}",
        header(&format!("the DNS names of role `{}`", r.role)),
        q(&r.object),
        q(&options.namespace),
        labels(options, &r.role, "    "),
        r.object,
        options.namespace,
        labels(options, &r.role, "    "),
    )
}

/// The compose file, in JSON (which compose reads as YAML): named
/// `compose.json` so that every `.yaml` file here is a Kubernetes object.
fn compose(
    options: &ManifestOptions,
    roles: &[RoleObjects],
    extra: &Extra,
    rotating: bool,
) -> String {
    let mut services = Vec::new();
    let mut volumes = Vec::new();
    for r in roles {
        for i in 0..r.count {
            let mut command = vec![format!("{BIN_DIR}/{}", r.binary)];
            command.extend(args(
                &format!("{TOPOLOGY_DIR}/topology.toml"),
                "/run/secrets/weir_key",
                rotating.then_some("/run/secrets/weir_previous_key"),
            ));
            if r.cluster {
                command.extend(["--index".to_string(), i.to_string()]);
            }
            command.extend(extra.args.iter().cloned());
            let command: Vec<String> = command.iter().map(|a| q(a)).collect();
            let environment: Vec<String> = extra
                .envs
                .iter()
                .map(|(k, v)| format!("{}: {}", q(k), q(v)))
                .collect();
            let name = q(&format!("{}-{i}", r.object));
            let state = format!("{}-{i}-state", r.object);
            volumes.push(format!("{}: {{}}", q(&state)));
            services.push(format!(
                "    {name}: {{\n      \"image\": {image},\n      \"hostname\": {name},\n      \"command\": [{command}],\n      \"environment\": {{{environment}}},\n      \"configs\": [{{\"source\": \"topology\", \"target\": {topology}}}],\n      \"secrets\": [{secrets}],\n      \"volumes\": [{volume}]\n    }}",
                volume = q(&format!("{state}:{STATE_DIR}")),
                secrets = if rotating { "\"weir_key\", \"weir_previous_key\"" } else { "\"weir_key\"" },
                image = q(&options.image),
                command = command.join(", "),
                environment = environment.join(", "),
                topology = q(&format!("{TOPOLOGY_DIR}/topology.toml")),
            ));
        }
    }
    let previous = if rotating {
        format!(", \"weir_previous_key\": {{\"file\": \"./{PREVIOUS_KEY_FILE}\"}}")
    } else {
        String::new()
    };
    format!(
        "{{\n  \"services\": {{\n{}\n  }},\n  \"configs\": {{\"topology\": {{\"file\": \"./compose-topology.toml\"}}}},\n  \"secrets\": {{\"weir_key\": {{\"file\": \"./{KEY_FILE}\"}}{previous}}},\n  \"volumes\": {{{}}}\n}}\n",
        services.join(",\n"),
        volumes.join(", ")
    )
}

fn containerfile(roles: &[RoleObjects]) -> String {
    let mut out = String::from(
        "# Generated by weir-deploy: an image with the role binaries (built on this\n\
         # machine: the base must have a glibc at least as new as the build's).\n\
         FROM debian:bookworm-slim\n",
    );
    for r in roles {
        let _ = writeln!(out, "COPY bin/{} {BIN_DIR}/{}", r.binary, r.binary);
    }
    // As root in the container: the key's Secret volume is root's, mode 0400
    // (a group-readable key would draw the runtime's warning).
    out
}
