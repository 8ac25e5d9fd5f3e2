//! A flow error found by the build helper is a cargo build error, with its
//! place in the flow crate, in a project outside this workspace that uses
//! `Roles::build()` as a user's build.rs does.

use crate::support::*;
use std::path::Path;

/// A two-crate project (a flow crate, a bins crate whose build.rs calls
/// the helper) using the framework by path; `flow_src` is its flow crate.
fn project(name: &str, flow_src: &str) -> tempfile::TempDir {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf();
    let scratch = scratch(&format!("project-{name}"));
    let dir = scratch.path();
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
    write_files(dir, &files);
    // The same dependency versions as this workspace: nothing to resolve anew.
    std::fs::copy(repo.join("Cargo.lock"), dir.join("Cargo.lock")).unwrap();
    scratch
}

/// What cargo says when building `package` in `dir` fails (it must fail).
fn failed_build(dir: &Path, package: &str) -> String {
    let out = user_cargo(dir, &["build", "-q", "-p", package]);
    let said = stderr(&out);
    assert!(!out.status.success(), "it built:\n{said}");
    said
}

fn write_files(dir: &Path, files: &[(&str, String)]) {
    for (file, text) in files {
        let path = dir.join(file);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
}

#[test]
fn a_union_across_two_locations_is_a_build_error_at_its_line_without_a_panic() {
    let dir = project(
        "union",
        "use weir::*;\n\npub fn misuse(flow: &FlowBuilder) {\n    let a = flow.process(\"a\");\n    let b = flow.process(\"b\");\n    let xs = flow.source_iter(&a, q!(0u32..3));\n    let ys = flow.source_iter(&b, q!(0u32..3));\n    xs.union(ys).for_each(q!(|x| println!(\"{}\", x)));\n}\n",
    );
    let said = failed_build(dir.path(), "user_bins");
    assert!(
        said.contains("error: user_bins@0.1.0: flow/src/lib.rs:8:"),
        "{said}"
    );
    assert!(said.contains("union"), "{said}");
    for noise in ["panicked", "stack backtrace", "RUST_BACKTRACE"] {
        assert!(!said.contains(noise), "`{noise}` in:\n{said}");
    }
}

/// Names quoted code uses that generated code cannot have: the flow API, a
/// name that only another crate's glob import could bring. Each is an error at its `q!` with the
/// fix, in one build.
#[test]
fn names_generated_code_cannot_have_are_errors_at_their_q_with_the_fix() {
    let dir = project(
        "names",
        "use std::collections::*;\nuse weir::*;\n\npub fn misuse(flow: &FlowBuilder) {\n    let a = flow.process(\"a\");\n    flow.source_iter(&a, q!(0u32..3))\n        .map(q!(|x| { let _ = std::mem::size_of::<u8>(); x }))\n        .map(q!(|x| { let _ = weir::FlowBuilder::new; x }))\n        .map(q!(|x| BTreeSet::from([x])))\n        .for_each(q!(|x| println!(\"{x:?}\")));\n}\n",
    );
    let said = failed_build(dir.path(), "user_bins");
    let at = |line: u32| format!("error: user_bins@0.1.0: flow/src/lib.rs:{line}:");
    for (line, message) in [
        (8, "`weir::FlowBuilder::new` is part of Weir's flow API, which runs at build time: role binaries do not have it."),
        (9, "cannot tell where `BTreeSet` comes from: `user_flow` imports from another crate with a glob (`use std::collections::*;`), which the build helper does not read; import the name itself (`use std::collections::BTreeSet;`)"),
    ] {
        let expected = format!("{}{}", at(line), "");
        let found = said
            .lines()
            .any(|l| l.starts_with(&expected) && l.contains(message));
        assert!(found, "no `{message}` at line {line} in:\n{said}");
    }
    assert!(
        !said.contains("main.rs"),
        "an error in generated code:\n{said}"
    );
}

/// A workspace nested in another one's directory, whose flow crate's package,
/// library and root file all have other names than the crate's directory:
/// the build helper takes them from cargo, not from the layout.
#[test]
fn a_renamed_flow_crate_in_a_nested_workspace_gets_its_errors_at_its_lines() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let scratch = scratch("project-nested");
    let outer = scratch.path();
    let inner = outer.join("apps/inner");
    let crate_at = |c: &str| repo.join("build-support").join(c).display().to_string();
    let flow = |visibility: &str| {
        format!(
            "use weir::*;\n\n{visibility}fn double(x: u32) -> u32 {{\n    x * 2\n}}\n\npub fn nested(flow: &FlowBuilder) {{\n    let a = flow.process(\"a\");\n    flow.source_iter(&a, q!(0u32..3))\n        .map(q!(|x| double(x)))\n        .for_each(q!(|x| println!(\"{{}}\", x)));\n}}\n"
        )
    };
    write_files(
        outer,
        &[
            ("Cargo.toml", "[workspace]\nmembers = []\nexclude = [\"apps\"]\n".to_string()),
            ("apps/inner/Cargo.toml", "[workspace]\nmembers = [\"crates/*\"]\nresolver = \"2\"\n".to_string()),
            (
                "apps/inner/crates/flows/Cargo.toml",
                format!("[package]\nname = \"renamed-flows\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[lib]\nname = \"my_flows\"\npath = \"src/all.rs\"\n\n[dependencies]\nweir = {{ path = \"{}\" }}\n", crate_at("weir")),
            ),
            ("apps/inner/crates/flows/src/all.rs", flow("")),
            (
                "apps/inner/crates/bins/Cargo.toml",
                format!("[package]\nname = \"nested_bins\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\nweir-runtime = {{ path = \"{rt}\" }}\nrenamed-flows = {{ path = \"../flows\" }}\n\n[build-dependencies]\nweir-build = {{ path = \"{b}\" }}\nrenamed-flows = {{ path = \"../flows\" }}\n", rt = crate_at("weir-runtime"), b = crate_at("weir-build")),
            ),
            ("apps/inner/crates/bins/build.rs", "fn main() {\n    weir_build::Roles::new().flow(\"nested\", my_flows::nested).build();\n}\n".to_string()),
            ("apps/inner/crates/bins/src/bin/nested-a.rs", weir_build::stub_contents("nested", "a")),
        ],
    );
    std::fs::copy(repo.join("Cargo.lock"), inner.join("Cargo.lock")).unwrap();

    let said = failed_build(&inner, "nested_bins");
    assert!(
        said.contains("error: nested_bins@0.1.0: crates/flows/src/all.rs:10:"),
        "{said}"
    );
    assert!(said.contains("`double` in `my_flows` is private"), "{said}");

    std::fs::write(inner.join("crates/flows/src/all.rs"), flow("pub ")).unwrap();
    let out = user_cargo(&inner, &["build", "-q", "-p", "nested_bins"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let generated = user_target().join("weir/nested/a/main.rs");
    let program = std::fs::read_to_string(&generated).unwrap();
    assert!(program.contains("::my_flows::double"), "{program}");
}

/// Every entry of docs/MISUSES.md names a test that exists.
#[test]
fn each_misuse_in_the_catalogue_names_a_test_that_exists() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let doc = std::fs::read_to_string(repo.join("docs/MISUSES.md")).unwrap();
    let rows: Vec<&str> = doc
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| What"))
        .collect();
    assert!(rows.len() >= 11, "{} entries", rows.len());
    for row in rows {
        let test = row.trim_end_matches(" |").rsplit(" | ").next().unwrap();
        // `path`, or `path`: `test`, `test`; ...
        for part in test.split("; ") {
            let mut names = part.split('`').skip(1).step_by(2);
            let file = names.next().unwrap_or_else(|| panic!("no test in: {row}"));
            let text = std::fs::read_to_string(repo.join(file))
                .unwrap_or_else(|e| panic!("{file} (in: {row}): {e}"));
            for name in names {
                assert!(
                    text.contains(&format!("fn {name}(")),
                    "no `{name}` in {file}"
                );
            }
        }
    }
}
