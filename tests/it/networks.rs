//! Validate names the network the BIN data names, and accepts the real cards of every network:
//! the partner ranges of Discover Global Network, single BINs inside another network's range,
//! and Naranja's own check digit.

use card_lookup::bins::{self, Prefix};
use card_lookup::card::{CardNetwork, luhn};

use crate::common::{EMBEDDED, TestServer, pb};
use pb::{CardNetwork as N, ValidationFailure as F};

/// A well-formed number under `prefix`: zeros up to `length`, then the Luhn check digit.
fn number_under(prefix: Prefix, length: usize) -> String {
    let mut digits: Vec<u8> = prefix.to_text().bytes().map(|b| b - b'0').collect();
    digits.resize(length - 1, 0);
    digits.push(luhn::check_digit(&digits));
    digits.iter().map(|d| char::from(b'0' + d)).collect()
}

/// The first length longer than the prefix that the issuer (where the data says) or else the
/// network issues.
fn length_for(prefix: Prefix, record: &bins::BinRecord, network: CardNetwork) -> usize {
    let lengths = record.rules.lengths.unwrap_or_else(|| network.lengths());
    lengths
        .iter()
        .find(|&length| length > prefix.len())
        .expect("every network issues numbers longer than a BIN")
}

#[test]
fn every_bin_of_the_embedded_data_validates_as_the_network_the_data_names() {
    let index = EMBEDDED.current();
    let mut checked = 0usize;
    let mut wrong = Vec::new();
    for (first, last, record) in index.entries() {
        let Some(network) = record.network else {
            continue;
        };
        for prefix in [first, last] {
            let number = number_under(prefix, length_for(prefix, &record, network));
            // A more specific entry under this one decides for the number: LookupBin's answer.
            let digits: Vec<u8> = number.bytes().map(|b| b - b'0').collect();
            let hit = index
                .longest_match(&digits)
                .expect("the number is under a BIN");
            let expected = hit.record.network.unwrap_or(network);
            let validation = bins::validate_number(&index, &number);
            if validation.network != Some(expected) || !validation.valid {
                wrong.push(format!(
                    "BIN {}: data says {expected}, Validate {:?} (valid: {}, {:?})",
                    prefix.to_text(),
                    validation.network,
                    validation.valid,
                    validation.failure
                ));
            }
            checked += 1;
        }
    }
    assert!(checked > 300_000, "only {checked} numbers were checked");
    assert!(
        wrong.is_empty(),
        "{} of {checked} disagree, such as:\n{}",
        wrong.len(),
        wrong[..wrong.len().min(20)].join("\n")
    );
}

async fn validate(server: &TestServer, number: &str) -> pb::ValidateResponse {
    let mut client = server.client().await;
    client
        .validate(pb::ValidateRequest {
            number: number.to_owned(),
        })
        .await
        .expect("Validate answers")
        .into_inner()
}

async fn lookup_network(server: &TestServer, number: &str) -> i32 {
    let mut client = server.client().await;
    client
        .lookup_bin(pb::LookupBinRequest {
            number: number.to_owned(),
        })
        .await
        .expect("LookupBin answers")
        .into_inner()
        .network
}

#[tokio::test]
async fn diners_club_3095_and_jcbs_partner_ranges_are_accepted() {
    let server = TestServer::start().await;
    for (number, network) in [
        ("30955678901231", N::DinersClub),
        ("3088000000000017", N::Jcb),
        ("3112000000000017", N::Jcb),
        ("3158000000000012", N::Jcb),
        ("3337000000000008", N::Jcb),
    ] {
        let answer = validate(&server, number).await;
        assert!(answer.valid, "{number}: {answer:?}");
        assert_eq!(answer.network(), network, "{number}");
        assert_eq!(lookup_network(&server, number).await, answer.network);
    }
}

#[tokio::test]
async fn a_maestro_bin_inside_unionpays_range_needs_its_check_digit() {
    let server = TestServer::start().await;
    // 622018 is State Bank of India's Maestro BIN, inside UnionPay's 622 (which needs no Luhn):
    // a mistyped number is refused, the right one accepted.
    let mistyped = validate(&server, "6220188577076727").await;
    assert_eq!(mistyped.network(), N::Maestro);
    assert_eq!(mistyped.failure(), F::LuhnFailed);
    let right = validate(&server, "6220188577076726").await;
    assert!(right.valid, "{right:?}");
    assert_eq!(
        lookup_network(&server, "6220188577076726").await,
        right.network
    );
    // 606126 is a Maestro BIN inside RuPay's 6061-6089: Maestro's lengths apply, not RuPay's 16.
    let nineteen = validate(&server, "6061260000000000001").await;
    assert_eq!(nineteen.network(), N::Maestro);
    assert!(nineteen.valid, "{nineteen:?}");
}

#[tokio::test]
async fn naranja_numbers_with_their_own_check_digit_are_valid() {
    let server = TestServer::start().await;
    let own = validate(&server, "5895627823453005").await;
    assert_eq!(own.network(), N::Naranja);
    assert!(
        own.valid && own.check_digit_valid && !own.luhn_valid,
        "{own:?}"
    );
    let mistyped = validate(&server, "5895627823453006").await;
    assert!(
        !mistyped.valid && !mistyped.check_digit_valid,
        "{mistyped:?}"
    );
    assert_eq!(mistyped.failure(), F::LuhnFailed);
}

#[tokio::test]
async fn uatp_and_dinacard_cards_are_accepted() {
    let server = TestServer::start().await;
    for (number, network) in [
        ("135412345678911", N::Uatp),
        ("9891000000000003", N::Dinacard),
    ] {
        let answer = validate(&server, number).await;
        assert!(answer.valid, "{number}: {answer:?}");
        assert_eq!(answer.network(), network, "{number}");
    }
}
