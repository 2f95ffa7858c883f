//! MaskCard over gRPC: styles, PCI DSS limits, grouping and bad input.

use crate::common::{TempDir, TestServer, pb, store_with_files};
use card_lookup::bins::LoadOptions;
use pb::MaskStyle as S;
use tonic::Code;

fn request(number: &str, style: S) -> pb::MaskCardRequest {
    pb::MaskCardRequest {
        number: number.to_owned(),
        style: style.into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn styles_show_at_most_the_bin_and_last_four() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let cases = [
        ("4111111111111111", S::Unspecified, "************1111"),
        ("4111111111111111", S::LastFour, "************1111"),
        ("4111111111111111", S::BinAndLastFour, "411111******1111"),
        ("4111111111111111", S::All, "****************"),
        ("3782-822463-10005", S::BinAndLastFour, "378282*****0005"),
        // A 12-digit number would show 10 of 12 digits: only the last four are shown.
        ("500000000000", S::BinAndLastFour, "********0000"),
    ];
    for (number, style, expected) in cases {
        let answer = client
            .mask_card(request(number, style))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(answer.masked, expected, "{number} {style:?}");
    }
}

#[tokio::test]
async fn eight_digits_show_only_under_an_eight_digit_bin() {
    let dir = TempDir::new("mask");
    let path = dir.write(
        "eight.csv",
        "BIN,Brand,Type,Category,Issuer,IssuerPhone,IssuerUrl,isoCode2,isoCode3,CountryName\n\
         41111122,VISA,DEBIT,,EIGHT BANK,,,GB,GBR,UNITED KINGDOM\n",
    );
    let server = TestServer::start_with(store_with_files(&[&path], LoadOptions::default())).await;
    let mut client = server.client().await;
    let mask = |number: &str| request(number, S::BinAndLastFour);
    let eight = client
        .mask_card(mask("4111112233334444"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(eight.masked, "41111122****4444");
    let six = client
        .mask_card(mask("4111119933334444"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(six.masked, "411111******4444");
    // Under 16 digits, even an 8-digit BIN shows only 6.
    let short = client
        .mask_card(mask("4111112233334"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(short.masked, "411111***3334");
}

#[tokio::test]
async fn grouping_and_mask_character() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let grouped = |number: &str, character: &str| pb::MaskCardRequest {
        number: number.to_owned(),
        style: S::LastFour.into(),
        mask_character: Some(character.to_owned()),
        keep_grouping: true,
    };
    let amex = client
        .mask_card(grouped("378282246310005", "•"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(amex.masked, "•••• •••••• •0005");
    assert_eq!(amex.network(), pb::CardNetwork::AmericanExpress);
    let visa = client
        .mask_card(grouped("4111111111111111", "X"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(visa.masked, "XXXX XXXX XXXX 1111");
}

#[tokio::test]
async fn not_a_card_number_is_invalid_argument() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let bad = [
        (request("41111111111", S::LastFour), "11 digits"),
        (
            request("4111 1111 1111 111x", S::LastFour),
            "other than digits",
        ),
        (request("", S::LastFour), "no digits"),
        (request("4111111111111111111111", S::LastFour), "22 digits"),
        (
            pb::MaskCardRequest {
                style: 99,
                ..request("4111111111111111", S::LastFour)
            },
            "style",
        ),
        (
            pb::MaskCardRequest {
                mask_character: Some("7".into()),
                ..request("4111111111111111", S::LastFour)
            },
            "mask_character",
        ),
        (
            pb::MaskCardRequest {
                mask_character: Some("**".into()),
                ..request("4111111111111111", S::LastFour)
            },
            "mask_character",
        ),
    ];
    for (req, expected) in bad {
        let status = client.mask_card(req).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
        assert!(status.message().contains(expected), "{}", status.message());
        assert!(!status.message().contains("1111"), "{}", status.message());
    }
}
