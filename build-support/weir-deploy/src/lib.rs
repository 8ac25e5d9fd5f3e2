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

#![warn(missing_docs)]

mod binaries;
mod certificates;
mod error;
mod files;
mod hosts;
mod manifests;
mod plan;
mod ports;
mod progress;
mod running;
mod upgrade;

pub use binaries::{cargo_build, RoleBinaries};
pub use certificates::{client_certificates, ClientCertificates};
pub use error::DeployError;
pub use hosts::{HostEntry, Hosts};
pub use manifests::{ManifestOptions, ENDPOINT_PORT, PEER_PORT};
pub use plan::Deployment;
pub use ports::free_port;
pub use running::RunningDeployment;

use std::path::PathBuf;
use std::process::ExitCode;

/// What a deploy script was asked to do.
enum Action {
    /// Run the deployment here, or on these hosts.
    Run(Option<Hosts>),
    /// Write manifests for a cluster manager instead.
    Manifests(PathBuf, ManifestOptions),
}

const USAGE: &str =
    "usage: <deploy script> [--hosts FILE | --manifests DIR --image IMAGE [--namespace NS]]\n\
  (no flags)         run the deployment on this machine\n\
  --hosts FILE       run it on the hosts FILE lists, over ssh ([[host]] ssh = ..., address = ...)\n\
  --manifests DIR    write Kubernetes manifests, a compose file and a Containerfile\n\
                     (with the role binaries under DIR/bin) instead of running\n\
  --image IMAGE      the image the Containerfile builds and the pods run\n\
  --namespace NS     the Kubernetes namespace of the DNS names (default: default)";

/// The value given to a deploy script's own flag `flag` (one that
/// [`deploy_main_with_flags`] was told of), if it was given.
pub fn flag_value(flag: &str) -> Option<String> {
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == flag {
            return args.next();
        }
    }
    None
}

/// Reads the deploy script's flags; `name` names the objects, and the
/// script handles the flags in `own` (each with a value) itself.
fn action(name: &str, own: &[&str]) -> Result<Action, DeployError> {
    let mut args = std::env::args().skip(1);
    let (mut dir, mut image, mut namespace) = (None, None, "default".to_string());
    let mut hosts = None;
    while let Some(arg) = args.next() {
        let mut value = |flag: &str| {
            args.next()
                .ok_or_else(|| DeployError::new(format!("{flag} needs a value\n{USAGE}")))
        };
        match arg.as_str() {
            "--hosts" => hosts = Some(Hosts::load(std::path::Path::new(&value("--hosts")?))?),
            "--manifests" => dir = Some(PathBuf::from(value("--manifests")?)),
            "--image" => image = Some(value("--image")?),
            "--namespace" => namespace = value("--namespace")?,
            flag if own.contains(&flag) => drop(value(flag)?),
            "-h" | "--help" => return Err(DeployError::new(USAGE)),
            other => {
                return Err(DeployError::new(format!(
                    "unknown argument `{other}`\n{USAGE}"
                )))
            }
        }
    }
    if hosts.is_some() && dir.is_some() {
        return Err(DeployError::new(format!(
            "--hosts runs the deployment and --manifests writes it: give one\n{USAGE}"
        )));
    }
    match (dir, image) {
        (None, None) => Ok(Action::Run(hosts)),
        (Some(dir), Some(image)) => Ok(Action::Manifests(
            dir,
            ManifestOptions {
                image,
                namespace,
                name: name.to_string(),
            },
        )),
        (Some(_), None) => Err(DeployError::new(format!(
            "--manifests needs --image: the image the pods run\n{USAGE}"
        ))),
        (None, Some(_)) => Err(DeployError::new(format!(
            "--image is for --manifests\n{USAGE}"
        ))),
    }
}

/// The whole of a deploy script: builds the role binaries of `package` that
/// `plan` uses (in the script's own profile), runs the deployment `plan`
/// describes (or, with `--manifests DIR --image IMAGE`, writes what a
/// cluster manager needs to run it), and turns the outcome into an exit
/// code, printing the error if there is one.
pub async fn deploy_main(
    package: &str,
    plan: impl FnOnce(&RoleBinaries) -> Deployment,
) -> ExitCode {
    deploy_main_with(package, plan, RunningDeployment::wait).await
}

/// [`deploy_main`], with `watch` in charge of the running deployment (say,
/// to print where its clients connect before it waits for it). `watch` is
/// called once every instance is linked with its peers and its external
/// endpoints listen ([`RunningDeployment::ready`]): clients may connect at
/// once. It may fail with a [`DeployError::new`] of its own, which the
/// script reports like any other.
pub async fn deploy_main_with<F, Fut>(
    package: &str,
    plan: impl FnOnce(&RoleBinaries) -> Deployment,
    watch: F,
) -> ExitCode
where
    F: FnOnce(RunningDeployment) -> Fut,
    Fut: std::future::Future<Output = Result<(), DeployError>>,
{
    deploy_main_with_flags(package, &[], plan, watch).await
}

/// [`deploy_main_with`] for a script with flags of its own (`own`, each
/// taking a value, read with [`flag_value`]) beside the usual ones.
pub async fn deploy_main_with_flags<F, Fut>(
    package: &str,
    own: &[&str],
    plan: impl FnOnce(&RoleBinaries) -> Deployment,
    watch: F,
) -> ExitCode
where
    F: FnOnce(RunningDeployment) -> Fut,
    Fut: std::future::Future<Output = Result<(), DeployError>>,
{
    let outcome = async {
        let bins = RoleBinaries::of(package)?;
        let deployment = plan(&bins).report_progress();
        let action = action(&deployment.name(), own)?;
        if bins.builds() {
            let mut progress = progress::Progress::new();
            progress.step(&format!("building the role binaries of `{package}`"));
            bins.build_used()?;
            progress.step(&format!("built in {}", progress::took(progress.elapsed())));
        }
        match action {
            Action::Run(hosts) => {
                let deployment = match hosts {
                    Some(hosts) => deployment.on_hosts(hosts),
                    None => deployment,
                };
                let mut running = deployment.start().await?;
                match running.ready().await {
                    Ok(()) => watch(running).await,
                    // Stopped already: what `wait` reports, once it is.
                    Err(_) => running.wait().await,
                }
            }
            Action::Manifests(dir, options) => {
                let written = deployment.write_manifests(&dir, &options)?;
                println!(
                    "wrote {} files to {dir}: build the image with `podman build -t {image} {dir}` (or docker), push it, then `kubectl apply -f {dir}`; or `docker compose -f {dir}/compose.json up`",
                    written.len(),
                    dir = dir.display(),
                    image = options.image,
                );
                Ok(())
            }
        }
    }
    .await;
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}
