//! What happens around every unary call: a request id and a log line. (Admission counts the
//! call in the metrics, whatever answers it.)

use std::cell::Cell;
use std::future::Future;
use std::hash::{BuildHasher, RandomState};
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use tonic::metadata::{Ascii, MetadataKey, MetadataMap, MetadataValue};
use tonic::{Code, Request, Response, Status};

use crate::admission::quota::{SUBJECT_HEADER, checked_subject};
use crate::api::{Call, RequestError};
use crate::card::Pan;
use crate::identity::ClientIdentity;
use crate::telemetry::{Method, code_name};
use crate::token::is_safe_token;

/// The metadata key that carries the request id, both ways.
pub(crate) const REQUEST_ID: &str = "x-request-id";
/// [`REQUEST_ID`] as a key, made once: a `&str` key is parsed again on every use.
static REQUEST_ID_KEY: LazyLock<MetadataKey<Ascii>> =
    LazyLock::new(|| MetadataKey::from_static(REQUEST_ID));

/// Runs `handler` on the request's message and the [`Call`] (the caller's identity, from
/// admission; the request id; the quota subject), and records the call: a debug log line, and
/// the request id in the response's (or error's) metadata. With `audited` (the request layer
/// records calls in the audit trail) every call gets a request id, which its event names.
///
/// The caller's `x-request-id` is kept when it is a short token of letters, digits, `.`, `_`
/// and `-` (safe to log); otherwise a new one is made. A caller that sent none gets one the
/// service made on an error, and on a success only when the call was logged: an id that names
/// no log line tells the caller nothing, and encoding one on every answer cost both ends about
/// a microsecond a call (BENCHMARKS.md, "What the request id costs").
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
    let caller_id = caller_request_id(request.metadata());
    // Moved out rather than cloned: a clone and its drop are four atomic operations on
    // reference counts that every call shares.
    let client = request.extensions_mut().remove::<ClientIdentity>();
    // The call's log line, prepared only when it will be written: it costs a parse and a mask.
    let log = tracing::enabled!(tracing::Level::DEBUG).then(|| CallLog {
        started: Instant::now(),
        request_id: caller_id.clone().unwrap_or_else(new_request_id),
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
            None if audited => Some(caller_id.clone().unwrap_or_else(new_request_id)),
            None => None,
        },
        subject: audited.then(|| subject(request.metadata())).flatten(),
        client,
    };
    // The id an answer carries: the logged or audited call's, else the caller's.
    let request_id = call.request_id.clone().or(caller_id);
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
            if let Some(id) = request_id {
                attach(response.metadata_mut(), id);
            }
            Ok(response)
        }
        Err(mut status) => {
            attach(
                status.metadata_mut(),
                request_id.unwrap_or_else(new_request_id),
            );
            Err(status)
        }
    }
}

/// Puts the request id into an answer's metadata, marked sensitive: every id is new, so HPACK
/// indexing them would only churn the connection's table, which cost more than the handler's
/// own work (BENCHMARKS.md, "What the request id costs").
fn attach(metadata: &mut MetadataMap, mut id: MetadataValue<Ascii>) {
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
        request_id: Some(caller_request_id(request.metadata()).unwrap_or_else(new_request_id)),
        subject: subject(request.metadata()),
        client,
    }
}

/// The quota subject the caller sent, for the audit trail, unless it looks like a card number
/// (admission refuses those when quotas count subjects; without quotas it is left out of the
/// trail, whose hash of it could be reversed).
fn subject(metadata: &MetadataMap) -> Option<MetadataValue<Ascii>> {
    metadata
        .get(SUBJECT_HEADER.as_str())
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
    request_id: MetadataValue<Ascii>,
    client_id: String,
    client_label: String,
    masked_number: String,
}

impl CallLog {
    fn write(&self, method: Method, code: Code, error: &str) {
        tracing::debug!(
            request_id = self.request_id.to_str().unwrap_or_default(),
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

/// The caller's `x-request-id` when it sent one: its own value when it is safe to log (a
/// cheap clone of the received value), else a new id in its place.
fn caller_request_id(metadata: &MetadataMap) -> Option<MetadataValue<Ascii>> {
    let sent = metadata.get(&*REQUEST_ID_KEY)?;
    Some(if sent.to_str().is_ok_and(is_safe_token) {
        sent.clone()
    } else {
        new_request_id()
    })
}

/// A process-unique id: a random per-process prefix and a counter. Cheaper than a UUID per
/// call, and unique across replicas with overwhelming probability. Each thread takes the
/// counter's values in blocks, so that calls on different cores do not contend for one
/// atomic.
///
/// The sequence is written into a buffer by hand rather than with `format!`, which cost a
/// thousand instructions a call (BENCHMARKS.md, "What the request id costs").
fn new_request_id() -> MetadataValue<Ascii> {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    /// The prefix's length: 16 hex digits and a dash.
    const PREFIX_LEN: usize = 17;
    static PREFIX: LazyLock<String> =
        LazyLock::new(|| format!("{:016x}-", RandomState::new().hash_one(0u8)));
    const BLOCK: u64 = 1024;
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    thread_local! {
        /// The thread's next value and the end of its block.
        static BLOCK_LEFT: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
    }
    let sequence = BLOCK_LEFT.with(|left| {
        let (mut next, mut end) = left.get();
        if next == end {
            next = COUNTER.fetch_add(BLOCK, Ordering::Relaxed);
            end = next + BLOCK;
        }
        left.set((next + 1, end));
        next
    });
    let digits = (u64::BITS - sequence.leading_zeros()).div_ceil(4).max(1) as usize;
    let mut id = [0u8; PREFIX_LEN + 16];
    id[..PREFIX_LEN].copy_from_slice(PREFIX.as_bytes());
    let id = &mut id[..PREFIX_LEN + digits];
    for (shift, byte) in id[PREFIX_LEN..].iter_mut().rev().enumerate() {
        *byte = HEX[((sequence >> (shift * 4)) & 0xf) as usize];
    }
    MetadataValue::try_from(&*id).expect("hex digits and '-' are valid metadata")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(value: &MetadataValue<Ascii>) -> String {
        value.to_str().unwrap().to_owned()
    }

    #[test]
    fn keeps_safe_caller_ids_and_replaces_others() {
        let caller_id = |sent: &str| {
            let mut metadata = MetadataMap::new();
            metadata.insert(REQUEST_ID, sent.parse().unwrap());
            text(&caller_request_id(&metadata).expect("an id for an id sent"))
        };
        assert_eq!(caller_id("checkout-42.a_b"), "checkout-42.a_b");
        assert_ne!(caller_id("has space"), "has space");
        let long = "a".repeat(crate::token::MAX_TOKEN_LEN + 1);
        assert_ne!(caller_id(&long), long);
        assert!(!caller_id("id-4111111111111111").contains("4111111111111111"));
        assert!(caller_request_id(&MetadataMap::new()).is_none());
    }

    #[test]
    fn ids_in_answers_are_never_indexed_by_hpack() {
        let mut metadata = MetadataMap::new();
        attach(&mut metadata, new_request_id());
        assert!(metadata.get(REQUEST_ID).unwrap().is_sensitive());
    }

    #[test]
    fn generated_ids_differ_within_and_across_threads() {
        let ids = || {
            (0..3000)
                .map(|_| text(&new_request_id()))
                .collect::<Vec<_>>()
        };
        let other = std::thread::spawn(ids);
        let mut all = ids();
        all.extend(other.join().unwrap());
        let count = all.len();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), count, "every id is unique");
    }

    #[test]
    fn generated_ids_are_a_process_prefix_and_a_hex_sequence() {
        let first = text(&new_request_id());
        let second = text(&new_request_id());
        let (prefix, sequence) = first.split_once('-').unwrap();
        assert_eq!(prefix.len(), 16);
        assert!(second.starts_with(&format!("{prefix}-")));
        let parse = |id: &str| u64::from_str_radix(id.split_once('-').unwrap().1, 16).unwrap();
        assert!(parse(&second) > parse(&first), "{first} {second}");
        assert!(sequence.bytes().all(|b| b.is_ascii_hexdigit()));
    }
}
