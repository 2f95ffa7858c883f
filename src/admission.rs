//! Admission control, in front of every RPC: who the client is, whether its rate limit allows
//! the call, whether the server has room for it, and how long an admitted call may hold its
//! place (`--request-timeout`); a panicking handler is turned into an `INTERNAL` answer for that
//! call alone.
//!
//! Refusals are immediate `RESOURCE_EXHAUSTED` answers, never a queue: a payment flow would
//! rather fail fast and fall back than wait. Health checks and reflection are never refused.

use std::collections::HashMap;
use std::future::Future;
use std::num::NonZeroU32;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use crossbeam_utils::CachePadded;
use futures_util::FutureExt;
use futures_util::future::CatchUnwind;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use metrics::Counter;
use tonic::codegen::http;
use tonic::metadata::MetadataValue;
use tonic::{Code, Status};

use crate::grpc::observe::is_safe_token;
use crate::incoming::PeerInfo;
use crate::telemetry::{Method, RpcMetrics};

/// The header a caller names itself with, when it has no client certificate. A `HeaderName`
/// rather than a `&str`, which would be parsed again on every call.
pub static CLIENT_ID_HEADER: http::HeaderName = http::HeaderName::from_static("x-client-id");
/// The class of clients that no `--rate-limit` rule names.
pub const DEFAULT_CLASS: &str = "default";
/// Paths that are never refused: load balancers and engineers must always get an answer.
const EXEMPT_PREFIXES: [&str; 3] = [
    "/grpc.health.v1.Health/",
    "/grpc.reflection.v1.ServerReflection/",
    "/grpc.reflection.v1alpha.ServerReflection/",
];

/// One `--rate-limit` rule: a class of clients, its rate, and its members.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimitRule {
    pub class: String,
    /// Calls a second each client of the class may make (also the burst).
    pub per_second: NonZeroU32,
    /// Client identities in the class; empty for `default`.
    pub members: Vec<String>,
}

impl std::str::FromStr for RateLimitRule {
    type Err = String;

    /// `CLASS=RATE[:ID,ID...]`, RATE as `N/s` or `N/m` (rounded up to a whole number a
    /// second): `default=100/s`, `checkout=5000/s:checkout-svc,checkout-canary`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let usage = || {
            format!("`{text}`: expected CLASS=RATE[:ID,ID...], e.g. checkout=5000/s:checkout-svc")
        };
        let (class, rest) = text.split_once('=').ok_or_else(usage)?;
        let (rate, members) = rest.split_once(':').unwrap_or((rest, ""));
        let (count, unit) = rate.split_once('/').ok_or_else(usage)?;
        let count: u32 = count.trim().parse().map_err(|_| usage())?;
        let per_second = match unit.trim() {
            "s" => count,
            "m" => count.div_ceil(60),
            _ => return Err(usage()),
        };
        let class = class.trim();
        if class.is_empty() || !is_safe_token(class) {
            return Err(usage());
        }
        Ok(Self {
            class: class.to_owned(),
            per_second: NonZeroU32::new(per_second).ok_or_else(usage)?,
            members: members
                .split(',')
                .map(str::trim)
                .filter(|m| !m.is_empty())
                .map(str::to_owned)
                .collect(),
        })
    }
}

/// Who a call comes from: the mTLS certificate's common name (else subject), else the
/// `x-client-id` header, else the peer's IP address. Handlers find it in the request's
/// extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientIdentity {
    pub id: Arc<str>,
    /// The rate-limit class: a configured one, or `default`.
    pub class: Arc<str>,
}

#[derive(Debug)]
struct ClientClass {
    name: Arc<str>,
    per_second: NonZeroU32,
    limiter: DefaultKeyedRateLimiter<Arc<str>>,
    refused: Counter,
}

/// The admission rules and their state, shared by every connection.
#[derive(Debug)]
pub struct Admission {
    /// Calls admitted and not yet ended; at most `max_in_flight`. Written by every call from
    /// every core: on a cache line of its own, so that the read-mostly fields beside it are not
    /// invalidated each time.
    in_flight: CachePadded<AtomicUsize>,
    max_in_flight: usize,
    /// How long an admitted call may run before it is answered CANCELLED.
    request_timeout: Duration,
    classes: Vec<ClientClass>,
    /// Client id → index into `classes`.
    members: HashMap<String, usize>,
    default_class: Option<usize>,
    default_name: Arc<str>,
    shed: Counter,
    panics: Counter,
    metrics: Arc<RpcMetrics>,
}

impl Admission {
    /// At most `max_in_flight` calls at once, each for at most `request_timeout`; rates per the
    /// rules.
    #[must_use]
    pub fn new(
        max_in_flight: usize,
        request_timeout: Duration,
        rules: &[RateLimitRule],
        metrics: Arc<RpcMetrics>,
    ) -> Self {
        let classes: Vec<ClientClass> = rules
            .iter()
            .map(|rule| ClientClass {
                name: Arc::from(rule.class.as_str()),
                per_second: rule.per_second,
                limiter: RateLimiter::keyed(Quota::per_second(rule.per_second)),
                refused: metrics::counter!(
                    "cardlookup_requests_rate_limited_total",
                    "client_class" => rule.class.clone()
                ),
            })
            .collect();
        let members = rules
            .iter()
            .enumerate()
            .flat_map(|(i, rule)| rule.members.iter().map(move |m| (m.clone(), i)))
            .collect();
        Self {
            in_flight: CachePadded::new(AtomicUsize::new(0)),
            max_in_flight,
            request_timeout,
            default_class: rules.iter().position(|r| r.class == DEFAULT_CLASS),
            classes,
            members,
            default_name: Arc::from(DEFAULT_CLASS),
            shed: metrics::counter!("cardlookup_requests_shed_total"),
            panics: metrics::counter!("cardlookup_handler_panics_total"),
            metrics,
        }
    }

    /// Forgets clients not seen lately, so per-client state does not grow without bound.
    pub fn forget_idle_clients(&self) {
        for class in &self.classes {
            class.limiter.retain_recent();
            class.limiter.shrink_to_fit();
        }
    }

    /// Counts a call that ended here, before its handler ran (refused, timed out waiting for
    /// its request, or dropped unanswered), as `observe` counts the calls that reach a handler.
    fn count_unhandled(&self, method: Option<Method>, code: Code, elapsed: Duration) {
        if let Some(method) = method {
            self.metrics.started(method);
            self.metrics.handled(method, code, elapsed);
        }
    }

    /// Who `request` comes from, and the rate-limit class that covers it (none when no rule
    /// does): one lookup of the client's id serves both.
    fn identify<B>(&self, request: &http::Request<B>) -> (ClientIdentity, Option<&ClientClass>) {
        let peer = request.extensions().get::<PeerInfo>();
        let id: Arc<str> = peer
            .and_then(|p| p.client_subject.clone())
            .or_else(|| {
                request
                    .headers()
                    .get(&CLIENT_ID_HEADER)
                    .and_then(|v| v.to_str().ok())
                    .filter(|id| is_safe_token(id))
                    .map(Arc::from)
            })
            .or_else(|| peer.and_then(|p| p.remote_ip.clone()))
            .unwrap_or_else(|| Arc::from("unknown"));
        let class = self
            .members
            .get(&*id)
            .copied()
            .or(self.default_class)
            .map(|i| &self.classes[i]);
        let name = class.map_or_else(
            || Arc::clone(&self.default_name),
            |class| Arc::clone(&class.name),
        );
        (ClientIdentity { id, class: name }, class)
    }
}

impl ClientClass {
    /// `Err` with the answer when the class has no calls left this instant for `client`.
    fn check_rate(&self, client: &ClientIdentity) -> Result<(), Status> {
        let Err(not_until) = self.limiter.check_key(&client.id) else {
            return Ok(());
        };
        self.refused.increment(1);
        let wait = not_until
            .wait_time_from(DefaultClock::default().now())
            .max(Duration::from_millis(1));
        let mut status = Status::resource_exhausted(format!(
            "rate limit of client class `{}` ({}/s) exceeded; retry after {} ms",
            self.name,
            self.per_second,
            wait.as_millis()
        ));
        // gRPC clients with a retry policy honour this pushback.
        if let Ok(value) = MetadataValue::try_from(wait.as_millis().to_string()) {
            status
                .metadata_mut()
                .insert("grpc-retry-pushback-ms", value);
        }
        Err(status)
    }
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
    S: tower::Service<http::Request<B>, Response = http::Response<tonic::body::Body>> + Clone,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = AdmissionFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        // The readied service handles this call; a fresh clone waits for the next one.
        let fresh = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, fresh);
        let path = request.uri().path();
        if EXEMPT_PREFIXES
            .iter()
            .any(|prefix| path.starts_with(prefix))
        {
            return AdmissionFuture::Exempt {
                call: inner.call(request),
            };
        }
        let method = Method::from_path(path);
        let refuse = |status: Status| {
            self.admission
                .count_unhandled(method, status.code(), Duration::ZERO);
            AdmissionFuture::Refused {
                answer: Some(status.into_http()),
            }
        };

        let (client, class) = self.admission.identify(&request);
        if let Err(status) = class.map_or(Ok(()), |class| class.check_rate(&client)) {
            tracing::debug!(client = %client.id, class = %client.class, "rate limited");
            return refuse(status);
        }
        let Some(slot) = InFlightSlot::take(&self.admission, method) else {
            self.admission.shed.increment(1);
            return refuse(Status::resource_exhausted(
                "the server is at its concurrency limit; retry shortly or on another replica",
            ));
        };
        request.extensions_mut().insert(client);
        AdmissionFuture::Admitted {
            call: AssertUnwindSafe(inner.call(request)).catch_unwind(),
            slot,
            expiry: None,
        }
    }
}

/// One admitted call's place under `--max-concurrent-requests`, given back when the call ends
/// (answered, panicked or dropped).
///
/// A counter rather than a semaphore: calls never wait for a place, and a semaphore's release
/// takes a lock on every call.
///
/// A call dropped before it was answered is counted here, as `Canceled`: its `grpc-timeout`
/// passed while it waited for its request (tonic answers it, outside this layer), or the server
/// stopped, so no handler ran to count it. (A call whose caller resets the stream is not
/// dropped: tonic answers it, as a request body that failed, and no metric counts it.)
#[derive(Debug)]
pub struct InFlightSlot {
    admission: Arc<Admission>,
    method: Option<Method>,
    started: Instant,
    /// Whether the call has been answered and counted, by its handler or here.
    answered: bool,
}

impl InFlightSlot {
    /// A place if fewer than `max_in_flight` calls hold one. Compare-and-swap rather than
    /// add-then-check, so that calls refused at the limit never make another call see the
    /// limit reached when it is not.
    fn take(admission: &Arc<Admission>, method: Option<Method>) -> Option<Self> {
        admission
            .in_flight
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |taken| {
                (taken < admission.max_in_flight).then_some(taken + 1)
            })
            .ok()
            .map(|_| Self {
                admission: Arc::clone(admission),
                method,
                started: Instant::now(),
                answered: false,
            })
    }

    /// Counts the call as ended here with `code`, no handler having counted it.
    fn count_unhandled(&mut self, code: Code) {
        self.answered = true;
        self.admission
            .count_unhandled(self.method, code, self.started.elapsed());
    }
}

impl Drop for InFlightSlot {
    fn drop(&mut self) {
        if !self.answered {
            self.count_unhandled(Code::Cancelled);
        }
        self.admission.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

pin_project_lite::pin_project! {
    /// The answer [`AdmissionService`] gives: a named future rather than a boxed one, so a call
    /// costs no allocation of its own here.
    #[project = AdmissionProjection]
    pub enum AdmissionFuture<F> {
        /// Health and reflection: the inner call as it is.
        Exempt { #[pin] call: F },
        /// Refused before the handler; the answer is ready.
        Refused { answer: Option<http::Response<tonic::body::Body>> },
        /// The handler's call, holding its slot until it ends or its time is up; a panic
        /// becomes `INTERNAL`. `expiry` is the request timeout's timer, made only when the
        /// call has to wait.
        Admitted {
            #[pin]
            call: CatchUnwind<AssertUnwindSafe<F>>,
            slot: InFlightSlot,
            expiry: Option<Pin<Box<tokio::time::Sleep>>>,
        },
    }
}

impl<F, E> Future for AdmissionFuture<F>
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
            AdmissionProjection::Admitted { call, slot, expiry } => {
                let Poll::Ready(answer) = call.poll(cx) else {
                    // A timer only for a call that waits (for its request body, as a rule):
                    // nearly every call is answered on its first poll and never needs one,
                    // which saves making and dropping a tokio timer on every call.
                    let expiry = expiry.get_or_insert_with(|| {
                        let deadline = slot.started + slot.admission.request_timeout;
                        Box::pin(tokio::time::sleep_until(deadline.into()))
                    });
                    std::task::ready!(expiry.as_mut().poll(cx));
                    // The call is still waiting for its request: a unary handler, once started,
                    // runs to its end in one poll, so no handler has counted it.
                    slot.count_unhandled(Code::Cancelled);
                    // As tonic answers a call past the caller's own `grpc-timeout`.
                    return Poll::Ready(Ok(Status::cancelled("Timeout expired").into_http()));
                };
                // Its handler counted it (or, panicking, it is counted below).
                slot.answered = true;
                Poll::Ready(answer.unwrap_or_else(|_panic| {
                    // The panic's message is not logged: it could hold request data. The panic
                    // hook (main.rs) logs where it happened.
                    let admission = &slot.admission;
                    admission.panics.increment(1);
                    if let Some(method) = slot.method {
                        admission
                            .metrics
                            .handled(method, Code::Internal, slot.started.elapsed());
                    }
                    Ok(Status::internal("internal error; the call was not completed").into_http())
                }))
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
            max_in_flight,
            Duration::from_secs(1),
            &[],
            Arc::new(RpcMetrics::new()),
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

    #[test]
    fn at_most_the_limit_of_calls_hold_a_place_and_an_ended_call_frees_its_own() {
        let admission = Arc::new(Admission::new(
            2,
            Duration::from_secs(1),
            &[],
            Arc::new(RpcMetrics::new()),
        ));
        let first = InFlightSlot::take(&admission, None).expect("below the limit");
        let second = InFlightSlot::take(&admission, None).expect("below the limit");
        for _ in 0..3 {
            assert!(
                InFlightSlot::take(&admission, None).is_none(),
                "at the limit"
            );
        }
        drop(first);
        let third = InFlightSlot::take(&admission, None).expect("a place was freed");
        assert!(InFlightSlot::take(&admission, None).is_none());
        drop((second, third));
        assert_eq!(admission.in_flight.load(Ordering::Acquire), 0);
    }

    #[test]
    fn rules_parse() {
        let rule: RateLimitRule = "checkout=5000/s:checkout-svc, canary".parse().unwrap();
        assert_eq!(rule.class, "checkout");
        assert_eq!(rule.per_second.get(), 5000);
        assert_eq!(rule.members, ["checkout-svc", "canary"]);
        let rule: RateLimitRule = "default=90/m".parse().unwrap();
        assert_eq!((rule.per_second.get(), rule.members.len()), (2, 0));
        for bad in [
            "checkout",
            "checkout=5000",
            "checkout=0/s",
            "checkout=5/h",
            "=5/s",
            "a b=5/s",
        ] {
            assert!(bad.parse::<RateLimitRule>().is_err(), "{bad}");
        }
    }
}
