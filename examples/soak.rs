//! The soak test: holds a fixed rate of well-formed calls against the release binary for
//! minutes while other clients misbehave (connect and vanish, reset streams, send oversized
//! messages and garbage frames, open connections and go silent), then checks that every
//! well-formed call was answered and that the server's memory did not grow.
//!
//! Run: `cargo build --release && cargo run --release --example soak -- [MINUTES] [CALLS_PER_SECOND]`
//! (defaults 3 and 2000). Loopback only; every loop stops at the deadline. Exits 1 on failure.

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use card_lookup::proto::cardlookup::v1 as pb;
use pb::card_lookup_service_client::CardLookupServiceClient;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// Resident memory of a process in kB (Linux).
fn resident_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[derive(Default)]
struct Tally {
    sent: AtomicU64,
    answered: AtomicU64,
    failed: AtomicU64,
    abuse: AtomicU64,
}

async fn well_formed(url: String, per_second: u64, deadline: Instant, tally: Arc<Tally>) {
    let client = CardLookupServiceClient::connect(url)
        .await
        .expect("connects");
    let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / per_second.max(1)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while Instant::now() < deadline {
        tick.tick().await;
        let mut client = client.clone();
        let tally = Arc::clone(&tally);
        tally.sent.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(async move {
            let answer = client
                .lookup_bin(pb::LookupBinRequest {
                    number: "4111111111111111".into(),
                })
                .await;
            let counter = if answer.is_ok() {
                &tally.answered
            } else {
                &tally.failed
            };
            counter.fetch_add(1, Ordering::Relaxed);
        });
    }
    // Let the last calls finish.
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// One round of each kind of misbehaviour.
async fn misbehave(addr: std::net::SocketAddr, url: &str) {
    // Connect and vanish.
    drop(tokio::net::TcpStream::connect(addr).await);
    // Garbage instead of HTTP/2.
    if let Ok(mut stream) = tokio::net::TcpStream::connect(addr).await {
        let _ = stream
            .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x09\x07\xff\xff")
            .await;
        let _ = stream.write_all(&[0xAB; 512]).await;
    }
    // Start calls and reset them.
    if let Ok(tcp) = tokio::net::TcpStream::connect(addr).await
        && let Ok((mut sender, connection)) = h2::client::handshake(tcp).await
    {
        tokio::spawn(connection);
        for _ in 0..20 {
            let request =
                http::Request::post(format!("{url}/cardlookup.v1.CardLookupService/Validate"))
                    .header("content-type", "application/grpc")
                    .body(())
                    .expect("a valid request");
            if let Ok((_, mut stream)) = sender.send_request(request, false) {
                stream.send_reset(h2::Reason::CANCEL);
            }
        }
    }
    // Oversized messages on a real client.
    if let Ok(mut client) = CardLookupServiceClient::connect(url.to_owned()).await {
        let _ = client
            .validate(pb::ValidateRequest {
                number: "4".repeat(64 * 1024),
            })
            .await;
    }
}

/// Starts the release binary on free ports; returns it and its gRPC address.
async fn start_server() -> (tokio::process::Child, std::net::SocketAddr) {
    let mut server = tokio::process::Command::new("target/release/card-lookup")
        .args(["--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"])
        .args(["--max-concurrent-requests", "4096"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("target/release/card-lookup runs (cargo build --release first)");
    let mut lines = BufReader::new(server.stdout.take().expect("stdout")).lines();
    let addr: std::net::SocketAddr = loop {
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

    // Warm up, then take the baseline.
    let tally = Arc::new(Tally::default());
    well_formed(
        url.clone(),
        per_second,
        Instant::now() + Duration::from_secs(5),
        Arc::clone(&tally),
    )
    .await;
    let baseline = resident_kb(pid).expect("reads /proc");
    let tally = Arc::new(Tally::default());
    let deadline = Instant::now() + Duration::from_secs_f64(minutes * 60.0);
    let load = tokio::spawn(well_formed(
        url.clone(),
        per_second,
        deadline,
        Arc::clone(&tally),
    ));
    let abusers: Vec<_> = (0..4)
        .map(|_| {
            let url = url.clone();
            let tally = Arc::clone(&tally);
            tokio::spawn(async move {
                while Instant::now() < deadline {
                    misbehave(addr, &url).await;
                    tally.abuse.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            })
        })
        .collect();
    let mut peak = baseline;
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_secs(5)).await;
        peak = peak.max(resident_kb(pid).unwrap_or(0));
    }
    load.await.expect("the load task ends");
    for abuser in abusers {
        abuser.await.expect("the abuser ends");
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let end = resident_kb(pid).expect("the server is still running");
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let exit = server.wait().await.expect("the server exits");

    let (sent, answered, failed) = (
        tally.sent.load(Ordering::Relaxed),
        tally.answered.load(Ordering::Relaxed),
        tally.failed.load(Ordering::Relaxed),
    );
    println!(
        "soak: {minutes} min at {per_second}/s: {sent} calls, {answered} answered, {failed} failed; {} rounds of misbehaviour",
        tally.abuse.load(Ordering::Relaxed)
    );
    println!(
        "soak: resident memory {baseline} kB after warm-up, {peak} kB peak, {end} kB at the end"
    );
    let grew = end.saturating_sub(baseline);
    let mut ok = true;
    if failed > 0 || answered != sent {
        println!("soak: FAIL well-formed calls were not all answered");
        ok = false;
    }
    if grew > baseline / 5 + 20_000 {
        println!("soak: FAIL memory grew by {grew} kB");
        ok = false;
    }
    if !exit.success() {
        println!("soak: FAIL the server exited with {exit}");
        ok = false;
    }
    println!("soak: {}", if ok { "passed" } else { "failed" });
    std::process::exit(i32::from(!ok));
}
