//! Simulation tests: every role of a flow in this one process, its real
//! generated programs on weir-sim's seeded network, in virtual time.

/// The generated programs of the flows named in `tests/build.rs`.
#[allow(clippy::all, unused_imports, dead_code)]
mod simulation {
    include!(concat!(env!("OUT_DIR"), "/weir_simulation.rs"));
}

/// The tests, in `tests/sim/`. Every test's name starts with `sim::`, so
/// `cargo test -- sim` picks them.
mod sim {
    mod determinism;
    mod membership;
    mod paxos_kv;
    mod two_pc;
}
