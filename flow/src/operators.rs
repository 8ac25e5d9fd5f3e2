//! Every operator, exercised where its result is easy to check. Each role prints
//! one labelled line per result; the end-to-end tests compare them with what the
//! semantics (docs/SEMANTICS.md) say.
//!
//! - `batch`: the record-by-record and whole-tick operators on one tick's batch.
//! - `clock`: a `tick_cycle` counting ticks 0 to 3, and what happens across them
//!   (`persist`, `delta`, `defer_tick`, state kept by a quoted closure, unbounded
//!   aggregation).
//! - `streams`: `source_stream` into `dest_sink`, `source_interval`,
//!   `source_interval_delayed` and `timeout`, until stopped.

use std::pin::Pin;
use std::task::{Context, Poll};
use weir::*;

/// Read by reference, for `cloned`.
pub const LETTERS: &[&str] = &["x", "y"];

/// A record that cannot be cloned, for `demux`: each goes to one branch.
pub struct Unclonable(pub u32);

pub fn operators(flow: &FlowBuilder) {
    batch(flow);
    clock(flow);
    streams(flow);
}

fn batch(flow: &FlowBuilder) {
    let p = flow.process("batch");
    let data = flow
        .source_iter(&p, q!([3u32, 1, 4, 1, 5, 9, 2, 6]))
        .tick_batch();
    let show = |label: &'static str, s: Stream<'_, String, Process<'_>, Bounded>| {
        s.fold(q!(Vec::new), q!(|all, v| all.push(v)))
            .map(q!(move |all| format!("{label} {}", all.join(" "))))
            .into_stream()
            .for_each(q!(|line| println!("{line}")));
    };
    show(
        "map",
        data.clone().map(q!(|n| n * 10)).map(q!(|n| n.to_string())),
    );
    show(
        "filter",
        data.clone()
            .filter(q!(|n| n % 2 == 0))
            .map(q!(|n| n.to_string())),
    );
    show(
        "filter_map",
        data.clone()
            .filter_map(q!(|n| (n > 4).then(|| format!("big{n}")))),
    );
    show(
        "flat_map",
        data.clone()
            .filter(q!(|n| *n < 3))
            .flat_map(q!(|n| vec![n; n as usize]))
            .map(q!(|n| n.to_string())),
    );
    show(
        "enumerate",
        data.clone()
            .enumerate()
            .filter(q!(|(i, _)| *i < 3))
            .map(q!(|(i, n)| format!("{i}:{n}"))),
    );
    show(
        "cloned",
        flow.source_iter(&p, q!(LETTERS.iter()))
            .tick_batch()
            .cloned()
            .inspect(q!(|s| assert!(!s.is_empty())))
            .map(q!(|s| s.to_uppercase())),
    );
    let [zero, one, two] = data
        .clone()
        .map(q!(Unclonable))
        .demux(q!(|r: &Unclonable| r.0 as usize % 4));
    for (label, branch) in [("demux0", zero), ("demux1", one), ("demux2", two)] {
        show(label, branch.map(q!(|Unclonable(n)| n.to_string())));
    }
    show("sort", data.clone().sort().map(q!(|n| n.to_string())));
    show("unique", data.clone().unique().map(q!(|n| n.to_string())));
    show(
        "union",
        data.clone()
            .filter(q!(|n| *n > 5))
            .union(data.clone().filter(q!(|n| *n < 2)))
            .sort()
            .map(q!(|n| n.to_string())),
    );
    data.clone()
        .count()
        .into_stream()
        .for_each(q!(|n| println!("count {n}")));
    data.clone()
        .reduce(q!(|sum, n| *sum += n))
        .into_stream()
        .for_each(q!(|n| println!("reduce {n}")));
    data.clone()
        .first()
        .into_stream()
        .for_each(q!(|n| println!("first {n}")));
    let parity = data.clone().map(q!(|n| (n % 2, n)));
    show(
        "fold_keyed",
        parity
            .clone()
            .fold_keyed(q!(|| 0u32), q!(|sum, n| *sum += n))
            .sort()
            .map(q!(|(k, sum)| format!("{k}={sum}"))),
    );
    show(
        "reduce_keyed",
        parity
            .clone()
            .reduce_keyed(q!(|max, n| *max = (*max).max(n)))
            .sort()
            .map(q!(|(k, max)| format!("{k}={max}"))),
    );
    let names = flow
        .source_iter(&p, q!([(1u32, "one"), (3, "three"), (7, "seven")]))
        .tick_batch();
    show(
        "join",
        data.clone()
            .map(q!(|n| (n, ())))
            .join(names.clone())
            .sort()
            .map(q!(|(n, ((), name))| format!("{n}={name}"))),
    );
    show(
        "anti_join",
        names
            .clone()
            .anti_join(data.clone())
            .map(q!(|(n, name)| format!("{n}={name}"))),
    );
    show(
        "filter_not_in",
        data.clone()
            .filter_not_in(flow.source_iter(&p, q!([1u32, 9])).tick_batch())
            .map(q!(|n| n.to_string())),
    );
    let pair = flow.source_iter(&p, q!(['a', 'b'])).tick_batch();
    show(
        "cross_product",
        flow.source_iter(&p, q!([1u32, 2]))
            .tick_batch()
            .cross_product(pair)
            .sort()
            .map(q!(|(n, c)| format!("{n}{c}"))),
    );
    let total = data.clone().fold(q!(|| 0u32), q!(|sum, n| *sum += n));
    show(
        "cross_singleton",
        data.clone()
            .filter(q!(|n| *n > 5))
            .cross_singleton(total)
            .map(q!(|(n, total)| format!("{n}/{total}"))),
    );
    let some = data.clone().filter(q!(|n| *n == 9)).first();
    let none = data.clone().filter(q!(|n| *n == 8)).first();
    show(
        "continue_if",
        data.clone()
            .filter(q!(|n| *n < 2))
            .continue_if(some.clone())
            .map(q!(|n| n.to_string())),
    );
    show(
        "continue_unless",
        data.clone()
            .filter(q!(|n| *n < 2))
            .continue_unless(none)
            .map(q!(|n| n.to_string())),
    );
    show(
        "continue_unless_some",
        data.filter(q!(|n| *n < 2))
            .continue_unless(some)
            .map(q!(|n| n.to_string())),
    );
}

fn clock(flow: &FlowBuilder) {
    let p = flow.process("clock");
    // Tick k carries k, for k = 0 to 3; then nothing is deferred and the role ends.
    let (next, ticks) = p.tick_cycle_with_initial(q!([0u32]));
    next.complete(
        ticks
            .clone()
            .filter(q!(|t| *t < 3))
            .map(q!(|t| t + 1))
            .defer_tick(),
    );
    let now = ticks.clone().fold(q!(|| 0u32), q!(|now, t| *now = t));
    ticks
        .clone()
        .persist()
        .cross_singleton(now.clone())
        .for_each(q!(|(t, now)| println!("persist {now}: {t}")));
    ticks
        .clone()
        .persist()
        .map(q!(|t| t / 2))
        .unique()
        .delta()
        .cross_singleton(now.clone())
        .for_each(q!(|(half, now)| println!("delta {now}: {half}")));
    ticks
        .clone()
        .defer_tick()
        .cross_singleton(now.clone())
        .for_each(q!(|(t, now)| println!("defer_tick {now}: {t}")));
    now.clone()
        .filter(q!(|now| now % 2 == 1))
        .map(q!(|now| now * 10))
        .into_stream()
        .for_each(q!(|n| println!("singleton {n}")));
    // An unbounded cycle: what is fed in one tick comes back in the next.
    let (feed, echoes) = p.cycle::<u32>();
    feed.complete(ticks.clone().all_ticks().map(q!(|t| t * 100)));
    echoes
        .tick_batch()
        .cross_singleton(now)
        .for_each(q!(|(echo, now)| println!("cycle {now}: {echo}")));
    // Created once, so its count survives from tick to tick.
    ticks.clone().all_ticks().for_each(q!({
        let mut seen = 0;
        move |_| {
            seen += 1;
            println!("stateful {seen}");
        }
    }));
    let all = ticks.all_ticks();
    all.clone()
        .fold(q!(|| 0u32), q!(|sum, t| *sum += t))
        .into_stream()
        .for_each(q!(|sum| println!("final sum {sum}")));
    all.clone()
        .count()
        .into_stream()
        .for_each(q!(|n| println!("final count {n}")));
    all.count()
        .latest()
        .all_ticks()
        .for_each(q!(|n| println!("latest {n}")));
}

fn streams(flow: &FlowBuilder) {
    let p = flow.process("streams");
    flow.source_stream(&p, q!(Countdown(3)))
        .map(q!(|n| format!("countdown {n}")))
        .dest_sink(q!(PrintSink));
    // Three beats 50 ms apart, then silence: `timeout` speaks up only then.
    let beats = flow
        .source_interval(&p, q!(std::time::Duration::from_millis(50)))
        .enumerate()
        .filter(q!(|(i, _)| *i < 3));
    beats
        .clone()
        .for_each(q!(|(i, _at)| println!("interval {i}")));
    beats
        .timeout(q!(std::time::Duration::from_millis(200)))
        .for_each(q!(|()| println!("timeout")));
    flow.source_interval_delayed(
        &p,
        q!(std::time::Duration::from_millis(300)),
        q!(std::time::Duration::from_secs(60)),
    )
    .for_each(q!(|_at| println!("delayed")));
}

/// A `futures` stream of `n, n-1, ..., 1`.
pub struct Countdown(pub u32);

impl futures_core::Stream for Countdown {
    type Item = u32;

    fn poll_next(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<u32>> {
        let n = self.0;
        self.0 = n.saturating_sub(1);
        Poll::Ready((n > 0).then_some(n))
    }
}

/// A `futures` sink printing each line, and `sink closed` when closed.
pub struct PrintSink;

impl futures_sink::Sink<String> for PrintSink {
    type Error = std::convert::Infallible;

    fn poll_ready(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn start_send(self: Pin<&mut Self>, line: String) -> Result<(), Self::Error> {
        println!("{line}");
        Ok(())
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        println!("sink closed");
        Poll::Ready(Ok(()))
    }
}
