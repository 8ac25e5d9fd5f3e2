//! `q!` as a flow author meets it: inference, captures, and evaluation order.

use serde::{Deserialize, Serialize};
use weir::ir::CaptureValue;
use weir::*;

#[derive(Serialize, Deserialize, PartialEq, Debug)]
struct Config {
    name: String,
    limits: Vec<u32>,
}

struct Point {
    x: u32,
}

fn graph(f: impl FnOnce(&FlowBuilder)) -> ir::FlowGraph {
    let flow = FlowBuilder::new();
    f(&flow);
    flow.finish()
}

#[test]
fn closure_parameter_types_are_inferred_from_the_operator() {
    let g = graph(|flow| {
        let p = flow.process("p");
        flow.source_iter(&p, q!((0..3u32).map(|x| Point { x })))
            .map(q!(|p| p.x * 2))
            .filter(q!(|x| *x > 1))
            .for_each(q!(|x| println!("{}", x + 1)));
    });
    assert!(g.errors.is_empty(), "{:?}", g.errors);
    let ops: Vec<_> = g.nodes.iter().map(|n| n.op.name()).collect();
    assert_eq!(ops, ["source_iter", "map", "filter", "for_each"]);
}

#[test]
fn a_closure_that_captures_locals_needs_no_move() {
    let scale = 2.5f64;
    let offset = 1u32;
    let g = graph(|flow| {
        let p = flow.process("p");
        flow.source_iter(&p, q!(0..4u32))
            .map(q!(|i| f64::from(i + offset) * scale))
            .for_each(q!(|x| println!("{x}")));
    });
    assert!(g.errors.is_empty(), "{:?}", g.errors);
    let map = &g.nodes[1].args[0];
    assert!(map.code.starts_with("move"), "{}", map.code);
    let names: Vec<&str> = map.captures.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["offset", "scale"]);
    // A closure without captures is quoted as written.
    assert!(!g.nodes[2].args[0].code.starts_with("move"));
}

#[test]
fn quoted_code_is_never_run_at_build_time() {
    let g = graph(|flow| {
        let p = flow.process("p");
        flow.source_iter(
            &p,
            q!({
                std::process::exit(7);
                vec![1u8]
            }),
        )
        .for_each(q!(|_| panic!("never")));
    });
    assert!(g.errors.is_empty());
    assert!(g.nodes[0].args[0].code.contains("exit"));
}

#[test]
fn literal_captures_are_spliced_as_source() {
    let factor = 3u64;
    let label = String::from("n=");
    let pair = (1i8, 'x');
    let g = graph(|flow| {
        let p = flow.process("p");
        flow.source_iter(&p, q!(0..10u64))
            .map(q!(move |n| format!("{}{}{:?}", label, n * factor, pair)))
            .for_each(q!(|s| println!("{s}")));
    });
    let caps = &g.nodes[1].args[0].captures;
    let by_name = |n: &str| {
        caps.iter()
            .find(|(name, _)| name == n)
            .map(|(_, v)| v.clone())
            .unwrap()
    };
    assert_eq!(
        by_name("factor"),
        CaptureValue::Literal {
            ty: "u64".into(),
            expr: "3u64".into()
        }
    );
    assert_eq!(
        by_name("label"),
        CaptureValue::Literal {
            ty: "::std::string::String".into(),
            expr: "::std::string::String::from(\"n=\")".into()
        }
    );
    assert_eq!(
        by_name("pair"),
        CaptureValue::Literal {
            ty: "(i8, char,)".into(),
            expr: "(1i8, 'x',)".into()
        }
    );
    // The locals are only borrowed: still usable after the flow is built.
    assert_eq!(label, "n=");
}

#[test]
fn serde_captures_are_spliced_as_bytes_that_decode_to_the_value() {
    let config = Config {
        name: "c".into(),
        limits: vec![1, 2],
    };
    let g = graph(|flow| {
        let p = flow.process("p");
        flow.source_iter(&p, q!(0..10u32))
            .filter(q!(move |n| config.limits.contains(n)))
            .for_each(q!(|n| println!("{n}")));
    });
    let (name, value) = &g.nodes[1].args[0].captures[0];
    assert_eq!(name, "config");
    let CaptureValue::Serde { ty, bytes } = value else {
        panic!("{value:?}")
    };
    assert!(ty.ends_with("Config"), "{ty}");
    let decoded: Config = weir_core::codec::decode_value(bytes).unwrap();
    assert_eq!(decoded, config);
}

#[test]
fn quote_records_where_it_was_written() {
    let g = graph(|flow| {
        let p = flow.process("p");
        flow.source_iter(&p, q!(0..1)).for_each(q!(|_: i32| {}));
    });
    let at = &g.nodes[1].args[0].at;
    assert!(at.file.ends_with("tests/quote.rs"), "{at}");
    assert_eq!(at.line, line!() - 4);
}

#[test]
fn a_quote_not_passed_directly_is_an_error_at_the_operator() {
    let g = graph(|flow| {
        let p = flow.process("p");
        let a = q!(0..1);
        let _b = q!(0..2);
        flow.source_iter(&p, a).for_each(q!(|_: i32| {}));
    });
    assert_eq!(g.errors.len(), 1, "{:?}", g.errors);
    assert!(
        g.errors[0].message.contains("pass each `q!(...)` directly"),
        "{}",
        g.errors[0]
    );
}

#[test]
fn duplicate_roles_and_self_sends_are_reported_with_their_place() {
    let g = graph(|flow| {
        let a = flow.process("leader");
        let _b = flow.process("leader");
        flow.source_iter(&a, q!(0..1))
            .send_bincode(&a)
            .for_each(q!(|_: i32| {}));
    });
    let messages: Vec<String> = g.errors.iter().map(ToString::to_string).collect();
    assert_eq!(messages.len(), 2, "{messages:?}");
    assert!(
        messages[0].contains("role `leader` is declared twice"),
        "{}",
        messages[0]
    );
    assert!(messages[1].contains("to itself"), "{}", messages[1]);
    assert!(messages.iter().all(|m| m.contains("tests/quote.rs:")));
}

#[test]
fn an_edge_to_another_flows_location_is_reported() {
    let other = FlowBuilder::new();
    let elsewhere = other.cluster("worker");
    let g = graph(|flow| {
        let p = flow.process("leader");
        flow.source_iter(&p, q!(0..1))
            .broadcast_bincode(&elsewhere)
            .for_each(q!(|_: i32| {}));
    });
    assert!(
        g.errors.iter().any(|e| e.message.contains("another flow")),
        "{:?}",
        g.errors
    );
}

pub struct Leader;
impl Role for Leader {}
pub struct KvServer;
impl Role for KvServer {}

#[test]
fn marker_typed_locations_derive_their_role_names() {
    let g = graph(|flow| {
        let leader = flow.process_of::<Leader>();
        let servers = flow.cluster_of::<KvServer>();
        flow.source_iter(&leader, q!(0..3u32))
            .broadcast_bincode(&servers)
            .for_each(q!(|_| {}));
    });
    assert!(g.errors.is_empty(), "{:?}", g.errors);
    let names: Vec<&str> = g.locations.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, ["leader", "kv_server"]);
}
