//! The BIN data's metrics: what is served (entries, version) and how reloads went. Each name
//! is defined here once, with its description.

use metrics::{counter, describe_counter, describe_gauge, gauge};

use super::index::BinIndex;

const INDEX_ENTRIES: &str = "cardlookup_bin_index_entries";
const DATA_INFO: &str = "cardlookup_data_info";
const RELOAD_SUCCESSFUL: &str = "cardlookup_data_last_reload_successful";
const RELOAD_SUCCESS_TIMESTAMP: &str = "cardlookup_data_last_reload_success_timestamp_seconds";
const RELOADS: &str = "cardlookup_data_reloads_total";
const WATCH_OK: &str = "cardlookup_data_watch_ok";

/// The `result` label of [`RELOADS`], in the order of [`ReloadResult`].
const RESULTS: [&str; 3] = ["success", "unchanged", "failure"];

/// Describes the metrics, publishes the size and version of the index first loaded as a
/// successful load, and creates the reload counters at 0, so that `increase()` sees their first
/// event. Call once the metrics recorder is installed.
pub fn record_loaded(index: &BinIndex) {
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
    record_index(index);
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
