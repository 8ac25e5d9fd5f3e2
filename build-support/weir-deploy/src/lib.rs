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
mod running;

pub use binaries::{cargo_build, RoleBinaries};
pub use local::{free_port, DeployError, Deployment};
pub use running::RunningDeployment;

use std::process::ExitCode;

/// The whole of a deploy script: builds the role binaries of `package` that
/// `plan` uses (in the script's own profile), runs the deployment `plan`
/// describes, and turns the outcome into an exit code, printing the error if
/// there is one.
pub async fn deploy_main(
    package: &str,
    plan: impl FnOnce(&RoleBinaries) -> Deployment,
) -> ExitCode {
    let outcome = match RoleBinaries::of(package) {
        Ok(bins) => {
            let deployment = plan(&bins);
            match bins.build_used() {
                Ok(()) => deployment.run().await,
                Err(e) => Err(e),
            }
        }
        Err(e) => Err(e),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}
