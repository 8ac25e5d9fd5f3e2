//! What both sides of Weir share: the build side (`weir`, which encodes captured
//! values into generated code) and the runtime (which encodes network batches).
//!
//! This crate stays free of tokio so the build script's dependency tree stays small.

pub mod codec;
