//! Example flows, written as a user of Weir writes them. Each is compiled into one
//! binary per role by `bins/build.rs`.

pub mod broadcast;
pub mod pipeline;
