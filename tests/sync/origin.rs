//! Origins for the updater's tests: a real HTTP server (answering conditional requests or
//! ignoring them, as a plain static file server does), one that cuts its answers short, and
//! one that accepts and never answers.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::header::{DATE, ETAG, IF_MODIFIED_SINCE, IF_NONE_MATCH, LAST_MODIFIED};
use hyper::{Request, Response, StatusCode};
use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

/// Whether the origin answers `If-None-Match`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Conditional,
    Plain,
    /// Every answer says it was last modified in the second it is sent (`Last-Modified` equal
    /// to `Date`, as a coarse server's would for a file written in that second), and answers
    /// 304 to `If-Modified-Since` with that time, whatever changed since.
    SameSecond,
}

const SECOND: &str = "Sat, 05 Dec 2026 08:00:00 GMT";

/// An HTTP origin serving what it was given, counting what it was asked.
pub(crate) struct Origin {
    pub(crate) addr: SocketAddr,
    files: Arc<Mutex<HashMap<String, Vec<u8>>>>,
    requests: Arc<Mutex<HashMap<String, u64>>>,
    pub(crate) not_modified: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Origin {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Origin {
    pub(crate) async fn start(mode: Mode) -> Self {
        Self::start_tls(mode, None).await
    }

    /// With `tls`, an `https://` origin.
    pub(crate) async fn start_tls(mode: Mode, tls: Option<tokio_rustls::TlsAcceptor>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let files = Arc::new(Mutex::new(HashMap::<String, Vec<u8>>::new()));
        let requests = Arc::new(Mutex::new(HashMap::<String, u64>::new()));
        let not_modified = Arc::new(AtomicU64::new(0));
        let (served, asked, unchanged) = (
            Arc::clone(&files),
            Arc::clone(&requests),
            Arc::clone(&not_modified),
        );
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (served, asked, unchanged) = (
                    Arc::clone(&served),
                    Arc::clone(&asked),
                    Arc::clone(&unchanged),
                );
                let tls = tls.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request: Request<_>| {
                        let answer = answer(&request, mode, &served, &asked, &unchanged);
                        async move { Ok::<_, Infallible>(answer) }
                    });
                    let http = hyper::server::conn::http1::Builder::new();
                    let _ = match tls {
                        None => {
                            http.serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                                .await
                        }
                        Some(tls) => {
                            let Ok(stream) = tls.accept(stream).await else {
                                return;
                            };
                            http.serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                                .await
                        }
                    };
                });
            }
        });
        Self {
            addr,
            files,
            requests,
            not_modified,
            task,
        }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}/{path}", self.addr)
    }

    /// The URL of `path` for an origin started with TLS (its certificate is for localhost).
    pub(crate) fn https_url(&self, path: &str) -> String {
        format!("https://localhost:{}/{path}", self.addr.port())
    }

    /// Serves `bytes` at `/path`.
    pub(crate) fn put(&self, path: &str, bytes: impl Into<Vec<u8>>) {
        self.files
            .lock()
            .unwrap()
            .insert(format!("/{path}"), bytes.into());
    }

    /// How many times `/path` was asked for.
    pub(crate) fn requests(&self, path: &str) -> u64 {
        self.requests
            .lock()
            .unwrap()
            .get(&format!("/{path}"))
            .copied()
            .unwrap_or(0)
    }
}

fn answer(
    request: &Request<hyper::body::Incoming>,
    mode: Mode,
    files: &Mutex<HashMap<String, Vec<u8>>>,
    requests: &Mutex<HashMap<String, u64>>,
    not_modified: &AtomicU64,
) -> Response<Full<Bytes>> {
    let path = request.uri().path().to_owned();
    *requests.lock().unwrap().entry(path.clone()).or_default() += 1;
    let Some(bytes) = files.lock().unwrap().get(&path).cloned() else {
        return Response::builder()
            .status(StatusCode::NOT_FOUND)
            .body(Full::new(Bytes::new()))
            .unwrap();
    };
    let mut response = Response::builder();
    if mode == Mode::SameSecond {
        if request
            .headers()
            .get(IF_MODIFIED_SINCE)
            .is_some_and(|since| since.as_bytes() == SECOND.as_bytes())
        {
            not_modified.fetch_add(1, Ordering::Relaxed);
            return Response::builder()
                .status(StatusCode::NOT_MODIFIED)
                .body(Full::new(Bytes::new()))
                .unwrap();
        }
        response = response.header(LAST_MODIFIED, SECOND).header(DATE, SECOND);
    }
    if mode == Mode::Conditional {
        let etag = format!("\"{}\"", &sha256(&bytes)[..16]);
        if request
            .headers()
            .get(IF_NONE_MATCH)
            .is_some_and(|tag| tag.as_bytes() == etag.as_bytes())
        {
            not_modified.fetch_add(1, Ordering::Relaxed);
            return Response::builder()
                .status(StatusCode::NOT_MODIFIED)
                .body(Full::new(Bytes::new()))
                .unwrap();
        }
        response = response.header(ETAG, etag);
    }
    response.body(Full::new(Bytes::from(bytes))).unwrap()
}

pub(crate) fn sha256(bytes: &[u8]) -> String {
    card_lookup::hex::hex(&Sha256::digest(bytes))
}

/// An origin that answers every request with headers promising `promised` bytes, sends
/// `sent`, and closes the connection.
pub(crate) async fn cut_short(promised: usize, sent: &'static [u8]) -> SocketAddr {
    raw_origin(move |mut stream| async move {
        let mut request = [0u8; 4096];
        let _ = stream.read(&mut request).await;
        let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {promised}\r\n\r\n");
        let _ = stream.write_all(head.as_bytes()).await;
        let _ = stream.write_all(sent).await;
    })
    .await
}

/// An origin that accepts connections and never says anything.
pub(crate) async fn silent() -> SocketAddr {
    raw_origin(|stream| async move {
        tokio::time::sleep(std::time::Duration::from_secs(120)).await;
        drop(stream);
    })
    .await
}

async fn raw_origin<F, Fut>(handle: F) -> SocketAddr
where
    F: Fn(tokio::net::TcpStream) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(handle(stream));
        }
    });
    addr
}

/// An address nothing listens on.
pub(crate) async fn down() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap()
}
