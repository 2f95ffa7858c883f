//! `--server` and the offline data flags: where the card commands' answers come from.

use std::path::PathBuf;
use std::time::Duration;

use crate::bins::Format;

/// Where answers come from: offline by default, or a server.
#[derive(Debug, Clone, clap::Args)]
pub struct Target {
    /// Ask this card-lookup server instead of answering offline: http://HOST:PORT, or
    /// https://HOST:PORT with --ca-cert.
    #[arg(long, value_name = "URL", help_heading = "Server")]
    pub server: Option<String>,

    /// PEM file with the CA certificate(s) that signed the server's certificate (https only).
    #[arg(long, value_name = "PEM", requires = "server", help_heading = "Server")]
    pub ca_cert: Option<PathBuf>,

    /// PEM client certificate, for a server that requires mutual TLS (with --key).
    #[arg(
        long,
        value_name = "PEM",
        requires = "key",
        requires = "ca_cert",
        help_heading = "Server"
    )]
    pub cert: Option<PathBuf>,

    /// PEM private key of --cert.
    #[arg(long, value_name = "PEM", requires = "cert", help_heading = "Server")]
    pub key: Option<PathBuf>,

    /// The name the server's certificate must carry, when it is not the host in --server
    /// (e.g. --server https://127.0.0.1:50051 --tls-server-name card-lookup.internal).
    #[arg(
        long,
        value_name = "NAME",
        requires = "ca_cert",
        help_heading = "Server"
    )]
    pub tls_server_name: Option<String>,

    /// How long to wait for the server, to connect and for each call ("10s", "500ms").
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "10s",
        value_parser = humantime::parse_duration,
        help_heading = "Server"
    )]
    pub timeout: Duration,

    /// A BIN table file (CSV, optionally gzip-compressed, any supported format) loaded on top
    /// of the embedded data, as the server's --bin-data. Repeat for several files; later files
    /// win for the same BIN.
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with = "server",
        help_heading = "Offline data"
    )]
    pub bin_data: Vec<PathBuf>,

    /// The format of the --bin-data files: cardlookup, bin-list-data, cn-four-column or
    /// binlist-ranges. Detected from each file's header when not given.
    #[arg(
        long,
        value_name = "FORMAT",
        conflicts_with = "server",
        help_heading = "Offline data"
    )]
    pub bin_data_format: Option<Format>,

    /// Use only the --bin-data files, without the embedded data underneath.
    #[arg(
        long,
        requires = "bin_data",
        conflicts_with = "server",
        help_heading = "Offline data"
    )]
    pub no_default_data: bool,

    /// Fingerprint keys, as the server's --fingerprint-key-file: answers carry the number's
    /// fingerprint under the file's first key, as a server with the same file gives it.
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with = "server",
        help_heading = "Offline data"
    )]
    pub fingerprint_key_file: Option<PathBuf>,

    /// Your own test card numbers, as the server's --test-cards-file: added to the providers'
    /// lists built in.
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with = "server",
        help_heading = "Offline data"
    )]
    pub test_cards_file: Option<PathBuf>,
}
