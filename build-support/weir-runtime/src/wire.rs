//! What two builds of a flow must agree on to link: the channels between
//! their roles, each known by its direction, its delivery and the shape of
//! its records. Nothing else (closures, operators inside a role, logging)
//! matters on the wire, so builds that differ only there link.
//!
//! A hello lists the channels between the sender's role and the peer's. The
//! other side matches each of its own with one of those: same direction,
//! same delivery, same shape, the first such not matched yet (channels that
//! look alike are matched in the order the flow makes them). Frames carry the
//! sender's channel numbers; the match turns them into the receiver's.
//!
//! A channel that only one build has links only if that build makes it
//! tolerant: records on it to the other build are dropped and counted (as to
//! a peer that is down), and its stream from the other build counts as
//! ended. A fail-stop channel needs both ends, so builds that differ on one
//! refuse each other; so do builds whose channel between the same two roles,
//! the same way, carries records of another shape.

use crate::spec::{ChannelDecl, Delivery};
use serde::{Deserialize, Serialize};
use weir_core::shape::WireShape;

/// A channel as a hello lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireChannel {
    /// The sender's number for it (what its frames carry).
    pub id: u32,
    /// The sending role.
    pub from: String,
    /// The receiving role.
    pub to: String,
    /// How each batch is delivered, by name (`Broadcast`).
    pub delivery: String,
    /// Whether losing a peer on it ends only that peer's part.
    pub tolerant: bool,
    /// For messages: the operator and where the flow makes it, and the type.
    pub made_by: String,
    /// `std::any::type_name` of its records.
    pub record: String,
    /// [`WireShape::encode`], or empty when the shape was not traced.
    pub shape: Vec<u8>,
}

impl WireChannel {
    fn of(decl: &ChannelDecl) -> WireChannel {
        WireChannel {
            id: decl.id,
            from: decl.from.to_string(),
            to: decl.to.to_string(),
            delivery: delivery_name(decl.delivery).to_string(),
            tolerant: decl.tolerant,
            made_by: decl.made_by.to_string(),
            record: decl.record.to_string(),
            shape: decl.shape.to_vec(),
        }
    }

    /// Whether records sent on `self` are read right on `other`.
    fn same_wire(&self, other: &WireChannel) -> bool {
        self.from == other.from
            && self.to == other.to
            && self.delivery == other.delivery
            && if self.shape.is_empty() || other.shape.is_empty() {
                self.shape.is_empty() && other.shape.is_empty() && self.record == other.record
            } else {
                self.shape == other.shape
            }
    }

    /// How `self` and `there` differ, for a refusal; `names` calls each
    /// side (`at leader`, `at sink`).
    fn difference(&self, there: &WireChannel, (a, b): (&str, &str)) -> String {
        if self.delivery != there.delivery {
            return format!("delivered {} {a}, {} {b}", self.delivery, there.delivery);
        }
        let shapes = (
            WireShape::decode(&self.shape),
            WireShape::decode(&there.shape),
        );
        match shapes {
            (Ok(here), Ok(theirs)) => here
                .first_difference(&theirs, (a, b))
                .unwrap_or_else(|| "the shapes differ".to_string()),
            _ => format!("`{}` {a}, `{}` {b}", self.record, there.record),
        }
    }

    fn describe(&self) -> String {
        format!(
            "{} ({} → {}, `{}`)",
            self.made_by, self.from, self.to, self.record
        )
    }
}

fn delivery_name(delivery: Delivery) -> &'static str {
    match delivery {
        Delivery::ToProcess => "to the process",
        Delivery::Broadcast => "to every member",
        Delivery::ToMember => "to the member named",
        Delivery::RoundRobin => "to the members in turn",
    }
}

/// The channels between `role` and `peer_role`, either way, in the order
/// the flow makes them: what a hello to an instance of `peer_role` lists.
pub fn channels_with(channels: &[ChannelDecl], role: &str, peer_role: &str) -> Vec<WireChannel> {
    channels
        .iter()
        .filter(|c| (c.from == role && c.to == peer_role) || (c.from == peer_role && c.to == role))
        .map(WireChannel::of)
        .collect()
}

/// The most a hello's channel list may take: with the rest of the hello and
/// the Noise handshake around it, it fits one handshake message (64 KiB).
pub const MAX_LISTED: usize = 60 * 1024;

/// Checks, before linking, that the channels between `role` and each role it
/// links with fit a hello.
pub fn check_listed(channels: &[ChannelDecl], role: &str, peers: &[&str]) -> Result<(), String> {
    for peer in peers {
        let listed = channels_with(channels, role, peer);
        let size = weir_core::codec::encode_value(&listed)
            .map(|bytes| bytes.len())
            .unwrap_or(usize::MAX);
        if size > MAX_LISTED {
            return Err(format!(
                "the channels between roles `{role}` and `{peer}` take {size} bytes to describe (their records' shapes), more than a hello carries ({MAX_LISTED}): fewer or simpler record types between these roles would fit"
            ));
        }
    }
    Ok(())
}

/// The peer's channel numbers, as this build's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChannelMap {
    /// (theirs, ours)
    pairs: Vec<(u32, u32)>,
    /// Our (tolerant) channels the peer's build does not have.
    lacking: Vec<u32>,
}

impl ChannelMap {
    /// Whether the peer's build lacks our channel `ours`: nothing is sent to
    /// it there, and it sends nothing there.
    pub fn lacks(&self, ours: u32) -> bool {
        self.lacking.contains(&ours)
    }

    /// Our channels the peer's build lacks.
    pub fn lacking(&self) -> &[u32] {
        &self.lacking
    }

    /// This build's number for the peer's channel `theirs`.
    pub fn ours(&self, theirs: u32) -> Option<u32> {
        self.pairs
            .iter()
            .find(|&&(t, _)| t == theirs)
            .map(|&(_, ours)| ours)
    }
}

/// Matches the channels of this build (`ours`, between our role and the
/// peer's) with those the peer's hello listed. Any channel left without a
/// match on either side means the builds cannot link: the error names each
/// such channel and, for a channel whose records changed, the first
/// difference, with each side named by `(me, peer)` (`leader`, `sink`), so
/// that both sides' messages read alike.
pub fn match_channels(
    ours: &[WireChannel],
    theirs: &[WireChannel],
    (me, peer): (&str, &str),
) -> Result<ChannelMap, String> {
    let mut pairs = Vec::new();
    let mut taken = vec![false; theirs.len()];
    let mut unmatched = Vec::new();
    for mine in ours {
        let found = theirs
            .iter()
            .enumerate()
            .find(|(i, t)| !taken[*i] && mine.same_wire(t));
        match found {
            Some((i, t)) => {
                taken[i] = true;
                pairs.push((t.id, mine.id));
            }
            None => unmatched.push(mine),
        }
    }
    let mut left: Vec<&WireChannel> = theirs
        .iter()
        .zip(&taken)
        .filter(|(_, taken)| !**taken)
        .map(|(t, _)| t)
        .collect();
    // One of ours and one of theirs between the same roles, the same way,
    // are the same channel changed; a channel on one side only may be
    // missed if that side tolerates losing its other end.
    let mut problems = Vec::new();
    let mut lacking = Vec::new();
    for mine in unmatched {
        let counterpart = left
            .iter()
            .position(|t| t.from == mine.from && t.to == mine.to);
        match counterpart {
            Some(i) => {
                let there = left.remove(i);
                let names = (format!("at {me}"), format!("at {peer}"));
                problems.push(format!(
                    "channel {} carries records of another shape at {peer}: {}",
                    mine.describe(),
                    mine.difference(there, (&names.0, &names.1))
                ));
            }
            None if mine.tolerant => lacking.push(mine.id),
            None => problems.push(format!(
                "channel {} is not in the build of {peer} (it is fail-stop: both ends must have it)",
                mine.describe()
            )),
        }
    }
    for there in left.into_iter().filter(|t| !t.tolerant) {
        problems.push(format!(
            "the build of {peer} has a channel {} that the build of {me} lacks (it is fail-stop: both ends must have it)",
            there.describe()
        ));
    }
    if problems.is_empty() {
        Ok(ChannelMap { pairs, lacking })
    } else {
        Err(problems.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAMES: (&str, &str) = ("leader", "sink");

    fn channel(id: u32, record: &str, shape: &[u8]) -> WireChannel {
        WireChannel {
            id,
            from: "leader".into(),
            to: "sink".into(),
            delivery: "to the process".into(),
            tolerant: false,
            made_by: format!("send_bincode at flow/src/lib.rs:{id}:5"),
            record: record.into(),
            shape: shape.to_vec(),
        }
    }

    #[test]
    fn channels_that_look_alike_match_in_order_whatever_their_numbers() {
        let ours = [
            channel(3, "u64", b"a"),
            channel(7, "u64", b"a"),
            channel(9, "Rec", b"r"),
        ];
        let theirs = [
            channel(4, "Rec", b"r"),
            channel(5, "u64", b"a"),
            channel(8, "u64", b"a"),
        ];
        let map = match_channels(&ours, &theirs, NAMES).unwrap();
        assert_eq!(map.ours(5), Some(3));
        assert_eq!(map.ours(8), Some(7));
        assert_eq!(map.ours(4), Some(9));
        assert_eq!(map.ours(3), None);
    }

    #[test]
    fn a_channel_on_one_side_only_is_named() {
        let ours = [channel(3, "u64", b"a"), channel(7, "String", b"s")];
        let theirs = [channel(3, "u64", b"a")];
        let err = match_channels(&ours, &theirs, NAMES).unwrap_err();
        assert!(
            err.contains("lib.rs:7:5") && err.contains("not in the build of sink"),
            "{err}"
        );
        let err = match_channels(&theirs, &ours, NAMES).unwrap_err();
        assert!(err.contains("the build of leader lacks"), "{err}");
    }

    #[test]
    fn a_tolerant_channel_on_one_side_only_links_and_is_marked_lacking() {
        let mut extra = channel(7, "String", b"s");
        extra.tolerant = true;
        let ours = [channel(3, "u64", b"a"), extra.clone()];
        let theirs = [channel(3, "u64", b"a")];
        let map = match_channels(&ours, &theirs, NAMES).unwrap();
        assert!(map.lacks(7) && !map.lacks(3));
        let map = match_channels(&theirs, &ours, NAMES).unwrap();
        assert!(map.lacking().is_empty());
        assert_eq!(map.ours(7), None, "the peer sends nothing there");
    }

    #[test]
    fn untraced_channels_match_on_their_type_name() {
        let ours = [channel(1, "a::Rec", b"")];
        assert!(match_channels(&ours, &[channel(2, "a::Rec", b"")], NAMES).is_ok());
        let err = match_channels(&ours, &[channel(2, "b::Rec", b"")], NAMES).unwrap_err();
        assert!(
            err.contains("`a::Rec` at leader, `b::Rec` at sink"),
            "{err}"
        );
    }
}
