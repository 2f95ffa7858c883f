//! The BIN data's metrics: what is served (entries, version) and how reloads went. Each name
//! is defined here once, with its description.

use metrics::{counter, describe_counter, describe_gauge, gauge};

use super::index::BinIndex;
use super::load::SourceReport;

const INDEX_ENTRIES: &str = "cardlookup_bin_index_entries";
const DATA_INFO: &str = "cardlookup_data_info";
const RELOAD_SUCCESSFUL: &str = "cardlookup_data_last_reload_successful";
const RELOAD_SUCCESS_TIMESTAMP: &str = "cardlookup_data_last_reload_success_timestamp_seconds";
const RELOADS: &str = "cardlookup_data_reloads_total";
const WATCH_OK: &str = "cardlookup_data_watch_ok";
const SOURCE_INFO: &str = "cardlookup_data_source_info";
const PUBLISHED: &str = "cardlookup_data_published_timestamp_seconds";

/// The `result` label of [`RELOADS`], in the order of [`ReloadResult`].
const RESULTS: [&str; 3] = ["success", "unchanged", "failure"];

/// Describes the metrics, publishes the size and version of the index first loaded as a
/// successful load, and creates the reload counters at 0, so that `increase()` sees their first
/// event. Call once the metrics recorder is installed.
pub fn record_loaded(index: &BinIndex, sources: &[SourceReport]) {
    describe_gauge!(INDEX_ENTRIES, "BIN prefixes in the live index.");
    describe_gauge!(
        DATA_INFO,
        "1 for the version (content hash) of the BIN data being served; 0 for versions served before."
    );
    describe_gauge!(
        RELOAD_SUCCESSFUL,
        "1 if the last load or reload of the BIN data succeeded, 0 if it failed."
    );
    describe_gauge!(
        RELOAD_SUCCESS_TIMESTAMP,
        metrics::Unit::Seconds,
        "When the BIN data was last loaded or reloaded successfully (Unix time)."
    );
    describe_counter!(
        RELOADS,
        "BIN data reloads, by result: success, unchanged or failure."
    );
    describe_gauge!(
        WATCH_OK,
        "1 while every directory of the BIN data files is watched; 0 while one is gone (its files' changes are not seen until it is back)."
    );
    describe_gauge!(
        SOURCE_INFO,
        "1 for each file served, by file name (source) and the SHA-256 of its bytes; 0 for files served before."
    );
    describe_gauge!(
        PUBLISHED,
        metrics::Unit::Seconds,
        "When each file served was published (Unix time), from the manifest data sync keeps beside it; absent for files that came without one."
    );
    record_index(index);
    record_sources(&[], sources);
    for result in RESULTS {
        counter!(RELOADS, "result" => result).increment(0);
    }
    gauge!(RELOAD_SUCCESSFUL).set(1.0);
    gauge!(RELOAD_SUCCESS_TIMESTAMP).set(unix_now());
}

/// Publishes a new index in place of `previous`: the old version's info series drops to 0.
pub(super) fn record_index_replaced(previous: &BinIndex, current: &BinIndex) {
    if previous.version() != current.version() {
        gauge!(DATA_INFO, "version" => previous.version().to_owned()).set(0.0);
    }
    record_index(current);
}

#[allow(clippy::cast_precision_loss)] // exact below 2^52 entries
fn record_index(index: &BinIndex) {
    gauge!(INDEX_ENTRIES).set(index.len() as f64);
    gauge!(DATA_INFO, "version" => index.version().to_owned()).set(1.0);
}

/// Publishes the digests (and publication times) of `current` in place of `previous`'s.
pub(super) fn record_sources(previous: &[SourceReport], current: &[SourceReport]) {
    for old in previous {
        let kept = current
            .iter()
            .any(|new| new.name == old.name && new.sha256 == old.sha256);
        if !kept {
            gauge!(SOURCE_INFO, "source" => label(&old.name), "sha256" => old.sha256.clone())
                .set(0.0);
        }
    }
    for source in current {
        gauge!(SOURCE_INFO, "source" => label(&source.name), "sha256" => source.sha256.clone())
            .set(1.0);
        if let Some(published) = source.published_at {
            let at = published
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64());
            gauge!(PUBLISHED, "source" => label(&source.name)).set(at);
        }
    }
}

/// A source's `source` label: a file's name without its directory (the name a data sync
/// manifest gives it), the embedded table's description.
fn label(name: &str) -> String {
    std::path::Path::new(name).file_name().map_or_else(
        || name.to_owned(),
        |file| file.to_string_lossy().into_owned(),
    )
}

/// How a reload ended, as [`RELOADS`] counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ReloadResult {
    Success,
    /// The files had not changed.
    Unchanged,
    Failure,
}

/// Counts a reload and sets the last-reload gauges, as Prometheus does for its own config.
pub(super) fn record_reload(result: ReloadResult) {
    counter!(RELOADS, "result" => RESULTS[result as usize]).increment(1);
    let failed = result == ReloadResult::Failure;
    gauge!(RELOAD_SUCCESSFUL).set(if failed { 0.0 } else { 1.0 });
    if !failed {
        gauge!(RELOAD_SUCCESS_TIMESTAMP).set(unix_now());
    }
}

/// Whether every directory of the watched BIN data files is being watched.
pub fn record_watching(ok: bool) {
    gauge!(WATCH_OK).set(if ok { 1.0 } else { 0.0 });
}

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}
