//! The flows the simulation tests run, every role in one module each
//! (`$OUT_DIR/weir_simulation.rs`). Role binaries come from `bins/`, not here.
fn main() {
    weir_build::Roles::new()
        .flow("two_pc", flow::two_pc::two_pc)
        .flow("two_pc_majority_bug", flow::two_pc::two_pc_majority_bug)
        .flow("two_pc_tick_bug", flow::two_pc::two_pc_tick_bug)
        .flow("map_reduce", flow::map_reduce::map_reduce)
        .flow(
            "map_reduce_subtraction_bug",
            flow::map_reduce::map_reduce_subtraction_bug,
        )
        .flow("membership", flow::membership::membership)
        .flow("membership_next", flow::membership::membership_next)
        .flow("membership_retyped", flow::membership::membership_retyped)
        .flow("paxos_kv", flow::paxos_kv::paxos_kv)
        .compile_simulation()
        .unwrap_or_else(|e| panic!("{e}"));
}
