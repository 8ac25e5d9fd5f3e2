//! Finding (and building) the role binaries of a package.

use crate::local::DeployError;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

/// The directory holding a package's role binaries, built for the profile the
/// calling program was built with.
#[derive(Debug)]
pub struct RoleBinaries {
    dir: PathBuf,
    /// For [`RoleBinaries::of`]: the package, and the binaries asked for so far.
    pending: Option<(String, Mutex<Vec<String>>)>,
}

impl RoleBinaries {
    /// Runs `cargo build -p <package> --bins` for the caller's profile (the one in
    /// whose target directory the calling executable lives), so a deploy script run
    /// with `cargo run --release --example ...` deploys release binaries.
    /// `WEIR_BIN_DIR` overrides: binaries are taken from there, nothing is built.
    pub fn build(package: &str) -> Result<Self, DeployError> {
        if let Some(dir) = std::env::var_os("WEIR_BIN_DIR") {
            return Ok(RoleBinaries::at(dir));
        }
        let dir =
            cargo_build(&["-p", package, "--bins"], None).map_err(|e| build_failed(package, e))?;
        Ok(RoleBinaries::at(dir))
    }

    /// The role binaries of `package`, built by [`build_used`](Self::build_used):
    /// only those [`path`](Self::path) was asked for, so a deployment waits for
    /// its own roles, not for every flow of the package. `WEIR_BIN_DIR` overrides
    /// as for [`build`](Self::build).
    pub fn of(package: &str) -> Result<Self, DeployError> {
        if let Some(dir) = std::env::var_os("WEIR_BIN_DIR") {
            return Ok(RoleBinaries::at(dir));
        }
        Ok(RoleBinaries {
            dir: profile_dir()?,
            pending: Some((package.to_string(), Mutex::new(Vec::new()))),
        })
    }

    /// Uses the binaries in `dir` as they are.
    pub fn at(dir: impl Into<PathBuf>) -> Self {
        RoleBinaries {
            dir: dir.into(),
            pending: None,
        }
    }

    /// The path of binary `name` (`<flow>-<role>`).
    pub fn path(&self, name: &str) -> PathBuf {
        if let Some((_, wanted)) = &self.pending {
            let mut wanted = wanted.lock().unwrap_or_else(|e| e.into_inner());
            if !wanted.iter().any(|w| w == name) {
                wanted.push(name.to_string());
            }
        }
        self.dir
            .join(format!("{name}{}", std::env::consts::EXE_SUFFIX))
    }

    /// Builds the binaries [`path`](Self::path) was asked for, if these binaries
    /// came from [`of`](Self::of); otherwise does nothing.
    pub fn build_used(&self) -> Result<(), DeployError> {
        let Some((package, wanted)) = &self.pending else {
            return Ok(());
        };
        let wanted = wanted.lock().unwrap_or_else(|e| e.into_inner());
        if wanted.is_empty() {
            return Ok(());
        }
        let mut args = vec!["-p", package.as_str()];
        for name in wanted.iter() {
            args.extend(["--bin", name.as_str()]);
        }
        cargo_build(&args, None).map_err(|e| build_failed(package, e))?;
        Ok(())
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

fn build_failed(package: &str, e: DeployError) -> DeployError {
    DeployError::new(format!(
        "building the role binaries of `{package}` failed: {e}"
    ))
}

/// Runs `cargo build --quiet <args>` for the caller's profile (that of the
/// running executable) into `target` (by default the caller's own target
/// directory), and returns `<target>/<profile>`.
pub fn cargo_build(args: &[&str], target: Option<&Path>) -> Result<PathBuf, DeployError> {
    let caller = profile_dir()?;
    let dir = match target {
        Some(target) => target.join(caller.file_name().unwrap_or_default()),
        None => caller,
    };
    let profile = dir
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("debug")
        .to_string();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command.args(["build", "--quiet"]).args(args);
    match profile.as_str() {
        "debug" => {}
        "release" => {
            command.arg("--release");
        }
        other => {
            command.args(["--profile", other]);
        }
    }
    // Build where the caller was built, whatever the working directory.
    if let Some(target) = dir.parent() {
        command.env("CARGO_TARGET_DIR", target);
    }
    let status = command
        .status()
        .map_err(|e| DeployError::new(format!("cannot run cargo: {e}")))?;
    if !status.success() {
        return Err(DeployError::new(format!(
            "cargo build {} ({status})",
            args.join(" ")
        )));
    }
    Ok(dir)
}

/// `target/<profile>` of the running executable (an example, a test, a binary).
fn profile_dir() -> Result<PathBuf, DeployError> {
    let exe = std::env::current_exe()
        .map_err(|e| DeployError::new(format!("cannot locate this executable: {e}")))?;
    // target/<profile>/examples/x, target/<profile>/deps/x-hash, or target/<profile>/x
    let parent = exe
        .parent()
        .ok_or_else(|| DeployError::new("executable has no directory"))?;
    let dir = match parent.file_name().and_then(|n| n.to_str()) {
        Some("examples" | "deps") => parent.parent().unwrap_or(parent),
        _ => parent,
    };
    Ok(dir.to_path_buf())
}
