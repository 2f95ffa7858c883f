//! Connections that hold a place without using it: silent ones are closed after the preface
//! (header) timeout, and the caps close connections past them at once, on every port, while
//! well-behaved clients from other addresses keep being served; and a connection past its
//! maximum age gets GOAWAY, finishes its call in flight and closes.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use crate::common::{EMBEDDED, TestServer, VALIDATE_PATH, grpc_request, http_get, pb};
use card_lookup::config::Config;
use card_lookup::connection_limits::ConnectionCaps;
use pb::card_lookup_service_client::CardLookupServiceClient;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tonic::transport::Channel;

/// What an HTTP/2 client sends first.
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// Bound on every wait here, far above the timeouts the servers are given, only so that a
/// broken server fails the test instead of hanging it.
pub(crate) const PATIENCE: Duration = Duration::from_secs(10);

async fn start(configure: impl FnOnce(&mut Config)) -> TestServer {
    let mut config = Config::default();
    configure(&mut config);
    TestServer::start_configured(config, Arc::clone(&EMBEDDED)).await
}

/// A TCP connection to `to` from the loopback address `from` (127.0.0.x on Linux are all
/// local), so that a test can be several remote addresses.
pub(crate) async fn connect_from(from: &str, to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket
        .bind(SocketAddr::new(from.parse().unwrap(), 0))
        .unwrap();
    socket.connect(to).await.unwrap()
}

/// Whether the server closes `stream` (end of stream or reset) within [`PATIENCE`], whatever
/// it sends first.
pub(crate) async fn closed_by_server(stream: &mut TcpStream) -> bool {
    let mut buf = [0; 1024];
    let read_to_end = async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(PATIENCE, read_to_end).await.is_ok()
}

/// A client on its own connection from `from`, which gets an answer.
async fn call_from(from: &str, addr: SocketAddr) -> Result<(), String> {
    let local: IpAddr = from.parse().unwrap();
    let channel = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .local_address(Some(local))
        .connect_timeout(PATIENCE)
        .timeout(PATIENCE)
        .connect()
        .await
        .map_err(|e| format!("connect: {e}"))?;
    CardLookupServiceClient::new(channel)
        .validate(pb::ValidateRequest {
            number: "4111111111111111".into(),
        })
        .await
        .map(drop)
        .map_err(|status| format!("call: {status}"))
}

#[tokio::test]
async fn silent_connections_are_closed_after_the_preface_timeout() {
    let server = start(|c| c.connection_preface_timeout = Duration::from_millis(300)).await;
    for addr in [server.grpc_addr, server.admin_addr] {
        let mut silent = TcpStream::connect(addr).await.unwrap();
        assert!(
            closed_by_server(&mut silent).await,
            "a silent connection to {addr} stayed open"
        );
        // Half a preface, then nothing: closed too.
        let mut slow = TcpStream::connect(addr).await.unwrap();
        slow.write_all(&PREFACE[..10]).await.unwrap();
        assert!(
            closed_by_server(&mut slow).await,
            "a connection with half a preface to {addr} stayed open"
        );
    }
    // A client that starts at once is served, on both ports.
    assert!(call_from("127.0.0.1", server.grpc_addr).await.is_ok());
    let mut admin = server.admin().await;
    assert!(
        admin
            .get_index_info(crate::common::admin_pb::GetIndexInfoRequest {})
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn silent_connections_from_many_addresses_never_lock_a_new_client_out() {
    let server = start(|config| {
        config.connection_caps = ConnectionCaps {
            max_total: 5_000,
            max_per_address: 300,
        };
    })
    .await;
    // More silent connections than the port keeps starting (1,024), from five addresses, each
    // within its per-address cap; they would stay for the whole preface timeout (10 s).
    let mut silent = Vec::new();
    for n in 0..1_100 {
        let from = format!("127.0.0.{}", 10 + n % 5);
        silent.push(connect_from(&from, server.grpc_addr).await);
    }
    // A client from another address starts at once: the oldest silent one makes room.
    tokio::time::timeout(PATIENCE, call_from("127.0.0.2", server.grpc_addr))
        .await
        .expect("the client was served before the silent connections timed out")
        .expect("the client was served");
    let scrape = server.scrape().await;
    assert!(
        scrape.contains(r#"cardlookup_connections_refused_total{port="grpc",reason="pending"}"#),
        "{scrape}"
    );
    drop(silent);
}

#[tokio::test]
async fn a_connection_past_the_per_address_cap_is_closed_at_once() {
    let server = start(|c| {
        c.connection_caps.max_per_address = 5;
        // Long enough that the five kept below are not closed for silence meanwhile.
        c.connection_preface_timeout = Duration::from_secs(60);
    })
    .await;
    let mut kept = Vec::new();
    for _ in 0..5 {
        let mut stream = connect_from("127.0.0.1", server.grpc_addr).await;
        stream.write_all(PREFACE).await.unwrap();
        kept.push(stream);
    }
    let mut sixth = connect_from("127.0.0.1", server.grpc_addr).await;
    assert!(
        closed_by_server(&mut sixth).await,
        "the 6th connection of one address was kept"
    );
    call_from("127.0.0.2", server.grpc_addr)
        .await
        .expect("another address is served");
    // A place given back is free again: the server counts a connection out when it closes.
    drop(kept.pop());
    let mut answered = false;
    for _ in 0..50 {
        if call_from("127.0.0.1", server.grpc_addr).await.is_ok() {
            answered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(answered, "a closed connection's place was not given back");
    let metrics = server.scrape().await;
    assert!(
        metrics.lines().any(|line| line.starts_with(
            r#"cardlookup_connections_refused_total{port="grpc",reason="per_address"}"#
        )),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_connection_past_the_total_cap_is_closed_at_once_and_counted() {
    let server = start(|c| {
        c.connection_caps = ConnectionCaps {
            max_total: 3,
            max_per_address: 3,
        };
        c.connection_preface_timeout = Duration::from_secs(60);
    })
    .await;
    let mut kept = Vec::new();
    for addr in [server.grpc_addr, server.admin_addr] {
        for from in ["127.0.0.2", "127.0.0.3", "127.0.0.4"] {
            let mut stream = connect_from(from, addr).await;
            stream.write_all(PREFACE).await.unwrap();
            kept.push(stream);
        }
        let mut fourth = connect_from("127.0.0.5", addr).await;
        assert!(
            closed_by_server(&mut fourth).await,
            "a 4th connection to {addr} was kept"
        );
    }
    let metrics = server.scrape().await;
    for port in ["grpc", "admin"] {
        let refused =
            format!(r#"cardlookup_connections_refused_total{{port="{port}",reason="total"}}"#);
        assert!(
            metrics.lines().any(|line| line.starts_with(&refused)),
            "no {refused} in {metrics}"
        );
        // At least this server's three (other tests' servers in this process add theirs).
        let open = format!(r#"cardlookup_connections_open{{port="{port}"}} "#);
        let count = metrics
            .lines()
            .find_map(|line| line.strip_prefix(&open))
            .unwrap_or_else(|| panic!("no {open} in {metrics}"));
        assert!(count.parse::<f64>().unwrap() >= 3.0, "{open}{count}");
    }
}

#[tokio::test]
async fn the_metrics_port_closes_a_connection_that_sends_half_a_request() {
    let server = start(|c| c.connection_preface_timeout = Duration::from_millis(300)).await;
    let mut half = TcpStream::connect(server.metrics_addr).await.unwrap();
    half.write_all(b"GET /metr").await.unwrap();
    let mut silent = TcpStream::connect(server.metrics_addr).await.unwrap();
    assert!(
        closed_by_server(&mut half).await,
        "half a request line kept the connection open"
    );
    assert!(
        closed_by_server(&mut silent).await,
        "a silent connection to the metrics port stayed open"
    );
    let (status, body) = http_get(server.metrics_addr, "/metrics").await;
    assert!(status.contains("200"), "{status}");
    assert!(body.contains("cardlookup_connections_open"), "{body}");
}

#[tokio::test]
async fn the_metrics_port_caps_connections_per_address() {
    let server = start(|c| {
        c.connection_caps.max_per_address = 2;
        c.connection_preface_timeout = Duration::from_secs(60);
    })
    .await;
    let _kept = [
        connect_from("127.0.0.1", server.metrics_addr).await,
        connect_from("127.0.0.1", server.metrics_addr).await,
    ];
    let mut third = connect_from("127.0.0.1", server.metrics_addr).await;
    assert!(
        closed_by_server(&mut third).await,
        "a 3rd metrics connection of one address was kept"
    );
}

/// The `card-lookup` binary with `RUST_LOG=info` (as deploy/ sets it), started by `sh` so that
/// `limits` (shell commands such as `ulimit -n 64`) apply to it.
struct Binary {
    child: std::process::Child,
    grpc: SocketAddr,
    metrics: SocketAddr,
    output: std::thread::JoinHandle<String>,
}

impl Binary {
    fn start(limits: &str, flags: &[&str]) -> Self {
        use std::io::{BufRead, BufReader, Read};
        let mut child = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("{limits}\nexec \"$0\" \"$@\""))
            .arg(env!("CARGO_BIN_EXE_card-lookup"))
            .args(["--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"])
            .args(flags)
            .env("RUST_LOG", "info")
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("the binary starts");
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        // Bounded: the process prints a few lines before this one, or exits.
        for _ in 0..100 {
            line.clear();
            assert!(stdout.read_line(&mut line).unwrap() > 0, "exited early");
            if line.contains("serving gRPC on ") {
                break;
            }
        }
        let address = |after: &str, until: char| -> SocketAddr {
            let rest = line.split(after).nth(1).expect("the serving line");
            rest.split(until).next().unwrap().trim().parse().unwrap()
        };
        let (grpc, metrics) = (address("gRPC on ", ','), address("http://", '/'));
        let output = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stdout.read_to_string(&mut text);
            text
        });
        Self {
            child,
            grpc,
            metrics,
            output,
        }
    }

    /// Stops the process and returns what it logged after start-up.
    fn stop(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.output.join().unwrap()
    }
}

fn warnings(log: &str) -> Vec<&str> {
    log.lines().filter(|line| line.contains("WARN")).collect()
}

#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread")]
async fn running_out_of_file_descriptors_logs_one_line_and_counts_the_rest() {
    let binary = Binary::start("ulimit -n 64", &["--connection-preface-timeout", "60s"]);
    // More connections than the process may open files: accepts fail until they close.
    let mut silent = Vec::new();
    for _ in 0..80 {
        silent.push(TcpStream::connect(binary.grpc).await.unwrap());
    }
    // A failed accept is retried every 50 ms: 40 failures in these 2 s.
    tokio::time::sleep(Duration::from_secs(2)).await;
    drop(silent);
    // Once they are closed, the process has files again and /metrics answers.
    let (_, scraped) = tokio::time::timeout(PATIENCE, http_get(binary.metrics, "/metrics"))
        .await
        .expect("/metrics answers once the connections are closed");
    let log = binary.stop();
    assert!(
        log.contains("allows more connections than the process may open files"),
        "no warning at start-up that the caps exceed the file limit:\n{log}"
    );
    let failures = log.lines().filter(|l| l.contains("accept failed")).count();
    assert!(
        (1..=2).contains(&failures),
        "{failures} accept failed lines:\n{log}"
    );
    let counted = scraped
        .lines()
        .find_map(|line| line.strip_prefix(r#"cardlookup_accept_errors_total{port="grpc"} "#))
        .unwrap_or_else(|| panic!("no accept error count in {scraped}"));
    assert!(counted.parse::<f64>().unwrap() >= 2.0, "{counted}");
}

#[tokio::test(flavor = "multi_thread")]
async fn rapid_resets_write_no_warning() {
    // Caps within the file limit, so that start-up has nothing to warn about either.
    let binary = Binary::start("ulimit -n 4096", &["--max-connections", "1000"]);
    let mut closed_by_server = 0;
    // Whether the server sees a reset before it has accepted the stream depends on timing: new
    // connections until it has closed one, bounded.
    for _ in 0..20 {
        if closed_by_server > 0 {
            break;
        }
        let mut sender = crate::common::h2_connection(binary.grpc).await;
        let request = crate::common::grpc_request(binary.grpc, crate::common::VALIDATE_PATH);
        // Bounded: the server closes the connection long before.
        for _ in 0..5000 {
            let Ok(ready) = sender.ready().await else {
                closed_by_server += 1;
                break;
            };
            sender = ready;
            // Dropping the stream at once resets it (RST_STREAM, CANCEL).
            let Ok(stream) = sender.send_request(request.clone(), false) else {
                closed_by_server += 1;
                break;
            };
            drop(stream);
        }
    }
    let log = binary.stop();
    assert!(closed_by_server > 0, "no rapid-reset connection was closed");
    assert!(warnings(&log).is_empty(), "{log}");
}

/// At its maximum age a connection gets GOAWAY: it takes no new call, a call in flight still
/// finishes within the grace, and then the server closes the connection.
#[tokio::test]
async fn a_connection_past_its_age_gets_goaway_and_a_call_in_flight_finishes() {
    use prost::Message;

    let server = start(|config| {
        config.max_connection_age = Duration::from_millis(300);
        config.max_connection_age_grace = Duration::from_secs(5);
    })
    .await;
    let tcp = TcpStream::connect(server.grpc_addr).await.unwrap();
    let (mut sender, connection) = h2::client::handshake(tcp).await.unwrap();
    let connection = tokio::spawn(connection);
    // A call whose message is held back past the age (at most 330 ms with its jitter).
    let (response, mut request) = sender
        .send_request(grpc_request(server.grpc_addr, VALIDATE_PATH), false)
        .unwrap();
    tokio::time::sleep(Duration::from_millis(800)).await;

    // GOAWAY came: a new call on the connection is not taken.
    let refused = match sender.clone().ready().await {
        Err(error) => Some(error.to_string()),
        Ok(mut ready) => {
            match ready.send_request(grpc_request(server.grpc_addr, VALIDATE_PATH), true) {
                Err(error) => Some(error.to_string()),
                Ok((late, _)) => tokio::time::timeout(PATIENCE, late)
                    .await
                    .unwrap()
                    .err()
                    .map(|error| error.to_string()),
            }
        }
    };
    assert!(refused.is_some(), "a call opened after GOAWAY was taken");

    // The call in flight is answered.
    let message = pb::ValidateRequest {
        number: "4111111111111111".into(),
    }
    .encode_to_vec();
    let mut frame = vec![0u8];
    frame.extend_from_slice(&u32::try_from(message.len()).unwrap().to_be_bytes());
    frame.extend_from_slice(&message);
    request.send_data(frame.into(), true).unwrap();
    let mut body = tokio::time::timeout(PATIENCE, response)
        .await
        .unwrap()
        .unwrap()
        .into_body();
    while let Some(data) = body.data().await {
        let data = data.unwrap();
        let _ = body.flow_control().release_capacity(data.len());
    }
    let trailers = body.trailers().await.unwrap().unwrap();
    assert_eq!(trailers["grpc-status"], "0", "{trailers:?}");

    // With no call left, the server closes the connection (well within the 5 s grace).
    let ended = tokio::time::timeout(Duration::from_secs(3), connection).await;
    assert!(ended.is_ok(), "the connection stayed open after GOAWAY");
}
