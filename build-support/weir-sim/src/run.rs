//! One seeded run: every instance of the flow on one current-thread runtime
//! with a paused clock, linked through the simulated [`Network`], with the
//! faults the seed chose.

use crate::client::{Client, Script};
use crate::faults::{Faults, Timing};
use crate::network::{carry, Hold, Network};
use crate::observe::{Log, Tagged, CURRENT};
use crate::outcome::{Outcome, Run};
use crate::rng::Rng;
use crate::{Flow, Program};
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;
use tokio::sync::{mpsc, Notify};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use weir_runtime::external::InProcessClient;
use weir_runtime::frame::DEFAULT_MAX_FRAME;
use weir_runtime::transport::{LinkEvent, LinkId, LinkPlan, Links, PeerPlan};
use weir_runtime::wire::{channels_with, match_channels};
use weir_runtime::{InstanceId, Node, RoleKind, Stopper};

pub(crate) struct Instance {
    id: InstanceId,
    pub(crate) name: String,
    program: &'static Program,
    /// Global index of each of its peers, in `LinkPlan::peers` order.
    peers: Vec<usize>,
    tolerated: Vec<bool>,
    /// Each peer's current link number (0: none yet).
    links: Vec<LinkId>,
    next_link: LinkId,
    incarnation: u64,
    pub(crate) live: bool,
    events: Option<mpsc::UnboundedSender<LinkEvent>>,
    /// Where simulated clients connect, per external endpoint.
    pub(crate) clients: Vec<(String, mpsc::UnboundedSender<InProcessClient>)>,
    task: Option<JoinHandle<()>>,
    stopper: Option<Stopper>,
    outcome: Option<Outcome>,
    /// Whether every role linked to it tolerates its role.
    restartable: bool,
    /// Its durable state, kept across its crashes and restarts (each commit
    /// is synced: a crash loses nothing committed, but a crash in the middle
    /// of a commit may tear it).
    disk: weir_durable::MemoryDisk,
    /// How much of a write torn by its crash survives: this modulo one more
    /// than the bytes written (the seed's choice).
    tear: u64,
}

pub(crate) struct World {
    pub(crate) instances: Vec<Instance>,
    sizes: Vec<(&'static str, u32)>,
    pub(crate) network: Network,
    timing: Timing,
    pub(crate) start: Instant,
    faults: Vec<String>,
    /// Instance tasks not yet over.
    running: usize,
    /// Crashed instances still to come back: the run is not over before.
    coming_back: usize,
    changed: Rc<Notify>,
    stopped: bool,
    /// What a restarted instance runs (see `Faults::restart_with`).
    restart_with: Option<&'static Flow>,
}

pub(crate) type Shared = Rc<RefCell<World>>;

/// Runs the flow once under `seed`.
pub(crate) fn run(
    flow: &'static Flow,
    sizes: &[(String, u32)],
    clients: &[Script],
    seed: u64,
    faults: &Faults,
    timing: &Timing,
) -> Run {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a current-thread runtime starts");
    weir_runtime::ops::deterministic_hashing(true);
    let local = tokio::task::LocalSet::new();
    let run = local.block_on(
        &runtime,
        run_in_runtime(flow, sizes, clients, seed, faults, timing),
    );
    CURRENT.with(|c| c.borrow_mut().take());
    run
}

async fn run_in_runtime(
    flow: &'static Flow,
    sizes: &[(String, u32)],
    clients: &[Script],
    seed: u64,
    faults: &Faults,
    timing: &Timing,
) -> Run {
    let start = Instant::now();
    let mut rng = Rng::new(seed);
    let mut world = plan_instances(flow, sizes);
    let count = world.len();
    let role_sizes: Vec<(&'static str, u32)> = flow
        .roles
        .iter()
        .map(|p| {
            let n = world.iter().filter(|i| i.id.role == p.spec.role).count();
            (p.spec.role, n as u32)
        })
        .collect();

    // The seed's faults, decided up front.
    let window = timing.fault_window.as_millis().max(1) as u64;
    let mut holds = Vec::new();
    for (a, instance) in world.iter().enumerate() {
        for &b in &instance.peers {
            if a < b && rng.chance(faults.holds) {
                let from = start + Duration::from_millis(rng.in_range(0..window));
                let until = from + Duration::from_millis(rng.in_range(100..3000));
                holds.push(Hold { a, b, from, until });
            }
        }
    }
    let mut crashes = Vec::new();
    for (i, instance) in world.iter_mut().enumerate() {
        if rng.chance(faults.crash_chance(&instance.id.role)) {
            let at = Duration::from_millis(rng.in_range(0..window));
            let back = (faults.restarts && instance.restartable)
                .then(|| at + Duration::from_millis(rng.in_range(100..2000)));
            let in_commit = rng.chance(0.5);
            instance.tear = rng.next();
            crashes.push((i, at, back, in_commit));
        }
    }

    let network = Network::new(seed, faults.delays.clone(), holds.clone());
    CURRENT.with(|c| {
        *c.borrow_mut() = Some(Log {
            start,
            polling: None,
            names: world
                .iter()
                .map(|i| i.name.clone())
                .chain((0..clients.len()).map(|c| format!("client/{c}")))
                .collect(),
            lines: Vec::new(),
            last_polled: vec![Duration::ZERO; count + clients.len()],
            network: network.clone(),
        })
    });
    let changed = Rc::new(Notify::new());
    let shared: Shared = Rc::new(RefCell::new(World {
        instances: world,
        sizes: role_sizes,
        network: network.clone(),
        timing: timing.clone(),
        start,
        faults: Vec::new(),
        running: 0,
        coming_back: 0,
        changed: changed.clone(),
        stopped: false,
        restart_with: faults.restart_with,
    }));
    for hold in &holds {
        let w = shared.borrow();
        let text = format!(
            "{} ms: {} and {} held apart for {} ms",
            (hold.from - start).as_millis(),
            w.instances[hold.a].name,
            w.instances[hold.b].name,
            (hold.until - hold.from).as_millis()
        );
        drop(w);
        shared.borrow_mut().faults.push(text);
    }
    let carrier = tokio::task::spawn_local(carry(network.clone(), seed));
    for i in 0..count {
        start_instance(&shared, i);
    }
    for (c, script) in clients.iter().enumerate() {
        let client = Client {
            index: c,
            node: count + c,
            world: shared.clone(),
        };
        tokio::task::spawn_local(Tagged {
            instance: count + c,
            future: script(client),
        });
    }
    for (i, at, back, in_commit) in crashes {
        let shared = shared.clone();
        tokio::task::spawn_local(async move {
            tokio::time::sleep_until(start + at).await;
            let crashed = if in_commit {
                crash_in_next_commit(&shared, i).await
            } else {
                crash(&shared, i)
            };
            if let (true, Some(back)) = (crashed, back) {
                shared.borrow_mut().coming_back += 1;
                tokio::time::sleep_until(Instant::now().max(start + back)).await;
                shared.borrow_mut().coming_back -= 1;
                if !shared.borrow().stopped {
                    restart(&shared, i);
                }
            }
        });
    }
    if let Some(after) = timing.stop_after {
        let shared = shared.clone();
        tokio::task::spawn_local(async move {
            tokio::time::sleep_until(start + after).await;
            let mut w = shared.borrow_mut();
            w.stopped = true;
            for instance in &w.instances {
                if let Some(stopper) = &instance.stopper {
                    stopper.stop();
                }
            }
            w.changed.notify_one();
        });
    }

    // Until every instance is over, or the watchdog fires.
    let deadline = start + timing.time_limit;
    loop {
        let over = {
            let w = shared.borrow();
            w.running == 0 && w.coming_back == 0
        };
        if over {
            break;
        }
        tokio::select! {
            biased;
            _ = changed.notified() => {}
            _ = tokio::time::sleep_until(deadline) => break,
        }
    }
    let elapsed = start.elapsed();
    carrier.abort();
    // In the order they happened (holds were planned first).
    let mut faults_seen = std::mem::take(&mut shared.borrow_mut().faults);
    faults_seen.sort_by_key(|f| f.split(' ').next().and_then(|ms| ms.parse::<u64>().ok()));
    let mut w = shared.borrow_mut();
    for instance in &mut w.instances {
        if let Some(task) = instance.task.take() {
            task.abort();
            instance.outcome = Some(Outcome::Hung);
        }
    }
    let log = CURRENT.with(|c| c.borrow_mut().take()).expect("set above");
    let last_steps = w
        .instances
        .iter()
        .enumerate()
        .map(|(i, instance)| {
            let last_line = log
                .lines
                .iter()
                .rev()
                .find(|l| l.instance == instance.name)
                .map_or("none".to_string(), |l| format!("{:?}", l.text));
            format!(
                "{}: last ran at {} ms, last line {last_line}",
                instance.name,
                log.last_polled[i].as_millis()
            )
        })
        .collect();
    Run {
        seed,
        instances: w
            .instances
            .iter()
            .map(|i| (i.name.clone(), i.outcome.clone().unwrap_or(Outcome::Hung)))
            .collect(),
        lines: log.lines,
        faults: faults_seen,
        last_steps,
        elapsed,
        trace_hash: network.trace_hash(),
    }
}

/// Every instance of the flow, and whom each links with.
fn plan_instances(flow: &'static Flow, sizes: &[(String, u32)]) -> Vec<Instance> {
    let mut ids = Vec::new();
    for program in flow.roles {
        let spec = program.spec;
        let n = match spec.kind() {
            RoleKind::Process => 1,
            RoleKind::Cluster => sizes
                .iter()
                .find(|(r, _)| r == spec.role)
                .map(|(_, n)| *n)
                .unwrap_or_else(|| {
                    panic!(
                        "weir-sim: flow `{}`: say how many instances cluster `{}` has, with .instances(\"{}\", N)",
                        flow.name, spec.role, spec.role
                    )
                }),
        };
        for index in 0..n {
            ids.push((
                program,
                InstanceId {
                    role: spec.role.to_string(),
                    index,
                },
            ));
        }
    }
    let mut instances: Vec<Instance> = ids
        .iter()
        .map(|(program, id)| {
            let spec = program.spec;
            let mut peers = Vec::new();
            let mut tolerated = Vec::new();
            for role in spec.linked_roles() {
                for (j, (_, other)) in ids.iter().enumerate() {
                    if other.role == role && other != id {
                        peers.push(j);
                        tolerated.push(spec.tolerates(role));
                    }
                }
            }
            Instance {
                name: id.display(spec.kind()),
                id: id.clone(),
                program,
                links: vec![0; peers.len()],
                peers,
                tolerated,
                next_link: 0,
                incarnation: 0,
                live: false,
                events: None,
                clients: Vec::new(),
                task: None,
                stopper: None,
                outcome: None,
                restartable: false,
                disk: weir_durable::MemoryDisk::new(),
                tear: 0,
            }
        })
        .collect();
    for i in 0..instances.len() {
        let role = instances[i].id.role.clone();
        instances[i].restartable = instances.iter().all(|other| {
            other.id.role == role
                || !other.program.spec.linked_roles().contains(&role.as_str())
                || other.program.spec.tolerates(&role)
        });
    }
    instances
}

/// Starts instance `i` (again, after a crash): links it with every live
/// peer and spawns its program.
fn start_instance(shared: &Shared, i: usize) {
    let (events, events_rx) = mpsc::unbounded_channel();
    let (dropped, mut dropped_rx) = mpsc::unbounded_channel::<(usize, LinkId)>();
    let mut w = shared.borrow_mut();
    let instance = &mut w.instances[i];
    instance.incarnation += 1;
    instance.live = true;
    instance.outcome = None;
    instance.events = Some(events);
    let program = instance.program;
    let peers: Vec<usize> = instance.peers.clone();
    for (p, &j) in peers.iter().enumerate() {
        if w.instances[j].live {
            connect(&mut w, i, p, j);
        }
    }
    let instance = &w.instances[i];
    let plan = LinkPlan {
        me: instance.id.clone(),
        me_name: instance.name.clone(),
        incarnation: instance.incarnation,
        listen: format!("sim:{}", instance.name),
        peers: instance
            .peers
            .iter()
            .zip(&instance.tolerated)
            .map(|(&j, &tolerated)| {
                let peer = &w.instances[j];
                PeerPlan {
                    id: peer.id.clone(),
                    name: peer.name.clone(),
                    address: format!("sim:{}", peer.name),
                    dial: j > i,
                    tolerated,
                }
            })
            .collect(),
        flow: program.spec.flow,
        channels: program.spec.channels,
        connect_timeout: Duration::from_secs(30),
        peer_timeout: w.timing.peer_timeout,
        max_frame: DEFAULT_MAX_FRAME,
        keys: None,
    };
    let mut node = Node::new(
        program.spec,
        &plan,
        Links {
            events: events_rx,
            dropped,
        },
        w.sizes.clone(),
    );
    w.instances[i].clients = program
        .spec
        .externals
        .iter()
        .filter(|e| e.role == program.spec.role)
        .map(|e| {
            let (clients, incoming) = mpsc::unbounded_channel();
            node.set_in_process_clients(e.name, incoming);
            (e.name.to_string(), clients)
        })
        .collect();
    node.set_storage(weir_durable::Storage::on(
        w.instances[i].disk.clone(),
        weir_durable::Durability::Sync,
    ));
    w.instances[i].stopper = Some(node.stopper());
    if w.stopped {
        node.stopper().stop();
    }
    let done = shared.clone();
    let future = async move {
        let outcome = async {
            node.await_required_peers().await?;
            (program.start)(node).await
        }
        .await;
        let mut w = done.borrow_mut();
        w.instances[i].task = None;
        if w.instances[i].disk.is_down() {
            // It stopped because its disk lost power mid-commit: a crash.
            went_down(&mut w, i, "during a commit");
            return;
        }
        let instance = &mut w.instances[i];
        instance.outcome = Some(match outcome {
            Ok(()) => Outcome::Finished,
            Err(e) => Outcome::Failed(e.to_string()),
        });
        instance.live = false;
        instance.events = None;
        instance.clients.clear();
        instance.stopper = None;
        w.running -= 1;
        w.changed.notify_one();
    };
    w.running += 1;
    w.instances[i].task = Some(tokio::task::spawn_local(Tagged {
        instance: i,
        future: Box::pin(future),
    }));
    drop(w);
    // A dropped link (silence, a hold) is linked again once the pair can
    // reach each other, as a dialer would.
    let relink = shared.clone();
    tokio::task::spawn_local(async move {
        while let Some((p, link)) = dropped_rx.recv().await {
            let (j, wait) = {
                let w = relink.borrow();
                let instance = &w.instances[i];
                if instance.links[p] != link {
                    continue;
                }
                let j = instance.peers[p];
                let heal = w.network.held_until(i, j);
                (j, heal)
            };
            let relink = relink.clone();
            tokio::task::spawn_local(async move {
                let at = wait.unwrap_or_else(Instant::now) + Duration::from_millis(100);
                tokio::time::sleep_until(at).await;
                let mut w = relink.borrow_mut();
                let current = w.instances[i].links[p] == link;
                if current && w.instances[i].live && w.instances[j].live {
                    connect(&mut w, i, p, j);
                }
            });
        }
    });
}

/// A new link between `i` (whose peer `p` is `j`) and `j`.
fn connect(w: &mut World, i: usize, p: usize, j: usize) {
    let Some(q) = w.instances[j].peers.iter().position(|&k| k == i) else {
        return;
    };
    // As the two role binaries would at their handshake: each matches the
    // other's channels with its own (two builds may differ).
    let maps = [(i, j), (j, i)].map(|(me, other)| {
        let (mine, theirs) = (
            w.instances[me].program.spec,
            w.instances[other].program.spec,
        );
        match_channels(
            &channels_with(mine.channels, mine.role, theirs.role),
            &channels_with(theirs.channels, theirs.role, mine.role),
            (&w.instances[me].name, &w.instances[other].name),
        )
    });
    let [i_map, j_map] = match maps {
        [Ok(i_map), Ok(j_map)] => [i_map, j_map],
        [Err(why), _] | [_, Err(why)] => {
            let text = format!(
                "{} ms: {} and {} refuse each other: {why}",
                w.start.elapsed().as_millis(),
                w.instances[i].name,
                w.instances[j].name
            );
            w.network.trace(text.as_bytes());
            w.faults.push(text);
            return;
        }
    };
    let (i_writer, j_reader) = w.network.pipe(i, j);
    let (j_writer, i_reader) = w.network.pipe(j, i);
    for (me, peer, other, writer, reader, channels) in [
        (i, p, j, i_writer, i_reader, i_map),
        (j, q, i, j_writer, j_reader, j_map),
    ] {
        let incarnation = w.instances[other].incarnation;
        let instance = &mut w.instances[me];
        instance.next_link += 1;
        let link = instance.next_link;
        instance.links[peer] = link;
        if let Some(events) = &instance.events {
            let _ = events.send(LinkEvent::Up {
                peer,
                link,
                writer: Box::new(writer),
                reader: Box::new(reader),
                incarnation,
                channels,
            });
        }
    }
}

/// How long a crash meant for an instance's next commit waits for one
/// before it strikes anyway.
const COMMIT_WAIT: Duration = Duration::from_millis(500);

/// Crashes instance `i`, unless it is over already; whether it did.
fn crash(shared: &Shared, i: usize) -> bool {
    let mut w = shared.borrow_mut();
    let Some(task) = w.instances[i].task.take() else {
        return false;
    };
    task.abort();
    went_down(&mut w, i, "");
    true
}

/// Crashes instance `i` in the middle of its next commit (its disk loses
/// power at the commit's sync, tearing what it wrote), or plainly if it
/// keeps no durable state or commits nothing for a while. Whether it
/// crashed (it may be over already).
async fn crash_in_next_commit(shared: &Shared, i: usize) -> bool {
    let disk = shared.borrow().instances[i].disk.clone();
    if disk.is_empty() {
        return crash(shared, i);
    }
    disk.lose_power_at_next_sync();
    let until = Instant::now() + COMMIT_WAIT;
    while shared.borrow().instances[i].task.is_some() && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    disk.keep_power();
    if shared.borrow().instances[i].outcome == Some(Outcome::Crashed) {
        return true; // Struck: see the instance's end in `start_instance`.
    }
    crash(shared, i)
}

/// The bookkeeping of instance `i`'s crash (its task is over): the machine
/// went down, and what its disk had not synced is lost or torn.
fn went_down(w: &mut World, i: usize, how: &str) {
    let at = w.start.elapsed().as_millis();
    let instance = &mut w.instances[i];
    instance.live = false;
    instance.events = None;
    instance.clients.clear();
    instance.stopper = None;
    instance.outcome = Some(Outcome::Crashed);
    let mut torn = String::new();
    let tear = instance.tear;
    instance.disk.power_loss(|name, n| {
        let kept = (tear % (n as u64 + 1)) as usize;
        if n > 0 {
            torn.push_str(&format!(", {kept} of {n} unsynced bytes of {name} kept"));
        }
        kept
    });
    let how = if how.is_empty() {
        String::new()
    } else {
        format!(" {how}")
    };
    let text = format!("{at} ms: crash {}{how}{torn}", instance.name);
    w.network.trace(text.as_bytes());
    w.faults.push(text);
    w.running -= 1;
    w.changed.notify_one();
}

fn restart(shared: &Shared, i: usize) {
    {
        let mut w = shared.borrow_mut();
        let mut text = format!(
            "{} ms: restart {}",
            w.start.elapsed().as_millis(),
            w.instances[i].name
        );
        if let Some(next) = w.restart_with {
            let role = w.instances[i].id.role.clone();
            let program = next
                .roles
                .iter()
                .find(|p| p.spec.role == role)
                .unwrap_or_else(|| {
                    panic!(
                        "weir-sim: flow `{}` has no role `{role}` to upgrade to",
                        next.name
                    )
                });
            w.instances[i].program = program;
            text.push_str(&format!(" on flow `{}`", next.name));
        }
        w.network.trace(text.as_bytes());
        w.faults.push(text);
    }
    start_instance(shared, i);
}
