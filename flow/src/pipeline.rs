//! A producer parses readings, keeps those inside a configured band and sends them
//! to a single consumer, which labels and prints them.
//!
//! Shows what a flow can capture: a serde struct (`band`), a string and a float
//! (spliced as literals), and a `pub fn` of this crate called by name.

use serde::{Deserialize, Serialize};
use weir::*;

/// Which readings to keep; captured by value into the producer binary.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Band {
    pub low: f64,
    pub high: f64,
}

/// A reading on its way to the consumer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Reading {
    pub sensor: String,
    pub celsius: f64,
}

/// Parses `"name=value"`; `None` for anything else.
pub fn parse(line: &str) -> Option<Reading> {
    let (sensor, value) = line.split_once('=')?;
    let celsius = value.trim().parse().ok()?;
    Some(Reading {
        sensor: sensor.trim().to_string(),
        celsius,
    })
}

pub fn pipeline(flow: &FlowBuilder) {
    let producer = flow.process("producer");
    let consumer = flow.process("consumer");

    let band = Band {
        low: 0.0,
        high: 40.0,
    };
    let unit = "°C";
    let offset = 0.5;
    let lines = vec![
        "a=12.5", "b=oops", "c=-3", "d=21", "e=99", "garbage", "f=39.5",
    ];

    flow.source_iter(&producer, q!(lines))
        .filter_map(q!(|line| parse(line)))
        .filter(q!(move |r| r.celsius >= band.low && r.celsius <= band.high))
        .map(q!(move |r| Reading {
            celsius: r.celsius + offset,
            ..r
        }))
        .send_bincode(&consumer)
        .map(q!(move |r| format!("{}: {:.1}{unit}", r.sensor, r.celsius)))
        .for_each(q!(|line| println!("{line}")));
}
