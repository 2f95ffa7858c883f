//! Accepting connections: TCP with TCP_NODELAY, optionally TLS, each labelled with the peer's
//! address and (under mutual TLS) certificate subject for rate limiting and logs; within the
//! port's connection caps, and (HTTP/2) only once the client has sent its preface in time.
//!
//! The accept loop never waits for anything but the next connection: a connection over a cap
//! is closed at once, and TLS handshakes and preface reads are done in a task of their own.

use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::transport::server::Connected;

use crate::connection_limits::{ConnectionLimits, ConnectionSlot, Refused};
use crate::identity::address_identity;
use crate::log_throttle::{LOG_INTERVAL, LogThrottle};
use crate::tls::{LiveTls, certificate_identity};
use starting::{MAX_STARTING, Starting};

mod starting;

/// Pause after a failed accept (out of file descriptors), so the loop does not spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(50);
/// What an HTTP/2 client sends first (RFC 9113, section 3.4).
const HTTP2_PREFACE_LEN: usize = 24;

/// Who is on the other end of a connection.
#[derive(Debug, Clone, Default)]
pub(crate) struct PeerInfo {
    /// The remote IP address, to tell whether its network is trusted to name its callers.
    pub(crate) remote_addr: Option<IpAddr>,
    /// The identity of that address ([`address_identity`]), made once a connection: the client
    /// id of last resort, which every call on the connection would otherwise format again.
    pub(crate) remote_ip: Option<Arc<str>>,
    /// The client certificate's identity (common name, else subject), under mutual TLS.
    pub(crate) client_subject: Option<Arc<str>>,
}

enum Io {
    Plain(TcpStream),
    Tls(Box<TlsStream>),
}

/// An accepted connection, plain or TLS.
pub(crate) struct Connection {
    io: Io,
    peer: PeerInfo,
    /// The bytes read ahead to see the HTTP/2 preface, given to the server before the rest.
    read_ahead: Vec<u8>,
    read_ahead_consumed: usize,
    /// The connection's place under the port's caps, given back when the server drops it.
    _slot: ConnectionSlot,
    /// When the connection is closed whatever it is doing: its maximum age and the grace after
    /// it ([`Protocol::Http2`]'s `closed_after`).
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl Connection {
    fn new(
        io: Io,
        peer: PeerInfo,
        read_ahead: Vec<u8>,
        slot: ConnectionSlot,
        closed_after: Option<Duration>,
    ) -> Self {
        Self {
            io,
            peer,
            read_ahead,
            read_ahead_consumed: 0,
            _slot: slot,
            deadline: closed_after.map(|after| Box::pin(tokio::time::sleep(after))),
        }
    }

    /// Whether the connection is past its deadline. Cheap while data flows (a flag read);
    /// when the read has to wait, the timer is armed too, so that a connection whose peer
    /// sends nothing (and reads nothing) is still ended on time.
    fn past_deadline(&mut self, cx: &mut Context<'_>, read_waits: bool) -> bool {
        self.deadline.as_mut().is_some_and(|deadline| {
            if read_waits {
                deadline.as_mut().poll(cx).is_ready()
            } else {
                deadline.is_elapsed()
            }
        })
    }
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("tls", &matches!(self.io, Io::Tls(_)))
            .field("peer", &self.peer)
            .finish_non_exhaustive()
    }
}

impl Connected for Connection {
    type ConnectInfo = PeerInfo;

    fn connect_info(&self) -> PeerInfo {
        self.peer.clone()
    }
}

impl AsyncRead for Connection {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let ahead = &self.read_ahead[self.read_ahead_consumed..];
        if !ahead.is_empty() {
            let n = ahead.len().min(buf.remaining());
            buf.put_slice(&ahead[..n]);
            self.read_ahead_consumed += n;
            if self.read_ahead_consumed == self.read_ahead.len() {
                self.read_ahead = Vec::new();
                self.read_ahead_consumed = 0;
            }
            return Poll::Ready(Ok(()));
        }
        let read = match &mut self.io {
            Io::Plain(stream) => Pin::new(stream).poll_read(cx, buf),
            Io::Tls(stream) => Pin::new(stream.as_mut()).poll_read(cx, buf),
        };
        if self.past_deadline(cx, read.is_pending()) {
            // The server drops a connection whose reads fail: it is closed.
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "past the maximum connection age and its grace",
            )));
        }
        read
    }
}

impl AsyncWrite for Connection {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match &mut self.io {
            Io::Plain(stream) => Pin::new(stream).poll_write(cx, buf),
            Io::Tls(stream) => Pin::new(stream.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.io {
            Io::Plain(stream) => Pin::new(stream).poll_flush(cx),
            Io::Tls(stream) => Pin::new(stream.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.io {
            Io::Plain(stream) => Pin::new(stream).poll_shutdown(cx),
            Io::Tls(stream) => Pin::new(stream.as_mut()).poll_shutdown(cx),
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match &mut self.io {
            Io::Plain(stream) => Pin::new(stream).poll_write_vectored(cx, bufs),
            Io::Tls(stream) => Pin::new(stream.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match &self.io {
            Io::Plain(stream) => stream.is_write_vectored(),
            Io::Tls(stream) => stream.is_write_vectored(),
        }
    }
}

const HANDSHAKE_FAILURES: &str = "cardlookup_tls_handshake_failures_total";
const ACCEPT_ERRORS: &str = "cardlookup_accept_errors_total";
/// The `reason` label of [`HANDSHAKE_FAILURES`].
const HANDSHAKE_REFUSED: &str = "refused";
const HANDSHAKE_TIMEOUT: &str = "timeout";
const HANDSHAKE_FAILURE_REASONS: [&str; 2] = [HANDSHAKE_REFUSED, HANDSHAKE_TIMEOUT];

/// What a port speaks, and so what a connection must do before the server gets it.
#[derive(Debug, Clone)]
pub(crate) enum Protocol {
    /// gRPC: the client must finish the TLS handshake (when `tls` is given) and send the
    /// HTTP/2 preface within `preface_timeout` of being accepted. With `closed_after`, the
    /// connection is closed that long after it is handed to the server, whatever it is doing:
    /// the maximum age and its grace. (tonic sends GOAWAY at the age only when it is given no
    /// grace of its own: with one, it sends none and closes the connection abruptly when the
    /// grace ends. So tonic gets the age and this, the grace.)
    Http2 {
        tls: Option<Arc<LiveTls>>,
        preface_timeout: Duration,
        closed_after: Option<Duration>,
    },
    /// Plaintext HTTP/1 (metrics): handed over at once; its server bounds the time to read
    /// the request headers.
    Http1,
    /// The HTTP/JSON port, HTTP/1.1 or HTTP/2 (by ALPN under TLS, else by the first bytes):
    /// the client must finish the TLS handshake (when `tls` is given) and send enough of its
    /// first request to tell which within `preface_timeout`. (The server's version detection
    /// has no timer of its own; its HTTP/1 side bounds the rest of the headers.) With
    /// `closed_after`, as for `Http2`: the server closes gracefully at the age, this at the end
    /// of the grace.
    Http {
        tls: Option<Arc<LiveTls>>,
        preface_timeout: Duration,
        closed_after: Option<Duration>,
    },
}

/// Accepts connections until `stop`, within `limits`, handing the server those that are ready
/// (see [`Protocol`]). Connections over a cap, too many not ready, that fail the handshake (no
/// or a wrong client certificate under mTLS) or send no preface in time are closed and
/// counted; the log gets at most one line an interval about them.
pub(crate) fn accept(
    listener: TcpListener,
    protocol: Protocol,
    limits: Arc<ConnectionLimits>,
    stop: CancellationToken,
) -> ReceiverStream<io::Result<Connection>> {
    metrics::describe_counter!(
        HANDSHAKE_FAILURES,
        "TLS handshakes that failed (reason refused: no or a wrong client certificate, bad TLS; or timeout)."
    );
    metrics::describe_counter!(
        ACCEPT_ERRORS,
        "Failed accepts of a port, such as when the process is out of file descriptors."
    );
    let accept_errors = metrics::counter!(ACCEPT_ERRORS, "port" => limits.port());
    if let Protocol::Http2 { tls: Some(_), .. } | Protocol::Http { tls: Some(_), .. } = &protocol {
        // At 0 from the start, so that rate() sees the first failure of each kind.
        for reason in HANDSHAKE_FAILURE_REASONS {
            metrics::counter!(HANDSHAKE_FAILURES, "reason" => reason).increment(0);
        }
    }
    let (ready, connections) = mpsc::channel(MAX_STARTING);
    let starting = Arc::new(Starting::default());
    let handshake_log = Arc::new(LogThrottle::new(LOG_INTERVAL));
    tokio::spawn(async move {
        let accept_error_log = LogThrottle::new(LOG_INTERVAL);
        while let Some(accepted) = stop.run_until_cancelled(listener.accept()).await {
            let (stream, remote_addr) = match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    accept_errors.increment(1);
                    if let Some(suppressed) = accept_error_log.allow() {
                        tracing::warn!(
                            %error,
                            port = limits.port(),
                            suppressed,
                            "accept failed"
                        );
                    }
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                    continue;
                }
            };
            // Dropping the stream closes it: over a cap, the client learns at once.
            let Ok(slot) = limits.admit(remote_addr.ip()) else {
                continue;
            };
            let (place, made_room) = starting.enter();
            if made_room {
                limits.refuse(Refused::Pending);
            }
            let connection = Accepted {
                stream,
                remote_addr,
                slot,
                arrived: Instant::now(),
            };
            let protocol = protocol.clone();
            let limits = Arc::clone(&limits);
            let handshake_log = Arc::clone(&handshake_log);
            let ready = ready.clone();
            tokio::spawn(async move {
                let prepare = connection.prepare(protocol, &limits, &handshake_log);
                // Evicted: closed (dropped) to make room for a newer connection.
                let prepared = place.evicted.run_until_cancelled(prepare).await.flatten();
                drop(place);
                if let Some(connection) = prepared {
                    let _ = ready.send(Ok(connection)).await;
                }
            });
        }
    });
    ReceiverStream::new(connections)
}

/// A connection just accepted, under the caps.
struct Accepted {
    stream: TcpStream,
    remote_addr: SocketAddr,
    slot: ConnectionSlot,
    arrived: Instant,
}

impl Accepted {
    /// The connection ready for the server, or `None` when it was closed (and counted).
    async fn prepare(
        self,
        protocol: Protocol,
        limits: &ConnectionLimits,
        handshake_log: &LogThrottle,
    ) -> Option<Connection> {
        // Small responses must not wait for Nagle's algorithm: without TCP_NODELAY
        // latency jumps by tens of milliseconds.
        let _ = self.stream.set_nodelay(true);
        let peer = PeerInfo {
            remote_addr: Some(self.remote_addr.ip()),
            remote_ip: Some(Arc::from(address_identity(self.remote_addr.ip()))),
            client_subject: None,
        };
        let (tls, preface_timeout, closed_after, http2_only) = match protocol {
            Protocol::Http1 => {
                return Some(Connection::new(
                    Io::Plain(self.stream),
                    peer,
                    Vec::new(),
                    self.slot,
                    None,
                ));
            }
            Protocol::Http2 {
                tls,
                preface_timeout,
                closed_after,
            } => (
                tls.map(|tls| tls.acceptor()),
                preface_timeout,
                closed_after,
                true,
            ),
            Protocol::Http {
                tls,
                preface_timeout,
                closed_after,
            } => (
                tls.map(|tls| tls.http_acceptor()),
                preface_timeout,
                closed_after,
                false,
            ),
        };
        let deadline = self.arrived + preface_timeout;
        let (mut io, peer) = match tls {
            None => (Io::Plain(self.stream), peer),
            Some(acceptor) => {
                let handshake = acceptor.accept(self.stream);
                let done = tokio::time::timeout_at(deadline, handshake).await;
                let stream = handshake_outcome(done, self.remote_addr, handshake_log)?;
                let client_subject = stream
                    .get_ref()
                    .1
                    .peer_certificates()
                    .and_then(|certs| certs.first())
                    .and_then(certificate_identity)
                    .map(Arc::from);
                let peer = PeerInfo {
                    client_subject,
                    ..peer
                };
                (Io::Tls(Box::new(stream)), peer)
            }
        };
        // Read rather than peek: a peer sending a byte at a time would make a peek loop spin.
        let mut preface = vec![0; HTTP2_PREFACE_LEN];
        let read = async {
            if http2_only {
                read_exact(&mut io, &mut preface).await
            } else {
                read_version(&mut io, &mut preface).await
            }
        };
        match tokio::time::timeout_at(deadline, read).await {
            Ok(Ok(())) => Some(Connection::new(io, peer, preface, self.slot, closed_after)),
            // Closed or broken before its first request: nothing to serve, nothing to count.
            Ok(Err(_)) => None,
            Err(_) => {
                limits.refuse(Refused::PrefaceTimeout);
                tracing::debug!(peer = %self.remote_addr, "no HTTP/2 preface in time; closed");
                None
            }
        }
    }
}

type TlsStream = tokio_rustls::server::TlsStream<TcpStream>;

/// The stream of a handshake that succeeded; a failed one is counted and (now and then) logged.
fn handshake_outcome(
    done: Result<io::Result<TlsStream>, tokio::time::error::Elapsed>,
    peer: SocketAddr,
    log: &LogThrottle,
) -> Option<TlsStream> {
    match done {
        Ok(Ok(stream)) => Some(stream),
        Ok(Err(error)) => {
            metrics::counter!(HANDSHAKE_FAILURES, "reason" => HANDSHAKE_REFUSED).increment(1);
            if let Some(suppressed) = log.allow() {
                tracing::info!(%peer, %error, suppressed, "TLS handshake refused");
            }
            None
        }
        Err(_) => {
            metrics::counter!(HANDSHAKE_FAILURES, "reason" => HANDSHAKE_TIMEOUT).increment(1);
            if let Some(suppressed) = log.allow() {
                tracing::info!(%peer, suppressed, "TLS handshake timed out");
            }
            None
        }
    }
}

/// Reads the start of an HTTP/1.1 or HTTP/2 connection: up to the HTTP/2 preface's length, or
/// less as soon as the bytes differ from it (an HTTP/1.1 request). `preface` keeps what was read.
async fn read_version(io: &mut Io, preface: &mut Vec<u8>) -> io::Result<()> {
    const HTTP2_PREFACE: &[u8; HTTP2_PREFACE_LEN] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    let mut read = 0;
    while read < HTTP2_PREFACE_LEN && preface[..read] == HTTP2_PREFACE[..read] {
        let n = match io {
            Io::Plain(stream) => stream.read(&mut preface[read..]).await?,
            Io::Tls(stream) => stream.read(&mut preface[read..]).await?,
        };
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        read += n;
    }
    preface.truncate(read);
    Ok(())
}

async fn read_exact(io: &mut Io, buf: &mut [u8]) -> io::Result<()> {
    match io {
        Io::Plain(stream) => stream.read_exact(buf).await.map(drop),
        Io::Tls(stream) => stream.read_exact(buf).await.map(drop),
    }
}
