//! Who may link: each side says who it is (a hello with the flow, its role
//! and index, its incarnation, and the channels between the two roles as its
//! build makes them), inside the protected handshake of
//! `secure` (or in clear with `--insecure-no-auth`), and each checks the
//! other's. Nothing a connection says before it has shown it holds the key
//! can stop the accepting instance.

use super::{LinkPlan, Met, PeerPlan, PeerReader, PeerWriter};
use crate::auth::Key;
use crate::frame::Handshake;
use crate::secure::{self, DialError, OpenError, Opened, Sealed};
use crate::wire::{channels_with, match_channels, WireChannel};
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// A link's two halves, as the node uses them.
pub(super) type Halves = (PeerReader, PeerWriter);

/// Our hello to an instance of `peer_role`.
fn hello(plan: &LinkPlan, peer_role: &str) -> Handshake {
    Handshake::Hello {
        flow: plan.flow.to_string(),
        role: plan.me.role.clone(),
        index: plan.me.index,
        incarnation: plan.incarnation,
        channels: channels_with(plan.channels, &plan.me.role, peer_role),
    }
}

/// Whether peer `name` (of `role`), which says it runs flow `flow` with
/// `channels`, can link with us: how its channel numbers map to ours, or why not.
fn same_wire(
    plan: &LinkPlan,
    flow: &str,
    (role, name): (&str, &str),
    channels: &[WireChannel],
) -> Result<crate::wire::ChannelMap, String> {
    if flow != plan.flow {
        return Err(format!(
            "it runs flow `{flow}`, not `{}`: the topology files name other instances",
            plan.flow
        ));
    }
    let ours = channels_with(plan.channels, &plan.me.role, role);
    match_channels(&ours, channels, (&plan.me_name, name)).map_err(|why| {
        format!(
            "it runs a build of flow `{flow}` whose records do not match this one's: {why}. Deploy builds that agree on every channel between two roles (docs/DEPLOYMENT.md, \"Upgrades\")"
        )
    })
}

fn boxed((reader, writer): Sealed) -> Halves {
    (Box::new(reader), Box::new(writer))
}

fn in_clear(stream: TcpStream) -> Halves {
    let (reader, writer) = stream.into_split();
    (Box::new(reader), Box::new(writer))
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
    /// A tolerated peer and we cannot link now (its build's channels do not
    /// match ours, or it refused us): no link, but no failure either: it may
    /// be replaced by one that can (an upgrade rolled back, say).
    Declined(String),
    /// The peer refused before it could know us: it holds another key (or
    /// none). The next key, if there is one, may do.
    WrongKey(String),
    Fatal(String),
}

impl Introduction {
    /// A reason not to link with `peer` now: the end of this instance only if
    /// it cannot go on without the peer.
    fn refused_by(peer: &PeerPlan, reason: String) -> Introduction {
        if peer.tolerated {
            Introduction::Declined(reason)
        } else {
            Introduction::Fatal(reason)
        }
    }

    fn reason(&self) -> &str {
        match self {
            Introduction::Retry(reason)
            | Introduction::Declined(reason)
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
) -> Result<Met, Introduction> {
    let (flow, role, index, incarnation, channels) = match answer {
        Handshake::Hello {
            flow,
            role,
            index,
            incarnation,
            channels,
        } => (flow, role, *index, *incarnation, channels),
        Handshake::Refusal { reason } => {
            let refused = format!("refused the connection: {reason}");
            return Err(Introduction::refused_by(peer, refused));
        }
        other => {
            return Err(Introduction::Retry(format!(
                "answered with {} instead of its hello",
                other.kind()
            )))
        }
    };
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
    let channels = same_wire(plan, flow, (role, &peer.name), channels)
        .map_err(|why| Introduction::refused_by(peer, why))?;
    Ok(Met {
        incarnation,
        channels,
    })
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
) -> Result<(Met, Halves), Introduction> {
    let _ = stream.set_nodelay(true);
    let Some(key) = key else {
        return introduce_in_clear(plan, peer, seen, stream).await;
    };
    let dialed = match secure::dial(stream, key, &hello(plan, &peer.id.role)).await {
        Ok(dialed) => dialed,
        Err(e @ DialError::RefusedInClear(_)) => return Err(Introduction::WrongKey(e.to_string())),
        Err(e @ DialError::Broken(_)) => return Err(Introduction::Retry(e.to_string())),
    };
    match check_answer(plan, peer, seen, &dialed.answer) {
        Ok(met) => match dialed.confirm().await {
            Ok(sealed) => Ok((met, boxed(sealed))),
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
) -> Result<(Met, Halves), Introduction> {
    stream
        .write_all(&hello(plan, &peer.id.role).encode())
        .await
        .map_err(|e| Introduction::Retry(e.to_string()))?;
    let answer = match next_message(&mut stream)
        .await
        .map_err(Introduction::Retry)?
    {
        Handshake::Noise { .. } => return Err(Introduction::Fatal(auth_mismatch(false).into())),
        answer => answer,
    };
    let met = check_answer(plan, peer, seen, &answer)?;
    Ok((met, in_clear(stream)))
}

pub(super) enum Greeting {
    /// Peer `.0` (in plan order), and what its hello said.
    Peer(usize, Halves, Met),
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
) -> Result<(usize, Met), (String, bool)> {
    let Handshake::Hello {
        flow,
        role,
        index,
        incarnation,
        channels,
    } = hello
    else {
        return Err((
            format!("it began with {} instead of a hello", hello.kind()),
            false,
        ));
    };
    let name = format!("{role}/{index}");
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
    let name = &plan.peers[i].name;
    let latest = seen[i].load(Ordering::Relaxed);
    if *incarnation < latest {
        return Err((format!(
            "stale incarnation: {name} incarnation {incarnation} is older than incarnation {latest}, already met (a connection left over from an earlier run)"
        ), false));
    }
    // Fatal only where we cannot go on without the peer.
    let tolerated = plan.peers[i].tolerated;
    let channels = same_wire(plan, flow, (role, name), channels)
        .map_err(|why| (format!("{name}: {why}"), !tolerated))?;
    Ok((
        i,
        Met {
            incarnation: *incarnation,
            channels,
        },
    ))
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
            let (i, met) = match check_hello(plan, seen, &opened.hello) {
                Ok(found) => found,
                Err((reason, fatal)) => {
                    opened.refuse(reason.clone(), stream).await;
                    return refusal((reason, fatal));
                }
            };
            let answer = hello(plan, &plan.peers[i].id.role);
            match opened.welcome(&answer, stream).await {
                Ok(sealed) => Greeting::Peer(i, boxed(sealed), met),
                Err(reason) => Greeting::Refused(format!("{}: {reason}", plan.peers[i].name)),
            }
        }
        (hello_in_clear @ Handshake::Hello { .. }, None) => {
            match check_hello(plan, seen, &hello_in_clear) {
                Ok((i, met)) => {
                    let answer = hello(plan, &plan.peers[i].id.role);
                    if let Err(e) = stream.write_all(&answer.encode()).await {
                        return Greeting::Refused(e.to_string());
                    }
                    Greeting::Peer(i, in_clear(stream), met)
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
