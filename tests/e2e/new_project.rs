//! `weir new DIR`, as the README tells a newcomer to run it: the project it
//! writes outside this workspace builds, deploys and passes its own test.

use crate::support::*;
use std::process::Command;

#[test]
fn a_new_project_builds_deploys_and_passes_its_test() {
    let parent = scratch("new");
    let dir = parent.path().join("myapp");
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

    // A second flow, added as the README says: its stubs, then its binaries.
    let flow = dir.join("flow/src/lib.rs");
    let mut flows = std::fs::read_to_string(&flow).unwrap();
    flows.push_str("\npub fn echo(flow: &FlowBuilder) {\n    let a = flow.process(\"speaker\");\n    flow.source_iter(&a, q!([\"echo\"]))\n        .for_each(q!(|w| println!(\"{w}\")));\n}\n");
    std::fs::write(&flow, flows).unwrap();
    let build_rs = dir.join("bins/build.rs");
    let script = std::fs::read_to_string(&build_rs).unwrap().replace(
        ".flow(\"hello\", myapp_flow::hello)",
        ".flow(\"hello\", myapp_flow::hello)\n        .flow(\"echo\", myapp_flow::echo)",
    );
    std::fs::write(&build_rs, script).unwrap();
    let out = user_cargo(&dir, &["build", "-q"]);
    assert!(!out.status.success(), "built without the stubs");
    assert!(
        stderr(&out).contains("WEIR_WRITE_STUBS=1"),
        "{}",
        stderr(&out)
    );
    let out = Command::new(env!("CARGO"))
        .arg("build") // not `-q`, which hides the build script's warnings
        .current_dir(&dir)
        .env("CARGO_TARGET_DIR", user_target())
        .env("WEIR_WRITE_STUBS", "1")
        .output()
        .unwrap();
    assert!(
        stderr(&out).contains("run the build again"),
        "{}",
        stderr(&out)
    );
    assert!(dir.join("bins/src/bin/echo-speaker.rs").is_file());
    let out = user_cargo(&dir, &["build", "-q"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let topo = Topo::new(&[("speaker", 1)]);
    let speaker = Command::new(user_target().join("debug/echo-speaker"))
        .arg("--topology")
        .arg(&topo.file)
        .arg("--key-file")
        .arg(topo.key())
        .output()
        .unwrap();
    assert_eq!(stdout(&speaker), "echo\n", "{}", stderr(&speaker));

    // The first flow removed from build.rs: its stubs are named, once each.
    let script = std::fs::read_to_string(&build_rs)
        .unwrap()
        .replace("\n        .flow(\"hello\", myapp_flow::hello)", "");
    std::fs::write(&build_rs, script).unwrap();
    let out = user_cargo(&dir, &["build", "-q"]);
    assert!(!out.status.success(), "built with stale stubs");
    let said = stderr(&out);
    for role in ["leader", "worker"] {
        let named = format!("bins/src/bin/hello-{role}.rs: this stub includes role `{role}` of flow `hello`, which build.rs does not register");
        assert_eq!(said.matches(&named).count(), 1, "{said}");
    }
    assert!(!said.contains("couldn't read"), "{said}");
    // Its stubs removed, the project builds; its test, which runs `hello`'s
    // binaries, fails naming them, though an earlier build left them behind.
    for role in ["leader", "worker"] {
        std::fs::remove_file(dir.join(format!("bins/src/bin/hello-{role}.rs"))).unwrap();
    }
    let out = user_cargo(&dir, &["build", "-q"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(user_target().join("debug/hello-leader").exists());
    let out = user_cargo(&dir, &["test", "-q"]);
    assert!(!out.status.success(), "its test passed on stale binaries");
    assert!(
        stderr(&out).contains("package `myapp-bins` has no binary `hello-leader`")
            || stdout(&out).contains("package `myapp-bins` has no binary `hello-leader`"),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
}

#[test]
fn weir_new_refuses_a_directory_with_files_and_writes_nothing() {
    let scratch = scratch("new-full");
    let dir = scratch.path();
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
}
