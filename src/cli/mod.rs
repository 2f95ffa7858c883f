//! The command line: `card-lookup` (or `card-lookup serve`) serves; `card-lookup data ...`
//! checks and converts BIN data files offline; `card-lookup validate`, `lookup` and `mask`
//! answer as the service does, offline from the library or from a server with `--server`.
//!
//! - [`data`]: `data check` and `data convert`.
//! - [`audit`]: `audit verify`, checking the audit trail's files.
//! - [`sync`]: `data sync`, the flags of the updater ([`crate::sync`]).
//! - [`card`]: the flags of `validate`, `lookup` and `mask`, and running them.
//! - [`target`]: `--server` and the offline data flags.
//! - `engine`: what answers: the request layer offline, or a server; the same messages both
//!   ways.
//! - `answer`: what they print, from the answer messages.
//! - `remote`: the gRPC client (`--server`, TLS and mutual TLS); its calls are sent again when
//!   their connection closed before sending them ([`crate::client`]).
//! - `batch`: `validate --file`, streaming a file of numbers with a progress bar and summary.
//!
//! Exit codes of the card commands: 0 when the number is valid, the BIN found or the number
//! masked; 1 when a number is invalid or a BIN is not found; 2 for usage errors, input the
//! command cannot take, unreadable files and a server that cannot be reached or refuses.

mod answer;
pub mod audit;
mod batch;
pub mod card;
pub mod data;
mod engine;
mod remote;
pub mod sync;
pub mod target;

use clap::{Parser, Subcommand};

use crate::config::Args;

pub use audit::{AuditCommand, audit};
pub use card::{LookupArgs, MaskArgs, MaskStyleArg, ValidateArgs, lookup, mask, validate};
pub use data::{DataCommand, DataFiles, check, convert};
pub use target::Target;

/// A number is invalid, or a BIN is not in the data.
const EXIT_NEGATIVE: u8 = 1;
/// Usage errors (clap's code too), input a command cannot take, unreadable files, a server
/// that cannot be reached or refuses.
const EXIT_USAGE: u8 = 2;

/// Why a card command could not answer; printed as `card-lookup: ...`, exit code 2.
#[derive(Debug, thiserror::Error)]
enum CliError {
    /// A flag, file or server address that cannot work.
    #[error("{0}")]
    Usage(String),
    /// Input the command cannot take; the same message as the server's INVALID_ARGUMENT.
    #[error("{0}")]
    Request(#[from] crate::api::RequestError),
    /// A call that failed: the server's address, the gRPC code and message.
    #[error("{0}")]
    Server(String),
    /// Reading input or writing output.
    #[error("{0}")]
    Io(String),
}

impl CliError {
    fn output(error: &std::io::Error) -> Self {
        Self::Io(format!("cannot write the output: {error}"))
    }
}

/// `card-lookup`: serve, work with BIN data files, or check a card number.
#[derive(Debug, Parser)]
#[command(
    name = "card-lookup",
    version,
    about = "gRPC service that validates card numbers, finds their issuer by BIN and masks them",
    long_about = "gRPC service that validates card numbers, finds their issuer by BIN and masks \
                  them.\n\nWith no command it serves (the flags below). `validate`, `lookup` and \
                  `mask` answer from the command line, offline or from a server (--server).",
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// With no command: serve, with these flags.
    #[command(flatten)]
    pub serve: Args,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve gRPC (what `card-lookup` with no command does).
    Serve(Box<Args>),
    /// Check or convert BIN data files, offline.
    #[command(subcommand)]
    Data(DataCommand),
    /// Check a card number (or a file of them): network, length, Luhn. Exits 0 when valid,
    /// 1 when not.
    Validate(ValidateArgs),
    /// Look up a BIN (6 to 19 leading digits): issuer, country, network, brand, type, level.
    /// Exits 0 when found, 1 when not.
    Lookup(LookupArgs),
    /// Mask a card number for display, showing at most what PCI DSS allows.
    Mask(MaskArgs),
    /// Print the OpenAPI 3.1 description of the HTTP/JSON API (generated from the proto; the
    /// document `GET /openapi.json` serves).
    Openapi,
    /// Work with the audit trail's files (--audit-dir), offline.
    #[command(subcommand)]
    Audit(AuditCommand),
}
