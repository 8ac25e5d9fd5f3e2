//! `weir new`: writing a project from the template in `template/`.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

/// The template's files (path in the project, text with `{{...}}` holes).
const TEMPLATE: &[(&str, &str)] = &[
    ("Cargo.toml", include_str!("../template/Cargo.toml")),
    ("README.md", include_str!("../template/README.md")),
    (".gitignore", include_str!("../template/gitignore")),
    (
        "flow/Cargo.toml",
        include_str!("../template/flow/Cargo.toml"),
    ),
    (
        "flow/src/lib.rs",
        include_str!("../template/flow/src/lib.rs"),
    ),
    (
        "bins/Cargo.toml",
        include_str!("../template/bins/Cargo.toml"),
    ),
    ("bins/build.rs", include_str!("../template/bins/build.rs")),
    (
        "examples/Cargo.toml",
        include_str!("../template/examples/Cargo.toml"),
    ),
    (
        "examples/hello.rs",
        include_str!("../template/examples/hello.rs"),
    ),
    (
        "tests/Cargo.toml",
        include_str!("../template/tests/Cargo.toml"),
    ),
    ("tests/hello.rs", include_str!("../template/tests/hello.rs")),
];

/// The template flow and its roles: each role needs a stub in `bins/src/bin`.
const FLOW: &str = "hello";
const ROLES: &[&str] = &["leader", "worker"];

/// The Weir crates the project depends on.
const WEIR_CRATES: &[&str] = &["weir", "weir-build", "weir-runtime", "weir-deploy"];

/// Where the new project takes the Weir crates from.
#[derive(Debug, Clone, PartialEq)]
pub enum WeirSource {
    /// A checkout: the directory holding `build-support/`.
    Path(PathBuf),
    /// A git repository holding the Weir crates.
    Git(String),
}

impl WeirSource {
    /// The checkout this `weir` was built from (`cargo install --path` and
    /// `cargo run` both build from one).
    pub fn built_from() -> WeirSource {
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
        WeirSource::Path(
            manifest
                .ancestors()
                .nth(2)
                .unwrap_or(manifest)
                .to_path_buf(),
        )
    }

    /// The `[workspace.dependencies]` lines for the Weir crates.
    fn dependencies(&self) -> Result<String, String> {
        let mut lines = String::new();
        for name in WEIR_CRATES {
            match self {
                WeirSource::Path(checkout) => {
                    let dir = checkout.join("build-support").join(name);
                    if !dir.join("Cargo.toml").is_file() {
                        return Err(format!(
                            "{} is not a Weir checkout (no {}); pass --weir-path CHECKOUT or --weir-git URL",
                            checkout.display(),
                            dir.join("Cargo.toml").display()
                        ));
                    }
                    let dir = dir
                        .canonicalize()
                        .map_err(|e| format!("{}: {e}", dir.display()))?;
                    let path = toml_string(&dir.display().to_string());
                    writeln!(lines, "{name} = {{ path = {path} }}").expect("to a String");
                }
                WeirSource::Git(url) => {
                    let url = toml_string(url);
                    writeln!(lines, "{name} = {{ git = {url} }}").expect("to a String");
                }
            }
        }
        Ok(lines.trim_end().to_string())
    }
}

/// A project about to be written.
#[derive(Debug)]
pub struct NewProject {
    dir: PathBuf,
    /// The package name prefix (`myapp` gives `myapp-flow`, `myapp-bins`, ...).
    name: String,
    source: WeirSource,
}

impl NewProject {
    /// Checks the name (by default `dir`'s last component) and the directory.
    pub fn new(dir: PathBuf, name: Option<String>, source: WeirSource) -> Result<Self, String> {
        let name = match name {
            Some(name) => name,
            None => dir
                .file_name()
                .and_then(|n| n.to_str())
                .ok_or_else(|| {
                    format!(
                        "cannot name a project after `{}`: pass --name NAME",
                        dir.display()
                    )
                })?
                .to_string(),
        };
        check_name(&name)?;
        if let Ok(mut entries) = fs::read_dir(&dir) {
            if entries.next().is_some() {
                return Err(format!(
                    "{} already exists and is not empty: nothing was written",
                    dir.display()
                ));
            }
        } else if dir.exists() {
            return Err(format!("{} exists and is not a directory", dir.display()));
        }
        Ok(NewProject { dir, name, source })
    }

    /// Writes the project, and says what to do next.
    pub fn write(&self) -> Result<String, String> {
        let dependencies = self.source.dependencies()?;
        let ident = self.name.replace('-', "_");
        let fill = |text: &str| {
            text.replace("{{weir_dependencies}}", &dependencies)
                .replace("{{name}}", &self.name)
                .replace("{{ident}}", &ident)
        };
        let mut files: Vec<(PathBuf, String)> = TEMPLATE
            .iter()
            .map(|(path, text)| (PathBuf::from(path), fill(text)))
            .collect();
        // The stubs too, so that the first `cargo build` builds the binaries.
        for role in ROLES {
            files.push((
                PathBuf::from(format!("bins/src/bin/{FLOW}-{role}.rs")),
                stub(FLOW, role),
            ));
        }
        // With a checkout, the versions of every dependency it was tested with.
        if let WeirSource::Path(checkout) = &self.source {
            if let Ok(lock) = fs::read_to_string(checkout.join("Cargo.lock")) {
                files.push((PathBuf::from("Cargo.lock"), lock));
            }
        }
        for (path, text) in &files {
            let path = self.dir.join(path);
            if let Some(parent) = path.parent() {
                fs::create_dir_all(parent)
                    .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
            }
            fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        }
        Ok(format!(
            "created `{name}` in {dir}: a flow crate (flow/), its role binaries (bins/), a deploy script (examples/hello.rs) and a test (tests/hello.rs)\n\
             \n    cd {dir}\n    cargo run --example hello    # a leader and two workers on this machine\n    cargo test",
            name = self.name,
            dir = self.dir.display(),
        ))
    }
}

/// The stub `bins/src/bin/<flow>-<role>.rs`, as `weir_build` writes it.
fn stub(flow: &str, role: &str) -> String {
    format!(
        "// Role `{role}` of flow `{flow}`: the program is generated by build.rs.\n\
         include!(concat!(env!(\"OUT_DIR\"), \"/{flow}/{role}/main.rs\"));\n"
    )
}

/// A package name prefix: ASCII letters, digits, `-` and `_`, from a letter.
fn check_name(name: &str) -> Result<(), String> {
    let starts_with_letter = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic());
    let valid = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if starts_with_letter && valid {
        Ok(())
    } else {
        Err(format!(
            "`{name}` cannot name the project's packages: use ASCII letters, digits, `-` and `_`, starting with a letter (or pass --name NAME)"
        ))
    }
}

/// `text` as a TOML string.
fn toml_string(text: &str) -> String {
    toml::Value::String(text.to_string()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stubs_are_the_ones_the_build_helper_expects() {
        for role in ROLES {
            assert_eq!(stub(FLOW, role), weir_build::stub_contents(FLOW, role));
        }
    }

    #[test]
    fn names_that_cannot_name_packages_are_refused_before_anything_is_written() {
        let scratch = tempfile::tempdir().unwrap();
        let dir = scratch.path().join("new");
        for bad in ["1app", "my app", "app!", ""] {
            let err = NewProject::new(dir.join("x"), Some(bad.into()), WeirSource::built_from())
                .unwrap_err();
            assert!(err.contains("cannot name the project"), "{bad}: {err}");
        }
        assert!(!dir.exists());
    }

    #[test]
    fn a_directory_with_files_is_left_alone() {
        let scratch = tempfile::tempdir().unwrap();
        let dir = scratch.path().to_path_buf();
        fs::write(dir.join("notes.txt"), "mine").unwrap();
        let err =
            NewProject::new(dir.clone(), Some("app".into()), WeirSource::built_from()).unwrap_err();
        assert!(err.contains("not empty: nothing was written"), "{err}");
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1);
    }

    #[test]
    fn a_directory_that_is_no_checkout_is_named() {
        let scratch = tempfile::tempdir().unwrap();
        let dir = scratch.path().join("new");
        let project = NewProject::new(
            dir.join("app"),
            None,
            WeirSource::Path(PathBuf::from("/nonexistent")),
        )
        .unwrap();
        let err = project.write().unwrap_err();
        assert!(err.contains("/nonexistent is not a Weir checkout"), "{err}");
        assert!(!dir.exists());
    }

    #[test]
    fn git_sources_name_the_repository_for_every_crate() {
        let deps = WeirSource::Git("https://example.com/weir.git".into())
            .dependencies()
            .unwrap();
        for name in WEIR_CRATES {
            assert!(
                deps.contains(&format!(
                    "{name} = {{ git = \"https://example.com/weir.git\" }}"
                )),
                "{deps}"
            );
        }
    }
}
