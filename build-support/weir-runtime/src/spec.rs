//! What a generated program declares about itself: its flow, its role, and the
//! channels between roles. The runtime checks topologies and peers against it.

use std::fmt;

/// How many instances a role has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoleKind {
    /// Exactly one instance.
    Process,
    /// Members `0..n`, `n` from the topology.
    Cluster,
}

/// A role of the flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoleDecl {
    /// The role's name, as the topology lists it.
    pub name: &'static str,
    /// One instance or many.
    pub kind: RoleKind,
}

/// How a channel delivers each batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// To the single instance of a process.
    ToProcess,
    /// To every member of a cluster.
    Broadcast,
    /// Each record to the cluster member it names.
    ToMember,
    /// Records to the members of a cluster in turn.
    RoundRobin,
}

/// A network edge of the flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelDecl {
    /// Its number in frames.
    pub id: u32,
    /// The sending role.
    pub from: &'static str,
    /// The receiving role.
    pub to: &'static str,
    /// How each batch is delivered.
    pub delivery: Delivery,
    /// Whether losing a peer on this edge ends only that peer's part of it
    /// (else the instance fails).
    pub tolerant: bool,
    /// The operator that made it and where, for messages:
    /// `send_bincode at flow/src/lib.rs:12:10`.
    pub made_by: &'static str,
    /// `std::any::type_name` of its records.
    pub record: &'static str,
    /// The records' serde shape ([`weir_core::shape::WireShape::encode`]);
    /// empty when it could not be traced (the type's name stands for it).
    pub shape: &'static [u8],
}

/// An endpoint where external clients connect to the instances of `role`;
/// the topology lists its addresses under `name`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExternalDecl {
    /// The role whose instances listen.
    pub role: &'static str,
    /// The endpoint's name in the topology.
    pub name: &'static str,
}

/// Everything a role program knows about the flow it belongs to.
#[derive(Debug)]
pub struct RoleSpec {
    /// The flow's name.
    pub flow: &'static str,
    /// This program's role.
    pub role: &'static str,
    /// Hash of the flow's IR: peers from another build are refused.
    pub flow_hash: u64,
    /// Every role of the flow.
    pub roles: &'static [RoleDecl],
    /// Every channel of the flow.
    pub channels: &'static [ChannelDecl],
    /// Every role's external endpoints.
    pub externals: &'static [ExternalDecl],
}

impl RoleSpec {
    /// Role `name` of the flow, if it has one.
    pub fn role_decl(&self, name: &str) -> Option<&RoleDecl> {
        self.roles.iter().find(|r| r.name == name)
    }

    /// Whether this program's own role is a process or a cluster.
    pub fn kind(&self) -> RoleKind {
        self.role_decl(self.role)
            .map_or(RoleKind::Process, |r| r.kind)
    }

    /// Whether this role goes on without an instance of `role`: every edge
    /// between the two, in either direction, is tolerant.
    pub fn tolerates(&self, role: &str) -> bool {
        self.channels
            .iter()
            .filter(|c| {
                (c.from == self.role && c.to == role) || (c.to == self.role && c.from == role)
            })
            .all(|c| c.tolerant)
    }

    /// Roles this role exchanges records with, in either direction.
    pub fn linked_roles(&self) -> Vec<&'static str> {
        let mut roles: Vec<&'static str> = Vec::new();
        for c in self.channels {
            let other = if c.from == self.role {
                c.to
            } else if c.to == self.role {
                c.from
            } else {
                continue;
            };
            if !roles.contains(&other) {
                roles.push(other);
            }
        }
        roles
    }
}

/// One running instance: a role and, for clusters, a member index.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct InstanceId {
    /// Its role.
    pub role: String,
    /// Its member index (0 for a process).
    pub index: u32,
}

impl InstanceId {
    /// `worker/1`, or `leader` for a process.
    pub fn display(&self, kind: RoleKind) -> String {
        match kind {
            RoleKind::Process => self.role.clone(),
            RoleKind::Cluster => format!("{}/{}", self.role, self.index),
        }
    }
}

impl fmt::Display for InstanceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.role, self.index)
    }
}
