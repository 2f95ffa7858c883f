//! `card-lookup data check` and `card-lookup data convert`: BIN data files and test-card lists,
//! offline.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Subcommand;

use crate::bins::format::cardlookup;
use crate::bins::{DataSource, Format, LoadOptions, load};
use crate::card::test_cards;

#[derive(Debug, Subcommand)]
pub enum DataCommand {
    /// Check BIN data files as the server would load them, and summarise them: rows, prefixes
    /// by length, networks, countries, problems. A test-card list (--test-cards-file; told by
    /// its header) is checked as the server reads it: numbers, providers, the first problem.
    /// Exits 1 if any row or file has a problem.
    Check(DataFiles),
    /// Convert BIN data files (merged in order, later files winning) to the project's own
    /// schema (docs/data-format.md). A test-card list is refused: the server reads it as it is.
    Convert {
        #[command(flatten)]
        files: DataFiles,
        /// Where to write; standard output when not given.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Keep DIR holding the BIN data an origin publishes: fetch its manifest, download the
    /// files it names, check their SHA-256 and rows, and switch DIR to them all at once;
    /// anything failing leaves DIR as it was. Polls every --interval, or once (--once).
    Sync(super::sync::SyncArgs),
}

/// The files a data command reads.
#[derive(Debug, clap::Args)]
pub struct DataFiles {
    /// BIN table files (CSV, optionally gzip-compressed).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Their format; detected from each header when not given.
    #[arg(long)]
    pub format: Option<Format>,
    /// Keep the good rows of a file with bad ones.
    #[arg(long)]
    pub skip_invalid_rows: bool,
}

impl DataFiles {
    fn sources(&self) -> Vec<DataSource> {
        self.files.iter().cloned().map(DataSource::File).collect()
    }

    fn options(&self) -> LoadOptions {
        LoadOptions {
            format: self.format,
            skip_invalid_rows: self.skip_invalid_rows,
        }
    }
}

/// `card-lookup data check`: a report on `out`; success only when nothing is wrong.
pub fn check(files: &DataFiles, out: &mut impl Write) -> std::io::Result<ExitCode> {
    let lenient = LoadOptions {
        skip_invalid_rows: true,
        ..files.options()
    };
    let mut problems = 0u64;
    let mut readable = Vec::new();
    let mut bin_files = Vec::new();
    for path in &files.files {
        match test_card_list(path) {
            Some(text) => problems += check_test_cards(path, &text, out)?,
            None => bin_files.push(DataSource::File(path.clone())),
        }
    }
    for source in bin_files {
        match load(std::slice::from_ref(&source), lenient) {
            Ok(loaded) => {
                let report = &loaded.sources[0];
                writeln!(
                    out,
                    "{}: {}, {} rows, {} bad",
                    report.name, report.format, report.rows, report.skipped_rows
                )?;
                for problem in &report.problems {
                    writeln!(out, "  {problem}")?;
                }
                if report.skipped_rows > report.problems.len() as u64 {
                    writeln!(
                        out,
                        "  ... {} more",
                        report.skipped_rows - report.problems.len() as u64
                    )?;
                }
                problems += report.skipped_rows;
                readable.push(source);
            }
            Err(error) => {
                writeln!(out, "{error}")?;
                problems += 1;
            }
        }
    }
    if !readable.is_empty() {
        let merged = load(&readable, lenient).map_err(std::io::Error::other)?;
        summarise(&merged.index, out)?;
    }
    writeln!(out, "problems: {problems}")?;
    Ok(if problems == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The text of `path` when it is a test-card list (told by its header); `None` otherwise, also
/// when it cannot be read (loading it as BIN data then says why).
fn test_card_list(path: &Path) -> Option<String> {
    use std::io::Read as _;
    // The header only, first: BIN tables can be large.
    let mut start = Vec::with_capacity(64);
    std::fs::File::open(path)
        .ok()?
        .take(test_cards::HEADER.len() as u64 + 2)
        .read_to_end(&mut start)
        .ok()?;
    if !test_cards::is_test_card_list(&start) {
        return None;
    }
    std::fs::read_to_string(path).ok()
}

/// `data check`'s report on a test-card list; its problems (0 or 1: the first stops the
/// server too).
fn check_test_cards(path: &Path, text: &str, out: &mut impl Write) -> std::io::Result<u64> {
    match test_cards::check_list(text) {
        Ok(summary) => {
            let providers: Vec<String> = summary
                .by_provider
                .iter()
                .map(|(name, count)| format!("{name} {count}"))
                .collect();
            writeln!(
                out,
                "{}: test-card list, {} rows, {} numbers",
                path.display(),
                summary.rows,
                summary.numbers
            )?;
            writeln!(out, "  providers: {}", providers.join(", "))?;
            Ok(0)
        }
        Err(error) => {
            writeln!(out, "{}: test-card list: {error}", path.display())?;
            Ok(1)
        }
    }
}

fn summarise(index: &crate::bins::BinIndex, out: &mut impl Write) -> std::io::Result<()> {
    writeln!(
        out,
        "entries: {} ({} ranges), version {}",
        index.len(),
        index.range_count(),
        index.version()
    )?;
    let lengths: Vec<String> = index
        .entries_by_length()
        .iter()
        .map(|(length, count)| format!("{length} digits: {count}"))
        .collect();
    writeln!(out, "prefixes by length: {}", lengths.join(", "))?;
    let mut networks = BTreeMap::<&str, usize>::new();
    let mut countries = BTreeMap::<&str, usize>::new();
    for (_, _, record) in index.entries() {
        *networks
            .entry(record.network.map_or("(none)", |n| n.slug()))
            .or_default() += 1;
        *countries
            .entry(record.country.map_or("(none)", |c| c.alpha2))
            .or_default() += 1;
    }
    let counted = |counts: BTreeMap<&str, usize>| {
        let mut counts: Vec<_> = counts.into_iter().collect();
        counts.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        counts
            .iter()
            .map(|(name, count)| format!("{name} {count}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    writeln!(out, "networks: {}", counted(networks))?;
    writeln!(out, "countries: {}", counted(countries))
}

/// `card-lookup data convert`: the merged table in the project's schema.
///
/// # Errors
/// When a file cannot be loaded or the output cannot be written; the message names the file.
pub fn convert(files: &DataFiles, output: Option<&PathBuf>) -> Result<(), String> {
    if let Some(path) = files.files.iter().find(|p| test_card_list(p).is_some()) {
        return Err(format!(
            "{}: a test-card list, not BIN data: give it to --test-cards-file as it is",
            path.display()
        ));
    }
    let loaded = load(&files.sources(), files.options()).map_err(|e| e.to_string())?;
    let entries = loaded.index.entries();
    let rows = entries
        .iter()
        .map(|(first, last, record)| (*first, *last, record.as_ref()));
    let written = match output {
        Some(path) => {
            let file =
                std::fs::File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
            cardlookup::write(std::io::BufWriter::new(file), rows)
        }
        None => cardlookup::write(std::io::stdout().lock(), rows),
    };
    written.map_err(|e| format!("cannot write the converted table: {e}"))
}
