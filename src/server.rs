//! Wiring: the gRPC server (card lookup, health, reflection) and the metrics endpoint, with
//! their limits and a graceful shutdown shared by both.

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_stream::StreamExt;
use tokio_util::sync::CancellationToken;
use tonic::transport::Server;
use tonic_health::pb::health_server::{Health, HealthServer};

use crate::admission::{Admission, AdmissionLayer, CountLayer, DEFAULT_CLASS};
use crate::api::CardApi;
use crate::api::admin::AdminApi;
use crate::audit::{AuditWriter, Auditor, Overflow};
use crate::bins::{self, BinStore, ReloadTrigger};
use crate::card_testing::{self, CardTestingDetector};
use crate::config::Config;
use crate::connection_limits::{self, ConnectionCaps, ConnectionLimits};
use crate::grpc::{Admin, CardLookup};
use crate::http::HttpFront;
use crate::incoming::{self, Protocol};
use crate::proto::cardlookup::admin::v1::admin_service_server::AdminServiceServer;
use crate::proto::cardlookup::v1::card_lookup_service_server::CardLookupServiceServer;
use crate::proto::{ADMIN_FILE_DESCRIPTOR_SET, FILE_DESCRIPTOR_SET};
use crate::shared_store::SharedStore;
use crate::telemetry;
use crate::tls::LiveTls;
use crate::watch;

/// The largest request message accepted, refused before it is decoded. Unary requests are a
/// number and a few flags, under 100 bytes; an Inspect batch of 1,000 items with ids is
/// about 60 KiB.
pub const MAX_REQUEST_BYTES: usize = 128 * 1024;
/// Streams one connection may have open at once. Callers multiplex many calls on a connection;
/// this bounds what one connection can ask of the server, well below the default
/// `--max-concurrent-requests` (1,024), so that one connection cannot hold every place.
pub const MAX_CONCURRENT_STREAMS: u32 = 128;
/// Streams a client may make the server reset with errors before the connection is closed: the
/// guard against HTTP/2 "rapid reset" style floods (off in tonic unless set).
const MAX_LOCAL_ERROR_RESETS: usize = 1024;
/// Request headers are a few hundred bytes; 16 KiB leaves room for tracing metadata.
const MAX_HEADER_LIST_BYTES: u32 = 16 * 1024;
/// Pings idle connections so that dead peers are noticed and their resources freed.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a server with `--redis-url` waits at start for Redis before it serves: long
/// enough for a Redis started alongside it, short enough not to hold back a rollout when Redis
/// is down (quota checks then get `--quota-failure-mode`).
const SHARED_STORE_WAIT: Duration = Duration::from_secs(2);
/// How often histogram storage is compacted (the exporter leaves this to its user).
const METRICS_UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// A tonic server with the service's HTTP/2 limits: concurrent streams, error resets, header
/// size and keepalive. The bare server of the load benchmark (examples/bare_server.rs) starts
/// from it too, so that both are measured with the same settings.
#[must_use]
pub fn http2_server() -> Server {
    Server::builder()
        .max_concurrent_streams(MAX_CONCURRENT_STREAMS)
        .http2_max_local_error_reset_streams(Some(MAX_LOCAL_ERROR_RESETS))
        .http2_max_header_list_size(MAX_HEADER_LIST_BYTES)
        .http2_keepalive_interval(Some(KEEPALIVE_INTERVAL))
        .http2_keepalive_timeout(Some(KEEPALIVE_TIMEOUT))
}

/// `age` moved by up to 10% either way, drawn once a process: replicas started together do
/// not then close their connections together, and their clients' reconnections spread out.
pub(crate) fn jittered(age: Duration) -> Duration {
    use std::hash::{BuildHasher, Hasher};
    let random = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    // A share of the range in thousandths: 0.900 to 1.100.
    let thousandths = 900 + random % 201;
    age * u32::try_from(thousandths).unwrap_or(1000) / 1000
}

/// The sockets the service answers on, bound by the caller (tests bind port 0).
#[derive(Debug)]
pub struct Listeners {
    pub grpc: TcpListener,
    pub metrics: TcpListener,
    /// The admin service's socket; no admin service without one.
    pub admin: Option<TcpListener>,
    /// The plaintext health-only socket (`--health-listen`); none without one.
    pub health: Option<TcpListener>,
    /// The HTTP/JSON socket (`--http-listen`); none without one.
    pub http: Option<TcpListener>,
}

/// Why the server stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("gRPC server failed: {0}")]
    Grpc(#[from] tonic::transport::Error),
    #[error("cannot watch files for changes: {0}")]
    Watch(#[from] notify::Error),
    #[error("cannot set up TLS: {0}")]
    Tls(#[from] crate::tls::TlsError),
    #[error("cannot start the BIN data re-check: {0}")]
    Recheck(#[from] std::io::Error),
    #[error("cannot start the audit trail: {0}")]
    Audit(#[from] crate::audit::AuditError),
}

/// Serves until `shutdown` completes, then lets in-flight calls finish and returns.
///
/// On shutdown, health turns NOT_SERVING first, so load balancers stop sending calls; new
/// connections are refused; calls in flight get `config.shutdown_grace` to finish, after which
/// `run` returns anyway (a client that never closes its connection cannot hold the process).
///
/// # Errors
/// [`ServerError`] when either server fails.
///
/// # Panics
/// If another metrics recorder was installed first (see [`telemetry::install_metrics`]).
pub async fn run(
    config: &Config,
    store: Arc<BinStore>,
    listeners: Listeners,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let prometheus = telemetry::install_metrics(config.p99_target);
    // After the recorder: metric handles taken before it would count nothing.
    let (auditor, audit_writer) = match &config.audit {
        Some(settings) => {
            let (auditor, writer) = Auditor::start(settings)?;
            (Some(auditor), Some(writer))
        }
        None => (None, None),
    };
    let audit_health = audit_writer
        .as_ref()
        .filter(|_| {
            config
                .audit
                .as_ref()
                .is_some_and(|a| a.overflow == Overflow::Block)
        })
        .map(AuditWriter::healthy);
    let result = serve(
        config,
        store,
        listeners,
        shutdown,
        prometheus,
        auditor,
        audit_health,
    )
    .await;
    if let Some(writer) = audit_writer {
        writer.close().await;
    }
    result
}

/// [`run`]'s serving, with the metrics recorder installed and the audit trail started (with
/// `audit_health` when health must follow the trail's writes).
/// The request layer every front end calls, as the configuration sets it up.
fn card_api(
    config: &Config,
    store: &Arc<BinStore>,
    card_testing: &Arc<CardTestingDetector>,
    auditor: Option<Auditor>,
) -> CardApi {
    CardApi::new(Arc::clone(store), Some(Arc::clone(card_testing)))
        .with_inspect_max_answer_bytes(config.inspect_max_answer_bytes)
        .with_fingerprint_keys(config.fingerprint_keys.clone())
        .with_test_cards(config.test_cards.clone())
        .with_auditor(auditor)
}

async fn serve(
    config: &Config,
    store: Arc<BinStore>,
    listeners: Listeners,
    shutdown: impl Future<Output = ()> + Send + 'static,
    prometheus: metrics_exporter_prometheus::PrometheusHandle,
    auditor: Option<Auditor>,
    audit_health: Option<tokio::sync::watch::Receiver<bool>>,
) -> Result<(), ServerError> {
    let info = store.info();
    bins::record_loaded(&info.index, &info.sources);
    // Build the IIN lookup table now, so that no caller's first request pays for it.
    crate::card::iin::build_table();

    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_serving::<CardLookupServiceServer<CardLookup>>()
        .await;
    let (reflection_v1, reflection_v1alpha) =
        reflection(&[FILE_DESCRIPTOR_SET, tonic_health::pb::FILE_DESCRIPTOR_SET]);
    let (admission, card_testing, shared_store) = screening(config).await;
    let api = card_api(config, &store, &card_testing, auditor);
    let card_lookup = card_lookup_service(config, api.clone());
    let tls = load_tls(config, &listeners.grpc)?;

    let ports = 2 + usize::from(listeners.admin.is_some()) + usize::from(listeners.http.is_some());
    connection_limits::warn_if_over_file_limit(config.connection_caps, ports);
    let stop = CancellationToken::new();
    start_reloaders(config, &store, tls.as_ref(), &stop)?;
    start_client_upkeep(&admission, card_testing, shared_store, &stop);
    let admin = listeners.admin.map(|listener| {
        serve_admin(
            listener,
            Admin::new(AdminApi::new(Arc::clone(&store))),
            config,
            stop.clone(),
        )
    });
    let health_port = listeners
        .health
        .map(|listener| serve_health(listener, health_service.clone(), config, stop.clone()));
    let http_port = serve_http_port(
        listeners.http,
        HttpFront::new(api, Arc::clone(&admission), MAX_REQUEST_BYTES),
        tls.clone(),
        config,
        stop.clone(),
    );
    if let Some(healthy) = audit_health {
        tokio::spawn(follow_audit_health(healthy, health.clone(), stop.clone()));
    }
    tokio::spawn(stop_on(shutdown, health, stop.clone()));
    tokio::spawn(metrics_upkeep(prometheus.clone(), stop.clone()));

    let max_connection_age = jittered(config.max_connection_age);
    let incoming = incoming::accept(
        listeners.grpc,
        Protocol::Http2 {
            tls,
            preface_timeout: config.connection_preface_timeout,
            closed_after: Some(max_connection_age + config.max_connection_age_grace),
        },
        ConnectionLimits::with_max_age("grpc", config.connection_caps, max_connection_age),
        stop.clone(),
    );
    // The request timeout is the admission layer's rather than tonic's `Server::timeout`, which
    // makes a timer for every call; tonic still ends a call at the caller's `grpc-timeout`, so
    // the shorter wins.
    let grpc = http2_server()
        // The age only: tonic then sends GOAWAY at it; the grace is the accept loop's
        // (`Protocol::Http2`'s `closed_after`).
        .max_connection_age(max_connection_age)
        .layer(AdmissionLayer(admission))
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(card_lookup)
        .serve_with_incoming_shutdown(incoming, stop.clone().cancelled_owned());
    let metrics_http = serve_metrics(
        listeners.metrics,
        telemetry::metrics_app(prometheus),
        config.connection_caps,
        config.connection_preface_timeout,
        stop.clone(),
    );

    let servers = async {
        let (grpc, (), (), admin, health) = tokio::join!(
            grpc,
            metrics_http,
            http_port,
            if_configured(admin),
            if_configured(health_port)
        );
        grpc?;
        admin.and(health)
    };
    let grace_elapsed = async {
        stop.cancelled().await;
        tokio::time::sleep(config.shutdown_grace).await;
    };
    tokio::select! {
        result = servers => {
            stop.cancel();
            result
        }
        () = grace_elapsed => {
            tracing::warn!(
                grace = ?config.shutdown_grace,
                "shutdown grace period over; closing the connections still open"
            );
            Ok(())
        }
    }
}

/// With `--audit-overflow block`: health NOT_SERVING while the audit files cannot be written
/// (calls are refused then, rather than answered unaudited), SERVING again once they can,
/// until shutdown (which owns health from then on).
async fn follow_audit_health(
    mut healthy: tokio::sync::watch::Receiver<bool>,
    health: tonic_health::server::HealthReporter,
    stop: CancellationToken,
) {
    loop {
        tokio::select! {
            changed = healthy.changed() => if changed.is_err() { return },
            () = stop.cancelled() => return,
        }
        let status = if *healthy.borrow_and_update() {
            tonic_health::ServingStatus::Serving
        } else {
            tonic_health::ServingStatus::NotServing
        };
        if stop.is_cancelled() {
            return;
        }
        health
            .set_service_status(
                <CardLookupServiceServer<CardLookup> as tonic::server::NamedService>::NAME,
                status,
            )
            .await;
        health.set_service_status("", status).await;
    }
}

/// What screens callers: admission, card-testing detection, and the store they share across
/// replicas when `--redis-url` names one (waited for, briefly).
async fn screening(
    config: &Config,
) -> (
    Arc<Admission>,
    Arc<CardTestingDetector>,
    Option<Arc<SharedStore>>,
) {
    let classes: Vec<&str> = std::iter::once(DEFAULT_CLASS)
        .chain(config.rate_limits.iter().map(|rule| rule.class.as_str()))
        .collect();
    let shared_store = config.redis.clone().map(SharedStore::connect);
    let mut card_testing = CardTestingDetector::new(config.card_testing, &classes);
    if let Some(keys) = &config.fingerprint_keys {
        card_testing = card_testing.with_card_key_from(keys.signing());
    }
    let card_testing = Arc::new(if shared_store.is_some() {
        card_testing.pooled()
    } else {
        card_testing
    });
    let admission = Arc::new(Admission::new(
        &config.admission_rules(),
        shared_store.as_ref(),
    ));
    if let Some(shared_store) = &shared_store
        && !shared_store.ready(SHARED_STORE_WAIT).await
    {
        tracing::warn!(
            "the shared store (Redis) did not answer within {SHARED_STORE_WAIT:?} of start; serving, with --quota-failure-mode for quota checks and each replica's own card-testing detection until it does"
        );
    }
    (admission, card_testing, shared_store)
}

/// A port's server, or nothing when the port is not configured.
async fn if_configured(
    server: Option<impl Future<Output = Result<(), ServerError>>>,
) -> Result<(), ServerError> {
    match server {
        Some(server) => server.await,
        None => Ok(()),
    }
}

/// The card lookup service answering from `api`, with the configured Inspect limits and
/// message size.
fn card_lookup_service(config: &Config, api: CardApi) -> CardLookupServiceServer<CardLookup> {
    CardLookupServiceServer::new(CardLookup::new(
        api,
        crate::grpc::inspect_stream::StreamLimits {
            idle_timeout: config.inspect_idle_timeout,
            max_life: config.inspect_max_life,
        },
    ))
    .max_decoding_message_size(MAX_REQUEST_BYTES)
}

/// Waits for the shutdown signal, turns health NOT_SERVING (so load balancers stop sending
/// calls), then stops the servers.
async fn stop_on(
    shutdown: impl Future<Output = ()>,
    health: tonic_health::server::HealthReporter,
    stop: CancellationToken,
) {
    shutdown.await;
    tracing::info!("shutting down: health NOT_SERVING, finishing in-flight calls");
    health
        .set_not_serving::<CardLookupServiceServer<CardLookup>>()
        .await;
    health
        .set_service_status("", tonic_health::ServingStatus::NotServing)
        .await;
    stop.cancel();
}

/// The TLS set-up from the configuration; and a warning when card numbers would travel in
/// clear over a network.
fn load_tls(config: &Config, listener: &TcpListener) -> Result<Option<Arc<LiveTls>>, ServerError> {
    let tls = config.tls.clone().map(LiveTls::load).transpose()?;
    let exposed = listener
        .local_addr()
        .is_ok_and(|addr| !addr.ip().is_loopback());
    if tls.is_none() && exposed {
        tracing::warn!(
            "serving card numbers WITHOUT TLS on a non-loopback address; give --tls-cert and --tls-key (PCI DSS 4.2.1)"
        );
    }
    Ok(tls.map(Arc::new))
}

/// Server reflection v1 and v1alpha (grpcurl before 1.9 speaks only v1alpha) over the given
/// encoded descriptor sets.
fn reflection(
    descriptor_sets: &[&'static [u8]],
) -> (
    tonic_reflection::server::v1::ServerReflectionServer<
        impl tonic_reflection::server::v1::ServerReflection,
    >,
    tonic_reflection::server::v1alpha::ServerReflectionServer<
        impl tonic_reflection::server::v1alpha::ServerReflection,
    >,
) {
    let builder = || {
        descriptor_sets
            .iter()
            .fold(tonic_reflection::server::Builder::configure(), |b, set| {
                b.register_encoded_file_descriptor_set(set)
            })
    };
    (
        builder()
            .build_v1()
            .expect("the compiled descriptor sets are valid"),
        builder()
            .build_v1alpha()
            .expect("the compiled descriptor sets are valid"),
    )
}

/// Reloads what can change under a running server: the BIN data (file changes, SIGHUP) and
/// the TLS certificates (file changes).
fn start_reloaders(
    config: &Config,
    store: &Arc<BinStore>,
    tls: Option<&Arc<LiveTls>>,
    stop: &CancellationToken,
) -> Result<(), ServerError> {
    if let Some(tls) = tls {
        let live = Arc::clone(tls);
        watch::on_change(
            &tls.files().paths(),
            stop.clone(),
            // Whether the certificates' directories are watched has no gauge (yet).
            |_| {},
            move || {
                live.reload();
                std::future::ready(())
            },
        )?;
    }
    let data_files: Vec<&Path> = store.files().collect();
    if config.watch_data_files && !data_files.is_empty() {
        let store = Arc::clone(store);
        watch::on_change(
            &data_files,
            stop.clone(),
            bins::record_watching,
            move || {
                let store = Arc::clone(&store);
                async move {
                    // The result is logged and exported by the store.
                    let _ = store.reload(ReloadTrigger::FileChange).await;
                }
            },
        )?;
        tracing::info!("watching the BIN data files for changes");
    }
    if let Some(every) = config.data_recheck_interval
        && !data_files.is_empty()
    {
        store.recheck_every(every, stop.clone())?;
    }
    #[cfg(unix)]
    tokio::spawn(reload_on_sighup(Arc::clone(store), stop.clone()));
    Ok(())
}

/// The tasks that keep per-client state: forgetting idle clients, and with a shared store,
/// pooling card-testing windows across replicas.
fn start_client_upkeep(
    admission: &Arc<Admission>,
    card_testing: Arc<CardTestingDetector>,
    shared_store: Option<Arc<SharedStore>>,
    stop: &CancellationToken,
) {
    if let Some(shared_store) = shared_store {
        tokio::spawn(card_testing::fleet::pool(
            Arc::clone(&card_testing),
            shared_store,
            stop.clone(),
        ));
    }
    tokio::spawn(forget_idle_clients(
        Arc::clone(admission),
        card_testing,
        stop.clone(),
    ));
}

/// Drops the per-client state (rate limits, card-testing windows) of clients not seen
/// lately, every minute.
async fn forget_idle_clients(
    admission: Arc<Admission>,
    card_testing: Arc<CardTestingDetector>,
    stop: CancellationToken,
) {
    let mut interval = tokio::time::interval(Duration::from_secs(60));
    while stop.run_until_cancelled(interval.tick()).await.is_some() {
        admission.forget_idle_clients();
        card_testing.forget_idle_clients();
    }
}

/// Compacts histogram storage now and then (the exporter leaves this to its user).
async fn metrics_upkeep(
    prometheus: metrics_exporter_prometheus::PrometheusHandle,
    stop: CancellationToken,
) {
    let mut interval = tokio::time::interval(METRICS_UPKEEP_INTERVAL);
    while stop.run_until_cancelled(interval.tick()).await.is_some() {
        prometheus.run_upkeep();
    }
}

/// The Prometheus endpoint (HTTP/1), within the port's connection caps, closing connections
/// that take longer than `header_timeout` to send a request's headers (which `axum::serve`
/// cannot do: it sets no timer). Returns when `stop` is cancelled; the connections then
/// finish their request and close.
async fn serve_metrics(
    listener: TcpListener,
    app: axum::Router,
    caps: ConnectionCaps,
    header_timeout: Duration,
    stop: CancellationToken,
) {
    let limits = ConnectionLimits::new("metrics", caps);
    let connections = incoming::accept(listener, Protocol::Http1, limits, stop.clone());
    serve_http(
        connections,
        app,
        Versions::Http1,
        header_timeout,
        None,
        stop,
    )
    .await;
}

/// The HTTP/JSON port (`--http-listen`): the gRPC port's TLS, connection caps, preface
/// timeout (which bounds an HTTP/1 request's headers too) and connection age, HTTP/1.1 and
/// HTTP/2. Nothing without a listener.
async fn serve_http_port(
    listener: Option<TcpListener>,
    front: HttpFront,
    tls: Option<Arc<LiveTls>>,
    config: &Config,
    stop: CancellationToken,
) {
    let Some(listener) = listener else {
        return;
    };
    let max_age = jittered(config.max_connection_age);
    let incoming = incoming::accept(
        listener,
        Protocol::Http {
            tls,
            preface_timeout: config.connection_preface_timeout,
            closed_after: Some(max_age + config.max_connection_age_grace),
        },
        ConnectionLimits::with_max_age("http", config.connection_caps, max_age),
        stop.clone(),
    );
    serve_http(
        incoming,
        front,
        Versions::Both,
        config.connection_preface_timeout,
        Some(max_age),
        stop,
    )
    .await;
}

/// The HTTP versions a port speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Versions {
    Http1,
    /// HTTP/1.1 and HTTP/2, told apart by the connection's first bytes; HTTP/2 with the gRPC
    /// port's limits.
    Both,
}

/// Serves `service` on `connections` with hyper, closing connections that take longer than
/// `header_timeout` to send an HTTP/1 request's headers. A connection `max_age` old is closed
/// gracefully (HTTP/2: GOAWAY; HTTP/1.1: `Connection: close` on the answer in flight, or
/// closed when idle), so that clients reconnect and spread over the replicas. Returns when
/// `stop` is cancelled; the connections then finish their requests and close.
async fn serve_http<S, B>(
    mut connections: tokio_stream::wrappers::ReceiverStream<std::io::Result<incoming::Connection>>,
    service: S,
    versions: Versions,
    header_timeout: Duration,
    max_age: Option<Duration>,
    stop: CancellationToken,
) where
    S: tower::Service<
            hyper::Request<hyper::body::Incoming>,
            Response = hyper::Response<B>,
            Error = std::convert::Infallible,
        > + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    use tonic::transport::server::Connected;
    while let Some(Some(Ok(connection))) = stop.run_until_cancelled(connections.next()).await {
        // Each request learns who is on the other end (address, client certificate), for
        // admission, as tonic tells the gRPC port's calls.
        let peer = connection.connect_info();
        let service = service.clone();
        let service = hyper::service::service_fn(move |mut request| {
            request.extensions_mut().insert(peer.clone());
            let mut service = service.clone();
            async move {
                std::future::poll_fn(|cx| service.poll_ready(cx)).await?;
                service.call(request).await
            }
        });
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut builder =
                hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
            builder
                .http1()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(header_timeout);
            if versions == Versions::Http1 {
                builder = builder.http1_only();
            } else {
                builder
                    .http2()
                    .timer(hyper_util::rt::TokioTimer::new())
                    .max_concurrent_streams(MAX_CONCURRENT_STREAMS)
                    .max_header_list_size(MAX_HEADER_LIST_BYTES)
                    .max_local_error_reset_streams(Some(MAX_LOCAL_ERROR_RESETS))
                    .keep_alive_interval(Some(KEEPALIVE_INTERVAL))
                    .keep_alive_timeout(KEEPALIVE_TIMEOUT);
            }
            let connection =
                builder.serve_connection(hyper_util::rt::TokioIo::new(connection), service);
            let mut connection = std::pin::pin!(connection);
            let aged = async {
                match max_age {
                    Some(age) => tokio::time::sleep(age).await,
                    None => std::future::pending().await,
                }
            };
            // Errors are the client's (a bad request, a timeout), answered or closed by hyper.
            tokio::select! {
                _ = connection.as_mut() => return,
                () = stop.cancelled() => connection.as_mut().graceful_shutdown(),
                () = aged => connection.as_mut().graceful_shutdown(),
            }
            let _ = connection.await;
        });
    }
}

/// The connections of a plaintext HTTP/2 port for operators and probes (`port` names it in
/// the connection metrics): the gRPC port's caps and preface timeout, no connection age.
fn plaintext_incoming(
    listener: TcpListener,
    port: &'static str,
    config: &Config,
    stop: &CancellationToken,
) -> tokio_stream::wrappers::ReceiverStream<std::io::Result<incoming::Connection>> {
    incoming::accept(
        listener,
        Protocol::Http2 {
            tls: None,
            preface_timeout: config.connection_preface_timeout,
            closed_after: None,
        },
        ConnectionLimits::new(port, config.connection_caps),
        stop.clone(),
    )
}

/// The health service alone, plaintext, on a socket of its own: the kubelet's gRPC probes
/// reach it when the gRPC port requires client certificates. It is a clone of the gRPC port's
/// health service, with the same reporter, so it answers what that port answers (NOT_SERVING
/// from the start of a shutdown); no admission, so a probe is never refused.
async fn serve_health<H: Health>(
    listener: TcpListener,
    health: HealthServer<H>,
    config: &Config,
    stop: CancellationToken,
) -> Result<(), ServerError> {
    let incoming = plaintext_incoming(listener, "health", config, &stop);
    http2_server()
        .add_service(health)
        .serve_with_incoming_shutdown(incoming, stop.cancelled_owned())
        .await?;
    Ok(())
}

/// The Prometheus endpoint of `data sync` on `addr`, with the service's connection caps and
/// header timeout, until `stop`; installs the process's metrics recorder (the caller describes
/// its metrics). Returns the bound address.
///
/// # Errors
/// When the address cannot be bound or a recorder is installed already.
pub async fn serve_updater_metrics(
    addr: std::net::SocketAddr,
    stop: CancellationToken,
) -> Result<std::net::SocketAddr, String> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let bound = listener
        .local_addr()
        .map_err(|e| format!("cannot read the bound address: {e}"))?;
    let handle = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .map_err(|e| format!("cannot install the metrics recorder: {e}"))?;
    let defaults = Config::default();
    tokio::spawn(serve_metrics(
        listener,
        telemetry::metrics_app(handle),
        defaults.connection_caps,
        defaults.connection_preface_timeout,
        stop,
    ));
    Ok(bound)
}

/// The admin service (and reflection, for grpcurl) on its own socket, which operators reach
/// and payment clients do not; with the gRPC port's HTTP/2 limits, connection caps and preface
/// timeout.
async fn serve_admin(
    listener: TcpListener,
    admin: Admin,
    config: &Config,
    stop: CancellationToken,
) -> Result<(), ServerError> {
    let incoming = plaintext_incoming(listener, "admin", config, &stop);
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(ADMIN_FILE_DESCRIPTOR_SET)
    };
    http2_server()
        .layer(CountLayer::new())
        .add_service(
            reflection()
                .build_v1()
                .expect("the compiled descriptor set is valid"),
        )
        .add_service(
            reflection()
                .build_v1alpha()
                .expect("the compiled descriptor set is valid"),
        )
        .add_service(AdminServiceServer::new(admin).max_decoding_message_size(MAX_REQUEST_BYTES))
        .serve_with_incoming_shutdown(incoming, stop.cancelled_owned())
        .await?;
    Ok(())
}

/// Reloads the BIN data on every SIGHUP, the Unix way to ask a daemon to re-read its files.
#[cfg(unix)]
async fn reload_on_sighup(store: Arc<BinStore>, stop: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut hangups) = signal(SignalKind::hangup()) else {
        tracing::warn!("cannot listen for SIGHUP; reload the data with the admin service");
        return;
    };
    while stop
        .run_until_cancelled(hangups.recv())
        .await
        .flatten()
        .is_some()
    {
        // The result is logged and exported by the store.
        let _ = store.reload(ReloadTrigger::Signal).await;
    }
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM (what Kubernetes sends).
///
/// # Panics
/// If the signal handlers cannot be installed, which happens only outside a Tokio runtime.
pub async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .expect("a SIGTERM handler can be installed");
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_jittered_age_is_within_a_tenth_either_way() {
        let age = Duration::from_secs(300);
        for _ in 0..200 {
            let jittered = jittered(age);
            assert!(
                (Duration::from_secs(270)..=Duration::from_secs(330)).contains(&jittered),
                "{jittered:?}"
            );
        }
    }
}
