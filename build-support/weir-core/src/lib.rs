//! What both sides of Weir need: the flow crate at build time and the role
//! binaries at run time. Kept free of tokio, so build scripts stay light.

#![warn(missing_docs)]

pub mod cluster;
pub mod codec;
pub mod encoded;
pub mod external;
pub mod room;
pub mod shape;

pub use cluster::{ClusterId, Membership};
pub use encoded::{Encoded, EncodedVec};
pub use external::{BadInput, ClientCodec, ClientEvent, ConnectionId};
pub use room::TickRoom;

/// The items above, which both `weir` (for flow code) and `weir-runtime` (for
/// generated code) re-export at their roots: quoted code that names
/// `weir::ClusterId` is generated as `::weir_runtime::ClusterId`.
pub const SHARED_ITEMS: &[&str] = &[
    "BadInput",
    "ClientCodec",
    "ClientEvent",
    "ClusterId",
    "ConnectionId",
    "Membership",
    // A module: `weir::durable::Log` is `weir_runtime::durable::Log`.
    "durable",
];

/// Those of [`SHARED_ITEMS`] that are traits: a flow module that imports
/// them (`use weir::*`) may call their methods in quoted code.
pub const SHARED_TRAITS: &[&str] = &["ClientCodec"];
