//! `card-lookup validate --file FILE`: a file of card numbers, one per line, checked as it
//! streams (memory stays flat whatever the file's size), one output line per number, and a
//! summary at the end. A progress bar is drawn on standard error when it is a terminal.
//!
//! Output shows each number masked to its last four digits, unless `--unmasked` is given.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, IsTerminal, Read, Write};
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use futures_util::StreamExt;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{Map, Value, json};
use zeroize::Zeroize;

use super::CliError;
use super::answer::{Checked, or_dash, yes_no};
use super::engine::Engine;
use super::remote::Remote;
use crate::card::CardNetwork;
use crate::client::resend_unsent;
use crate::proto::cardlookup::v1 as pb;

/// A line longer than this is read only this far (the rest is skipped): a card number with
/// separators is far shorter, and a file without line breaks must not fill the memory.
const MAX_LINE: u64 = 1024;
/// Validate calls in flight at once against a server.
const IN_FLIGHT: usize = 16;
/// Lines read ahead of the answers, against a server.
const READ_AHEAD: usize = 256;

/// How to report.
#[derive(Debug, Clone, Copy)]
pub(super) struct Options {
    pub json: bool,
    pub unmasked: bool,
    /// Draw a progress bar, if standard error is a terminal.
    pub progress: bool,
}

/// Checks every number of `file` (`-`: standard input) and prints the report.
pub(super) fn run(file: &Path, engine: Engine, options: Options) -> Result<ExitCode, CliError> {
    let (reader, size, interactive): (Box<dyn BufRead + Send>, Option<u64>, bool) =
        if file.as_os_str() == "-" {
            let stdin = io::stdin();
            let interactive = stdin.is_terminal();
            (Box::new(BufReader::new(stdin)), None, interactive)
        } else {
            let opened = File::open(file)
                .map_err(|e| CliError::Usage(format!("{}: {e}", file.display())))?;
            let size = opened
                .metadata()
                .ok()
                .filter(std::fs::Metadata::is_file)
                .map(|m| m.len());
            (
                Box::new(BufReader::with_capacity(64 * 1024, opened)),
                size,
                false,
            )
        };
    // Numbers typed at a terminal get their answers at once, without a bar in between.
    let show_bar = options.progress && !interactive && io::stderr().is_terminal();
    let bar = progress_bar(size, show_bar);
    let stdout = io::stdout();
    let through_bar = show_bar && stdout.is_terminal();
    let mut report = Report::new(BufWriter::new(stdout.lock()), options, bar, through_bar);

    let checked = match engine {
        Engine::Remote { runtime, remote } => report
            .header()
            .and_then(|()| runtime.block_on(remote_run(reader, &remote, &mut report))),
        mut offline @ Engine::Offline { .. } => report.header().and_then(|()| {
            for line in Lines::new(reader) {
                let line = line.map_err(|e| read_error(&e))?;
                let request = pb::ValidateRequest {
                    number: line.text.clone(),
                };
                report.record(&line, &offline.validate(request)?)?;
            }
            Ok(())
        }),
    };
    match checked {
        Ok(()) => report.finish(),
        Err(error) => {
            report.abandon();
            Err(error)
        }
    }
}

/// Against a server: a thread reads lines into a bounded channel; up to [`IN_FLIGHT`]
/// Validate calls run at once, and answers are reported in the order of the file.
async fn remote_run<W: Write>(
    reader: Box<dyn BufRead + Send>,
    remote: &Remote,
    report: &mut Report<W>,
) -> Result<(), CliError> {
    let (lines, mut received) = tokio::sync::mpsc::channel::<io::Result<Line>>(READ_AHEAD);
    // Not joined: when a call fails the answer is printed at once, even if the thread is still
    // blocked on a read (standard input); it ends with the process.
    std::thread::spawn(move || {
        for line in Lines::new(reader) {
            let failed = line.is_err();
            if lines.blocking_send(line).is_err() || failed {
                break;
            }
        }
    });
    let mut answers = futures_util::stream::poll_fn(move |cx| received.poll_recv(cx))
        .map(|line| {
            let client = &remote.client;
            async move {
                let line = line?;
                let request = pb::ValidateRequest {
                    number: line.text.clone(),
                };
                let response = resend_unsent(|| {
                    let mut client = client.clone();
                    let request = request.clone();
                    async move { client.validate(request).await }
                })
                .await;
                Ok::<_, io::Error>((line, response))
            }
        })
        .buffered(IN_FLIGHT);
    while let Some(answer) = answers.next().await {
        let (line, response) = answer.map_err(|e| read_error(&e))?;
        let checked = response.map_err(|status| remote.failed(&status))?;
        report.record(&line, &checked.into_inner().into())?;
    }
    Ok(())
}

fn read_error(error: &io::Error) -> CliError {
    CliError::Io(format!("cannot read the numbers: {error}"))
}

fn progress_bar(size: Option<u64>, show: bool) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let (bar, template) = match size {
        Some(size) => (
            ProgressBar::with_draw_target(Some(size), ProgressDrawTarget::stderr()),
            "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {msg} (eta {eta})",
        ),
        None => (
            ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()),
            "{spinner} [{elapsed_precise}] {msg}",
        ),
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar.set_message("0 numbers");
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// One non-blank line of the input; its text is wiped from memory when dropped.
struct Line {
    /// 1-based, counting blank lines too, so it points into the file.
    number: u64,
    /// Trimmed.
    text: String,
    /// The byte offset just after the line, for the progress bar.
    end: u64,
}

impl Drop for Line {
    fn drop(&mut self) {
        self.text.zeroize();
    }
}

/// The non-blank lines of a reader, each at most [`MAX_LINE`] bytes, one at a time.
struct Lines<R> {
    reader: R,
    number: u64,
    offset: u64,
    buf: Vec<u8>,
}

impl<R: BufRead> Lines<R> {
    fn new(reader: R) -> Self {
        Self {
            reader,
            number: 0,
            offset: 0,
            buf: Vec::with_capacity(64),
        }
    }

    fn read_line(&mut self) -> io::Result<Option<Line>> {
        loop {
            self.buf.zeroize();
            let read = (&mut self.reader)
                .take(MAX_LINE)
                .read_until(b'\n', &mut self.buf)?;
            if read == 0 {
                return Ok(None);
            }
            self.number += 1;
            self.offset += read as u64;
            if self.buf.last() != Some(&b'\n') && read as u64 == MAX_LINE {
                self.offset += skip_line(&mut self.reader)?;
            }
            let text = String::from_utf8_lossy(&self.buf);
            let text = text.trim();
            if !text.is_empty() {
                return Ok(Some(Line {
                    number: self.number,
                    text: text.to_owned(),
                    end: self.offset,
                }));
            }
        }
    }
}

impl<R: BufRead> Iterator for Lines<R> {
    type Item = io::Result<Line>;

    fn next(&mut self) -> Option<Self::Item> {
        self.read_line().transpose()
    }
}

impl<R> Drop for Lines<R> {
    fn drop(&mut self) {
        self.buf.zeroize();
    }
}

/// Skips to the start of the next line; returns the bytes skipped.
fn skip_line(reader: &mut impl BufRead) -> io::Result<u64> {
    let mut skipped = 0u64;
    loop {
        let available = reader.fill_buf()?;
        if available.is_empty() {
            return Ok(skipped);
        }
        let (used, done) = match available.iter().position(|&b| b == b'\n') {
            Some(newline) => (newline + 1, true),
            None => (available.len(), false),
        };
        reader.consume(used);
        skipped += used as u64;
        if done {
            return Ok(skipped);
        }
    }
}

/// Prints one line per number and keeps the counts for the summary.
struct Report<W: Write> {
    out: W,
    options: Options,
    bar: ProgressBar,
    /// Standard output is the terminal the bar is drawn on: lines go out around the bar.
    through_bar: bool,
    numbers: u64,
    valid: u64,
    /// Valid numbers by network.
    networks: BTreeMap<CardNetwork, u64>,
    /// Invalid numbers by reason code, with the reason's label.
    reasons: BTreeMap<&'static str, (&'static str, u64)>,
}

impl<W: Write> Report<W> {
    fn new(out: W, options: Options, bar: ProgressBar, through_bar: bool) -> Self {
        Self {
            out,
            options,
            bar,
            through_bar,
            numbers: 0,
            valid: 0,
            networks: BTreeMap::new(),
            reasons: BTreeMap::new(),
        }
    }

    fn header(&mut self) -> Result<(), CliError> {
        if self.options.json {
            return Ok(());
        }
        let header = format!(
            "{:>6}  {:<19}  {:<5}  {:<16}  reason\n",
            "line", "number", "valid", "network"
        );
        self.emit(&header)
    }

    fn record(&mut self, line: &Line, checked: &Checked) -> Result<(), CliError> {
        self.numbers += 1;
        if checked.valid {
            self.valid += 1;
            if let Some(network) = checked.network {
                *self.networks.entry(network).or_default() += 1;
            }
        }
        if let Some(reason) = &checked.reason {
            self.reasons
                .entry(reason.code)
                .or_insert((reason.label, 0))
                .1 += 1;
        }
        let shown = if self.options.unmasked {
            line.text.as_str()
        } else {
            checked.masked.as_str()
        };
        let text = if self.options.json {
            let mut object = json!({
                "line": line.number,
                "masked_number": checked.masked,
                "valid": checked.valid,
                "network": checked.network.map(CardNetwork::slug),
                "failure": checked.reason.as_ref().map(|r| r.code),
                "failure_message": checked.reason.as_ref().map(|r| r.message.as_str()),
            });
            if self.options.unmasked {
                object["number"] = Value::from(shown);
            }
            if !checked.fingerprint.is_empty() {
                object["fingerprint"] = Value::from(checked.fingerprint.as_str());
            }
            if !checked.test_card_sources.is_empty() {
                object["test_card_sources"] = Value::from(checked.test_card_sources.clone());
            }
            format!("{object}\n")
        } else {
            let row = format!(
                "{:>6}  {:<19}  {:<5}  {:<16}  {}",
                line.number,
                or_dash(shown),
                yes_no(checked.valid),
                checked.network.map_or("-", |n| n.spec().name),
                checked.reason.as_ref().map_or("", |r| r.message.as_str()),
            );
            format!("{}\n", row.trim_end())
        };
        self.emit(&text)?;
        if self.bar.length().is_some() {
            self.bar.set_position(line.end);
        }
        if self.numbers.is_multiple_of(64) {
            self.bar.set_message(self.progress_message());
        }
        Ok(())
    }

    fn progress_message(&self) -> String {
        format!(
            "{} numbers, {} invalid",
            self.numbers,
            self.numbers - self.valid
        )
    }

    fn emit(&mut self, text: &str) -> Result<(), CliError> {
        let out = &mut self.out;
        let written = if self.through_bar {
            self.bar
                .suspend(|| out.write_all(text.as_bytes()).and_then(|()| out.flush()))
        } else {
            out.write_all(text.as_bytes())
        };
        written.map_err(|e| CliError::output(&e))
    }

    /// The summary; success when every number was valid.
    fn finish(mut self) -> Result<ExitCode, CliError> {
        self.bar.finish_and_clear();
        let invalid = self.numbers - self.valid;
        let mut networks: Vec<(CardNetwork, u64)> =
            self.networks.iter().map(|(n, c)| (*n, *c)).collect();
        networks.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let mut reasons: Vec<(&str, &str, u64)> = self
            .reasons
            .iter()
            .map(|(code, (label, count))| (*code, *label, *count))
            .collect();
        reasons.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.cmp(b.0)));
        let summary = if self.options.json {
            let networks: Map<String, Value> = networks
                .iter()
                .map(|(n, c)| (n.slug().to_owned(), Value::from(*c)))
                .collect();
            let reasons: Map<String, Value> = reasons
                .iter()
                .map(|(code, _, c)| ((*code).to_owned(), Value::from(*c)))
                .collect();
            let summary = json!({"summary": {
                "numbers": self.numbers,
                "valid": self.valid,
                "invalid": invalid,
                "networks": networks,
                "reasons": reasons,
            }});
            format!("{summary}\n")
        } else {
            let or_none = |items: Vec<String>| {
                if items.is_empty() {
                    "none".to_owned()
                } else {
                    items.join(", ")
                }
            };
            let networks = or_none(
                networks
                    .iter()
                    .map(|(n, c)| format!("{} {c}", n.spec().name))
                    .collect(),
            );
            let reasons = or_none(
                reasons
                    .iter()
                    .map(|(_, label, c)| format!("{label} {c}"))
                    .collect(),
            );
            format!(
                "\nsummary: {} numbers, {} valid, {invalid} invalid\n\
                 valid by network: {networks}\n\
                 invalid by reason: {reasons}\n",
                self.numbers, self.valid
            )
        };
        self.through_bar = false;
        self.emit(&summary)?;
        self.out.flush().map_err(|e| CliError::output(&e))?;
        Ok(if invalid == 0 {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(super::EXIT_NEGATIVE)
        })
    }

    /// Stops after an error: the bar goes, and what was printed is flushed.
    fn abandon(mut self) {
        self.bar.finish_and_clear();
        let _ = self.out.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(input: &[u8]) -> Vec<(u64, String, u64)> {
        Lines::new(input)
            .map(|line| {
                let line = line.unwrap();
                (line.number, line.text.clone(), line.end)
            })
            .collect()
    }

    #[test]
    fn lines_skip_blanks_and_trim() {
        assert_eq!(
            lines(b"4111 1111\r\n\n  \n5555\n6011"),
            vec![
                (1, "4111 1111".into(), 11),
                (4, "5555".into(), 20),
                (5, "6011".into(), 24)
            ]
        );
    }

    #[test]
    fn a_long_line_is_cut_and_the_next_line_still_read() {
        let mut input = vec![b'1'; 5000];
        input.extend_from_slice(b"\n4111\n");
        let read = lines(&input);
        assert_eq!(read.len(), 2);
        assert_eq!(read[0].1.len(), 1024);
        assert_eq!(read[1], (2, "4111".into(), 5006));
    }
}
