//! Accepting connections: TCP with TCP_NODELAY, optionally TLS, each labelled with the peer's
//! address and (under mutual TLS) certificate subject for rate limiting and logs.

use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::transport::server::Connected;

use crate::identity::address_identity;
use crate::tls::{LiveTls, certificate_identity};

/// How long a client may take to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshakes in progress at once: more wait, so a flood of half-open connections cannot
/// exhaust memory.
const MAX_PENDING_HANDSHAKES: usize = 1024;
/// Pause after a failed accept (out of file descriptors), so the loop does not spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(50);

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
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

/// An accepted connection, plain or TLS.
pub(crate) struct Connection {
    io: Io,
    peer: PeerInfo,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("tls", &matches!(self.io, Io::Tls(_)))
            .field("peer", &self.peer)
            .finish()
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
        match &mut self.io {
            Io::Plain(stream) => Pin::new(stream).poll_read(cx, buf),
            Io::Tls(stream) => Pin::new(stream.as_mut()).poll_read(cx, buf),
        }
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

/// Accepts connections until `stop`, handing tonic those that are ready: at once for plain
/// TCP, after the handshake (done concurrently, with a timeout) for TLS. Connections that fail
/// the handshake (no or a wrong client certificate under mTLS) are logged and dropped.
pub(crate) fn accept(
    listener: TcpListener,
    tls: Option<Arc<LiveTls>>,
    stop: CancellationToken,
) -> ReceiverStream<io::Result<Connection>> {
    metrics::describe_counter!(
        HANDSHAKE_FAILURES,
        "TLS handshakes that failed (reason refused: no or a wrong client certificate, bad TLS; or timeout)."
    );
    let (ready, connections) = mpsc::channel(MAX_PENDING_HANDSHAKES);
    let handshakes = Arc::new(Semaphore::new(MAX_PENDING_HANDSHAKES));
    tokio::spawn(async move {
        while let Some(accepted) = stop.run_until_cancelled(listener.accept()).await {
            let (stream, remote_addr) = match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                    continue;
                }
            };
            // Small responses must not wait for Nagle's algorithm: without TCP_NODELAY
            // latency jumps by tens of milliseconds.
            let _ = stream.set_nodelay(true);
            let peer = PeerInfo {
                remote_addr: Some(remote_addr.ip()),
                remote_ip: Some(Arc::from(address_identity(remote_addr.ip()))),
                client_subject: None,
            };
            let Some(tls) = &tls else {
                let connection = Connection {
                    io: Io::Plain(stream),
                    peer,
                };
                if ready.send(Ok(connection)).await.is_err() {
                    break;
                }
                continue;
            };
            let Ok(permit) = Arc::clone(&handshakes).acquire_owned().await else {
                break;
            };
            let acceptor = tls.acceptor();
            let ready = ready.clone();
            tokio::spawn(async move {
                let _permit = permit;
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                    Ok(Ok(stream)) => {
                        let client_subject = stream
                            .get_ref()
                            .1
                            .peer_certificates()
                            .and_then(|certs| certs.first())
                            .and_then(certificate_identity)
                            .map(Arc::from);
                        let connection = Connection {
                            io: Io::Tls(Box::new(stream)),
                            peer: PeerInfo {
                                client_subject,
                                ..peer
                            },
                        };
                        let _ = ready.send(Ok(connection)).await;
                    }
                    Ok(Err(error)) => {
                        metrics::counter!(HANDSHAKE_FAILURES, "reason" => "refused").increment(1);
                        tracing::info!(peer = %remote_addr, %error, "TLS handshake refused");
                    }
                    Err(_) => {
                        metrics::counter!(HANDSHAKE_FAILURES, "reason" => "timeout").increment(1);
                        tracing::info!(peer = %remote_addr, "TLS handshake timed out");
                    }
                }
            });
        }
    });
    ReceiverStream::new(connections)
}
