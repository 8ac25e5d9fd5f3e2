//! The role binaries of the flows in `flow/`.
//!
//! `build.rs` generates one program per role; each `src/bin/<flow>-<role>.rs` is a
//! one-line stub including it. The generated programs can be read under
//! `target/weir/<flow>/<role>/main.rs`. This library gives cargo a target before
//! the first stubs exist (`WEIR_WRITE_STUBS=1 cargo build -p bins`), and the
//! allocator the key-value store's roles share.

mod allocator;

pub use allocator::MiMalloc;
