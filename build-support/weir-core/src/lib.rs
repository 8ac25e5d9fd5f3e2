//! What both sides of Weir need: the flow crate at build time and the role
//! binaries at run time. Kept free of tokio, so build scripts stay light.

pub mod cluster;
pub mod codec;
pub mod external;

pub use cluster::{ClusterId, Membership};
pub use external::{BadInput, ClientCodec, ClientEvent, ConnectionId};
