//! Names reach quoted code every way a module brings them in: a glob of
//! `weir`, braced, nested and renamed imports from a library crate, a std
//! type imported privately, a trait imported for its methods, an enum's
//! variants by glob, a nested module, `super::`, and a renamed import of a
//! re-export.
//!
//! The leader reads the first `READINGS` readings of the `readings` series
//! and deals them round robin to the sensors; each sorts its readings into
//! buckets and sends them back, and the leader counts them per bucket.

use super::Stats as Summary;
use readings::fahrenheit as to_fahrenheit;
use readings::{sample, units::Scale, Reading};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use weir::*;
use Parity::*;

/// How many readings the leader deals.
pub const READINGS: u64 = 24;

pub enum Parity {
    Even,
    Odd,
}

pub fn parity(n: u32) -> Parity {
    if n.is_multiple_of(2) {
        Even
    } else {
        Odd
    }
}

pub mod buckets {
    /// How wide a bucket is, in degrees Celsius.
    pub const WIDTH: f64 = 2.5;

    pub fn bucket(celsius: f64) -> u32 {
        (celsius / WIDTH) as u32
    }

    /// "even" or "odd", for a bucket's number.
    pub fn describe(n: u32) -> &'static str {
        match super::parity(n) {
            super::Parity::Even => "even",
            super::Parity::Odd => "odd",
        }
    }
}

pub fn imports(flow: &FlowBuilder) {
    let leader = flow.process("leader");
    let sensors = flow.cluster("sensor");

    let sorted = flow
        .source_iter(&leader, q!((0..READINGS).map(|n| sample(n))))
        .round_robin_bincode(&sensors)
        .map(q!(|r: Reading| (
            buckets::bucket(r.celsius),
            Scale::Fahrenheit.show(r.celsius),
            to_fahrenheit(r.celsius) > 60.0,
        )))
        .send_bincode(&leader);

    // Counts per bucket: the sensors' readings may come in any order.
    sorted
        .clone()
        .fold_commutative(
            q!(BTreeMap::new),
            q!(
                |per_bucket, (_, (bucket, _, _)): (ClusterId, (u32, String, bool))| {
                    *per_bucket.entry(bucket).or_insert(0u32) += 1;
                }
            ),
        )
        .into_stream()
        .for_each(q!(|per_bucket| {
            let mut line = String::new();
            for (bucket, n) in per_bucket {
                let kind = match parity(bucket) {
                    Even => "e",
                    Odd => "o",
                };
                let _ = write!(line, " {bucket}{kind}={n}");
            }
            println!("buckets{line}");
        }));

    sorted
        .map(q!(|(from, (bucket, shown, warm))| (
            from,
            bucket,
            buckets::describe(bucket),
            shown,
            warm
        )))
        .for_each(q!(|(from, bucket, kind, shown, warm)| println!(
            "reading at {from}: bucket {bucket} ({kind}), {shown} F, warm={warm}"
        )));

    // A renamed import of a re-exported struct, as a type and a value.
    flow.source_iter(&leader, q!([3u64, 4]))
        .fold(
            q!(|| Summary {
                count: 0,
                total: 0,
                heaviest: 0
            }),
            q!(|s: &mut Summary, n| {
                s.count += 1;
                s.total += n;
            }),
        )
        .into_stream()
        .for_each(q!(|s| println!("summary {} {}", s.count, s.total)));
}
