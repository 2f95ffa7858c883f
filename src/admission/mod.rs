//! Admission control, in front of every RPC: who the client is (`identify`), whether its rate
//! limit allows the call, whether the client is within its share of the server's places and
//! the server has room for the call, and how long an admitted call may hold its place
//! (`--request-timeout`); a panicking handler is turned into an `INTERNAL` answer for that
//! call alone. Every call that enters is counted here, once (`calls`).
//!
//! Refusals are immediate `RESOURCE_EXHAUSTED` answers, never a queue: a payment flow would
//! rather fail fast and fall back than wait. Health checks and reflection are never refused.
//!
//! What admission means for an Inspect stream: its rate limit and its quotas are checked once,
//! when it opens (a stream is one call); it holds a concurrency place for its whole life, until
//! its last answer has gone out or the client goes away, so a client's open streams count
//! against its share of the places; and `--request-timeout` does not end it (the handler
//! answers at once; the stream's own limits, `--inspect-idle-timeout` and
//! `--inspect-max-life`, end it: see `grpc::inspect_stream`).
//!
//! A unary call holds its place from its headers until its answer: a caller that sends the
//! headers and never the message holds it for `--request-timeout` at most, and within its
//! share.
//!
//! - `identify`: the client's identity (certificate, trusted `x-client-id`, else address).
//! - `clients`: per-client state (bucket, calls in flight), bounded in entries.
//! - [`rate`]: a rate as operators write it (`20/h`) and its token bucket.
//! - [`rate_limit`]: `--rate-limit` classes and their rates.
//! - `in_flight`: the concurrency limit's places, and each client's share of them.
//! - [`quota`]: `--quota`, limits shared by every replica, counted in Redis; checked after
//!   the local rate limit and before a concurrency place is taken.
//! - `calls`: the one place calls are counted in the gRPC metrics ([`CountLayer`] counts
//!   the admin service's calls the same way).
//!
//! The HTTP/JSON port (`crate::http`) is served through the same [`AdmissionLayer`]: its
//! routes name their method in the request's extensions, its answers carry their code in
//! theirs, and a refusal's answer carries the [`Refusal`], which that front end answers as
//! JSON.

mod calls;
mod clients;
mod identify;
mod in_flight;
pub mod quota;
pub mod rate;
pub mod rate_limit;

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use futures_util::future::CatchUnwind;
use metrics::{Counter, describe_counter};
use tonic::codegen::http;
use tonic::{Code, Status};

use crate::identity::ClientIdentity;
use crate::shared_store::SharedStore;
use crate::telemetry::{Method, RpcMetrics};
use calls::CallRecord;
use clients::Clients;
use in_flight::{InFlight, InFlightSlot};
use quota::{QuotaSettings, Quotas};
use rate_limit::RateLimits;

pub use calls::{CountLayer, CountService};
pub use identify::TrustedNetwork;
pub use rate::{Rate, RateUnit};
pub use rate_limit::{DEFAULT_CLASS, RateLimitRule};

/// The header a caller names itself with, when it has no client certificate. A `HeaderName`
/// rather than a `&str`, which would be parsed again on every call.
pub static CLIENT_ID_HEADER: http::HeaderName = http::HeaderName::from_static("x-client-id");
/// Services that are never refused: load balancers and engineers must always get an answer.
const EXEMPT_SERVICES: [&str; 3] = [
    tonic_health::pb::health_server::SERVICE_NAME,
    tonic_reflection::pb::v1::server_reflection_server::SERVICE_NAME,
    tonic_reflection::pb::v1alpha::server_reflection_server::SERVICE_NAME,
];
const SHED: &str = "cardlookup_requests_shed_total";
const CLIENTS: &str = "cardlookup_admission_clients";
const PANICS: &str = "cardlookup_handler_panics_total";

/// Why admission answered a call itself. `grpc::error` makes the status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error(
        "rate limit of client class `{class}` ({rate}) exceeded; retry after {} ms",
        retry_after.as_millis()
    )]
    RateLimited {
        class: Arc<str>,
        rate: Rate,
        retry_after: Duration,
    },
    #[error("the server is at its concurrency limit; retry shortly or on another replica")]
    Overloaded,
    #[error(
        "this client has {share} calls in flight, its share of the server's concurrency limit; \
         retry when one has ended"
    )]
    ClientShareUsed { share: usize },
    /// As tonic answers a call past the caller's own `grpc-timeout`.
    #[error("Timeout expired")]
    TimedOut,
    /// The panic's message is not given: it could hold request data.
    #[error("internal error; the call was not completed")]
    Panicked,
    /// The subject or client is never named: the caller knows whom it asked about.
    #[error(
        "quota `{quota}` ({rate}) exceeded; resets in {} s",
        retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0)
    )]
    QuotaExceeded {
        quota: Arc<str>,
        rate: Rate,
        retry_after: Duration,
    },
    #[error(
        "the quota store is unavailable and quotas fail closed (--quota-failure-mode closed); \
         retry shortly"
    )]
    QuotaStoreUnavailable,
    /// The value is not repeated: it may be the card number it looks like.
    #[error(
        "x-cardlookup-subject holds a run of {} or more digits, as a card number does; name the \
         end user by an id, an address or a device id (or a hash of one), never by a card",
        crate::card::mask::MIN_PAN_DIGITS
    )]
    SubjectLooksLikeCard,
}

impl Refusal {
    #[must_use]
    pub fn code(&self) -> Code {
        match self {
            Self::RateLimited { .. }
            | Self::Overloaded
            | Self::ClientShareUsed { .. }
            | Self::QuotaExceeded { .. }
            | Self::QuotaStoreUnavailable => Code::ResourceExhausted,
            Self::SubjectLooksLikeCard => Code::InvalidArgument,
            Self::TimedOut => Code::Cancelled,
            Self::Panicked => Code::Internal,
        }
    }

    /// When the caller may try again, for the refusals that know.
    #[must_use]
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RateLimited { retry_after, .. } | Self::QuotaExceeded { retry_after, .. } => {
                Some(*retry_after)
            }
            _ => None,
        }
    }

    /// The refusal as a gRPC answer, the refusal itself in its extensions for a front end that
    /// answers in another form (the HTTP/JSON face).
    fn answer(self) -> http::Response<tonic::body::Body> {
        let mut answer = Status::from(self.clone()).into_http();
        answer.extensions_mut().insert(self);
        answer
    }
}

/// The admission rules and their state, shared by every connection.
#[derive(Debug)]
pub struct Admission {
    in_flight: Arc<InFlight>,
    /// How long an admitted call may run before it is answered CANCELLED.
    request_timeout: Duration,
    rate_limits: RateLimits,
    trusted: Vec<TrustedNetwork>,
    clients: Clients,
    shed_server: Counter,
    shed_client: Counter,
    panics: Counter,
    metrics: Arc<RpcMetrics>,
    quotas: Option<Quotas>,
}

/// What admission allows: [`Admission::new`]'s settings, from the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdmissionRules {
    /// Calls in flight at once, over every client.
    pub max_in_flight: usize,
    /// Calls in flight at once for one client.
    pub max_in_flight_per_client: usize,
    /// How long an admitted call may run.
    pub request_timeout: Duration,
    pub rate_limits: Vec<RateLimitRule>,
    /// Networks whose callers' `x-client-id` names the client.
    pub trusted_networks: Vec<TrustedNetwork>,
    /// Clients whose state is kept at once; the least recently seen go first.
    pub max_clients: usize,
    /// `--quota`; none without quotas.
    pub quotas: Option<QuotaSettings>,
}

impl Admission {
    /// Admission under `rules`, counting their quotas in `store` (the configuration gives
    /// quotas only with a store).
    #[must_use]
    pub fn new(rules: &AdmissionRules, store: Option<&Arc<SharedStore>>) -> Self {
        describe_counter!(
            SHED,
            "Calls refused at once with RESOURCE_EXHAUSTED for want of a concurrency place: limit=server when the server was at --max-concurrent-requests, limit=client when the client held its share (--max-concurrent-requests-per-client)."
        );
        metrics::describe_gauge!(
            CLIENTS,
            "Clients whose admission state (rate-limit bucket, calls in flight) is kept, at most --max-tracked-clients."
        );
        describe_counter!(
            PANICS,
            "Calls whose handler panicked; each got INTERNAL and the server went on."
        );
        Self {
            in_flight: Arc::new(InFlight::new(
                rules.max_in_flight,
                rules.max_in_flight_per_client,
            )),
            request_timeout: rules.request_timeout,
            rate_limits: RateLimits::new(&rules.rate_limits),
            trusted: rules.trusted_networks.clone(),
            clients: Clients::new(rules.max_clients),
            shed_server: metrics::counter!(SHED, "limit" => "server"),
            shed_client: metrics::counter!(SHED, "limit" => "client"),
            panics: metrics::counter!(PANICS),
            metrics: Arc::new(RpcMetrics::new()),
            quotas: rules
                .quotas
                .as_ref()
                .zip(store)
                .map(|(settings, store)| Quotas::new(settings, Arc::clone(store))),
        }
    }

    /// Forgets clients not seen lately, so per-client state does not grow without bound.
    pub fn forget_idle_clients(&self) {
        self.clients.forget_idle();
        metrics::gauge!(CLIENTS).set(f64::from(
            u32::try_from(self.clients.len()).unwrap_or(u32::MAX),
        ));
    }

    /// Identifies the client and checks its rate limit; the client's state and identity
    /// for [`Admission::take_place`].
    fn identify<B>(&self, request: &http::Request<B>) -> Result<Admitting, Refusal> {
        let (id, label) = identify::identify(request, &self.trusted);
        let class = self.rate_limits.class_of(&id);
        let client = self.clients.get(&id, class.map(|class| class.quota));
        if let (Some(class), Some(bucket)) = (class, &client.limiter) {
            class.check_rate(bucket).inspect_err(|_| {
                tracing::debug!(client = %id, class = %class.name, "rate limited");
            })?;
        }
        let class = self.rate_limits.name(class);
        Ok(Admitting {
            client,
            identity: ClientIdentity { id, class, label },
        })
    }

    /// Takes a concurrency place for the call; an admitted call's identity goes into its
    /// extensions.
    fn take_place<B>(
        &self,
        admitting: Admitting,
        request: &mut http::Request<B>,
    ) -> Result<InFlightSlot, Refusal> {
        let slot =
            InFlightSlot::take(&self.in_flight, admitting.client).inspect_err(|refusal| {
                match refusal {
                    Refusal::ClientShareUsed { .. } => self.shed_client.increment(1),
                    _ => self.shed_server.increment(1),
                }
            })?;
        request.extensions_mut().insert(admitting.identity);
        Ok(slot)
    }

    /// Checks the call against `--quota` (in Redis), then takes its place.
    async fn check_quotas<B>(
        &self,
        admitting: Admitting,
        request: &mut http::Request<B>,
    ) -> Result<InFlightSlot, Refusal> {
        if let Some(quotas) = &self.quotas {
            let subject = request
                .headers()
                .get(&quota::SUBJECT_HEADER)
                .map(http::HeaderValue::as_bytes)
                .filter(|subject| !subject.is_empty())
                .map(quota::checked_subject)
                .transpose()?;
            quotas.check(&admitting.identity.id, subject).await?;
        }
        self.take_place(admitting, request)
    }
}

/// A call past its rate limit, on its way to a place.
struct Admitting {
    client: Arc<clients::Client>,
    identity: ClientIdentity,
}

/// Adds [`Admission`] in front of a service.
#[derive(Debug, Clone)]
pub struct AdmissionLayer(pub Arc<Admission>);

impl<S> tower::Layer<S> for AdmissionLayer {
    type Service = AdmissionService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AdmissionService {
            inner,
            admission: Arc::clone(&self.0),
        }
    }
}

/// The service [`AdmissionLayer`] makes.
#[derive(Debug, Clone)]
pub struct AdmissionService<S> {
    inner: S,
    admission: Arc<Admission>,
}

type Answer<E> = Result<http::Response<tonic::body::Body>, E>;

impl<S, B> tower::Service<http::Request<B>> for AdmissionService<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<tonic::body::Body>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = AdmissionFuture<S::Future, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        // The readied service handles this call; a fresh clone waits for the next one.
        let fresh = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, fresh);
        let path = request.uri().path();
        if EXEMPT_SERVICES.iter().any(|service| {
            path.strip_prefix('/')
                .and_then(|path| path.strip_prefix(service))
                .is_some_and(|method| method.starts_with('/'))
        }) {
            return AdmissionFuture::Exempt {
                call: inner.call(request),
            };
        }
        // Paths that are none of the service's methods (tonic answers UNIMPLEMENTED) are
        // admitted as calls are, but not counted: their names are the caller's to choose. A
        // front end whose paths are not gRPC's (the HTTP/JSON face) names the method in the
        // request's extensions.
        let record = request
            .extensions()
            .get::<Method>()
            .copied()
            .or_else(|| Method::from_path(path))
            .map(|method| CallRecord::start(&self.admission.metrics, method));
        let admitting = match self.admission.identify(&request) {
            Ok(admitting) => admitting,
            Err(refusal) => return AdmissionFuture::refused(record, refusal),
        };
        if self.admission.quotas.is_some() {
            // Only calls under quotas wait (for Redis), and pay for a boxed future.
            let admission = Arc::clone(&self.admission);
            return AdmissionFuture::Quota {
                call: Box::pin(async move {
                    match admission.check_quotas(admitting, &mut request).await {
                        Err(refusal) => Ok(calls::follow(record, refusal.answer(), None)),
                        Ok(slot) => {
                            AdmissionFuture::admitted(inner, request, admission, record, slot).await
                        }
                    }
                }),
            };
        }
        match self.admission.take_place(admitting, &mut request) {
            Err(refusal) => AdmissionFuture::refused(record, refusal),
            Ok(slot) => {
                AdmissionFuture::admitted(inner, request, Arc::clone(&self.admission), record, slot)
            }
        }
    }
}

pin_project_lite::pin_project! {
    /// The answer [`AdmissionService`] gives: a named future rather than a boxed one, so a call
    /// costs no allocation of its own here.
    #[project = AdmissionProjection]
    pub enum AdmissionFuture<F, E> {
        /// Health, reflection and paths that are not the service's: the inner call as it is.
        Exempt { #[pin] call: F },
        /// Refused before the handler; the answer is ready.
        Refused { answer: Option<http::Response<tonic::body::Body>> },
        /// The handler's call, with its record and slot until it ends or its time is up; a
        /// panic becomes `INTERNAL`. `expiry` is the request timeout's timer, made only when
        /// the call has to wait.
        Admitted {
            #[pin]
            call: CatchUnwind<AssertUnwindSafe<F>>,
            admitted: Option<(Option<CallRecord>, InFlightSlot)>,
            admission: Arc<Admission>,
            expiry: Option<Pin<Box<tokio::time::Sleep>>>,
        },
        /// A call under `--quota`: the quota check (in Redis), then the call as `Admitted`.
        Quota { call: Pin<Box<dyn Future<Output = Answer<E>> + Send>> },
    }
}

impl<F, E> AdmissionFuture<F, E> {
    fn refused(record: Option<CallRecord>, refusal: Refusal) -> Self {
        Self::Refused {
            answer: Some(calls::follow(record, refusal.answer(), None)),
        }
    }

    fn admitted<S, B>(
        mut inner: S,
        request: http::Request<B>,
        admission: Arc<Admission>,
        record: Option<CallRecord>,
        slot: InFlightSlot,
    ) -> Self
    where
        S: tower::Service<http::Request<B>, Future = F, Error = E>,
        F: Future,
    {
        Self::Admitted {
            call: AssertUnwindSafe(inner.call(request)).catch_unwind(),
            admitted: Some((record, slot)),
            admission,
            expiry: None,
        }
    }
}

impl<F, E> Future for AdmissionFuture<F, E>
where
    F: Future<Output = Answer<E>>,
{
    type Output = Answer<E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            AdmissionProjection::Exempt { call } => call.poll(cx),
            AdmissionProjection::Refused { answer } => {
                Poll::Ready(Ok(answer.take().expect("polled after completion")))
            }
            AdmissionProjection::Quota { call } => call.as_mut().poll(cx),
            AdmissionProjection::Admitted {
                call,
                admitted,
                admission,
                expiry,
            } => {
                let (answer, from_handler) = match call.poll(cx) {
                    Poll::Ready(Ok(answer)) => (answer, true),
                    Poll::Ready(Err(_panic)) => {
                        // The panic's message is not logged: it could hold request data. The
                        // panic hook (main.rs) logs where it happened.
                        admission.panics.increment(1);
                        (Ok(Refusal::Panicked.answer()), false)
                    }
                    Poll::Pending => {
                        // A timer only for a call that waits (for its request body, as a
                        // rule): nearly every call is answered on its first poll and never
                        // needs one, which saves making and dropping a timer on every call.
                        let expiry = expiry.get_or_insert_with(|| {
                            let started = admitted
                                .as_ref()
                                .and_then(|(record, _)| record.as_ref())
                                .map_or_else(Instant::now, CallRecord::started);
                            let deadline = started + admission.request_timeout;
                            Box::pin(tokio::time::sleep_until(deadline.into()))
                        });
                        std::task::ready!(expiry.as_mut().poll(cx));
                        (Ok(Refusal::TimedOut.answer()), false)
                    }
                };
                let (record, slot) = admitted.take().expect("polled after completion");
                // A handler's answer keeps the call's place until its last frame has gone out
                // (an Inspect stream's, until the stream ends); admission's own answers are
                // complete, and give it back now.
                let slot = from_handler.then_some(slot);
                Poll::Ready(answer.map(|answer| calls::follow(record, answer, slot)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::{Layer, Service, ServiceExt};

    fn admission(max_in_flight: usize) -> AdmissionLayer {
        AdmissionLayer(Arc::new(Admission::new(
            &AdmissionRules {
                max_in_flight,
                max_in_flight_per_client: max_in_flight,
                request_timeout: Duration::from_secs(1),
                rate_limits: Vec::new(),
                trusted_networks: Vec::new(),
                max_clients: 16,
                quotas: None,
            },
            None,
        )))
    }

    fn grpc_status(response: &http::Response<tonic::body::Body>) -> Option<&str> {
        response.headers().get("grpc-status")?.to_str().ok()
    }

    #[tokio::test]
    async fn a_panicking_handler_answers_internal_and_the_next_call_is_served() {
        let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let handler = {
            let calls = Arc::clone(&calls);
            tower::service_fn(move |_request: http::Request<()>| {
                let first = calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0;
                async move {
                    assert!(!first, "boom with 4111111111111111");
                    Ok::<_, std::convert::Infallible>(http::Response::new(
                        tonic::body::Body::empty(),
                    ))
                }
            })
        };
        let mut service = admission(1).layer(handler);
        let request = || {
            http::Request::post("/cardlookup.v1.CardLookupService/Validate")
                .body(())
                .unwrap()
        };
        let answer = service
            .ready()
            .await
            .unwrap()
            .call(request())
            .await
            .unwrap();
        assert_eq!(grpc_status(&answer), Some("13"), "INTERNAL");
        let message = answer
            .headers()
            .get("grpc-message")
            .unwrap()
            .to_str()
            .unwrap();
        assert!(!message.contains("4111"), "{message}");
        // The panic released its concurrency slot: the next call (limit 1) is served.
        let answer = service
            .ready()
            .await
            .unwrap()
            .call(request())
            .await
            .unwrap();
        assert_eq!(grpc_status(&answer), None);
    }
}
