//! Flows written the way users write them, rather than the way the other
//! examples happen to be written: `use weir::*` and braced, renamed and glob
//! imports; names from std and from a library crate (`readings`); closures
//! whose parameter types rustc infers, capturing values of every kind `q!`
//! supports; struct and tuple accumulators whose fields the closures use;
//! keyed state; an external endpoint over a tolerant edge.
//!
//! Each flow is built into role binaries by `bins/build.rs` and run by
//! `tests/e2e/corpus.rs`, which checks every line against an answer computed
//! directly. A flow that rustc accepts here must build there: no annotation
//! in these files is there for the generated code's sake.

pub mod counter;
pub mod imports;
pub mod inference;
pub mod keys;
// Private: its items reach the rest of the crate, and the generated code,
// through the re-export below.
mod model;

pub use model::{Stats, Tally};
