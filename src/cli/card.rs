//! `card-lookup validate`, `lookup` and `mask`: their flags, and running them. The answers come
//! from an `Engine`: the request layer offline, or a server.

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::ValueEnum;

use super::CliError;
use super::batch;
use super::engine::Engine;
use super::target::Target;
use crate::card::MaskOptions;
use crate::proto::cardlookup::v1 as pb;

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
    let mut engine = Engine::new(&args.target)?;
    let number = number_text(&args.number)?;
    let checked = engine.validate(pb::ValidateRequest { number })?;
    print(&if args.json {
        format!("{}\n", checked.json())
    } else {
        checked.human()
    })?;
    Ok(verdict(checked.valid))
}

fn run_lookup(args: &LookupArgs) -> Result<ExitCode, CliError> {
    let mut engine = Engine::new(&args.target)?;
    let number = number_text(&args.bin)?;
    let info = engine.lookup_bin(pb::LookupBinRequest { number })?;
    print(&if args.json {
        format!("{}\n", info.json())
    } else {
        info.human()
    })?;
    Ok(verdict(info.found))
}

fn run_mask(args: &MaskArgs) -> Result<ExitCode, CliError> {
    let mut engine = Engine::new(&args.target)?;
    let masked = engine.mask_card(pb::MaskCardRequest {
        number: number_text(&args.number)?,
        style: args.style.proto().into(),
        mask_character: Some(args.mask_char.to_string()),
        keep_grouping: args.grouping,
    })?;
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
