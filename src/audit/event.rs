//! One audit event: who asked what about which card (masked), when, and with what outcome.
//! Built on the request path from what the call already has; written by the writer thread,
//! which also hashes the quota subject, so that the call pays for neither.

use std::sync::Arc;
use std::time::SystemTime;

use serde_json::{Map, Value};
use tonic::Code;
use tonic::metadata::{Ascii, MetadataValue};

use crate::card::{FingerprintKeys, MaskOptions, MaskStyle, Pan, mask};
use crate::identity::ClientIdentity;
use crate::telemetry::{Method, code_name};

/// The card as an event names it: never more than the masking rules show.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct CardSeen {
    /// The number masked to its BIN and last four digits, as far as the masking rules let
    /// (`card::mask`: nothing of a partial number, at least three digits hidden); empty when
    /// the number did not parse.
    pub(crate) masked: String,
    /// The first six digits, when the masked form shows them or the number is no longer than
    /// a BIN (a LookupBin of a BIN alone); otherwise none.
    pub(crate) bin: Option<String>,
    /// The fingerprint under the signing key, when fingerprints are configured.
    pub(crate) fingerprint: Option<String>,
}

/// The first six digits: the BIN PCI DSS lets be shown with the last four.
const BIN_DIGITS: usize = 6;
/// The longest input taken to be a BIN alone.
const MAX_BIN_QUERY_DIGITS: usize = 8;

impl CardSeen {
    /// What the trail may say of `number`: masked, its BIN, its fingerprint under `keys`.
    pub(crate) fn of(number: &str, keys: Option<&FingerprintKeys>) -> Self {
        let Ok(pan) = Pan::parse(number) else {
            return Self::default();
        };
        let options = MaskOptions {
            style: MaskStyle::BinAndLastFour,
            ..MaskOptions::default()
        };
        let masked = mask(&pan, None, 0, &options);
        let shows_bin = masked.as_bytes().first().is_some_and(u8::is_ascii_digit);
        let is_bin = (BIN_DIGITS..=MAX_BIN_QUERY_DIGITS).contains(&pan.len());
        Self {
            bin: (shows_bin || is_bin).then(|| pan.leading_digits(BIN_DIGITS)),
            masked,
            fingerprint: keys.map(|keys| keys.signing().fingerprint(&pan)),
        }
    }
}

/// One call, or one Inspect item.
#[derive(Debug, Clone)]
pub(crate) struct Event {
    pub(crate) time: SystemTime,
    pub(crate) request_id: Option<MetadataValue<Ascii>>,
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
    /// The event as a JSON object of the trail's field names, in a stable order: `time`,
    /// `replica`, `request_id`, `client`, `client_label`, `subject` (hashed), `method`,
    /// `masked`, `bin`, `fingerprint`, `code`, `valid`, `dataset_version`. Members the call
    /// did not have are left out.
    pub(crate) fn to_json(&self, replica: &str) -> Map<String, Value> {
        let mut json = Map::new();
        json.insert(
            "time".into(),
            humantime::format_rfc3339_micros(self.time)
                .to_string()
                .into(),
        );
        json.insert("replica".into(), replica.into());
        if let Some(id) = self.request_id.as_ref().and_then(|id| id.to_str().ok()) {
            json.insert("request_id".into(), id.into());
        }
        if let Some(client) = &self.client {
            json.insert("client".into(), (*client.id).into());
            if let Some(label) = &client.label {
                json.insert("client_label".into(), (**label).into());
            }
        }
        if let Some(subject) = &self.subject {
            json.insert(
                "subject".into(),
                crate::shared_store::hashed("subject", subject.as_bytes()).into(),
            );
        }
        json.insert("method".into(), self.method.name().into());
        if !self.card.masked.is_empty() {
            json.insert("masked".into(), self.card.masked.clone().into());
        }
        if let Some(bin) = &self.card.bin {
            json.insert("bin".into(), bin.clone().into());
        }
        if let Some(fingerprint) = &self.card.fingerprint {
            json.insert("fingerprint".into(), fingerprint.clone().into());
        }
        json.insert("code".into(), code_name(self.code).into());
        if let Some(valid) = self.valid {
            json.insert("valid".into(), valid.into());
        }
        json.insert("dataset_version".into(), (*self.dataset_version).into());
        json
    }

    /// The UTC day of the event, `YYYY-MM-DD`: the file it goes into.
    pub(crate) fn day(&self) -> String {
        super::file::day_of(self.time)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_card_is_seen_masked_with_its_bin_only() {
        let seen = CardSeen::of("4111 1111 1111 1111", None);
        assert_eq!(seen.bin.as_deref(), Some("411111"));
        assert_eq!(seen.masked, "411111******1111");
        assert_eq!(CardSeen::of("411111", None).bin.as_deref(), Some("411111"));
        // Nine to eleven digits are a partial number: nothing of it shows.
        let partial = CardSeen::of("411111222", None);
        assert_eq!((partial.bin, partial.masked.as_str()), (None, "*********"));
        assert_eq!(CardSeen::of("41", None).bin, None);
        assert_eq!(CardSeen::of("not a number", None), CardSeen::default());
    }
}
