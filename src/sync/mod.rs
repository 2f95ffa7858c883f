//! `card-lookup data sync`: the updater that keeps a directory holding the BIN data an origin
//! publishes, for the service beside it to serve.
//!
//! Each poll fetches the origin's manifest (conditionally, once it has one: an unchanged
//! origin costs a 304, or for a plain server the manifest's few hundred bytes), and when it
//! names other files than the directory holds, downloads them, checks them and switches the
//! directory to them at once ([`apply`]). A failure of any step leaves the directory as it
//! was; the poll says why in a log line and counts it.
//!
//! - [`manifest`] (in `bins`, which reads it too): the manifest's shape and checks.
//! - [`fetch`]: requests, bounded in time and size: HTTP(S) and files.
//! - [`apply`]: staging, checking, switching the directory.
//! - `metrics`: what the updater's `/metrics` shows.

pub mod apply;
pub mod fetch;
mod metrics;

use std::path::PathBuf;
use std::time::Duration;

use sha2::{Digest as _, Sha256};
use tokio_util::sync::CancellationToken;

pub use crate::bins::manifest::{self, Manifest, ManifestError};
pub use apply::{ApplyError, MANIFEST_FILE};
pub use fetch::{CaError, Client, FetchError, Limits, Location};
pub use metrics::describe as describe_metrics;

/// What the updater does, checked.
#[derive(Debug, Clone)]
pub struct SyncConfig {
    /// The manifest's URL.
    pub source: Location,
    /// The directory to keep the files in.
    pub dest: PathBuf,
    /// The time between polls, moved by up to a tenth either way each time.
    pub interval: Duration,
    pub limits: Limits,
    /// The largest file downloaded.
    pub max_file_bytes: u64,
    /// The CA certificates trusted for `https://` (PEM).
    pub ca_file: Option<PathBuf>,
}

/// Why a poll left the directory as it was.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("manifest: {0}")]
    ManifestDownload(FetchError),
    #[error("manifest {location}: {error}")]
    Manifest {
        location: String,
        error: ManifestError,
    },
    #[error("manifest sha256:{digest}: {error}")]
    Apply { digest: String, error: ApplyError },
    /// The manifest is the one refused last time for files that failed their checks: nothing
    /// is downloaded again until it changes.
    #[error(
        "manifest sha256:{digest}: {reason} (refused before; not downloaded again until the manifest changes)"
    )]
    StillRefused { digest: String, reason: String },
}

impl SyncError {
    /// The `reason` label of the failure counter.
    #[must_use]
    pub const fn reason(&self) -> &'static str {
        match self {
            Self::ManifestDownload(_) => "manifest_download",
            Self::Manifest { .. } => "manifest",
            Self::Apply { error, .. } => error.reason(),
            Self::StillRefused { .. } => "check",
        }
    }
}

/// How a poll that succeeded ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Polled {
    /// The origin said the manifest had not changed (HTTP 304, or a file's time and size).
    NotModified,
    /// The manifest is the one the directory serves.
    Unchanged,
    /// The directory now serves a new manifest's files.
    Applied { files: usize },
}

impl Polled {
    const fn result(self) -> &'static str {
        match self {
            Self::Applied { .. } => "applied",
            Self::Unchanged => "unchanged",
            Self::NotModified => "not_modified",
        }
    }
}

/// A manifest as fetched: its bytes' SHA-256, and what it says.
#[derive(Debug, Clone)]
struct Known {
    digest: String,
    manifest: Manifest,
}

/// The updater's state between polls.
#[derive(Debug)]
pub struct Updater {
    client: Client,
    config: SyncConfig,
    /// The manifest served, as published, and its validators.
    served: Option<(Vec<u8>, Option<fetch::Validators>)>,
    applied: Option<Known>,
    seen: Option<Known>,
    /// The digest of the manifest whose files failed their checks, and why.
    refused: Option<(String, String)>,
}

impl Updater {
    /// An updater for `config`; the directory's served manifest, if any, counts as applied.
    ///
    /// # Errors
    /// When the CA file cannot be used.
    pub fn new(config: SyncConfig) -> Result<Self, CaError> {
        let client = Client::new(config.ca_file.as_deref(), config.limits)?;
        let served = apply::served_manifest(&config.dest);
        let applied = served.as_deref().and_then(|raw| {
            Some(Known {
                digest: digest(raw),
                manifest: manifest::parse(raw).ok()?,
            })
        });
        if let Some(applied) = &applied {
            metrics::record_manifest("applied", &applied.digest, &applied.manifest, None);
        }
        Ok(Self {
            client,
            config,
            served: served.map(|raw| (raw, None)),
            applied,
            seen: None,
            refused: None,
        })
    }

    /// Polls once, logs how it ended and counts it.
    ///
    /// # Errors
    /// [`SyncError`] when the directory was left as it was for want of a good new set.
    pub async fn poll(&mut self) -> Result<Polled, SyncError> {
        let polled = self.poll_quietly().await;
        match &polled {
            Ok(polled @ Polled::Applied { files }) => {
                let applied = self.applied.as_ref();
                tracing::info!(
                    files,
                    manifest = applied.map_or("", |a| a.digest.as_str()),
                    "BIN data set applied"
                );
                metrics::record_poll(polled.result(), None);
            }
            Ok(polled) => {
                tracing::debug!(result = polled.result(), "BIN data set unchanged");
                metrics::record_poll(polled.result(), None);
            }
            Err(error) => {
                tracing::warn!(
                    %error,
                    reason = error.reason(),
                    "BIN data sync failed; the directory keeps the last good set"
                );
                metrics::record_poll("failure", Some(error.reason()));
            }
        }
        polled
    }

    async fn poll_quietly(&mut self) -> Result<Polled, SyncError> {
        let validators = self.served.as_ref().and_then(|(_, v)| v.as_ref());
        let mut raw = Vec::new();
        let fetched = self
            .client
            .get(
                &self.config.source,
                validators,
                manifest::MAX_MANIFEST_BYTES,
                &mut |chunk| {
                    raw.extend_from_slice(chunk);
                    Ok(())
                },
            )
            .await
            .map_err(SyncError::ManifestDownload)?;
        let fetch::Fetched::Body { validators, .. } = fetched else {
            return Ok(Polled::NotModified);
        };
        let parsed = manifest::parse(&raw).map_err(|error| SyncError::Manifest {
            location: self.config.source.to_string(),
            error,
        })?;
        let seen = Known {
            digest: digest(&raw),
            manifest: parsed,
        };
        metrics::record_manifest(
            "seen",
            &seen.digest,
            &seen.manifest,
            self.seen.as_ref().map(|s| (s.digest.as_str(), &s.manifest)),
        );
        self.seen = Some(seen.clone());
        if let Some((served, served_validators)) = &mut self.served
            && *served == raw
        {
            *served_validators = Some(validators);
            return Ok(Polled::Unchanged);
        }
        if let Some((_, reason)) = self.refused.as_ref().filter(|(d, _)| *d == seen.digest) {
            return Err(SyncError::StillRefused {
                digest: seen.digest,
                reason: reason.clone(),
            });
        }
        let applying = apply::apply(
            &self.client,
            &self.config.source,
            &seen.manifest,
            &raw,
            &self.config.dest,
            self.config.max_file_bytes,
        )
        .await;
        if let Err(error) = applying {
            // Files that match their digests and fail their checks are what the publisher
            // published: the same manifest would fail the same way. A digest that differs
            // may be damage on the way, worth another download.
            if matches!(error, ApplyError::Check(_)) {
                self.refused = Some((seen.digest.clone(), error.to_string()));
            }
            return Err(SyncError::Apply {
                digest: seen.digest,
                error,
            });
        }
        metrics::record_manifest(
            "applied",
            &seen.digest,
            &seen.manifest,
            self.applied
                .as_ref()
                .map(|a| (a.digest.as_str(), &a.manifest)),
        );
        let files = seen.manifest.files.len();
        self.applied = Some(seen);
        self.served = Some((raw, Some(validators)));
        self.refused = None;
        Ok(Polled::Applied { files })
    }

    /// Polls every interval (with jitter) until `stop` is cancelled.
    pub async fn run(mut self, stop: CancellationToken) {
        loop {
            // A poll stopped half-way removes its staging directory; the switch itself is
            // not interrupted (it does not wait on anything).
            if stop.run_until_cancelled(self.poll()).await.is_none() {
                return;
            }
            let pause = crate::server::jittered(self.config.interval);
            if stop
                .run_until_cancelled(tokio::time::sleep(pause))
                .await
                .is_none()
            {
                return;
            }
        }
    }
}

/// The SHA-256 of a manifest's bytes, in hex.
fn digest(raw: &[u8]) -> String {
    crate::hex::hex(&Sha256::digest(raw))
}
