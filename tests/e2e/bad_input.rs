//! Bad input gets a clear error naming the problem and where it is, and nothing
//! hangs: misconfiguration, unreachable peers, and hostile or broken peers.

use crate::support::*;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use weir::ir::Operator;
use weir_runtime::frame::Handshake;

/// Runs a worker of `broadcast` and returns its stderr, asserting it failed.
fn worker_fails(topo: &std::path::Path, extra: &[&str], index: Option<usize>) -> String {
    let out = finish(start("broadcast-worker", topo, index, extra), LIMIT);
    assert!(
        !out.status.success(),
        "expected failure, got success: {}",
        stdout(&out)
    );
    let err = stderr(&out);
    assert!(err.starts_with("error: "), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    err
}

#[test]
fn a_missing_topology_file_is_named() {
    let err = worker_fails(std::path::Path::new("/nonexistent/topo.toml"), &[], Some(0));
    assert!(
        err.contains("cannot read topology file /nonexistent/topo.toml"),
        "{err}"
    );
}

#[test]
fn an_unparsable_topology_names_file_and_line() {
    let topo = Topo::from_text(
        "[leader]\naddresses = [\"127.0.0.1:1\"]\n[worker]\naddresses = 17\n",
        vec![],
    );
    let err = worker_fails(&topo.file, &[], Some(0));
    assert!(err.contains(&topo.file.display().to_string()), "{err}");
    assert!(err.contains("line 4"), "{err}");
}

#[test]
fn a_role_missing_from_the_topology_is_named() {
    let topo = Topo::new(&[("leader", 1)]);
    let err = worker_fails(&topo.file, &[], Some(0));
    assert!(
        err.contains("role `worker` is missing from topology file"),
        "{err}"
    );
}

#[test]
fn an_unknown_role_in_the_topology_is_named() {
    let topo = Topo::new(&[("leader", 1), ("worker", 1), ("wokrer", 1)]);
    let err = worker_fails(&topo.file, &[], Some(0));
    assert!(
        err.contains("lists role `wokrer`, which flow `broadcast` does not have"),
        "{err}"
    );
}

#[test]
fn an_index_out_of_range_or_missing_is_explained() {
    let topo = Topo::new(&[("leader", 1), ("worker", 2)]);
    let err = worker_fails(&topo.file, &[], Some(5));
    assert!(
        err.contains("--index 5 is out of range: role `worker` has 2 member(s)"),
        "{err}"
    );
    let err = worker_fails(&topo.file, &[], None);
    assert!(
        err.contains("say which member this is with --index"),
        "{err}"
    );
}

#[test]
fn an_address_in_use_is_named() {
    let topo = Topo::new(&[("leader", 1), ("worker", 1)]);
    let _taken = std::net::TcpListener::bind(topo.address("worker", 0)).unwrap();
    let err = worker_fails(&topo.file, &[], Some(0));
    assert!(
        err.contains(&format!("cannot listen on {}", topo.address("worker", 0))),
        "{err}"
    );
}

#[test]
fn an_unreachable_peer_is_named_after_the_deadline() {
    let topo = Topo::new(&[("leader", 1), ("worker", 2)]);
    let out = finish(
        start(
            "broadcast-leader",
            &topo.file,
            None,
            &["--connect-timeout", "1"],
        ),
        LIMIT,
    );
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains(&format!("worker/0 at {}", topo.address("worker", 0))),
        "{err}"
    );
}

/// The broadcast flow's hash and the id of its one channel, as the binaries have them.
fn broadcast_identity() -> (u64, u32) {
    let graph = weir_build::evaluate(flow::broadcast::broadcast);
    let channel = graph
        .nodes
        .iter()
        .position(|n| matches!(n.op, Operator::Network { .. }))
        .unwrap();
    (weir_build::flow_hash("broadcast", &graph), channel as u32)
}

/// Plays the leader: connects to worker 0 and says hello with `flow_hash`.
async fn fake_leader(topo: &Topo, flow_hash: u64) -> (TcpStream, Handshake) {
    let address = topo.address("worker", 0).to_string();
    let mut stream = loop {
        match TcpStream::connect(&address).await {
            Ok(s) => break s,
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    };
    let hello = Handshake::Hello {
        flow_hash,
        role: "leader".into(),
        index: 0,
    };
    stream.write_all(&hello.encode()).await.unwrap();
    let reply = Handshake::read(&mut stream).await.unwrap();
    (stream, reply)
}

#[tokio::test]
async fn a_peer_from_another_build_is_refused_by_both_sides() {
    let (hash, _) = broadcast_identity();
    let topo = Topo::new(&[("leader", 1), ("worker", 1)]);
    let worker = start("broadcast-worker", &topo.file, Some(0), &[]);
    let (_stream, reply) = fake_leader(&topo, hash ^ 1).await;
    let Handshake::Refusal { reason } = reply else {
        panic!("expected a refusal, got {reply:?}")
    };
    assert!(
        reason.contains("different build of flow `broadcast`"),
        "{reason}"
    );
    let out = finish(worker, LIMIT);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("different build of flow `broadcast`"),
        "{}",
        stderr(&out)
    );
}

async fn worker_after_frame(frame: Vec<u8>) -> String {
    let (hash, _) = broadcast_identity();
    let topo = Topo::new(&[("leader", 1), ("worker", 1)]);
    let worker = start("broadcast-worker", &topo.file, Some(0), &[]);
    let (mut stream, reply) = fake_leader(&topo, hash).await;
    assert!(matches!(reply, Handshake::Hello { .. }), "{reply:?}");
    stream.write_all(&frame).await.unwrap();
    let out = finish(worker, LIMIT);
    let mut rest = Vec::new();
    let _ = stream.read_to_end(&mut rest).await;
    assert!(
        !out.status.success(),
        "worker accepted a bad frame: {}",
        stdout(&out)
    );
    stderr(&out)
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
    let err = worker_after_frame(frame(payload.len() as u32, channel, &payload)).await;
    assert!(err.contains("does not decode"), "{err}");
    assert!(err.contains(&format!("channel {channel}")), "{err}");
    assert!(err.contains("leader"), "{err}");
}

#[tokio::test]
async fn a_frame_over_the_maximum_is_refused_without_allocating_it() {
    let (_, channel) = broadcast_identity();
    let err = worker_after_frame(frame(u32::MAX >> 1, channel, b"")).await;
    assert!(err.contains("exceeds the maximum"), "{err}");
    assert!(err.contains(&format!("channel {channel}")), "{err}");
    assert!(err.contains("leader"), "{err}");
}

#[tokio::test]
async fn a_frame_on_an_unknown_channel_is_refused() {
    let err = worker_after_frame(frame(0, 999, b"")).await;
    assert!(err.contains("channel 999"), "{err}");
}

#[tokio::test]
async fn a_peer_that_vanishes_mid_stream_is_reported_as_lost() {
    let (hash, channel) = broadcast_identity();
    let topo = Topo::new(&[("leader", 1), ("worker", 1)]);
    let worker = start("broadcast-worker", &topo.file, Some(0), &[]);
    let (mut stream, _) = fake_leader(&topo, hash).await;
    let mut payload = Vec::new();
    weir_core::codec::encode_batch(&[7i32, 8], &mut payload).unwrap();
    stream
        .write_all(&frame(payload.len() as u32, channel, &payload))
        .await
        .unwrap();
    drop(stream); // gone without closing its channel
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
