//! The audit trail's metrics, each name defined here once.

use metrics::{Counter, Gauge, counter, describe_counter, describe_gauge, gauge};

use super::STALL_LIMIT;

const EVENTS_WRITTEN: &str = "cardlookup_audit_events_written_total";
const QUEUE_DEPTH: &str = "cardlookup_audit_queue_depth";
const BYTES_WRITTEN: &str = "cardlookup_audit_bytes_written_total";
const WRITE_ERRORS: &str = "cardlookup_audit_write_errors_total";
const EVENTS_DROPPED: &str = "cardlookup_audit_events_dropped_total";
const BLOCKED: &str = "cardlookup_audit_blocked_calls_total";
const WRITER_FAILING: &str = "cardlookup_audit_writer_failing";
const STALLS: &str = "cardlookup_audit_write_stalls_total";

/// Cached handles: the request path pays an atomic add, no lookup by name.
#[derive(Debug, Clone)]
pub(crate) struct AuditMetrics {
    pub(crate) written: Counter,
    pub(crate) queue_depth: Gauge,
    pub(crate) bytes: Counter,
    pub(crate) errors: Counter,
    /// `--audit-overflow drop` with the queue full.
    pub(crate) dropped_queue_full: Counter,
    /// `--audit-overflow drop` and a write that failed.
    pub(crate) dropped_write_error: Counter,
    /// `--audit-overflow block`: the call was refused, the queue still full after the wait or
    /// the writer failing.
    pub(crate) dropped_call_refused: Counter,
    /// Calls that waited for room in the queue (`--audit-overflow block`).
    pub(crate) blocked: Counter,
    /// 1 while writes fail or one has not returned within the stall limit.
    pub(crate) writer_failing: Gauge,
    /// Writes that had not returned within the stall limit.
    pub(crate) stalls: Counter,
}

impl AuditMetrics {
    pub(crate) fn new() -> Self {
        describe_counter!(EVENTS_WRITTEN, "Audit events written and synced to disk.");
        describe_gauge!(QUEUE_DEPTH, "Audit events waiting for the writer.");
        describe_counter!(BYTES_WRITTEN, "Bytes written to the audit files.");
        describe_counter!(
            WRITE_ERRORS,
            "Failed writes (or syncs) of the audit files; each is retried with --audit-overflow block."
        );
        describe_counter!(
            EVENTS_DROPPED,
            "Audit events not written, by reason: queue_full and write_error (--audit-overflow drop), call_refused (block: the call was answered UNAVAILABLE instead)."
        );
        describe_counter!(
            BLOCKED,
            "Calls that waited for room in the audit queue (--audit-overflow block)."
        );
        let stall_limit = STALL_LIMIT.as_secs_f64();
        describe_gauge!(
            WRITER_FAILING,
            format!(
                "1 while the audit writer's writes fail, or one has not returned for {stall_limit} s (a hung disk); 0 while they succeed. With --audit-overflow block the replica refuses card calls meanwhile."
            )
        );
        describe_counter!(
            STALLS,
            format!("Audit writes that had not returned after {stall_limit} s (a hung disk).")
        );
        Self {
            written: counter!(EVENTS_WRITTEN),
            queue_depth: gauge!(QUEUE_DEPTH),
            bytes: counter!(BYTES_WRITTEN),
            errors: counter!(WRITE_ERRORS),
            dropped_queue_full: counter!(EVENTS_DROPPED, "reason" => "queue_full"),
            dropped_write_error: counter!(EVENTS_DROPPED, "reason" => "write_error"),
            dropped_call_refused: counter!(EVENTS_DROPPED, "reason" => "call_refused"),
            blocked: counter!(BLOCKED),
            writer_failing: gauge!(WRITER_FAILING),
            stalls: counter!(STALLS),
        }
    }
}
