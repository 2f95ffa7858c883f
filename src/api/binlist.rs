//! binlist.net's lookup document (its version 3), made from a LookupBin answer, for callers
//! whose code was written for binlist: the same fields, the same lower-case spellings, and a
//! field the data does not know left out, as binlist leaves it out.
//!
//! What each field is made of:
//! - `number.length`: the length the card's network issues, when it issues one only (a Visa
//!   BIN leaves it out: Visa issues 13, 16, 18 and 19 digits); `number.luhn`: whether the
//!   network's numbers end with a Luhn check digit.
//! - `scheme`: the network, lower case (`visa`, `mastercard`, `amex`, ...); `type`: `debit`,
//!   `credit` or `charge`; `brand`: the data's brand (`VISA/DANKORT`, `MASTERCARD`, ...: its
//!   spelling, where binlist's is in mixed case); `prepaid`: when the data says.
//! - `country`: the data's country, with the name, flag, currency and coordinates (rounded to
//!   whole degrees, as binlist gives them) of the keshvar crate's country table.
//! - `bank`: the issuer's name, URL and phone. The data has no city, so `bank.city` is never
//!   given.

use serde_json::{Map, Value, json};

use super::convert::network_from_proto;
use crate::card::CardNetwork;
use crate::card::check_digit::CheckDigit;
use crate::proto::cardlookup::v1 as pb;

/// binlist's document for a LookupBin answer that found the BIN.
pub fn document(answer: &pb::LookupBinResponse) -> Value {
    let mut document = Map::new();
    let network = network_from_proto(answer.network);
    if let Some(network) = network {
        let spec = network.spec();
        let mut number = Map::new();
        if let [length] = spec.lengths {
            number.insert("length".into(), json!(length));
        }
        number.insert(
            "luhn".into(),
            json!(!matches!(spec.check_digit, CheckDigit::None)),
        );
        document.insert("number".into(), Value::Object(number));
        document.insert("scheme".into(), json!(scheme(network)));
    }
    let card_type = match answer.card_type() {
        pb::CardType::Unspecified => None,
        pb::CardType::Debit => Some("debit"),
        pb::CardType::Credit => Some("credit"),
        pb::CardType::Charge => Some("charge"),
    };
    insert_some(&mut document, "type", card_type.map(Value::from));
    insert_text(&mut document, "brand", &answer.brand);
    let prepaid = match answer.prepaid() {
        pb::PrepaidStatus::Unspecified => None,
        pb::PrepaidStatus::Prepaid => Some(true),
        pb::PrepaidStatus::NotPrepaid => Some(false),
    };
    insert_some(&mut document, "prepaid", prepaid.map(Value::from));
    insert_some(
        &mut document,
        "country",
        answer.country.as_ref().map(country),
    );
    insert_some(&mut document, "bank", answer.issuer.as_ref().and_then(bank));
    Value::Object(document)
}

/// binlist's name of a network: its own for the ones it names otherwise, else ours.
fn scheme(network: CardNetwork) -> &'static str {
    match network {
        CardNetwork::AmericanExpress => "amex",
        CardNetwork::DinersClub => "diners",
        other => other.slug(),
    }
}

fn country(country: &pb::Country) -> Value {
    let mut document = Map::new();
    insert_text(&mut document, "numeric", &country.numeric);
    insert_text(&mut document, "alpha2", &country.alpha2);
    let known = keshvar::Alpha2::try_from(country.alpha2.as_str())
        .ok()
        .map(keshvar::Country::from);
    match &known {
        Some(known) => {
            document.insert("name".into(), json!(known.iso_short_name()));
            document.insert("emoji".into(), json!(known.emoji()));
            document.insert("currency".into(), json!(known.currency_code().to_string()));
            let geo = known.geo();
            document.insert("latitude".into(), whole_degrees(geo.latitude()));
            document.insert("longitude".into(), whole_degrees(geo.longitude()));
        }
        None => insert_text(&mut document, "name", &country.name),
    }
    Value::Object(document)
}

/// Degrees rounded to a whole number, as binlist writes coordinates.
#[allow(clippy::cast_possible_truncation)] // within ±180
fn whole_degrees(degrees: f64) -> Value {
    json!(degrees.round() as i64)
}

fn bank(issuer: &pb::Issuer) -> Option<Value> {
    let mut document = Map::new();
    insert_text(&mut document, "name", &issuer.name);
    insert_text(&mut document, "url", &issuer.url);
    insert_text(&mut document, "phone", &issuer.phone);
    (!document.is_empty()).then_some(Value::Object(document))
}

fn insert_text(document: &mut Map<String, Value>, key: &str, text: &str) {
    if !text.is_empty() {
        document.insert(key.into(), json!(text));
    }
}

fn insert_some(document: &mut Map<String, Value>, key: &str, value: Option<Value>) {
    if let Some(value) = value {
        document.insert(key.into(), value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_known_country_gets_its_currency_coordinates_and_flag() {
        let answer = pb::LookupBinResponse {
            found: true,
            network: pb::CardNetwork::Visa.into(),
            card_type: pb::CardType::Debit.into(),
            prepaid: pb::PrepaidStatus::NotPrepaid.into(),
            brand: "VISA/DANKORT".into(),
            country: Some(pb::Country {
                alpha2: "DK".into(),
                alpha3: "DNK".into(),
                numeric: "208".into(),
                name: "DENMARK".into(),
            }),
            issuer: Some(pb::Issuer {
                name: "JYSKE BANK".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(
            document(&answer),
            json!({
                "number": {"luhn": true},
                "scheme": "visa",
                "type": "debit",
                "brand": "VISA/DANKORT",
                "prepaid": false,
                "country": {
                    "numeric": "208",
                    "alpha2": "DK",
                    "name": "Denmark",
                    "emoji": "🇩🇰",
                    "currency": "DKK",
                    "latitude": 56,
                    "longitude": 10
                },
                "bank": {"name": "JYSKE BANK"}
            })
        );
    }

    #[test]
    fn what_the_data_does_not_know_is_left_out() {
        let answer = pb::LookupBinResponse {
            found: true,
            network: pb::CardNetwork::AmericanExpress.into(),
            issuer: Some(pb::Issuer::default()),
            ..Default::default()
        };
        assert_eq!(
            document(&answer),
            json!({"number": {"length": 15, "luhn": true}, "scheme": "amex"})
        );
    }
}
