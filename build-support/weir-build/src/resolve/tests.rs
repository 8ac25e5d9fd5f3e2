use super::*;
use weir::ir::SourceLoc;

/// A flow crate `fx`, written the ways users write modules.
fn fixture() -> tempfile::TempDir {
    let fixture = tempfile::Builder::new()
        .prefix("weir-resolve-")
        .tempdir()
        .unwrap();
    let dir = fixture.path();
    std::fs::create_dir_all(dir.join("src/nested")).unwrap();
    let files = [
        (
            "lib.rs",
            "pub mod util;\npub mod nested;\nmod hidden { pub fn f() {} pub struct Shape; }\n\
             pub use hidden::Shape;\n\
             pub enum Msg { Ping(u32), Pong }\n\
             pub mod inner {\n\
                 use crate::util::helper;\n\
                 use crate::util::{Point, secret_twice as twice};\n\
                 use std::collections::BTreeMap;\n\
                 use weir::*;\n\
                 use super::Msg::*;\n\
                 pub use crate::util::helper as exported;\n\
                 fn private() {}\n\
                 pub fn public() {}\n\
             }\n\
             pub mod foreign { use std::collections::*; use std::fmt::*; use std::io::*; use std::ops::*; use crate::util::*; }\n",
        ),
        (
            "util.rs",
            "pub fn helper() {}\nfn secret() {}\npub fn secret_twice() {}\npub struct Point;\npub const LIMIT: u32 = 3;\n",
        ),
        (
            "nested/mod.rs",
            "pub mod deep;\nuse crate::util;\npub(crate) fn local() {}\n",
        ),
        ("nested/deep.rs", "use super::super::util::Point as P;\nuse super::*;\n"),
    ];
    for (file, text) in files {
        std::fs::write(dir.join("src").join(file), text).unwrap();
    }
    fixture
}

fn deps(names: &[&str]) -> Vec<Dependency> {
    names
        .iter()
        .map(|n| Dependency {
            name: n.to_string(),
            declared: "{ version = \"1\" }".into(),
        })
        .collect()
}

/// `code` quoted in `module` of the fixture: the code generated code
/// gets, or the problems.
fn resolve(code: &str, module: &str) -> Result<String, Vec<String>> {
    let fixture = fixture();
    let dir = fixture.path();
    let mut quoted = QuotedExpr {
        code: code.into(),
        at: SourceLoc {
            file: dir.join("src/lib.rs").display().to_string(),
            line: 3,
            column: 9,
        },
        module: module.into(),
        captures: Vec::new(),
        traits_in_scope: Vec::new(),
    };
    let mut sources = FlowSources::new(dir.to_path_buf(), HashMap::new());
    let crate_deps = HashMap::from([("fx".to_string(), deps(&["weir", "serde", "rand"]))]);
    let own = deps(&["weir_runtime", "fx", "serde"]);
    let problems = Resolver::new(&mut sources, &crate_deps, &own, "bins").resolve(&mut quoted);
    if problems.is_empty() {
        Ok(quoted.code.replace(' ', ""))
    } else {
        Err(problems.into_iter().map(|p| p.message).collect())
    }
}

/// `code` quoted in `module` resolves to `expected`.
#[track_caller]
fn assert_resolves(code: &str, module: &str, expected: &str) {
    assert_eq!(
        resolve(code, module).as_deref(),
        Ok(expected),
        "`{code}` in `{module}`"
    );
}

#[test]
fn items_of_the_module_and_of_others_by_path() {
    assert_resolves(
        "__weir_self :: public ()",
        "fx::inner",
        "::fx::inner::public()",
    );
    assert_resolves(
        "__weir_crate :: util :: helper ()",
        "fx::inner",
        "::fx::util::helper()",
    );
    assert_resolves(
        "__weir_self :: super :: util :: Point",
        "fx::inner",
        "::fx::util::Point",
    );
    // A child module named without `self::`.
    assert_resolves(
        "|p| util :: helper (p . util) . max (u32 :: MAX)",
        "fx",
        "|p|::fx::util::helper(p.util).max(u32::MAX)",
    );
    assert_resolves("[inner :: public ()]", "fx", "[::fx::inner::public()]");
}

#[test]
fn imported_names_resolve_to_what_they_import() {
    // `use a::b;`, braced and renamed, a std type, an enum's variants by glob.
    assert_resolves(
        "__weir_self :: helper ()",
        "fx::inner",
        "::fx::util::helper()",
    );
    assert_resolves("__weir_self :: Point", "fx::inner", "::fx::util::Point");
    assert_resolves(
        "__weir_self :: twice ()",
        "fx::inner",
        "::fx::util::secret_twice()",
    );
    assert_resolves(
        "__weir_self :: BTreeMap :: < u32 , u32 > :: new ()",
        "fx::inner",
        "::std::collections::BTreeMap::<u32,u32>::new()",
    );
    assert_resolves(
        "| m | matches ! (m , __weir_self :: Ping (_))",
        "fx::inner",
        "|m|matches!(m,::fx::Msg::Ping(_))",
    );
    // Glob of a flow module, `super::*`, a renamed import two levels up.
    assert_resolves("__weir_self :: LIMIT", "fx::foreign", "::fx::util::LIMIT");
    assert_resolves("__weir_self :: P", "fx::nested::deep", "::fx::util::Point");
    // A module imported by name.
    assert_resolves("util :: helper ()", "fx::nested", "::fx::util::helper()");
    // A public re-export keeps its own path: the item's module is private.
    assert_resolves("__weir_crate :: Shape", "fx::inner", "::fx::Shape");
}

#[test]
fn weir_names_are_the_runtimes() {
    assert_resolves(
        "| x : (__weir_self :: ClusterId , u64) | x",
        "fx::inner",
        "|x:(::weir_runtime::ClusterId,u64)|x",
    );
    assert_resolves(
        "weir :: ClientEvent :: Request (u)",
        "fx",
        "::weir_runtime::ClientEvent::Request(u)",
    );
    let err = resolve("weir :: FlowBuilder :: new ()", "fx").unwrap_err();
    assert!(
        err[0].starts_with("`weir::FlowBuilder::new` is part of Weir's flow API"),
        "{err:?}"
    );
    assert!(err[0].contains("`weir::ClusterId`"), "{err:?}");
}

#[test]
fn other_crates_must_be_dependencies_of_the_generated_code() {
    assert_resolves("serde :: de :: IgnoredAny", "fx", "::serde::de::IgnoredAny");
    let err = resolve("rand :: random :: < u8 > ()", "fx").unwrap_err();
    assert_eq!(
        err,
        ["quoted code uses the crate `rand`, but the role binaries' package `bins` does not depend on it: add `rand = { version = \"1\" }` to its [dependencies]"]
    );
}

#[test]
fn globs_of_other_crates_side_by_side_resolve_at_once() {
    // Each glob's path asks what `std` is, whose lookup reads the globs.
    // (Without the guard against cycles this lookup branches 4^24 ways.)
    let err = resolve("__weir_self :: BTreeSet :: new ()", "fx::foreign").unwrap_err();
    assert!(
        err[0].starts_with("cannot tell where `BTreeSet` comes from"),
        "{err:?}"
    );
}

#[test]
fn a_name_from_another_crates_glob_asks_for_a_named_import() {
    let err = resolve("__weir_self :: BTreeMap :: new ()", "fx::foreign").unwrap_err();
    assert_eq!(err.len(), 1, "{err:?}");
    assert!(err[0].starts_with("cannot tell where `BTreeMap` comes from: `fx::foreign` imports from another crate with a glob (`use std::collections::*;`)"), "{err:?}");
    assert!(
        err[0].ends_with("(`use std::collections::BTreeMap;`)"),
        "{err:?}"
    );
}

#[test]
fn private_items_are_named_with_the_fix() {
    let p = resolve("| x | __weir_self :: private (x)", "fx::inner").unwrap_err();
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(
        p[0].starts_with("`private` in `fx::inner` is private"),
        "{}",
        p[0]
    );
    assert!(p[0].ends_with("make it `pub`"), "{}", p[0]);
    let p = resolve("__weir_crate :: util :: secret ()", "fx").unwrap_err();
    assert!(
        p[0].starts_with("`secret` in `fx::util` is private"),
        "{p:?}"
    );
    let p = resolve("__weir_crate :: hidden :: f ()", "fx").unwrap_err();
    assert!(p[0].starts_with("module `fx::hidden` is private"), "{p:?}");
    let p = resolve("__weir_self :: local ()", "fx::nested").unwrap_err();
    assert!(
        p[0].starts_with("`local` in `fx::nested` is private"),
        "{p:?}"
    );
}

#[test]
fn unknown_names_are_left_to_rustc() {
    assert_resolves(
        "__weir_self :: generated_by_a_macro ()",
        "fx::inner",
        "::fx::inner::generated_by_a_macro()",
    );
    assert_resolves("Vec :: < u8 > :: new ()", "fx", "Vec::<u8>::new()");
}

#[test]
fn a_crate_root_cargo_names_is_used_whatever_its_file_is_called() {
    // `[lib] path = "src/flows.rs"`: no `lib.rs` to find by walking up.
    let fixture = fixture();
    let dir = fixture.path();
    std::fs::rename(dir.join("src/lib.rs"), dir.join("src/flows.rs")).unwrap();
    let mut quoted = QuotedExpr {
        code: "| x | __weir_self :: private (x)".into(),
        at: SourceLoc {
            file: "fx/src/flows.rs".into(),
            line: 3,
            column: 9,
        },
        module: "fx::inner".into(),
        captures: Vec::new(),
        traits_in_scope: Vec::new(),
    };
    let roots = HashMap::from([("fx".to_string(), dir.join("src/flows.rs"))]);
    let mut sources = FlowSources::new(dir.parent().unwrap().to_path_buf(), roots);
    let none = HashMap::new();
    let p = Resolver::new(&mut sources, &none, &[], "bins").resolve(&mut quoted);
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(
        p[0].message
            .starts_with("`private` in `fx::inner` is private"),
        "{p:?}"
    );
    assert_eq!(p[0].at.as_deref(), Some("fx/src/flows.rs:3:9"));
}
