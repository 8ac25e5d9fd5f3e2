//! End-to-end tests: the role binaries built by `bins/build.rs`, run as separate
//! processes talking over loopback sockets. The binaries are built once per run.

mod support;

mod addresses;
mod bad_input;
mod bench;
mod build_errors;
mod builds_apart;
mod codegen;
mod corpus;
mod deploy;
mod durable;
mod faults;
mod flows;
mod health;
mod hostile;
mod hosts;
mod manifests;
mod new_project;
mod observe;
mod on_path;
mod operators;
mod paxos_kv;
mod programs;
mod tolerant;
