//! `card-lookup validate`, `lookup` and `mask`: offline from the library (the embedded BIN data
//! and `--bin-data` files), or from a server with `--server`.
//!
//! Offline answers are computed as `grpc::card_lookup` computes the server's, from the same
//! library calls, so the two agree; tests/cli_server.rs checks that they do.

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::ValueEnum;
use zeroize::Zeroize;

use super::CliError;
use super::answer::{BinInfo, Checked, Masked};
use super::batch;
use super::remote::Remote;
use crate::bins::{BinIndex, CardFacts, DataSource, Format, LoadOptions, load, validate_number};
use crate::card::mask::MIN_PAN_DIGITS;
use crate::card::{self, MaskOptions, MaskStyle, Pan};
use crate::grpc::error::{MIN_BIN_DIGITS, RequestError};
use crate::proto::cardlookup::v1 as pb;

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
}

/// `card-lookup validate`.
#[derive(Debug, Clone, clap::Args)]
#[command(
    after_help = "Exit status: 0 valid, 1 invalid (with --file: any invalid), 2 usage \
                        errors, unreadable files and server errors.\n\nExamples:\n  \
                        card-lookup validate 4111 1111 1111 1111\n  \
                        card-lookup validate --json 5555555555554444\n  \
                        card-lookup validate --file numbers.txt --json > results.jsonl\n  \
                        card-lookup validate --server http://127.0.0.1:50051 4111111111111111"
)]
pub struct ValidateArgs {
    /// The card number. Spaces and dashes are ignored, so it may be typed in groups. `-` reads
    /// it from standard input, keeping it out of shell history and the process list.
    #[arg(
        value_name = "NUMBER",
        num_args = 1..,
        required_unless_present = "file",
        conflicts_with = "file"
    )]
    pub number: Vec<String>,

    /// Check a file of card numbers, one per line (`-` for standard input), as it streams:
    /// one output line per number (masked), then a summary.
    #[arg(long, short, value_name = "FILE")]
    pub file: Option<PathBuf>,

    /// With --file: print each number in full, as read. Without it, output shows only the
    /// masked form (last four digits).
    #[arg(long, requires = "file")]
    pub unmasked: bool,

    /// With --file: no progress bar. It is drawn only when standard error is a terminal.
    #[arg(long, requires = "file")]
    pub no_progress: bool,

    /// Print JSON: one object; with --file, one object a line and a summary object last.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub target: Target,
}

/// `card-lookup lookup`.
#[derive(Debug, Clone, clap::Args)]
#[command(
    after_help = "Exit status: 0 found, 1 not in the BIN data, 2 usage errors (fewer \
                        than 6 digits, ...) and server errors.\n\nExamples:\n  \
                        card-lookup lookup 622848\n  \
                        card-lookup lookup --json 45717360\n  \
                        card-lookup lookup --bin-data my-bins.csv 45710042"
)]
pub struct LookupArgs {
    /// The BIN: the first 6 to 8 digits of a card number, or more of them, up to the whole
    /// number (only the BIN that matched is printed). `-` reads it from standard input.
    #[arg(value_name = "BIN", num_args = 1.., required = true)]
    pub bin: Vec<String>,

    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub target: Target,
}

/// How much of a number `mask` shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MaskStyleArg {
    /// The last four digits only.
    LastFour,
    /// The BIN and the last four digits: the first 6 digits, or 8 when an 8-digit BIN matches
    /// in the data and the number has 16 or more digits.
    BinAndLastFour,
    /// No digit at all.
    All,
}

impl MaskStyleArg {
    fn domain(self) -> MaskStyle {
        match self {
            Self::LastFour => MaskStyle::LastFour,
            Self::BinAndLastFour => MaskStyle::BinAndLastFour,
            Self::All => MaskStyle::All,
        }
    }

    fn proto(self) -> pb::MaskStyle {
        match self {
            Self::LastFour => pb::MaskStyle::LastFour,
            Self::BinAndLastFour => pb::MaskStyle::BinAndLastFour,
            Self::All => pb::MaskStyle::All,
        }
    }
}

/// `card-lookup mask`.
#[derive(Debug, Clone, clap::Args)]
#[command(
    after_help = "Exit status: 0 masked, 2 usage errors (not 12 to 19 digits, a bad \
                        mask character) and server errors.\n\nExamples:\n  \
                        card-lookup mask 4111111111111111\n  \
                        card-lookup mask --style bin-and-last-four --grouping 4111111111111111\n  \
                        card-lookup mask --mask-char '#' --json 378282246310005"
)]
pub struct MaskArgs {
    /// The card number: 12 to 19 digits; spaces and dashes are ignored. `-` reads it from
    /// standard input.
    #[arg(value_name = "NUMBER", num_args = 1.., required = true)]
    pub number: Vec<String>,

    /// How much of the number to show.
    #[arg(long, value_enum, default_value_t = MaskStyleArg::LastFour)]
    pub style: MaskStyleArg,

    /// The character that hides a digit: one character, not a digit or white space.
    #[arg(long, value_name = "C", default_value = "*", value_parser = parse_mask_char)]
    pub mask_char: char,

    /// Print the digits in the network's groups, separated by spaces ("4111 11** **** 1111").
    #[arg(long)]
    pub grouping: bool,

    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub target: Target,
}

fn parse_mask_char(text: &str) -> Result<char, String> {
    MaskOptions::parse_mask_char(text).map_err(|e| e.to_string())
}

/// `card-lookup validate NUMBER` or `validate --file FILE`.
pub fn validate(args: &ValidateArgs) -> ExitCode {
    finish(run_validate(args))
}

/// `card-lookup lookup BIN`.
pub fn lookup(args: &LookupArgs) -> ExitCode {
    finish(run_lookup(args))
}

/// `card-lookup mask NUMBER`.
pub fn mask(args: &MaskArgs) -> ExitCode {
    finish(run_mask(args))
}

fn finish(result: Result<ExitCode, CliError>) -> ExitCode {
    result.unwrap_or_else(|error| {
        eprintln!("card-lookup: {error}");
        ExitCode::from(super::EXIT_USAGE)
    })
}

fn run_validate(args: &ValidateArgs) -> Result<ExitCode, CliError> {
    // clap lets `requires = "file"` pass when NUMBER (which conflicts with --file) is given.
    if args.file.is_none() && (args.unmasked || args.no_progress) {
        return Err(CliError::Usage(
            "--unmasked and --no-progress go with --file".to_owned(),
        ));
    }
    if let Some(file) = &args.file {
        let options = batch::Options {
            json: args.json,
            unmasked: args.unmasked,
            progress: !args.no_progress,
        };
        return batch::run(file, Engine::new(&args.target)?, options);
    }
    let mut number = number_text(&args.number)?;
    let checked = Engine::new(&args.target)?.validate(&number);
    number.zeroize();
    let checked = checked?;
    print(&if args.json {
        format!("{}\n", checked.json())
    } else {
        checked.human()
    })?;
    Ok(verdict(checked.valid))
}

fn run_lookup(args: &LookupArgs) -> Result<ExitCode, CliError> {
    let mut number = number_text(&args.bin)?;
    let info = Engine::new(&args.target)?.lookup(&number);
    number.zeroize();
    let info = info?;
    print(&if args.json {
        format!("{}\n", info.json())
    } else {
        info.human()
    })?;
    Ok(verdict(info.found))
}

fn run_mask(args: &MaskArgs) -> Result<ExitCode, CliError> {
    let mut number = number_text(&args.number)?;
    let masked = Engine::new(&args.target)?.mask(&number, args);
    number.zeroize();
    let masked = masked?;
    print(&if args.json {
        format!("{}\n", masked.json())
    } else {
        masked.human()
    })?;
    Ok(ExitCode::SUCCESS)
}

fn verdict(ok: bool) -> ExitCode {
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(super::EXIT_NEGATIVE)
    }
}

/// The number from the command line (its groups joined), or the first line of standard input
/// for `-`.
fn number_text(parts: &[String]) -> Result<String, CliError> {
    if parts != ["-"] {
        return Ok(parts.join(" "));
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| CliError::Io(format!("cannot read standard input: {e}")))?;
    Ok(line)
}

fn print(text: &str) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| CliError::output(&e))
}

/// What answers: the library over a loaded BIN index, or a server.
#[derive(Debug)]
pub(super) enum Engine {
    Offline(Box<BinIndex>),
    Remote {
        runtime: Box<tokio::runtime::Runtime>,
        remote: Remote,
    },
}

impl Engine {
    /// Loads the BIN data (offline), or sets up the client (with --server).
    pub(super) fn new(target: &Target) -> Result<Self, CliError> {
        let Some(url) = &target.server else {
            let mut sources: Vec<DataSource> = Vec::new();
            if !target.no_default_data {
                sources.push(DataSource::Embedded);
            }
            sources.extend(target.bin_data.iter().cloned().map(DataSource::File));
            let options = LoadOptions {
                format: target.bin_data_format,
                skip_invalid_rows: false,
            };
            let loaded = load(&sources, options)
                .map_err(|e| CliError::Usage(format!("cannot load BIN data: {e}")))?;
            return Ok(Self::Offline(Box::new(loaded.index)));
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| CliError::Io(format!("cannot start the runtime: {e}")))?;
        let remote = {
            let _context = runtime.enter();
            Remote::new(url, target)?
        };
        Ok(Self::Remote {
            runtime: Box::new(runtime),
            remote,
        })
    }

    fn validate(&mut self, number: &str) -> Result<Checked, CliError> {
        match self {
            Self::Offline(index) => Ok(offline_validate(index, number)),
            Self::Remote { runtime, remote } => {
                let request = pb::ValidateRequest {
                    number: number.to_owned(),
                };
                let response = runtime.block_on(remote.client.validate(request));
                Ok(response.map_err(|s| remote.failed(&s))?.into_inner().into())
            }
        }
    }

    fn lookup(&mut self, number: &str) -> Result<BinInfo, CliError> {
        match self {
            // As grpc::card_lookup's lookup_bin.
            Self::Offline(index) => {
                let pan = Pan::parse(number).map_err(RequestError::from)?;
                if pan.len() < MIN_BIN_DIGITS {
                    return Err(RequestError::TooFewDigitsForBin { digits: pan.len() }.into());
                }
                let facts = CardFacts::of(index, &pan);
                Ok(BinInfo::from_match(
                    facts.hit,
                    facts.detection.network,
                    index.version(),
                ))
            }
            Self::Remote { runtime, remote } => {
                let request = pb::LookupBinRequest {
                    number: number.to_owned(),
                };
                let response = runtime.block_on(remote.client.lookup_bin(request));
                Ok(response.map_err(|s| remote.failed(&s))?.into_inner().into())
            }
        }
    }

    fn mask(&mut self, number: &str, args: &MaskArgs) -> Result<Masked, CliError> {
        match self {
            // As grpc::card_lookup's mask_card.
            Self::Offline(index) => {
                let pan = Pan::parse(number).map_err(RequestError::from)?;
                if pan.len() < MIN_PAN_DIGITS {
                    return Err(RequestError::NotACardNumber { digits: pan.len() }.into());
                }
                let facts = CardFacts::of(index, &pan);
                let network = facts.detection.network;
                let options = MaskOptions {
                    style: args.style.domain(),
                    mask_char: args.mask_char,
                    keep_grouping: args.grouping,
                };
                Ok(Masked {
                    masked: card::mask(&pan, network, facts.bin_len(), &options),
                    network,
                })
            }
            Self::Remote { runtime, remote } => {
                let request = pb::MaskCardRequest {
                    number: number.to_owned(),
                    style: args.style.proto().into(),
                    mask_character: Some(args.mask_char.to_string()),
                    keep_grouping: args.grouping,
                };
                let response = runtime.block_on(remote.client.mask_card(request));
                Ok(response.map_err(|s| remote.failed(&s))?.into_inner().into())
            }
        }
    }
}

/// Validates as grpc::card_lookup's Validate does: with the issuer's own rules (lengths,
/// Luhn) where the BIN data has them.
pub(super) fn offline_validate(index: &BinIndex, number: &str) -> Checked {
    validate_number(index, number).into()
}
