//! LookupBin's co-badged networks and regulation regimes over gRPC: from the embedded data's
//! brands and countries, the domestic schemes' published ranges, and an operator's file.

use std::sync::Arc;

use card_lookup::bins::{BinStore, DataSource, LoadOptions};
use card_lookup::card::domestic;

use crate::common::{TempDir, TestServer, pb, store_with_files};
use crate::validate::validate;

fn request(number: &str) -> pb::LookupBinRequest {
    pb::LookupBinRequest {
        number: number.to_owned(),
    }
}

async fn look_up(
    client: &mut pb::card_lookup_service_client::CardLookupServiceClient<tonic::transport::Channel>,
    number: &str,
) -> pb::LookupBinResponse {
    client
        .lookup_bin(request(number))
        .await
        .unwrap_or_else(|status| panic!("{status}"))
        .into_inner()
}

fn co_badged(answer: &pb::LookupBinResponse) -> Vec<pb::CardNetwork> {
    answer.co_badged_networks().collect()
}

fn regimes(answer: &pb::LookupBinResponse) -> Vec<(pb::RegulationRegime, &str)> {
    answer
        .regulations
        .iter()
        .map(|r| (r.regime(), r.reason.as_str()))
        .collect()
}

/// Asserts the answer's one regulation is EU IFR for a consumer debit card issued in `country`.
#[track_caller]
fn assert_eu_ifr_consumer_debit(answer: &pb::LookupBinResponse, country: &str) {
    let reason =
        format!("EU IFR: consumer debit card issued in {country} (interchange capped at 0.2%)");
    assert_eq!(
        regimes(answer),
        [(pb::RegulationRegime::EuIfr, reason.as_str())]
    );
}

#[tokio::test]
async fn a_visa_dankort_card_is_visa_co_badged_with_dankort() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    // 457100: VISA/DANKORT, DEBIT, CLASSIC, Nordea, DK in the embedded data.
    let answer = look_up(&mut client, "4571 0012 3456 7890").await;
    assert_eq!(answer.brand, "VISA/DANKORT");
    assert_eq!(answer.network(), pb::CardNetwork::Visa);
    assert_eq!(co_badged(&answer), [pb::CardNetwork::Dankort]);
    assert_eu_ifr_consumer_debit(&answer, "DK");
    // Validate names the one international network for the same number.
    let validation = validate(&mut client, "4571001234567890").await;
    assert_eq!(validation.network(), pb::CardNetwork::Visa);
}

#[tokio::test]
async fn bancontact_cards_are_co_badged_from_the_brand_and_the_published_ranges() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    // 561358: MAESTRO/BANCONTACT in the data, outside Bancontact's published ranges.
    let maestro = look_up(&mut client, "561358").await;
    assert_eq!(maestro.network(), pb::CardNetwork::Maestro);
    assert_eq!(co_badged(&maestro), [pb::CardNetwork::Bancontact]);
    // 479658: VISA/BANCONTACT in the data and Bancontact's published 479658: named once.
    let visa = look_up(&mut client, "4796 5800 0000 0000").await;
    assert_eq!(visa.network(), pb::CardNetwork::Visa);
    assert_eq!(co_badged(&visa), [pb::CardNetwork::Bancontact]);
    // 6703: Bancontact's range; a BIN the data does not know still gets it.
    let unknown = look_up(&mut client, "6703 9999 9999 9999 9").await;
    assert_eq!(co_badged(&unknown), [pb::CardNetwork::Bancontact]);
    assert_ne!(unknown.network(), pb::CardNetwork::Bancontact);
}

#[tokio::test]
async fn a_german_girocard_is_its_iin_network_co_badged_with_girocard_under_eu_ifr() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    // 680001: GIROCARD, DEBIT, DE; the brand names no international network.
    let answer = look_up(&mut client, "680001").await;
    assert_eq!(answer.brand, "GIROCARD");
    assert_eq!(answer.network(), pb::CardNetwork::Maestro);
    assert_eq!(co_badged(&answer), [pb::CardNetwork::Girocard]);
    assert_eu_ifr_consumer_debit(&answer, "DE");
}

#[tokio::test]
async fn a_dankort_only_card_has_dankort_as_its_network() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    // 501971: DANKORT alone in the data, inside Dankort's own 5019.
    let answer = look_up(&mut client, "5019717010103742").await;
    assert_eq!(answer.network(), pb::CardNetwork::Dankort);
    assert!(co_badged(&answer).is_empty(), "{answer:?}");
    let validation = validate(&mut client, "5019717010103742").await;
    assert_eq!(validation.network(), pb::CardNetwork::Dankort);
    assert!(validation.valid);
}

#[tokio::test]
async fn consumer_cards_issued_in_the_eea_or_the_uk_carry_their_ifr_and_business_cards_none() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    // 401030: VISA, DEBIT, CLASSIC, Orange Bank, FR.
    let french = look_up(&mut client, "401030").await;
    assert_eu_ifr_consumer_debit(&french, "FR");
    // 401343: VISA, CREDIT, CLASSIC, Tesco Bank, GB.
    let british = look_up(&mut client, "401343").await;
    assert_eq!(
        regimes(&british),
        [(
            pb::RegulationRegime::UkIfr,
            "UK IFR: consumer credit card issued in GB (interchange capped at 0.3%)"
        )]
    );
    // 408253: VISA, CREDIT, BUSINESS, DE: commercial cards are not capped.
    let business = look_up(&mut client, "408253").await;
    assert_eq!(business.category, "BUSINESS");
    assert_eq!(business.country.as_ref().unwrap().alpha2, "DE");
    assert!(regimes(&business).is_empty(), "{business:?}");
    // 622848: a Chinese debit card: no regime.
    assert!(regimes(&look_up(&mut client, "622848").await).is_empty());
}

#[tokio::test]
async fn an_operator_row_overrides_both_columns() {
    let dir = TempDir::new("co-badging");
    let path = dir.write(
        "bins.csv",
        "prefix,network,brand,card_type,category,country,co_badged,regulated\n\
         41111111,visa,VISA,debit,CLASSIC,US,star;nyce;visa,us-durbin\n\
         40103099,visa,VISA,debit,CLASSIC,FR,cartes-bancaires,none\n",
    );
    let server = TestServer::start_with(store_with_files(&[&path], LoadOptions::default())).await;
    let mut client = server.client().await;

    let american = look_up(&mut client, "4111 1111 1111 1111").await;
    assert_eq!(american.bin, "41111111");
    assert_eq!(american.network(), pb::CardNetwork::Visa);
    assert_eq!(
        co_badged(&american),
        [pb::CardNetwork::Star, pb::CardNetwork::Nyce]
    );
    let durbin = regimes(&american);
    assert_eq!(durbin.len(), 1, "{durbin:?}");
    assert_eq!(durbin[0].0, pb::RegulationRegime::UsDurbin);
    assert!(durbin[0].1.starts_with("US Durbin: "), "{durbin:?}");

    // A French consumer debit card the operator says is not regulated (and is CB co-badged).
    let french = look_up(&mut client, "4010309912345678").await;
    assert_eq!(french.bin, "40103099");
    assert_eq!(co_badged(&french), [pb::CardNetwork::CartesBancaires]);
    assert!(regimes(&french).is_empty(), "{french:?}");
    // The 6-digit entry under it still answers from the embedded data.
    let six = look_up(&mut client, "4010301234567890").await;
    assert_eq!(six.bin, "401030");
    assert_eq!(regimes(&six)[0].0, pb::RegulationRegime::EuIfr);
}

/// Conformance: a number in every published domestic range the service embeds gets that
/// scheme, as its network or co-badged, with or without the BIN data.
#[tokio::test]
async fn every_published_domestic_range_gives_its_scheme() {
    let dir = TempDir::new("co-badging-ranges");
    let empty = dir.write("empty.csv", "prefix\n");
    let without_data = BinStore::load(vec![DataSource::File(empty)], LoadOptions::default())
        .expect("an empty table loads");
    for server in [
        TestServer::start().await,
        TestServer::start_with(Arc::new(without_data)).await,
    ] {
        let mut client = server.client().await;
        let ranges = domestic::ranges();
        assert!(ranges.len() > 400);
        for range in ranges {
            for value in [range.first, range.last] {
                let number = format!("{value:0width$}", width = range.digits);
                let number = format!("{number:0<16}");
                let answer = look_up(&mut client, &number).await;
                let scheme = card_lookup_network(range.network);
                assert!(
                    answer.network() == scheme || co_badged(&answer).contains(&scheme),
                    "{} {number}: {answer:?}",
                    range.network
                );
                assert!(
                    !co_badged(&answer).contains(&answer.network()),
                    "{number}: {answer:?}"
                );
            }
        }
    }
}

/// The proto value of a domain network, by its name.
fn card_lookup_network(network: card_lookup::card::CardNetwork) -> pb::CardNetwork {
    let name = format!(
        "CARD_NETWORK_{}",
        network.slug().replace('-', "_").to_uppercase()
    );
    pb::CardNetwork::from_str_name(&name).unwrap_or_else(|| panic!("{name}"))
}
