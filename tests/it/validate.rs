//! Validate over gRPC: networks, lengths, Luhn, failures and as-you-type answers.

use crate::common::{TestServer, pb};
use pb::{CardNetwork as N, ValidationFailure as F};

pub(crate) async fn validate(
    client: &mut pb::card_lookup_service_client::CardLookupServiceClient<tonic::transport::Channel>,
    number: &str,
) -> pb::ValidateResponse {
    client
        .validate(pb::ValidateRequest {
            number: number.to_owned(),
        })
        .await
        .unwrap_or_else(|status| panic!("Validate({number:?}) failed: {status:?}"))
        .into_inner()
}

#[tokio::test]
async fn published_test_cards_are_valid_for_their_network() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    // Test numbers that payment providers publish (Stripe, Adyen, Braintree, PayU, ...).
    let cards = [
        ("4111111111111111", N::Visa),
        ("4012888888881881", N::Visa),
        ("4222222222222", N::Visa),
        ("5555555555554444", N::Mastercard),
        ("2223003122003222", N::Mastercard),
        ("378282246310005", N::AmericanExpress),
        ("371449635398431", N::AmericanExpress),
        ("6011111111111117", N::Discover),
        ("6011000990139424", N::Discover),
        ("30569309025904", N::DinersClub),
        ("38520000023237", N::DinersClub),
        ("3530111333300000", N::Jcb),
        ("3566002020360505", N::Jcb),
        ("6200000000000005", N::Unionpay),
        ("6212345678901232", N::Unionpay),
        ("6759649826438453", N::Maestro),
        ("5000000000000611", N::Maestro),
        ("2200000000000004", N::Mir),
        ("6362970000457013", N::Elo),
        ("6062826786276634", N::Hipercard),
        // braintree's Hiper test card: the BIN data files 637095 under HIPERCARD (Itau issues
        // both brands), and the data's network wins.
        ("6370950000000005", N::Hipercard),
        ("9792030000000000", N::Troy),
        ("5061001234567890125", N::Verve),
        ("6521500000000006", N::Rupay),
        ("5895626292990446", N::Naranja),
    ];
    for (number, network) in cards {
        let answer = validate(&mut client, number).await;
        assert_eq!(answer.network(), network, "{number}");
        assert!(answer.valid, "{number}: {answer:?}");
        assert!(answer.potentially_valid && answer.length_valid, "{number}");
        assert_eq!(answer.failure(), F::Unspecified, "{number}");
        assert_eq!(answer.candidate_networks, [i32::from(network)], "{number}");
    }
}

#[tokio::test]
async fn each_failure_has_its_reason_and_message() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let cases = [
        ("", F::Empty, true),
        ("4111-1111-abcd-1111", F::NonDigit, false),
        ("4111", F::TooShort, true),
        ("41111111111111111111", F::TooLong, false),
        ("3782822463100051", F::TooLong, false),
        ("41111111111111111", F::LengthInvalidForNetwork, true),
        ("4111111111111112", F::LuhnFailed, true),
        ("5555555555554446", F::LuhnFailed, false),
        ("7111111111111111", F::UnknownNetwork, false),
    ];
    for (number, failure, potentially_valid) in cases {
        let answer = validate(&mut client, number).await;
        assert!(!answer.valid, "{number}");
        assert_eq!(answer.failure(), failure, "{number}");
        assert_eq!(
            answer.potentially_valid, potentially_valid,
            "{number}: {answer:?}"
        );
        assert!(!answer.failure_message.is_empty(), "{number}");
        assert!(!answer.failure_message.contains("1111"), "{number}");
    }
}

#[tokio::test]
async fn separators_are_ignored() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    for number in [
        "4111 1111 1111 1111",
        "4111-1111-1111-1111",
        " 4111 - 1111 1111-1111 ",
    ] {
        let answer = validate(&mut client, number).await;
        assert!(answer.valid, "{number:?}");
        assert_eq!(answer.digit_count, 16);
        assert_eq!(answer.masked_number, "************1111");
    }
}

#[tokio::test]
async fn typing_a_number_digit_by_digit() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let number = "4242424242424242";
    for typed in 1..=number.len() {
        let prefix = &number[..typed];
        let answer = validate(&mut client, prefix).await;
        assert!(answer.potentially_valid, "{prefix}");
        assert_eq!(answer.valid, typed == number.len(), "{prefix}");
        // "4" alone could still be Visa, Elo, Maestro or Naranja.
        let expected = if typed == 1 { N::Unspecified } else { N::Visa };
        assert_eq!(answer.network(), expected, "{prefix}");
    }
    let first = validate(&mut client, "4").await;
    let candidates: Vec<N> = first.candidate_networks().collect();
    assert_eq!(candidates, [N::Visa, N::Maestro, N::Elo, N::Naranja]);
}

#[tokio::test]
async fn the_longest_iin_range_wins() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    assert_eq!(
        validate(&mut client, "4011780000000000").await.network(),
        N::Elo
    );
    assert_eq!(
        validate(&mut client, "4011770000000000").await.network(),
        N::Visa
    );
    assert_eq!(
        validate(&mut client, "6221260000000000").await.network(),
        N::Unionpay
    );
    assert_eq!(
        validate(&mut client, "6218300000000000").await.network(),
        N::Maestro
    );
}

#[tokio::test]
async fn unionpay_needs_no_luhn_but_reports_it() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let answer = validate(&mut client, "6212345678900000004").await;
    assert!(answer.valid);
    assert!(!answer.luhn_valid);
    assert!(!answer.luhn_required);
    assert_eq!(answer.network_lengths, [14, 15, 16, 17, 18, 19]);
}

#[tokio::test]
async fn hostile_input_gets_an_answer() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    for number in [
        "\u{0}",
        "٤١١١١١١١١١١١١١١١",
        "4111\u{202e}1111",
        &"9".repeat(3000),
    ] {
        let answer = validate(&mut client, number).await;
        assert!(!answer.valid);
        assert!(!answer.potentially_valid);
    }
}
