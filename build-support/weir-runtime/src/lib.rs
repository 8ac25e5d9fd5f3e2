//! What Weir's generated role programs link.
//!
//! A generated `main.rs` declares its [`RoleSpec`] and an `async fn run(Node)`,
//! then calls [`launch`]: this crate parses the flags, reads the topology, connects
//! to the peers through a [`transport`], and drives the ticks through [`Node`].
//! The generated code never touches sockets; it sees typed [`Inbox`]es and
//! [`Outbox`]es whose batches travel as one frame per channel per tick.

#![warn(missing_docs)]

pub mod auth;
mod cli;
pub mod client_tls;
mod error;
pub mod external;
pub mod frame;
pub mod health;
mod log;
mod node;
pub mod ops;
pub mod secure;
mod spec;
pub mod topology;
pub mod transport;
pub mod wire;
mod witness;

pub use error::{Error, Result};
pub use node::{
    ClusterView, Inbox, MemberOutbox, MembershipSource, Node, Outbox, RoundRobinOutbox, Stopper,
    TaggedInbox,
};
pub use spec::{ChannelDecl, Delivery, ExternalDecl, InstanceId, RoleDecl, RoleKind, RoleSpec};
// Every name in `weir_core::SHARED_ITEMS`: generated code names them here.
pub use weir_core::{BadInput, ClientCodec, ClientEvent, ClusterId, ConnectionId, Membership};
pub use weir_durable as durable;

/// With this variable set (a deploy tool sets it), an instance writes
/// [`READY_LINE`] to stderr once it is linked with every peer it needs.
pub const READY_ENV: &str = "WEIR_REPORT_READY";
/// See [`READY_ENV`].
pub const READY_LINE: &str = "weir: ready";
/// With [`READY_ENV`] set, written to stderr each time the instance becomes
/// linked with an instance of every role it exchanges records with (what
/// `--health` calls ready); [`UNLINKED_LINE`] and the reason when it stops
/// being so. A rolling upgrade waits for it.
pub const LINKED_LINE: &str = "weir: linked";
/// See [`LINKED_LINE`]; the reason follows it.
pub const UNLINKED_LINE: &str = "weir: unlinked:";

use std::future::Future;
use std::pin::Pin;
use std::process::ExitCode;

/// Runs a role program: flags and topology, links to peers, then `run` until the
/// flow ends. Every failure is printed as one `error:` line naming this instance,
/// and turns into a non-zero exit code.
pub fn launch<F, Fut>(spec: &'static RoleSpec, run: F) -> ExitCode
where
    F: FnOnce(Node) -> Fut + 'static,
    Fut: Future<Output = Result<()>> + 'static,
{
    // Boxed so the runtime (tokio's scheduler, the links, the start-up) is compiled
    // once, here, and not again in every role binary: one indirect call per wake.
    launch_boxed(spec, Box::new(move |node| Box::pin(run(node))))
}

type BoxedRun = Box<dyn FnOnce(Node) -> Pin<Box<dyn Future<Output = Result<()>>>>>;

fn launch_boxed(spec: &'static RoleSpec, run: BoxedRun) -> ExitCode {
    let config = cli::parse(spec);
    log::init(config.log.as_deref());
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let me = config.instance_name(spec);
    let outcome = runtime.block_on(async move {
        let node = Node::start(spec, config).await?;
        run(node).await
    });
    // Source tasks may sit in blocking reads (stdin): do not wait for them.
    runtime.shutdown_background();
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {me} (flow `{}`): {err}", spec.flow);
            ExitCode::FAILURE
        }
    }
}

/// Decodes a value `q!` captured by serde (called once, when the role starts).
pub fn decode_capture<T: serde::de::DeserializeOwned>(bytes: &[u8], name: &str) -> Result<T> {
    weir_core::codec::decode_value(bytes)
        .map_err(|e| Error::new(format!("captured value `{name}` does not decode: {e} (was the flow crate changed without rebuilding?)")))
}
