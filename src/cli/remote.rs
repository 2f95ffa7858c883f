//! `--server`: a gRPC client of the service, over plaintext HTTP/2, TLS or mutual TLS.

use std::fmt::Write as _;
use std::path::Path;

use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tonic::{Code, Status};

use super::CliError;
use super::target::Target;
use crate::proto::cardlookup::v1::card_lookup_service_client::CardLookupServiceClient;

/// A client for the server named by `--server`.
#[derive(Debug, Clone)]
pub(super) struct Remote {
    url: String,
    pub(super) client: CardLookupServiceClient<Channel>,
}

impl Remote {
    /// A client of `url`, connected on the first call: a server that cannot be reached is an
    /// UNAVAILABLE status then, printed like any other. Needs a Tokio runtime.
    pub(super) fn new(url: &str, target: &Target) -> Result<Self, CliError> {
        let usage = |message: String| CliError::Usage(message);
        let mut endpoint = Endpoint::from_shared(url.to_owned())
            .map_err(|e| usage(format!("--server {url}: {e}")))?
            .connect_timeout(target.timeout)
            .timeout(target.timeout);
        let https = match endpoint.uri().scheme_str() {
            Some("http") => false,
            Some("https") => true,
            _ => {
                return Err(usage(format!(
                    "--server {url}: give http://HOST:PORT or https://HOST:PORT"
                )));
            }
        };
        if endpoint.uri().host().is_none() {
            return Err(usage(format!("--server {url}: no host")));
        }
        match (&target.ca_cert, https) {
            (Some(ca_cert), true) => {
                let mut tls =
                    ClientTlsConfig::new().ca_certificate(Certificate::from_pem(read(ca_cert)?));
                if let (Some(cert), Some(key)) = (&target.cert, &target.key) {
                    tls = tls.identity(Identity::from_pem(read(cert)?, read(key)?));
                }
                if let Some(name) = &target.tls_server_name {
                    tls = tls.domain_name(name.clone());
                }
                endpoint = endpoint
                    .tls_config(tls)
                    .map_err(|e| usage(format!("TLS set-up: {}", error_chain(&e))))?;
            }
            (None, true) => {
                return Err(usage(format!(
                    "--server {url}: https needs --ca-cert, the CA that signed the server's \
                     certificate (no system trust store is built in)"
                )));
            }
            (Some(_), false) => {
                return Err(usage(format!(
                    "--ca-cert is for https:// servers; --server {url} is plaintext"
                )));
            }
            (None, false) => {
                if target.cert.is_some() || target.tls_server_name.is_some() {
                    return Err(usage(format!(
                        "--cert and --tls-server-name are for https:// servers; --server {url} \
                         is plaintext"
                    )));
                }
            }
        }
        Ok(Self {
            url: url.to_owned(),
            client: CardLookupServiceClient::new(endpoint.connect_lazy()),
        })
    }

    /// The error for a call that failed: the server's URL, the gRPC code and message, and the
    /// request id the server gave the call (to find it in the server's logs).
    pub(super) fn failed(&self, status: &Status) -> CliError {
        // A transport failure's status carries its causes as sources ("tcp connect error",
        // "Connection refused"): they say why the server could not be reached.
        let mut message = format!(
            "server {}: {}: {}",
            self.url,
            code_name(status.code()),
            error_chain(status)
        );
        if let Some(id) = status
            .metadata()
            .get("x-request-id")
            .and_then(|id| id.to_str().ok())
        {
            let _ = write!(message, " (request id {id})");
        }
        CliError::Server(message)
    }
}

fn read(path: &Path) -> Result<Vec<u8>, CliError> {
    std::fs::read(path).map_err(|e| CliError::Usage(format!("{}: {e}", path.display())))
}

/// An error and its sources, joined with ": ", without repeats.
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(error);
    while let Some(error) = next {
        let text = match error.downcast_ref::<Status>() {
            Some(status) => status.message().to_owned(),
            None => error.to_string(),
        };
        // tonic's "transport error" only wraps the cause that follows it.
        if !text.is_empty() && text != "transport error" && !parts.iter().any(|p| p.contains(&text))
        {
            parts.push(text);
        }
        next = error.source();
    }
    parts.join(": ")
}

/// The canonical name of a gRPC code: `INVALID_ARGUMENT`, `UNAVAILABLE`, ...
pub(super) fn code_name(code: Code) -> String {
    let mut name = String::new();
    for (i, c) in format!("{code:?}").chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            name.push('_');
        }
        name.push(c.to_ascii_uppercase());
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_named_as_grpc_names_them() {
        assert_eq!(code_name(Code::Ok), "OK");
        assert_eq!(code_name(Code::InvalidArgument), "INVALID_ARGUMENT");
        assert_eq!(code_name(Code::Unavailable), "UNAVAILABLE");
        assert_eq!(code_name(Code::DeadlineExceeded), "DEADLINE_EXCEEDED");
    }
}
