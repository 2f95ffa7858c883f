//! Logs (tracing) and metrics (Prometheus text exposition).
//!
//! gRPC metrics use the names of go-grpc-prometheus, which existing dashboards and alerts
//! expect: `grpc_server_started_total`, `grpc_server_handled_total` and the
//! `grpc_server_handling_seconds` histogram, labelled `grpc_type`, `grpc_service`,
//! `grpc_method` (and `grpc_code` once handled). Handles are created once and cached, so
//! recording a call costs a few atomic operations and no lookup by name.
//! Labels never hold request data: card numbers cannot reach a metric.

use std::io::IsTerminal;
use std::sync::OnceLock;
use std::time::Duration;

use metrics::{
    Counter, Histogram, counter, describe_counter, describe_gauge, describe_histogram, gauge,
    histogram,
};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;

use crate::bins::BinIndex;
use crate::config::LogFormat;

/// The gRPC service name, as metrics label it.
pub const SERVICE_NAME: &str = "cardlookup.v1.CardLookupService";
const HANDLING_SECONDS: &str = "grpc_server_handling_seconds";

/// Histogram bucket boundaries in seconds: fine steps from 50 microseconds, so a P99 far below
/// the target is still resolved, up to 10 s.
const BASE_BUCKETS: [f64; 18] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.000_75, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01,
    0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 10.0,
];

/// Starts logging to standard output. `RUST_LOG` filters (default `info`). Calling it again,
/// as tests do, keeps the first subscriber.
pub fn init_tracing(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stdout().is_terminal());
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

/// The bucket boundaries for a P99 target: the base buckets with the target added.
#[must_use]
pub fn latency_buckets(p99_target: Duration) -> Vec<f64> {
    let mut buckets = BASE_BUCKETS.to_vec();
    buckets.push(p99_target.as_secs_f64());
    buckets.sort_by(f64::total_cmp);
    buckets.dedup_by(|a, b| (*a - *b).abs() < 1e-9);
    buckets
}

/// Installs the process-wide Prometheus recorder, once; later calls return the same handle
/// (with the buckets of the first call's target).
///
/// # Panics
/// If another metrics recorder was installed by someone else first.
pub fn install_metrics(p99_target: Duration) -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let handle = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full(HANDLING_SECONDS.to_owned()),
                    &latency_buckets(p99_target),
                )
                .expect("the bucket list is not empty")
                .install_recorder()
                .expect("no other metrics recorder is installed");
            describe();
            gauge!("cardlookup_latency_p99_target_seconds").set(p99_target.as_secs_f64());
            handle
        })
        .clone()
}

fn describe() {
    describe_counter!("grpc_server_started_total", "RPCs started on the server.");
    describe_counter!(
        "grpc_server_handled_total",
        "RPCs completed on the server, by gRPC status code."
    );
    describe_histogram!(
        HANDLING_SECONDS,
        metrics::Unit::Seconds,
        "Time from receiving a request to sending its response, by gRPC status code."
    );
    describe_gauge!(
        "cardlookup_latency_p99_target_seconds",
        metrics::Unit::Seconds,
        "The configured 99th-percentile latency objective (--p99-target-ms)."
    );
    describe_gauge!(
        "cardlookup_bin_index_entries",
        "BIN prefixes in the live index."
    );
    describe_gauge!(
        "cardlookup_data_info",
        "1 for the version (content hash) of the BIN data being served; 0 for versions served before."
    );
    describe_counter!(
        "cardlookup_bin_lookups_total",
        "LookupBin answers, by whether the BIN data had the BIN."
    );
    describe_counter!(
        "cardlookup_inspect_items_total",
        "Numbers answered on Inspect streams."
    );
    describe_counter!(
        "cardlookup_requests_shed_total",
        "Calls refused at once with RESOURCE_EXHAUSTED because the server was at its concurrency limit."
    );
    describe_counter!(
        "cardlookup_requests_rate_limited_total",
        "Calls refused with RESOURCE_EXHAUSTED by a client class's rate limit."
    );
    describe_counter!(
        "cardlookup_card_testing_suspected_total",
        "Clients flagged by card-testing detection, by class and reason (bin_walk, luhn_failures); once a window each."
    );
    describe_counter!(
        "cardlookup_tls_handshake_failures_total",
        "TLS handshakes that failed (reason refused: no or a wrong client certificate, bad TLS; or timeout)."
    );
    describe_counter!(
        "cardlookup_handler_panics_total",
        "Calls whose handler panicked; each got INTERNAL and the server went on."
    );
    describe_gauge!(
        "cardlookup_data_last_reload_successful",
        "1 if the last load or reload of the BIN data succeeded, 0 if it failed."
    );
    describe_gauge!(
        "cardlookup_data_last_reload_success_timestamp_seconds",
        metrics::Unit::Seconds,
        "When the BIN data was last loaded or reloaded successfully (Unix time)."
    );
    describe_counter!(
        "cardlookup_data_reloads_total",
        "BIN data reloads, by result: success, unchanged or failure."
    );
}

/// Publishes the size and version of the index first loaded, as a successful load; and
/// creates the reload counters at 0, so that `increase()` sees their first event.
pub fn record_loaded(index: &BinIndex) {
    record_index(index);
    for result in ["success", "unchanged", "failure"] {
        counter!("cardlookup_data_reloads_total", "result" => result).increment(0);
    }
    gauge!("cardlookup_data_last_reload_successful").set(1.0);
    gauge!("cardlookup_data_last_reload_success_timestamp_seconds").set(unix_now());
}

/// Publishes a new index in place of `previous`: the old version's info series drops to 0.
pub fn record_index_replaced(previous: &BinIndex, current: &BinIndex) {
    if previous.version() != current.version() {
        gauge!("cardlookup_data_info", "version" => previous.version().to_owned()).set(0.0);
    }
    record_index(current);
}

#[allow(clippy::cast_precision_loss)] // exact below 2^52 entries
fn record_index(index: &BinIndex) {
    gauge!("cardlookup_bin_index_entries").set(index.len() as f64);
    gauge!("cardlookup_data_info", "version" => index.version().to_owned()).set(1.0);
}

/// How a data reload ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReloadResult {
    Success,
    /// The files had not changed.
    Unchanged,
    Failure,
}

/// Counts a reload and sets the last-reload gauges, as Prometheus does for its own config.
pub fn record_reload(result: ReloadResult) {
    let label = match result {
        ReloadResult::Success => "success",
        ReloadResult::Unchanged => "unchanged",
        ReloadResult::Failure => "failure",
    };
    counter!("cardlookup_data_reloads_total", "result" => label).increment(1);
    let failed = result == ReloadResult::Failure;
    gauge!("cardlookup_data_last_reload_successful").set(if failed { 0.0 } else { 1.0 });
    if !failed {
        gauge!("cardlookup_data_last_reload_success_timestamp_seconds").set(unix_now());
    }
}

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// The admin gRPC service name, as metrics label it.
pub const ADMIN_SERVICE_NAME: &str = "cardlookup.admin.v1.AdminService";

/// The RPCs served, as metrics and logs name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Validate,
    LookupBin,
    MaskCard,
    Inspect,
    GetIndexInfo,
    Reload,
}

impl Method {
    const ALL: [Self; 6] = [
        Self::Validate,
        Self::LookupBin,
        Self::MaskCard,
        Self::Inspect,
        Self::GetIndexInfo,
        Self::Reload,
    ];

    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Validate => "Validate",
            Self::LookupBin => "LookupBin",
            Self::MaskCard => "MaskCard",
            Self::Inspect => "Inspect",
            Self::GetIndexInfo => "GetIndexInfo",
            Self::Reload => "Reload",
        }
    }

    /// The method a gRPC request path (`/package.Service/Method`) calls, if it is one of ours.
    #[must_use]
    pub fn from_path(path: &str) -> Option<Self> {
        // Prefix comparisons rather than a search for the separator: this runs on every call.
        let path = path.strip_prefix('/')?;
        Self::ALL.into_iter().find(|m| {
            path.strip_prefix(m.service())
                .and_then(|rest| rest.strip_prefix('/'))
                == Some(m.name())
        })
    }

    #[must_use]
    pub const fn service(self) -> &'static str {
        match self {
            Self::Validate | Self::LookupBin | Self::MaskCard | Self::Inspect => SERVICE_NAME,
            Self::GetIndexInfo | Self::Reload => ADMIN_SERVICE_NAME,
        }
    }
}

/// gRPC status codes run from 0 (OK) to 16 (UNAUTHENTICATED).
const CODES: usize = 17;

#[derive(Debug)]
struct MethodMetrics {
    started: Counter,
    /// Per status code, created on first use so that unused codes make no series.
    handled: [OnceLock<(Counter, Histogram)>; CODES],
}

/// Cached metric handles for the service's RPCs.
#[derive(Debug)]
pub struct RpcMetrics {
    methods: [MethodMetrics; Method::ALL.len()],
    bin_found: Counter,
    bin_not_found: Counter,
    inspected_items: Counter,
}

impl Default for RpcMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl RpcMetrics {
    /// Creates the handles; install the recorder first ([`install_metrics`]).
    #[must_use]
    pub fn new() -> Self {
        Self {
            methods: Method::ALL.map(|method| MethodMetrics {
                started: counter!("grpc_server_started_total", &labels(method)),
                handled: std::array::from_fn(|_| OnceLock::new()),
            }),
            bin_found: counter!("cardlookup_bin_lookups_total", "result" => "found"),
            bin_not_found: counter!("cardlookup_bin_lookups_total", "result" => "not_found"),
            inspected_items: counter!("cardlookup_inspect_items_total"),
        }
    }

    pub fn started(&self, method: Method) {
        self.methods[method as usize].started.increment(1);
    }

    pub fn handled(&self, method: Method, code: tonic::Code, elapsed: Duration) {
        let index = (code as usize).min(CODES - 1);
        let (handled, seconds) = self.methods[method as usize].handled[index].get_or_init(|| {
            let mut labels = labels(method).to_vec();
            labels.push(("grpc_code", code_name(code)));
            (
                counter!("grpc_server_handled_total", &labels),
                histogram!(HANDLING_SECONDS, &labels),
            )
        });
        handled.increment(1);
        seconds.record(elapsed.as_secs_f64());
    }

    /// Counts the items of an Inspect batch and the BIN lookups made for them.
    pub fn inspected(&self, items: usize, lookups: BinLookups) {
        self.inspected_items.increment(items as u64);
        self.bin_found.increment(lookups.found);
        self.bin_not_found.increment(lookups.not_found);
    }

    pub fn bin_lookup(&self, found: bool) {
        if found {
            self.bin_found.increment(1);
        } else {
            self.bin_not_found.increment(1);
        }
    }
}

/// BIN lookups tallied over a batch, recorded with one update per counter.
#[derive(Debug, Default, Clone, Copy)]
pub struct BinLookups {
    found: u64,
    not_found: u64,
}

impl BinLookups {
    pub fn count(&mut self, found: bool) {
        if found {
            self.found += 1;
        } else {
            self.not_found += 1;
        }
    }
}

fn labels(method: Method) -> [(&'static str, &'static str); 3] {
    [
        (
            "grpc_type",
            if method == Method::Inspect {
                "bidi_stream"
            } else {
                "unary"
            },
        ),
        ("grpc_service", method.service()),
        ("grpc_method", method.name()),
    ]
}

/// The status code as go-grpc-prometheus spells it in `grpc_code` (and logs do too).
#[must_use]
pub fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code;
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "Canceled",
        Code::Unknown => "Unknown",
        Code::InvalidArgument => "InvalidArgument",
        Code::DeadlineExceeded => "DeadlineExceeded",
        Code::NotFound => "NotFound",
        Code::AlreadyExists => "AlreadyExists",
        Code::PermissionDenied => "PermissionDenied",
        Code::ResourceExhausted => "ResourceExhausted",
        Code::FailedPrecondition => "FailedPrecondition",
        Code::Aborted => "Aborted",
        Code::OutOfRange => "OutOfRange",
        Code::Unimplemented => "Unimplemented",
        Code::Internal => "Internal",
        Code::Unavailable => "Unavailable",
        Code::DataLoss => "DataLoss",
        Code::Unauthenticated => "Unauthenticated",
    }
}

/// The HTTP app that serves `GET /metrics` in the Prometheus text format.
pub fn metrics_app(handle: PrometheusHandle) -> axum::Router {
    axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let handle = handle.clone();
            async move {
                (
                    [(
                        axum::http::header::CONTENT_TYPE,
                        "text/plain; version=0.0.4; charset=utf-8",
                    )],
                    handle.render(),
                )
            }
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::float_cmp)] // the boundaries are the literals themselves
    fn buckets_include_the_target_and_resolve_below_it() {
        let buckets = latency_buckets(Duration::from_micros(4_200));
        assert!(buckets.contains(&0.0042));
        assert_eq!(buckets[0], 0.000_05);
        assert!(buckets.windows(2).all(|w| w[0] < w[1]));
        assert!(buckets.iter().filter(|&&b| b < 0.0042).count() >= 8);
        // A target already on the list is not repeated.
        assert_eq!(
            latency_buckets(Duration::from_millis(5)).len(),
            BASE_BUCKETS.len()
        );
    }

    #[test]
    fn methods_are_found_by_their_request_path() {
        for method in Method::ALL {
            let path = format!("/{}/{}", method.service(), method.name());
            assert_eq!(Method::from_path(&path), Some(method), "{path}");
        }
        for other in [
            "",
            "/",
            "/cardlookup.v1.CardLookupService/",
            "/cardlookup.v1.CardLookupService/Validatex",
            "/cardlookup.v1.CardLookupService/Validate/",
            "cardlookup.v1.CardLookupService/Validate",
            "/cardlookup.v1.CardLookupServiceValidate",
            "/cardlookup.admin.v1.AdminService/Validate",
            "/grpc.health.v1.Health/Check",
        ] {
            assert_eq!(Method::from_path(other), None, "{other}");
        }
    }

    #[test]
    fn code_names_follow_go_grpc_prometheus() {
        assert_eq!(code_name(tonic::Code::Ok), "OK");
        assert_eq!(code_name(tonic::Code::InvalidArgument), "InvalidArgument");
        assert_eq!(code_name(tonic::Code::Cancelled), "Canceled");
    }
}
