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
    /// The crates each member library can name (its dependencies, as its
    /// code names them), by crate name, with the requirement each is
    /// declared with (`"1.0"`, or `path = ".."`).
    pub crate_dependencies: HashMap<String, Vec<Dependency>>,
    /// The crates the package being built can name: what generated code may
    /// use (normal and dev dependencies: a test crate includes it too).
    pub own_dependencies: Vec<Dependency>,
}

/// A crate a package depends on, as its code names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dependency {
    /// The name in code: `serde_json` (a rename if there is one).
    pub name: String,
    /// How it is declared, for a message that says how to add it elsewhere.
    pub declared: String,
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
        let mut crate_roots = HashMap::new();
        let mut crate_dependencies = HashMap::new();
        let mut own_dependencies = Vec::new();
        let own_manifest = manifest_dir.join("Cargo.toml");
        for package in &metadata.packages {
            use cargo_metadata::DependencyKind::{Development, Normal};
            let dependencies = |kinds: &[cargo_metadata::DependencyKind]| {
                package
                    .dependencies
                    .iter()
                    .filter(|d| kinds.contains(&d.kind))
                    .map(Dependency::of)
                    .collect::<Vec<_>>()
            };
            if package.manifest_path.as_std_path() == own_manifest {
                own_dependencies = dependencies(&[Normal, Development]);
            }
            let libs = package
                .targets
                .iter()
                .filter(|target| target.is_lib() || target.is_proc_macro());
            for target in libs {
                let name = target.name.replace('-', "_");
                crate_roots.insert(name.clone(), target.src_path.clone().into_std_path_buf());
                crate_dependencies.insert(name, dependencies(&[Normal]));
            }
        }
        Ok(Workspace {
            root: metadata.workspace_root.into_std_path_buf(),
            target_dir: metadata.target_directory.into_std_path_buf(),
            crate_roots,
            crate_dependencies,
            own_dependencies,
        })
    }
}

impl Dependency {
    fn of(dependency: &cargo_metadata::Dependency) -> Dependency {
        let name = dependency.rename.as_ref().unwrap_or(&dependency.name);
        let source = match &dependency.path {
            Some(path) => format!("path = \"{path}\""),
            None => format!("version = \"{}\"", dependency.req),
        };
        let declared = match &dependency.rename {
            Some(_) => format!("{{ package = \"{}\", {source} }}", dependency.name),
            None => format!("{{ {source} }}"),
        };
        Dependency {
            name: name.replace('-', "_"),
            declared,
        }
    }
}
