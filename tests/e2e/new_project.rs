//! `weir new DIR`, as the README tells a newcomer to run it: the project it
//! writes outside this workspace builds, deploys and passes its own test.

use crate::support::*;
use std::path::Path;
use std::process::Command;

/// Runs `cargo run -p weir-cli -- <args>` in this workspace.
fn weir(args: &[&str]) -> std::process::Output {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    Command::new(env!("CARGO"))
        .args(["run", "-q", "-p", "weir-cli", "--"])
        .args(args)
        .current_dir(root)
        .output()
        .unwrap()
}

#[test]
fn a_new_project_builds_deploys_and_passes_its_test() {
    let parent = std::env::temp_dir().join(format!("weir-new-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&parent);
    let dir = parent.join("myapp");
    let out = weir(&["new", dir.to_str().unwrap()]);
    assert!(out.status.success(), "weir new failed:\n{}", stderr(&out));
    assert!(
        stdout(&out).contains("cargo run --example hello"),
        "{}",
        stdout(&out)
    );

    // The first build builds the role binaries: their stubs are written.
    let out = user_cargo(&dir, &["build", "-q"]);
    assert!(out.status.success(), "cargo build:\n{}", stderr(&out));
    let said = stderr(&out);
    assert!(!said.contains("WEIR_WRITE_STUBS"), "{said}");

    let out = user_cargo(&dir, &["run", "-q", "--example", "hello"]);
    assert!(
        out.status.success(),
        "the deploy script failed:\n{}",
        stderr(&out)
    );
    let printed = stdout(&out);
    for worker in 0..2 {
        for n in 0..3 {
            let line = format!("[worker/{worker}] hello #{n}");
            assert!(
                printed.lines().any(|l| l == line),
                "no `{line}` in:\n{printed}"
            );
        }
    }

    // Cargo, not the working directory, says where the project is.
    let manifest = dir.join("Cargo.toml");
    let elsewhere = std::env::temp_dir();
    let out = user_cargo(
        &elsewhere,
        &[
            "run",
            "-q",
            "--manifest-path",
            manifest.to_str().unwrap(),
            "--example",
            "hello",
        ],
    );
    assert!(
        out.status.success(),
        "run from {}:\n{}",
        elsewhere.display(),
        stderr(&out)
    );
    assert!(
        stdout(&out).contains("[worker/1] hello #2"),
        "{}",
        stdout(&out)
    );
    // The readable copy of the generated code is in the target directory cargo uses.
    let generated = user_target().join("weir/hello/leader/main.rs");
    assert!(generated.is_file(), "no {}", generated.display());

    let out = user_cargo(&dir, &["test", "-q"]);
    assert!(
        out.status.success(),
        "its test failed:\n{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(stdout(&out).contains("1 passed"), "{}", stdout(&out));
    std::fs::remove_dir_all(parent).unwrap();
}

#[test]
fn weir_new_refuses_a_directory_with_files_and_writes_nothing() {
    let dir = std::env::temp_dir().join(format!("weir-new-full-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("Cargo.toml"), "mine").unwrap();
    let out = weir(&["new", dir.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("is not empty: nothing was written"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("Cargo.toml")).unwrap(),
        "mine"
    );
    std::fs::remove_dir_all(dir).unwrap();
}
