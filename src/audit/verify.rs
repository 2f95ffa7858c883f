//! Checking a directory of trail files, as `card-lookup audit verify` does: every line's own
//! hash, every line's link to the one before, each file's link to the replica's file before
//! it, and each file's closing record. The first thing broken is named by file and line.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use serde_json::Value;

use super::chain::{Chain, GENESIS, SealError};
use super::file::{self, CLOSE, RECORD, TrailFile};

/// What was found in one file that holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSummary {
    pub file: TrailFile,
    pub events: u64,
    /// Its lines, records included.
    pub lines: u64,
    /// Whether its last line is its closing record. Only a replica's newest file may be open
    /// (being written, or its writer stopped).
    pub closed: bool,
    /// The hash of its last line.
    pub last_hash: String,
}

/// The first thing broken: the file, the line (1-based) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: line {line}: {problem}")]
pub struct Broken {
    pub file: String,
    pub line: u64,
    pub problem: String,
}

/// What `audit verify` found: the files that hold, in order, and the first broken one.
#[derive(Debug, Clone, Default)]
pub struct Verified {
    pub files: Vec<FileSummary>,
    pub broken: Option<Broken>,
}

/// Checks every trail file in `dir`, replica by replica, day by day, stopping at the first
/// broken one.
pub fn verify_dir(dir: &Path, chain: &Chain) -> std::io::Result<Verified> {
    let files = file::list(dir)?;
    let mut verified = Verified::default();
    let mut start = 0;
    while start < files.len() {
        let replica = &files[start].replica;
        let end = files[start..]
            .iter()
            .position(|f| &f.replica != replica)
            .map_or(files.len(), |p| start + p);
        let mut prev: Option<(String, String)> = None;
        for (index, file) in files[start..end].iter().enumerate() {
            let newest = start + index + 1 == end;
            match verify_file(file, prev.as_ref(), newest, chain)? {
                Ok(summary) => {
                    prev = Some((summary.file.name(), summary.last_hash.clone()));
                    verified.files.push(summary);
                }
                Err(broken) => {
                    verified.broken = Some(broken);
                    return Ok(verified);
                }
            }
        }
        start = end;
    }
    Ok(verified)
}

/// Checks one file, chained after `prev` (the previous file's name and last hash; none for a
/// replica's oldest file, whose predecessors retention may have deleted).
pub(crate) fn verify_file(
    file: &TrailFile,
    prev: Option<&(String, String)>,
    newest: bool,
    chain: &Chain,
) -> std::io::Result<Result<FileSummary, Broken>> {
    let name = file.name();
    let broken = |line: u64, problem: String| {
        Err(Broken {
            file: name.clone(),
            line,
            problem,
        })
    };
    let mut reader = BufReader::new(File::open(&file.path)?);
    let mut summary = FileSummary {
        file: file.clone(),
        events: 0,
        lines: 0,
        closed: false,
        last_hash: String::new(),
    };
    let mut last_hash = prev.map(|(_, hash)| hash.clone());
    let mut bytes = 0u64;
    let mut raw = Vec::new();
    loop {
        raw.clear();
        let read = reader.read_until(b'\n', &mut raw)?;
        if read == 0 {
            break;
        }
        let number = summary.lines + 1;
        if raw.last() != Some(&b'\n') {
            return Ok(broken(
                number,
                format!(
                    "cut off: the file ends mid-line, {read} bytes into it (the writer stopped mid-write, e.g. a crash); its {} whole lines end at byte {bytes}",
                    summary.lines
                ),
            ));
        }
        bytes += read as u64;
        summary.lines = number;
        let Ok(line) = std::str::from_utf8(&raw[..raw.len() - 1]) else {
            return Ok(broken(
                number,
                "not UTF-8 text (the line was changed)".into(),
            ));
        };
        let (body, hash) = match chain.open(line) {
            Ok(opened) => opened,
            Err(SealError::Mismatch) => {
                return Ok(broken(
                    number,
                    "its hash does not match its text: the line was changed (or the trail is keyed: give --hmac-key-file)".into(),
                ));
            }
            Err(error) => return Ok(broken(number, error.to_string())),
        };
        let Ok(Value::Object(json)) = serde_json::from_str::<Value>(&body) else {
            return Ok(broken(number, "not a JSON object".into()));
        };
        if let Err(problem) = check_line(&json, file, &mut summary, last_hash.as_deref(), prev) {
            return Ok(broken(number, problem));
        }
        last_hash = Some(hash.to_owned());
    }
    if summary.lines == 0 {
        // Created, then the writer stopped before its first line: nothing to check, and the
        // chain goes on from the file before.
        summary.last_hash = prev.map_or_else(|| GENESIS.to_owned(), |(_, hash)| hash.clone());
        return Ok(Ok(summary));
    }
    if !summary.closed && !newest {
        return Ok(broken(
            summary.lines,
            "the file ends without its closing record, and is not the replica's newest: lines were removed from its end".into(),
        ));
    }
    summary.last_hash = last_hash.unwrap_or_default();
    Ok(Ok(summary))
}

/// Checks one line's links and records against what came before it in `summary`: its `prev`
/// (the hash of the line before, `last_hash`; for a first line the previous file's, `prev`),
/// its replica, a closing record's count and hash; counts it. The problem, if any.
fn check_line(
    json: &serde_json::Map<String, Value>,
    file: &TrailFile,
    summary: &mut FileSummary,
    last_hash: Option<&str>,
    prev: Option<&(String, String)>,
) -> Result<(), String> {
    let number = summary.lines;
    let stated_prev = json.get("prev").and_then(Value::as_str).unwrap_or_default();
    match (last_hash, number) {
        (Some(expected), _) if stated_prev == expected => {}
        (None, _) => {}
        (Some(_), 1) => {
            let before = prev.map_or("", |(name, _)| name.as_str());
            return Err(format!(
                "does not follow the last line of {before}, the replica's file before it: a file between them was removed or replaced"
            ));
        }
        (Some(_), _) => {
            return Err(format!(
                "does not follow line {}: a line was removed before it, or lines were reordered",
                number - 1
            ));
        }
    }
    if json.get("replica").and_then(Value::as_str) != Some(file.replica.as_str()) {
        return Err(format!(
            "names another replica than the file name's `{}`",
            file.replica
        ));
    }
    match json.get(RECORD).and_then(Value::as_str) {
        None => {
            summary.events += 1;
            summary.closed = false;
        }
        Some(CLOSE) => {
            let events = json.get("events").and_then(Value::as_u64);
            let closing_hash = json.get("last_hash").and_then(Value::as_str);
            if events != Some(summary.events) || closing_hash != Some(stated_prev) {
                return Err(format!(
                    "the closing record says {} events ending in hash {}, the file holds {} ending in {stated_prev}",
                    events.map_or("no".into(), |n| n.to_string()),
                    closing_hash.unwrap_or("none"),
                    summary.events
                ));
            }
            summary.closed = true;
        }
        Some(_) => summary.closed = false,
    }
    Ok(())
}
