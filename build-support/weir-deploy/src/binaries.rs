//! Finding (and building) the role binaries of a package.

use crate::error::DeployError;
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
    /// For [`RoleBinaries::build`]: the package, and the binaries it has. A
    /// binary it lacks may still lie in `dir`, left by an earlier build.
    built: Option<(String, Vec<String>)>,
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
        let workspace = caller_workspace()?;
        check_binaries(workspace, package, &[])?;
        let bins = workspace
            .binaries
            .iter()
            .find(|(name, _)| name == package)
            .map(|(_, bins)| bins.clone())
            .unwrap_or_default();
        Ok(RoleBinaries {
            dir,
            pending: None,
            built: Some((package.to_string(), bins)),
        })
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
            built: None,
        })
    }

    /// Uses the binaries in `dir` as they are.
    pub fn at(dir: impl Into<PathBuf>) -> Self {
        RoleBinaries {
            dir: dir.into(),
            pending: None,
            built: None,
        }
    }

    /// The path of binary `name` (`<flow>-<role>`).
    ///
    /// # Panics
    ///
    /// For binaries from [`build`](Self::build), if the package has no
    /// binary `name` (its flow was removed from build.rs, say): a file of
    /// that name left in the target directory by an earlier build is never
    /// used.
    #[track_caller]
    pub fn path(&self, name: &str) -> PathBuf {
        if let Some((package, bins)) = &self.built {
            if let Err(err) = has_binaries(package, bins, &[name.to_string()]) {
                panic!("{err}");
            }
        }
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
        check_binaries(caller_workspace()?, package, &wanted)?;
        let mut args = vec!["-p", package.as_str()];
        for name in wanted.iter() {
            args.extend(["--bin", name.as_str()]);
        }
        // Not quiet: what cargo says is the deploy script's build progress.
        run_cargo_build(&args, None, false).map_err(|e| build_failed(package, e))?;
        Ok(())
    }

    /// Whether [`build_used`](Self::build_used) builds anything (not with
    /// `WEIR_BIN_DIR`, or before any binary was asked for).
    pub fn builds(&self) -> bool {
        self.pending
            .as_ref()
            .is_some_and(|(_, wanted)| !wanted.lock().unwrap_or_else(|e| e.into_inner()).is_empty())
    }

    /// The directory the binaries are in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

fn build_failed(package: &str, e: DeployError) -> DeployError {
    DeployError::new(format!(
        "building the role binaries of `{package}` failed: {e}"
    ))
}

/// Runs `cargo build --quiet <args>` in the caller's workspace (as cargo
/// reports it), for the caller's profile (that of the running executable),
/// into `target` (by default the caller's own target directory), and returns
/// `<target>/<profile>`. Works from any working directory.
pub fn cargo_build(args: &[&str], target: Option<&Path>) -> Result<PathBuf, DeployError> {
    run_cargo_build(args, target, true)
}

fn set_for_a_crate_cargo_ran(name: &str) -> bool {
    name.starts_with("CARGO_PKG_")
        || matches!(
            name,
            "CARGO_MANIFEST_DIR"
                | "CARGO_MANIFEST_PATH"
                | "CARGO_CRATE_NAME"
                | "CARGO_BIN_NAME"
                | "CARGO_PRIMARY_PACKAGE"
                | "CARGO_RUSTC_CURRENT_DIR"
                | "CARGO_TARGET_TMPDIR"
        )
}

fn run_cargo_build(
    args: &[&str],
    target: Option<&Path>,
    quiet: bool,
) -> Result<PathBuf, DeployError> {
    let workspace = caller_workspace()?;
    // Where the caller was built, which `cargo metadata` cannot know (a
    // `--target-dir` flag): its executable's own directory says.
    let caller = profile_dir()?;
    let profile = caller
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("debug")
        .to_string();
    let target = match target {
        Some(target) => target,
        None => caller.parent().unwrap_or(&caller),
    };
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command.arg("build");
    if quiet {
        command.arg("--quiet");
    }
    command
        .arg("--manifest-path")
        .arg(&workspace.manifest)
        .args(args);
    match profile.as_str() {
        "debug" => {}
        "release" => {
            command.arg("--release");
        }
        other => {
            command.args(["--profile", other]);
        }
    }
    command.env("CARGO_TARGET_DIR", target);
    // What cargo set for the caller as a crate it ran (`cargo run`, `cargo
    // test`) is not build configuration. Left in, it is: some build scripts
    // (ring's) rebuild whenever it differs, so the caller's build and ours
    // would each rebuild them for the other.
    for (name, _) in std::env::vars_os() {
        if name.to_str().is_some_and(set_for_a_crate_cargo_ran) {
            command.env_remove(name);
        }
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
    Ok(target.join(profile))
}

/// The workspace of the running deploy script, as cargo reports it.
#[derive(Debug)]
struct Workspace {
    /// The workspace's root `Cargo.toml`.
    manifest: PathBuf,
    /// Each member package's binary targets, by package name.
    binaries: Vec<(String, Vec<String>)>,
}

/// Asks cargo once, from the package `cargo run`/`cargo test` ran
/// (`CARGO_MANIFEST_DIR`), else from the working directory.
fn caller_workspace() -> Result<&'static Workspace, DeployError> {
    static WORKSPACE: std::sync::OnceLock<Result<Workspace, String>> = std::sync::OnceLock::new();
    WORKSPACE
        .get_or_init(|| {
            let from = std::env::var_os("CARGO_MANIFEST_DIR")
                .map(PathBuf::from)
                .or_else(|| std::env::current_dir().ok())
                .unwrap_or_default();
            let mut command = cargo_metadata::MetadataCommand::new();
            if let Some(cargo) = std::env::var_os("CARGO") {
                command.cargo_path(cargo);
            }
            let metadata = command.current_dir(&from).no_deps().exec().map_err(|e| {
                format!(
                    "cannot find the cargo workspace of this deploy script from {} ({e}); run it with `cargo run --example ...` in its project, or set WEIR_BIN_DIR to a directory of built role binaries",
                    from.display()
                )
            })?;
            let binaries = metadata
                .workspace_packages()
                .iter()
                .map(|package| {
                    let bins = package
                        .targets
                        .iter()
                        .filter(|t| t.is_bin())
                        .map(|t| t.name.clone())
                        .collect();
                    (package.name.to_string(), bins)
                })
                .collect();
            Ok(Workspace {
                manifest: metadata.workspace_root.join("Cargo.toml").into_std_path_buf(),
                binaries,
            })
        })
        .as_ref()
        .map_err(|e| DeployError::new(e.clone()))
}

/// That `package` is a member of the workspace with every binary in `wanted`.
fn check_binaries(
    workspace: &Workspace,
    package: &str,
    wanted: &[String],
) -> Result<(), DeployError> {
    let Some((_, bins)) = workspace.binaries.iter().find(|(name, _)| name == package) else {
        let members: Vec<&str> = workspace.binaries.iter().map(|(n, _)| n.as_str()).collect();
        return Err(DeployError::new(format!(
            "no package `{package}` in the workspace {} (its packages: {})",
            workspace.manifest.display(),
            members.join(", ")
        )));
    };
    has_binaries(package, bins, wanted)
}

/// That `package`, whose binaries are `bins`, has every binary in `wanted`.
fn has_binaries(package: &str, bins: &[String], wanted: &[String]) -> Result<(), DeployError> {
    let missing: Vec<&str> = wanted
        .iter()
        .filter(|w| !bins.contains(w))
        .map(String::as_str)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(DeployError::new(format!(
        "package `{package}` has no binary {}: is the flow in its build.rs, with its role stubs written (`WEIR_WRITE_STUBS=1 cargo build`)? Its binaries: {}",
        missing
            .iter()
            .map(|m| format!("`{m}`"))
            .collect::<Vec<_>>()
            .join(", "),
        if bins.is_empty() { "none".to_string() } else { bins.join(", ") }
    )))
}

/// `<target>/<profile>` of the running executable (an example, a test, a binary).
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
