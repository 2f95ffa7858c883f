//! A real server on ephemeral ports, and real clients for it. The `it` test binary and the
//! binaries kept apart from it (`tests/metrics.rs`, `tests/cancelled_calls.rs`,
//! `tests/reload.rs`, which include this file by its path) each use part of this module, hence
//! the `dead_code` allowance (and `pub` is for the test modules, not a crate).
#![allow(dead_code, unreachable_pub)]

pub mod pki;
pub mod redis;

use std::net::SocketAddr;
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use card_lookup::bins::{BinStore, DataSource, LoadOptions};
use card_lookup::config::Config;
use card_lookup::proto::cardlookup::admin::v1::admin_service_client::AdminServiceClient;
use card_lookup::proto::cardlookup::v1::card_lookup_service_client::CardLookupServiceClient;
use card_lookup::server::{self, Listeners, ServerError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::Channel;

#[allow(unused_imports)] // not every test file calls the services
pub use card_lookup::proto::cardlookup::{admin::v1 as admin_pb, v1 as pb};

/// The embedded default data, loaded once per test binary.
pub static EMBEDDED: LazyLock<Arc<BinStore>> = LazyLock::new(|| {
    Arc::new(
        BinStore::load(vec![DataSource::Embedded], LoadOptions::default())
            .expect("embedded data loads"),
    )
});

/// One Inspect batch of `numbers` (item ids "0", "1", ... in order) with `layout`, and its
/// one answer.
pub async fn inspect_once(
    client: &mut CardLookupServiceClient<Channel>,
    numbers: &[&str],
    layout: pb::BinAnswerLayout,
) -> pb::InspectResponse {
    let request = pb::InspectRequest {
        items: numbers
            .iter()
            .enumerate()
            .map(|(i, number)| pb::InspectItem {
                id: i.to_string(),
                number: (*number).to_owned(),
            })
            .collect(),
        bin_answers: layout.into(),
        ..Default::default()
    };
    let mut answers = client
        .inspect(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    answers.message().await.unwrap().expect("an answer")
}

/// A store of the embedded data with `files` on top, as `--bin-data` gives.
pub fn store_with_files(files: &[&std::path::Path], options: LoadOptions) -> Arc<BinStore> {
    let sources = std::iter::once(DataSource::Embedded)
        .chain(files.iter().map(|f| DataSource::File(f.to_path_buf())))
        .collect();
    Arc::new(BinStore::load(sources, options).expect("the data loads"))
}

/// A fresh directory for one test's files, removed when dropped.
pub struct TempDir(pub std::path::PathBuf);

/// Runs the `card-lookup` binary with `args`: its exit code, standard output and error.
pub fn run_binary(args: &[&str]) -> (Option<i32>, String, String) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_card-lookup"))
        .args(args)
        .output()
        .unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

impl TempDir {
    pub fn new(name: &str) -> Self {
        static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let unique = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!(
            "card-lookup-{name}-{}-{unique}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }

    /// Writes `contents` to `name` in the directory and returns its path.
    pub fn write(&self, name: &str, contents: &str) -> std::path::PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A server started in-process on 127.0.0.1 with port 0 for gRPC and metrics.
pub struct TestServer {
    pub grpc_addr: SocketAddr,
    pub metrics_addr: SocketAddr,
    pub admin_addr: SocketAddr,
    /// The plaintext health-only port (`--health-listen`).
    pub health_addr: SocketAddr,
    /// The HTTP/JSON port (`--http-listen`).
    pub http_addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), ServerError>>,
}

impl TestServer {
    /// Serves the embedded default data.
    pub async fn start() -> Self {
        Self::start_with(Arc::clone(&EMBEDDED)).await
    }

    pub async fn start_with(store: Arc<BinStore>) -> Self {
        Self::start_configured(Config::default(), store).await
    }

    pub async fn start_configured(config: Config, store: Arc<BinStore>) -> Self {
        let grpc = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let metrics = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let admin = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let health = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let http = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let grpc_addr = grpc.local_addr().unwrap();
        let metrics_addr = metrics.local_addr().unwrap();
        let admin_addr = admin.local_addr().unwrap();
        let health_addr = health.local_addr().unwrap();
        let http_addr = http.local_addr().unwrap();
        let (shutdown, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let listeners = Listeners {
                grpc,
                metrics,
                admin: Some(admin),
                health: Some(health),
                http: Some(http),
            };
            Box::pin(server::run(&config, store, listeners, async {
                let _ = stopped.await;
            }))
            .await
        });
        Self {
            grpc_addr,
            metrics_addr,
            admin_addr,
            health_addr,
            http_addr,
            shutdown: Some(shutdown),
            task,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.grpc_addr)
    }

    pub async fn channel(&self) -> Channel {
        Channel::from_shared(self.url())
            .unwrap()
            .connect()
            .await
            .expect("the server accepts connections")
    }

    pub async fn client(&self) -> CardLookupServiceClient<Channel> {
        CardLookupServiceClient::new(self.channel().await)
    }

    pub async fn admin(&self) -> AdminServiceClient<Channel> {
        let channel = Channel::from_shared(format!("http://{}", self.admin_addr))
            .unwrap()
            .connect()
            .await
            .expect("the admin service accepts connections");
        AdminServiceClient::new(channel)
    }

    /// Signals shutdown and waits for the server to return.
    pub async fn stop(mut self) -> Result<(), ServerError> {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        (&mut self.task)
            .await
            .expect("the server task does not panic")
    }

    /// `GET /metrics`, body only.
    pub async fn scrape(&self) -> String {
        http_get(self.metrics_addr, "/metrics").await.1
    }

    /// Starts a Validate call whose message never comes, so it stays in flight, with the
    /// caller's `grpc-timeout` when given. Dropping the answer's future resets the stream
    /// (RST_STREAM, CANCEL), as a caller that gives up does.
    pub async fn stalled_call(&self, grpc_timeout: Option<&str>) -> h2::client::ResponseFuture {
        let mut sender = h2_connection(self.grpc_addr).await;
        let mut request = grpc_request(self.grpc_addr, VALIDATE_PATH);
        if let Some(timeout) = grpc_timeout {
            request
                .headers_mut()
                .insert("grpc-timeout", timeout.parse().unwrap());
        }
        let (response, _body) = sender.send_request(request, false).unwrap();
        response
    }

    /// Calls Validate until a call is refused (within 5 s) and returns the refusal: a stalled
    /// call takes its place under the concurrency limit only once the server has read it.
    pub async fn first_refusal(&self) -> tonic::Status {
        let mut client = self.client().await;
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let request = pb::ValidateRequest {
                number: "4111111111111111".into(),
            };
            if let Err(status) = client.validate(request).await {
                return status;
            }
            assert!(Instant::now() < deadline, "no call was refused");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Validate's request path.
pub const VALIDATE_PATH: &str = "/cardlookup.v1.CardLookupService/Validate";

/// A raw HTTP/2 connection to `addr`, for calls a tonic client cannot make (a message that
/// never comes, more streams than the server allows).
pub async fn h2_connection(addr: SocketAddr) -> h2::client::SendRequest<tonic::codegen::Bytes> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (sender, connection) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(connection);
    sender
}

/// The headers of a gRPC call to `path` on `addr`, for an [`h2_connection`].
pub fn grpc_request(addr: SocketAddr, path: &str) -> http::Request<()> {
    http::Request::post(format!("http://{addr}{path}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(())
        .unwrap()
}

/// A minimal HTTP/1.1 GET: returns the status line and the body.
pub async fn http_get(addr: SocketAddr, path: &str) -> (String, String) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status = head.lines().next().unwrap_or_default().to_owned();
    (status, body.to_owned())
}

/// The numbers of `pans` (those a test sent) of which `text` shows any run of 12 or more
/// consecutive digits: a masked form shows at most 6 + 4, so 12 in a row is a leak.
pub fn leaked_pans<'a>(text: &str, pans: &[&'a str]) -> Vec<&'a str> {
    const LEAK: usize = 12;
    pans.iter()
        .copied()
        .filter(|pan| {
            let digits: String = pan.chars().filter(char::is_ascii_digit).collect();
            (0..=digits.len().saturating_sub(LEAK))
                .any(|start| digits.len() >= LEAK && text.contains(&digits[start..start + LEAK]))
        })
        .collect()
}

/// Kills a process left running by a failed test.
pub struct KillOnDrop(pub u32);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-KILL", &self.0.to_string()])
            .status();
    }
}
