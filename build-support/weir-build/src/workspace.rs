//! What cargo says of the workspace being built (`cargo metadata`), so that
//! no path is guessed from the layout: a custom `CARGO_TARGET_DIR`, a flow
//! crate whose package, library or `lib.rs` is named differently, or a
//! workspace nested in another all work.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The workspace of the package whose build script is running.
#[derive(Debug)]
pub struct Workspace {
    /// What `file!()` paths of the workspace's crates are relative to.
    pub root: PathBuf,
    /// Where cargo builds (`target/` unless configured otherwise).
    pub target_dir: PathBuf,
    /// Each member library's root file, by crate name (`my_flows`).
    pub crate_roots: HashMap<String, PathBuf>,
}

impl Workspace {
    /// Asks cargo (the one running this build script) about the workspace of
    /// the package at `manifest_dir`.
    pub fn of(manifest_dir: &Path) -> Result<Workspace, String> {
        let mut command = cargo_metadata::MetadataCommand::new();
        if let Some(cargo) = std::env::var_os("CARGO") {
            command.cargo_path(cargo);
        }
        // The members are enough; `--no-deps` needs no resolution or network.
        let metadata = command
            .manifest_path(manifest_dir.join("Cargo.toml"))
            .no_deps()
            .exec()
            .map_err(|e| format!("`cargo metadata` failed: {e}"))?;
        let crate_roots = metadata
            .packages
            .iter()
            .flat_map(|package| &package.targets)
            .filter(|target| target.is_lib() || target.is_proc_macro())
            .map(|target| {
                (
                    target.name.replace('-', "_"),
                    target.src_path.clone().into_std_path_buf(),
                )
            })
            .collect();
        Ok(Workspace {
            root: metadata.workspace_root.into_std_path_buf(),
            target_dir: metadata.target_directory.into_std_path_buf(),
            crate_roots,
        })
    }
}
