//! Naming the members of a cluster.

use serde::{Deserialize, Serialize};
use std::fmt;

/// One member of a cluster: its index in the topology's address list.
///
/// Records sent from a cluster arrive tagged with the sender's id; records sent to
/// a cluster with `send_bincode` name the member they go to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ClusterId(pub u32);

impl ClusterId {
    /// The member's position in the cluster, as a `usize`.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

impl fmt::Display for ClusterId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// What a membership stream says of a cluster member: its link with the
/// instance watching came up, or went down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Membership {
    /// Linked (at start, when it came up late, or when it rejoined).
    Joined,
    /// Lost: it said it is stopping (it only drains from then on), died,
    /// went silent, or its connection broke.
    Left,
}

impl fmt::Display for Membership {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Membership::Joined => "joined",
            Membership::Left => "left",
        })
    }
}
