//! Arbitrary bytes against everything that reads the wire: the handshake, the
//! sealed-record reader, the read buffer that frames are parsed in, and the
//! batch decoder. For every input: no panic, no hang (an
//! in-memory input must be dealt with in one poll), and memory bounded by the
//! input's size, however large the lengths it claims.
//!
//! Inputs are random bytes, and valid handshakes and frame streams with random
//! bytes overwritten and random cuts (so most get past the magic bytes and the
//! headers). Seeded, so a run is reproducible:
//!
//! ```sh
//! WEIR_FUZZ_CASES=10000000 cargo test --release -p weir-runtime --test wire_fuzz -- --nocapture
//! ```
//!
//! CI runs the default (a few thousand cases per target); docs/RELIABILITY.md
//! records the long runs.

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, RngSeed, TestRunner};
use serde::{Deserialize, Serialize};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Instant;
use tokio::io::{AsyncRead, AsyncWriteExt, ReadBuf};
use weir_core::codec;
use weir_runtime::auth::Key;
use weir_runtime::frame::{append_frame, Handshake, ReadBuffer, CLOSE_BIT, DEFAULT_MAX_FRAME};
use weir_runtime::secure::{sessions_in_memory, Session, RECORD_HEADER};

// ---- memory accounting, per thread (tests run in parallel) ----

struct Counting;

thread_local! {
    static LIVE: Cell<usize> = const { Cell::new(0) };
    static PEAK: Cell<usize> = const { Cell::new(0) };
}

fn grew(bytes: usize) {
    let _ = LIVE.try_with(|live| {
        live.set(live.get() + bytes);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(live.get())));
    });
}

fn shrank(bytes: usize) {
    let _ = LIVE.try_with(|live| live.set(live.get().saturating_sub(bytes)));
}

// SAFETY: every call is passed on to the system allocator unchanged; the
// counters are plain thread-local cells that never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        grew(layout.size());
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        shrank(layout.size());
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        grew(new_size);
        shrank(layout.size());
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Runs `f`, returning the most memory it held at once beyond what was live
/// before.
fn peak_during(f: impl FnOnce()) -> usize {
    let base = LIVE.with(Cell::get);
    PEAK.with(|peak| peak.set(base));
    f();
    PEAK.with(Cell::get) - base
}

/// Memory an input of `len` bytes may cost: copies of what arrived (strings are
/// only allocated once their bytes are there), buffers that grow by doubling,
/// and fixed steps: 64 KiB of frame
/// read-ahead, and serde's preallocation of at most 1 MiB for each sequence
/// being decoded (a batch, and a `Vec` inside its records).
fn allowance(len: usize) -> usize {
    20 * len + (3 << 20)
}

// ---- driving the readers ----

/// Polls `future` once: reading from memory never has to wait, so `Pending`
/// means the reader would hang on input that will never come.
fn at_once<F: Future>(future: F) -> F::Output {
    match pin!(future).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("the reader waited on an in-memory input"),
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Reading {
    sensor: String,
    values: Vec<f64>,
    tag: Option<(u8, char)>,
}

/// Decodes `payload` as a batch of each of a few record types.
fn decode_as_batches(payload: &[u8]) {
    let mut ints = Vec::new();
    let _ = codec::decode_batch_into::<u64>(payload, &mut ints);
    let mut strings = Vec::new();
    let _ = codec::decode_batch_into::<String>(payload, &mut strings);
    let mut readings = Vec::new();
    let _ = codec::decode_batch_into::<(u32, Reading)>(payload, &mut readings);
}

/// Reads frames from `bytes` as a node reads a link (into its read buffer, a
/// read at a time, each frame decoded in place, the buffer released between
/// reads) until the end or an error; how many frames were read. Reads are
/// short (97 bytes), so frames and headers are split across them.
fn read_frames(mut bytes: &[u8]) -> usize {
    let mut buffer = ReadBuffer::default();
    let mut frames = 0;
    loop {
        let read = at_once(std::future::poll_fn(|cx| {
            buffer.poll_read_from(&mut bytes, cx, 97)
        }));
        let Ok(read) = read else {
            return frames;
        };
        loop {
            match buffer.next_frame(DEFAULT_MAX_FRAME) {
                Ok(Some((_, payload))) => {
                    decode_as_batches(buffer.payload(payload));
                    frames += 1;
                }
                Ok(None) => break,
                Err(_) => return frames,
            }
        }
        buffer.release();
        if read == 0 {
            let _ = buffer.check_end();
            return frames;
        }
    }
}

fn read_handshake(mut bytes: &[u8]) {
    let _ = at_once(Handshake::read(&mut bytes));
}

// ---- inputs ----

fn handshake() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        ("[a-z_]{0,12}", "[a-z_]{0,12}", any::<u32>()).prop_map(|(flow, role, index)| {
            Handshake::Hello {
                flow,
                role,
                index,
                incarnation: u64::from(index) << 20,
                channels: Vec::new(),
            }
            .encode()
        }),
        ".{0,40}".prop_map(|reason| Handshake::Refusal { reason }.encode()),
        prop::collection::vec(any::<u8>(), 0..96)
            .prop_map(|message| Handshake::Noise { message }.encode()),
        Just(Handshake::Ready.encode()),
    ]
}

fn payload() -> impl Strategy<Value = Vec<u8>> {
    let batch = |bytes: Result<(), codec::CodecError>, buf: Vec<u8>| {
        bytes.expect("valid batches encode");
        buf
    };
    prop_oneof![
        prop::collection::vec(any::<u64>(), 0..16).prop_map(move |records| {
            let mut buf = Vec::new();
            batch(codec::encode_batch(&records, &mut buf), buf)
        }),
        prop::collection::vec(".{0,8}", 0..6).prop_map(move |records| {
            let mut buf = Vec::new();
            batch(codec::encode_batch(&records, &mut buf), buf)
        }),
        prop::collection::vec(
            ("[a-z]{0,6}", prop::collection::vec(any::<f64>(), 0..4)),
            0..4
        )
        .prop_map(move |records| {
            let records: Vec<(u32, Reading)> = records
                .into_iter()
                .enumerate()
                .map(|(i, (sensor, values))| {
                    let tag = (i % 2 == 0).then_some((i as u8, 'x'));
                    (
                        i as u32,
                        Reading {
                            sensor,
                            values,
                            tag,
                        },
                    )
                })
                .collect();
            let mut buf = Vec::new();
            batch(codec::encode_batch(&records, &mut buf), buf)
        }),
        prop::collection::vec(any::<u8>(), 0..64),
    ]
}

fn frames() -> impl Strategy<Value = Vec<u8>> {
    let frame = (
        prop_oneof![0u32..4, Just(CLOSE_BIT), any::<u32>()],
        payload(),
    )
        .prop_map(|(channel, payload)| {
            let mut buf = Vec::new();
            append_frame(&mut buf, channel, |b| {
                b.extend_from_slice(&payload);
                Ok(())
            })
            .expect("small frames");
            buf
        });
    prop::collection::vec(frame, 0..4).prop_map(|frames| frames.concat())
}

/// `valid`, damaged: a few bytes overwritten (often a length field, since they
/// come first), perhaps cut short; or plain random bytes.
fn damaged(valid: impl Strategy<Value = Vec<u8>>) -> impl Strategy<Value = Vec<u8>> {
    let edits = prop::collection::vec((any::<Index>(), any::<u8>()), 0..4);
    let mutated =
        (valid, edits, prop::option::of(any::<Index>())).prop_map(|(mut bytes, edits, cut)| {
            if !bytes.is_empty() {
                for (at, byte) in edits {
                    let at = at.index(bytes.len());
                    bytes[at] = byte;
                }
                if let Some(cut) = cut {
                    bytes.truncate(cut.index(bytes.len()));
                }
            }
            bytes
        });
    prop_oneof![
        3 => mutated,
        1 => prop::collection::vec(any::<u8>(), 0..256),
    ]
}

// ---- the runs ----

fn cases() -> u32 {
    std::env::var("WEIR_FUZZ_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(4096)
}

fn fuzz(name: &str, input: impl Strategy<Value = Vec<u8>>, target: impl Fn(&[u8])) {
    let seed = std::env::var("WEIR_FUZZ_SEED")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0x5745_4952);
    let config = Config {
        cases: cases(),
        rng_seed: RngSeed::Fixed(seed),
        failure_persistence: None,
        ..Config::default()
    };
    let started = Instant::now();
    let mut runner = TestRunner::new(config);
    runner
        .run(&input, |bytes| {
            let peak = peak_during(|| target(&bytes));
            prop_assert!(
                peak <= allowance(bytes.len()),
                "{} bytes of input held {peak} bytes of memory",
                bytes.len()
            );
            Ok(())
        })
        .unwrap();
    eprintln!(
        "{name}: {} inputs (seed {seed}) in {:.1?}",
        cases(),
        started.elapsed()
    );
}

#[test]
fn handshakes_from_arbitrary_bytes() {
    fuzz("handshake", damaged(handshake()), read_handshake);
}

#[test]
fn frames_and_batches_from_arbitrary_bytes() {
    fuzz("frames", damaged(frames()), |bytes| {
        read_frames(bytes);
    });
}

// ---- sealed records ----

/// What an attacker on the path does to a sealed stream.
#[derive(Debug, Clone)]
enum Damage {
    /// Overwrites a byte.
    Edit(Index, u8),
    /// Cuts the stream short.
    Cut(Index),
    /// Swaps two records.
    Reorder(Index, Index),
    /// Sends a record again, right after itself.
    Replay(Index),
    /// Leaves a record out.
    Drop(Index),
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        (any::<Index>(), any::<u8>()).prop_map(|(at, byte)| Damage::Edit(at, byte)),
        any::<Index>().prop_map(Damage::Cut),
        (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Damage::Reorder(a, b)),
        any::<Index>().prop_map(Damage::Replay),
        any::<Index>().prop_map(Damage::Drop),
    ]
}

/// The records of a sealed stream, each with its header (a damaged stream's
/// last may be a piece of one).
fn records(stream: &[u8]) -> Vec<Vec<u8>> {
    let mut records = Vec::new();
    let mut at = 0;
    while at < stream.len() {
        let end = match stream.get(at..at + RECORD_HEADER) {
            Some(header) => {
                at + RECORD_HEADER + u16::from_be_bytes([header[0], header[1]]) as usize
            }
            None => stream.len(),
        };
        let end = end.min(stream.len());
        records.push(stream[at..end].to_vec());
        at = end;
    }
    records
}

fn apply(stream: &[u8], damage: &Damage) -> Vec<u8> {
    let mut bytes = stream.to_vec();
    let mut records = records(stream);
    if bytes.is_empty() {
        return bytes;
    }
    let n = records.len();
    match damage {
        Damage::Edit(at, byte) => {
            let at = at.index(bytes.len());
            bytes[at] = *byte;
        }
        Damage::Cut(at) => bytes.truncate(at.index(bytes.len())),
        Damage::Reorder(a, b) => {
            records.swap(a.index(n), b.index(n));
            bytes = records.concat();
        }
        Damage::Replay(at) => {
            let at = at.index(n);
            records.insert(at, records[at].clone());
            bytes = records.concat();
        }
        Damage::Drop(at) => {
            records.remove(at.index(n));
            bytes = records.concat();
        }
    }
    bytes
}

/// `plain` as a sealed writer puts it on the wire, written `writes` at a time.
fn seal(session: &Session, plain: &[u8], pieces: usize) -> Vec<u8> {
    let mut writer = session.writer(Vec::new());
    for piece in plain.chunks(plain.len().div_ceil(pieces.max(1)).max(1)) {
        at_once(writer.write_all(piece)).unwrap();
    }
    at_once(writer.flush()).unwrap();
    writer.into_inner()
}

/// Reads `sealed` through a sealed reader, `chunk` bytes at a time: what it
/// handed out, and whether it reported an error.
fn open(session: &Session, mut sealed: &[u8], chunk: usize) -> (Vec<u8>, bool) {
    let mut reader = session.reader(&mut sealed);
    let mut out = Vec::new();
    let mut space = vec![0u8; chunk];
    loop {
        let mut buf = ReadBuf::new(&mut space);
        match at_once(std::future::poll_fn(|cx| {
            std::pin::Pin::new(&mut reader).poll_read(cx, &mut buf)
        })) {
            Err(_) => return (out, true),
            Ok(()) if buf.filled().is_empty() => return (out, false),
            Ok(()) => out.extend_from_slice(buf.filled()),
        }
    }
}

#[test]
fn sealed_records_deliver_nothing_an_attacker_changed() {
    let key = Key::from_secret(b"a deployment key for the fuzzer").unwrap();
    let input = (
        prop::collection::vec(any::<u8>(), 0..200_000),
        1usize..6,
        prop_oneof![Just(1usize), Just(4096), Just(1 << 20)],
        prop::collection::vec(damage(), 0..3),
    );
    let seed = std::env::var("WEIR_FUZZ_SEED")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0x5745_4952);
    let mut runner = TestRunner::new(Config {
        cases: cases() / 16,
        rng_seed: RngSeed::Fixed(seed),
        failure_persistence: None,
        ..Config::default()
    });
    let started = Instant::now();
    runner
        .run(&input, |(plain, pieces, chunk, damages)| {
            let (dialer, acceptor) = sessions_in_memory(&key);
            let valid = seal(&dialer, &plain, pieces);
            let sent = damages
                .iter()
                .fold(valid.clone(), |bytes, d| apply(&bytes, d));
            let mut delivered = (Vec::new(), false);
            let peak = peak_during(|| delivered = open(&acceptor, &sent, chunk));
            let (out, failed) = delivered;
            prop_assert!(
                peak <= allowance(sent.len()),
                "{} bytes held {peak}",
                sent.len()
            );
            prop_assert!(
                plain.starts_with(&out),
                "delivered bytes the sender never sent"
            );
            if valid.starts_with(&sent) {
                // Cut short at most: an error exactly when the cut is inside a record.
                let boundaries: Vec<usize> = records(&valid)
                    .iter()
                    .scan(0, |at, r| {
                        *at += r.len();
                        Some(*at)
                    })
                    .collect();
                let between = sent.is_empty() || boundaries.contains(&sent.len());
                prop_assert_eq!(failed, !between);
            } else {
                prop_assert!(
                    failed,
                    "a changed stream was read to its end without an error"
                );
            }
            if sent == valid {
                prop_assert!(
                    !failed && out == plain,
                    "an untouched stream was not read whole"
                );
            }
            Ok(())
        })
        .unwrap();
    eprintln!(
        "sealed records: {} inputs (seed {seed}) in {:.1?}",
        cases() / 16,
        started.elapsed()
    );
}

#[test]
fn another_sessions_records_do_not_open() {
    let key = Key::from_secret(b"a deployment key for the fuzzer").unwrap();
    let (dialer, _) = sessions_in_memory(&key);
    let (_, other_acceptor) = sessions_in_memory(&key);
    let sealed = seal(&dialer, b"recorded on an earlier link", 1);
    let (out, failed) = open(&other_acceptor, &sealed, 4096);
    assert!(
        failed && out.is_empty(),
        "a record from another link opened"
    );
}

#[test]
fn the_accounting_sees_a_claimed_length_that_is_allocated() {
    // The harness itself must be able to fail: allocating what a header claims
    // is caught.
    let peak = peak_during(|| {
        let claimed = u32::from_le_bytes([0, 0, 0, 1]) as usize; // 16 MiB, from 8 bytes
        let buffer: Vec<u8> = Vec::with_capacity(claimed);
        std::hint::black_box(buffer);
    });
    assert!(peak > allowance(8));
}

#[test]
fn valid_streams_are_read_whole() {
    let mut runner = TestRunner::new(Config {
        cases: 256,
        rng_seed: RngSeed::Fixed(1),
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&prop::collection::vec(payload(), 0..5), |payloads| {
            let mut stream = Vec::new();
            for (channel, payload) in payloads.iter().enumerate() {
                append_frame(&mut stream, channel as u32, |b| {
                    b.extend_from_slice(payload);
                    Ok(())
                })
                .unwrap();
            }
            prop_assert_eq!(read_frames(&stream), payloads.len());
            Ok(())
        })
        .unwrap();
}
