//! The hand-written counterparts of the benchmark flows: tokio and bincode, the
//! way a careful engineer writes them without a framework. Same records, same
//! checks, same batching freedom as Weir: 4096 records per length-prefixed frame,
//! fixed-width integers, 64 KiB buffered sockets, one thread per process.
//!
//! `bench_tokio <workload> <role> <address>...` (word_count: `<role> <index>
//! <workers> <leader address>`), size from `WEIR_BENCH_N`.
//!
//! With `BENCH_NOISE_KEY_FILE` set, every connection is protected as Weir's
//! links are (the same Noise suite, keyed by that deployment key), the way a
//! careful engineer adds it by hand: a handshake, then each write of the
//! buffered stream sealed as a record of at most 64 KiB (see `tokio_sealed`).

use flow::bench::{size, text, Record, RoundTrips, Tally};
use serde::{de::DeserializeOwned, Serialize};
use std::collections::HashMap;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::{TcpListener, TcpStream};

mod tokio_sealed;

const BATCH: usize = 4096;
const BUFFER: usize = 64 * 1024;

fn config() -> impl bincode::config::Config {
    bincode::config::standard()
        .with_little_endian()
        .with_fixed_int_encoding()
}

/// A connection, in clear or sealed.
trait Link: AsyncRead + AsyncWrite + Unpin {}
impl<T: AsyncRead + AsyncWrite + Unpin> Link for T {}

type Writer = BufWriter<Box<dyn Link>>;
type Reader = BufReader<Box<dyn Link>>;

/// `stream`, sealed when a key is given.
async fn protect(stream: TcpStream, dialer: bool) -> Box<dyn Link> {
    stream.set_nodelay(true).unwrap();
    match std::env::var_os("BENCH_NOISE_KEY_FILE") {
        Some(key) => {
            Box::new(tokio_sealed::handshake(stream, std::path::Path::new(&key), dialer).await)
        }
        None => Box::new(stream),
    }
}

async fn connect(address: &str) -> Writer {
    for _ in 0..1000 {
        if let Ok(stream) = TcpStream::connect(address).await {
            return BufWriter::with_capacity(BUFFER, protect(stream, true).await);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("cannot connect to {address}");
}

/// Accepts `peers` connections on `address`.
async fn accept(address: &str, peers: usize) -> Vec<Reader> {
    let listener = TcpListener::bind(address).await.unwrap();
    let mut readers = Vec::new();
    for _ in 0..peers {
        let (stream, _) = listener.accept().await.unwrap();
        readers.push(BufReader::with_capacity(
            BUFFER,
            protect(stream, false).await,
        ));
    }
    readers
}

/// Sends `records` to every writer, `BATCH` to a frame, each frame encoded once.
async fn send_all<T: Serialize>(writers: &mut [Writer], records: impl Iterator<Item = T>) {
    let mut records = records.peekable();
    let mut batch = Vec::with_capacity(BATCH);
    let mut frame = Vec::with_capacity(BATCH * 8 + 16);
    while records.peek().is_some() {
        batch.clear();
        batch.extend(records.by_ref().take(BATCH));
        frame.clear();
        frame.extend_from_slice(&[0; 4]);
        bincode::serde::encode_into_std_write(&batch, &mut frame, config()).unwrap();
        let len = (frame.len() - 4) as u32;
        frame[..4].copy_from_slice(&len.to_le_bytes());
        for writer in writers.iter_mut() {
            writer.write_all(&frame).await.unwrap();
        }
    }
    for writer in writers {
        writer.flush().await.unwrap();
        writer.shutdown().await.unwrap();
    }
}

/// Reads frames until the sender closes, handing over each record.
async fn receive_all<T: DeserializeOwned>(reader: &mut Reader, mut each: impl FnMut(T)) {
    let mut payload = Vec::new();
    loop {
        let len = match reader.read_u32_le().await {
            Ok(len) => len as usize,
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return,
            Err(e) => panic!("{e}"),
        };
        payload.resize(len, 0);
        reader.read_exact(&mut payload).await.unwrap();
        let (batch, _): (Vec<T>, usize) =
            bincode::serde::decode_from_slice(&payload, config()).unwrap();
        batch.into_iter().for_each(&mut each);
    }
}

async fn pipe_u64(role: &str, address: &str) {
    match role {
        "sender" => send_all(&mut [connect(address).await], 0..size(1_000_000)).await,
        _ => {
            let mut tally = Tally::default();
            receive_all(&mut accept(address, 1).await[0], |n: u64| tally.add(n)).await;
            println!("{}", tally.report());
        }
    }
}

async fn pipe_struct(role: &str, address: &str) {
    match role {
        "sender" => {
            let records = (0..size(1_000_000)).map(Record::new);
            send_all(&mut [connect(address).await], records).await
        }
        _ => {
            let mut tally = Tally::default();
            receive_all(&mut accept(address, 1).await[0], |r: Record| {
                tally.add(r.check())
            })
            .await;
            println!("{}", tally.report());
        }
    }
}

async fn broadcast(role: &str, addresses: &[String]) {
    match role {
        "leader" => {
            let mut writers = Vec::new();
            for address in addresses {
                writers.push(connect(address).await);
            }
            send_all(&mut writers, 0..size(1_000_000)).await
        }
        _ => {
            let mut tally = Tally::default();
            receive_all(&mut accept(&addresses[0], 1).await[0], |n: u64| {
                tally.add(n)
            })
            .await;
            println!("{}", tally.report());
        }
    }
}

async fn ping_pong(role: &str, address: &str) {
    let rounds = size(10_000);
    match role {
        "ping" => {
            let mut writer = connect(address).await;
            let mut clock = RoundTrips::new(rounds);
            let mut ball = 0u64;
            loop {
                writer.write_u64_le(ball).await.unwrap();
                writer.flush().await.unwrap();
                ball = writer.get_mut().read_u64_le().await.unwrap();
                if let Some(report) = clock.returned() {
                    println!("{report}");
                    return;
                }
                ball += 1;
            }
        }
        _ => {
            let listener = TcpListener::bind(address).await.unwrap();
            let (stream, _) = listener.accept().await.unwrap();
            let mut stream = protect(stream, false).await;
            while let Ok(ball) = stream.read_u64_le().await {
                stream.write_u64_le(ball).await.unwrap();
                stream.flush().await.unwrap();
            }
        }
    }
}

async fn word_count(role: &str, index: usize, workers: usize, leader: &str) {
    match role {
        "leader" => {
            let mut totals = HashMap::<String, u64>::new();
            for mut reader in accept(leader, workers).await {
                receive_all(&mut reader, |(word, count): (String, u64)| {
                    *totals.entry(word).or_default() += count
                })
                .await;
            }
            let mut summary = text::Summary::default();
            for (word, count) in &totals {
                summary.add(word, *count);
            }
            println!("{}", summary.report());
        }
        _ => {
            let mut counts = text::Counts::new();
            for line in text::lines(index, workers, size(1 << 20)) {
                text::count_words(&mut counts, &line);
            }
            send_all(&mut [connect(leader).await], counts.into_iter()).await
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [workload, role, rest @ ..] = &args[..] else {
        panic!("usage: bench_tokio <workload> <role> [index] <address>...");
    };
    match workload.as_str() {
        "pipe" => pipe_u64(role, &rest[0]).await,
        "pipe_struct" => pipe_struct(role, &rest[0]).await,
        "broadcast" => broadcast(role, rest).await,
        "ping_pong" => ping_pong(role, &rest[0]).await,
        "word_count" => {
            let [index, workers, leader] = rest else {
                panic!("usage: bench_tokio word_count <role> <index> <workers> <leader address>");
            };
            word_count(
                role,
                index.parse().unwrap(),
                workers.parse().unwrap(),
                leader,
            )
            .await
        }
        other => panic!("unknown workload {other}"),
    }
}
