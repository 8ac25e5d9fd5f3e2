//! Misconfiguration gets a clear error naming the problem and where it is, and
//! nothing hangs: topology files, flags (a log filter too), keys, unreachable peers. (Hostile and
//! broken peers: `hostile.rs`.)

use crate::support::*;

/// Runs a worker of `broadcast` and returns its stderr, asserting it failed.
fn worker_fails(topo: &std::path::Path, extra: &[&str], index: Option<usize>) -> String {
    let out = finish(start("broadcast-worker", topo, index, extra), LIMIT);
    assert!(
        !out.status.success(),
        "expected failure, got success: {}",
        stdout(&out)
    );
    let err = stderr(&out);
    assert!(err.starts_with("error: "), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    err
}

#[test]
fn a_missing_topology_file_is_named() {
    let err = worker_fails(std::path::Path::new("/nonexistent/topo.toml"), &[], Some(0));
    assert!(
        err.contains("cannot read topology file /nonexistent/topo.toml"),
        "{err}"
    );
}

#[test]
fn an_unparsable_topology_names_file_and_line() {
    let topo = Topo::from_text(
        "[leader]\naddresses = [\"127.0.0.1:1\"]\n[worker]\naddresses = 17\n",
        vec![],
    );
    let err = worker_fails(&topo.file, &[], Some(0));
    assert!(err.contains(&topo.file.display().to_string()), "{err}");
    assert!(err.contains("line 4"), "{err}");
}

#[test]
fn a_role_missing_from_the_topology_is_named() {
    let topo = Topo::new(&[("leader", 1)]);
    let err = worker_fails(&topo.file, &[], Some(0));
    assert!(
        err.contains("role `worker` is missing from topology file"),
        "{err}"
    );
}

#[test]
fn an_unknown_role_in_the_topology_is_named() {
    let topo = Topo::new(&[("leader", 1), ("worker", 1), ("wokrer", 1)]);
    let err = worker_fails(&topo.file, &[], Some(0));
    assert!(
        err.contains("lists role `wokrer`, which flow `broadcast` does not have"),
        "{err}"
    );
}

#[test]
fn an_index_out_of_range_or_missing_is_explained() {
    let topo = Topo::new(&[("leader", 1), ("worker", 2)]);
    let err = worker_fails(&topo.file, &[], Some(5));
    assert!(
        err.contains("--index 5 is out of range: role `worker` has 2 member(s)"),
        "{err}"
    );
    let err = worker_fails(&topo.file, &[], None);
    assert!(
        err.contains("say which member this is with --index"),
        "{err}"
    );
}

#[test]
fn an_address_in_use_is_named() {
    let topo = Topo::new(&[("leader", 1), ("worker", 1)]);
    let _taken = std::net::TcpListener::bind(topo.address("worker", 0)).unwrap();
    let err = worker_fails(&topo.file, &[], Some(0));
    assert!(
        err.contains(&format!("cannot listen on {}", topo.address("worker", 0))),
        "{err}"
    );
}

#[test]
fn an_unreachable_peer_is_named_after_the_deadline() {
    let topo = Topo::new(&[("leader", 1), ("worker", 2)]);
    let out = finish(
        start(
            "broadcast-leader",
            &topo.file,
            None,
            &["--connect-timeout", "1"],
        ),
        LIMIT,
    );
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains(&format!("worker/0 at {}", topo.address("worker", 0))),
        "{err}"
    );
}

#[test]
fn an_instance_without_a_key_says_how_to_give_one() {
    let topo = Topo::new(&[("leader", 1), ("worker", 1)]);
    std::fs::remove_file(topo.key()).unwrap();
    let err = worker_fails(&topo.file, &[], Some(0));
    assert!(
        err.contains("no deployment key: pass --key-file FILE"),
        "{err}"
    );
    assert!(err.contains("--insecure-no-auth"), "{err}");
}

#[test]
fn a_missing_or_short_key_file_is_named() {
    let topo = Topo::new(&[("leader", 1), ("worker", 1)]);
    let err = worker_fails(
        &topo.file,
        &["--key-file", "/nonexistent/weir.key"],
        Some(0),
    );
    assert!(
        err.contains("cannot read the key file /nonexistent/weir.key"),
        "{err}"
    );
    std::fs::write(topo.key(), "too short\n").unwrap();
    let err = worker_fails(&topo.file, &[], Some(0));
    assert!(
        err.contains(&format!("key file {}", topo.key().display())),
        "{err}"
    );
    assert!(err.contains("at least 16"), "{err}");
}

#[test]
fn a_previous_key_file_that_does_not_load_is_named() {
    let topo = Topo::new(&[("leader", 1), ("worker", 1)]);
    let err = worker_fails(
        &topo.file,
        &["--previous-key-file", "/nonexistent/old.key"],
        Some(0),
    );
    assert!(
        err.contains("cannot read the key file /nonexistent/old.key"),
        "{err}"
    );
}

#[test]
fn client_tls_files_that_do_not_load_are_named() {
    let topo = Topo::new(&[("leader", 1), ("worker", 1)]);
    let missing = [
        "--client-tls-cert",
        "/nonexistent/c.pem",
        "--client-tls-key",
        "/nonexistent/k.pem",
    ];
    let err = worker_fails(&topo.file, &missing, Some(0));
    assert!(
        err.contains("--client-tls-cert /nonexistent/c.pem"),
        "{err}"
    );
    let not_pem = topo.file.with_file_name("not.pem");
    std::fs::write(&not_pem, "not a certificate\n").unwrap();
    let not_pem = not_pem.display().to_string();
    let err = worker_fails(
        &topo.file,
        &["--client-tls-cert", &not_pem, "--client-tls-key", &not_pem],
        Some(0),
    );
    assert!(err.contains("no PEM certificate"), "{err}");
    let err = worker_fails(&topo.file, &["--client-tls-cert", &not_pem], Some(0));
    assert!(err.contains("--client-tls-key"), "{err}");
}

#[test]
fn insecure_instances_say_so_and_still_run_the_flow() {
    let topo = Topo::new(&[("leader", 1), ("worker", 1)]);
    let insecure = ["--insecure-no-auth"];
    let worker = start("broadcast-worker", &topo.file, Some(0), &insecure);
    let leader = start("broadcast-leader", &topo.file, None, &insecure);
    for out in [finish(leader, LIMIT), finish(worker, LIMIT)] {
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(
            stderr(&out)
                .contains("running without authentication or encryption (--insecure-no-auth)"),
            "{}",
            stderr(&out)
        );
    }
}

#[test]
fn a_log_filter_that_does_not_parse_is_a_usage_error() {
    let topo = Topo::new(&[("leader", 1), ("worker", 1)]);
    let err = worker_fails(&topo.file, &["--log", "info=warn=debug"], Some(0));
    assert!(err.contains("--log"), "{err}");
    assert!(err.contains("not a log filter"), "{err}");
}
