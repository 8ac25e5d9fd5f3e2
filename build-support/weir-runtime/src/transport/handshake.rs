//! The handshake that opens every link: each side says who it is (a hello with
//! the flow hash, its role and index, a nonce and its incarnation), then, with a
//! deployment key, proves it holds the key (`auth`). Nothing a connection says
//! before its proof can stop the accepting instance.

use super::{LinkPlan, PeerPlan};
use crate::auth::{self, Nonce, Side};
use crate::frame::Handshake;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

fn hello(plan: &LinkPlan, nonce: Nonce) -> Handshake {
    Handshake::Hello {
        flow_hash: plan.flow_hash,
        role: plan.me.role.clone(),
        index: plan.me.index,
        authenticated: plan.key.is_some(),
        nonce,
        incarnation: plan.incarnation,
    }
}

pub(super) fn other_build(plan: &LinkPlan, theirs: u64) -> String {
    format!(
        "it runs a different build of flow `{}` (flow hash {theirs:016x}, ours {:016x}): rebuild and redeploy all roles together",
        plan.flow, plan.flow_hash
    )
}

/// Why two instances disagree about authentication, from `ours`' point of view.
fn auth_mismatch(ours: bool) -> &'static str {
    if ours {
        "it runs without authentication (--insecure-no-auth) while this instance requires the deployment key"
    } else {
        "it authenticates with a deployment key while this instance runs with --insecure-no-auth: give every instance the same key"
    }
}

pub(super) enum Introduction {
    Retry(String),
    Fatal(String),
}

/// Reads the next handshake message, or says why there is none.
async fn next_message(stream: &mut TcpStream) -> Result<Handshake, String> {
    Handshake::read(stream).await.map_err(|e| e.to_string())
}

/// The dialing side of the handshake: hello, hello back, then (with a key) our
/// proof and theirs.
/// `seen` is the latest incarnation of the peer met so far: an older one is a
/// process left over from an earlier run. Returns the peer's incarnation.
pub(super) async fn introduce(
    plan: &LinkPlan,
    peer: &PeerPlan,
    seen: &AtomicU64,
    stream: &mut TcpStream,
) -> Result<u64, Introduction> {
    let _ = stream.set_nodelay(true);
    let nonce = auth::nonce().map_err(|e| Introduction::Fatal(e.to_string()))?;
    let ours = hello(plan, nonce).encode();
    stream
        .write_all(&ours)
        .await
        .map_err(|e| Introduction::Retry(e.to_string()))?;
    let reply = next_message(stream).await.map_err(Introduction::Retry)?;
    let theirs = match &reply {
        Handshake::Refusal { reason } => {
            return Err(Introduction::Fatal(format!(
                "refused the connection: {reason}"
            )))
        }
        Handshake::Proof { .. } => {
            return Err(Introduction::Retry("sent a proof before its hello".into()))
        }
        Handshake::Hello { authenticated, .. } if *authenticated != plan.key.is_some() => {
            return Err(Introduction::Fatal(
                auth_mismatch(plan.key.is_some()).to_string(),
            ))
        }
        Handshake::Hello { .. } => reply.encode(),
    };
    if let Some(key) = &plan.key {
        let transcript = [ours, theirs].concat();
        let proof = Handshake::Proof {
            tag: key.tag(Side::Dialer, &transcript),
        };
        stream
            .write_all(&proof.encode())
            .await
            .map_err(|e| Introduction::Retry(e.to_string()))?;
        match next_message(stream).await.map_err(Introduction::Retry)? {
            Handshake::Proof { tag } if key.verify(Side::Acceptor, &transcript, &tag) => {}
            Handshake::Refusal { reason } => {
                return Err(Introduction::Fatal(format!(
                    "refused the connection: {reason}"
                )))
            }
            _ => {
                return Err(Introduction::Fatal(
                    "answered without proving it holds this deployment's key".into(),
                ))
            }
        }
    }
    let Handshake::Hello {
        flow_hash,
        role,
        index,
        incarnation,
        ..
    } = reply
    else {
        unreachable!("only a hello gets this far")
    };
    if flow_hash != plan.flow_hash {
        return Err(Introduction::Fatal(other_build(plan, flow_hash)));
    }
    if role != peer.id.role || index != peer.id.index {
        return Err(Introduction::Fatal(format!(
            "answered as {role}/{index}: the topology files differ between instances"
        )));
    }
    if incarnation < seen.load(Ordering::Relaxed) {
        return Err(Introduction::Retry(format!(
            "answered from incarnation {incarnation}, older than one already met: a process left over from an earlier run"
        )));
    }
    Ok(incarnation)
}

pub(super) enum Greeting {
    /// Peer `.0` (in plan order), in incarnation `.2`.
    Peer(usize, TcpStream, u64),
    /// Not one of ours (or broken): refuse it and keep waiting for the real peer.
    Refused(String),
    /// One of ours (it proved it holds the key), but unusable: stop.
    Fatal(String),
}

/// The accepting side of the handshake. Nothing a connection says before it has
/// proved it holds the key can stop this instance: it is refused and logged.
/// `seen` holds each peer's latest incarnation met so far: a hello from an
/// older one is refused as a connection left over from an earlier run.
pub(super) async fn greet(plan: &LinkPlan, seen: &[AtomicU64], mut stream: TcpStream) -> Greeting {
    let _ = stream.set_nodelay(true);
    let first = match next_message(&mut stream).await {
        Err(reason) => return Greeting::Refused(reason),
        Ok(first) => first,
    };
    let Handshake::Hello {
        flow_hash,
        ref role,
        index,
        authenticated,
        incarnation,
        ..
    } = first
    else {
        return Greeting::Refused("it did not start with a hello".into());
    };
    let name = format!("{role}/{index}");
    if authenticated != plan.key.is_some() {
        let reason = auth_mismatch(plan.key.is_some());
        refuse(&mut stream, reason.to_string()).await;
        return Greeting::Refused(format!("{name}: {reason}"));
    }
    let nonce = match auth::nonce() {
        Ok(nonce) => nonce,
        Err(e) => return Greeting::Fatal(e.to_string()),
    };
    let ours = hello(plan, nonce).encode();
    let mut transcript = Vec::new();
    if let Some(key) = &plan.key {
        if let Err(e) = stream.write_all(&ours).await {
            return Greeting::Refused(e.to_string());
        }
        transcript = [first.encode(), ours.clone()].concat();
        match next_message(&mut stream).await {
            Ok(Handshake::Proof { tag }) if key.verify(Side::Dialer, &transcript, &tag) => {}
            Ok(_) => {
                let reason = "authentication failed: it does not hold this deployment's key";
                refuse(&mut stream, reason.to_string()).await;
                return Greeting::Refused(format!("claims to be {name}, but {reason}"));
            }
            Err(reason) => return Greeting::Refused(format!("{name}: {reason}")),
        }
    }
    // From here on the peer is one of ours (or authentication is off).
    if flow_hash != plan.flow_hash {
        let reason = other_build(plan, flow_hash);
        refuse(&mut stream, reason.clone()).await;
        return Greeting::Fatal(format!("{name}: {reason}"));
    }
    let Some(i) = plan
        .peers
        .iter()
        .position(|p| !p.dial && p.id.role == *role && p.id.index == index)
    else {
        let reason = format!("{name} is not a peer that connects to {}", plan.me);
        refuse(&mut stream, reason.clone()).await;
        return Greeting::Refused(reason);
    };
    let latest = seen[i].load(Ordering::Relaxed);
    if incarnation < latest {
        let reason = format!(
            "stale incarnation: {name} incarnation {incarnation} is older than incarnation {latest}, already met (a connection left over from an earlier run)"
        );
        refuse(&mut stream, reason.clone()).await;
        return Greeting::Refused(reason);
    }
    let last = match &plan.key {
        Some(key) => Handshake::Proof {
            tag: key.tag(Side::Acceptor, &transcript),
        }
        .encode(),
        None => ours,
    };
    if let Err(e) = stream.write_all(&last).await {
        return Greeting::Refused(e.to_string());
    }
    Greeting::Peer(i, stream, incarnation)
}

/// Tells a connecting peer why it is refused (best effort: it may be gone).
pub(super) async fn refuse(stream: &mut TcpStream, reason: String) {
    let _ = stream
        .write_all(&Handshake::Refusal { reason }.encode())
        .await;
}
