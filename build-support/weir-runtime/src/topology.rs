//! The topology file: which address each instance of each role listens on.
//!
//! ```toml
//! [leader]
//! addresses = ["127.0.0.1:17000"]
//! [worker]
//! addresses = ["127.0.0.1:17001", "127.0.0.1:17002"]
//! ```
//! A cluster's size is the length of its list; a process has exactly one address.
//! A role with an endpoint for external clients lists one client address per
//! instance under the endpoint's name (`clients = ["127.0.0.1:6380", ...]`).

use crate::error::{Error, Result};
use crate::spec::{InstanceId, RoleKind, RoleSpec};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// Role name → its instances' addresses.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Topology {
    /// Each role's table in the file.
    pub roles: BTreeMap<String, RoleAddresses>,
}

/// One role's table: where its instances listen for peers, and its endpoints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleAddresses {
    /// Each instance's address for its peers, in index order.
    pub addresses: Vec<String>,
    /// Endpoint name → each instance's address for its clients. Any other key
    /// lands here too, and [`Topology::check`] names it.
    #[serde(flatten)]
    pub endpoints: BTreeMap<String, Vec<String>>,
}

impl Topology {
    /// Adds (or replaces) a role's addresses.
    pub fn set(&mut self, role: &str, addresses: Vec<String>) -> &mut Self {
        let endpoints = BTreeMap::new();
        self.roles.insert(
            role.to_string(),
            RoleAddresses {
                addresses,
                endpoints,
            },
        );
        self
    }

    /// Sets the client addresses of `role`'s endpoint `name` (the role must
    /// have been [`set`](Topology::set)).
    pub fn set_endpoint(&mut self, role: &str, name: &str, addresses: Vec<String>) -> &mut Self {
        if let Some(r) = self.roles.get_mut(role) {
            r.endpoints.insert(name.to_string(), addresses);
        }
        self
    }

    /// The file's text.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("a topology always serialises")
    }

    /// A topology from its text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Self> {
        toml::from_str(text)
            .map_err(|e| Error::new(format!("topology file {origin} is not valid: {e}")))
    }

    /// The topology file at `path`.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::new(format!("cannot read topology file {}: {e}", path.display()))
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Checks the topology against the flow: every role present with a valid
    /// number of addresses, no unknown role, and `index` in range for this role.
    pub fn check(&self, spec: &RoleSpec, index: Option<u32>, origin: &str) -> Result<InstanceId> {
        let known: Vec<&str> = spec.roles.iter().map(|r| r.name).collect();
        for name in self.roles.keys() {
            if !known.contains(&name.as_str()) {
                return Err(Error::new(format!(
                    "topology file {origin} lists role `{name}`, which flow `{}` does not have (its roles: {})",
                    spec.flow,
                    known.join(", ")
                )));
            }
        }
        for role in spec.roles {
            let entry = self.roles.get(role.name).ok_or_else(|| {
                Error::new(format!(
                    "role `{}` is missing from topology file {origin}",
                    role.name
                ))
            })?;
            let addresses = &entry.addresses;
            check_endpoints(spec, role.name, entry, origin)?;
            match role.kind {
                RoleKind::Process if addresses.len() != 1 => {
                    return Err(Error::new(format!(
                        "role `{}` is a process and needs exactly one address in topology file {origin}, not {}",
                        role.name,
                        addresses.len()
                    )))
                }
                RoleKind::Cluster if addresses.is_empty() => {
                    return Err(Error::new(format!(
                        "role `{}` is a cluster and needs at least one address in topology file {origin}",
                        role.name
                    )))
                }
                _ => {}
            }
        }
        let me = spec
            .role_decl(spec.role)
            .expect("a spec declares its own role");
        let members = self.addresses(spec.role).len();
        let index = match (me.kind, index) {
            (RoleKind::Process, None | Some(0)) => 0,
            (RoleKind::Process, Some(i)) => {
                return Err(Error::new(format!("--index {i} given, but role `{}` is a process (one instance, index 0)", spec.role)))
            }
            (RoleKind::Cluster, None) => {
                return Err(Error::new(format!(
                    "role `{}` is a cluster of {members} in topology file {origin}: say which member this is with --index (0..{members})",
                    spec.role
                )))
            }
            (RoleKind::Cluster, Some(i)) if i as usize >= members => {
                return Err(Error::new(format!(
                    "--index {i} is out of range: role `{}` has {members} member(s) in topology file {origin} (0..{members})",
                    spec.role
                )))
            }
            (RoleKind::Cluster, Some(i)) => i,
        };
        Ok(InstanceId {
            role: spec.role.to_string(),
            index,
        })
    }

    /// The client addresses of `role`'s endpoint `name` (empty if absent).
    pub fn endpoint(&self, role: &str, name: &str) -> &[String] {
        self.roles
            .get(role)
            .and_then(|r| r.endpoints.get(name))
            .map_or(&[], |a| a)
    }

    /// The addresses of `role` (empty if absent).
    pub fn addresses(&self, role: &str) -> &[String] {
        self.roles.get(role).map_or(&[], |r| &r.addresses)
    }
}

/// Every endpoint of `role` listed with one address per instance, and no
/// other key.
fn check_endpoints(spec: &RoleSpec, role: &str, entry: &RoleAddresses, origin: &str) -> Result<()> {
    let declared: Vec<&str> = spec
        .externals
        .iter()
        .filter(|e| e.role == role)
        .map(|e| e.name)
        .collect();
    for key in entry.endpoints.keys() {
        if !declared.contains(&key.as_str()) {
            let expected = if declared.is_empty() {
                "it has no endpoint for external clients".to_string()
            } else {
                format!("its endpoints: {}", declared.join(", "))
            };
            return Err(Error::new(format!(
                "topology file {origin} lists `{key}` for role `{role}`, which is neither `addresses` nor an endpoint of the role ({expected})"
            )));
        }
    }
    for name in declared {
        let listed = entry.endpoints.get(name).map_or(0, Vec::len);
        if listed != entry.addresses.len() {
            return Err(Error::new(format!(
                "role `{role}` has {} instance(s) but {listed} address(es) for its clients under `{name}` in topology file {origin}: list one per instance, in the same order",
                entry.addresses.len()
            )));
        }
    }
    Ok(())
}
