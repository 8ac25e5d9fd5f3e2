//! The corpus (`flow/src/corpus/`): flows written the way users write them,
//! built into role binaries and run, every line checked against an answer
//! computed here directly.

use crate::support::*;
use flow::corpus::{imports, inference};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// The lines of `text`, sorted: for output whose order across senders or keys
/// is not defined.
fn sorted(text: &str) -> Vec<String> {
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    lines.sort();
    lines
}

#[test]
fn closures_with_inferred_parameters_and_every_kind_of_capture_compute_their_answers() {
    let workers = 2;
    let out = Running::start(
        "corpus_inference",
        &[("leader", None), ("worker", Some(workers))],
    )
    .outputs();
    let n = inference::RECORDS;
    let sum_i: u64 = (0..n).sum();
    let mut expected = vec![
        // The closure: the highest `(i, w)` with `i >= 3`.
        format!("highest {} {}", n - 1, (n - 1) * 10),
        format!(
            "stats count={} total={} heaviest={}",
            workers as u64 * n,
            workers as u64 * sum_i * 2,
            (n - 1) * 10
        ),
        format!("sum {}", workers as u64 * sum_i),
        format!("max {}", n - 1),
        "captures 0 0.5 true : c t (1, -2) [1, 2] [7, 7, 7] Some(9) 2 21.5".to_string(),
    ];
    let kept: Vec<u64> = (0..n).filter(|i| ![4, 5].contains(i)).collect();
    for member in 0..workers {
        expected.push(format!("kept from {member}: {kept:?}"));
        expected.push(format!("weight from {member}: {}", sum_i * 10));
        expected.push(format!("summary from {member}: {n} {sum_i}"));
    }
    // filter < 10, even ones doubled, each three times, numbered.
    let items = (0..n)
        .filter(|i| *i < 10 && i % 2 == 0)
        .flat_map(|i| std::iter::repeat_n(i * 2, 3));
    for (k, i) in items.enumerate() {
        expected.push(format!("item {k} {i}"));
    }
    expected.sort();
    assert_eq!(sorted(output_of(&out, "leader")), expected);
    for member in 0..workers {
        assert_eq!(output_of(&out, &format!("worker/{member}")), "");
    }
}

#[test]
fn names_imported_every_way_mean_in_the_binaries_what_they_meant_in_the_module() {
    let sensors = 3;
    let out = Running::start(
        "corpus_imports",
        &[("leader", None), ("sensor", Some(sensors))],
    )
    .outputs();
    let readings: Vec<readings::Reading> = (0..imports::READINGS).map(readings::sample).collect();
    let mut per_bucket = BTreeMap::new();
    let mut per_reading = Vec::new();
    for r in &readings {
        let bucket = (r.celsius / 2.5) as u32;
        *per_bucket.entry(bucket).or_insert(0) += 1;
        let fahrenheit = r.celsius * 9.0 / 5.0 + 32.0;
        let kind = if bucket.is_multiple_of(2) {
            "even"
        } else {
            "odd"
        };
        per_reading.push(format!(
            "bucket {bucket} ({kind}), {fahrenheit:.1} F, warm={}",
            fahrenheit > 60.0
        ));
    }
    let buckets: String = per_bucket
        .iter()
        .map(|(b, n)| format!(" {b}{}={n}", if b.is_multiple_of(2) { "e" } else { "o" }))
        .collect();

    let leader = output_of(&out, "leader");
    let mut got_readings = Vec::new();
    let mut per_sensor = BTreeMap::new();
    let mut rest = Vec::new();
    for line in leader.lines() {
        match line
            .strip_prefix("reading at ")
            .and_then(|l| l.split_once(": "))
        {
            Some((from, reading)) => {
                *per_sensor.entry(from.to_string()).or_insert(0) += 1;
                got_readings.push(reading.to_string());
            }
            None => rest.push(line.to_string()),
        }
    }
    got_readings.sort();
    per_reading.sort();
    assert_eq!(got_readings, per_reading);
    // Dealt round robin: each sensor sorted as many.
    let each = imports::READINGS as usize / sensors;
    let expected_per_sensor: BTreeMap<String, usize> =
        (0..sensors).map(|s| (s.to_string(), each)).collect();
    assert_eq!(per_sensor, expected_per_sensor);
    rest.sort();
    assert_eq!(
        rest,
        [format!("buckets{buckets}"), "summary 2 7".to_string()]
    );
}

/// The counter's endpoint address for the front, and the running flow.
fn start_counter(shards: usize) -> (String, Vec<Watched>, Topo) {
    let port = |_| format!("127.0.0.1:{}", free_port());
    let front = port(0);
    let clients = port(0);
    let shard_addresses: Vec<String> = (0..shards).map(port).collect();
    let text = format!(
        "[front]\naddresses = [\"{front}\"]\nclients = [\"{clients}\"]\n[shard]\naddresses = [{}]\n",
        toml_list(&shard_addresses)
    );
    let topo = Topo::from_text(&text, Vec::new());
    let mut instances = vec![Watched::start(
        "front",
        command("corpus_counter-front", &topo.file, None, &[]),
    )];
    for i in 0..shards {
        let command = command("corpus_counter-shard", &topo.file, Some(i), &[]);
        instances.push(Watched::start(&format!("shard/{i}"), command));
    }
    (clients, instances, topo)
}

/// Connects to the endpoint, retrying while the front starts.
fn connect(address: &str) -> TcpStream {
    let start = Instant::now();
    loop {
        match TcpStream::connect(address) {
            Ok(stream) => return stream,
            Err(err) if start.elapsed() > LIMIT => panic!("connecting to {address}: {err}"),
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

#[test]
fn a_sharded_counter_behind_an_endpoint_answers_each_client_line() {
    let (clients, instances, _topo) = start_counter(2);
    let stream = connect(&clients);
    stream.set_read_timeout(Some(LIMIT)).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut ask = |line: &str| {
        (&stream).write_all(format!("{line}\n").as_bytes()).unwrap();
        let mut answer = String::new();
        reader.read_line(&mut answer).expect("an answer");
        answer.trim_end().to_string()
    };
    let mut totals: BTreeMap<&str, i64> = BTreeMap::new();
    for (key, delta) in [
        ("apple", 3),
        ("pear", 2),
        ("apple", 4),
        ("fig", -5),
        ("pear", 1),
    ] {
        let total = totals.entry(key).or_default();
        *total += delta;
        assert_eq!(ask(&format!("{key} {delta}")), format!("{key}={total}"));
    }
    assert_eq!(ask("apple"), "error: expected `KEY DELTA`, got \"apple\"");
    assert_eq!(
        ask("apple x"),
        "error: bad delta: invalid digit found in string"
    );
    assert_eq!(ask("apple 1"), "apple=8");
    for instance in instances {
        let name = instance.name.clone();
        let stderr = instance.stderr();
        let status = instance.terminate(LIMIT);
        assert!(status.success(), "{name}: {status}\n{stderr}");
    }
}
