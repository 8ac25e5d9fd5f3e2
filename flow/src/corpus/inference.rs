//! Closures whose parameter types rustc infers from the operator, with and
//! without captures, and accumulators whose fields they use.
//!
//! Each worker sends `(i, 10 * i)` for `i` in `0..RECORDS` to the leader,
//! which receives them tagged with the sender's id, and also sums its own.
//! The workers each send the leader a [`Stats`] of what they sent.

use super::{Stats, Tally};
use readings::Reading;
use weir::*;

/// How many records each worker sends.
pub const RECORDS: u64 = 12;

pub fn inference(flow: &FlowBuilder) {
    let leader = flow.process("leader");
    let workers = flow.cluster("worker");

    let floor = 3u64;
    let label = String::from("sum");
    let skip = vec![4u64, 5];
    let scale = 2u64;

    let sent = flow
        .source_iter(&workers, q!(0..RECORDS))
        .map(q!(|i| (i, i as u32 * 10)));
    let records = sent.clone().send_bincode(&leader);

    // A capture, and every parameter inferred. The highest record wins
    // whatever the order: equal `i`s carry equal `w`s.
    records
        .clone()
        .fold_commutative(
            q!(|| (0u64, 0u32)),
            q!(
                move |state, (_from, (i, w))| if i >= floor && i >= state.0 {
                    *state = (i, w);
                }
            ),
        )
        .into_stream()
        .for_each(q!(|(i, w)| println!("highest {i} {w}")));

    // A struct accumulator whose fields the closure reads and writes
    // (a count, a sum and a maximum: any order).
    records
        .clone()
        .fold_commutative(
            q!(Stats::default),
            q!(move |s, (_, (i, w))| {
                s.count += 1;
                s.total += i * scale;
                s.heaviest = s.heaviest.max(w);
            }),
        )
        .into_stream()
        .for_each(q!(|s| println!(
            "stats count={} total={} heaviest={}",
            s.count, s.total, s.heaviest
        )));

    // A value both closures of one fold capture, which is not `Copy`.
    records
        .clone()
        .fold_commutative(
            q!(move || (label.clone(), 0u64)),
            q!(move |acc, (_, (i, _))| if acc.0 == label {
                acc.1 += i;
            }),
        )
        .into_stream()
        .for_each(q!(|(name, total)| println!("{name} {total}")));

    // Keyed state: a captured `Vec`, a struct accumulator per sender.
    records
        .clone()
        .map(q!(|(from, (i, _))| (from, i)))
        .assume_ordering(nondet!(
            "keyed by sender, and each sender's records arrive in the order it sent them"
        ))
        .fold_keyed(
            q!(Tally::default),
            q!(move |tally, i| if !skip.contains(&i) {
                tally.kept.push(i)
            }),
        )
        .for_each(q!(|(from, tally)| println!(
            "kept from {from}: {:?}",
            tally.kept
        )));

    records
        .clone()
        .map(q!(|(_, (i, _))| i))
        .reduce_commutative(q!(|a, b| *a = (*a).max(b)))
        .into_stream()
        .for_each(q!(|m| println!("max {m}")));

    records
        .map(q!(|(from, (_, w))| (from.index(), w)))
        .reduce_keyed_commutative(q!(|total, w| *total += w))
        .for_each(q!(|(member, total)| println!(
            "weight from {member}: {total}"
        )));

    // Each worker's own summary, sent as a struct (its type is named through
    // a re-export: the module that defines it is private).
    sent.fold(
        q!(Stats::default),
        q!(|s, (i, w)| {
            s.count += 1;
            s.total += i;
            s.heaviest = s.heaviest.max(w);
        }),
    )
    .into_stream()
    .send_bincode(&leader)
    .for_each(q!(|(from, s)| println!(
        "summary from {from}: {} {}",
        s.count, s.total
    )));

    // Record by record, each closure capturing.
    let limit = 10u64;
    flow.source_iter(&leader, q!(0..RECORDS))
        .filter(q!(move |i| *i < limit))
        .filter_map(q!(move |i| (i % 2 == 0).then_some(i * scale)))
        .flat_map(q!(move |i| std::iter::repeat_n(i, floor as usize)))
        .inspect(q!(move |i| assert!(*i <= limit * scale)))
        .enumerate()
        .for_each(q!(|(k, i)| println!("item {k} {i}")));

    // A value of every kind `q!` captures.
    let ratio = 0.5f64;
    let flag = true;
    let sep = ':';
    let name = "c";
    let title = String::from("t");
    let pair = (1u8, -2i16);
    let list = vec![1u32, 2];
    let arr = [7u8; 3];
    let maybe = Some(9u64);
    let reading = Reading {
        sensor: 2,
        celsius: 21.5,
    };
    flow.source_iter(&leader, q!(0..1u32)).for_each(q!(move |n| println!(
        "captures {n} {ratio} {flag} {sep} {name} {title} {pair:?} {list:?} {arr:?} {maybe:?} {} {}",
        reading.sensor, reading.celsius
    )));
}
