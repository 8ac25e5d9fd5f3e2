//! What the end-to-end and simulation tests share.

pub mod linearizability;
