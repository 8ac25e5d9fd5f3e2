//! Weir: write a distributed program as one typed dataflow.
//!
//! A flow is an ordinary Rust function over a [`FlowBuilder`]. It places streams at
//! [locations](location) (a [`Process`] or a [`Cluster`]), transforms them with
//! operators whose arguments are quoted with [`q!`], and moves them between
//! locations with network operators. At build time, `weir-build` evaluates the flow
//! into an [IR graph](ir) and generates one specialised binary per role.
//!
//! ```
//! use weir::*;
//!
//! pub fn broadcast(flow: &FlowBuilder) {
//!     let leader = flow.process("leader");
//!     let workers = flow.cluster("worker");
//!     flow.source_iter(&leader, q!(0..10))
//!         .broadcast_bincode(&workers)
//!         .for_each(q!(|n| println!("{}", n)));
//! }
//! # let flow = FlowBuilder::new();
//! # broadcast(&flow);
//! # assert!(flow.finish().errors.is_empty());
//! ```

#![warn(missing_docs)]

// Lets `q!`'s `::weir::...` paths resolve inside this crate's own tests.
extern crate self as weir;

mod builder;
mod cycle;
pub mod external;
pub mod ir;
pub mod level;
pub mod location;
pub mod network;
pub mod order;
pub mod quote;
mod singleton;
mod stream;

pub use builder::FlowBuilder;
pub use cycle::CycleHandle;
pub use external::{BadInput, ClientCodec, ClientEvent, ConnectionId, ExternalReplies};
pub use level::{Bounded, Unbounded};
pub use location::{Cluster, ClusterId, Location, Membership, Process, Role};
pub use network::NetworkRecord;
pub use order::{NoOrder, TotalOrder};
pub use quote::IntoQuoted;
pub use singleton::{Optional, Singleton};
pub use stream::Stream;
pub use weir_core::{Encoded, EncodedVec, TickRoom};
pub use weir_macro::q;

/// Durable state: what an instance keeps across a crash or a restart, in
/// its state directory (`--state-dir`). Reached in quoted code through
/// [`Cluster::durable`].
pub use weir_durable as durable;

/// What the `q!` macro expands to. Not a public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::quote::capture::{
        Capturable, Capture, CaptureKindCluster, CaptureKindLiteral, CaptureKindSerde, Literal,
        Probe, ViaCluster, ViaLiteral, ViaSerde,
    };
    pub use crate::quote::{hole_of, record_quote, Hole, QuoteRecord};
}
