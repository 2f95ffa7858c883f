//! `card-lookup audit verify` and `audit report`: the audit trail's files (`--audit-dir`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Subcommand;
use zeroize::Zeroizing;

use crate::audit::chain::Chain;
use crate::audit::report::{month_report, report_text};
use crate::audit::verify::{Verified, verify_dir};
use crate::card::FingerprintKeys;

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check every audit file in DIR (every replica's): each line's hash, each line's link to
    /// the one before, each file's link to the replica's file before it, each closing record.
    /// Exits 0 when all hold; 1 naming the first broken file and line (an edited byte, a
    /// removed line, a removed file, a file cut off mid-line by a crash); 2 for usage errors.
    Verify {
        /// The directory of `audit-YYYY-MM-DD-REPLICA.jsonl` files.
        dir: PathBuf,
        /// The --audit-hmac-key-file the trail was written with, if any.
        #[arg(long)]
        hmac_key_file: Option<PathBuf>,
    },
    /// The access report of one month over the files in DIR (every replica's): calls by
    /// client and method, outcomes, distinct cards (by fingerprint, else masked number) and
    /// distinct BINs, for the month and each day, and whether the files verify.
    Report {
        /// The month, `YYYY-MM` (UTC).
        #[arg(long, value_parser = month)]
        month: String,
        /// The directory of `audit-YYYY-MM-DD-REPLICA.jsonl` files.
        dir: PathBuf,
        /// JSON rather than text.
        #[arg(long)]
        json: bool,
        /// The --audit-hmac-key-file the trail was written with, if any.
        #[arg(long)]
        hmac_key_file: Option<PathBuf>,
    },
}

/// `YYYY-MM`, a month that exists.
fn month(text: &str) -> Result<String, String> {
    humantime::parse_rfc3339(&format!("{text}-01T00:00:00Z"))
        .ok()
        .filter(|_| text.len() == 7)
        .map(|_| text.to_owned())
        .ok_or_else(|| format!("`{text}`: expected a month as YYYY-MM"))
}

/// Runs an audit command, printing to standard output.
pub fn audit(command: &AuditCommand) -> ExitCode {
    match command {
        AuditCommand::Verify { dir, hmac_key_file } => {
            let chain = match chain(hmac_key_file.as_deref()) {
                Ok(chain) => chain,
                Err(error) => return usage(&error),
            };
            match verify_dir(dir, &chain) {
                Ok(verified) => print_verified(&verified, &mut std::io::stdout().lock()),
                Err(error) => usage(&format!("{}: {error}", dir.display())),
            }
        }
        AuditCommand::Report {
            month,
            dir,
            json,
            hmac_key_file,
        } => {
            let chain = match chain(hmac_key_file.as_deref()) {
                Ok(chain) => chain,
                Err(error) => return usage(&error),
            };
            match month_report(dir, month, &chain) {
                Ok(report) => {
                    let text = if *json {
                        format!("{report:#}\n")
                    } else {
                        report_text(&report)
                    };
                    let _ = std::io::stdout().lock().write_all(text.as_bytes());
                    ExitCode::SUCCESS
                }
                Err(error) => usage(&format!("{}: {error}", dir.display())),
            }
        }
    }
}

/// The chain of `--hmac-key-file`'s first key, or the plain SHA-256 chain.
fn chain(key_file: Option<&Path>) -> Result<Chain, String> {
    let Some(path) = key_file else {
        return Ok(Chain::default());
    };
    let failed = |problem: String| format!("--hmac-key-file {}: {problem}", path.display());
    let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| failed(e.to_string()))?);
    let keys = FingerprintKeys::parse(&text).map_err(|e| failed(e.to_string()))?;
    Ok(Chain::new(Some(keys.signing().clone())))
}

fn usage(message: &str) -> ExitCode {
    eprintln!("card-lookup: {message}");
    ExitCode::from(super::EXIT_USAGE)
}

/// One line a file that holds, then the first broken one; the exit code.
fn print_verified(verified: &Verified, out: &mut impl Write) -> ExitCode {
    for file in &verified.files {
        let state = if file.closed {
            "closed".to_owned()
        } else {
            format!(
                "open: ends at line {} (being written, or its writer stopped)",
                file.lines
            )
        };
        let _ = writeln!(
            out,
            "ok {}: {} events, {state}, last hash {}",
            file.file.name(),
            file.events,
            file.last_hash
        );
    }
    match &verified.broken {
        Some(broken) => {
            let _ = writeln!(out, "BROKEN {broken}");
            ExitCode::from(super::EXIT_NEGATIVE)
        }
        None if verified.files.is_empty() => {
            let _ = writeln!(out, "no audit files");
            ExitCode::SUCCESS
        }
        None => {
            let _ = writeln!(out, "all {} files hold", verified.files.len());
            ExitCode::SUCCESS
        }
    }
}
