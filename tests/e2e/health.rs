//! `--health ADDR`: what a readiness probe or a rolling upgrade sees of an
//! instance as its links come and go.

use crate::support::*;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

/// `GET path` at `address`: the status line's code and the body, or `None`
/// while nothing listens there.
fn get(address: &str, path: &str) -> Option<(u16, String)> {
    let mut stream = std::net::TcpStream::connect(address).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: probe\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let status = response.split(' ').nth(1)?.parse().ok()?;
    let body = response.split("\r\n\r\n").nth(1).unwrap_or_default();
    Some((status, body.to_string()))
}

/// Asks for `/ready` until the answer is `status`, for at most 15 s; the last answer.
fn ready_becomes(address: &str, status: u16) -> (u16, String) {
    let start = Instant::now();
    loop {
        let answer = get(address, "/ready");
        match answer {
            Some(answer) if answer.0 == status => return answer,
            other if start.elapsed() > Duration::from_secs(15) => {
                panic!("/ready at {address} never answered {status}: last {other:?}")
            }
            _ => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

#[test]
fn ready_says_whether_the_instance_is_linked_with_every_role_it_needs() {
    let topo = Topo::new(&[("leader", 1), ("worker", 1)]);
    let health = format!("127.0.0.1:{}", free_port());
    // The worker tolerates its leader: it runs without one, but is not ready.
    let mut worker = start(
        "membership-worker",
        &topo.file,
        Some(0),
        &["--health", &health],
    );
    let (_, why) = ready_becomes(&health, 503);
    assert!(why.contains("not ready"), "{why}");
    let (status, _) = get(&health, "/metrics").unwrap();
    assert_eq!(status, 404);

    let mut leader = start("membership-leader", &topo.file, None, &[]);
    let (_, body) = ready_becomes(&health, 200);
    assert_eq!(body, "ready\n");

    // Its leader gone, it is not ready again, and says why.
    leader.kill().unwrap();
    leader.wait().unwrap();
    let (_, why) = ready_becomes(&health, 503);
    assert!(
        why.contains("linked with no instance of role leader"),
        "{why}"
    );
    worker.kill().unwrap();
    worker.wait().unwrap();
}

#[test]
fn a_health_address_that_cannot_be_bound_is_named() {
    let topo = Topo::new(&[("leader", 1), ("worker", 1)]);
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let worker = start(
        "membership-worker",
        &topo.file,
        Some(0),
        &["--health", &address],
    );
    let out = finish(worker, Duration::from_secs(30));
    assert!(!out.status.success());
    let said = stderr(&out);
    assert!(
        said.contains(&format!("cannot listen for --health on {address}")),
        "{said}"
    );
}
