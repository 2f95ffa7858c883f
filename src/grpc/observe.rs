//! What happens around every unary call: a request id and a log line. (Admission counts the
//! call in the metrics, whatever answers it.)

use std::future::Future;
use std::sync::LazyLock;
use std::time::Instant;

use tonic::metadata::{Ascii, MetadataKey, MetadataMap, MetadataValue};
use tonic::{Code, Request, Response, Status};

use crate::admission::quota::{SUBJECT_HEADER, checked_subject};
use crate::api::{Call, RequestError};
use crate::card::Pan;
use crate::identity::ClientIdentity;
use crate::request_id::{REQUEST_ID_KEY, RequestId};
use crate::telemetry::{Method, code_name};

/// Runs `handler` on the request's message and the [`Call`] (the caller's identity, from
/// admission; the request id; the quota subject), and records the call: a debug log line, and
/// the request id in the response's (or error's) metadata. With `audited` (the request layer
/// records calls in the audit trail) every call gets a request id, which its event names.
///
/// The caller's `x-request-id` is kept when it is a short token of letters, digits, `.`, `_`
/// and `-` (safe to log); otherwise a new one is made. A caller that sent none gets one the
/// service made on an error, and on a success only when the call was logged: encoding a new
/// id on every answer cost both ends about a microsecond a call (BENCHMARKS.md, "What the
/// request id costs"). An audited success the service does not log keeps its made id in its
/// event alone; a caller that wants to find its calls in the trail sends its own.
pub(crate) async fn observe<Req, Res, Handled>(
    method: Method,
    audited: bool,
    mut request: Request<Req>,
    handler: impl FnOnce(Req, Call) -> Handled,
) -> Result<Response<Res>, Status>
where
    Req: CardNumberField,
    Handled: Future<Output = Result<Res, RequestError>>,
{
    let caller_id = RequestId::sent(request.metadata());
    // Moved out rather than cloned: a clone and its drop are four atomic operations on
    // reference counts that every call shares.
    let client = request.extensions_mut().remove::<ClientIdentity>();
    // The call's log line, prepared only when it will be written: it costs a parse and a mask.
    let log = tracing::enabled!(tracing::Level::DEBUG).then(|| CallLog {
        started: Instant::now(),
        request_id: caller_id.clone().unwrap_or_else(RequestId::make),
        client_id: client
            .as_ref()
            .map(|client| client.id.to_string())
            .unwrap_or_default(),
        client_label: client
            .as_ref()
            .and_then(|client| client.label.as_deref())
            .unwrap_or_default()
            .to_owned(),
        masked_number: request
            .get_ref()
            .card_number()
            .and_then(|number| Pan::parse(number).ok())
            .map(|pan| pan.to_string())
            .unwrap_or_default(),
    });
    let call = Call {
        request_id: match &log {
            Some(log) => Some(log.request_id.clone()),
            None if audited => Some(caller_id.clone().unwrap_or_else(RequestId::make)),
            None => None,
        },
        subject: audited.then(|| subject(request.metadata())).flatten(),
        client,
    };
    // The id an error carries: the call's (the one a log line or audit event names), else the
    // caller's. A success carries the caller's, or the logged call's.
    let call_id = call.request_id.clone();
    let logged = log.is_some();
    let result = handler(request.into_inner(), call)
        .await
        .map_err(Status::from);
    let code = result.as_ref().map_or_else(Status::code, |_| Code::Ok);
    if let Some(log) = log {
        let error = result.as_ref().err().map_or("", Status::message);
        log.write(method, code, error);
    }
    match result {
        Ok(message) => {
            let mut response = Response::new(message);
            if let Some(id) = if logged { call_id } else { caller_id } {
                attach(response.metadata_mut(), &id);
            }
            Ok(response)
        }
        Err(mut status) => {
            attach(
                status.metadata_mut(),
                &call_id.or(caller_id).unwrap_or_else(RequestId::make),
            );
            Err(status)
        }
    }
}

/// Puts the request id into an answer's metadata, marked sensitive: every id is new, so HPACK
/// indexing them would only churn the connection's table, which cost more than the handler's
/// own work (BENCHMARKS.md, "What the request id costs").
fn attach(metadata: &mut MetadataMap, id: &RequestId) {
    let mut id = id.to_metadata();
    id.set_sensitive(true);
    metadata.insert(&*REQUEST_ID_KEY, id);
}

/// The [`Call`] of an Inspect stream, for its items' audit events: the caller (moved out of
/// the request's extensions), the caller's request id or with `audited` a new one, the
/// subject.
pub(crate) fn stream_call<Req>(audited: bool, request: &mut Request<Req>) -> Call {
    let client = request.extensions_mut().remove::<ClientIdentity>();
    if !audited {
        return Call {
            client,
            ..Call::default()
        };
    }
    Call {
        request_id: Some(RequestId::sent(request.metadata()).unwrap_or_else(RequestId::make)),
        subject: subject(request.metadata()),
        client,
    }
}

/// The quota subject the caller sent, for the audit trail, unless it looks like a card number
/// (admission refuses those when quotas count subjects; without quotas it is left out of the
/// trail, whose hash of it could be reversed).
fn subject(metadata: &MetadataMap) -> Option<MetadataValue<Ascii>> {
    // Made once: a `&str` key is parsed again on every use.
    static SUBJECT_KEY: LazyLock<MetadataKey<Ascii>> =
        LazyLock::new(|| MetadataKey::from_static(SUBJECT_HEADER.as_str()));
    metadata
        .get(&*SUBJECT_KEY)
        .filter(|subject| !subject.is_empty())
        .filter(|subject| checked_subject(subject.as_encoded_bytes()).is_ok())
        .cloned()
}

/// Requests that carry a card number say where it is, so the call's log line can show it
/// masked.
pub(crate) trait CardNumberField {
    fn card_number(&self) -> Option<&str>;
}

/// What one call's log line says besides the outcome. Field names are stable for log
/// pipelines: request_id, grpc_service, grpc_method, grpc_code, duration_us, client_id,
/// client_label (the x-client-id of a caller whose network is not trusted to name itself),
/// masked_number, error.
struct CallLog {
    started: Instant,
    /// The caller's id, or one made for this call.
    request_id: RequestId,
    client_id: String,
    client_label: String,
    masked_number: String,
}

impl CallLog {
    fn write(&self, method: Method, code: Code, error: &str) {
        tracing::debug!(
            request_id = self.request_id.to_string(),
            grpc_service = method.service(),
            grpc_method = method.name(),
            grpc_code = code_name(code),
            duration_us = self.started.elapsed().as_micros() as u64,
            client_id = self.client_id,
            client_label = self.client_label,
            masked_number = self.masked_number,
            error,
            "call"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request_id::REQUEST_ID;

    #[test]
    fn ids_in_answers_are_never_indexed_by_hpack() {
        let mut metadata = MetadataMap::new();
        attach(&mut metadata, &RequestId::make());
        assert!(metadata.get(REQUEST_ID).unwrap().is_sensitive());
    }
}
