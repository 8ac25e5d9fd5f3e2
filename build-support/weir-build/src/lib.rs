//! The build.rs helper of Weir, in the style of prost-build:
//!
//! ```no_run
//! # mod flow { pub mod broadcast { pub fn broadcast(_: &weir::FlowBuilder) {} } }
//! // bins/build.rs
//! fn main() {
//!     weir_build::Roles::new()
//!         .flow("broadcast", flow::broadcast::broadcast)
//!         .build();
//! }
//! ```
//!
//! [`Roles::build`] reports every problem as a cargo build error, with its
//! place in the flow crate; [`Roles::compile`] returns them instead. It evaluates each flow into its IR, validates it, lowers every
//! role to a Rust program (operators fused into straight-line code), formats it with
//! prettyplease and writes it to `$OUT_DIR/<flow>/<role>/main.rs`, plus a readable
//! copy under `<target dir>/weir/<flow>/<role>/main.rs` (the target directory
//! cargo reports, `CARGO_TARGET_DIR` included). Each role needs a one-line stub
//! `src/bin/<flow>-<role>.rs` that includes the generated file; the helper checks
//! the stubs against the roles and says exactly which file to add or remove.

#![warn(missing_docs)]

mod error;
mod lower;
mod paths;
mod picture;
mod reach;
mod resolve;
mod roles;
mod workspace;

pub use error::BuildError;
pub use lower::{flow_hash, generate_role};
pub use picture::{flow_pictures, Pictures};
pub use roles::{evaluate, stub_contents, FlowFn, Roles};
