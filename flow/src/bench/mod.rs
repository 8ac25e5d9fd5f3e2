//! Benchmark flows, and the workloads they share with their hand-written and
//! Timely counterparts (`examples/bench/`): one definition of the records, the
//! text and the checks, so every system does exactly the same work.
//!
//! Sizes come from the environment (`WEIR_BENCH_N`), so one build of the role
//! binaries serves the quick and the full suite. Every result is one line on
//! stdout, `bench key=value ...`, which the benchmark driver parses.

pub mod broadcast;
pub mod ping_pong;
pub mod pipe;
pub mod text;
pub mod word_count;

use serde::{Deserialize, Serialize};
use std::time::Instant;

/// The environment variable giving a workload's size: records, round trips, or
/// bytes of text.
pub const SIZE_VAR: &str = "WEIR_BENCH_N";

/// The workload's size, from [`SIZE_VAR`] (`default` when unset).
pub fn size(default: u64) -> u64 {
    match std::env::var(SIZE_VAR) {
        Ok(value) => value
            .parse()
            .unwrap_or_else(|_| panic!("{SIZE_VAR}={value:?} is not a number")),
        Err(_) => default,
    }
}

/// Counts and sums what a receiver gets, timing from the first record to the last.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    pub count: u64,
    pub sum: u64,
    first: Option<Instant>,
}

impl Tally {
    #[inline]
    pub fn add(&mut self, value: u64) {
        if self.first.is_none() {
            self.first = Some(Instant::now());
        }
        self.count += 1;
        self.sum = self.sum.wrapping_add(value);
    }

    /// The result line: count, sum, and seconds from the first record to now.
    pub fn report(&self) -> String {
        let seconds = self.first.map_or(0.0, |t| t.elapsed().as_secs_f64());
        format!(
            "bench count={} sum={} seconds={seconds:.6}",
            self.count, self.sum
        )
    }
}

/// What `0..n` sums to (wrapping), for checking a [`Tally`].
pub fn expected_sum(n: u64) -> u64 {
    (0..n).fold(0u64, |sum, i| sum.wrapping_add(i))
}

/// A 100-byte record (with fixed-width integers) for the struct pipe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub id: u64,
    pub time: u64,
    pub values: [u64; 10],
    pub flags: u32,
}

impl Record {
    /// Record number `id`, its fields derived from the id so a receiver can check.
    #[inline]
    pub fn new(id: u64) -> Record {
        let mut values = [0u64; 10];
        for (i, v) in values.iter_mut().enumerate() {
            *v = id.wrapping_mul(i as u64 + 1);
        }
        Record {
            id,
            time: id ^ 0x5555,
            values,
            flags: id as u32,
        }
    }

    /// What a [`Tally`] adds for this record: its id if its fields are intact,
    /// something that breaks the sum otherwise.
    #[inline]
    pub fn check(&self) -> u64 {
        if self.values[9] == self.id.wrapping_mul(10) && self.time == self.id ^ 0x5555 {
            self.id
        } else {
            u64::MAX / 3
        }
    }
}

/// Round-trip times, taken on the side that serves the ball: the time between two
/// returns is one round trip.
#[derive(Debug, Clone)]
pub struct RoundTrips {
    expected: u64,
    returns: u64,
    last: Option<Instant>,
    samples: Vec<u32>,
}

impl RoundTrips {
    /// Expects `rounds` returns.
    pub fn new(rounds: u64) -> RoundTrips {
        RoundTrips {
            expected: rounds,
            returns: 0,
            last: None,
            samples: Vec::with_capacity(rounds as usize),
        }
    }

    /// A ball came back. After the last one, returns the result line.
    pub fn returned(&mut self) -> Option<String> {
        let now = Instant::now();
        // The first return also includes the time the links took to settle.
        if let Some(last) = self.last {
            let nanos = now.duration_since(last).as_nanos();
            self.samples.push(nanos.min(u32::MAX as u128) as u32);
        }
        self.last = Some(now);
        self.returns += 1;
        (self.returns == self.expected).then(|| self.report())
    }

    fn report(&mut self) -> String {
        self.samples.sort_unstable();
        let at = |q: f64| {
            let i = ((self.samples.len() as f64 - 1.0) * q).round() as usize;
            self.samples.get(i).map_or(0.0, |&n| f64::from(n) / 1000.0)
        };
        format!(
            "bench rounds={} p50_us={:.2} p99_us={:.2}",
            self.returns,
            at(0.5),
            at(0.99)
        )
    }
}
