//! `--audit-retention`: whole files of a replica older than the retention are deleted, oldest
//! first, and only while their chain verifies. A file that does not verify is kept, with every
//! file after it, and logged: evidence of tampering is not deleted.

use std::path::Path;
use std::time::{Duration, SystemTime};

use super::chain::Chain;
use super::file::{self, day_of};
use super::verify::{Broken, verify_file};

/// What a pruning did.
#[derive(Debug, Default)]
pub(crate) struct Pruned {
    pub(crate) deleted: Vec<String>,
    /// The first old file that did not verify (kept, as are the files after it).
    pub(crate) broken: Option<Broken>,
}

/// Deletes `replica`'s files in `dir` whose day ended more than `retention` before `now`,
/// oldest first, each only once it verified chained after the one before.
pub(crate) fn prune(
    dir: &Path,
    replica: &str,
    chain: &Chain,
    retention: Duration,
    now: SystemTime,
) -> std::io::Result<Pruned> {
    let Some(cutoff) = now.checked_sub(retention).map(day_of) else {
        return Ok(Pruned::default());
    };
    let mut pruned = Pruned::default();
    let mut prev = None;
    let files: Vec<_> = file::list(dir)?
        .into_iter()
        .filter(|f| f.replica == replica)
        .collect();
    // The newest file is never old enough while it is being written; and it is kept so that
    // the chain goes on from it.
    let old = files
        .iter()
        .take(files.len().saturating_sub(1))
        .take_while(|f| f.day < cutoff);
    for file in old {
        match verify_file(file, prev.as_ref(), false, chain)? {
            Ok(summary) => {
                std::fs::remove_file(&file.path)?;
                pruned.deleted.push(file.name());
                prev = Some((summary.file.name(), summary.last_hash));
            }
            Err(broken) => {
                pruned.broken = Some(broken);
                break;
            }
        }
    }
    Ok(pruned)
}
