//! An attacker on the path: every link between instances runs through a relay
//! (real sockets, a thread per direction) that reads what passes, and on
//! command changes, replays or drops one sealed record. Links are protected:
//! the relay never reads a stored value, and a record it touched is never
//! delivered: the link is closed with a WARN line naming the peer and
//! "integrity", and comes back (tolerant edges) or ends the instance
//! (fail-stop edges).

use crate::support::*;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const SOON: Duration = Duration::from_secs(20);
/// The first write after the store starts waits for an election.
const STARTED: Duration = Duration::from_secs(60);

/// What the relay does to the next record it sees, once armed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Attack {
    /// Flips one bit of its ciphertext.
    Flip,
    /// Sends it twice.
    Replay,
    /// Leaves it out.
    Drop,
}

/// What all relays of a test share: what to look for, what to do, and what
/// they saw and did.
#[derive(Default)]
struct Attacker {
    marker: Vec<u8>,
    /// How often the marker passed in clear.
    seen: AtomicUsize,
    attack: Mutex<Option<Attack>>,
    /// Relays (by index) that still have an attack to make.
    armed: Mutex<Vec<bool>>,
    /// Records touched.
    attacks: AtomicUsize,
    /// Whether relays parse records (only sealed links have them).
    sealed: bool,
    /// The first message of every connection towards an instance, by relay.
    first_messages: Mutex<Vec<(usize, Vec<u8>)>>,
}

impl Attacker {
    fn new(marker: &str, sealed: bool) -> Arc<Attacker> {
        Arc::new(Attacker {
            marker: marker.as_bytes().to_vec(),
            sealed,
            ..Attacker::default()
        })
    }

    /// Every relay touches the next record that passes through it towards
    /// the instance it fronts.
    fn arm(&self, attack: Attack, relays: usize) {
        *self.attack.lock().unwrap() = Some(attack);
        *self.armed.lock().unwrap() = vec![true; relays];
    }

    /// The attack relay `relay` makes now, if it is armed (once).
    fn take(&self, relay: usize) -> Option<Attack> {
        let mut armed = self.armed.lock().unwrap();
        let slot = armed.get_mut(relay)?;
        std::mem::replace(slot, false).then(|| {
            self.attacks.fetch_add(1, Ordering::Relaxed);
            self.attack.lock().unwrap().expect("set when armed")
        })
    }
}

/// Relays connections on a fresh port to `target`: returns the port.
fn relay(target: String, index: usize, attacker: Arc<Attacker>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for dialer in listener.incoming().map_while(Result::ok) {
            let Ok(acceptor) = TcpStream::connect(&target) else {
                continue; // the instance is not up yet: the dialer retries
            };
            let (a, b) = (dialer.try_clone().unwrap(), acceptor.try_clone().unwrap());
            let attacker_too = attacker.clone();
            std::thread::spawn(move || pump(dialer, acceptor, Some(index), &attacker_too));
            let attacker = attacker.clone();
            std::thread::spawn(move || pump(b, a, None, &attacker));
        }
    });
    port
}

/// Copies `from` to `to`, counting the marker; towards the acceptor (`relay`
/// given), makes its relay's attack on the next whole record once armed.
fn pump(mut from: TcpStream, mut to: TcpStream, relay: Option<usize>, attacker: &Attacker) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut carry: Vec<u8> = Vec::new(); // the tail that may begin a marker
    let mut units = Units::default();
    let parse = attacker.sealed && relay.is_some();
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let mut window = std::mem::take(&mut carry);
        window.extend_from_slice(&buf[..n]);
        let m = &attacker.marker;
        attacker.seen.fetch_add(
            window.windows(m.len()).filter(|w| w == m).count(),
            Ordering::Relaxed,
        );
        carry = window[window.len().saturating_sub(m.len() - 1)..].to_vec();
        let out = if parse {
            units.push(&buf[..n]);
            let mut out = Vec::new();
            while let Some((unit, record)) = units.next() {
                if units.records == 0 {
                    let first = (relay.unwrap(), unit.clone());
                    attacker.first_messages.lock().unwrap().push(first);
                }
                let attack = if record {
                    attacker.take(relay.unwrap())
                } else {
                    None
                };
                match attack {
                    None => out.extend_from_slice(&unit),
                    Some(Attack::Flip) => {
                        let mut unit = unit;
                        let middle = unit.len() / 2 + 1;
                        unit[middle] ^= 0x10;
                        out.extend_from_slice(&unit);
                    }
                    Some(Attack::Replay) => {
                        out.extend_from_slice(&unit);
                        out.extend_from_slice(&unit);
                    }
                    Some(Attack::Drop) => {}
                }
            }
            out
        } else {
            buf[..n].to_vec()
        };
        if to.write_all(&out).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
    let _ = from.shutdown(Shutdown::Read);
}

/// Splits one direction of a sealed link into what travels on it: first the
/// handshake message (`"WEIR"`, version, kind, u16 LE length, body), then
/// records (u16 BE length, sealed body).
#[derive(Default)]
struct Units {
    bytes: Vec<u8>,
    past_handshake: bool,
    /// Records passed so far.
    records: u64,
}

impl Units {
    fn push(&mut self, bytes: &[u8]) {
        self.bytes.extend_from_slice(bytes);
    }

    /// The next whole unit, and whether it is a record after the handshake's
    /// last (the dialer's `Ready`): one that carries frames.
    fn next(&mut self) -> Option<(Vec<u8>, bool)> {
        let len = if self.past_handshake {
            2 + u16::from_be_bytes(self.bytes.get(..2)?.try_into().unwrap()) as usize
        } else {
            9 + u16::from_le_bytes(self.bytes.get(7..9)?.try_into().unwrap()) as usize
        };
        if self.bytes.len() < len {
            return None;
        }
        let unit: Vec<u8> = self.bytes.drain(..len).collect();
        if !std::mem::replace(&mut self.past_handshake, true) {
            return Some((unit, false));
        }
        self.records += 1;
        Some((unit, self.records > 1))
    }
}

/// Instances of one flow, each with its own topology file: itself at its
/// real address, every other instance behind a relay.
struct OnPath {
    instances: Vec<Watched>,
    /// Relays, in the order `arm` counts them.
    relays: usize,
    /// Each instance's real address, in relay order.
    addresses: Vec<String>,
    /// The topology files' directory, removed with it.
    _topo: Topo,
    /// The instances' state, if the caller gave them one, removed with it.
    state: Option<tempfile::TempDir>,
}

impl OnPath {
    /// `roles`: each role's size. `extra_toml(role)` adds lines to a role's
    /// table (a store's client ports), the same in every file.
    fn start(
        flow: &str,
        roles: &[(&str, usize)],
        extra_toml: impl Fn(&str) -> String,
        flags: &[&str],
        env: &[(&str, String)],
        attacker: &Arc<Attacker>,
    ) -> OnPath {
        let topo = Topo::new(roles);
        let dir = topo.file.parent().unwrap().to_path_buf();
        let mut relays = Vec::new();
        for (role, addresses) in &topo.addresses {
            for (i, address) in addresses.iter().enumerate() {
                let port = relay(address.clone(), relays.len(), attacker.clone());
                relays.push(((role.clone(), i), format!("127.0.0.1:{port}")));
            }
        }
        let mut instances = Vec::new();
        for (role, size) in roles {
            for index in 0..*size {
                let mut text = String::new();
                for (other, addresses) in &topo.addresses {
                    let seen: Vec<String> = (0..addresses.len())
                        .map(|i| {
                            if (other.as_str(), i) == (*role, index) {
                                addresses[i].clone()
                            } else {
                                let at =
                                    relays.iter().position(|(id, _)| *id == (other.clone(), i));
                                relays[at.unwrap()].1.clone()
                            }
                        })
                        .collect();
                    text += &format!(
                        "[{other}]\naddresses = [{}]\n{}",
                        toml_list(&seen),
                        extra_toml(other)
                    );
                }
                let file = dir.join(format!("{role}-{index}.toml"));
                std::fs::write(&file, text).unwrap();
                // Beside the deployment's key: `command` passes it.
                let mut command = command(&format!("{flow}-{role}"), &file, Some(index), flags);
                command.env("RUST_LOG", "warn");
                for (name, value) in env {
                    command.env(name, value);
                }
                instances.push(Watched::start(&format!("{role}/{index}"), command));
            }
        }
        OnPath {
            instances,
            relays: relays.len(),
            addresses: topo.addresses.iter().flat_map(|(_, a)| a.clone()).collect(),
            _topo: topo,
            state: None,
        }
    }

    /// Every WARN line of every instance that reports an integrity failure.
    fn integrity_warnings(&self) -> Vec<String> {
        self.instances
            .iter()
            .flat_map(|i| {
                i.stderr()
                    .lines()
                    .filter(|l| l.contains("WARN") && l.contains("integrity"))
                    .map(|l| format!("{}: {l}", i.name))
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    fn stderr(&self) -> String {
        self.instances
            .iter()
            .map(|i| format!("--- {}\n{}", i.name, i.stderr()))
            .collect()
    }
}

/// The store's client ports, and the store running behind relays.
fn store(attacker: &Arc<Attacker>, flags: &[&str]) -> (Vec<String>, OnPath) {
    let clients: Vec<String> = (0..2)
        .map(|_| format!("127.0.0.1:{}", free_port()))
        .collect();
    let list = toml_list(&clients);
    let state = scratch("on-path");
    let mut store = OnPath::start(
        "paxos_kv",
        &[("proposer", 2), ("acceptor", 3), ("replica", 2)],
        |role| {
            if role == "proposer" {
                format!("clients = [{list}]\n")
            } else {
                String::new()
            }
        },
        flags,
        &[
            ("WEIR_STATE_DIR", state.path().display().to_string()),
            ("WEIR_DURABILITY", "flush".to_string()),
        ],
        attacker,
    );
    store.state = Some(state);
    (clients, store)
}

/// SET until acknowledged (the store elects a leader first); then GET
/// through the other proposer.
fn set_then_get(clients: &[String], key: &str, value: &str, limit: Duration) -> String {
    let start = Instant::now();
    loop {
        if redis_cli_within(&clients[0], &["SET", key, value]) == "OK" {
            break;
        }
        assert!(
            start.elapsed() < limit,
            "SET {key} not acknowledged within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    redis_cli_within(&clients[1], &["GET", key])
}

#[test]
fn a_relay_that_only_forwards_never_reads_a_stored_value() {
    let marker = format!("weir-marker-{}", free_port());
    let attacker = Attacker::new(&marker, true);
    let (clients, store) = store(&attacker, &[]);
    assert_eq!(
        set_then_get(&clients, "on-path", &marker, STARTED),
        marker,
        "{}",
        store.stderr()
    );
    // The value crossed every kind of link (proposer to acceptors and
    // replicas, replicas back) before GET could read it from the other side.
    assert_eq!(
        attacker.seen.load(Ordering::Relaxed),
        0,
        "the relay read the value in clear"
    );
    assert!(store.integrity_warnings().is_empty(), "{}", store.stderr());
}

#[test]
fn without_protection_the_same_relay_reads_the_value() {
    // The relay above can see a value: without a key it does.
    let marker = format!("weir-marker-{}", free_port());
    let attacker = Attacker::new(&marker, false);
    let (clients, store) = store(&attacker, &["--insecure-no-auth"]);
    assert_eq!(
        set_then_get(&clients, "on-path", &marker, STARTED),
        marker,
        "{}",
        store.stderr()
    );
    assert!(attacker.seen.load(Ordering::Relaxed) > 0);
}

/// Stores a value, then has every relay touch one record, and checks each
/// touched record closed its link with a WARN naming the peer, the links
/// came back, and the value reads back unchanged.
fn store_survives(attack: Attack) {
    let attacker = Attacker::new("weir-marker-unused", true);
    let (clients, store) = store(&attacker, &[]);
    assert_eq!(
        set_then_get(&clients, "before", "stored value", STARTED),
        "stored value"
    );
    attacker.arm(attack, store.relays);
    // Keepalives pass on every link several times a second: each armed relay
    // with a live link meets a record soon.
    std::thread::sleep(Duration::from_secs(3));
    let attacks = attacker.attacks.load(Ordering::Relaxed);
    assert!(attacks > 0, "no record passed any relay");
    let start = Instant::now();
    while store.integrity_warnings().len() < attacks && start.elapsed() < SOON {
        std::thread::sleep(Duration::from_millis(100));
    }
    let warnings = store.integrity_warnings();
    assert_eq!(
        warnings.len(),
        attacks,
        "{attacks} records touched, but these links were closed for it: {warnings:#?}\n{}",
        store.stderr()
    );
    for warning in &warnings {
        assert!(warning.contains("lost peer "), "{warning}");
    }
    eprintln!("{attack:?}: {attacks} records touched, as many links closed");
    // Links came back: the store takes writes and answers through both sides.
    assert_eq!(
        set_then_get(&clients, "after", "new value", SOON),
        "new value",
        "{}",
        store.stderr()
    );
    assert_eq!(
        redis_cli_within(&clients[1], &["GET", "before"]),
        "stored value"
    );
    assert_eq!(
        redis_cli_within(&clients[0], &["GET", "before"]),
        "stored value"
    );
}

#[test]
fn a_flipped_bit_closes_the_link_and_nothing_changed_is_stored() {
    store_survives(Attack::Flip);
}

#[test]
fn a_replayed_record_closes_the_link_and_nothing_changed_is_stored() {
    store_survives(Attack::Replay);
}

#[test]
fn a_dropped_record_closes_the_link_and_nothing_changed_is_stored() {
    store_survives(Attack::Drop);
}

#[test]
fn on_a_fail_stop_edge_a_changed_record_ends_the_receiver_and_is_not_delivered() {
    let attacker = Attacker::new("weir-marker-unused", true);
    attacker.arm(Attack::Flip, 3);
    let run = OnPath::start(
        "broadcast",
        &[("leader", 1), ("worker", 2)],
        |_| String::new(),
        &[],
        &[],
        &attacker,
    );
    let start = Instant::now();
    let workers = &run.instances[1..];
    while workers.iter().any(|w| w.stderr().is_empty()) && start.elapsed() < SOON {
        std::thread::sleep(Duration::from_millis(50));
    }
    for worker in workers {
        let err = worker.stderr();
        assert!(
            err.contains("WARN")
                && err.contains("closing the link with peer leader")
                && err.contains("integrity check failed"),
            "{}: {err}",
            worker.name
        );
        // The records of the touched record never reached the dataflow.
        assert!(
            worker.stdout().is_empty(),
            "{}: {:?}",
            worker.name,
            worker.stdout()
        );
    }
}

#[test]
fn a_recorded_first_message_replayed_gets_an_answer_and_no_link() {
    let attacker = Attacker::new("weir-marker-unused", true);
    let roles = [("leader", 1), ("worker", 1)];
    let run = OnPath::start("membership", &roles, |_| String::new(), &[], &[], &attacker);
    let worker = &run.instances[1];
    assert!(worker.wait_for_more("got ", 0, SOON), "{}", run.stderr());
    // The leader's first message to worker 0, as the relay in front of it saw it.
    let recorded = attacker
        .first_messages
        .lock()
        .unwrap()
        .iter()
        .find(|(relay, _)| *relay == 1)
        .map(|(_, m)| m.clone());
    let recorded = recorded.expect("the relay saw the leader's first message");
    let mut replay = TcpStream::connect(&run.addresses[1]).unwrap();
    replay
        .set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    replay.write_all(&recorded).unwrap();
    // The message opens (it is the leader's), so the worker answers; what
    // would take the link needs the leader's ephemeral key, so it never comes.
    let mut answer = Vec::new();
    let _ = replay.read_to_end(&mut answer);
    assert!(
        answer.starts_with(b"WEIR"),
        "no answer to the replayed message: {answer:?}"
    );
    let log = "no complete handshake within 5s";
    let start = Instant::now();
    while !worker.stderr().contains(log) && start.elapsed() < SOON {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(worker.stderr().contains(log), "{}", run.stderr());
    // The real leader's link was never touched.
    let before = worker.count("got ");
    assert!(
        worker.wait_for_more("got ", before, SOON),
        "{}",
        run.stderr()
    );
    assert!(!run.stderr().contains("lost peer"), "{}", run.stderr());
}
