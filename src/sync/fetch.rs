//! Getting bytes from an origin: `http://`, `https://` (rustls, the roots of a CA bundle
//! file) or `file://`, each request bounded in time and size, conditional when the caller has
//! validators from an earlier answer.
//!
//! HTTP/1.1 with hyper's connection API, one connection a request: a poll makes one request
//! (the manifest) and a new table a few more, so pooling would save nothing worth its code.
//! Redirects are not followed: object stores answer pre-signed and public URLs directly.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http_body_util::{BodyExt as _, Empty};
use hyper::body::Bytes;
use hyper::header::{self, HeaderValue};
use hyper::{StatusCode, Uri};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite};
use tokio::net::TcpStream;

/// Where a manifest or file is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    Http(Uri),
    File(PathBuf),
}

/// Why a request failed. Names the location without its query string: a pre-signed URL's
/// query holds its signature.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error(
        "{0:?} is not an http://, https:// or file:// URL (file:// only from a file:// manifest)"
    )]
    Url(String),
    #[error("{location}: {what} took longer than {limit:?}")]
    Timeout {
        location: String,
        what: &'static str,
        limit: Duration,
    },
    #[error("{location}: {what}: {reason}")]
    Failed {
        location: String,
        what: &'static str,
        reason: String,
    },
    #[error("{location}: the origin answered HTTP {status}")]
    Status {
        location: String,
        status: StatusCode,
    },
    #[error("{location}: larger than the {max} bytes allowed")]
    TooLarge { location: String, max: u64 },
    /// What the caller's sink refused (a full disk, say).
    #[error("{location}: cannot keep the bytes: {reason}")]
    Sink { location: String, reason: String },
}

impl Location {
    /// Parses an absolute URL.
    ///
    /// # Errors
    /// When it is not an `http://`, `https://` or `file://` URL with a host (a path, for
    /// files).
    pub fn parse(text: &str) -> Result<Self, FetchError> {
        if let Some(path) = text.strip_prefix("file://") {
            return if path.starts_with('/') {
                Ok(Self::File(PathBuf::from(path)))
            } else {
                Err(FetchError::Url(text.to_owned()))
            };
        }
        let uri: Uri = text.parse().map_err(|_| FetchError::Url(text.to_owned()))?;
        match (uri.scheme_str(), uri.host()) {
            (Some("http" | "https"), Some(host)) if !host.is_empty() => Ok(Self::Http(uri)),
            _ => Err(FetchError::Url(text.to_owned())),
        }
    }

    /// `reference` read relative to this location, as a browser reads a link: an absolute URL
    /// as it is, `/path` on the same host, anything else beside this location's last segment.
    ///
    /// # Errors
    /// When the result is not a URL [`Location::parse`] takes, or is a `file://` URL named by
    /// a manifest from an HTTP origin (which has no business reading this machine's files).
    pub fn join(&self, reference: &str) -> Result<Self, FetchError> {
        if reference.contains("://") {
            let joined = Self::parse(reference)?;
            if matches!((self, &joined), (Self::Http(_), Self::File(_))) {
                return Err(FetchError::Url(reference.to_owned()));
            }
            return Ok(joined);
        }
        match self {
            Self::File(path) => {
                let joined = if reference.starts_with('/') {
                    PathBuf::from(reference)
                } else {
                    path.parent().unwrap_or(Path::new("/")).join(reference)
                };
                Ok(Self::File(joined))
            }
            Self::Http(uri) => {
                let origin = format!(
                    "{}://{}",
                    uri.scheme_str().unwrap_or("http"),
                    uri.authority().map_or("", |a| a.as_str())
                );
                let path = if reference.starts_with('/') {
                    reference.to_owned()
                } else {
                    let base = uri.path();
                    let directory = &base[..=base.rfind('/').unwrap_or(0)];
                    format!("{directory}{reference}")
                };
                Self::parse(&format!("{origin}{path}"))
            }
        }
    }
}

/// The location without a query string (which may hold a signature).
impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File(path) => write!(f, "file://{}", path.display()),
            Self::Http(uri) => {
                write!(
                    f,
                    "{}://{}{}",
                    uri.scheme_str().unwrap_or("http"),
                    uri.authority().map_or("", |a| a.as_str()),
                    uri.path()
                )?;
                if uri.query().is_some() {
                    f.write_str("?…")?;
                }
                Ok(())
            }
        }
    }
}

/// What an origin said about a resource, to ask next time whether it changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Validators {
    etag: Option<HeaderValue>,
    last_modified: Option<HeaderValue>,
    /// A file's modification time and length.
    file: Option<(SystemTime, u64)>,
}

/// What a request gave.
#[derive(Debug, PartialEq, Eq)]
pub enum Fetched {
    /// The resource has not changed since the validators were given (HTTP 304, or a file
    /// with the same modification time and length).
    NotModified,
    /// The bytes were handed to the sink.
    Body { bytes: u64, validators: Validators },
}

/// The bounds of every request.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Connecting, the TLS handshake, the answer's headers, and each wait for more of its body.
    pub step: Duration,
    /// A whole request, however steadily a slow origin trickles its bytes.
    pub total: Duration,
}

/// Makes requests. Cheap to clone.
#[derive(Clone)]
pub struct Client {
    tls: tokio_rustls::TlsConnector,
    limits: Limits,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// Why the CA bundle could not be used.
#[derive(Debug, thiserror::Error)]
#[error("--ca-file {path}: {reason}")]
pub struct CaError {
    path: PathBuf,
    reason: String,
}

impl Client {
    /// A client trusting the certificates of `ca_file` (PEM) for `https://`; without one,
    /// `https://` origins are refused at their handshake.
    ///
    /// # Errors
    /// When the file cannot be read or holds no certificate rustls takes.
    pub fn new(ca_file: Option<&Path>, limits: Limits) -> Result<Self, CaError> {
        let mut roots = rustls::RootCertStore::empty();
        if let Some(path) = ca_file {
            let fail = |reason: String| CaError {
                path: path.to_path_buf(),
                reason,
            };
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|e| fail(e.to_string()))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| fail(e.to_string()))?;
            let (added, _ignored) = roots.add_parsable_certificates(certs);
            if added == 0 {
                return Err(fail("no CA certificate in the file".into()));
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| CaError {
                path: ca_file.map(Path::to_path_buf).unwrap_or_default(),
                reason: e.to_string(),
            })?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Self {
            tls: tokio_rustls::TlsConnector::from(Arc::new(config)),
            limits,
        })
    }

    /// Gets `location`, handing its bytes to `sink` as they come, at most `max` of them. With
    /// `validators`, asks only for a changed resource.
    ///
    /// # Errors
    /// [`FetchError`]: unreachable, too slow, refused, too large, or refused by the sink.
    pub async fn get(
        &self,
        location: &Location,
        validators: Option<&Validators>,
        max: u64,
        sink: &mut (dyn FnMut(&[u8]) -> std::io::Result<()> + Send),
    ) -> Result<Fetched, FetchError> {
        let work = async {
            match location {
                Location::File(path) => self.get_file(location, path, validators, max, sink).await,
                Location::Http(uri) => self.get_http(location, uri, validators, max, sink).await,
            }
        };
        tokio::time::timeout(self.limits.total, work)
            .await
            .map_err(|_| FetchError::Timeout {
                location: location.to_string(),
                what: "the whole request",
                limit: self.limits.total,
            })?
    }

    async fn get_file(
        &self,
        location: &Location,
        path: &Path,
        validators: Option<&Validators>,
        max: u64,
        sink: &mut (dyn FnMut(&[u8]) -> std::io::Result<()> + Send),
    ) -> Result<Fetched, FetchError> {
        let failed = |what, error: std::io::Error| FetchError::Failed {
            location: location.to_string(),
            what,
            reason: error.to_string(),
        };
        let mut file = self
            .step(location, "opening", tokio::fs::File::open(path))
            .await?
            .map_err(|e| failed("opening", e))?;
        let metadata = file.metadata().await.map_err(|e| failed("stat", e))?;
        if !metadata.is_file() {
            return Err(FetchError::Failed {
                location: location.to_string(),
                what: "opening",
                reason: "not a regular file".into(),
            });
        }
        let stamp = metadata.modified().ok().map(|at| (at, metadata.len()));
        if stamp.is_some() && validators.and_then(|v| v.file) == stamp {
            return Ok(Fetched::NotModified);
        }
        let mut buffer = vec![0; 64 * 1024];
        let mut bytes = 0u64;
        loop {
            let n = self
                .step(location, "reading", file.read(&mut buffer))
                .await?
                .map_err(|e| failed("reading", e))?;
            if n == 0 {
                break;
            }
            bytes = self.take(location, bytes, &buffer[..n], max, sink)?;
        }
        Ok(Fetched::Body {
            bytes,
            validators: Validators {
                file: stamp,
                ..Validators::default()
            },
        })
    }

    async fn get_http(
        &self,
        location: &Location,
        uri: &Uri,
        validators: Option<&Validators>,
        max: u64,
        sink: &mut (dyn FnMut(&[u8]) -> std::io::Result<()> + Send),
    ) -> Result<Fetched, FetchError> {
        let failed = |what, reason: &dyn fmt::Display| FetchError::Failed {
            location: location.to_string(),
            what,
            reason: reason.to_string(),
        };
        let host = uri.host().unwrap_or_default();
        let io = self.connect(location, uri).await?;
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(io))
                .await
                .map_err(|e| failed("HTTP", &e))?;
        let driver = AbortOnDrop(tokio::spawn(async move {
            let _ = connection.await;
        }));

        let mut request = hyper::Request::get(
            uri.path_and_query()
                .map_or("/", hyper::http::uri::PathAndQuery::as_str),
        )
        .header(header::HOST, uri.authority().map_or(host, |a| a.as_str()))
        .header(
            header::USER_AGENT,
            concat!("card-lookup/", env!("CARGO_PKG_VERSION")),
        );
        if let Some(validators) = validators {
            if let Some(etag) = &validators.etag {
                request = request.header(header::IF_NONE_MATCH, etag);
            }
            if let Some(modified) = &validators.last_modified {
                request = request.header(header::IF_MODIFIED_SINCE, modified);
            }
        }
        let request = request
            .body(Empty::<Bytes>::new())
            .map_err(|e| failed("building the request", &e))?;
        let response = self
            .step(
                location,
                "the answer's headers",
                sender.send_request(request),
            )
            .await?
            .map_err(|e| failed("HTTP", &e))?;

        let status = response.status();
        if status == StatusCode::NOT_MODIFIED && validators.is_some() {
            return Ok(Fetched::NotModified);
        }
        if status != StatusCode::OK {
            return Err(FetchError::Status {
                location: location.to_string(),
                status,
            });
        }
        let declared = response
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        if declared.is_some_and(|length| length > max) {
            return Err(FetchError::TooLarge {
                location: location.to_string(),
                max,
            });
        }
        let header = |name| response.headers().get(name).cloned();
        // Last-Modified has one-second resolution: a resource changed again in the second it
        // was served in would keep it, and be answered 304. Such a Last-Modified (the same
        // second as the answer's Date) is not used.
        let last_modified = header(header::LAST_MODIFIED)
            .filter(|modified| Some(modified) != header(header::DATE).as_ref());
        let got = Validators {
            etag: header(header::ETAG),
            last_modified,
            file: None,
        };
        let mut body = response.into_body();
        let mut bytes = 0u64;
        while let Some(frame) = self.step(location, "the body", body.frame()).await? {
            let frame = frame.map_err(|e| failed("the body", &e))?;
            if let Some(data) = frame.data_ref() {
                bytes = self.take(location, bytes, data, max, sink)?;
            }
        }
        drop(driver);
        Ok(Fetched::Body {
            bytes,
            validators: got,
        })
    }

    /// A connection to `uri`'s host: TCP, and TLS for `https://`.
    async fn connect(&self, location: &Location, uri: &Uri) -> Result<Box<dyn Io>, FetchError> {
        let failed = |what, reason: &dyn fmt::Display| FetchError::Failed {
            location: location.to_string(),
            what,
            reason: reason.to_string(),
        };
        let host = uri.host().unwrap_or_default();
        let https = uri.scheme_str() == Some("https");
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        // An IPv6 literal comes bracketed in the URL, and is connected to bare.
        let bare_host = host.trim_start_matches('[').trim_end_matches(']');
        let tcp = self
            .step(
                location,
                "connecting",
                TcpStream::connect((bare_host, port)),
            )
            .await?
            .map_err(|e| failed("connecting", &e))?;
        let _ = tcp.set_nodelay(true);
        Ok(if https {
            let name = ServerName::try_from(bare_host.to_owned())
                .map_err(|e| failed("TLS server name", &e))?;
            let tls = self
                .step(location, "the TLS handshake", self.tls.connect(name, tcp))
                .await?
                .map_err(|e| failed("the TLS handshake", &e))?;
            Box::new(tls)
        } else {
            Box::new(tcp)
        })
    }

    /// `work`, or a timeout error naming `what` after [`Limits::step`].
    async fn step<T>(
        &self,
        location: &Location,
        what: &'static str,
        work: impl Future<Output = T>,
    ) -> Result<T, FetchError> {
        tokio::time::timeout(self.limits.step, work)
            .await
            .map_err(|_| FetchError::Timeout {
                location: location.to_string(),
                what,
                limit: self.limits.step,
            })
    }

    /// Hands `chunk` to `sink`, counting it against `max`; returns the new total.
    #[allow(clippy::unused_self)] // a method, beside the other steps of a request
    fn take(
        &self,
        location: &Location,
        so_far: u64,
        chunk: &[u8],
        max: u64,
        sink: &mut (dyn FnMut(&[u8]) -> std::io::Result<()> + Send),
    ) -> Result<u64, FetchError> {
        let total = so_far + chunk.len() as u64;
        if total > max {
            return Err(FetchError::TooLarge {
                location: location.to_string(),
                max,
            });
        }
        sink(chunk).map_err(|e| FetchError::Sink {
            location: location.to_string(),
            reason: e.to_string(),
        })?;
        Ok(total)
    }
}

/// A connection, plain or TLS.
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Ends the connection's task with the request that started it.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_and_absolute_urls_resolve_as_links_do() {
        let base =
            Location::parse("https://bucket.example/bins/manifest.json?X-Sig=secret").unwrap();
        let joined = |r: &str| base.join(r).unwrap().to_string();
        assert_eq!(
            joined("bins-3f2a.csv"),
            "https://bucket.example/bins/bins-3f2a.csv"
        );
        assert_eq!(joined("/other/b.csv"), "https://bucket.example/other/b.csv");
        assert_eq!(
            joined("http://elsewhere:8080/b.csv?sig=1"),
            "http://elsewhere:8080/b.csv?…"
        );
        let file = Location::parse("file:///srv/bins/manifest.json").unwrap();
        assert_eq!(
            file.join("b.csv").unwrap(),
            Location::File("/srv/bins/b.csv".into())
        );
        assert_eq!(
            base.to_string(),
            "https://bucket.example/bins/manifest.json?…"
        );
        assert!(
            base.join("file:///etc/passwd").is_err(),
            "a remote origin names no local file"
        );
    }

    #[test]
    fn other_schemes_and_relative_file_urls_are_refused() {
        for url in [
            "ftp://host/m.json",
            "file://relative/m.json",
            "manifest.json",
            "http:///x",
        ] {
            assert!(Location::parse(url).is_err(), "{url}");
        }
    }
}
