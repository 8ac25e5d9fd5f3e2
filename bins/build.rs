fn main() {
    weir_build::Roles::new()
        .flow("broadcast", flow::broadcast::broadcast)
        .flow("pipeline", flow::pipeline::pipeline)
        .flow("first_ten", flow::first_ten::first_ten)
        .flow(
            "first_ten_distributed",
            flow::first_ten_distributed::first_ten_distributed,
        )
        .flow(
            "first_ten_cluster",
            flow::first_ten_cluster::first_ten_cluster,
        )
        .flow("compute_pi", flow::compute_pi::compute_pi)
        .flow("map_reduce", flow::map_reduce::map_reduce)
        .flow(
            "graph_reachability",
            flow::graph_reachability::graph_reachability,
        )
        .flow("two_pc", flow::two_pc::two_pc)
        .flow("membership", flow::membership::membership)
        .flow("flood", flow::flood::flood)
        .flow("paxos_kv", flow::paxos_kv::paxos_kv)
        .flow("operators", flow::operators::operators)
        .flow("relay", flow::relay::relay)
        .flow("ring", flow::ring::ring)
        .flow("tally", flow::tally::tally)
        .flow("bench_pipe", flow::bench::pipe::bench_pipe)
        .flow("bench_pipe_struct", flow::bench::pipe::bench_pipe_struct)
        .flow("bench_broadcast", flow::bench::broadcast::bench_broadcast)
        .flow("bench_ping_pong", flow::bench::ping_pong::bench_ping_pong)
        .flow(
            "bench_word_count",
            flow::bench::word_count::bench_word_count,
        )
        .flow("corpus_inference", flow::corpus::inference::inference)
        .flow("corpus_imports", flow::corpus::imports::imports)
        .flow("corpus_counter", flow::corpus::counter::counter)
        .build();
}
