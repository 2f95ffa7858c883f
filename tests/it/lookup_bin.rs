//! LookupBin over gRPC: longest-prefix answers from the BIN data, misses, and bad input.

use crate::common::{EMBEDDED, TempDir, TestServer, inspect_once, pb, store_with_files};
use card_lookup::bins::LoadOptions;
use tonic::Code;

fn request(number: &str) -> pb::LookupBinRequest {
    pb::LookupBinRequest {
        number: number.to_owned(),
    }
}

#[tokio::test]
async fn a_known_bin_gives_issuer_country_type_and_level() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    // 622848 is Agricultural Bank of China's UnionPay debit BIN in the embedded data.
    let answer = client
        .lookup_bin(request("6228 4800 0000 0000 000"))
        .await
        .unwrap()
        .into_inner();
    assert!(answer.found);
    assert_eq!(answer.bin, "622848");
    assert_eq!(answer.network(), pb::CardNetwork::Unionpay);
    assert_eq!(answer.brand, "CHINA UNION PAY");
    let country = answer.country.expect("country");
    assert_eq!(
        (
            country.alpha2.as_str(),
            country.alpha3.as_str(),
            country.numeric.as_str()
        ),
        ("CN", "CHN", "156")
    );
    let issuer = answer.issuer.expect("issuer");
    assert!(
        issuer.name.contains("AGRICULTURAL BANK OF CHINA"),
        "{issuer:?}"
    );
    assert_eq!(answer.dataset_version, EMBEDDED.current().version());
}

#[tokio::test]
async fn card_type_prepaid_and_category_come_from_the_data() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    // 002102: PRIVATE LABEL, CREDIT, STANDARD, CHINA MERCHANTS BANK (first row of the data).
    let answer = client
        .lookup_bin(request("002102"))
        .await
        .unwrap()
        .into_inner();
    assert!(answer.found);
    assert_eq!(answer.bin, "002102");
    assert_eq!(answer.card_type(), pb::CardType::Credit);
    assert_eq!(answer.category, "STANDARD");
    assert_eq!(answer.prepaid(), pb::PrepaidStatus::NotPrepaid);
    let issuer = answer.issuer.clone().unwrap();
    assert_eq!(issuer.name, "CHINA MERCHANTS BANK");
    assert_eq!(issuer.phone, "95555");
    assert_eq!(issuer.url, "https://english.cmbchina.com");
    // PRIVATE LABEL is no network, and 00 matches no IIN range.
    assert_eq!(answer.network(), pb::CardNetwork::Unspecified);
}

#[tokio::test]
async fn an_unknown_bin_is_an_answer_with_the_iin_network() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let answer = client.lookup_bin(request("9792999999")).await;
    let answer = answer.unwrap().into_inner();
    assert!(!answer.found);
    assert_eq!(answer.bin, "");
    assert_eq!(answer.network(), pb::CardNetwork::Troy);
    assert!(answer.issuer.is_none());
    assert!(!answer.dataset_version.is_empty());
}

#[tokio::test]
async fn files_on_top_of_the_embedded_data_win_with_eight_digit_bins() {
    let dir = TempDir::new("lookup");
    let path = dir.write(
        "overlay.csv",
        "BIN,Brand,Type,Category,Issuer,IssuerPhone,IssuerUrl,isoCode2,isoCode3,CountryName\n\
         41111122,VISA,DEBIT,PREPAID,OVERLAY BANK,+44 20 0000 0000,https://overlay.example,GB,GBR,UNITED KINGDOM\n",
    );
    let server = TestServer::start_with(store_with_files(&[&path], LoadOptions::default())).await;
    let mut client = server.client().await;

    let eight = client
        .lookup_bin(request("4111112233334444"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(eight.bin, "41111122");
    assert_eq!(eight.prepaid(), pb::PrepaidStatus::Prepaid);
    assert_eq!(eight.issuer.unwrap().name, "OVERLAY BANK");
    assert_eq!(
        eight.country.unwrap().name,
        "United Kingdom of Great Britain and Northern Ireland"
    );
    assert_ne!(eight.dataset_version, EMBEDDED.current().version());

    let six = client
        .lookup_bin(request("4111119933334444"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(six.bin, "411111");
}

/// "Send more digits": 6 digits answered by a 6-digit BIN with 8-digit BINs under it say so;
/// the digits of an 8-digit BIN, or a whole number, do not; nor do 6 digits with nothing longer
/// under them. Inspect's answers agree, shared or not.
#[tokio::test]
async fn more_specific_match_possible_when_longer_bins_lie_under_the_digits_given() {
    let dir = TempDir::new("lookup-more-digits");
    let path = dir.write(
        "eight.csv",
        "BIN,Brand,Type,Category,Issuer,IssuerPhone,IssuerUrl,isoCode2,isoCode3,CountryName\n\
         41111122,VISA,DEBIT,,EIGHT BANK,,,GB,GBR,UNITED KINGDOM\n",
    );
    let server = TestServer::start_with(store_with_files(&[&path], LoadOptions::default())).await;
    let mut client = server.client().await;
    let cases = [
        ("411111", "411111", true),
        ("4111112", "411111", true),
        ("41111122", "41111122", false),
        ("4111113", "411111", false),
        ("4111112233334444", "41111122", false),
        ("4111119933334444", "411111", false),
        ("622848", "622848", false),
    ];
    for (number, bin, more) in cases {
        let answer = client
            .lookup_bin(request(number))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(answer.bin, bin, "{number}");
        assert_eq!(answer.more_specific_match_possible, more, "{number}");
    }
    for layout in [pb::BinAnswerLayout::PerResult, pb::BinAnswerLayout::Shared] {
        let numbers: Vec<&str> = cases.iter().map(|(number, _, _)| *number).collect();
        let response = inspect_once(&mut client, &numbers, layout).await;
        for ((number, _, more), result) in cases.iter().zip(&response.results) {
            let bin = match result.bin_index {
                Some(i) => &response.bins[i as usize],
                None => result.bin.as_ref().unwrap(),
            };
            assert_eq!(
                bin.more_specific_match_possible, *more,
                "{number} {layout:?}"
            );
        }
    }
}

#[tokio::test]
async fn bad_input_is_invalid_argument_without_the_number() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    for (number, expected) in [
        ("41111", "LookupBin needs at least 6"),
        ("", "no digits"),
        ("411111x", "other than digits"),
        ("41111111111111111111", "20 digits"),
    ] {
        let status = client.lookup_bin(request(number)).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{number:?}");
        assert!(
            status.message().contains(expected),
            "{number:?}: {}",
            status.message()
        );
        assert!(!status.message().contains("41111"), "{}", status.message());
    }
}
