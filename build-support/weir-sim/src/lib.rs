//! Deterministic simulation: every instance of a flow in one process, the
//! real generated role programs on a simulated network, with virtual time.
//!
//! A seed decides everything that varies between runs: each write's delay,
//! which pairs of instances are held apart (partitions that heal) and when,
//! which instances crash and when they come back. The same seed gives the
//! same run, so a failing seed is a bug that can be replayed.
//!
//! The build helper writes the programs (`weir_build::Roles::compile_simulation`);
//! a test hands one flow's to [`Sim`]:
//!
//! ```ignore
//! weir_sim::Sim::new(&simulation::two_pc::FLOW)
//!     .instances("participant", 3)
//!     .seeds(0..2000)
//!     .delays(0..10)
//!     .check(|run| assert_eq!(run.lines_of("coordinator").len(), 100));
//! ```
//!
//! Clients of a flow's external endpoints are scripts of the test
//! ([`Sim::client`]), connecting through the same simulated network.
//!
//! Two builds of a flow can run side by side ([`Sim::upgrade_to`]): links
//! between them are matched as the role binaries match them at their
//! handshake.
//!
//! What is not simulated: TCP itself, the handshake's messages and
//! authentication (the links start after them), and sources that read files
//! or standard input. The end-to-end and fuzz tests cover those.

#![warn(missing_docs)]

mod client;
mod faults;
mod network;
mod observe;
mod outcome;
mod rng;
mod run;
mod sim;

pub use client::{Client, Connection};
pub use faults::Faults;
pub use observe::print_line;
pub use outcome::{Line, Outcome, Run};
pub use sim::{Failure, Sim};

use std::future::Future;
use std::pin::Pin;
use weir_runtime::{Node, RoleSpec};

/// A role program running on its node.
pub type Running = Pin<Box<dyn Future<Output = weir_runtime::Result<()>>>>;

/// One role's generated program.
pub struct Program {
    /// Its role, and the channels it may use.
    pub spec: &'static RoleSpec,
    /// Runs the role's dataflow on a node.
    pub start: fn(Node) -> Running,
}

/// Every role program of one flow.
pub struct Flow {
    /// The flow's name.
    pub name: &'static str,
    /// A program per role.
    pub roles: &'static [Program],
    /// Where the flow accepts nondeterminism (`assume_ordering(nondet!(..))
    /// at file:line`): none, and its outputs must be the same on every seed
    /// (see [`Sim::check_determinism`]).
    pub nondet: &'static [&'static str],
}

impl std::fmt::Debug for Flow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "flow `{}`", self.name)
    }
}

/// One flow's programs are one value: the same flow is the same `Flow`.
impl PartialEq for Flow {
    fn eq(&self, other: &Flow) -> bool {
        std::ptr::eq(self, other)
    }
}
