//! The files of the trail: one a replica a UTC day, `audit-YYYY-MM-DD-REPLICA.jsonl`, and the
//! records besides events that the chain holds.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

const PREFIX: &str = "audit-";
const SUFFIX: &str = ".jsonl";
/// `YYYY-MM-DD`.
const DAY_LEN: usize = 10;

/// The `record` member of a line that is not an event.
pub(crate) const RECORD: &str = "record";
/// Ends a file (day rollover, shutdown, or at start-up for a file a stopped process left open):
/// `events` (the file's event count) and `last_hash` (its last line's hash before this one).
pub(crate) const CLOSE: &str = "close";
/// Written at start-up after cutting off the part line a crash left at the end of a file:
/// `cut_bytes`, how many bytes were cut, and `at_byte`, where.
pub(crate) const RECOVERED: &str = "recovered";

/// The UTC day of `time`, `YYYY-MM-DD`.
pub(crate) fn day_of(time: SystemTime) -> String {
    let mut day = humantime::format_rfc3339_seconds(time).to_string();
    day.truncate(DAY_LEN);
    day
}

/// The UTC day of `time` as a count of days since 1970-01-01: cheaper to compare than its name.
pub(crate) fn day_number(time: SystemTime) -> u64 {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |since| since.as_secs() / SECONDS_A_DAY)
}

/// The `YYYY-MM-DD` of a [`day_number`].
pub(crate) fn day_name(number: u64) -> String {
    day_of(SystemTime::UNIX_EPOCH + Duration::from_secs(number * SECONDS_A_DAY))
}

const SECONDS_A_DAY: u64 = 86_400;

/// The file of `replica` for `day`.
pub(crate) fn name(day: &str, replica: &str) -> String {
    format!("{PREFIX}{day}-{replica}{SUFFIX}")
}

/// One file of the trail, as its name describes it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct TrailFile {
    pub replica: String,
    /// `YYYY-MM-DD`.
    pub day: String,
    pub path: PathBuf,
}

impl TrailFile {
    /// The file a name describes; none for a name that is not a trail file's.
    fn parse(path: PathBuf) -> Option<Self> {
        let name = path.file_name()?.to_str()?;
        let rest = name.strip_prefix(PREFIX)?.strip_suffix(SUFFIX)?;
        let (day, replica) = rest.split_at_checked(DAY_LEN)?;
        let replica = replica.strip_prefix('-').filter(|r| !r.is_empty())?;
        humantime::parse_rfc3339(&format!("{day}T00:00:00Z")).ok()?;
        Some(Self {
            replica: replica.to_owned(),
            day: day.to_owned(),
            path,
        })
    }

    /// The file's day as a [`day_number`].
    pub(crate) fn day_number(&self) -> u64 {
        humantime::parse_rfc3339(&format!("{}T00:00:00Z", self.day)).map_or(0, day_number)
    }

    /// The file's name, for messages.
    #[must_use]
    pub fn name(&self) -> String {
        self.path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }
}

/// The trail files in `dir`, by replica, then day.
pub(crate) fn list(dir: &Path) -> std::io::Result<Vec<TrailFile>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_file()
            && let Some(file) = TrailFile::parse(entry.path())
        {
            files.push(file);
        }
    }
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_the_day_and_the_replica() {
        let file = TrailFile::parse(PathBuf::from(name("2026-01-31", "card-lookup-7f-x"))).unwrap();
        assert_eq!(
            (file.day.as_str(), file.replica.as_str()),
            ("2026-01-31", "card-lookup-7f-x")
        );
        assert_eq!(
            TrailFile::parse(PathBuf::from("audit-2026-13-01-a.jsonl")),
            None
        );
        assert_eq!(
            TrailFile::parse(PathBuf::from("audit-2026-01-01.jsonl")),
            None
        );
        assert_eq!(TrailFile::parse(PathBuf::from("notes.txt")), None);
        assert_eq!(day_name(file.day_number()), "2026-01-31");
        assert_eq!(day_of(SystemTime::UNIX_EPOCH), "1970-01-01");
        let leap_day = humantime::parse_rfc3339("2028-02-29T23:59:59.999Z").unwrap();
        assert_eq!(day_name(day_number(leap_day)), "2028-02-29");
        assert_eq!(
            day_number(leap_day + Duration::from_millis(1)),
            day_number(leap_day) + 1
        );
    }
}
