//! One audit event: who asked what about which card (masked), when, and with what outcome.
//! Built on the request path from what the call already has; written by the writer thread,
//! which also hashes the quota subject, so that the call pays for neither.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tonic::Code;
use tonic::metadata::{Ascii, MetadataValue};

use crate::card::mask::shown_digits;
use crate::card::pan::MAX_DIGITS;
use crate::card::{FingerprintKeys, MaskStyle, Pan};
use crate::identity::ClientIdentity;
use crate::request_id::RequestId;
use crate::telemetry::{Method, code_name};

/// The card as an event names it: never more than the masking rules show. Held inline: an
/// event costs its call no allocation, which the writer thread, dropping the event, would
/// otherwise free across threads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct CardSeen {
    /// The number masked to its BIN and last four digits, as far as the masking rules let
    /// (`card::mask`: nothing of a partial number, at least three digits hidden); empty when
    /// the number did not parse.
    pub(crate) masked: InlineText<MAX_DIGITS>,
    /// The first six digits, when the masked form shows them or the number is no longer than
    /// a BIN (a LookupBin of a BIN alone); otherwise none.
    pub(crate) bin: Option<InlineText<BIN_DIGITS>>,
    /// The fingerprint under the signing key, when fingerprints are configured and the number
    /// is whole (as answers give them: `FingerprintKeys::of_card`).
    pub(crate) fingerprint: Option<String>,
}

/// The first six digits: the BIN PCI DSS lets be shown with the last four.
const BIN_DIGITS: usize = 6;
/// The longest input taken to be a BIN alone.
const MAX_BIN_QUERY_DIGITS: usize = 8;

impl CardSeen {
    /// What the trail may say of the number `pan` (none when the call's number did not
    /// parse): masked, its BIN, its fingerprint under `keys`. `answered` is the fingerprint
    /// the call's answer carries, by the same rule: taken as it is rather than computed again
    /// (an HMAC a call); a refused call has none, and its number's is computed.
    pub(crate) fn of(
        pan: Option<&Pan>,
        keys: Option<&FingerprintKeys>,
        answered: Option<&str>,
    ) -> Self {
        let Some(pan) = pan else {
            return Self::default();
        };
        let digits = pan.digits();
        let len = digits.len();
        // `card::mask`'s rule for a BIN and last four, written in place: digits and `*`.
        let (leading, trailing) = shown_digits(len, MaskStyle::BinAndLastFour, 0);
        let mut text = [b'*'; MAX_DIGITS];
        for (position, (&digit, shown)) in digits.iter().zip(&mut text).enumerate() {
            if position < leading || position >= len - trailing {
                *shown = b'0' + digit;
            }
        }
        // The BIN shows where the masked form shows it, or when the number is a BIN alone.
        let shows_bin = leading > 0 || (BIN_DIGITS..=MAX_BIN_QUERY_DIGITS).contains(&len);
        Self {
            bin: shows_bin
                .then(|| {
                    let mut bin = [0; BIN_DIGITS];
                    for (shown, &digit) in bin.iter_mut().zip(digits) {
                        *shown = b'0' + digit;
                    }
                    InlineText::new(&bin)
                })
                .flatten(),
            masked: InlineText::new(&text[..len]).unwrap_or_default(),
            fingerprint: answered
                .filter(|fingerprint| !fingerprint.is_empty())
                .map(str::to_owned)
                .or_else(|| keys.and_then(|keys| keys.of_card(pan))),
        }
    }
}

/// ASCII text of at most `N` bytes, stored in place.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct InlineText<const N: usize> {
    bytes: [u8; N],
    len: u8,
}

impl<const N: usize> InlineText<N> {
    /// `text` held inline; none when it is longer than `N` bytes or not ASCII.
    fn new(text: &[u8]) -> Option<Self> {
        let mut bytes = [0; N];
        bytes
            .get_mut(..text.len())
            .filter(|_| text.is_ascii())?
            .copy_from_slice(text);
        Some(Self {
            bytes,
            len: u8::try_from(text.len()).ok()?,
        })
    }

    pub(crate) fn as_str(&self) -> &str {
        // Only ASCII is ever stored.
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or_default()
    }
}

impl<const N: usize> Default for InlineText<N> {
    fn default() -> Self {
        Self {
            bytes: [0; N],
            len: 0,
        }
    }
}

impl<const N: usize> std::fmt::Debug for InlineText<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
}

/// One call, or one Inspect item.
#[derive(Debug, Clone)]
pub(crate) struct Event {
    pub(crate) time: SystemTime,
    pub(crate) request_id: Option<RequestId>,
    pub(crate) client: Option<ClientIdentity>,
    /// The `x-cardlookup-subject` metadata as sent; only its hash is written.
    pub(crate) subject: Option<MetadataValue<Ascii>>,
    pub(crate) method: Method,
    pub(crate) card: CardSeen,
    pub(crate) code: Code,
    /// Validate's and Inspect's validation result.
    pub(crate) valid: Option<bool>,
    pub(crate) dataset_version: Arc<str>,
}

impl Event {
    /// Appends the event to `out` as a JSON object of the trail's field names, in a stable
    /// order, without its closing brace (the writer ends it with `prev`): `time`, `replica`,
    /// `request_id`, `client`, `client_label`, `subject` (hashed), `method`, `masked`, `bin`,
    /// `fingerprint`, `code`, `valid`, `dataset_version`. Members the call did not have are
    /// left out. Written straight into the batch's buffer: the writer thread's cost a call.
    pub(crate) fn write_json(&self, replica: &str, times: &mut TimeText, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"time\":\"");
        times.write(self.time, out);
        out.push(b'"');
        plain_member(out, "replica", replica);
        if let Some(id) = &self.request_id {
            // Letters, digits, `.`, `_`, `-`: nothing to escape.
            start_member(out, "request_id");
            id.write_to(out);
            out.push(b'"');
        }
        if let Some(client) = &self.client {
            member(out, "client", &client.id);
            if let Some(label) = &client.label {
                member(out, "client_label", label);
            }
        }
        if let Some(subject) = &self.subject {
            let hashed = crate::shared_store::hashed("subject", subject.as_bytes());
            plain_member(out, "subject", &hashed);
        }
        plain_member(out, "method", self.method.name());
        if !self.card.masked.as_str().is_empty() {
            plain_member(out, "masked", self.card.masked.as_str());
        }
        if let Some(bin) = &self.card.bin {
            plain_member(out, "bin", bin.as_str());
        }
        if let Some(fingerprint) = &self.card.fingerprint {
            plain_member(out, "fingerprint", fingerprint);
        }
        plain_member(out, "code", code_name(self.code));
        if let Some(valid) = self.valid {
            out.extend_from_slice(if valid {
                b",\"valid\":true"
            } else {
                b",\"valid\":false"
            });
        }
        // `sha256:` and hex digits (`bins::load`).
        plain_member(out, "dataset_version", &self.dataset_version);
    }

    /// The UTC day of the event, counted from 1970-01-01: which file it goes into.
    pub(crate) fn day_number(&self) -> u64 {
        super::file::day_number(self.time)
    }
}

/// Appends `,"name":value` with `value` as a JSON string, escaped where it needs it.
fn member(out: &mut Vec<u8>, name: &str, value: &str) {
    out.extend_from_slice(b",\"");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\":");
    // Writing a string into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, value);
}

/// Appends `,"name":"value"` for a value this code made (digits, `*`, names, hex, a checked
/// replica name), which JSON needs no escape for: copied as it is.
fn plain_member(out: &mut Vec<u8>, name: &str, value: &str) {
    debug_assert!(!value.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\'));
    start_member(out, name);
    out.extend_from_slice(value.as_bytes());
    out.push(b'"');
}

/// Appends `,"name":"`.
fn start_member(out: &mut Vec<u8>, name: &str) {
    out.extend_from_slice(b",\"");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\":\"");
}

/// Events' times in RFC 3339 (`2026-12-05T16:40:02.123456Z`), UTC. The date and time of day
/// are formatted once a second and kept: the events of a batch mostly share their second.
#[derive(Debug, Default)]
pub(crate) struct TimeText {
    /// The second `text` shows, since the Unix epoch.
    second: Option<u64>,
    /// `YYYY-MM-DDTHH:MM:SS`.
    text: [u8; SECOND_LEN],
}

/// The length of `YYYY-MM-DDTHH:MM:SS`.
const SECOND_LEN: usize = 19;

impl TimeText {
    /// Appends `time` to `out`, to the microsecond.
    pub(crate) fn write(&mut self, time: SystemTime, out: &mut Vec<u8>) {
        let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
        let second = since.as_secs();
        if self.second != Some(second) {
            let text = humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(second))
                .to_string();
            self.text.copy_from_slice(&text.as_bytes()[..SECOND_LEN]);
            self.second = Some(second);
        }
        out.extend_from_slice(&self.text);
        let micros = since.subsec_micros();
        out.push(b'.');
        out.extend(
            (0..6)
                .rev()
                .map(|place| b'0' + (micros / 10u32.pow(place) % 10) as u8),
        );
        out.push(b'Z');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339_to_the_microsecond_as_humantime_writes_them() {
        let mut times = TimeText::default();
        let start = UNIX_EPOCH + Duration::from_micros(1_796_000_000_123_456);
        for step in [0, 1, 999_999, 1_000_000, 86_400_000_000, 7] {
            let time = start + Duration::from_micros(step);
            let mut written = Vec::new();
            times.write(time, &mut written);
            let expected = humantime::format_rfc3339_micros(time).to_string();
            assert_eq!(String::from_utf8(written).unwrap(), expected);
        }
    }

    #[test]
    fn members_are_json_strings() {
        let mut out = Vec::new();
        plain_member(&mut out, "a", "411111******1111");
        member(&mut out, "b", "say \"hi\"\\\n");
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#","a":"411111******1111","b":"say \"hi\"\\\n""#
        );
    }

    /// What the trail says of `number`, parsed as the handlers parse it.
    fn seen(number: &str) -> CardSeen {
        CardSeen::of(Pan::parse(number).ok().as_ref(), None, None)
    }

    #[test]
    fn the_masked_form_is_what_card_mask_shows_of_a_bin_and_last_four() {
        use crate::card::{MaskOptions, mask};
        let options = MaskOptions {
            style: MaskStyle::BinAndLastFour,
            ..MaskOptions::default()
        };
        for len in 6..=MAX_DIGITS {
            let number: String = (0..len).map(|i| char::from(b'1' + (i % 9) as u8)).collect();
            let pan = Pan::parse(&number).unwrap();
            let shown = seen(&number);
            assert_eq!(
                shown.masked.as_str(),
                mask(&pan, None, 0, &options),
                "{len}"
            );
        }
    }

    #[test]
    fn a_card_is_seen_masked_with_its_bin_only() {
        let bin = |seen: &CardSeen| seen.bin.map(|bin| bin.as_str().to_owned());
        let card = seen("4111 1111 1111 1111");
        assert_eq!(bin(&card).as_deref(), Some("411111"));
        assert_eq!(card.masked.as_str(), "411111******1111");
        assert_eq!(bin(&seen("411111")).as_deref(), Some("411111"));
        // Nine to eleven digits are a partial number: nothing of it shows.
        let partial = seen("411111222");
        assert_eq!((partial.bin, partial.masked.as_str()), (None, "*********"));
        let longest = seen(&"4".repeat(MAX_DIGITS));
        assert_eq!(longest.masked.as_str(), "444444*********4444");
        assert_eq!(seen("41").bin, None);
        assert_eq!(seen("not a number"), CardSeen::default());
    }

    #[test]
    fn only_a_whole_number_has_a_fingerprint_as_in_answers() {
        let keys = FingerprintKeys::parse(&format!("k1 {}", "ab".repeat(32))).unwrap();
        let of = |number: &str| {
            let pan = Pan::parse(number).unwrap();
            CardSeen::of(Some(&pan), Some(&keys), None).fingerprint
        };
        let whole = Pan::parse("4111111111111111").unwrap();
        assert_eq!(
            of("4111111111111111"),
            Some(keys.signing().fingerprint(&whole))
        );
        assert_eq!(of("411111"), None);
        assert_eq!(of("41111122222"), None);
    }

    #[test]
    fn the_answers_fingerprint_is_taken_rather_than_computed_again() {
        let keys = FingerprintKeys::parse(&format!("k1 {}", "ab".repeat(32))).unwrap();
        let pan = Pan::parse("4111111111111111").unwrap();
        let seen = |answered| CardSeen::of(Some(&pan), Some(&keys), answered).fingerprint;
        assert_eq!(seen(Some("k1:given")).as_deref(), Some("k1:given"));
        // An empty one, as answers without a fingerprint carry, leaves it to the rule.
        let computed = Some(keys.signing().fingerprint(&pan));
        assert_eq!(seen(Some("")), computed);
        assert_eq!(seen(None), computed);
    }
}
