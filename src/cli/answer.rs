//! What `validate`, `lookup` and `mask` print. Each answer is read from the proto message the
//! request layer answered with, offline or in a server, so offline and server answers read
//! alike.
//!
//! None of these types holds a whole card number: only its masked form.

use std::fmt::Write as _;

use serde_json::{Value, json};

use crate::api::convert::{failure_from_proto, network_from_proto, regime_from_proto};
use crate::bins::Regime;
use crate::card::{CardNetwork, Failure};
use crate::proto::cardlookup::v1 as pb;

/// Why a number is not valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Reason {
    /// Stable, for scripts: `luhn-failed`, `unknown-network`, ...
    pub code: &'static str,
    /// Short, for summaries: "Luhn check failed".
    pub label: &'static str,
    /// A sentence: "the check digit is wrong".
    pub message: String,
}

impl Reason {
    fn of(failure: Failure) -> Self {
        let (code, label) = match failure {
            Failure::Empty => ("empty", "no digits"),
            Failure::NonDigit => ("non-digit", "not digits"),
            Failure::TooShort => ("too-short", "too short"),
            Failure::TooLong => ("too-long", "too long"),
            Failure::LengthInvalidForNetwork => {
                ("length-invalid-for-network", "wrong length for the network")
            }
            Failure::LuhnFailed => ("luhn-failed", "Luhn check failed"),
            Failure::UnknownNetwork => ("unknown-network", "unknown network"),
        };
        Self {
            code,
            label,
            message: failure.message().to_owned(),
        }
    }
}

/// The answer to `validate`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Checked {
    pub valid: bool,
    pub luhn_valid: bool,
    pub length_valid: bool,
    pub luhn_required: bool,
    pub check_digit_valid: bool,
    pub potentially_valid: bool,
    pub network: Option<CardNetwork>,
    pub candidates: Vec<CardNetwork>,
    pub lengths: Vec<u32>,
    pub digit_count: u32,
    /// Last four digits; empty when the input is not digits.
    pub masked: String,
    pub reason: Option<Reason>,
    /// Empty without a fingerprint key, and for a partial number.
    pub fingerprint: String,
    /// The providers that publish the number as a test card; empty when it is not one.
    pub test_card_sources: Vec<String>,
}

impl From<pb::ValidateResponse> for Checked {
    fn from(r: pb::ValidateResponse) -> Self {
        let reason = match pb::ValidationFailure::try_from(r.failure) {
            Ok(pb::ValidationFailure::Unspecified) if r.valid => None,
            failure => {
                let known = failure.ok().and_then(failure_from_proto);
                let mut reason = known.map_or_else(
                    || Reason {
                        code: "unknown",
                        label: "other",
                        message: String::new(),
                    },
                    Reason::of,
                );
                if !r.failure_message.is_empty() {
                    reason.message = r.failure_message;
                }
                Some(reason)
            }
        };
        Self {
            valid: r.valid,
            luhn_valid: r.luhn_valid,
            length_valid: r.length_valid,
            luhn_required: r.luhn_required,
            check_digit_valid: r.check_digit_valid,
            potentially_valid: r.potentially_valid,
            network: network_from_proto(r.network),
            candidates: r
                .candidate_networks
                .into_iter()
                .filter_map(network_from_proto)
                .collect(),
            lengths: r.network_lengths,
            digit_count: r.digit_count,
            masked: r.masked_number,
            reason,
            fingerprint: r.fingerprint,
            test_card_sources: r.test_card_sources,
        }
    }
}

impl Checked {
    /// The lines `validate NUMBER` prints.
    pub(super) fn human(&self) -> String {
        let mut out = String::new();
        let mut line = |label: &str, value: &str| {
            let _ = writeln!(out, "{:<13}{value}", format!("{label}:"));
        };
        line("number", or_dash(&self.masked));
        line("valid", yes_no(self.valid));
        if let Some(reason) = &self.reason {
            line("reason", &reason.message);
        }
        let network = match (self.network, self.candidates.as_slice()) {
            (Some(network), _) => network.spec().name.to_owned(),
            (None, []) => "unknown".to_owned(),
            (None, candidates) => format!("not yet known, could be {}", names(candidates)),
        };
        line("network", &network);
        if self.digit_count > 0 {
            let mut length = format!("{} digits", self.digit_count);
            if !self.lengths.is_empty() {
                let lengths: Vec<String> = self.lengths.iter().map(u32::to_string).collect();
                let _ = write!(length, " (valid: {})", lengths.join(", "));
            }
            line("length", &length);
            let mut luhn = if self.luhn_valid { "passes" } else { "fails" }.to_owned();
            if self.network.is_some() && !self.luhn_required {
                luhn.push_str(" (not required)");
            } else if self.check_digit_valid && !self.luhn_valid {
                luhn.push_str(" (the network's own check digit passes)");
            }
            line("luhn", &luhn);
        }
        if !self.valid && self.potentially_valid {
            line("more digits", "could make it valid");
        }
        if !self.fingerprint.is_empty() {
            line("fingerprint", &self.fingerprint);
        }
        if let Some(sources) = test_card_line(&self.test_card_sources) {
            line("test card", &sources);
        }
        out
    }

    /// The JSON object `validate NUMBER --json` prints.
    pub(super) fn json(&self) -> Value {
        json!({
            "valid": self.valid,
            "masked_number": self.masked,
            "network": self.network.map(CardNetwork::slug),
            "failure": self.reason.as_ref().map(|r| r.code),
            "failure_message": self.reason.as_ref().map(|r| r.message.as_str()),
            "luhn_valid": self.luhn_valid,
            "length_valid": self.length_valid,
            "luhn_required": self.luhn_required,
            "check_digit_valid": self.check_digit_valid,
            "potentially_valid": self.potentially_valid,
            "digit_count": self.digit_count,
            "network_lengths": self.lengths,
            "candidate_networks": self.candidates.iter().map(|n| n.slug()).collect::<Vec<_>>(),
            "fingerprint": non_empty(&self.fingerprint),
            "test_card": !self.test_card_sources.is_empty(),
            "test_card_sources": self.test_card_sources,
        })
    }
}

/// The `test card` line of a number the providers list: who lists it.
fn test_card_line(sources: &[String]) -> Option<String> {
    (!sources.is_empty()).then(|| format!("yes, published by {}", sources.join(", ")))
}

/// The issuer of a BIN, as the data has it (empty when unknown).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct IssuerInfo {
    pub name: String,
    pub url: String,
    pub phone: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct CountryInfo {
    pub alpha2: String,
    pub alpha3: String,
    pub numeric: String,
    pub name: String,
}

/// The answer to `lookup`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct BinInfo {
    pub found: bool,
    /// The prefix that matched in the data (6 to 8 digits); empty when none did.
    pub bin: String,
    /// From the data, or from the IIN ranges where the data names none (or has no entry).
    pub network: Option<CardNetwork>,
    pub brand: String,
    /// `debit`, `credit` or `charge`.
    pub card_type: Option<&'static str>,
    pub prepaid: Option<bool>,
    pub level: String,
    pub issuer: IssuerInfo,
    pub country: Option<CountryInfo>,
    pub dataset_version: String,
    /// More digits could match a more specific entry.
    pub more_specific_match_possible: bool,
    /// The providers that publish the number as a test card; empty when it is not one.
    pub test_card_sources: Vec<String>,
    /// The card's other networks (values this build does not know left out).
    pub co_badged: Vec<CardNetwork>,
    /// The regulations that apply: the regime (`None` for one this build does not know) and
    /// the reason.
    pub regulations: Vec<(Option<Regime>, String)>,
}

impl BinInfo {
    /// The lines `lookup BIN` prints.
    pub(super) fn human(&self) -> String {
        let mut out = String::new();
        // Values line up after 10 columns; a longer label ("more digits") keeps
        // one space before its value.
        let mut line = |label: &str, value: &str| {
            let _ = writeln!(out, "{:<10}{value}", format!("{label}: "));
        };
        line("found", yes_no(self.found));
        if self.found {
            line("bin", &self.bin);
        }
        line("network", self.network.map_or("unknown", |n| n.spec().name));
        if !self.co_badged.is_empty() {
            line("co-badge", &names(&self.co_badged));
        }
        if self.found {
            line("brand", or_unknown(&self.brand));
            line("type", self.card_type.unwrap_or("unknown"));
            line(
                "prepaid",
                self.prepaid.map_or("unknown", |prepaid| yes_no(prepaid)),
            );
            line("level", or_unknown(&self.level));
            let contact: Vec<&str> = [self.issuer.url.as_str(), self.issuer.phone.as_str()]
                .into_iter()
                .filter(|s| !s.is_empty())
                .collect();
            let mut issuer = or_unknown(&self.issuer.name).to_owned();
            if !contact.is_empty() {
                let _ = write!(issuer, " ({})", contact.join(", "));
            }
            line("issuer", &issuer);
            let country = self.country.as_ref().map_or_else(
                || "unknown".to_owned(),
                |c| format!("{} ({})", c.name, c.alpha2),
            );
            line("country", &country);
            if self.regulations.is_empty() {
                line("regime", "none known");
            }
            for (_, reason) in &self.regulations {
                line("regime", reason);
            }
        }
        if self.more_specific_match_possible {
            line(
                "more digits",
                "could match a more specific BIN: send the whole number",
            );
        }
        if let Some(sources) = test_card_line(&self.test_card_sources) {
            line("test card", &sources);
        }
        line("data", &self.dataset_version);
        out
    }

    /// The JSON object `lookup BIN --json` prints; `null` for what the data does not say.
    pub(super) fn json(&self) -> Value {
        json!({
            "found": self.found,
            "bin": non_empty(&self.bin),
            "network": self.network.map(CardNetwork::slug),
            "brand": non_empty(&self.brand),
            "card_type": self.card_type,
            "prepaid": self.prepaid,
            "level": non_empty(&self.level),
            "issuer": {
                "name": non_empty(&self.issuer.name),
                "url": non_empty(&self.issuer.url),
                "phone": non_empty(&self.issuer.phone),
            },
            "country": self.country.as_ref().map(|c| json!({
                "alpha2": c.alpha2,
                "alpha3": c.alpha3,
                "numeric": non_empty(&c.numeric),
                "name": c.name,
            })),
            "dataset_version": self.dataset_version,
            "more_specific_match_possible": self.more_specific_match_possible,
            "test_card": !self.test_card_sources.is_empty(),
            "test_card_sources": self.test_card_sources,
            "co_badged_networks": self.co_badged.iter().map(|n| n.slug()).collect::<Vec<_>>(),
            "regulations": self.regulations.iter().map(|(regime, reason)| json!({
                "regime": regime.map(Regime::slug),
                "reason": reason,
            })).collect::<Vec<_>>(),
        })
    }
}

impl From<pb::LookupBinResponse> for BinInfo {
    fn from(r: pb::LookupBinResponse) -> Self {
        let issuer = r.issuer.unwrap_or_default();
        Self {
            found: r.found,
            bin: r.bin,
            network: network_from_proto(r.network),
            brand: r.brand,
            card_type: match pb::CardType::try_from(r.card_type) {
                Ok(pb::CardType::Debit) => Some("debit"),
                Ok(pb::CardType::Credit) => Some("credit"),
                Ok(pb::CardType::Charge) => Some("charge"),
                Ok(pb::CardType::Unspecified) | Err(_) => None,
            },
            prepaid: match pb::PrepaidStatus::try_from(r.prepaid) {
                Ok(pb::PrepaidStatus::Prepaid) => Some(true),
                Ok(pb::PrepaidStatus::NotPrepaid) => Some(false),
                Ok(pb::PrepaidStatus::Unspecified) | Err(_) => None,
            },
            level: r.category,
            issuer: IssuerInfo {
                name: issuer.name,
                url: issuer.url,
                phone: issuer.phone,
            },
            country: r.country.map(|c| CountryInfo {
                alpha2: c.alpha2,
                alpha3: c.alpha3,
                numeric: c.numeric,
                name: c.name,
            }),
            dataset_version: r.dataset_version,
            more_specific_match_possible: r.more_specific_match_possible,
            test_card_sources: r.test_card_sources,
            co_badged: r
                .co_badged_networks
                .into_iter()
                .filter_map(network_from_proto)
                .collect(),
            regulations: r
                .regulations
                .into_iter()
                .map(|r| (regime_from_proto(r.regime), r.reason))
                .collect(),
        }
    }
}

/// The answer to `mask`.
#[derive(Debug, Clone, PartialEq, Eq)]
// `masked` is the answer's name for it, as in MaskCardResponse.
#[allow(clippy::struct_field_names)]
pub(super) struct Masked {
    pub masked: String,
    pub network: Option<CardNetwork>,
    /// Empty without a fingerprint key.
    pub fingerprint: String,
}

impl Masked {
    pub(super) fn human(&self) -> String {
        let mut out = format!(
            "masked:   {}\nnetwork:  {}\n",
            self.masked,
            self.network.map_or("unknown", |n| n.spec().name)
        );
        if !self.fingerprint.is_empty() {
            let _ = writeln!(out, "fingerprint: {}", self.fingerprint);
        }
        out
    }

    pub(super) fn json(&self) -> Value {
        json!({
            "masked": self.masked,
            "network": self.network.map(CardNetwork::slug),
            "fingerprint": non_empty(&self.fingerprint),
        })
    }
}

impl From<pb::MaskCardResponse> for Masked {
    fn from(r: pb::MaskCardResponse) -> Self {
        Self {
            masked: r.masked,
            network: network_from_proto(r.network),
            fingerprint: r.fingerprint,
        }
    }
}

pub(super) fn yes_no(value: bool) -> &'static str {
    if value { "yes" } else { "no" }
}

fn names(networks: &[CardNetwork]) -> String {
    networks
        .iter()
        .map(|n| n.spec().name)
        .collect::<Vec<_>>()
        .join(", ")
}

pub(super) fn or_dash(text: &str) -> &str {
    if text.is_empty() { "-" } else { text }
}

fn or_unknown(text: &str) -> &str {
    if text.is_empty() { "unknown" } else { text }
}

fn non_empty(text: &str) -> Option<&str> {
    (!text.is_empty()).then_some(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::convert;
    use crate::card;

    #[test]
    fn every_proto_network_maps_back_to_its_domain_network() {
        for network in CardNetwork::every() {
            let response = pb::MaskCardResponse {
                masked: String::new(),
                network: proto_network(network),
                fingerprint: String::new(),
            };
            assert_eq!(Masked::from(response).network, Some(network));
        }
        assert_eq!(network_from_proto(0), None);
        assert_eq!(network_from_proto(9999), None);
    }

    /// The proto value of a network, found by its `as_str_name`.
    fn proto_network(network: CardNetwork) -> i32 {
        let name = format!(
            "CARD_NETWORK_{}",
            network.slug().replace('-', "_").to_uppercase()
        );
        pb::CardNetwork::from_str_name(&name)
            .unwrap_or_else(|| panic!("{name}"))
            .into()
    }

    #[test]
    fn a_server_answer_reads_as_the_library_answer() {
        let lists = card::TestCards::embedded();
        let pan = card::Pan::parse("4111111111111111").unwrap();
        let test_card = convert::TestCard {
            providers: lists.providers(&pan),
            lists: &lists,
        };
        let offline = Checked::from(convert::validation(
            card::validate("4111111111111111"),
            String::new(),
            &test_card,
        ));
        let response = pb::ValidateResponse {
            valid: true,
            luhn_valid: true,
            length_valid: true,
            network: pb::CardNetwork::Visa.into(),
            failure: pb::ValidationFailure::Unspecified.into(),
            potentially_valid: true,
            masked_number: "************1111".into(),
            candidate_networks: vec![pb::CardNetwork::Visa.into()],
            luhn_required: true,
            check_digit_valid: true,
            network_lengths: vec![13, 16, 18, 19],
            digit_count: 16,
            failure_message: String::new(),
            fingerprint: String::new(),
            test_card: true,
            test_card_sources: vec!["adyen".into()],
        };
        assert_eq!(Checked::from(response), offline);
        assert!(
            offline
                .human()
                .contains("test card:   yes, published by adyen")
        );
        let failed = Checked::from(convert::validation(
            card::validate("4111111111111112"),
            String::new(),
            &convert::TestCard {
                providers: card::Providers::default(),
                lists: &lists,
            },
        ));
        assert!(
            failed
                .human()
                .contains("reason:      the check digit is wrong")
        );
        assert!(!failed.human().contains("test card"));
    }
}
