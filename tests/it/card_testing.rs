//! Card-testing detection over gRPC: a client walking through BINs is flagged, counted, and
//! refused when refusal is on; honest clients are not.

use std::sync::Arc;

use crate::common::{EMBEDDED, TestServer, pb};
use card_lookup::card_testing::CardTestingConfig;
use card_lookup::config::Config;
use tonic::{Code, Request};

fn lookup_as(client_id: &str, bin: u32) -> Request<pb::LookupBinRequest> {
    let mut request = Request::new(pb::LookupBinRequest {
        number: format!("{bin}0000000000"),
    });
    request
        .metadata_mut()
        .insert("x-client-id", client_id.parse().unwrap());
    request
}

fn validate_as(client_id: &str, number: &str) -> Request<pb::ValidateRequest> {
    let mut request = Request::new(pb::ValidateRequest {
        number: number.to_owned(),
    });
    request
        .metadata_mut()
        .insert("x-client-id", client_id.parse().unwrap());
    request
}

async fn server(refuse: bool) -> TestServer {
    let config = Config {
        // Each test names its clients by x-client-id, as callers behind a trusted gateway do.
        trusted_networks: vec!["127.0.0.0/8".parse().unwrap()],
        card_testing: CardTestingConfig {
            max_distinct_bins: 20,
            min_validations: 20,
            refuse,
            ..CardTestingConfig::default()
        },
        ..Config::default()
    };
    TestServer::start_configured(config, Arc::clone(&EMBEDDED)).await
}

#[tokio::test]
async fn a_client_walking_through_bins_is_refused_and_others_are_not() {
    let server = server(true).await;
    let mut client = server.client().await;
    let mut refused = None;
    for bin in 400_000..400_040 {
        if let Err(status) = client.lookup_bin(lookup_as("walker", bin)).await {
            refused = Some((bin, status));
            break;
        }
    }
    let (bin, status) = refused.expect("the walker was never refused");
    assert_eq!(bin, 400_020, "refused after the 21st distinct BIN");
    assert_eq!(status.code(), Code::PermissionDenied);
    assert!(
        status.message().contains("card testing (bin_walk)"),
        "{}",
        status.message()
    );

    // The same BIN again and again, from another client, is fine.
    for _ in 0..40 {
        assert!(
            client
                .lookup_bin(lookup_as("checkout", 411_111))
                .await
                .is_ok()
        );
    }
    let scrape = server.scrape().await;
    assert!(
        scrape.contains(
            r#"cardlookup_card_testing_suspected_total{client_class="default",reason="bin_walk"}"#
        ),
        "{scrape}"
    );
}

#[tokio::test]
async fn a_walker_that_names_itself_anew_on_every_call_is_still_one_client() {
    let config = Config {
        card_testing: CardTestingConfig {
            max_distinct_bins: 20,
            refuse: true,
            ..CardTestingConfig::default()
        },
        ..Config::default()
    };
    let server = TestServer::start_configured(config, Arc::clone(&EMBEDDED)).await;
    let mut client = server.client().await;
    let mut refused = None;
    for bin in 400_000..400_040 {
        let lookup = client
            .lookup_bin(lookup_as(&format!("walker-{bin}"), bin))
            .await;
        if let Err(status) = lookup {
            refused = Some((bin, status.code()));
            break;
        }
    }
    assert_eq!(
        refused,
        Some((400_020, Code::PermissionDenied)),
        "refused after the 21st distinct BIN"
    );
}

#[tokio::test]
async fn mostly_invalid_whole_numbers_are_flagged_but_typing_is_not() {
    let server = server(true).await;
    let mut client = server.client().await;
    // A checkout form validating as the user types: partial numbers are not Luhn failures.
    for typed in 1..=16 {
        for _ in 0..3 {
            let answer = client
                .validate(validate_as("form", &"4242424242424242"[..typed]))
                .await;
            assert!(answer.is_ok(), "typing was refused at {typed} digits");
        }
    }
    // A guesser: whole numbers, mostly failing Luhn.
    let mut refused = None;
    for last in 0..40 {
        let number = format!("41111111111111{:02}", last % 10 + 10);
        if let Err(status) = client.validate(validate_as("guesser", &number)).await {
            refused = Some(status);
            break;
        }
    }
    let status = refused.expect("the guesser was never refused");
    assert_eq!(status.code(), Code::PermissionDenied);
    assert!(
        status.message().contains("luhn_failures"),
        "{}",
        status.message()
    );
    assert!(!status.message().contains("4111"), "{}", status.message());
}

#[tokio::test]
async fn without_refusal_a_suspect_is_only_counted() {
    let server = server(false).await;
    let mut client = server.client().await;
    for bin in 500_000..500_040 {
        assert!(client.lookup_bin(lookup_as("walker-2", bin)).await.is_ok());
    }
    let scrape = server.scrape().await;
    assert!(
        scrape.contains("cardlookup_card_testing_suspected_total"),
        "{scrape}"
    );
}
