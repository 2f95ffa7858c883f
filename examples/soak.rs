//! The soak test: a well-behaved client holds a fixed rate of LookupBin calls against the release
//! binary, first alone and then for minutes beside hostile clients, each from an address of its
//! own on loopback (the service keys its limits on the caller's address):
//!
//! - 127.0.0.11 stalls: a connection opens as many Validate streams as it may and never sends
//!   their messages, and does it again every second;
//! - 127.0.0.12 keeps Inspect streams open that never send, on 20 connections;
//! - 127.0.0.13 opens TCP connections that never send a byte, and opens new ones as the server
//!   closes them;
//! - 127.0.0.14 calls with a new `x-client-id` each time, to escape its rate limit;
//! - 127.0.0.15 connects and vanishes, sends garbage frames, resets streams and sends oversized
//!   messages.
//!
//! It passes when the well-behaved client got every call answered, its p99 beside the hostile
//! clients stayed within twice its p99 alone, the server's resident memory stayed under
//! [`MEMORY_BOUND_KB`], and the server exited cleanly on SIGTERM.
//!
//! Run: `cargo build --release && cargo run --release --example soak -- [MINUTES] [CALLS_PER_SECOND]`
//! (defaults 3 and 2000). Linux (loopback addresses beyond 127.0.0.1, /proc). Every loop stops at
//! the deadline. Exits 1 on failure.

use std::net::{IpAddr, SocketAddr};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use card_lookup::proto::cardlookup::v1 as pb;
use pb::card_lookup_service_client::CardLookupServiceClient;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpSocket, TcpStream};
use tonic::codegen::Bytes;
use tonic::transport::{Channel, Endpoint};

/// The server's resident memory must stay under this (kB): the embedded table and the runtime
/// take about 60 MB; the hostile clients may cost bounded state on top, never growth.
const MEMORY_BOUND_KB: u64 = 256 * 1024;
/// How long the well-behaved client runs alone, for its baseline p99.
const ALONE: Duration = Duration::from_secs(20);
/// The streams one connection may open (`server::MAX_CONCURRENT_STREAMS`).
const STREAMS_PER_CONNECTION: usize = 128;

fn loopback(last: u8) -> IpAddr {
    IpAddr::from([127, 0, 0, last])
}

/// A TCP connection to `server` from the loopback address `from`.
async fn connect_from(from: IpAddr, server: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(from, 0))?;
    socket.connect(server).await
}

/// A raw HTTP/2 connection from `from`, for calls a gRPC client cannot make.
async fn h2_from(from: IpAddr, server: SocketAddr) -> Option<h2::client::SendRequest<Bytes>> {
    let tcp = connect_from(from, server).await.ok()?;
    let (sender, connection) = h2::client::handshake(tcp).await.ok()?;
    tokio::spawn(connection);
    Some(sender)
}

fn grpc_headers(server: SocketAddr, method: &str) -> http::Request<()> {
    http::Request::post(format!(
        "http://{server}/cardlookup.v1.CardLookupService/{method}"
    ))
    .header("content-type", "application/grpc")
    .header("te", "trailers")
    .body(())
    .expect("a valid request")
}

/// Opens up to `streams` calls of `method` whose messages never come. Returns their handles:
/// the calls stay open until the caller drops them (which resets them).
async fn held_streams(
    sender: &mut h2::client::SendRequest<Bytes>,
    server: SocketAddr,
    method: &str,
    streams: usize,
) -> Vec<(h2::client::ResponseFuture, h2::SendStream<Bytes>)> {
    let mut held = Vec::with_capacity(streams);
    for _ in 0..streams {
        let Ok(ready) = sender.clone().ready().await else {
            break;
        };
        *sender = ready;
        match sender.send_request(grpc_headers(server, method), false) {
            Ok(stream) => held.push(stream),
            Err(_) => break,
        }
    }
    held
}

#[derive(Default)]
struct Tally {
    sent: AtomicU64,
    answered: AtomicU64,
    failed: AtomicU64,
    /// Microseconds of each answered call.
    latencies: Mutex<Vec<u32>>,
}

impl Tally {
    fn p99(&self) -> Duration {
        let mut latencies = self.latencies.lock().expect("not poisoned").clone();
        if latencies.is_empty() {
            return Duration::ZERO;
        }
        latencies.sort_unstable();
        let at = (latencies.len() * 99).div_ceil(100) - 1;
        Duration::from_micros(u64::from(latencies[at]))
    }
}

async fn well_formed(channel: Channel, per_second: u64, deadline: Instant, tally: Arc<Tally>) {
    let client = CardLookupServiceClient::new(channel);
    let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / per_second.max(1)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while Instant::now() < deadline {
        tick.tick().await;
        let mut client = client.clone();
        let tally = Arc::clone(&tally);
        tally.sent.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(async move {
            let started = Instant::now();
            let answer = client
                .lookup_bin(pb::LookupBinRequest {
                    number: "4111111111111111".into(),
                })
                .await;
            if answer.is_ok() {
                let micros = u32::try_from(started.elapsed().as_micros()).unwrap_or(u32::MAX);
                tally.latencies.lock().expect("not poisoned").push(micros);
                tally.answered.fetch_add(1, Ordering::Relaxed);
            } else {
                tally.failed.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
    // Let the last calls finish.
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// Finding 1: one connection's stalled calls, renewed every second.
async fn stall(server: SocketAddr, deadline: Instant) {
    while Instant::now() < deadline {
        if let Some(mut sender) = h2_from(loopback(11), server).await {
            let held = held_streams(&mut sender, server, "Validate", STREAMS_PER_CONNECTION).await;
            tokio::time::sleep(Duration::from_secs(1)).await;
            drop(held);
        }
    }
}

/// Finding 2: Inspect streams that never send, on 20 connections, renewed every 10 s.
async fn idle_inspect(server: SocketAddr, deadline: Instant) {
    while Instant::now() < deadline {
        let mut held = Vec::new();
        for _ in 0..20 {
            if let Some(mut sender) = h2_from(loopback(12), server).await {
                held.push(
                    held_streams(&mut sender, server, "Inspect", STREAMS_PER_CONNECTION).await,
                );
            }
        }
        tokio::time::sleep(Duration::from_secs(10).min(deadline - Instant::now())).await;
        drop(held);
    }
}

/// Finding 3: connections that never send a byte, topped up to 500 as the server closes them.
async fn silent(server: SocketAddr, deadline: Instant) {
    let mut open: Vec<TcpStream> = Vec::new();
    while Instant::now() < deadline {
        // A connection the server closed reads as end-of-stream.
        open.retain(|stream| {
            let mut byte = [0u8; 1];
            !matches!(stream.try_read(&mut byte), Ok(0))
        });
        while open.len() < 500 {
            match connect_from(loopback(13), server).await {
                Ok(stream) => open.push(stream),
                Err(_) => break,
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Finding 5: a new `x-client-id` on every call, from one address, as fast as answered.
async fn rotating_ids(channel: Channel, deadline: Instant) {
    let mut client = CardLookupServiceClient::new(channel);
    let mut n = 0u64;
    while Instant::now() < deadline {
        n += 1;
        let mut request = tonic::Request::new(pb::ValidateRequest {
            number: "4111111111111111".into(),
        });
        request.metadata_mut().insert(
            "x-client-id",
            format!("rotating-{n}").parse().expect("a valid header"),
        );
        if client.validate(request).await.is_err() {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
}

/// The published HTTP/2 misbehaviour, one round after another.
async fn misbehave(server: SocketAddr, url: &str, deadline: Instant) {
    let from = loopback(15);
    while Instant::now() < deadline {
        // Connect and vanish.
        drop(connect_from(from, server).await);
        // Garbage instead of HTTP/2 frames.
        if let Ok(mut stream) = connect_from(from, server).await {
            let _ = stream
                .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x09\x07\xff\xff")
                .await;
            let _ = stream.write_all(&[0xAB; 512]).await;
        }
        // Start calls and reset them.
        if let Some(mut sender) = h2_from(from, server).await {
            for (_, mut stream) in held_streams(&mut sender, server, "Validate", 20).await {
                stream.send_reset(h2::Reason::CANCEL);
            }
        }
        // An oversized message on a real client.
        if let Ok(channel) = endpoint(url, from).connect().await {
            let _ = CardLookupServiceClient::new(channel)
                .validate(pb::ValidateRequest {
                    number: "4".repeat(64 * 1024),
                })
                .await;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn endpoint(url: &str, from: IpAddr) -> Endpoint {
    Endpoint::from_shared(url.to_owned())
        .expect("a valid url")
        .local_address(Some(from))
}

/// Resident memory of a process in kB (Linux).
fn resident_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Starts the release binary on free ports; returns it and its gRPC address.
async fn start_server() -> (tokio::process::Child, SocketAddr) {
    let mut server = tokio::process::Command::new("target/release/card-lookup")
        .args(["--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"])
        .args(["--rate-limit", "default=5000/s"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("target/release/card-lookup runs (cargo build --release first)");
    let mut lines = BufReader::new(server.stdout.take().expect("stdout")).lines();
    let addr: SocketAddr = loop {
        let line = lines
            .next_line()
            .await
            .expect("reads the log")
            .expect("the server started");
        if let Some(rest) = line.split("serving gRPC on ").nth(1) {
            break rest
                .split(',')
                .next()
                .expect("an address")
                .trim()
                .parse()
                .expect("a socket address");
        }
    };
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (server, addr)
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let minutes: f64 = args
        .next()
        .map_or(3.0, |m| m.parse().expect("MINUTES is a number"));
    let per_second: u64 = args
        .next()
        .map_or(2000, |r| r.parse().expect("CALLS_PER_SECOND is a number"));

    let (mut server, addr) = start_server().await;
    let pid = server.id().expect("the server has a pid");
    let url = format!("http://{addr}");
    let well_behaved = endpoint(&url, loopback(2))
        .connect()
        .await
        .expect("connects");

    let alone = Arc::new(Tally::default());
    well_formed(
        well_behaved.clone(),
        per_second,
        Instant::now() + ALONE,
        Arc::clone(&alone),
    )
    .await;
    let baseline = resident_kb(pid).expect("reads /proc");

    let beside = Arc::new(Tally::default());
    let deadline = Instant::now() + Duration::from_secs_f64(minutes * 60.0);
    let rotating = endpoint(&url, loopback(14))
        .connect()
        .await
        .expect("connects");
    let tasks = vec![
        tokio::spawn(well_formed(
            well_behaved,
            per_second,
            deadline,
            Arc::clone(&beside),
        )),
        tokio::spawn(stall(addr, deadline)),
        tokio::spawn(idle_inspect(addr, deadline)),
        tokio::spawn(silent(addr, deadline)),
        tokio::spawn(rotating_ids(rotating, deadline)),
        tokio::spawn(async move { misbehave(addr, &url, deadline).await }),
    ];
    let mut peak = baseline;
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_secs(2)).await;
        peak = peak.max(resident_kb(pid).unwrap_or(0));
    }
    for task in tasks {
        task.await.expect("the task ends");
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let end = resident_kb(pid).expect("the server is still running");
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let exit = server.wait().await.expect("the server exits");

    let (p99_alone, p99_beside) = (alone.p99(), beside.p99());
    let (sent, answered, failed) = (
        beside.sent.load(Ordering::Relaxed),
        beside.answered.load(Ordering::Relaxed),
        beside.failed.load(Ordering::Relaxed),
    );
    println!(
        "soak: {minutes} min at {per_second}/s beside the hostile clients: {sent} calls, {answered} answered, {failed} failed"
    );
    println!("soak: p99 {p99_alone:?} alone, {p99_beside:?} beside the hostile clients");
    println!(
        "soak: resident memory {baseline} kB after warm-up, {peak} kB peak, {end} kB at the end (bound {MEMORY_BOUND_KB} kB)"
    );
    let mut ok = true;
    if failed > 0 || answered != sent {
        println!("soak: FAIL well-formed calls were not all answered");
        ok = false;
    }
    if p99_beside > p99_alone * 2 {
        println!("soak: FAIL the p99 beside the hostile clients is over twice the p99 alone");
        ok = false;
    }
    if peak > MEMORY_BOUND_KB {
        println!("soak: FAIL resident memory went over the bound");
        ok = false;
    }
    if !exit.success() {
        println!("soak: FAIL the server exited with {exit}");
        ok = false;
    }
    println!("soak: {}", if ok { "passed" } else { "failed" });
    std::process::exit(i32::from(!ok));
}
