//! A call's request id: the caller's `x-request-id` when it sent a safe one, or one the service
//! made. A leaf module: the front ends take and return ids, the request layer and the audit
//! trail name them.
//!
//! An id the service made is held as its sequence number and written out only where it is
//! shown (an answer's metadata, a log line, an audit event): an audited call that answers
//! without one (a success the service does not log) costs no allocation for its id.

use std::cell::Cell;
use std::fmt;
use std::hash::{BuildHasher, RandomState};
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};

use tonic::metadata::{Ascii, MetadataKey, MetadataMap, MetadataValue};

use crate::hex::DIGITS;
use crate::token::is_safe_token;

/// The metadata key that carries the request id, both ways.
pub(crate) const REQUEST_ID: &str = "x-request-id";
/// [`REQUEST_ID`] as a key, made once: a `&str` key is parsed again on every use.
pub(crate) static REQUEST_ID_KEY: LazyLock<MetadataKey<Ascii>> =
    LazyLock::new(|| MetadataKey::from_static(REQUEST_ID));

/// The prefix of every id this process makes: 16 random hex digits and a dash.
static PREFIX: LazyLock<String> =
    LazyLock::new(|| format!("{:016x}-", RandomState::new().hash_one(0u8)));

/// A request id: letters, digits, `.`, `_` and `-` only, whichever kind, so that it is shown
/// (logged, written into JSON) as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(Kind);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    /// The caller's own, checked safe to log ([`is_safe_token`]).
    Sent(MetadataValue<Ascii>),
    /// One this process made: the process's random prefix and this sequence number, in hex.
    Made(u64),
}

impl RequestId {
    /// A process-unique id: a random per-process prefix and a counter. Cheaper than a UUID
    /// per call, and unique across replicas with overwhelming probability. Each thread takes
    /// the counter's values in blocks, so that calls on different cores do not contend for one
    /// atomic.
    #[must_use]
    pub fn make() -> Self {
        const BLOCK: u64 = 1024;
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        thread_local! {
            /// The thread's next value and the end of its block.
            static BLOCK_LEFT: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
        }
        Self(Kind::Made(BLOCK_LEFT.with(|left| {
            let (mut next, mut end) = left.get();
            if next == end {
                next = COUNTER.fetch_add(BLOCK, Ordering::Relaxed);
                end = next + BLOCK;
            }
            left.set((next + 1, end));
            next
        })))
    }

    /// The caller's `x-request-id` when it sent one: its own value when it is safe to log (a
    /// cheap clone of the received value), else a new id in its place.
    pub(crate) fn sent(metadata: &MetadataMap) -> Option<Self> {
        let sent = metadata.get(&*REQUEST_ID_KEY)?;
        Some(if sent.to_str().is_ok_and(is_safe_token) {
            Self(Kind::Sent(sent.clone()))
        } else {
            Self::make()
        })
    }

    /// The id as metadata. A made id is written into a buffer by hand rather than with
    /// `format!`, which cost a thousand instructions a call (BENCHMARKS.md, "What the request
    /// id costs").
    #[must_use]
    pub(crate) fn to_metadata(&self) -> MetadataValue<Ascii> {
        match &self.0 {
            Kind::Sent(value) => value.clone(),
            Kind::Made(sequence) => {
                let mut id = [0u8; MADE_MAX_LEN];
                let len = write_made(*sequence, &mut id);
                MetadataValue::try_from(&id[..len]).expect("hex digits and '-' are valid metadata")
            }
        }
    }

    /// Appends the id's text to `out`.
    pub(crate) fn write_to(&self, out: &mut Vec<u8>) {
        match &self.0 {
            Kind::Sent(value) => out.extend_from_slice(value.as_encoded_bytes()),
            Kind::Made(sequence) => {
                let mut id = [0u8; MADE_MAX_LEN];
                let len = write_made(*sequence, &mut id);
                out.extend_from_slice(&id[..len]);
            }
        }
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut text = Vec::with_capacity(MADE_MAX_LEN);
        self.write_to(&mut text);
        // ASCII, whichever kind.
        f.write_str(std::str::from_utf8(&text).unwrap_or_default())
    }
}

/// The longest made id: the prefix and 16 hex digits.
const MADE_MAX_LEN: usize = 17 + 16;

/// Writes the made id of `sequence` into `id`; gives its length.
fn write_made(sequence: u64, id: &mut [u8; MADE_MAX_LEN]) -> usize {
    let prefix = PREFIX.as_bytes();
    let digits = (u64::BITS - sequence.leading_zeros()).div_ceil(4).max(1) as usize;
    id[..prefix.len()].copy_from_slice(prefix);
    let id = &mut id[..prefix.len() + digits];
    for (shift, byte) in id[prefix.len()..].iter_mut().rev().enumerate() {
        *byte = DIGITS[((sequence >> (shift * 4)) & 0xf) as usize];
    }
    id.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(id: &RequestId) -> String {
        id.to_metadata().to_str().unwrap().to_owned()
    }

    #[test]
    fn keeps_safe_caller_ids_and_replaces_others() {
        let caller_id = |sent: &str| {
            let mut metadata = MetadataMap::new();
            metadata.insert(REQUEST_ID, sent.parse().unwrap());
            text(&RequestId::sent(&metadata).expect("an id for an id sent"))
        };
        assert_eq!(caller_id("checkout-42.a_b"), "checkout-42.a_b");
        assert_ne!(caller_id("has space"), "has space");
        let long = "a".repeat(crate::token::MAX_TOKEN_LEN + 1);
        assert_ne!(caller_id(&long), long);
        assert!(!caller_id("id-4111111111111111").contains("4111111111111111"));
        assert!(RequestId::sent(&MetadataMap::new()).is_none());
    }

    #[test]
    fn generated_ids_differ_within_and_across_threads() {
        let ids = || {
            (0..3000)
                .map(|_| text(&RequestId::make()))
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
        let (first, second) = (RequestId::make(), RequestId::make());
        let (first_text, second_text) = (text(&first), text(&second));
        let (prefix, sequence) = first_text.split_once('-').unwrap();
        assert_eq!(prefix.len(), 16);
        assert!(second_text.starts_with(&format!("{prefix}-")));
        let parse = |id: &str| u64::from_str_radix(id.split_once('-').unwrap().1, 16).unwrap();
        assert!(
            parse(&second_text) > parse(&first_text),
            "{first_text} {second_text}"
        );
        assert!(sequence.bytes().all(|b| b.is_ascii_hexdigit()));
        // Every way of showing an id shows the same text.
        assert_eq!(first.to_string(), first_text);
        let mut written = Vec::new();
        second.write_to(&mut written);
        assert_eq!(written, second_text.as_bytes());
        let largest = RequestId(Kind::Made(u64::MAX)).to_string();
        assert_eq!(largest, format!("{prefix}-ffffffffffffffff"));
    }
}
