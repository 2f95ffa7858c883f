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

use crate::proto::cardlookup::admin::v1::admin_service_server::SERVICE_NAME as ADMIN_SERVICE_NAME;
use crate::proto::cardlookup::v1::card_lookup_service_server::SERVICE_NAME;

const STARTED: &str = "grpc_server_started_total";
const HANDLED: &str = "grpc_server_handled_total";
const HANDLING_SECONDS: &str = "grpc_server_handling_seconds";
const P99_TARGET: &str = "cardlookup_latency_p99_target_seconds";

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object a line, for log pipelines.
    Json,
}

/// Histogram bucket boundaries in seconds: fine steps from 50 microseconds, so a P99 far below
/// the target is still resolved, up to 10 s.
const BASE_BUCKETS: [f64; 18] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.000_75, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01,
    0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 10.0,
];

/// Starts logging to standard output. `RUST_LOG` filters (default `info`). h2's WARN lines are
/// left out whatever the filter: any peer can cause them (one per connection closed for too
/// many stream resets, a rapid-reset flood), and the connections are bounded elsewhere. Calling
/// it again, as tests do, keeps the first subscriber.
pub fn init_tracing(format: LogFormat) {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stdout().is_terminal());
    let no_peer_warnings = tracing_subscriber::filter::filter_fn(|metadata| {
        !(*metadata.level() == tracing::Level::WARN && metadata.target().starts_with("h2::"))
    });
    let _ = match format {
        LogFormat::Text => builder.finish().with(no_peer_warnings).try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .finish()
            .with(no_peer_warnings)
            .try_init(),
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
            gauge!(P99_TARGET).set(p99_target.as_secs_f64());
            handle
        })
        .clone()
}

fn describe() {
    describe_counter!(STARTED, "RPCs started on the server.");
    describe_counter!(
        HANDLED,
        "RPCs completed on the server, by gRPC status code."
    );
    describe_histogram!(
        HANDLING_SECONDS,
        metrics::Unit::Seconds,
        "Time from receiving a request to sending its response, by gRPC status code."
    );
    describe_gauge!(
        P99_TARGET,
        metrics::Unit::Seconds,
        "The configured 99th-percentile latency objective (--p99-target-ms)."
    );
}

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

/// Cached metric handles for the service's RPCs. Admission's call records are the one user
/// (`admission::calls`): every call is counted there, once.
#[derive(Debug)]
pub struct RpcMetrics {
    methods: [MethodMetrics; Method::ALL.len()],
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
                started: counter!(STARTED, &labels(method)),
                handled: std::array::from_fn(|_| OnceLock::new()),
            }),
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
                counter!(HANDLED, &labels),
                histogram!(HANDLING_SECONDS, &labels),
            )
        });
        handled.increment(1);
        seconds.record(elapsed.as_secs_f64());
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
