//! Interchange-fee regulation: which regimes cap a card's interchange, and why.
//!
//! Derived from a BIN record (docs/card-networks.md, "Regulation"):
//! - EU IFR (Regulation (EU) 2015/751) for consumer cards issued in the EEA, UK IFR (its UK
//!   retained version) for consumer cards issued in GB: debit and prepaid 0.2%, credit and
//!   charge (deferred debit) 0.3%.
//! - Commercial cards ([`COMMERCIAL_WORDS`] in the category) and the three-party schemes'
//!   cards ([`THREE_PARTY`]) are excluded; a record that does not say the card's type, or its
//!   country, gets no regime rather than a guess.
//! - The data's own `regulated` column replaces the derivation for its rows, and is the only
//!   source of US Durbin: the Federal Reserve's lists name institutions, not BINs.
//!
//! The regimes and reasons of a record are worked out once, when it enters an index
//! ([`crate::bins::IndexBuilder::insert`]); a lookup copies them. The reasons are built once per
//! (regime, card, country) and shared.

use std::collections::HashMap;
use std::sync::LazyLock;

use super::record::{BinRecord, CardType};
use super::regime::{Regime, Regulation, Regulations};
use crate::card::CardNetwork;

impl Regulations {
    /// The regimes of `record`: its `regulated` column's when it has one, otherwise the IFR the
    /// issuer's country, the card type and the category say.
    #[must_use]
    pub fn of(record: &BinRecord) -> Self {
        let mut regulations = Self::default();
        match record.regulated {
            Some(named) => {
                for (slot, regime) in regulations.0.iter_mut().zip(named.iter()) {
                    *slot = Some(Regulation {
                        regime,
                        reason: regime.named_by_data(),
                    });
                }
            }
            None => regulations.0[0] = derived(record),
        }
        regulations
    }
}

/// Words of a category that mark a commercial card, which the IFR's caps exclude (article 1(3)
/// of Regulation (EU) 2015/751: cards issued to businesses or public bodies whose payments are
/// charged to the business's account). Matched as whole words, in any case: `BUSINESS`,
/// `SMALL BUSINESS`, `PREPAID BUSINESS`, `CORPORATE T&E`, `PURCHASING WITH FLEET`, `B2B
/// VIRTUAL`, `GOVERNMENT COMMERCIAL`.
pub const COMMERCIAL_WORDS: [&str; 8] = [
    "BUSINESS",
    "CORPORATE",
    "COMMERCIAL",
    "PURCHASING",
    "FLEET",
    "B2B",
    "GOVERNMENT",
    "PROCUREMENT",
];

/// The three-party schemes, whose own cards the IFR's caps exclude (article 1(3)(c) of
/// Regulation (EU) 2015/751): the scheme issues and acquires itself, and no interchange is paid.
/// (Cards such a scheme licenses banks to issue are capped; the data does not tell them apart,
/// so a bank's row can say so with the `regulated` column.)
pub const THREE_PARTY: [CardNetwork; 3] = [
    CardNetwork::AmericanExpress,
    CardNetwork::DinersClub,
    CardNetwork::Uatp,
];

/// Whether a category names a commercial card.
#[must_use]
pub fn is_commercial(category: &str) -> bool {
    category
        .split(|c: char| !c.is_ascii_alphanumeric())
        .any(|word| {
            COMMERCIAL_WORDS
                .iter()
                .any(|commercial| commercial.eq_ignore_ascii_case(word))
        })
}

/// The countries of the European Economic Area by ISO 3166-1 alpha-2 code: the 27 EU members
/// (Greece is `GR`), Iceland, Liechtenstein and Norway, and the parts of EU members with codes
/// of their own that are in the EU (Åland; the French outermost regions French Guiana,
/// Guadeloupe, Martinique, Réunion, Mayotte and Saint-Martin).
pub const EEA: [&str; 37] = [
    "AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU", "IE", "IT", "LV",
    "LT", "LU", "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE", "IS", "LI", "NO", "AX", "GF",
    "GP", "MQ", "RE", "YT", "MF",
];

/// The IFR regime of cards issued in a country: EU IFR in the EEA, UK IFR in GB.
fn ifr_of(alpha2: &str) -> Option<Regime> {
    if alpha2 == "GB" {
        Some(Regime::UkIfr)
    } else if EEA.contains(&alpha2) {
        Some(Regime::EuIfr)
    } else {
        None
    }
}

/// What a consumer card is, for its cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Consumer {
    Debit,
    Prepaid,
    Credit,
}

impl Consumer {
    /// Prepaid wins over the card type: a prepaid card's cap is debit's whatever its type says.
    /// A charge card is a deferred debit card, which the IFR caps as credit.
    fn of(card_type: Option<CardType>, prepaid: Option<bool>) -> Option<Self> {
        if prepaid == Some(true) {
            return Some(Self::Prepaid);
        }
        match card_type? {
            CardType::Debit => Some(Self::Debit),
            CardType::Credit | CardType::Charge => Some(Self::Credit),
        }
    }

    const fn name(self) -> &'static str {
        match self {
            Self::Debit => "debit",
            Self::Prepaid => "prepaid",
            Self::Credit => "credit",
        }
    }

    const fn cap(self) -> &'static str {
        match self {
            Self::Debit | Self::Prepaid => "0.2%",
            Self::Credit => "0.3%",
        }
    }
}

/// Every derived reason, built once: (regime, card, country) → reason.
static REASONS: LazyLock<HashMap<(Regime, Consumer, &'static str), String>> = LazyLock::new(|| {
    let countries = EEA
        .iter()
        .map(|&country| (Regime::EuIfr, country))
        .chain([(Regime::UkIfr, "GB")]);
    countries
        .flat_map(|(regime, country)| {
            [Consumer::Debit, Consumer::Prepaid, Consumer::Credit].map(|card| {
                let reason = format!(
                    "{}: consumer {} card issued in {country} (interchange capped at {})",
                    regime.label(),
                    card.name(),
                    card.cap(),
                );
                ((regime, card, country), reason)
            })
        })
        .collect()
});

/// The IFR regime a record's own facts give, if any.
fn derived(record: &BinRecord) -> Option<Regulation> {
    let country = record.country?.alpha2;
    let regime = ifr_of(country)?;
    let card = Consumer::of(record.card_type, record.prepaid)?;
    let three_party = record
        .network
        .is_some_and(|network| THREE_PARTY.contains(&network));
    if three_party || is_commercial(&record.category) {
        return None;
    }
    let reason = REASONS.get(&(regime, card, country))?;
    Some(Regulation {
        regime,
        reason: reason.as_str(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bins::record::{Country, Issuer};
    use crate::bins::regime::RegimeSet;
    use crate::card::IssuerRules;

    fn record(
        country: &str,
        card_type: Option<CardType>,
        prepaid: Option<bool>,
        category: &str,
    ) -> BinRecord {
        BinRecord {
            network: None,
            co_badged: crate::card::NetworkSet::empty(),
            brand: "VISA".into(),
            card_type,
            prepaid,
            category: category.into(),
            issuer: Issuer::default(),
            country: Country::from_alpha2(country),
            rules: IssuerRules::default(),
            regulated: None,
            regulations: Regulations::default(),
        }
    }

    fn reasons(record: &BinRecord) -> Vec<(Regime, &'static str)> {
        Regulations::of(record)
            .iter()
            .map(|r| (r.regime, r.reason))
            .collect()
    }

    #[test]
    fn consumer_cards_issued_in_the_eea_or_the_uk_are_capped_by_their_type() {
        use CardType::{Charge, Credit, Debit};
        assert_eq!(
            reasons(&record("DE", Some(Debit), Some(false), "CLASSIC")),
            [(
                Regime::EuIfr,
                "EU IFR: consumer debit card issued in DE (interchange capped at 0.2%)"
            )]
        );
        assert_eq!(
            reasons(&record("GB", Some(Credit), None, "")),
            [(
                Regime::UkIfr,
                "UK IFR: consumer credit card issued in GB (interchange capped at 0.3%)"
            )]
        );
        assert_eq!(
            reasons(&record("FR", Some(Credit), Some(true), "PREPAID")),
            [(
                Regime::EuIfr,
                "EU IFR: consumer prepaid card issued in FR (interchange capped at 0.2%)"
            )]
        );
        let charge = reasons(&record("NO", Some(Charge), None, "PERSONAL CHARGE"));
        assert_eq!(charge[0].0, Regime::EuIfr);
        assert!(
            charge[0].1.ends_with("(interchange capped at 0.3%)"),
            "{charge:?}"
        );
    }

    #[test]
    fn commercial_unknown_and_foreign_cards_get_no_regime() {
        use CardType::Debit;
        for category in [
            "BUSINESS",
            "Prepaid Business",
            "CORPORATE T&E",
            "B2B VIRTUAL",
        ] {
            assert_eq!(
                reasons(&record("DE", Some(Debit), None, category)),
                [],
                "{category}"
            );
        }
        // Not a word of its own: BUSINESSLIKE is no business card.
        assert!(!is_commercial("BUSINESSLIKE"));
        assert_eq!(reasons(&record("DE", None, None, "CLASSIC")), []);
        let mut amex = record("GB", Some(CardType::Credit), None, "PLATINUM");
        amex.network = Some(CardNetwork::AmericanExpress);
        assert_eq!(reasons(&amex), []);
        assert_eq!(reasons(&record("US", Some(Debit), None, "CLASSIC")), []);
        assert_eq!(reasons(&record("CH", Some(Debit), None, "CLASSIC")), []);
        assert_eq!(reasons(&record("", Some(Debit), None, "CLASSIC")), []);
    }

    #[test]
    fn the_data_column_replaces_the_derivation() {
        let mut german = record("DE", Some(CardType::Debit), None, "CLASSIC");
        german.regulated = Some(RegimeSet::parse("none").unwrap());
        assert_eq!(reasons(&german), []);
        let mut american = record("US", Some(CardType::Debit), None, "CLASSIC");
        american.regulated = Some(RegimeSet::parse("us-durbin").unwrap());
        let regimes = reasons(&american);
        assert_eq!(regimes.len(), 1);
        assert_eq!(regimes[0].0, Regime::UsDurbin);
        assert!(regimes[0].1.starts_with("US Durbin: named by the BIN data"));
    }

    #[test]
    fn every_eea_country_is_a_country() {
        for code in EEA {
            assert!(Country::from_alpha2(code).is_some(), "{code}");
        }
    }
}
