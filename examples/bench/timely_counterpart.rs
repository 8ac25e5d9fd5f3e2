//! The Timely dataflow counterparts of the benchmark flows: one worker per
//! process, worker 0 in the role of sender or leader, records exchanged between
//! processes by Timely's own networking. Input is fed in rounds of 100 000
//! records, each round a timestamp.
//!
//! `bench_timely <workload> -w 1 -n <processes> -p <index> -h <hostfile>`, size
//! from `WEIR_BENCH_N`.

use flow::bench::{size, text, Record, Tally};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::vec::Map;
use timely::dataflow::operators::{Exchange, Input, Inspect, Operator, Probe};
use timely::dataflow::InputHandle;
use timely::worker::Worker;
use timely::ExchangeData;

/// Records fed between two steps of the worker.
const ROUND: u64 = 100_000;

/// Worker 0 sends `make(0..n)` to the workers `to` gives; those tally `value(record)`
/// and print the tally.
fn fan_out<T: ExchangeData + Clone>(
    worker: &mut Worker,
    make: fn(u64) -> T,
    value: fn(&T) -> u64,
    to: fn(usize) -> Vec<u64>,
) {
    let index = worker.index();
    let peers = worker.peers();
    let tally = Rc::new(RefCell::new(Tally::default()));
    let mut input = InputHandle::<u64, CapacityContainerBuilder<Vec<T>>>::new();
    let probe = worker.dataflow(|scope| {
        let tally = tally.clone();
        scope
            .input_from(&mut input)
            .flat_map(move |record: T| {
                to(peers)
                    .into_iter()
                    .map(move |peer| (peer, record.clone()))
            })
            .exchange(|(peer, _)| *peer)
            .inspect(move |(_, record)| tally.borrow_mut().add(value(record)))
            .probe()
            .0
    });
    if index == 0 {
        let n = size(1_000_000);
        for i in 0..n {
            input.send(make(i));
            if i % ROUND == ROUND - 1 {
                input.advance_to(i / ROUND + 1);
                worker.step();
            }
        }
    }
    drop(input);
    worker.step_while(|| !probe.done());
    if index != 0 {
        println!("{}", tally.borrow().report());
    }
}

fn word_count(worker: &mut Worker) {
    let index = worker.index();
    let workers = worker.peers() - 1;
    let totals = Rc::new(RefCell::new(HashMap::<String, u64>::new()));
    let mut input = InputHandle::<u64, CapacityContainerBuilder<Vec<String>>>::new();
    let probe = worker.dataflow(|scope| {
        let totals = totals.clone();
        scope
            .input_from(&mut input)
            .unary_frontier::<CapacityContainerBuilder<Vec<(String, u64)>>, _, _, _>(
                Pipeline,
                "Count",
                |capability, _| {
                    let mut capability = Some(capability);
                    let mut counts = HashMap::<String, u64>::new();
                    move |(input, frontier), output| {
                        input.for_each(|_, lines: &mut Vec<String>| {
                            for line in lines.drain(..) {
                                text::count_words(&mut counts, &line);
                            }
                        });
                        if frontier.is_empty() {
                            if let Some(capability) = capability.take() {
                                let mut session = output.session(&capability);
                                for entry in counts.drain() {
                                    session.give(entry);
                                }
                            }
                        }
                    }
                },
            )
            .exchange(|_: &(String, u64)| 0)
            .inspect(move |(word, count): &(String, u64)| {
                *totals.borrow_mut().entry(word.clone()).or_default() += count
            })
            .probe()
            .0
    });
    if index > 0 {
        for (i, line) in text::lines(index - 1, workers, size(1 << 20)).enumerate() {
            input.send(line);
            if i as u64 % ROUND == ROUND - 1 {
                input.advance_to(i as u64 / ROUND + 1);
                worker.step();
            }
        }
    }
    drop(input);
    worker.step_while(|| !probe.done());
    if index == 0 {
        let mut summary = text::Summary::default();
        for (word, count) in totals.borrow().iter() {
            summary.add(word, *count);
        }
        println!("{}", summary.report());
    }
}

fn main() {
    let workload = std::env::args().nth(1).unwrap_or_default();
    let outcome =
        timely::execute_from_args(std::env::args(), move |worker| match workload.as_str() {
            "pipe" => fan_out(worker, |i| i, |&n| n, |_| vec![1]),
            "pipe_struct" => fan_out(worker, Record::new, Record::check, |_| vec![1]),
            "broadcast" => fan_out(worker, |i| i, |&n| n, |peers| (1..peers as u64).collect()),
            "word_count" => word_count(worker),
            other => panic!("unknown workload {other:?}"),
        });
    if let Err(e) = outcome {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
