//! Addresses beyond loopback literals: host names in the topology, a listen
//! address apart from the advertised one, and a name that never resolves.

use crate::support::*;
use std::time::{Duration, Instant};

/// The broadcast flow with every address written as `localhost:PORT`.
fn named_topology() -> Topo {
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let text = format!(
        "[leader]\naddresses = [\"localhost:{}\"]\n[worker]\naddresses = [\"localhost:{}\", \"localhost:{}\"]\n",
        ports[0], ports[1], ports[2]
    );
    Topo::from_text(&text, Vec::new())
}

fn expect_broadcast(outputs: Vec<std::process::Output>) {
    for out in outputs {
        assert!(out.status.success(), "{}", stderr(&out));
        let got: Vec<String> = stdout(&out).lines().map(String::from).collect();
        if !got.is_empty() {
            assert_eq!(got, (0..10).map(|n| n.to_string()).collect::<Vec<_>>());
        }
    }
}

#[test]
fn host_names_in_the_topology_are_resolved() {
    let topo = named_topology();
    let workers: Vec<_> = (0..2)
        .map(|i| start("broadcast-worker", &topo.file, Some(i), &[]))
        .collect();
    let leader = start("broadcast-leader", &topo.file, None, &[]);
    let mut outputs = vec![finish(leader, Duration::from_secs(30))];
    outputs.extend(
        workers
            .into_iter()
            .map(|w| finish(w, Duration::from_secs(30))),
    );
    expect_broadcast(outputs);
}

#[test]
fn an_instance_listens_where_listen_says_not_at_its_advertised_name() {
    // Advertised under a name this machine cannot bind (as a pod's name before
    // its DNS record exists), listening on a loopback address instead.
    let port = free_port();
    let text = format!(
        "[leader]\naddresses = [\"127.0.0.1:{}\"]\n[worker]\naddresses = [\"weir-worker-0.invalid:{port}\"]\n",
        free_port()
    );
    let topo = Topo::from_text(&text, Vec::new());
    let listen = format!("127.0.0.1:{port}");
    let worker = start(
        "broadcast-worker",
        &topo.file,
        Some(0),
        &["--listen", &listen, "--connect-timeout", "3"],
    );
    // It listens there: a connection is accepted (and refused at the handshake).
    let reached = (0..100).any(|_| {
        std::thread::sleep(Duration::from_millis(20));
        std::net::TcpStream::connect(&listen).is_ok()
    });
    let out = finish(worker, Duration::from_secs(20));
    assert!(reached, "nothing listens on {listen}: {}", stderr(&out));
    let err = stderr(&out);
    assert!(!err.contains("cannot listen"), "{err}");
}

#[test]
fn an_address_that_never_resolves_fails_after_the_connect_timeout_naming_it() {
    let port = free_port();
    let text = format!(
        "[leader]\naddresses = [\"127.0.0.1:{}\"]\n[worker]\naddresses = [\"weir-worker-0.invalid:{port}\"]\n",
        free_port()
    );
    let topo = Topo::from_text(&text, Vec::new());
    let started = Instant::now();
    let worker = start(
        "broadcast-worker",
        &topo.file,
        Some(0),
        &["--connect-timeout", "1.5"],
    );
    let out = finish(worker, Duration::from_secs(20));
    let waited = started.elapsed();
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains(&format!("cannot listen on weir-worker-0.invalid:{port}"))
            && err.contains("does not resolve")
            && err.contains("--connect-timeout"),
        "{err}"
    );
    // It kept trying (a pod's DNS record comes after the pod) before failing.
    assert!(
        waited >= Duration::from_millis(1200),
        "failed after {waited:?}"
    );
}
