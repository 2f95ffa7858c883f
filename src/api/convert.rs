//! Domain values to proto messages and back: the one mapping between the two, used by every
//! front end (the services answer with it; the command line reads a server's answers with it).

use crate::bins::{BinMatch, CardType, Regime, Regulations};
use crate::card::{self, Failure, NetworkSet, Providers, TestCards, Validation};
use crate::proto::cardlookup::v1 as pb;

pub(crate) fn network(network: Option<card::CardNetwork>) -> pb::CardNetwork {
    use card::CardNetwork as N;
    match network {
        None => pb::CardNetwork::Unspecified,
        Some(N::Visa) => pb::CardNetwork::Visa,
        Some(N::Mastercard) => pb::CardNetwork::Mastercard,
        Some(N::AmericanExpress) => pb::CardNetwork::AmericanExpress,
        Some(N::Discover) => pb::CardNetwork::Discover,
        Some(N::DinersClub) => pb::CardNetwork::DinersClub,
        Some(N::Jcb) => pb::CardNetwork::Jcb,
        Some(N::UnionPay) => pb::CardNetwork::Unionpay,
        Some(N::Maestro) => pb::CardNetwork::Maestro,
        Some(N::Mir) => pb::CardNetwork::Mir,
        Some(N::Elo) => pb::CardNetwork::Elo,
        Some(N::Hipercard) => pb::CardNetwork::Hipercard,
        Some(N::Hiper) => pb::CardNetwork::Hiper,
        Some(N::Troy) => pb::CardNetwork::Troy,
        Some(N::Verve) => pb::CardNetwork::Verve,
        Some(N::RuPay) => pb::CardNetwork::Rupay,
        Some(N::Naranja) => pb::CardNetwork::Naranja,
        Some(N::Uatp) => pb::CardNetwork::Uatp,
        Some(N::DinaCard) => pb::CardNetwork::Dinacard,
        Some(N::Dankort) => pb::CardNetwork::Dankort,
        Some(N::CartesBancaires) => pb::CardNetwork::CartesBancaires,
        Some(N::EftposAustralia) => pb::CardNetwork::EftposAustralia,
        Some(N::Mada) => pb::CardNetwork::Mada,
        Some(N::Bancontact) => pb::CardNetwork::Bancontact,
        Some(N::Girocard) => pb::CardNetwork::Girocard,
        Some(N::Interac) => pb::CardNetwork::Interac,
        Some(N::Star) => pb::CardNetwork::Star,
        Some(N::Nyce) => pb::CardNetwork::Nyce,
        Some(N::Pulse) => pb::CardNetwork::Pulse,
        Some(N::Accel) => pb::CardNetwork::Accel,
    }
}

pub(crate) fn failure(failure: Option<Failure>) -> pb::ValidationFailure {
    match failure {
        None => pb::ValidationFailure::Unspecified,
        Some(Failure::Empty) => pb::ValidationFailure::Empty,
        Some(Failure::NonDigit) => pb::ValidationFailure::NonDigit,
        Some(Failure::TooShort) => pb::ValidationFailure::TooShort,
        Some(Failure::TooLong) => pb::ValidationFailure::TooLong,
        Some(Failure::LengthInvalidForNetwork) => pb::ValidationFailure::LengthInvalidForNetwork,
        Some(Failure::LuhnFailed) => pb::ValidationFailure::LuhnFailed,
        Some(Failure::UnknownNetwork) => pb::ValidationFailure::UnknownNetwork,
    }
}

/// The test-card facts of a number: whether it is one, and the providers that list it.
pub(crate) struct TestCard<'a> {
    pub(crate) providers: Providers,
    pub(crate) lists: &'a TestCards,
}

impl TestCard<'_> {
    fn sources(&self) -> Vec<String> {
        if self.providers.is_empty() {
            return Vec::new();
        }
        self.lists
            .names(self.providers)
            .map(str::to_owned)
            .collect()
    }
}

/// Validate's answer, with the number's `fingerprint` (empty for none) and test-card facts.
pub(crate) fn validation(
    v: Validation,
    fingerprint: String,
    test_card: &TestCard<'_>,
) -> pb::ValidateResponse {
    pb::ValidateResponse {
        valid: v.valid,
        luhn_valid: v.luhn_valid,
        length_valid: v.length_valid,
        network: network(v.network).into(),
        failure: failure(v.failure).into(),
        potentially_valid: v.potentially_valid,
        masked_number: v.masked,
        candidate_networks: v
            .candidates
            .iter()
            .map(|n| network(Some(n)).into())
            .collect(),
        luhn_required: v.luhn_required,
        check_digit_valid: v.check_digit_valid,
        network_lengths: v.lengths.iter().map(|l| l as u32).collect(),
        digit_count: u32::try_from(v.digit_count).unwrap_or(u32::MAX),
        failure_message: v
            .failure
            .map(Failure::message)
            .unwrap_or_default()
            .to_owned(),
        fingerprint,
        test_card: !test_card.providers.is_empty(),
        test_card_sources: test_card.sources(),
    }
}

/// A LookupBin answer; `network` is the number's ([`crate::bins::facts::CardFacts`]: the
/// entry's when it names one) and `co_badged` its other networks; `more_specific` whether a
/// longer entry begins with the digits given; `test_card` the number's test-card facts.
pub(crate) fn bin_lookup(
    hit: Option<BinMatch>,
    card_network: Option<card::CardNetwork>,
    co_badged: NetworkSet,
    more_specific: bool,
    test_card: &TestCard<'_>,
    dataset_version: &str,
) -> pb::LookupBinResponse {
    let Some(BinMatch { prefix, record }) = hit else {
        return pb::LookupBinResponse {
            network: network(card_network).into(),
            co_badged_networks: networks(co_badged),
            more_specific_match_possible: more_specific,
            test_card: !test_card.providers.is_empty(),
            test_card_sources: test_card.sources(),
            dataset_version: dataset_version.to_owned(),
            ..Default::default()
        };
    };
    pb::LookupBinResponse {
        found: true,
        bin: prefix.to_text(),
        network: network(card_network).into(),
        brand: String::from(&*record.brand),
        card_type: match record.card_type {
            None => pb::CardType::Unspecified,
            Some(CardType::Debit) => pb::CardType::Debit,
            Some(CardType::Credit) => pb::CardType::Credit,
            Some(CardType::Charge) => pb::CardType::Charge,
        }
        .into(),
        prepaid: match record.prepaid {
            None => pb::PrepaidStatus::Unspecified,
            Some(true) => pb::PrepaidStatus::Prepaid,
            Some(false) => pb::PrepaidStatus::NotPrepaid,
        }
        .into(),
        category: String::from(&*record.category),
        issuer: Some(pb::Issuer {
            name: String::from(&*record.issuer.name),
            url: String::from(&*record.issuer.url),
            phone: String::from(&*record.issuer.phone),
        }),
        country: record.country.map(|c| pb::Country {
            alpha2: c.alpha2.to_owned(),
            alpha3: c.alpha3.to_owned(),
            numeric: c.numeric_text(),
            name: c.name.to_owned(),
        }),
        dataset_version: dataset_version.to_owned(),
        more_specific_match_possible: more_specific,
        test_card: !test_card.providers.is_empty(),
        test_card_sources: test_card.sources(),
        co_badged_networks: networks(co_badged),
        regulations: regulations(&record.regulations),
    }
}

/// The proto values of a set of networks, in its order.
fn networks(set: NetworkSet) -> Vec<i32> {
    set.iter().map(|n| network(Some(n)).into()).collect()
}

fn regime(regime: Regime) -> pb::RegulationRegime {
    match regime {
        Regime::EuIfr => pb::RegulationRegime::EuIfr,
        Regime::UkIfr => pb::RegulationRegime::UkIfr,
        Regime::UsDurbin => pb::RegulationRegime::UsDurbin,
    }
}

/// The domain regime of a proto `RegulationRegime` value; `None` for UNSPECIFIED and values
/// this build does not know.
pub(crate) fn regime_from_proto(value: i32) -> Option<Regime> {
    Some(match pb::RegulationRegime::try_from(value).ok()? {
        pb::RegulationRegime::Unspecified => return None,
        pb::RegulationRegime::EuIfr => Regime::EuIfr,
        pb::RegulationRegime::UkIfr => Regime::UkIfr,
        pb::RegulationRegime::UsDurbin => Regime::UsDurbin,
    })
}

fn regulations(regulations: &Regulations) -> Vec<pb::Regulation> {
    regulations
        .iter()
        .map(|r| pb::Regulation {
            regime: regime(r.regime).into(),
            reason: r.reason.to_owned(),
        })
        .collect()
}

pub(crate) fn mask_style(style: i32) -> Option<card::MaskStyle> {
    match pb::MaskStyle::try_from(style).ok()? {
        pb::MaskStyle::Unspecified | pb::MaskStyle::LastFour => Some(card::MaskStyle::LastFour),
        pb::MaskStyle::BinAndLastFour => Some(card::MaskStyle::BinAndLastFour),
        pb::MaskStyle::All => Some(card::MaskStyle::All),
    }
}

/// The domain network of a proto `CardNetwork` value; `None` for UNSPECIFIED and for values
/// this build does not know (a newer server).
pub(crate) fn network_from_proto(value: i32) -> Option<card::CardNetwork> {
    use card::CardNetwork as N;
    Some(match pb::CardNetwork::try_from(value).ok()? {
        pb::CardNetwork::Unspecified => return None,
        pb::CardNetwork::Visa => N::Visa,
        pb::CardNetwork::Mastercard => N::Mastercard,
        pb::CardNetwork::AmericanExpress => N::AmericanExpress,
        pb::CardNetwork::Discover => N::Discover,
        pb::CardNetwork::DinersClub => N::DinersClub,
        pb::CardNetwork::Jcb => N::Jcb,
        pb::CardNetwork::Unionpay => N::UnionPay,
        pb::CardNetwork::Maestro => N::Maestro,
        pb::CardNetwork::Mir => N::Mir,
        pb::CardNetwork::Elo => N::Elo,
        pb::CardNetwork::Hipercard => N::Hipercard,
        pb::CardNetwork::Hiper => N::Hiper,
        pb::CardNetwork::Troy => N::Troy,
        pb::CardNetwork::Verve => N::Verve,
        pb::CardNetwork::Rupay => N::RuPay,
        pb::CardNetwork::Naranja => N::Naranja,
        pb::CardNetwork::Uatp => N::Uatp,
        pb::CardNetwork::Dinacard => N::DinaCard,
        pb::CardNetwork::Dankort => N::Dankort,
        pb::CardNetwork::CartesBancaires => N::CartesBancaires,
        pb::CardNetwork::EftposAustralia => N::EftposAustralia,
        pb::CardNetwork::Mada => N::Mada,
        pb::CardNetwork::Bancontact => N::Bancontact,
        pb::CardNetwork::Girocard => N::Girocard,
        pb::CardNetwork::Interac => N::Interac,
        pb::CardNetwork::Star => N::Star,
        pb::CardNetwork::Nyce => N::Nyce,
        pb::CardNetwork::Pulse => N::Pulse,
        pb::CardNetwork::Accel => N::Accel,
    })
}

/// The domain reason of a proto `ValidationFailure`; `None` for UNSPECIFIED.
pub(crate) fn failure_from_proto(failure: pb::ValidationFailure) -> Option<Failure> {
    Some(match failure {
        pb::ValidationFailure::Unspecified => return None,
        pb::ValidationFailure::Empty => Failure::Empty,
        pb::ValidationFailure::NonDigit => Failure::NonDigit,
        pb::ValidationFailure::TooShort => Failure::TooShort,
        pb::ValidationFailure::TooLong => Failure::TooLong,
        pb::ValidationFailure::LengthInvalidForNetwork => Failure::LengthInvalidForNetwork,
        pb::ValidationFailure::LuhnFailed => Failure::LuhnFailed,
        pb::ValidationFailure::UnknownNetwork => Failure::UnknownNetwork,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_network_and_failure_maps_to_proto_and_back() {
        for network in card::CardNetwork::every() {
            assert_eq!(
                network_from_proto(network_value(Some(network))),
                Some(network)
            );
        }
        assert_eq!(network_from_proto(0), None);
        assert_eq!(network_from_proto(9999), None);
        for failure in [
            Failure::Empty,
            Failure::NonDigit,
            Failure::TooShort,
            Failure::TooLong,
            Failure::LengthInvalidForNetwork,
            Failure::LuhnFailed,
            Failure::UnknownNetwork,
        ] {
            assert_eq!(
                failure_from_proto(self::failure(Some(failure))),
                Some(failure)
            );
        }
        assert_eq!(failure_from_proto(pb::ValidationFailure::Unspecified), None);
        for regime in Regime::ALL {
            assert_eq!(regime_from_proto(self::regime(regime).into()), Some(regime));
        }
        assert_eq!(regime_from_proto(0), None);
    }

    fn network_value(value: Option<card::CardNetwork>) -> i32 {
        network(value).into()
    }
}
