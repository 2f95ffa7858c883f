//! Configuration: command-line flags with environment-variable twins, parsed once into a
//! validated [`Config`]. Anything wrong stops the process before it binds a port.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Parser;
use zeroize::Zeroizing;

use crate::admission::quota::{FailureMode, QuotaRule, QuotaSettings};
use crate::admission::{AdmissionRules, RateLimitRule, TrustedNetwork};
use crate::api::inspect::{MAX_INSPECT_ANSWER_BYTES, MIN_INSPECT_ANSWER_BYTES};
use crate::audit::{AuditSettings, Overflow};
use crate::bins::{self, DataSource, FileProblem, Format, LoadOptions};
use crate::card::{FingerprintKeys, TestCards};
use crate::card_testing::CardTestingConfig;
use crate::connection_limits::ConnectionCaps;
use crate::shared_store::RedisTarget;
use crate::telemetry::LogFormat;
use crate::tls::TlsFiles;

/// The longest `--inspect-idle-timeout` and `--inspect-max-life`: a day is far past any batch
/// job's need, and keeps the streams' deadlines within the clock's range.
const MAX_INSPECT_DURATION: Duration = Duration::from_secs(24 * 60 * 60);

/// The server's flags. Every flag can also be set by the environment variable shown in `--help`.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "card-lookup",
    version,
    about = "gRPC service that validates card numbers, finds their issuer by BIN and masks them"
)]
pub struct Args {
    /// Address the gRPC service listens on.
    #[arg(long, env = "CARD_LOOKUP_LISTEN", default_value = "127.0.0.1:50051")]
    pub listen: SocketAddr,

    /// Address of the Prometheus endpoint (GET /metrics).
    #[arg(
        long,
        env = "CARD_LOOKUP_METRICS_LISTEN",
        default_value = "127.0.0.1:9090"
    )]
    pub metrics_listen: SocketAddr,

    /// BIN table file (CSV, optionally gzip-compressed, in any supported format), loaded on top
    /// of the embedded data: its entries win for the same BIN. Repeat the flag (or separate
    /// paths with commas in the variable) for several files; later files win over earlier
    /// ones. The files are watched and reloaded when they change, and on SIGHUP.
    #[arg(long, env = "CARD_LOOKUP_BIN_DATA", value_delimiter = ',')]
    pub bin_data: Vec<PathBuf>,

    /// The format of the --bin-data files: cardlookup, bin-list-data, cn-four-column or
    /// binlist-ranges. Detected from each file's header when not given.
    #[arg(long, env = "CARD_LOOKUP_BIN_DATA_FORMAT")]
    pub bin_data_format: Option<Format>,

    /// Serve only the --bin-data files, without the embedded data underneath.
    #[arg(long, env = "CARD_LOOKUP_NO_DEFAULT_DATA")]
    pub no_default_data: bool,

    /// Load the good rows of a file with bad ones (counting what was skipped) instead of
    /// refusing the whole file.
    #[arg(long, env = "CARD_LOOKUP_SKIP_INVALID_ROWS")]
    pub skip_invalid_rows: bool,

    /// Do not watch the --bin-data files (SIGHUP and the admin service still reload).
    #[arg(long, env = "CARD_LOOKUP_NO_WATCH")]
    pub no_watch: bool,

    /// Address of the admin service (cardlookup.admin.v1.AdminService: index info, reload).
    /// Off unless given; keep it where payment clients cannot reach it.
    #[arg(long, env = "CARD_LOOKUP_ADMIN_LISTEN")]
    pub admin_listen: Option<SocketAddr>,

    /// Latency objective for the 99th percentile, in milliseconds. Exported as a gauge and used
    /// as a histogram bucket boundary, so dashboards and alerts can compare against it.
    #[arg(long, env = "CARD_LOOKUP_P99_TARGET_MS", default_value_t = 5.0)]
    pub p99_target_ms: f64,

    /// Log line format.
    #[arg(long, env = "CARD_LOOKUP_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// PEM certificate chain for TLS on the gRPC port (with --tls-key). Without it the port is
    /// plaintext, for local use. Reloaded when the file changes.
    #[arg(long, env = "CARD_LOOKUP_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key for --tls-cert.
    #[arg(long, env = "CARD_LOOKUP_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// PEM CA certificates: clients must present a certificate signed by one (mutual TLS).
    /// Its common name (else its subject) is then the client's identity for rate limits.
    #[arg(long, env = "CARD_LOOKUP_TLS_CLIENT_CA", requires = "tls_cert")]
    pub tls_client_ca: Option<PathBuf>,

    /// Calls handled at once, over all connections; past it, calls are refused at once with
    /// RESOURCE_EXHAUSTED rather than queued.
    #[arg(
        long,
        env = "CARD_LOOKUP_MAX_CONCURRENT_REQUESTS",
        default_value_t = 1024
    )]
    pub max_concurrent_requests: usize,

    /// A per-client rate limit for a class of clients: CLASS=RATE[:ID,ID...], RATE as N/s,
    /// N/m, N/h or N/d (exact: 90/m is one call every 667 ms, up to 90 at once). Clients are identified by mTLS certificate common name, else (from a network named by
    /// --trust-client-id-from) the x-client-id header, else IP address (an IPv6 caller by its
    /// /64); `default` applies to clients no rule names. Repeatable; no limit
    /// unless given. Example: --rate-limit default=200/s --rate-limit checkout=5000/s:checkout-svc
    #[arg(long, env = "CARD_LOOKUP_RATE_LIMIT", value_delimiter = ';')]
    pub rate_limit: Vec<RateLimitRule>,

    /// Card-testing detection: flag a client that sends more distinct BINs than this in a
    /// minute (0 turns the check off).
    #[arg(
        long,
        env = "CARD_LOOKUP_CARD_TESTING_MAX_BINS",
        default_value_t = 1000
    )]
    pub card_testing_max_bins: usize,

    /// Card-testing detection: flag a client that sends more distinct cards (whole numbers
    /// that pass the Luhn check, to Validate or LookupBin) than this in a minute: trying
    /// generated or stolen numbers, often all in one BIN, which the BIN count does not see.
    /// 0 (the default) turns the check off: set it for clients that act for one shopper or a
    /// small shop, not for a payment service whose every call carries another card. Counted
    /// across replicas (--redis-url) only when they share a --fingerprint-key-file.
    #[arg(long, env = "CARD_LOOKUP_CARD_TESTING_MAX_CARDS", default_value_t = 0)]
    pub card_testing_max_cards: usize,

    /// Card-testing detection: flag a client when more than this share of the whole numbers
    /// it validated in a minute fail the Luhn check, the share taken of at least
    /// --card-testing-min-validations numbers (so, with the defaults, once more than 25 of them
    /// fail and more than half).
    #[arg(
        long,
        env = "CARD_LOOKUP_CARD_TESTING_MAX_LUHN_FAILURE_RATIO",
        default_value_t = 0.5
    )]
    pub card_testing_max_luhn_failure_ratio: f64,

    /// See --card-testing-max-luhn-failure-ratio.
    #[arg(
        long,
        env = "CARD_LOOKUP_CARD_TESTING_MIN_VALIDATIONS",
        default_value_t = 50
    )]
    pub card_testing_min_validations: u32,

    /// Refuse the calls of a client flagged for card testing (PERMISSION_DENIED) for a
    /// minute, rather than only logging and counting it.
    #[arg(long, env = "CARD_LOOKUP_CARD_TESTING_REFUSE")]
    pub card_testing_refuse: bool,

    /// The longest a call may take; a shorter grpc-timeout from the caller wins.
    #[arg(long, env = "CARD_LOOKUP_REQUEST_TIMEOUT", default_value = "1s", value_parser = humantime::parse_duration)]
    pub request_timeout: Duration,

    /// On SIGTERM or SIGINT, how long in-flight calls may take to finish before the process
    /// exits anyway ("10s", "500ms", "1m").
    #[arg(long, env = "CARD_LOOKUP_SHUTDOWN_GRACE", default_value = "10s", value_parser = humantime::parse_duration)]
    pub shutdown_grace: Duration,

    /// Calls one client may have in flight at once (Inspect streams included), so that no
    /// client can hold every place of --max-concurrent-requests; past it, its calls get
    /// RESOURCE_EXHAUSTED. Default: a quarter of --max-concurrent-requests.
    #[arg(long, env = "CARD_LOOKUP_MAX_CONCURRENT_REQUESTS_PER_CLIENT")]
    pub max_concurrent_requests_per_client: Option<usize>,

    /// Networks whose callers' x-client-id header names the client (for rate limits, the
    /// per-client share and card-testing detection): a gateway or service-mesh sidecar that
    /// sets it, an internal network of known callers. Comma-separated: 10.0.0.0/8,fd00::/8,
    /// 127.0.0.1. From other addresses the header only labels calls in logs, and the address is
    /// the client; a client certificate (mutual TLS) always wins.
    #[arg(long, env = "CARD_LOOKUP_TRUST_CLIENT_ID_FROM", value_delimiter = ',')]
    pub trust_client_id_from: Vec<TrustedNetwork>,

    /// Clients whose state (rate-limit bucket, calls in flight, card-testing window) is kept
    /// at once; past it the least recently seen are forgotten, so a flood of new addresses
    /// costs bounded memory.
    #[arg(
        long,
        env = "CARD_LOOKUP_MAX_TRACKED_CLIENTS",
        default_value_t = 10_000
    )]
    pub max_tracked_clients: usize,

    /// How long an Inspect stream may wait for its client's next request before the server ends
    /// it (DEADLINE_EXCEEDED), freeing its concurrency place (above 0, at most 24h). Default
    /// 60s: a batch job sends its next batch within milliseconds of reading an answer, and a
    /// minute covers a pause to fetch more work, while a stream left open holds its place no
    /// longer than that.
    #[arg(long, env = "CARD_LOOKUP_INSPECT_IDLE_TIMEOUT", default_value = "60s", value_parser = humantime::parse_duration)]
    pub inspect_idle_timeout: Duration,

    /// The longest an Inspect stream may live: past it, the server ends it (UNAVAILABLE) after
    /// the answer in progress, and the client opens a new stream for the batches not yet
    /// answered (above 0, at most 24h). Default 10m: at about a million cards a second a stream
    /// checks hundreds of millions of cards in that time, and new replicas get their share of
    /// batch jobs within minutes.
    #[arg(long, env = "CARD_LOOKUP_INSPECT_MAX_LIFE", default_value = "10m", value_parser = humantime::parse_duration)]
    pub inspect_max_life: Duration,

    /// The largest Inspect response, in bytes encoded (1024 to 4194304). Default 4194304 (4 MiB),
    /// the most a gRPC client accepts unless told otherwise; lower it for clients that accept
    /// less. A request whose answers would not fit ends the stream with OUT_OF_RANGE.
    #[arg(
        long,
        env = "CARD_LOOKUP_INSPECT_MAX_ANSWER_BYTES",
        default_value_t = MAX_INSPECT_ANSWER_BYTES
    )]
    pub inspect_max_answer_bytes: usize,

    /// Connections each port (gRPC, admin, metrics) keeps open at once; a connection past it is
    /// closed at once. Default 10,000: far more than a service's callers keep open, and, for the
    /// three ports together, well below the usual container open-file limit (1,048,576), so
    /// that the process never runs out of file descriptors. Keep three times it below
    /// `ulimit -n`.
    #[arg(long, env = "CARD_LOOKUP_MAX_CONNECTIONS", default_value_t = 10_000)]
    pub max_connections: usize,

    /// Connections one remote address may keep open at once on each port; one past it is
    /// closed at once. Default 256: a client process keeps a few connections, and one address
    /// cannot take all of --max-connections. Raise it when many clients share one address
    /// (a proxy or NAT in front of the service).
    #[arg(
        long,
        env = "CARD_LOOKUP_MAX_CONNECTIONS_PER_ADDRESS",
        default_value_t = 256
    )]
    pub max_connections_per_address: usize,

    /// How long a new connection may take to start: to finish the TLS handshake and send the
    /// HTTP/2 preface (gRPC and admin ports), to send its request headers (metrics port).
    /// Connections that do not are closed. Default 10s: clients need milliseconds, and a
    /// silent connection holds a file descriptor no longer than this.
    #[arg(long, env = "CARD_LOOKUP_CONNECTION_PREFACE_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub connection_preface_timeout: Duration,

    /// The longest a gRPC or HTTP/JSON connection is kept: past it (within 10% either side,
    /// drawn once a process so that replicas do not all close together) the server sends GOAWAY
    /// (an HTTP/1.1 connection is closed after its answer), clients reconnect, and calls in
    /// flight have --max-connection-age-grace to finish. Default 5m: new
    /// replicas get their share of long-lived clients within minutes, and a client that stops
    /// reading an Inspect stream's answers holds it no longer.
    #[arg(long, env = "CARD_LOOKUP_MAX_CONNECTION_AGE", default_value = "5m", value_parser = humantime::parse_duration)]
    pub max_connection_age: Duration,

    /// After --max-connection-age, how long calls in flight on the connection may take before it
    /// is closed anyway. Default 30s: far longer than any unary call.
    #[arg(long, env = "CARD_LOOKUP_MAX_CONNECTION_AGE_GRACE", default_value = "30s", value_parser = humantime::parse_duration)]
    pub max_connection_age_grace: Duration,

    /// Address of a plaintext port that serves only the gRPC health service
    /// (grpc.health.v1.Health), with the gRPC port's status: for the kubelet's gRPC probes
    /// when the gRPC port requires client certificates. Off unless given.
    #[arg(long, env = "CARD_LOOKUP_HEALTH_LISTEN")]
    pub health_listen: Option<SocketAddr>,
    /// How often the --bin-data files are checked for a change the file watcher missed (on
    /// network file systems it sees only the node's own writes): a stat of each file, and a
    /// reload only when one differs. 0 turns it off. Default 60s.
    #[arg(long, env = "CARD_LOOKUP_DATA_RECHECK_INTERVAL", default_value = "60s", value_parser = humantime::parse_duration)]
    pub data_recheck_interval: Duration,
    /// A quota shared by every replica, counted in Redis (--redis-url): NAME=RATE:KEY, RATE as
    /// for --rate-limit (exact to the call across replicas under 2,000 calls a second: see
    /// --quota-exact), KEY `client` (the client identity of --rate-limit) or `subject` (the end
    /// user the call is about, from the x-cardlookup-subject metadata; calls without it are not
    /// counted, only tallied). Repeatable (`;` between rules in the variable). Example:
    /// --quota per-shopper=20/h:subject
    #[arg(long, env = "CARD_LOOKUP_QUOTA", value_delimiter = ';')]
    pub quota: Vec<QuotaRule>,

    /// The Redis (or Valkey, or a managed Redis) shared by every replica:
    /// redis://[user:password@]host[:port][/db], or rediss:// for TLS. It counts --quota, and
    /// pools card-testing detection's windows, so that a client's calls to every replica count
    /// together. One endpoint: not Redis Cluster or Sentinel.
    #[arg(long, env = "CARD_LOOKUP_REDIS_URL")]
    pub redis_url: Option<String>,

    /// A file holding the Redis password (a mounted Secret), instead of one in --redis-url.
    #[arg(long, env = "CARD_LOOKUP_REDIS_PASSWORD_FILE", requires = "redis_url")]
    pub redis_password_file: Option<PathBuf>,

    /// The longest a call waits for Redis to check its quotas (above 0, at most 1s); past it,
    /// --quota-failure-mode decides.
    #[arg(long, env = "CARD_LOOKUP_QUOTA_BUDGET", default_value = "5ms", value_parser = humantime::parse_duration)]
    pub quota_budget: Duration,

    /// What a call gets when Redis does not answer within --quota-budget: `open` (the call
    /// proceeds; --rate-limit still applies) or `closed` (RESOURCE_EXHAUSTED).
    #[arg(long, env = "CARD_LOOKUP_QUOTA_FAILURE_MODE", value_enum, default_value_t = FailureMode::Open)]
    pub quota_failure_mode: FailureMode,

    /// Check every call in Redis, fast quotas too. By default a quota of at least 2,000 calls
    /// a second leases a thousandth of a second's calls at a time to each replica (at most
    /// 1,000), spent there for up to 1s: the replicas never admit more than Redis granted, but
    /// a window may see up to one lease a replica beyond the limit. Slower quotas are always
    /// exact to the call.
    #[arg(long, env = "CARD_LOOKUP_QUOTA_EXACT")]
    pub quota_exact: bool,

    /// Address of the HTTP/JSON port: binlist.net's lookup (GET /{bin}) and the gRPC API as
    /// JSON (/v1/...), HTTP/1.1 and HTTP/2, with the gRPC port's TLS, admission and logs. Off
    /// unless given.
    #[arg(long, env = "CARD_LOOKUP_HTTP_LISTEN")]
    pub http_listen: Option<SocketAddr>,
    /// A file of secret keys for card fingerprints: one key a line, `ID SECRET` (SECRET 32 to
    /// 64 bytes in hex, e.g. from `openssl rand -hex 32`); the first key signs. With it,
    /// Validate, MaskCard and Inspect answers carry `fingerprint`, an HMAC-SHA-256 of the
    /// number under that key. Read once at start; keep it in a mounted Secret.
    #[arg(long, env = "CARD_LOOKUP_FINGERPRINT_KEY_FILE")]
    pub fingerprint_key_file: Option<PathBuf>,

    /// A directory for the audit trail: every call that carries card data (Validate,
    /// LookupBin, MaskCard, each Inspect item, over gRPC or HTTP) is recorded, masked, in
    /// hash-chained JSON lines, one file a replica a UTC day (`audit-YYYY-MM-DD-REPLICA.jsonl`).
    /// Created when missing. Off unless given. Check the files with `card-lookup audit verify`.
    #[arg(long, env = "CARD_LOOKUP_AUDIT_DIR")]
    pub audit_dir: Option<PathBuf>,

    /// This replica's name in the audit files' names and events: letters, digits, `.`, `_`
    /// and `-`. By default the host name (the pod's name in Kubernetes).
    #[arg(long, env = "CARD_LOOKUP_REPLICA_NAME")]
    pub replica_name: Option<String>,

    /// A file holding the audit chain's key, in --fingerprint-key-file's format (`ID SECRET`,
    /// the first line's key is used): the chain is then HMAC-SHA-256 rather than SHA-256, so
    /// that one who can write the files but has not the key cannot rebuild it after an edit.
    /// `audit verify` needs the same file.
    #[arg(long, env = "CARD_LOOKUP_AUDIT_HMAC_KEY_FILE", requires = "audit_dir")]
    pub audit_hmac_key_file: Option<PathBuf>,

    /// What a call does when the audit queue is full: `block` (wait up to 250 ms for room,
    /// then refuse the call UNAVAILABLE; a failing disk also turns health NOT_SERVING, so no
    /// call is answered unaudited) or `drop` (answer, drop the event, count it).
    #[arg(long, env = "CARD_LOOKUP_AUDIT_OVERFLOW", value_enum, default_value_t = Overflow::Block)]
    pub audit_overflow: Overflow,

    /// How long audit files are kept: whole files whose day ended longer ago are deleted (at
    /// start and each new UTC day), oldest first, and only while their chain verifies. 400d:
    /// PCI DSS 10.5.1's twelve months, with margin.
    #[arg(long, env = "CARD_LOOKUP_AUDIT_RETENTION", default_value = "400d", value_parser = humantime::parse_duration)]
    pub audit_retention: Duration,

    /// A list of your own test card numbers, added to the providers' lists built in: a header
    /// line `number<TAB>provider<TAB>source`, then one number a line with the lower-case name
    /// of whoever lists it (docs/data-format.md). Answers for these numbers carry `test_card`
    /// and the provider names. Read once at start.
    #[arg(long, env = "CARD_LOOKUP_TEST_CARDS_FILE")]
    pub test_cards_file: Option<PathBuf>,
}

/// Configuration that has passed every check.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub listen: SocketAddr,
    pub metrics_listen: SocketAddr,
    /// The BIN tables to load, in order: the embedded default first (unless left out).
    pub data_sources: Vec<DataSource>,
    pub load_options: LoadOptions,
    pub watch_data_files: bool,
    pub admin_listen: Option<SocketAddr>,
    pub p99_target: Duration,
    pub log_format: LogFormat,
    pub shutdown_grace: Duration,
    /// TLS on the gRPC port; plaintext when `None`.
    pub tls: Option<TlsFiles>,
    pub max_concurrent_requests: usize,
    pub rate_limits: Vec<RateLimitRule>,
    pub request_timeout: Duration,
    pub card_testing: CardTestingConfig,
    pub max_concurrent_requests_per_client: usize,
    pub trusted_networks: Vec<TrustedNetwork>,
    pub max_tracked_clients: usize,
    pub inspect_idle_timeout: Duration,
    pub inspect_max_life: Duration,
    pub inspect_max_answer_bytes: usize,
    /// The connection caps of each port.
    pub connection_caps: ConnectionCaps,
    pub connection_preface_timeout: Duration,
    pub max_connection_age: Duration,
    pub max_connection_age_grace: Duration,
    pub health_listen: Option<SocketAddr>,
    /// `None`: off.
    pub data_recheck_interval: Option<Duration>,
    /// The store shared by every replica (`--redis-url`): quotas, card-testing windows.
    pub redis: Option<RedisTarget>,
    /// `--quota`; none without quotas (and some only with `redis`).
    pub quotas: Option<QuotaSettings>,
    /// The HTTP/JSON port; none unless given.
    pub http_listen: Option<SocketAddr>,
    /// `--fingerprint-key-file`, read; no fingerprints without it.
    pub fingerprint_keys: Option<FingerprintKeys>,
    /// The audit trail (`--audit-*`); none without `--audit-dir`.
    pub audit: Option<AuditSettings>,
    /// The embedded test-card list, with `--test-cards-file`'s added.
    pub test_cards: TestCards,
}

/// A configuration value that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("--p99-target-ms must be a number of milliseconds above 0 and at most 60000")]
    P99Target,
    #[error("--listen and --metrics-listen must differ (both are {0})")]
    SameAddress(SocketAddr),
    /// A --bin-data path that is not a readable regular file, and what it is instead.
    #[error("--bin-data {0}: {1}")]
    UnreadableDataFile(PathBuf, FileProblem),
    #[error("--no-default-data leaves nothing to serve: give at least one --bin-data file")]
    NoData,
    #[error("--admin-listen must differ from --listen and --metrics-listen ({0})")]
    AdminAddress(SocketAddr),
    #[error("{flag} {path}: no such file")]
    MissingTlsFile { flag: &'static str, path: PathBuf },
    #[error("--max-concurrent-requests must be at least 1")]
    MaxConcurrentRequests,
    #[error("--rate-limit: class `{0}` is given twice")]
    DuplicateRateLimitClass(String),
    #[error("--request-timeout must be above 0")]
    RequestTimeout,
    #[error("--card-testing-max-luhn-failure-ratio must be between 0 and 1")]
    LuhnFailureRatio,
    #[error("--max-concurrent-requests-per-client must be at least 1")]
    MaxConcurrentRequestsPerClient,
    #[error("--max-tracked-clients must be at least 1")]
    MaxTrackedClients,
    #[error("{0} must be above 0 and at most 24h")]
    InspectDuration(&'static str),
    #[error(
        "--inspect-max-answer-bytes must be between {MIN_INSPECT_ANSWER_BYTES} and {MAX_INSPECT_ANSWER_BYTES}"
    )]
    InspectMaxAnswerBytes,
    #[error("--max-connections and --max-connections-per-address must be at least 1")]
    MaxConnections,
    #[error("--connection-preface-timeout must be above 0")]
    ConnectionPrefaceTimeout,
    #[error("--max-connection-age and --max-connection-age-grace must be above 0")]
    MaxConnectionAge,
    #[error("--health-listen must differ from --listen, --metrics-listen and --admin-listen ({0})")]
    HealthAddress(SocketAddr),
    #[error("--quota needs --redis-url: quotas are counted in Redis, shared by every replica")]
    QuotaWithoutRedis,
    #[error("--quota: quota `{0}` is given twice")]
    DuplicateQuota(String),
    /// The URL is not repeated: it can hold a password.
    #[error("--redis-url {0}")]
    RedisUrl(&'static str),
    #[error("--redis-password-file {0}: {1}")]
    RedisPasswordFile(PathBuf, String),
    #[error("--quota-budget must be above 0 and at most 1s")]
    QuotaBudget,
    #[error(
        "--http-listen must differ from --listen, --metrics-listen, --admin-listen and --health-listen ({0})"
    )]
    HttpAddress(SocketAddr),
    /// Says what is wrong and on which line, never the line's text.
    #[error("--fingerprint-key-file {0}: {1}")]
    FingerprintKeyFile(PathBuf, String),
    #[error(
        "--replica-name `{0}`: use 1 to 63 letters, digits, `.`, `_` and `-` (it is part of file names)"
    )]
    ReplicaName(String),
    /// Says what is wrong and on which line, never the line's text.
    #[error("--audit-hmac-key-file {0}: {1}")]
    AuditHmacKeyFile(PathBuf, String),
    /// Names the line, never its text (a card number).
    #[error("--test-cards-file {0}: {1}")]
    TestCardsFile(PathBuf, String),
}

/// The TLS files, when both a certificate and its key are given (clap requires the pair).
fn tls_files(
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    client_ca: Option<PathBuf>,
) -> Option<TlsFiles> {
    Some(TlsFiles {
        cert: cert?,
        key: key?,
        client_ca,
    })
}

impl TryFrom<Args> for Config {
    type Error = ConfigError;

    fn try_from(args: Args) -> Result<Self, Self::Error> {
        if !(args.p99_target_ms > 0.0 && args.p99_target_ms <= 60_000.0) {
            return Err(ConfigError::P99Target);
        }
        if args.listen == args.metrics_listen && args.listen.port() != 0 {
            return Err(ConfigError::SameAddress(args.listen));
        }
        for path in &args.bin_data {
            bins::read::open_regular(path)
                .map_err(|problem| ConfigError::UnreadableDataFile(path.clone(), problem))?;
        }
        if args.no_default_data && args.bin_data.is_empty() {
            return Err(ConfigError::NoData);
        }
        if let Some(admin) = args.admin_listen
            && admin.port() != 0
            && (admin == args.listen || admin == args.metrics_listen)
        {
            return Err(ConfigError::AdminAddress(admin));
        }
        for (flag, path) in [
            ("--tls-cert", &args.tls_cert),
            ("--tls-key", &args.tls_key),
            ("--tls-client-ca", &args.tls_client_ca),
        ] {
            if let Some(path) = path.as_ref().filter(|p| !p.is_file()) {
                return Err(ConfigError::MissingTlsFile {
                    flag,
                    path: path.clone(),
                });
            }
        }
        check_limits(&args)?;
        check_health_address(&args)?;
        check_http_address(&args)?;
        let redis = redis_target(&args)?;
        let quotas = quota_settings(&args, redis.is_some())?;
        let fingerprint_keys = fingerprint_keys(args.fingerprint_key_file.as_deref())?;
        let audit = audit_settings(&args)?;
        let test_cards = test_cards(args.test_cards_file.as_deref())?;
        let tls = tls_files(args.tls_cert, args.tls_key, args.tls_client_ca);
        let data_sources = (!args.no_default_data)
            .then_some(DataSource::Embedded)
            .into_iter()
            .chain(args.bin_data.into_iter().map(DataSource::File))
            .collect();
        Ok(Self {
            listen: args.listen,
            metrics_listen: args.metrics_listen,
            data_sources,
            load_options: LoadOptions {
                format: args.bin_data_format,
                skip_invalid_rows: args.skip_invalid_rows,
            },
            watch_data_files: !args.no_watch,
            admin_listen: args.admin_listen,
            p99_target: Duration::from_secs_f64(args.p99_target_ms / 1000.0),
            log_format: args.log_format,
            shutdown_grace: args.shutdown_grace,
            tls,
            max_concurrent_requests: args.max_concurrent_requests,
            rate_limits: args.rate_limit,
            request_timeout: args.request_timeout,
            card_testing: CardTestingConfig {
                max_distinct_bins: args.card_testing_max_bins,
                max_distinct_cards: args.card_testing_max_cards,
                max_luhn_failure_ratio: args.card_testing_max_luhn_failure_ratio,
                min_validations: args.card_testing_min_validations,
                refuse: args.card_testing_refuse,
                max_clients: args.max_tracked_clients,
                ..CardTestingConfig::default()
            },
            max_concurrent_requests_per_client: args
                .max_concurrent_requests_per_client
                .unwrap_or(args.max_concurrent_requests.div_ceil(4)),
            trusted_networks: args.trust_client_id_from,
            max_tracked_clients: args.max_tracked_clients,
            inspect_idle_timeout: args.inspect_idle_timeout,
            inspect_max_life: args.inspect_max_life,
            inspect_max_answer_bytes: args.inspect_max_answer_bytes,
            connection_caps: ConnectionCaps {
                max_total: args.max_connections,
                max_per_address: args.max_connections_per_address,
            },
            connection_preface_timeout: args.connection_preface_timeout,
            max_connection_age: args.max_connection_age,
            max_connection_age_grace: args.max_connection_age_grace,
            health_listen: args.health_listen,
            data_recheck_interval: Some(args.data_recheck_interval).filter(|d| !d.is_zero()),
            redis,
            quotas,
            http_listen: args.http_listen,
            fingerprint_keys,
            audit,
            test_cards,
        })
    }
}

/// `--audit-*`: none without `--audit-dir`; the replica's name, checked, by default the host
/// name; the chain's key, read.
fn audit_settings(args: &Args) -> Result<Option<AuditSettings>, ConfigError> {
    let Some(dir) = &args.audit_dir else {
        return Ok(None);
    };
    let replica = args.replica_name.clone().unwrap_or_else(host_name);
    let valid = (1..=63).contains(&replica.len())
        && replica
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if !valid {
        return Err(ConfigError::ReplicaName(replica));
    }
    let hmac_key = match &args.audit_hmac_key_file {
        Some(path) => {
            let failed = |problem: String| ConfigError::AuditHmacKeyFile(path.clone(), problem);
            let text =
                Zeroizing::new(std::fs::read_to_string(path).map_err(|e| failed(e.to_string()))?);
            let keys = FingerprintKeys::parse(&text).map_err(|e| failed(e.to_string()))?;
            Some(keys.signing().clone())
        }
        None => None,
    };
    Ok(Some(AuditSettings {
        dir: dir.clone(),
        replica,
        hmac_key,
        overflow: args.audit_overflow,
        retention: args.audit_retention,
    }))
}

/// The host's name (a pod's name in Kubernetes): `HOSTNAME`, else the kernel's; `card-lookup`
/// when neither is known.
fn host_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "card-lookup".to_owned())
}

/// The keys of `--fingerprint-key-file` (the server's, and the command line's offline), read and
/// checked; none without the flag.
pub(crate) fn fingerprint_keys(
    path: Option<&Path>,
) -> Result<Option<FingerprintKeys>, ConfigError> {
    let Some(path) = path else {
        return Ok(None);
    };
    let failed = |problem: String| ConfigError::FingerprintKeyFile(path.to_owned(), problem);
    let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| failed(e.to_string()))?);
    FingerprintKeys::parse(&text)
        .map(Some)
        .map_err(|e| failed(e.to_string()))
}

/// The embedded test-card list with `--test-cards-file`'s added (the server's, and the command
/// line's offline), read and checked.
pub(crate) fn test_cards(path: Option<&Path>) -> Result<TestCards, ConfigError> {
    let Some(path) = path else {
        return Ok(TestCards::embedded());
    };
    let failed = |problem: String| ConfigError::TestCardsFile(path.to_owned(), problem);
    let text = std::fs::read_to_string(path).map_err(|e| failed(e.to_string()))?;
    TestCards::embedded_and(&text).map_err(|e| failed(e.to_string()))
}

/// The health port must be a port of its own (port 0, a free port, always is).
fn check_health_address(args: &Args) -> Result<(), ConfigError> {
    match args.health_listen {
        Some(health)
            if health.port() != 0
                && (health == args.listen
                    || health == args.metrics_listen
                    || args.admin_listen == Some(health)) =>
        {
            Err(ConfigError::HealthAddress(health))
        }
        _ => Ok(()),
    }
}

/// The HTTP/JSON port must be a port of its own (port 0, a free port, always is).
fn check_http_address(args: &Args) -> Result<(), ConfigError> {
    match args.http_listen {
        Some(http)
            if http.port() != 0
                && [
                    Some(args.listen),
                    Some(args.metrics_listen),
                    args.admin_listen,
                    args.health_listen,
                ]
                .contains(&Some(http)) =>
        {
            Err(ConfigError::HttpAddress(http))
        }
        _ => Ok(()),
    }
}

/// `--quota` and its flags, checked; none without quotas.
fn quota_settings(args: &Args, redis: bool) -> Result<Option<QuotaSettings>, ConfigError> {
    if args.quota_budget.is_zero() || args.quota_budget > Duration::from_secs(1) {
        return Err(ConfigError::QuotaBudget);
    }
    let mut names = std::collections::HashSet::new();
    if let Some(twice) = args.quota.iter().find(|q| !names.insert(&q.name)) {
        return Err(ConfigError::DuplicateQuota(twice.name.clone()));
    }
    if !args.quota.is_empty() && !redis {
        return Err(ConfigError::QuotaWithoutRedis);
    }
    Ok((!args.quota.is_empty()).then(|| QuotaSettings {
        rules: args.quota.clone(),
        budget: args.quota_budget,
        failure_mode: args.quota_failure_mode,
        exact: args.quota_exact,
    }))
}

/// `--redis-url` and its password file, checked.
fn redis_target(args: &Args) -> Result<Option<RedisTarget>, ConfigError> {
    let Some(url) = &args.redis_url else {
        return Ok(None);
    };
    let password = args
        .redis_password_file
        .as_ref()
        .map(|path| {
            std::fs::read_to_string(path)
                .map(|text| text.trim_end_matches(['\r', '\n']).to_owned())
                .map_err(|error| ConfigError::RedisPasswordFile(path.clone(), error.to_string()))
        })
        .transpose()?;
    RedisTarget::new(url, password)
        .map(Some)
        .map_err(ConfigError::RedisUrl)
}

/// The checks of the limits' flags: admission, card testing, Inspect streams and connections.
fn check_limits(args: &Args) -> Result<(), ConfigError> {
    if args.max_concurrent_requests == 0 {
        return Err(ConfigError::MaxConcurrentRequests);
    }
    if args.request_timeout.is_zero() {
        return Err(ConfigError::RequestTimeout);
    }
    if !(0.0..=1.0).contains(&args.card_testing_max_luhn_failure_ratio) {
        return Err(ConfigError::LuhnFailureRatio);
    }
    if args.max_concurrent_requests_per_client == Some(0) {
        return Err(ConfigError::MaxConcurrentRequestsPerClient);
    }
    if args.max_tracked_clients == 0 {
        return Err(ConfigError::MaxTrackedClients);
    }
    let mut classes = std::collections::HashSet::new();
    if let Some(twice) = args.rate_limit.iter().find(|r| !classes.insert(&r.class)) {
        return Err(ConfigError::DuplicateRateLimitClass(twice.class.clone()));
    }
    for (flag, duration) in [
        ("--inspect-idle-timeout", args.inspect_idle_timeout),
        ("--inspect-max-life", args.inspect_max_life),
    ] {
        if duration.is_zero() || duration > MAX_INSPECT_DURATION {
            return Err(ConfigError::InspectDuration(flag));
        }
    }
    if !(MIN_INSPECT_ANSWER_BYTES..=MAX_INSPECT_ANSWER_BYTES)
        .contains(&args.inspect_max_answer_bytes)
    {
        return Err(ConfigError::InspectMaxAnswerBytes);
    }
    if args.max_connections == 0 || args.max_connections_per_address == 0 {
        return Err(ConfigError::MaxConnections);
    }
    if args.connection_preface_timeout.is_zero() {
        return Err(ConfigError::ConnectionPrefaceTimeout);
    }
    if args.max_connection_age.is_zero() || args.max_connection_age_grace.is_zero() {
        return Err(ConfigError::MaxConnectionAge);
    }
    Ok(())
}

impl Config {
    /// What the admission layer allows, from these flags.
    #[must_use]
    pub fn admission_rules(&self) -> AdmissionRules {
        AdmissionRules {
            max_in_flight: self.max_concurrent_requests,
            max_in_flight_per_client: self.max_concurrent_requests_per_client,
            request_timeout: self.request_timeout,
            rate_limits: self.rate_limits.clone(),
            trusted_networks: self.trusted_networks.clone(),
            max_clients: self.max_tracked_clients,
            quotas: self.quotas.clone(),
        }
    }
}

impl Default for Config {
    /// The defaults of the command line: loopback ports 50051 and 9090, embedded data only.
    fn default() -> Self {
        Args::parse_from(["card-lookup"])
            .try_into()
            .expect("the default flags are valid")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(flags: &[&str]) -> Result<Config, ConfigError> {
        let args =
            Args::try_parse_from(std::iter::once("card-lookup").chain(flags.iter().copied()))
                .expect("flags parse");
        Config::try_from(args)
    }

    #[test]
    fn the_data_recheck_is_every_minute_unless_turned_off() {
        assert_eq!(
            Config::default().data_recheck_interval,
            Some(Duration::from_secs(60))
        );
        let off = config(&["--data-recheck-interval", "0s"]).unwrap();
        assert_eq!(off.data_recheck_interval, None);
    }

    #[test]
    fn defaults() {
        let config = Config::default();
        assert_eq!(config.listen, "127.0.0.1:50051".parse().unwrap());
        assert_eq!(config.metrics_listen, "127.0.0.1:9090".parse().unwrap());
        assert_eq!(config.p99_target, Duration::from_millis(5));
        assert_eq!(config.data_sources, [DataSource::Embedded]);
        assert_eq!(config.shutdown_grace, Duration::from_secs(10));
        let config = super::Config::try_from(
            Args::try_parse_from(["card-lookup", "--shutdown-grace", "750ms"]).unwrap(),
        )
        .unwrap();
        assert_eq!(config.shutdown_grace, Duration::from_millis(750));
    }

    #[test]
    fn rejects_bad_values_with_the_flag_name() {
        for bad in ["0", "-1", "NaN", "60001"] {
            let err = config(&[&format!("--p99-target-ms={bad}")]).unwrap_err();
            assert_eq!(err, ConfigError::P99Target);
            assert!(err.to_string().contains("--p99-target-ms"));
        }
        let err = config(&[
            "--listen",
            "127.0.0.1:7000",
            "--metrics-listen",
            "127.0.0.1:7000",
        ]);
        assert!(matches!(err, Err(ConfigError::SameAddress(_))));
        let err = config(&["--bin-data", "/nonexistent.csv"]).unwrap_err();
        assert_eq!(err.to_string(), "--bin-data /nonexistent.csv: no such file");
    }

    /// What a --bin-data path is when it is not a file the server can read, said at start-up.
    #[cfg(unix)]
    #[test]
    fn a_data_path_that_is_no_readable_file_is_named_for_what_it_is() {
        let dir =
            std::env::temp_dir().join(format!("card-lookup-config-paths-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let looped = dir.join("loop.csv");
        let _ = std::fs::remove_file(&looped);
        std::os::unix::fs::symlink(&looped, &looped).unwrap();
        let fifo = dir.join("fifo.csv");
        let _ = std::fs::remove_file(&fifo);
        assert!(
            std::process::Command::new("mkfifo")
                .arg(&fifo)
                .status()
                .unwrap()
                .success()
        );
        let zero = dir.join("zero.csv");
        let _ = std::fs::remove_file(&zero);
        std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
        for (path, says) in [
            (&dir, "is a directory, not a file"),
            (&looped, "is a symlink loop"),
            (&fifo, "is a FIFO, not a regular file"),
            (&zero, "is a character device, not a regular file"),
        ] {
            let err = config(&["--bin-data", path.to_str().unwrap()]).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("--bin-data {}: {says}", path.display())
            );
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn data_flags() {
        let path =
            std::env::temp_dir().join(format!("card-lookup-config-{}.csv", std::process::id()));
        std::fs::write(&path, "").unwrap();
        let file = path.to_str().unwrap();
        let parsed = config(&[
            "--bin-data",
            file,
            "--no-default-data",
            "--skip-invalid-rows",
            "--bin-data-format",
            "cn-four-column",
            "--no-watch",
        ])
        .unwrap();
        assert_eq!(parsed.data_sources, [DataSource::File(path.clone())]);
        assert_eq!(parsed.load_options.format, Some(Format::CnFourColumn));
        assert!(parsed.load_options.skip_invalid_rows);
        assert!(!parsed.watch_data_files);
        assert_eq!(
            config(&["--no-default-data"]).unwrap_err(),
            ConfigError::NoData
        );
        assert!(Args::try_parse_from(["card-lookup", "--bin-data-format", "xls"]).is_err());
        let err = config(&["--admin-listen", "127.0.0.1:50051"]).unwrap_err();
        assert_eq!(
            err,
            ConfigError::AdminAddress("127.0.0.1:50051".parse().unwrap())
        );
        for taken in ["127.0.0.1:50051", "127.0.0.1:9090"] {
            assert_eq!(
                config(&["--health-listen", taken]).unwrap_err(),
                ConfigError::HealthAddress(taken.parse().unwrap())
            );
        }
        assert_eq!(
            config(&[
                "--admin-listen",
                "127.0.0.1:50052",
                "--health-listen",
                "127.0.0.1:50052"
            ])
            .unwrap_err(),
            ConfigError::HealthAddress("127.0.0.1:50052".parse().unwrap())
        );
        assert_eq!(
            config(&["--health-listen", "0.0.0.0:50053"])
                .unwrap()
                .health_listen,
            Some("0.0.0.0:50053".parse().unwrap())
        );
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn admission_and_tls_flags() {
        let parsed = config(&[
            "--rate-limit",
            "default=100/s",
            "--rate-limit",
            "checkout=5000/s:svc-a,svc-b",
            "--max-concurrent-requests",
            "64",
            "--request-timeout",
            "250ms",
        ])
        .unwrap();
        assert_eq!(parsed.rate_limits.len(), 2);
        assert_eq!(parsed.rate_limits[1].members, ["svc-a", "svc-b"]);
        assert_eq!(parsed.max_concurrent_requests, 64);
        assert_eq!(
            parsed.max_concurrent_requests_per_client, 16,
            "a quarter by default"
        );
        assert_eq!(parsed.request_timeout, Duration::from_millis(250));
        assert!(parsed.tls.is_none());
        assert!(
            parsed.trusted_networks.is_empty(),
            "no x-client-id is trusted by default"
        );
        let parsed = config(&[
            "--max-concurrent-requests-per-client",
            "3",
            "--trust-client-id-from",
            "10.0.0.0/8,fd00::/8",
            "--max-tracked-clients",
            "500",
        ])
        .unwrap();
        assert_eq!(parsed.max_concurrent_requests_per_client, 3);
        assert_eq!(parsed.trusted_networks.len(), 2);
        assert_eq!(
            (parsed.max_tracked_clients, parsed.card_testing.max_clients),
            (500, 500)
        );
        assert_eq!(
            config(&["--max-concurrent-requests-per-client", "0"]).unwrap_err(),
            ConfigError::MaxConcurrentRequestsPerClient
        );
        assert_eq!(
            config(&["--max-tracked-clients", "0"]).unwrap_err(),
            ConfigError::MaxTrackedClients
        );
        assert!(
            Args::try_parse_from(["card-lookup", "--trust-client-id-from", "10.0.0.0/40"]).is_err()
        );
        let twice = config(&["--rate-limit", "a=1/s", "--rate-limit", "a=2/s"]).unwrap_err();
        assert_eq!(twice, ConfigError::DuplicateRateLimitClass("a".into()));
        assert_eq!(
            config(&["--max-concurrent-requests", "0"]).unwrap_err(),
            ConfigError::MaxConcurrentRequests
        );
        let missing = config(&[
            "--tls-cert",
            "/nonexistent/c.pem",
            "--tls-key",
            "/nonexistent/k.pem",
        ]);
        assert!(matches!(
            missing,
            Err(ConfigError::MissingTlsFile {
                flag: "--tls-cert",
                ..
            })
        ));
        // A key without a certificate is refused by the parser.
        assert!(Args::try_parse_from(["card-lookup", "--tls-key", "k.pem"]).is_err());
        assert!(Args::try_parse_from(["card-lookup", "--rate-limit", "nonsense"]).is_err());
    }

    #[test]
    fn unparsable_flags_are_refused_by_clap() {
        assert!(Args::try_parse_from(["card-lookup", "--listen", "nowhere"]).is_err());
        assert!(Args::try_parse_from(["card-lookup", "--log-format", "xml"]).is_err());
        assert!(Args::try_parse_from(["card-lookup", "--shutdown-grace", "soon"]).is_err());
    }

    #[test]
    fn data_files_follow_the_embedded_table_in_order() {
        let dir = std::env::temp_dir();
        let a = dir.join(format!("card-lookup-config-a-{}.csv", std::process::id()));
        let b = dir.join(format!("card-lookup-config-b-{}.csv", std::process::id()));
        std::fs::write(&a, "").unwrap();
        std::fs::write(&b, "").unwrap();
        let joined = format!("{},{}", a.display(), b.display());
        let config = config(&["--bin-data", &joined]).unwrap();
        assert_eq!(
            config.data_sources,
            [
                DataSource::Embedded,
                DataSource::File(a.clone()),
                DataSource::File(b.clone())
            ]
        );
        std::fs::remove_file(a).unwrap();
        std::fs::remove_file(b).unwrap();
    }

    #[test]
    fn inspect_limits() {
        let defaults = Config::default();
        assert_eq!(defaults.inspect_idle_timeout, Duration::from_secs(60));
        assert_eq!(defaults.inspect_max_life, Duration::from_secs(600));
        assert_eq!(defaults.inspect_max_answer_bytes, 4 * 1024 * 1024);
        let parsed = config(&[
            "--inspect-idle-timeout",
            "300ms",
            "--inspect-max-life",
            "2h",
            "--inspect-max-answer-bytes",
            "1024",
        ])
        .unwrap();
        assert_eq!(parsed.inspect_idle_timeout, Duration::from_millis(300));
        assert_eq!(parsed.inspect_max_life, Duration::from_secs(7200));
        assert_eq!(parsed.inspect_max_answer_bytes, 1024);
        for (flag, bad) in [
            ("--inspect-idle-timeout", "0s"),
            ("--inspect-idle-timeout", "25h"),
            ("--inspect-max-life", "0ms"),
            ("--inspect-max-life", "1000y"),
        ] {
            let err = config(&[flag, bad]).unwrap_err();
            assert_eq!(err, ConfigError::InspectDuration(flag));
            assert!(err.to_string().starts_with(flag), "{err}");
        }
        for bad in ["1023", "4194305", "0"] {
            let err = config(&["--inspect-max-answer-bytes", bad]).unwrap_err();
            assert_eq!(err, ConfigError::InspectMaxAnswerBytes);
            assert_eq!(
                err.to_string(),
                "--inspect-max-answer-bytes must be between 1024 and 4194304"
            );
        }
        assert!(Args::try_parse_from(["card-lookup", "--inspect-idle-timeout", "soon"]).is_err());
    }

    #[test]
    fn connection_flags() {
        let defaults = Config::default();
        assert_eq!(
            defaults.connection_caps,
            ConnectionCaps {
                max_total: 10_000,
                max_per_address: 256
            }
        );
        assert_eq!(defaults.connection_preface_timeout, Duration::from_secs(10));
        let parsed = config(&[
            "--max-connections",
            "50",
            "--max-connections-per-address",
            "5",
            "--connection-preface-timeout",
            "300ms",
        ])
        .unwrap();
        assert_eq!(parsed.connection_caps.max_total, 50);
        assert_eq!(parsed.connection_caps.max_per_address, 5);
        assert_eq!(
            parsed.connection_preface_timeout,
            Duration::from_millis(300)
        );
        for zero in ["--max-connections", "--max-connections-per-address"] {
            let err = config(&[zero, "0"]).unwrap_err();
            assert_eq!(err, ConfigError::MaxConnections);
            assert!(err.to_string().contains(zero), "{err}");
        }
        assert_eq!(
            config(&["--connection-preface-timeout", "0s"]).unwrap_err(),
            ConfigError::ConnectionPrefaceTimeout
        );
        assert_eq!(
            (
                defaults.max_connection_age,
                defaults.max_connection_age_grace
            ),
            (Duration::from_secs(300), Duration::from_secs(30))
        );
        for zero in ["--max-connection-age", "--max-connection-age-grace"] {
            assert_eq!(
                config(&[zero, "0s"]).unwrap_err(),
                ConfigError::MaxConnectionAge
            );
        }
    }

    #[test]
    fn quota_flags() {
        assert_eq!(Config::default().quotas, None);
        let err = config(&["--quota", "per-shopper=20/h:subject"]).unwrap_err();
        assert_eq!(err, ConfigError::QuotaWithoutRedis);
        assert!(err.to_string().contains("--redis-url"), "{err}");
        let parsed = config(&[
            "--quota",
            "per-shopper=20/h:subject",
            "--quota",
            "per-client=100/s:client",
            "--redis-url",
            "redis://:hunter2@127.0.0.1:6379",
            "--quota-failure-mode",
            "closed",
        ])
        .unwrap();
        let quotas = parsed.quotas.unwrap();
        assert_eq!(quotas.rules.len(), 2);
        assert_eq!(quotas.budget, Duration::from_millis(5));
        assert_eq!(quotas.failure_mode, FailureMode::Closed);
        let twice = config(&[
            "--quota",
            "a=1/h:client",
            "--quota",
            "a=2/h:subject",
            "--redis-url",
            "redis://127.0.0.1",
        ])
        .unwrap_err();
        assert_eq!(twice, ConfigError::DuplicateQuota("a".into()));
        let bad_url = config(&[
            "--quota",
            "a=1/h:client",
            "--redis-url",
            "http://user:hunter2@cache",
        ])
        .unwrap_err();
        assert!(matches!(bad_url, ConfigError::RedisUrl(_)));
        assert!(!bad_url.to_string().contains("hunter2"), "{bad_url}");
        for budget in ["0ms", "2s"] {
            assert_eq!(
                config(&["--quota-budget", budget]).unwrap_err(),
                ConfigError::QuotaBudget
            );
        }
        let missing = config(&[
            "--redis-url",
            "redis://127.0.0.1",
            "--redis-password-file",
            "/nonexistent/redis-password",
        ])
        .unwrap_err();
        assert!(matches!(missing, ConfigError::RedisPasswordFile(..)));
        // A store without quotas: card-testing detection across replicas.
        let store_only = config(&["--redis-url", "redis://127.0.0.1"]).unwrap();
        assert!(store_only.redis.is_some());
        assert_eq!(store_only.quotas, None);
        assert!(Args::try_parse_from(["card-lookup", "--quota", "a=1/h:ip"]).is_err());
        assert!(Args::try_parse_from(["card-lookup", "--quota-failure-mode", "maybe"]).is_err());
    }

    #[test]
    fn the_http_port_is_off_unless_given_and_a_port_of_its_own() {
        assert_eq!(Config::default().http_listen, None);
        let given = config(&["--http-listen", "0.0.0.0:8080"]).unwrap();
        assert_eq!(given.http_listen, Some("0.0.0.0:8080".parse().unwrap()));
        for taken in ["127.0.0.1:50051", "127.0.0.1:9090"] {
            assert_eq!(
                config(&["--http-listen", taken]).unwrap_err(),
                ConfigError::HttpAddress(taken.parse().unwrap())
            );
        }
    }

    #[test]
    fn fingerprint_key_file() {
        let dir = std::env::temp_dir().join(format!(
            "card-lookup-config-fingerprint-{}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let secret = "5f".repeat(32);
        let good = dir.join("keys");
        std::fs::write(
            &good,
            format!("# the first signs\nk2 {secret}\nk1 {}\n", "a0".repeat(32)),
        )
        .unwrap();
        let keys = config(&["--fingerprint-key-file", good.to_str().unwrap()])
            .unwrap()
            .fingerprint_keys
            .unwrap();
        assert_eq!(keys.signing().id(), "k2");
        assert_eq!(keys.all().len(), 2);
        assert_eq!(config(&[]).unwrap().fingerprint_keys, None);

        let bad = dir.join("bad");
        std::fs::write(&bad, format!("k1 {secret}\nk2 {}\n", &secret[..40])).unwrap();
        let error = config(&["--fingerprint-key-file", bad.to_str().unwrap()]).unwrap_err();
        let message = error.to_string();
        assert!(
            message.starts_with(&format!(
                "--fingerprint-key-file {}: line 2: ",
                bad.display()
            )),
            "{message}"
        );
        assert!(!message.contains("5f5f"), "{message}");
        let missing = dir.join("missing");
        assert!(matches!(
            config(&["--fingerprint-key-file", missing.to_str().unwrap()]).unwrap_err(),
            ConfigError::FingerprintKeyFile(..)
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn auditing_is_off_unless_a_directory_is_given_and_replica_names_are_checked() {
        assert_eq!(Config::default().audit, None);
        let audit = config(&[
            "--audit-dir",
            "/var/audit",
            "--replica-name",
            "card-lookup-0",
        ])
        .unwrap()
        .audit
        .unwrap();
        assert_eq!(audit.dir, PathBuf::from("/var/audit"));
        assert_eq!(audit.replica, "card-lookup-0");
        assert_eq!(audit.overflow, Overflow::Block);
        assert_eq!(audit.hmac_key, None);
        assert_eq!(audit.retention, Duration::from_secs(400 * 24 * 60 * 60));
        let defaulted = config(&["--audit-dir", "/var/audit"])
            .unwrap()
            .audit
            .unwrap();
        assert!(!defaulted.replica.is_empty(), "the host name by default");
        for bad in ["a/b", "", "with space", &"x".repeat(64)] {
            assert_eq!(
                config(&["--audit-dir", "/a", "--replica-name", bad]).unwrap_err(),
                ConfigError::ReplicaName(bad.to_owned())
            );
        }
        let dropping = config(&["--audit-dir", "/a", "--audit-overflow", "drop"]).unwrap();
        assert_eq!(dropping.audit.unwrap().overflow, Overflow::Drop);
        let missing = config(&["--audit-dir", "/a", "--audit-hmac-key-file", "/no/such/key"]);
        assert!(matches!(missing, Err(ConfigError::AuditHmacKeyFile(..))));
    }

    #[test]
    fn test_cards_file() {
        let dir = std::env::temp_dir().join(format!(
            "card-lookup-config-test-cards-{}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let pan = crate::card::Pan::parse("4000000000000002").unwrap();
        assert!(config(&[]).unwrap().test_cards.providers(&pan).is_empty());
        let good = dir.join("ours.tsv");
        std::fs::write(
            &good,
            "number\tprovider\tsource\n4000000000000002\tacme\tour QA\n",
        )
        .unwrap();
        let cards = config(&["--test-cards-file", good.to_str().unwrap()])
            .unwrap()
            .test_cards;
        assert_eq!(
            cards.names(cards.providers(&pan)).collect::<Vec<_>>(),
            ["acme"]
        );
        assert_eq!(cards.len(), TestCards::embedded().len() + 1);

        let bad = dir.join("bad.tsv");
        std::fs::write(
            &bad,
            "number\tprovider\tsource\n4000000000000002\tACME\tx\n",
        )
        .unwrap();
        let message = config(&["--test-cards-file", bad.to_str().unwrap()])
            .unwrap_err()
            .to_string();
        assert!(
            message.starts_with(&format!("--test-cards-file {}: line 2: ", bad.display())),
            "{message}"
        );
        assert!(!message.contains("4000000000000002"), "{message}");
        let missing = dir.join("missing");
        assert!(matches!(
            config(&["--test-cards-file", missing.to_str().unwrap()]).unwrap_err(),
            ConfigError::TestCardsFile(..)
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
