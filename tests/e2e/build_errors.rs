//! A flow error found by the build helper is a cargo build error, with its
//! place in the flow crate, in a project outside this workspace that uses
//! `Roles::build()` as a user's build.rs does.

use crate::support::*;
use std::path::{Path, PathBuf};

/// A two-crate project (a flow crate, a bins crate whose build.rs calls
/// the helper) using the framework by path; `flow_src` is its flow crate.
fn project(name: &str, flow_src: &str) -> PathBuf {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf();
    let dir = std::env::temp_dir().join(format!("weir-project-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let crate_at = |c: &str| repo.join("build-support").join(c).display().to_string();
    let files = [
        ("Cargo.toml", "[workspace]\nmembers = [\"flow\", \"bins\"]\nresolver = \"2\"\n".to_string()),
        (
            "flow/Cargo.toml",
            format!(
                "[package]\nname = \"user_flow\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\nweir = {{ path = \"{}\" }}\n",
                crate_at("weir")
            ),
        ),
        ("flow/src/lib.rs", flow_src.to_string()),
        (
            "bins/Cargo.toml",
            format!(
                "[package]\nname = \"user_bins\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\nweir-runtime = {{ path = \"{}\" }}\nuser_flow = {{ path = \"../flow\" }}\n\n[build-dependencies]\nweir-build = {{ path = \"{}\" }}\nuser_flow = {{ path = \"../flow\" }}\n",
                crate_at("weir-runtime"),
                crate_at("weir-build")
            ),
        ),
        (
            "bins/build.rs",
            "fn main() {\n    weir_build::Roles::new().flow(\"misuse\", user_flow::misuse).build();\n}\n".to_string(),
        ),
        ("bins/src/lib.rs", String::new()),
    ];
    for (file, text) in files {
        let path = dir.join(file);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    // The same dependency versions as this workspace: nothing to resolve anew.
    std::fs::copy(repo.join("Cargo.lock"), dir.join("Cargo.lock")).unwrap();
    dir
}

#[test]
fn a_union_across_two_locations_is_a_build_error_at_its_line_without_a_panic() {
    let dir = project(
        "union",
        "use weir::*;\n\npub fn misuse(flow: &FlowBuilder) {\n    let a = flow.process(\"a\");\n    let b = flow.process(\"b\");\n    let xs = flow.source_iter(&a, q!(0u32..3));\n    let ys = flow.source_iter(&b, q!(0u32..3));\n    xs.union(ys).for_each(q!(|x| println!(\"{}\", x)));\n}\n",
    );
    let out = user_cargo(&dir, &["build", "-q", "-p", "user_bins"]);
    let said = stderr(&out);
    assert!(!out.status.success(), "it built:\n{said}");
    assert!(
        said.contains("error: user_bins@0.1.0: flow/src/lib.rs:8:"),
        "{said}"
    );
    assert!(said.contains("union"), "{said}");
    for noise in ["panicked", "stack backtrace", "RUST_BACKTRACE"] {
        assert!(!said.contains(noise), "`{noise}` in:\n{said}");
    }
}
