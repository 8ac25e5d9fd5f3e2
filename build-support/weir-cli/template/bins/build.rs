// Evaluates each flow and generates one program per role. A new flow needs a
// line here, and its role stubs in src/bin (`WEIR_WRITE_STUBS=1 cargo build`).
fn main() {
    weir_build::Roles::new()
        .flow("hello", {{ident}}_flow::hello)
        .build();
}
