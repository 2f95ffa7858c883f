//! `card-lookup data sync`: the updater's flags, checked into a [`SyncConfig`], and running
//! it once (`--once`, for an init container) or until SIGTERM (a sidecar).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::sync::{Limits, Location, SyncConfig, Updater};
use crate::telemetry::LogFormat;

/// Where Debian, and the distroless images built on it, keep the system's CA bundle.
const SYSTEM_CA_FILE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// The flags of `data sync`.
#[derive(Debug, clap::Args)]
pub struct SyncArgs {
    /// The manifest's URL: http://, https:// or file:///.
    #[arg(long, env = "CARD_LOOKUP_SYNC_SOURCE")]
    pub source: String,
    /// The directory to keep the files in (made when missing). Point the service at
    /// DIR/<name> for each file the manifest names.
    #[arg(long, env = "CARD_LOOKUP_SYNC_DEST")]
    pub dest: PathBuf,
    /// Poll once and exit: 0 when DIR then serves the origin's set, 1 when not.
    #[arg(long)]
    pub once: bool,
    /// Time between polls, moved by up to a tenth either way each time.
    #[arg(long, env = "CARD_LOOKUP_SYNC_INTERVAL", default_value = "30s", value_parser = humantime::parse_duration)]
    pub interval: Duration,
    /// Serve the updater's Prometheus metrics on this address (GET /metrics).
    #[arg(long, env = "CARD_LOOKUP_SYNC_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
    /// The longest wait for one step of a request: connecting, the TLS handshake, the answer's
    /// headers, each part of its body.
    #[arg(long, env = "CARD_LOOKUP_SYNC_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
    /// The longest one download may take, however steadily its bytes come.
    #[arg(long, env = "CARD_LOOKUP_SYNC_DOWNLOAD_DEADLINE", default_value = "5m", value_parser = humantime::parse_duration)]
    pub download_deadline: Duration,
    /// The largest file downloaded (bytes); the service reads no larger file anyway.
    #[arg(long, env = "CARD_LOOKUP_SYNC_MAX_FILE_BYTES", default_value_t = crate::bins::read::MAX_DATA_BYTES)]
    pub max_file_bytes: u64,
    /// The CA certificates (PEM) trusted for https:// origins.
    #[arg(long, env = "CARD_LOOKUP_SYNC_CA_FILE", default_value = SYSTEM_CA_FILE)]
    pub ca_file: PathBuf,
    #[arg(long, env = "CARD_LOOKUP_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// Why the flags cannot work.
#[derive(Debug, thiserror::Error)]
pub enum SyncArgsError {
    #[error("--source: {0}")]
    Source(#[from] crate::sync::FetchError),
    #[error("--{0} must be more than zero")]
    Zero(&'static str),
    #[error("--timeout ({timeout:?}) must be shorter than --download-deadline ({deadline:?})")]
    Deadline {
        timeout: Duration,
        deadline: Duration,
    },
    #[error("--dest {0}: exists and is not a directory")]
    Dest(PathBuf),
}

impl TryFrom<&SyncArgs> for SyncConfig {
    type Error = SyncArgsError;

    fn try_from(args: &SyncArgs) -> Result<Self, Self::Error> {
        let source = Location::parse(&args.source)?;
        for (flag, value) in [
            ("interval", args.interval),
            ("timeout", args.timeout),
            ("download-deadline", args.download_deadline),
        ] {
            if value.is_zero() {
                return Err(SyncArgsError::Zero(flag));
            }
        }
        if args.max_file_bytes == 0 {
            return Err(SyncArgsError::Zero("max-file-bytes"));
        }
        if args.timeout >= args.download_deadline {
            return Err(SyncArgsError::Deadline {
                timeout: args.timeout,
                deadline: args.download_deadline,
            });
        }
        if args.dest.exists() && !args.dest.is_dir() {
            return Err(SyncArgsError::Dest(args.dest.clone()));
        }
        // The system bundle may be missing where nothing is fetched over TLS (a file:// or
        // http:// origin); a CA file named on purpose must be there.
        let ca_file = (args.ca_file != Path::new(SYSTEM_CA_FILE) || args.ca_file.exists())
            .then(|| args.ca_file.clone());
        Ok(Self {
            source,
            dest: args.dest.clone(),
            interval: args.interval,
            limits: Limits {
                step: args.timeout,
                total: args.download_deadline,
            },
            max_file_bytes: args.max_file_bytes,
            ca_file,
        })
    }
}

/// Runs `data sync`. Exit codes: 0 (`--once`: the directory serves the origin's set; else
/// stopped by a signal), 1 (`--once`: it does not), 2 (flags that cannot work).
pub fn sync(args: &SyncArgs) -> ExitCode {
    let config = match SyncConfig::try_from(args) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("card-lookup: {error}");
            return ExitCode::from(2);
        }
    };
    crate::telemetry::init_tracing(args.log_format);
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("card-lookup: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(config, args.once, args.metrics_listen))
}

async fn run(config: SyncConfig, once: bool, metrics_listen: Option<SocketAddr>) -> ExitCode {
    let stop = CancellationToken::new();
    if let Some(addr) = metrics_listen {
        match crate::server::serve_updater_metrics(addr, stop.clone()).await {
            Ok(bound) => {
                crate::sync::describe_metrics();
                tracing::info!("serving metrics on http://{bound}/metrics");
            }
            Err(error) => {
                eprintln!("card-lookup: {error}");
                return ExitCode::from(2);
            }
        }
    }
    let mut updater = match Updater::new(config) {
        Ok(updater) => updater,
        Err(error) => {
            eprintln!("card-lookup: {error}");
            return ExitCode::from(2);
        }
    };
    if once {
        let polled = updater.poll().await;
        stop.cancel();
        return match polled {
            Ok(_) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("card-lookup: {error}");
                ExitCode::FAILURE
            }
        };
    }
    let signal = stop.clone();
    tokio::spawn(async move {
        crate::server::shutdown_signal().await;
        signal.cancel();
    });
    updater.run(stop).await;
    ExitCode::SUCCESS
}
