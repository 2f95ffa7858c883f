//! What the HTTP face answers: JSON bodies, errors as a `google.rpc.Status` JSON body with the
//! HTTP status of their code (the one place a gRPC status becomes an HTTP answer), and the CORS
//! headers of every answer.

use http_body_util::Full;
use serde_json::json;
use tonic::codegen::Bytes;
use tonic::codegen::http::{self, HeaderName, HeaderValue, StatusCode, header};
use tonic::{Code, Status};
use tonic_types::StatusExt;

use crate::request_id::REQUEST_ID;

/// An answer of the HTTP face.
pub(super) type Answer = http::Response<tonic::body::Body>;

const JSON: HeaderValue = HeaderValue::from_static("application/json");
const ALLOWED_METHODS: HeaderValue = HeaderValue::from_static("GET, POST, OPTIONS");
/// The request headers a browser may send: JSON bodies, the headers binlist clients send
/// (binlist's version, their name, binlist's key, which is not read), and the headers the
/// service reads.
const ALLOWED_HEADERS: HeaderValue = HeaderValue::from_static(
    "content-type, accept-version, x-client, authorization, x-request-id, x-client-id, x-cardlookup-subject",
);
/// The answer headers a browser's script may read.
const EXPOSED_HEADERS: HeaderValue = HeaderValue::from_static("x-request-id, retry-after");
/// How long a browser may keep a preflight's answer: a day.
const PREFLIGHT_MAX_AGE: HeaderValue = HeaderValue::from_static("86400");

/// A JSON answer, with the call's code for the metrics (in the extensions, where admission's
/// call record reads it).
pub(super) fn json(status: StatusCode, code: Code, body: impl Into<Bytes>) -> Answer {
    let mut answer = http::Response::new(tonic::body::Body::new(Full::new(body.into())));
    *answer.status_mut() = status;
    answer.headers_mut().insert(header::CONTENT_TYPE, JSON);
    answer.extensions_mut().insert(code);
    answer
}

/// An error as HTTP answers it: the status of its code (the `google.api.http` mapping), a
/// `google.rpc.Status` JSON body (with its RetryInfo, when it has one), `Retry-After` in
/// whole seconds when the caller is told when to retry, and the request id.
pub(super) fn error(status: &Status) -> Answer {
    let retry = status.get_details_retry_info().and_then(|r| r.retry_delay);
    let details: Vec<_> = retry
        .iter()
        .map(|delay| {
            json!({
                "@type": "type.googleapis.com/google.rpc.RetryInfo",
                "retryDelay": format!("{}.{:03}s", delay.as_secs(), delay.subsec_millis()),
            })
        })
        .collect();
    let mut body = json!({"code": status.code() as i32, "message": status.message()});
    if !details.is_empty() {
        body["details"] = json!(details);
    }
    let mut answer = json(
        http_status(status.code()),
        status.code(),
        serde_json::to_vec(&body).expect("a JSON value serializes"),
    );
    if let Some(delay) = retry {
        let seconds = delay.as_secs() + u64::from(delay.subsec_nanos() > 0);
        answer
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    if let Some(id) = status.metadata().get(REQUEST_ID) {
        request_id(&mut answer, id.as_encoded_bytes());
    }
    answer
}

/// Puts the call's request id into an answer.
pub(super) fn request_id(answer: &mut Answer, id: &[u8]) {
    if let Ok(value) = HeaderValue::from_bytes(id) {
        answer
            .headers_mut()
            .insert(HeaderName::from_static(REQUEST_ID), value);
    }
}

/// The HTTP status of a gRPC code, as `google.api.http` maps them (google/rpc/code.proto).
fn http_status(code: Code) -> StatusCode {
    match code {
        Code::Ok => StatusCode::OK,
        Code::Cancelled => StatusCode::from_u16(499).expect("499 is a status code"),
        Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => {
            StatusCode::BAD_REQUEST
        }
        Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::AlreadyExists | Code::Aborted => StatusCode::CONFLICT,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
        Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        Code::Unimplemented => StatusCode::NOT_IMPLEMENTED,
        Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Code::Unknown | Code::Internal | Code::DataLoss => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The answer to a CORS preflight (`OPTIONS`): any origin may call, with the methods and
/// headers the routes take. Not a call: admission never sees it.
pub(super) fn preflight() -> Answer {
    let mut answer = http::Response::new(tonic::body::Body::empty());
    *answer.status_mut() = StatusCode::NO_CONTENT;
    let headers = answer.headers_mut();
    headers.insert(header::ACCESS_CONTROL_ALLOW_METHODS, ALLOWED_METHODS);
    headers.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, ALLOWED_HEADERS);
    headers.insert(header::ACCESS_CONTROL_MAX_AGE, PREFLIGHT_MAX_AGE);
    cors(answer)
}

/// Any answer with the CORS headers that let a browser's script read it. No credentials are
/// allowed: callers are told apart by certificate, address or `x-client-id`, never cookies.
pub(super) fn cors(mut answer: Answer) -> Answer {
    let headers = answer.headers_mut();
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    headers.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, EXPOSED_HEADERS);
    answer
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_map_to_the_google_api_http_statuses() {
        assert_eq!(http_status(Code::InvalidArgument), StatusCode::BAD_REQUEST);
        assert_eq!(
            http_status(Code::ResourceExhausted),
            StatusCode::TOO_MANY_REQUESTS
        );
        assert_eq!(http_status(Code::Cancelled).as_u16(), 499);
        assert_eq!(
            http_status(Code::Internal),
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }

    #[test]
    fn a_retry_delay_is_told_in_the_body_and_in_retry_after() {
        let status = Status::from(crate::admission::Refusal::RateLimited {
            class: "default".into(),
            rate: "20/s".parse().unwrap(),
            retry_after: std::time::Duration::from_millis(1_040),
        });
        let answer = error(&status);
        assert_eq!(answer.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(answer.headers()[header::RETRY_AFTER], "2");
        assert_eq!(
            answer.extensions().get::<Code>(),
            Some(&Code::ResourceExhausted)
        );
    }
}
