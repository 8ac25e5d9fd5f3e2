fn main() {
    weir_build::Roles::new()
        .flow("broadcast", flow::broadcast::broadcast)
        .flow("pipeline", flow::pipeline::pipeline)
        .compile()
        .unwrap();
}
