//! The `card-lookup` binary as an operator runs it: start-up lines, a clean exit on SIGTERM,
//! a clear refusal of bad configuration, and no card number in its output at any log level.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{leaked_pans, pb};
use pb::card_lookup_service_client::CardLookupServiceClient;

const BINARY: &str = env!("CARGO_BIN_EXE_card-lookup");

/// Card numbers sent in these tests; none may appear in the output.
const PANS: [&str; 4] = [
    "4111111111111111",
    "5555 5555 5555 4444",
    "3782-822463-10005",
    "6212345678900000004",
];

struct Running {
    child: Child,
    grpc: SocketAddr,
    startup: Vec<String>,
    /// Drains the rest of standard output and standard error until the process exits.
    rest: Vec<std::thread::JoinHandle<String>>,
}

fn drain(stream: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = BufReader::new(stream).read_to_string(&mut text);
        text
    })
}

/// Starts the binary on free ports and reads its log until it says where it serves.
fn start(log_format: &str) -> Running {
    start_with(log_format, &[])
}

fn start_with(log_format: &str, extra: &[&str]) -> Running {
    let mut child = Command::new(BINARY)
        .args(["--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"])
        .args(["--log-format", log_format])
        .args(extra)
        .env("RUST_LOG", "trace")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let stderr = drain(child.stderr.take().unwrap());
    let mut output = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    let grpc = loop {
        assert!(Instant::now() < deadline, "no start-up line: {output:#?}");
        let mut line = String::new();
        let read = stdout.read_line(&mut line).unwrap();
        assert!(read > 0, "the server exited early: {output:#?}");
        output.push(line.clone());
        if let Some(rest) = line.split("serving gRPC on ").nth(1) {
            let addr = rest.split(',').next().unwrap().trim();
            break addr.parse().expect("a socket address");
        }
    };
    Running {
        child,
        grpc,
        startup: output,
        rest: vec![drain(stdout), stderr],
    }
}

/// Calls every RPC with each of [`PANS`], sending no request id, and returns the ids the
/// Validate answers carried: the server logs every call (RUST_LOG=trace), so it makes one for
/// each.
async fn call_every_rpc(grpc: SocketAddr) -> Vec<String> {
    let mut client = CardLookupServiceClient::connect(format!("http://{grpc}"))
        .await
        .unwrap();
    let mut validate_ids = Vec::new();
    for pan in PANS {
        let number = pan.to_owned();
        let valid = client
            .validate(pb::ValidateRequest {
                number: number.clone(),
            })
            .await
            .unwrap();
        let id = valid.metadata().get("x-request-id").expect("x-request-id");
        validate_ids.push(id.to_str().unwrap().to_owned());
        let valid = valid.into_inner();
        assert!(valid.valid, "{valid:?}");
        client
            .lookup_bin(pb::LookupBinRequest {
                number: number.clone(),
            })
            .await
            .unwrap();
        client
            .mask_card(pb::MaskCardRequest {
                number: number.clone(),
                style: pb::MaskStyle::BinAndLastFour.into(),
                ..Default::default()
            })
            .await
            .unwrap();
        // Refused calls too: their errors are logged.
        let _ = client
            .mask_card(pb::MaskCardRequest {
                number: format!("{number}x"),
                ..Default::default()
            })
            .await
            .unwrap_err();
    }
    validate_ids
}

/// Sends SIGTERM and returns the exit status and everything the process printed.
fn terminate(mut running: Running) -> (std::process::ExitStatus, String) {
    let pid = running.child.id().to_string();
    let killed = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(status) = running.child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "no exit within 15 s of SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut output = running.startup.concat();
    for rest in running.rest {
        output.push_str(&rest.join().unwrap());
    }
    (status, output)
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread")]
async fn serves_then_exits_cleanly_on_sigterm_without_logging_card_numbers() {
    for format in ["text", "json"] {
        let running = start(format);
        let startup = running.startup.concat();
        assert!(startup.contains("loaded 327012 BINs"), "{startup}");
        let validate_ids = call_every_rpc(running.grpc).await;
        let (status, output) = terminate(running);
        assert!(status.success(), "{format}: exit {status:?}\n{output}");
        let leaked = leaked_pans(&output, &PANS);
        assert!(
            leaked.is_empty(),
            "{format} log shows {} card numbers",
            leaked.len()
        );
        if format == "json" {
            // Each call's debug line names the call for log pipelines: the id its answer
            // carried, the caller and the number masked.
            let distinct: std::collections::HashSet<_> = validate_ids.iter().collect();
            assert_eq!(distinct.len(), PANS.len(), "{validate_ids:?}");
            let request_id = format!(r#""request_id":"{}""#, validate_ids[0]);
            let validate = output
                .lines()
                .find(|line| line.contains(&request_id))
                .unwrap_or_else(|| panic!("no line with {request_id}:\n{output}"));
            for field in [
                r#""grpc_method":"Validate""#,
                r#""client_id":"127.0.0.1""#,
                r#""masked_number":"************1111""#,
                r#""grpc_code":"OK""#,
            ] {
                assert!(validate.contains(field), "{field} missing: {validate}");
            }
        }
    }
}

/// With a fingerprint key, a server logging everything (RUST_LOG=trace) shows neither the key
/// nor a number, and a key file it cannot use stops it at start with the line, not the text.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread")]
async fn a_fingerprint_key_is_never_logged() {
    use crate::fingerprint::SECRET_A;
    let dir = crate::common::TempDir::new("binary-fingerprint");
    let keys = dir.write("keys", &format!("k1 {SECRET_A}\n"));
    let running = start_with("json", &["--fingerprint-key-file", keys.to_str().unwrap()]);
    call_every_rpc(running.grpc).await;
    let (status, output) = terminate(running);
    assert!(status.success(), "{output}");
    assert!(
        leaked_pans(&output, &PANS).is_empty(),
        "a number in the log"
    );
    assert!(!output.contains(&SECRET_A[..16]), "the key in the log");

    let bad = dir.write("bad", &format!("k1 {SECRET_A}\nk1 {SECRET_A}\n"));
    let output = Command::new(BINARY)
        .args(["--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"])
        .arg("--fingerprint-key-file")
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("line 2"), "{stderr}");
    assert!(!stderr.contains(&SECRET_A[..16]), "{stderr}");
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread")]
async fn sighup_reloads_the_data_files() {
    let dir = crate::common::TempDir::new("sighup");
    let path = dir.write(
        "bins.csv",
        "BIN,BankName,CardType,CardOrg\n622848,BEFORE BANK,借记卡,银联\n",
    );
    let running = start_with(
        "text",
        &[
            "--bin-data",
            path.to_str().unwrap(),
            "--no-default-data",
            "--no-watch",
        ],
    );
    let mut client = CardLookupServiceClient::connect(format!("http://{}", running.grpc))
        .await
        .unwrap();
    let issuer = |answer: pb::LookupBinResponse| answer.issuer.unwrap().name;
    let request = || pb::LookupBinRequest {
        number: "622848".into(),
    };
    assert_eq!(
        issuer(client.lookup_bin(request()).await.unwrap().into_inner()),
        "BEFORE BANK"
    );

    std::fs::write(
        &path,
        "BIN,BankName,CardType,CardOrg\n622848,AFTER BANK,借记卡,银联\n",
    )
    .unwrap();
    // Not watched: the old data serves until the signal.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        issuer(client.lookup_bin(request()).await.unwrap().into_inner()),
        "BEFORE BANK"
    );
    let pid = running.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .unwrap()
            .success()
    );
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let answer = issuer(client.lookup_bin(request()).await.unwrap().into_inner());
        if answer == "AFTER BANK" {
            break;
        }
        assert!(Instant::now() < deadline, "SIGHUP did not reload");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(client);
    let (status, output) = terminate(running);
    assert!(status.success(), "{output}");
    assert!(output.contains("trigger=\"signal\""), "{output}");
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_call_started_before_sigterm_fails() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    let running = start("text");
    let url = format!("http://{}", running.grpc);
    let exited = Arc::new(AtomicBool::new(false));
    let callers: Vec<_> = (0..4)
        .map(|_| {
            let url = url.clone();
            let exited = Arc::clone(&exited);
            tokio::spawn(async move {
                let mut client = CardLookupServiceClient::connect(url).await.unwrap();
                let mut calls = Vec::new();
                while !exited.load(Ordering::Relaxed) && calls.len() < 200_000 {
                    let started = Instant::now();
                    let answer = client
                        .validate(pb::ValidateRequest {
                            number: PANS[0].into(),
                        })
                        .await;
                    calls.push((started, answer.is_ok()));
                    if answer.is_err() {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                }
                calls
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let sigterm_at = Instant::now();
    let (status, output) = tokio::task::spawn_blocking(move || terminate(running))
        .await
        .unwrap();
    exited.store(true, Ordering::Relaxed);
    assert!(status.success(), "{output}");
    let mut before = 0;
    for caller in callers {
        for (started, ok) in caller.await.unwrap() {
            if started < sigterm_at {
                before += 1;
                assert!(ok, "a call started before SIGTERM failed");
            }
        }
    }
    assert!(
        before > 100,
        "too few calls before SIGTERM to tell: {before}"
    );
}

#[test]
fn the_leak_check_finds_a_number_in_any_format() {
    assert_eq!(
        leaked_pans("card=5555555555554444 ok", &PANS),
        ["5555 5555 5555 4444"]
    );
    assert!(leaked_pans("card=555555******4444", &PANS).is_empty());
}

#[test]
fn bad_configuration_exits_at_once_with_a_clear_message() {
    let cases: [(&[&str], &str); 3] = [
        (&["--p99-target-ms", "0"], "--p99-target-ms"),
        (
            &["--bin-data", "/nonexistent/bins.csv"],
            "/nonexistent/bins.csv",
        ),
        (&["--listen", "not-an-address"], "--listen"),
    ];
    for (args, expected) in cases {
        let output = Command::new(BINARY).args(args).output().unwrap();
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
}

#[test]
fn a_bad_data_file_stops_start_up_with_file_and_line() {
    let dir = std::env::temp_dir().join(format!("card-lookup-binary-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bad.csv");
    std::fs::write(
        &path,
        "BIN,Brand,Type,Category,Issuer,IssuerPhone,IssuerUrl,isoCode2,isoCode3,CountryName\n\
         411111,VISA,DEBIT,,,,,US,USA,X\n\
         41111A,VISA,DEBIT,,,,,US,USA,X\n",
    )
    .unwrap();
    let output = Command::new(BINARY)
        .args(["--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"])
        .arg("--bin-data")
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "{}: line 3: BIN must be digits only",
            path.display()
        )),
        "{stderr}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

/// The HTTP/JSON port's calls are logged as the gRPC port's are (RUST_LOG=trace), with the
/// number masked, and no card number sent in a body, good or bad, shows in the output.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread")]
async fn http_calls_are_logged_without_card_numbers() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let running = start_with("json", &["--http-listen", "127.0.0.1:0"]);
    let startup = running.startup.concat();
    let http: SocketAddr = startup
        .split("serving HTTP/JSON on ")
        .nth(1)
        .and_then(|rest| rest.split(['"', '\n']).next())
        .unwrap_or_else(|| panic!("no HTTP start-up line: {startup}"))
        .trim()
        .parse()
        .unwrap();
    for pan in PANS {
        for (path, body) in [
            ("/v1/cards:validate", format!(r#"{{"number": "{pan}"}}"#)),
            ("/v1/cards:mask", format!(r#"{{"number": "{pan}"}}"#)),
            ("/v1/bins:lookup", format!(r#"{{"number": "{pan}"}}"#)),
            ("/v1/cards:validate", format!(r#"{{"number": {pan}}}"#)),
            (
                "/v1/cards:validate",
                format!(r#"{{"number": "{pan}", "{pan}": 1}}"#),
            ),
        ] {
            let mut stream = tokio::net::TcpStream::connect(http).await.unwrap();
            let request = format!(
                "POST {path} HTTP/1.1\r\nHost: {http}\r\nContent-Type: application/json\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            stream.write_all(request.as_bytes()).await.unwrap();
            let mut answer = String::new();
            stream.read_to_string(&mut answer).await.unwrap();
            assert!(answer.starts_with("HTTP/1.1 "), "{answer}");
            assert!(leaked_pans(&answer, &PANS).is_empty(), "{answer}");
        }
    }
    let (status, output) = terminate(running);
    assert!(status.success(), "exit {status:?}\n{output}");
    let leaked = leaked_pans(&output, &PANS);
    assert!(
        leaked.is_empty(),
        "the log shows {} card numbers",
        leaked.len()
    );
    assert!(
        output
            .lines()
            .any(|line| line.contains(r#""grpc_method":"MaskCard""#)
                && line.contains(r#""masked_number":"************1111""#)),
        "no MaskCard call line:\n{output}"
    );
}
