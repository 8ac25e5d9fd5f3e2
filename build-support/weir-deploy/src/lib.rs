//! Start Weir role binaries. Sees binaries and a topology only, never flows or
//! generated code.
//!
//! ```no_run
//! use weir_deploy::{Deployment, RoleBinaries};
//!
//! # async fn example() -> Result<(), weir_deploy::DeployError> {
//! let bins = RoleBinaries::build("bins")?;
//! Deployment::new()
//!     .process("leader", bins.path("broadcast-leader"))
//!     .cluster("worker", bins.path("broadcast-worker"), 2)
//!     .run()
//!     .await
//! # }
//! ```

mod binaries;
mod local;

pub use binaries::RoleBinaries;
pub use local::{free_port, DeployError, Deployment};
