//! Flags of every role binary (each has an environment-variable equivalent).

use crate::spec::{InstanceId, RoleSpec};
use clap::{value_parser, Arg, ArgAction, Command};
use std::path::PathBuf;
use std::time::Duration;

/// Client connections an external endpoint accepts at once, unless
/// `--max-clients` says otherwise.
pub const DEFAULT_MAX_CLIENTS: usize = 1024;

/// What the flags say.
#[derive(Debug, Clone)]
pub struct Config {
    pub topology: PathBuf,
    pub index: Option<u32>,
    /// Where to listen for peers, when not at this instance's own address in
    /// the topology (which peers dial); external endpoints listen on its host
    /// at their own ports.
    pub listen: Option<String>,
    pub connect_timeout: Duration,
    pub peer_timeout: Duration,
    pub auth: Auth,
    /// Client connections each external endpoint accepts at once.
    pub max_clients: usize,
    /// The certificate and key external endpoints serve TLS with, if they do.
    pub client_tls: Option<(PathBuf, PathBuf)>,
    /// Stop (as on SIGTERM) when standard input reaches its end.
    pub stop_on_eof: bool,
    /// Which log events to print (`RUST_LOG` syntax: `info`, `weir_runtime=debug`).
    pub log: Option<String>,
    /// Print per-channel and per-peer figures at exit.
    pub stats: bool,
    /// Also print them this often while running.
    pub stats_every: Option<Duration>,
    /// Where to answer `GET /ready` (see `health`).
    pub health: Option<String>,
    /// Where this instance keeps its durable state, if its role has any.
    pub state_dir: Option<PathBuf>,
    /// How far a tick's durable writes go before its records leave.
    pub durability: weir_durable::Durability,
}

/// How this instance proves it belongs to its deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    /// With the key in this file, and during a rotation the key it replaces.
    KeyFiles {
        current: PathBuf,
        previous: Option<PathBuf>,
    },
    /// Not at all: `--insecure-no-auth`.
    Insecure,
    /// Neither was given: a start-up error.
    Missing,
}

impl Config {
    /// `worker/1` or `leader`, for messages; before the topology is checked.
    pub fn instance_name(&self, spec: &RoleSpec) -> String {
        InstanceId {
            role: spec.role.to_string(),
            index: self.index.unwrap_or(0),
        }
        .display(spec.kind())
    }
}

/// Parses the process arguments; prints help or a usage error and exits on failure.
pub fn parse(spec: &RoleSpec) -> Config {
    let name = format!("{}-{}", spec.flow, spec.role);
    let matches = Command::new(name)
        .about(format!("Role `{}` of the Weir flow `{}`.", spec.role, spec.flow))
        .arg(
            Arg::new("topology")
                .long("topology")
                .env("WEIR_TOPOLOGY")
                .value_name("FILE")
                .value_parser(value_parser!(PathBuf))
                .required(true)
                .help("TOML file giving each role's addresses: [role] addresses = [\"host:port\", ...]"),
        )
        .arg(
            Arg::new("index")
                .long("index")
                .env("WEIR_INDEX")
                .value_name("N")
                .value_parser(value_parser!(u32))
                .help("This instance's position in its role's address list (cluster members)"),
        )
        .arg(
            Arg::new("listen")
                .long("listen")
                .env("WEIR_LISTEN")
                .value_name("HOST:PORT")
                .help("Where to listen for peers, if not at this instance's address in the topology (e.g. 0.0.0.0:7000 while peers dial worker-1.weir:7000); external endpoints listen on the same host, at their ports from the topology"),
        )
        .arg(
            Arg::new("health")
                .long("health")
                .env("WEIR_HEALTH")
                .value_name("HOST:PORT")
                .help("Answer HTTP `GET /ready` here: 200 once this instance runs and is linked with an instance of every role it exchanges records with, 503 and the reason before (for readiness probes and rolling upgrades)"),
        )
        .arg(
            Arg::new("state-dir")
                .long("state-dir")
                .env("WEIR_STATE_DIR")
                .value_name("DIR")
                .value_parser(value_parser!(PathBuf))
                .help("Where this instance keeps its durable state, kept across restarts: in DIR/<role>-<index> (DIR may be shared by the instances of one machine). Without it, a role that keeps durable state keeps it in memory only"),
        )
        .arg(
            Arg::new("durability")
                .long("durability")
                .env("WEIR_DURABILITY")
                .value_name("sync|flush")
                .default_value("sync")
                .value_parser(weir_durable::Durability::parse)
                .help("How far each tick's durable writes go before its records leave: `sync` (fdatasync: survives a power loss) or `flush` (written to the system: survives the process's death, not the machine's)"),
        )
        .arg(
            Arg::new("connect-timeout")
                .long("connect-timeout")
                .env("WEIR_CONNECT_TIMEOUT")
                .value_name("SECONDS")
                .value_parser(value_parser!(f64))
                .default_value("30")
                .help("How long to keep trying to reach every peer before giving up"),
        )
        .arg(
            Arg::new("peer-timeout")
                .long("peer-timeout")
                .env("WEIR_PEER_TIMEOUT")
                .value_name("SECONDS")
                .value_parser(value_parser!(f64))
                .default_value("2")
                .help("How long a peer on tolerant edges may stay silent before it is declared lost (keepalives go out four times as often)"),
        )
        .arg(
            Arg::new("max-clients")
                .long("max-clients")
                .env("WEIR_MAX_CLIENTS")
                .value_name("N")
                .value_parser(value_parser!(usize))
                .default_value("1024")
                .help("How many clients each external endpoint of this role serves at once; more are refused"),
        )
        .arg(
            Arg::new("client-tls-cert")
                .long("client-tls-cert")
                .env("WEIR_CLIENT_TLS_CERT")
                .value_name("FILE")
                .value_parser(value_parser!(PathBuf))
                .requires("client-tls-key")
                .help("Serve this role's external endpoints over TLS with this PEM certificate chain (the server's certificate first)"),
        )
        .arg(
            Arg::new("client-tls-key")
                .long("client-tls-key")
                .env("WEIR_CLIENT_TLS_KEY")
                .value_name("FILE")
                .value_parser(value_parser!(PathBuf))
                .requires("client-tls-cert")
                .help("The PEM private key of --client-tls-cert"),
        )
        .arg(
            Arg::new("stop-on-eof")
                .long("stop-on-eof")
                .env("WEIR_STOP_ON_EOF")
                .action(ArgAction::SetTrue)
                .help("Stop, as on SIGTERM, when standard input reaches its end: a controller (over SSH, say) keeps it open, and its death stops the instance"),
        )
        .arg(
            Arg::new("log")
                .long("log")
                .env("RUST_LOG")
                .value_name("FILTER")
                .value_parser(|text: &str| crate::log::parse_filter(text).map(|_| text.to_string()))
                .help("Which events to log to stderr: a level (error, warn, info, debug, trace) or target=level pairs, as RUST_LOG (default: warn)"),
        )
        .arg(
            Arg::new("stats")
                .long("stats")
                .env("WEIR_STATS")
                .action(ArgAction::SetTrue)
                .help("At exit, print records, frames and bytes sent and received per channel and peer, records dropped and time blocked on back-pressure, to stderr"),
        )
        .arg(
            Arg::new("stats-every")
                .long("stats-every")
                .env("WEIR_STATS_EVERY")
                .value_name("SECONDS")
                .value_parser(value_parser!(f64))
                .help("Also print those figures this often while running (implies --stats)"),
        )
        .arg(
            Arg::new("key-file")
                .long("key-file")
                .env("WEIR_KEY_FILE")
                .value_name("FILE")
                .value_parser(value_parser!(PathBuf))
                .help("The deployment's secret key (the same file for every instance): it protects every link; peers without it are refused"),
        )
        .arg(
            Arg::new("previous-key-file")
                .long("previous-key-file")
                .env("WEIR_PREVIOUS_KEY_FILE")
                .value_name("FILE")
                .value_parser(value_parser!(PathBuf))
                .requires("key-file")
                .help("During a key rotation: the key --key-file replaces, still accepted from peers (and tried first when dialing them) until every instance has the new one"),
        )
        .arg(
            Arg::new("insecure-no-auth")
                .long("insecure-no-auth")
                .action(ArgAction::SetTrue)
                .conflicts_with("key-file")
                .help("Run without a key and without protection: any process that reaches this instance's port can join the flow, and anyone on the path can read and change what its links carry"),
        )
        .get_matches();
    let auth = match matches.get_one::<PathBuf>("key-file") {
        Some(path) => Auth::KeyFiles {
            current: path.clone(),
            previous: matches.get_one::<PathBuf>("previous-key-file").cloned(),
        },
        None if matches.get_flag("insecure-no-auth") => Auth::Insecure,
        None => Auth::Missing,
    };
    Config {
        topology: matches
            .get_one::<PathBuf>("topology")
            .expect("required")
            .clone(),
        index: matches.get_one::<u32>("index").copied(),
        listen: matches.get_one::<String>("listen").cloned(),
        health: matches.get_one::<String>("health").cloned(),
        state_dir: matches.get_one::<PathBuf>("state-dir").cloned(),
        durability: matches
            .get_one::<weir_durable::Durability>("durability")
            .copied()
            .unwrap_or_default(),
        connect_timeout: seconds(&matches, "connect-timeout", 30.0),
        peer_timeout: seconds(&matches, "peer-timeout", 2.0).max(Duration::from_millis(40)),
        auth,
        stop_on_eof: matches.get_flag("stop-on-eof"),
        log: matches.get_one::<String>("log").cloned(),
        stats_every: matches
            .get_one::<f64>("stats-every")
            .map(|s| Duration::try_from_secs_f64(s.max(0.05)).unwrap_or(Duration::MAX)),
        stats: matches.get_flag("stats") || matches.contains_id("stats-every"),
        max_clients: matches
            .get_one::<usize>("max-clients")
            .copied()
            .unwrap_or(DEFAULT_MAX_CLIENTS),
        client_tls: matches
            .get_one::<PathBuf>("client-tls-cert")
            .zip(matches.get_one::<PathBuf>("client-tls-key"))
            .map(|(cert, key)| (cert.clone(), key.clone())),
    }
}

fn seconds(matches: &clap::ArgMatches, name: &str, default: f64) -> Duration {
    let value = matches.get_one::<f64>(name).copied().unwrap_or(default);
    Duration::try_from_secs_f64(value.max(0.0)).unwrap_or(Duration::MAX)
}
