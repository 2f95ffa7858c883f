//! The updater's metrics, on its own `/metrics` (`--metrics-listen`): how polls end, and which
//! manifest it last saw and last applied. Each name is defined here once.
//!
//! `cardlookup_sync_file_info{source, sha256}` has the labels of the service's
//! `cardlookup_data_source_info`, so that a rule can compare what a pod's updater applied with
//! what its service serves.

use std::time::SystemTime;

use metrics::{counter, describe_counter, describe_gauge, gauge};

use crate::bins::manifest::Manifest;

const POLLS: &str = "cardlookup_sync_polls_total";
const FAILURES: &str = "cardlookup_sync_failures_total";
const MANIFEST_INFO: &str = "cardlookup_sync_manifest_info";
const PUBLISHED: &str = "cardlookup_sync_manifest_published_timestamp_seconds";
const FILE_INFO: &str = "cardlookup_sync_file_info";
const LAST_SUCCESS: &str = "cardlookup_sync_last_success_timestamp_seconds";

/// The `result` label of [`POLLS`].
const RESULTS: [&str; 4] = ["applied", "unchanged", "not_modified", "failure"];
/// The `reason` label of [`FAILURES`].
const REASONS: [&str; 6] = [
    "manifest_download",
    "manifest",
    "download",
    "digest",
    "check",
    "write",
];

/// Describes the metrics and creates the counters at 0. Call once the recorder is installed.
pub fn describe() {
    describe_counter!(
        POLLS,
        "Polls of the origin, by result: applied, unchanged, not_modified (HTTP 304) or failure."
    );
    describe_counter!(
        FAILURES,
        "Polls that left the served set as it was, by reason: manifest_download, manifest, download, digest, check, write."
    );
    describe_gauge!(
        MANIFEST_INFO,
        "1 for the SHA-256 of the manifest last seen (state=seen) and last applied (state=applied); 0 for earlier ones."
    );
    describe_gauge!(
        PUBLISHED,
        metrics::Unit::Seconds,
        "The published_at of the manifest last seen and last applied (Unix time)."
    );
    describe_gauge!(
        FILE_INFO,
        "1 for each file of the manifest last applied, by file name and the SHA-256 of its bytes; 0 for files applied before."
    );
    describe_gauge!(
        LAST_SUCCESS,
        metrics::Unit::Seconds,
        "When a poll last ended with the origin's set served (applied, unchanged or not modified)."
    );
    for result in RESULTS {
        counter!(POLLS, "result" => result).increment(0);
    }
    for reason in REASONS {
        counter!(FAILURES, "reason" => reason).increment(0);
    }
}

/// Counts a poll; `reason` for a failure.
pub(super) fn record_poll(result: &'static str, reason: Option<&'static str>) {
    counter!(POLLS, "result" => result).increment(1);
    match reason {
        Some(reason) => counter!(FAILURES, "reason" => reason).increment(1),
        None => gauge!(LAST_SUCCESS).set(unix(SystemTime::now())),
    }
}

/// A manifest seen (`applied` false) or applied, in place of `previous` (its digest, and for
/// an applied one its files).
pub(super) fn record_manifest(
    state: &'static str,
    digest: &str,
    manifest: &Manifest,
    previous: Option<(&str, &Manifest)>,
) {
    if let Some((old_digest, old)) = previous {
        if old_digest != digest {
            gauge!(MANIFEST_INFO, "state" => state, "sha256" => old_digest.to_owned()).set(0.0);
        }
        if state == "applied" {
            for file in &old.files {
                gauge!(FILE_INFO, "source" => file.name.clone(), "sha256" => file.sha256.clone())
                    .set(0.0);
            }
        }
    }
    gauge!(MANIFEST_INFO, "state" => state, "sha256" => digest.to_owned()).set(1.0);
    if let Some(published) = manifest.published_at {
        gauge!(PUBLISHED, "state" => state).set(unix(published));
    }
    if state == "applied" {
        for file in &manifest.files {
            gauge!(FILE_INFO, "source" => file.name.clone(), "sha256" => file.sha256.clone())
                .set(1.0);
        }
    }
}

fn unix(at: SystemTime) -> f64 {
    at.duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}
