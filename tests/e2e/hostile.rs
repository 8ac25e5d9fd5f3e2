//! Hostile and broken peers, played over real sockets against a real worker of
//! `broadcast`. Before a connection has proved it holds the deployment key,
//! nothing it says stops the worker: it is refused, logged with its address and
//! the reason, and the real leader is still served. After that, a broken peer
//! stops the worker with an error naming the peer and what was wrong.

use crate::support::*;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use weir_runtime::auth::Key;
use weir_runtime::frame::Handshake;
use weir_runtime::wire::WireChannel;

/// The broadcast leader's channels to a worker (as its hello lists them), and
/// the id of the one channel, as the binaries have them.
fn broadcast_identity() -> (Vec<WireChannel>, u32) {
    let channels = hello_channels(flow::broadcast::broadcast, "leader", "worker");
    let id = channels[0].id;
    (channels, id)
}

/// Connects to worker 0, retrying until it listens.
async fn connect_to_worker(topo: &Topo) -> TcpStream {
    connect(topo.address("worker", 0)).await
}

/// Plays the leader's side of the handshake with worker 0, saying
/// `channels` and under `key` (none: unauthenticated). The connection, or the
/// worker's reason for refusing it.
async fn join_as_leader(
    topo: &Topo,
    channels: Vec<WireChannel>,
    key: Option<&Key>,
) -> Result<Joined, String> {
    let me = Peer {
        flow: "broadcast",
        role: "leader",
        index: 0,
        incarnation: 1,
        channels,
    };
    handshake_as(topo.address("worker", 0), &me, key).await
}

/// The deployment's own key, as its instances load it.
fn key_of(topo: &Topo) -> Key {
    Key::load(&topo.key()).unwrap()
}

/// Starts the real leader after whatever the test did, and asserts the worker
/// still got every record and exited 0; returns the worker's stderr.
fn real_leader_is_still_served(topo: &Topo, worker: std::process::Child) -> String {
    let leader = start("broadcast-leader", &topo.file, None, &[]);
    let (leader, worker) = (finish(leader, LIMIT), finish(worker, LIMIT));
    assert!(leader.status.success(), "{}", stderr(&leader));
    assert!(worker.status.success(), "{}", stderr(&worker));
    let expected: String = (0..10).map(|n| format!("{n}\n")).collect();
    assert_eq!(stdout(&worker), expected);
    stderr(&worker)
}

/// A peer joining with `key` (none: unauthenticated) must be refused before the
/// real leader runs the flow: the reason it was given, and the worker's stderr.
async fn refused_then_real_leader_served(key: Option<&Key>) -> (String, String) {
    let (channels, _) = broadcast_identity();
    let topo = Topo::new(&[("leader", 1), ("worker", 1)]);
    let worker = start("broadcast-worker", &topo.file, Some(0), &[]);
    let reason = join_as_leader(&topo, channels, key)
        .await
        .expect_err("the peer must be refused");
    (reason, real_leader_is_still_served(&topo, worker))
}

#[tokio::test]
async fn a_peer_with_another_deployments_key_is_refused_and_the_real_one_served() {
    let stranger = Key::from_secret(b"another deployment's secret").unwrap();
    let (reason, err) = refused_then_real_leader_served(Some(&stranger)).await;
    assert!(reason.contains("authentication failed"), "{reason}");
    assert!(
        err.contains("refused connection from 127.0.0.1:")
            && err.contains("authentication failed: it does not hold this deployment's key"),
        "{err}"
    );
}

#[tokio::test]
async fn a_peer_without_a_key_is_refused_and_the_real_one_served() {
    let (reason, err) = refused_then_real_leader_served(None).await;
    assert!(reason.contains("--insecure-no-auth"), "{reason}");
    assert!(
        err.contains("leader/0: it runs without authentication"),
        "{err}"
    );
}

#[tokio::test]
async fn garbage_instead_of_a_handshake_is_refused_and_the_real_leader_served() {
    let topo = Topo::new(&[("leader", 1), ("worker", 1)]);
    let worker = start("broadcast-worker", &topo.file, Some(0), &[]);
    let mut stream = connect_to_worker(&topo).await;
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: weir\r\n\r\n")
        .await
        .unwrap();
    let mut rest = Vec::new();
    let _ = stream.read_to_end(&mut rest).await; // the worker hangs up
    let err = real_leader_is_still_served(&topo, worker);
    assert!(
        err.contains("refused connection from 127.0.0.1:")
            && err.contains("not a Weir peer (bad magic bytes)"),
        "{err}"
    );
}

#[tokio::test]
async fn a_peer_that_never_finishes_its_handshake_is_timed_out() {
    let (channels, _) = broadcast_identity();
    let topo = Topo::new(&[("leader", 1), ("worker", 1)]);
    let worker = start("broadcast-worker", &topo.file, Some(0), &[]);
    // Half a hello, then silence (slow-loris).
    let mut stream = connect_to_worker(&topo).await;
    let hello = Handshake::Hello {
        flow: "broadcast".into(),
        role: "leader".into(),
        index: 0,
        incarnation: 1,
        channels,
    }
    .encode();
    stream.write_all(&hello[..10]).await.unwrap();
    let mut rest = Vec::new();
    let hung_up = tokio::time::timeout(Duration::from_secs(15), stream.read_to_end(&mut rest))
        .await
        .is_ok();
    assert!(hung_up, "the worker kept a stalled handshake open");
    let err = real_leader_is_still_served(&topo, worker);
    assert!(
        err.contains("refused connection from 127.0.0.1:")
            && err.contains("no complete handshake within 5s"),
        "{err}"
    );
}

#[tokio::test]
async fn a_flood_of_connections_is_bounded_and_the_real_leader_still_gets_in() {
    let topo = Topo::new(&[("leader", 1), ("worker", 1)]);
    let worker = start("broadcast-worker", &topo.file, Some(0), &[]);
    let mut flood = vec![connect_to_worker(&topo).await];
    for _ in 0..299 {
        flood.push(TcpStream::connect(topo.address("worker", 0)).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let open_files = std::fs::read_dir(format!("/proc/{}/fd", worker.id()))
        .unwrap()
        .count();
    assert!(
        open_files < 120,
        "the worker holds {open_files} files for 300 silent connections"
    );
    // Those beyond the bound were closed at once.
    let mut closed = 0;
    for stream in &mut flood {
        let mut byte = [0u8; 1];
        if let Ok(Ok(0)) =
            tokio::time::timeout(Duration::from_millis(5), stream.read(&mut byte)).await
        {
            closed += 1;
        }
    }
    assert!(closed >= 200, "only {closed} of 300 were closed");
    let err = real_leader_is_still_served(&topo, worker);
    assert!(err.contains("handshakes already in progress"), "{err}");
}

#[tokio::test]
async fn a_peer_whose_records_have_another_shape_is_refused_naming_the_channel() {
    let (mut channels, _) = broadcast_identity();
    // A leader built with `source_iter(q!(0..10u64))`: another record type.
    channels[0].shape = weir_core::shape::trace::<u64>().unwrap().encode();
    let topo = Topo::new(&[("leader", 1), ("worker", 1)]);
    let worker = start("broadcast-worker", &topo.file, Some(0), &[]);
    let reason = join_as_leader(&topo, channels, Some(&key_of(&topo)))
        .await
        .expect_err("another shape must be refused");
    let expected = "the record: i32 at worker/0, u64 at leader";
    assert!(
        reason.contains("broadcast_bincode at flow/src/broadcast.rs:"),
        "{reason}"
    );
    assert!(reason.contains(expected), "{reason}");
    let out = finish(worker, LIMIT);
    assert!(!out.status.success());
    assert!(stderr(&out).contains(expected), "{}", stderr(&out));
    assert_eq!(stdout(&out), "", "nothing may be delivered");
}

/// Joins as the leader, sends `bytes`, hangs up; returns the worker's stderr,
/// asserting it failed.
async fn worker_after(bytes: Vec<u8>) -> String {
    let (channels, _) = broadcast_identity();
    let topo = Topo::new(&[("leader", 1), ("worker", 1)]);
    let worker = start("broadcast-worker", &topo.file, Some(0), &[]);
    let mut joined = join_as_leader(&topo, channels, Some(&key_of(&topo)))
        .await
        .expect("the handshake succeeds");
    joined.writer.write_all(&bytes).await.unwrap();
    joined.writer.shutdown().await.unwrap();
    let out = finish(worker, LIMIT);
    drop(joined);
    assert!(
        !out.status.success(),
        "worker accepted bad input: {}",
        stdout(&out)
    );
    let err = stderr(&out);
    assert!(!err.contains("panicked"), "{err}");
    err
}

fn frame(len: u32, channel: u32, payload: &[u8]) -> Vec<u8> {
    let mut bytes = len.to_le_bytes().to_vec();
    bytes.extend_from_slice(&channel.to_le_bytes());
    bytes.extend_from_slice(payload);
    bytes
}

#[tokio::test]
async fn a_frame_that_does_not_decode_names_peer_and_channel() {
    let (_, channel) = broadcast_identity();
    // A batch claiming 3 records of i32 but carrying 2 bytes.
    let mut payload = 3u64.to_le_bytes().to_vec();
    payload.extend_from_slice(&[1, 2]);
    let err = worker_after(frame(payload.len() as u32, channel, &payload)).await;
    assert!(err.contains("does not decode"), "{err}");
    assert!(err.contains(&format!("channel {channel}")), "{err}");
    assert!(err.contains("leader"), "{err}");
}

#[tokio::test]
async fn a_frame_over_the_maximum_is_refused_without_allocating_it() {
    let (_, channel) = broadcast_identity();
    let err = worker_after(frame(u32::MAX >> 1, channel, b"")).await;
    assert!(err.contains("exceeds the maximum"), "{err}");
    assert!(err.contains(&format!("channel {channel}")), "{err}");
    assert!(err.contains("leader"), "{err}");
}

#[tokio::test]
async fn a_truncated_frame_is_reported_with_what_arrived() {
    let (_, channel) = broadcast_identity();
    let err = worker_after(frame(100, channel, &[0; 40])).await;
    assert!(
        err.contains(&format!(
            "connection ended inside a frame on channel {channel} (40 of 100 bytes)"
        )),
        "{err}"
    );
    assert!(err.contains("leader"), "{err}");
}

#[tokio::test]
async fn a_frame_on_an_unknown_channel_is_refused() {
    let err = worker_after(frame(0, 999, b"")).await;
    assert!(err.contains("channel 999"), "{err}");
}

#[tokio::test]
async fn garbage_after_the_handshake_stops_the_worker_with_a_reason() {
    // Deterministic noise: whatever the header it makes, the worker must say why.
    let mut state = 0x9e3779b97f4a7c15u64;
    let noise: Vec<u8> = (0..4096)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    let err = worker_after(noise).await;
    assert!(err.contains("error: worker/0"), "{err}");
    assert!(err.contains("leader"), "{err}");
}

#[tokio::test]
async fn a_peer_that_vanishes_mid_stream_is_reported_as_lost() {
    let (channels, channel) = broadcast_identity();
    let topo = Topo::new(&[("leader", 1), ("worker", 1)]);
    let worker = start("broadcast-worker", &topo.file, Some(0), &[]);
    let mut joined = join_as_leader(&topo, channels, Some(&key_of(&topo)))
        .await
        .unwrap();
    let mut payload = Vec::new();
    weir_core::codec::encode_batch(&[7i32, 8], &mut payload).unwrap();
    joined
        .writer
        .write_all(&frame(payload.len() as u32, channel, &payload))
        .await
        .unwrap();
    drop(joined); // gone without closing its channel
    let out = finish(worker, LIMIT);
    assert!(!out.status.success());
    assert_eq!(
        stdout(&out),
        "7\n8\n",
        "records that arrived are still processed"
    );
    assert!(
        stderr(&out).contains("lost peer leader"),
        "{}",
        stderr(&out)
    );
}
