//! Every call to one of the service's methods is counted exactly once: here, and nowhere else.
//!
//! A [`CallRecord`] is made when a call enters admission (`grpc_server_started_total`) and
//! counts the call's end once (`grpc_server_handled_total` and the latency histogram), with
//! the code the client was sent: the `grpc-status` of the response's headers (a refusal, a
//! timeout, a panic, an error answered by the handler or by tonic's decoder) or of its
//! trailers (an answer, an Inspect stream's end); a request its caller reset before sending its
//! message counts as `Canceled`, not as tonic's INTERNAL answer to it, which nobody receives.
//! The record travels with the call: in the admission future until the response is made, then
//! in the response body until its last frame. Whatever drops it before the client was sent a
//! code (the caller's `grpc-timeout` passing while the call waits for its request, a reset
//! stream, an Inspect stream the client abandoned, a stopping server) makes the call
//! `Canceled`.
//!
//! The body also holds the call's concurrency slot, so a call holds its place until its
//! answer has gone out: an Inspect stream for its whole life.
//!
//! [`CountLayer`] counts the calls of a service without admission's rules (the admin
//! service's), with the same records.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use http_body::{Body, Frame, SizeHint};
use tonic::Code;
use tonic::codegen::{Bytes, http};

use super::in_flight::InFlightSlot;
use crate::telemetry::{Method, RpcMetrics};

/// One call, counted as started; its end is counted once, when the record learns the code or
/// is dropped.
#[derive(Debug)]
pub(super) struct CallRecord {
    metrics: Arc<RpcMetrics>,
    method: Method,
    started: Instant,
    /// The code sent in the response's headers, if any (a trailers-only answer).
    code: Option<Code>,
    /// Whether the end has been counted.
    counted: bool,
}

impl CallRecord {
    pub(super) fn start(metrics: &Arc<RpcMetrics>, method: Method) -> Self {
        metrics.started(method);
        Self {
            metrics: Arc::clone(metrics),
            method,
            started: Instant::now(),
            code: None,
            counted: false,
        }
    }

    /// When the call entered admission.
    pub(super) fn started(&self) -> Instant {
        self.started
    }

    fn end(&mut self, code: Code) {
        if !self.counted {
            self.counted = true;
            self.metrics
                .handled(self.method, code, self.started.elapsed());
        }
    }
}

/// The response as the client gets it: its body carries the call's record (and, for a
/// handler's answer, its slot) to the call's end. A call of no method of the service has no
/// record, and its slot is given back at once.
pub(super) fn follow(
    record: Option<CallRecord>,
    response: http::Response<tonic::body::Body>,
    slot: Option<InFlightSlot>,
) -> http::Response<tonic::body::Body> {
    let Some(mut record) = record else {
        return response;
    };
    // A front end that is not gRPC (the HTTP/JSON face) puts its answer's code in the
    // response's extensions.
    record.code = response
        .extensions()
        .get::<Code>()
        .copied()
        .or_else(|| status_of(response.headers()))
        .map(|code| {
            if code == Code::Internal && is_reset_request(response.headers()) {
                Code::Cancelled
            } else {
                code
            }
        });
    response.map(|inner| {
        tonic::body::Body::new(CountedBody {
            inner,
            record,
            _slot: slot,
        })
    })
}

impl Drop for CallRecord {
    fn drop(&mut self) {
        self.end(self.code.unwrap_or(Code::Cancelled));
    }
}

/// The headers of a gRPC answer's code and message: names made once, where a `&str` would be
/// parsed on every look-up, twice a call.
static GRPC_STATUS: http::HeaderName = http::HeaderName::from_static("grpc-status");
static GRPC_MESSAGE: http::HeaderName = http::HeaderName::from_static("grpc-message");

/// Whether an answer is tonic's to a unary request that ended before its message came. hyper
/// hands the service a request its caller reset (RST_STREAM, CANCEL) as one that ended there,
/// and tonic answers it INTERNAL; but the caller gave up, and nobody gets that answer, so the
/// call counts as `Canceled`, as a caller that gives up later does. (A caller that closes its
/// request without a message is counted so too.) tests/counted_calls.rs pins tonic's message.
fn is_reset_request(headers: &http::HeaderMap) -> bool {
    headers
        .get(&GRPC_MESSAGE)
        .is_some_and(|message| message.as_bytes() == b"Missing%20request%20message.")
}

/// The `grpc-status` of a header map, if it has one.
fn status_of(headers: &http::HeaderMap) -> Option<Code> {
    headers
        .get(&GRPC_STATUS)
        .map(|value| Code::from_bytes(value.as_bytes()))
}

pin_project_lite::pin_project! {
    /// A response body that counts its call's end when its trailers go out.
    struct CountedBody {
        #[pin]
        inner: tonic::body::Body,
        record: CallRecord,
        // Held, not read: dropped with the body, which gives the place back.
        _slot: Option<InFlightSlot>,
    }
}

impl Body for CountedBody {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, tonic::Status>>> {
        let this = self.project();
        let frame = std::task::ready!(this.inner.poll_frame(cx));
        match &frame {
            Some(Ok(frame)) => {
                if let Some(code) = frame.trailers_ref().and_then(status_of) {
                    this.record.end(code);
                }
            }
            // The stream is reset: the client gets no status.
            Some(Err(_)) => this.record.end(Code::Cancelled),
            // The end without trailers: the code, if any, was in the headers (dropping the
            // record counts it).
            None => {}
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Counts every call of the services behind it, as admission does, without admission's rules:
/// for the admin service, which operators call on a port of its own.
#[derive(Debug, Clone)]
pub struct CountLayer(Arc<RpcMetrics>);

impl CountLayer {
    #[must_use]
    pub fn new() -> Self {
        Self(Arc::new(RpcMetrics::new()))
    }
}

impl Default for CountLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl<S> tower::Layer<S> for CountLayer {
    type Service = CountService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CountService {
            inner,
            metrics: Arc::clone(&self.0),
        }
    }
}

/// The service [`CountLayer`] makes.
#[derive(Debug, Clone)]
pub struct CountService<S> {
    inner: S,
    metrics: Arc<RpcMetrics>,
}

impl<S, B> tower::Service<http::Request<B>> for CountService<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<tonic::body::Body>>,
    S::Future: Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let record = Method::from_path(request.uri().path())
            .map(|method| CallRecord::start(&self.metrics, method));
        let call = self.inner.call(request);
        Box::pin(async move { Ok(follow(record, call.await?, None)) })
    }
}
