//! Who may link: each side says who it is (a hello with the flow hash, its
//! role and index, and its incarnation), inside the protected handshake of
//! `secure` (or in clear with `--insecure-no-auth`), and each checks the
//! other's. Nothing a connection says before it has shown it holds the key
//! can stop the accepting instance.

use super::{LinkPlan, PeerPlan, PeerReader, PeerWriter};
use crate::auth::Key;
use crate::frame::Handshake;
use crate::secure::{self, DialError, OpenError, Opened, Sealed};
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// A link's two halves, as the node uses them.
pub(super) type Halves = (PeerReader, PeerWriter);

fn hello(plan: &LinkPlan) -> Handshake {
    Handshake::Hello {
        flow_hash: plan.flow_hash,
        role: plan.me.role.clone(),
        index: plan.me.index,
        incarnation: plan.incarnation,
    }
}

fn boxed((reader, writer): Sealed) -> Halves {
    (Box::new(reader), Box::new(writer))
}

fn in_clear(stream: TcpStream) -> Halves {
    let (reader, writer) = stream.into_split();
    (Box::new(reader), Box::new(writer))
}

pub(super) fn other_build(plan: &LinkPlan, theirs: u64) -> String {
    format!(
        "it runs a different build of flow `{}` (flow hash {theirs:016x}, ours {:016x}): rebuild and redeploy all roles together",
        plan.flow, plan.flow_hash
    )
}

/// Why two instances disagree about protection, from `ours`' point of view.
fn auth_mismatch(ours: bool) -> &'static str {
    if ours {
        "it runs without authentication (--insecure-no-auth) while this instance requires the deployment key"
    } else {
        "it authenticates with a deployment key while this instance runs with --insecure-no-auth: give every instance the same key"
    }
}

pub(super) enum Introduction {
    Retry(String),
    /// The peer refused before it could know us: it holds another key (or
    /// none). The next key, if there is one, may do.
    WrongKey(String),
    Fatal(String),
}

impl Introduction {
    fn reason(&self) -> &str {
        match self {
            Introduction::Retry(reason)
            | Introduction::WrongKey(reason)
            | Introduction::Fatal(reason) => reason,
        }
    }
}

/// Reads the next handshake message, or says why there is none.
async fn next_message(stream: &mut TcpStream) -> Result<Handshake, String> {
    Handshake::read(stream).await.map_err(|e| e.to_string())
}

/// Checks the hello a peer we dialed answered with. `seen` is the latest
/// incarnation of the peer met so far: an older one is a process left over
/// from an earlier run.
fn check_answer(
    plan: &LinkPlan,
    peer: &PeerPlan,
    seen: &AtomicU64,
    answer: &Handshake,
) -> Result<u64, Introduction> {
    let (flow_hash, role, index, incarnation) = match *answer {
        Handshake::Hello {
            flow_hash,
            ref role,
            index,
            incarnation,
        } => (flow_hash, role, index, incarnation),
        Handshake::Refusal { ref reason } => {
            return Err(Introduction::Fatal(format!(
                "refused the connection: {reason}"
            )))
        }
        ref other => {
            return Err(Introduction::Retry(format!(
                "answered with {} instead of its hello",
                other.kind()
            )))
        }
    };
    if flow_hash != plan.flow_hash {
        return Err(Introduction::Fatal(other_build(plan, flow_hash)));
    }
    if *role != peer.id.role || index != peer.id.index {
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

/// The dialing side: our hello under `key` (in clear without one), the
/// peer's answer, then our word that we take the link. Returns the peer's
/// incarnation and the link.
pub(super) async fn introduce(
    plan: &LinkPlan,
    peer: &PeerPlan,
    seen: &AtomicU64,
    key: Option<&Key>,
    stream: TcpStream,
) -> Result<(u64, Halves), Introduction> {
    let _ = stream.set_nodelay(true);
    let Some(key) = key else {
        return introduce_in_clear(plan, peer, seen, stream).await;
    };
    let dialed = match secure::dial(stream, key, &hello(plan)).await {
        Ok(dialed) => dialed,
        Err(e @ DialError::RefusedInClear(_)) => return Err(Introduction::WrongKey(e.to_string())),
        Err(e @ DialError::Broken(_)) => return Err(Introduction::Retry(e.to_string())),
    };
    match check_answer(plan, peer, seen, &dialed.answer) {
        Ok(incarnation) => match dialed.confirm().await {
            Ok(sealed) => Ok((incarnation, boxed(sealed))),
            Err(e) => Err(Introduction::Retry(e.to_string())),
        },
        Err(refused) => {
            // A peer that refused us needs no answer; any other hears why.
            if !matches!(dialed.answer, Handshake::Refusal { .. }) {
                dialed.refuse(refused.reason().to_string()).await;
            }
            Err(refused)
        }
    }
}

async fn introduce_in_clear(
    plan: &LinkPlan,
    peer: &PeerPlan,
    seen: &AtomicU64,
    mut stream: TcpStream,
) -> Result<(u64, Halves), Introduction> {
    stream
        .write_all(&hello(plan).encode())
        .await
        .map_err(|e| Introduction::Retry(e.to_string()))?;
    let answer = match next_message(&mut stream)
        .await
        .map_err(Introduction::Retry)?
    {
        Handshake::Noise { .. } => return Err(Introduction::Fatal(auth_mismatch(false).into())),
        answer => answer,
    };
    let incarnation = check_answer(plan, peer, seen, &answer)?;
    Ok((incarnation, in_clear(stream)))
}

pub(super) enum Greeting {
    /// Peer `.0` (in plan order), in incarnation `.2`.
    Peer(usize, Halves, u64),
    /// Not one of ours (or broken): refuse it and keep waiting for the real peer.
    Refused(String),
    /// One of ours (it showed it holds the key), but unusable: stop.
    Fatal(String),
}

/// What the acceptor makes of a hello from a peer that holds the key (or
/// of any hello, without protection): the peer's position, or a refusal
/// (fatal when the peer is one of ours that can never link with us).
fn check_hello(
    plan: &LinkPlan,
    seen: &[AtomicU64],
    hello: &Handshake,
) -> Result<(usize, u64), (String, bool)> {
    let Handshake::Hello {
        flow_hash,
        role,
        index,
        incarnation,
    } = hello
    else {
        return Err((
            format!("it began with {} instead of a hello", hello.kind()),
            false,
        ));
    };
    let name = format!("{role}/{index}");
    if *flow_hash != plan.flow_hash {
        return Err((format!("{name}: {}", other_build(plan, *flow_hash)), true));
    }
    let Some(i) = plan
        .peers
        .iter()
        .position(|p| !p.dial && p.id.role == *role && p.id.index == *index)
    else {
        return Err((
            format!("{name} is not a peer that connects to {}", plan.me),
            false,
        ));
    };
    let latest = seen[i].load(Ordering::Relaxed);
    if *incarnation < latest {
        return Err((format!(
            "stale incarnation: {name} incarnation {incarnation} is older than incarnation {latest}, already met (a connection left over from an earlier run)"
        ), false));
    }
    Ok((i, *incarnation))
}

/// A refusal the acceptor logs: fatal when the peer is one of ours that can
/// never link with us.
fn refusal((reason, fatal): (String, bool)) -> Greeting {
    if fatal {
        Greeting::Fatal(reason)
    } else {
        Greeting::Refused(reason)
    }
}

/// The accepting side. Nothing a connection says before it has shown it holds
/// the key can stop this instance: it is refused and logged. `seen` holds
/// each peer's latest incarnation met so far: a hello from an older one is
/// refused as a connection left over from an earlier run.
pub(super) async fn greet(plan: &LinkPlan, seen: &[AtomicU64], mut stream: TcpStream) -> Greeting {
    let _ = stream.set_nodelay(true);
    let first = match next_message(&mut stream).await {
        Err(reason) => return Greeting::Refused(reason),
        Ok(first) => first,
    };
    match (first, &plan.keys) {
        (Handshake::Noise { message }, Some(keys)) => {
            let opened = match Opened::open(keys, &message) {
                Ok(opened) => opened,
                Err(OpenError::NoKey) => {
                    let reason = "authentication failed: it does not hold this deployment's key";
                    refuse(&mut stream, reason.to_string()).await;
                    return Greeting::Refused(reason.to_string());
                }
                Err(OpenError::Malformed(e)) => {
                    return Greeting::Refused(format!("its sealed hello: {e}"))
                }
            };
            let (i, incarnation) = match check_hello(plan, seen, &opened.hello) {
                Ok(found) => found,
                Err((reason, fatal)) => {
                    opened.refuse(reason.clone(), stream).await;
                    return refusal((reason, fatal));
                }
            };
            match opened.welcome(&hello(plan), stream).await {
                Ok(sealed) => Greeting::Peer(i, boxed(sealed), incarnation),
                Err(reason) => Greeting::Refused(format!("{}: {reason}", plan.peers[i].name)),
            }
        }
        (hello_in_clear @ Handshake::Hello { .. }, None) => {
            match check_hello(plan, seen, &hello_in_clear) {
                Ok((i, incarnation)) => {
                    if let Err(e) = stream.write_all(&hello(plan).encode()).await {
                        return Greeting::Refused(e.to_string());
                    }
                    Greeting::Peer(i, in_clear(stream), incarnation)
                }
                Err((reason, fatal)) => {
                    refuse(&mut stream, reason.clone()).await;
                    refusal((reason, fatal))
                }
            }
        }
        (Handshake::Hello { role, index, .. }, Some(_)) => {
            let reason = auth_mismatch(true);
            refuse(&mut stream, reason.to_string()).await;
            Greeting::Refused(format!("{role}/{index}: {reason}"))
        }
        (Handshake::Noise { .. }, None) => {
            let reason = auth_mismatch(false);
            refuse(&mut stream, reason.to_string()).await;
            Greeting::Refused(reason.to_string())
        }
        (other, _) => {
            Greeting::Refused(format!("it began with {} instead of a hello", other.kind()))
        }
    }
}

/// Tells a connecting peer in clear why it is refused (best effort: it may
/// be gone). Only for what is said before the peer could be known.
pub(super) async fn refuse(stream: &mut TcpStream, reason: String) {
    let _ = stream
        .write_all(&Handshake::Refusal { reason }.encode())
        .await;
}
