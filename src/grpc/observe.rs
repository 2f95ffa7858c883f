//! What happens around every call: a request id, metrics, and a log line.

use std::cell::Cell;
use std::future::Future;
use std::hash::{BuildHasher, RandomState};
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use tonic::metadata::{Ascii, MetadataKey, MetadataMap, MetadataValue};
use tonic::{Code, Request, Response, Status};

use super::error::RequestError;
use crate::admission::ClientIdentity;
use crate::card::Pan;
use crate::card::mask::MIN_PAN_DIGITS;
use crate::telemetry::{Method, RpcMetrics, code_name};

/// The metadata key that carries the request id, both ways.
pub const REQUEST_ID: &str = "x-request-id";
/// [`REQUEST_ID`] as a key, made once: a `&str` key is parsed again on every use.
static REQUEST_ID_KEY: LazyLock<MetadataKey<Ascii>> =
    LazyLock::new(|| MetadataKey::from_static(REQUEST_ID));
const MAX_REQUEST_ID_LEN: usize = 64;

/// Runs `handler` on the request's message and the caller's identity (from admission), and
/// records the call: `grpc_server_*` metrics, a debug log line, and the request id in the
/// response's (or error's) metadata.
///
/// The caller's `x-request-id` is kept when it is a short token of letters, digits, `.`, `_`
/// and `-` (safe to log); otherwise a new one is made.
pub async fn observe<Req, Res, Handled>(
    metrics: &RpcMetrics,
    method: Method,
    mut request: Request<Req>,
    handler: impl FnOnce(Req, Option<ClientIdentity>) -> Handled,
) -> Result<Response<Res>, Status>
where
    Req: CardNumberField,
    Handled: Future<Output = Result<Res, RequestError>>,
{
    let started = Instant::now();
    metrics.started(method);
    let request_id = request_id(request.metadata());
    // Moved out rather than cloned: a clone and its drop are four atomic operations on
    // reference counts that every call shares.
    let client = request.extensions_mut().remove::<ClientIdentity>();
    // The call's log line, prepared only when it will be written: it costs a parse and a mask.
    let log = tracing::enabled!(tracing::Level::DEBUG).then(|| CallLog {
        client_id: client
            .as_ref()
            .map(|client| client.id.to_string())
            .unwrap_or_default(),
        masked_number: request
            .get_ref()
            .card_number()
            .and_then(|number| Pan::parse(number).ok())
            .map(|pan| pan.to_string())
            .unwrap_or_default(),
    });
    let result = handler(request.into_inner(), client).await;
    let elapsed = started.elapsed();
    match result {
        Ok(message) => {
            metrics.handled(method, Code::Ok, elapsed);
            if let Some(log) = &log {
                log.write(&request_id, method, Code::Ok, elapsed, "");
            }
            let mut response = Response::new(message);
            response.metadata_mut().insert(&*REQUEST_ID_KEY, request_id);
            Ok(response)
        }
        Err(error) => {
            let mut status = Status::from(error);
            metrics.handled(method, status.code(), elapsed);
            if let Some(log) = &log {
                log.write(
                    &request_id,
                    method,
                    status.code(),
                    elapsed,
                    status.message(),
                );
            }
            status.metadata_mut().insert(&*REQUEST_ID_KEY, request_id);
            Err(status)
        }
    }
}

/// Requests that carry a card number say where it is, so the call's log line can show it
/// masked.
pub trait CardNumberField {
    fn card_number(&self) -> Option<&str>;
}

/// What one call's log line says besides the outcome. Field names are stable for log
/// pipelines: request_id, grpc_service, grpc_method, grpc_code, duration_us, client_id,
/// masked_number, error.
struct CallLog {
    client_id: String,
    masked_number: String,
}

impl CallLog {
    fn write(
        &self,
        request_id: &MetadataValue<Ascii>,
        method: Method,
        code: Code,
        elapsed: std::time::Duration,
        error: &str,
    ) {
        tracing::debug!(
            request_id = request_id.to_str().unwrap_or_default(),
            grpc_service = method.service(),
            grpc_method = method.name(),
            grpc_code = code_name(code),
            duration_us = elapsed.as_micros() as u64,
            client_id = self.client_id,
            masked_number = self.masked_number,
            error,
            "call"
        );
    }
}

/// The call's id for the answer's metadata: the caller's own when it is safe to log (a
/// cheap clone of the received value), else a new one.
///
/// Sensitive either way: every id is new, so HPACK indexing them only churns the
/// connection's table (the profile in BENCHMARKS.md shows it costing more than the handler's
/// own work).
fn request_id(metadata: &MetadataMap) -> MetadataValue<Ascii> {
    let mut id = metadata
        .get(&*REQUEST_ID_KEY)
        .filter(|value| value.to_str().is_ok_and(is_safe_token))
        .cloned()
        .unwrap_or_else(new_request_id);
    id.set_sensitive(true);
    id
}

/// Short, printable, and without a run of digits long enough to be a card number: the id is
/// logged, and a caller must not be able to put a PAN into the logs through it.
pub(crate) fn is_safe_token(id: &str) -> bool {
    (1..=MAX_REQUEST_ID_LEN).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        && id
            .split(|c: char| !c.is_ascii_digit())
            .all(|digits| digits.len() < MIN_PAN_DIGITS)
}

/// A process-unique id: a random per-process prefix and a counter. Cheaper than a UUID per
/// call, and unique across replicas with overwhelming probability. Each thread takes the
/// counter's values in blocks, so that calls on different cores do not contend for one
/// atomic.
///
/// The sequence is written into a buffer by hand rather than with `format!`, which cost a
/// thousand instructions a call (BENCHMARKS.md, the profile).
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
        let mut metadata = MetadataMap::new();
        metadata.insert(REQUEST_ID, "checkout-42.a_b".parse().unwrap());
        let kept = request_id(&metadata);
        assert_eq!(text(&kept), "checkout-42.a_b");
        assert!(kept.is_sensitive(), "never indexed by HPACK");

        metadata.insert(REQUEST_ID, "has space".parse().unwrap());
        assert_ne!(text(&request_id(&metadata)), "has space");
        let long = "a".repeat(MAX_REQUEST_ID_LEN + 1);
        metadata.insert(REQUEST_ID, long.parse().unwrap());
        assert_ne!(text(&request_id(&metadata)), long);
        metadata.insert(REQUEST_ID, "id-4111111111111111".parse().unwrap());
        let replaced = request_id(&metadata);
        assert!(!text(&replaced).contains("4111111111111111"));
        assert!(replaced.is_sensitive());
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
