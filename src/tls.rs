//! TLS and mutual TLS with rustls (TLS 1.2 and 1.3 only), with certificates reloaded when
//! their files change.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use tokio_rustls::TlsAcceptor;

/// The PEM files of the server's TLS set-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate chain, leaf first.
    pub cert: PathBuf,
    pub key: PathBuf,
    /// Clients must present a certificate signed by one of these (mutual TLS).
    pub client_ca: Option<PathBuf>,
}

impl TlsFiles {
    /// Every file, for the watcher.
    #[must_use]
    pub fn paths(&self) -> Vec<&Path> {
        [Some(&self.cert), Some(&self.key), self.client_ca.as_ref()]
            .into_iter()
            .flatten()
            .map(PathBuf::as_path)
            .collect()
    }
}

/// Why a TLS set-up could not be loaded. Names the file.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: {reason}")]
    File { path: PathBuf, reason: String },
    #[error("TLS set-up refused: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("--tls-client-ca: {0}")]
    ClientVerifier(String),
}

fn file_error(path: &Path, reason: &dyn std::fmt::Display) -> TlsError {
    TlsError::File {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| file_error(path, &e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_error(path, &e))?;
    if certs.is_empty() {
        return Err(file_error(path, &"no PEM certificate in the file"));
    }
    Ok(certs)
}

/// When the served certificate expires (its leaf's notAfter, Unix time); set at each (re)load
/// that succeeds.
const CERTIFICATE_EXPIRY: &str = "cardlookup_tls_certificate_expiry_timestamp_seconds";

/// A server configuration, and when its certificate expires.
struct Loaded {
    /// The gRPC port's: HTTP/2 only.
    config: Arc<ServerConfig>,
    /// The HTTP/JSON port's: the same certificates, HTTP/2 or HTTP/1.1.
    http: Arc<ServerConfig>,
    /// The leaf's notAfter in Unix seconds; `None` if x509-parser cannot read what rustls took.
    not_after: Option<i64>,
}

impl Loaded {
    /// Publishes the expiry of the certificate now served.
    #[allow(clippy::cast_precision_loss)] // exact for any date before the year 285 million
    fn record_expiry(&self) {
        if let Some(not_after) = self.not_after {
            metrics::gauge!(CERTIFICATE_EXPIRY).set(not_after as f64);
        }
    }
}

fn not_after(leaf: &CertificateDer<'_>) -> Option<i64> {
    let (_, parsed) = x509_parser::parse_x509_certificate(leaf.as_ref()).ok()?;
    Some(parsed.validity().not_after.timestamp())
}

/// Builds a rustls server configuration from the files: TLS 1.2 and 1.3, ALPN `h2`, and
/// client certificates required when a client CA is given.
fn server_config(files: &TlsFiles) -> Result<Loaded, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certs = certificates(&files.cert)?;
    let not_after = certs.first().and_then(not_after);
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| file_error(&files.key, &e))?;
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?;
    let builder = match &files.client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            for cert in certificates(ca)? {
                roots.add(cert).map_err(|e| file_error(ca, &e))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| TlsError::ClientVerifier(e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_single_cert(certs, key)?;
    let mut http = config.clone();
    config.alpn_protocols = vec![b"h2".to_vec()];
    http.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Loaded {
        config: Arc::new(config),
        http: Arc::new(http),
        not_after,
    })
}

/// The TLS set-up in force, replaced when its files change.
#[derive(Debug)]
pub struct LiveTls {
    files: TlsFiles,
    current: ArcSwap<ServerConfig>,
    current_http: ArcSwap<ServerConfig>,
}

impl LiveTls {
    /// Loads the files.
    ///
    /// # Errors
    /// [`TlsError`] when they cannot be used.
    pub fn load(files: TlsFiles) -> Result<Self, TlsError> {
        metrics::describe_gauge!(
            CERTIFICATE_EXPIRY,
            metrics::Unit::Seconds,
            "When the certificate the gRPC port serves expires: its notAfter (Unix time), updated when the files are reloaded."
        );
        let loaded = server_config(&files)?;
        loaded.record_expiry();
        Ok(Self {
            files,
            current: ArcSwap::new(loaded.config),
            current_http: ArcSwap::new(loaded.http),
        })
    }

    #[must_use]
    pub fn files(&self) -> &TlsFiles {
        &self.files
    }

    /// An acceptor for the next connection, with the set-up in force now.
    #[must_use]
    pub fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(self.current.load_full())
    }

    /// An acceptor for the next connection of the HTTP/JSON port (ALPN `h2` and `http/1.1`).
    #[must_use]
    pub fn http_acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(self.current_http.load_full())
    }

    /// Reads the files again; when they cannot be used, the set-up in force stays.
    pub fn reload(&self) {
        match server_config(&self.files) {
            Ok(loaded) => {
                loaded.record_expiry();
                self.current.store(loaded.config);
                self.current_http.store(loaded.http);
                tracing::info!("TLS certificates reloaded");
            }
            Err(error) => {
                tracing::error!(%error, "TLS certificates not reloaded; keeping the ones in use");
            }
        }
    }
}

/// The client's identity under mutual TLS: the certificate subject's common name, else the
/// whole subject (RFC 4514 form); `None` when the subject is empty (SPIFFE-style certificates
/// name their holder in the SAN), so the caller falls back to other identities.
#[must_use]
pub fn certificate_identity(certificate: &CertificateDer<'_>) -> Option<String> {
    let (_, parsed) = x509_parser::parse_x509_certificate(certificate.as_ref()).ok()?;
    let subject = parsed.subject();
    let common_name = subject
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .map(str::to_owned);
    common_name
        .or_else(|| Some(subject.to_string()))
        .filter(|identity| !identity.is_empty())
}
