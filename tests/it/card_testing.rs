//! Card-testing detection over gRPC: a client walking through BINs is flagged, counted, and
//! refused when refusal is on; honest clients are not. With a shared Redis, a client is judged
//! on its calls to every replica (against a real `redis-server`: see `common::redis`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::redis::RedisServer;
use crate::common::{EMBEDDED, TestServer, pb};
use card_lookup::card_testing::CardTestingConfig;
use card_lookup::config::Config;
use card_lookup::proto::cardlookup::v1::card_lookup_service_client::CardLookupServiceClient;
use card_lookup::shared_store::RedisTarget;
use tonic::transport::Channel;
use tonic::{Code, Request, Status};

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

/// Flags past 20 distinct BINs, or more than half of at least 20 numbers failing Luhn.
fn config(refuse: bool) -> Config {
    Config {
        // Each test names its clients by x-client-id, as callers behind a trusted gateway do.
        trusted_networks: vec!["127.0.0.0/8".parse().unwrap()],
        card_testing: CardTestingConfig {
            max_distinct_bins: 20,
            min_validations: 20,
            refuse,
            ..CardTestingConfig::default()
        },
        ..Config::default()
    }
}

async fn server(refuse: bool) -> TestServer {
    TestServer::start_configured(config(refuse), Arc::clone(&EMBEDDED)).await
}

/// Two replicas that refuse suspects and pool their windows in `redis`.
async fn two_replicas(redis: &RedisServer) -> [TestServer; 2] {
    let pooled = || Config {
        redis: Some(RedisTarget::new(&redis.url(), None).unwrap()),
        ..config(true)
    };
    [
        TestServer::start_configured(pooled(), Arc::clone(&EMBEDDED)).await,
        TestServer::start_configured(pooled(), Arc::clone(&EMBEDDED)).await,
    ]
}

/// Checks `status` refuses a caller flagged for card testing for `reason`.
fn assert_refused_for(status: &Status, reason: &str) {
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    assert!(
        status
            .message()
            .contains(&format!("card testing ({reason})")),
        "{}",
        status.message()
    );
}

/// Calls `client` as `who` until it is refused, or for 10 s (each replica reports to the pool
/// once a second); the refusal.
async fn refused_soon(client: &mut CardLookupServiceClient<Channel>, who: &str) -> Option<Status> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Err(status) = client.lookup_bin(lookup_as(who, 411_111)).await {
            return Some(status);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

/// Rounds of card-testing reports dropped, as `server` shows them (the metrics recorder is
/// this test binary's, shared by every server it starts).
async fn dropped_rounds(server: &TestServer) -> f64 {
    let scrape = server.scrape().await;
    ["error", "timeout"]
        .iter()
        .filter_map(|reason| {
            let line = format!("cardlookup_card_testing_pool_errors_total{{reason=\"{reason}\"}}");
            scrape
                .lines()
                .find_map(|l| l.strip_prefix(line.as_str())?.trim().parse::<f64>().ok())
        })
        .sum()
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
    assert_refused_for(&status, "bin_walk");

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

/// Valid numbers of BIN 411111, as a BIN attack generates them: the payload counts up through
/// `range`, the check digit makes each valid.
fn valid_cards(range: std::ops::Range<u64>) -> Vec<String> {
    range
        .map(|i| {
            let payload = format!("411111{:09}", 100_000_000 + i);
            let digits: Vec<u8> = payload.bytes().map(|b| b - b'0').collect();
            format!("{payload}{}", card_lookup::card::luhn::check_digit(&digits))
        })
        .collect()
}

/// A BIN attack: valid numbers, all in one BIN, through Validate and LookupBin alike. Counted
/// only with --card-testing-max-cards; typing one number, and resending it, is one card.
#[tokio::test]
async fn a_client_trying_many_cards_of_one_bin_is_refused_when_cards_are_counted() {
    let mut config = config(true);
    config.card_testing.max_distinct_cards = 10;
    let server = TestServer::start_configured(config, Arc::clone(&EMBEDDED)).await;
    let mut client = server.client().await;
    let cards = valid_cards(0..20);
    let mut refused = None;
    for (i, number) in cards.iter().enumerate() {
        let answer = if i % 2 == 0 {
            client
                .validate(validate_as("tester", number))
                .await
                .map(|_| ())
        } else {
            let mut request = Request::new(pb::LookupBinRequest {
                number: number.clone(),
            });
            request
                .metadata_mut()
                .insert("x-client-id", "tester".parse().unwrap());
            client.lookup_bin(request).await.map(|_| ())
        };
        if let Err(status) = answer {
            refused = Some((i, status));
            break;
        }
    }
    let (i, status) = refused.expect("the tester was never refused");
    assert_eq!(i, 10, "refused at the 11th distinct card");
    assert_refused_for(&status, "card_walk");
    // Typed digit by digit, then sent again and again: one card (partial numbers are none).
    let number = &cards[0];
    for end in 6..=number.len() {
        let answer = client.validate(validate_as("typist", &number[..end])).await;
        assert!(answer.is_ok(), "{end} digits: {answer:?}");
    }
    for _ in 0..20 {
        assert!(client.validate(validate_as("typist", number)).await.is_ok());
    }
    let scrape = server.scrape().await;
    assert!(
        scrape.contains(
            r#"cardlookup_card_testing_suspected_total{client_class="default",reason="card_walk"}"#
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
    assert_refused_for(&status, "luhn_failures");
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

#[tokio::test]
async fn a_walk_spread_over_two_replicas_is_refused_on_both() {
    let Some(redis) = RedisServer::start("card testing across replicas") else {
        return;
    };
    let replicas = two_replicas(&redis).await;
    let mut clients = [replicas[0].client().await, replicas[1].client().await];
    // 15 distinct BINs on each replica: below 20 on either, 30 over both.
    for (replica, bins) in [(0, 400_000..400_015), (1, 400_015..400_030)] {
        for bin in bins {
            let answer = clients[replica].lookup_bin(lookup_as("ring", bin)).await;
            assert!(answer.is_ok(), "refused by one replica alone: {answer:?}");
        }
    }
    for client in &mut clients {
        let status = refused_soon(client, "ring")
            .await
            .expect("the ring was never refused");
        assert_refused_for(&status, "bin_walk");
    }
    // Another client is served by both.
    for client in &mut clients {
        assert!(
            client
                .lookup_bin(lookup_as("checkout", 411_111))
                .await
                .is_ok()
        );
    }
    // Redis holds hashes of the client and BINs, never the client's name.
    let keys = redis.keys();
    assert!(keys.iter().any(|key| key.ends_with(":flag")), "{keys:?}");
    for key in &keys {
        assert!(key.starts_with("cardlookup:ct:{"), "{key}");
        assert!(!key.contains("ring") && !key.contains("127.0.0.1"), "{key}");
    }
}

/// With a fingerprint key (the card key's source) every replica hashes a card alike, so the
/// pool counts a BIN attack's cards over all of them.
#[tokio::test]
async fn cards_spread_over_two_replicas_with_one_fingerprint_key_are_refused_on_both() {
    let Some(redis) = RedisServer::start("card testing across replicas: cards") else {
        return;
    };
    let keys =
        card_lookup::card::FingerprintKeys::parse(&format!("k1 {}\n", "ab".repeat(32))).unwrap();
    let replica = || {
        let mut config = Config {
            redis: Some(RedisTarget::new(&redis.url(), None).unwrap()),
            fingerprint_keys: Some(keys.clone()),
            ..config(true)
        };
        config.card_testing.max_distinct_cards = 10;
        TestServer::start_configured(config, Arc::clone(&EMBEDDED))
    };
    let replicas = [replica().await, replica().await];
    let mut clients = [replicas[0].client().await, replicas[1].client().await];
    // 6 distinct cards of one BIN on each replica: below 10 on either, 12 over both.
    for (replica, cards) in [(0, valid_cards(0..6)), (1, valid_cards(6..12))] {
        for card in cards {
            let answer = clients[replica].validate(validate_as("ring", &card)).await;
            assert!(answer.is_ok(), "refused by one replica alone: {answer:?}");
        }
    }
    for client in &mut clients {
        let status = refused_soon(client, "ring")
            .await
            .expect("the ring was never refused");
        assert_refused_for(&status, "card_walk");
    }
    // Redis holds no number: no key names one, and the card sets are HyperLogLogs.
    for key in redis.keys() {
        assert!(!key.contains("411111"), "{key}");
    }
}

#[tokio::test]
async fn luhn_failures_spread_over_two_replicas_are_refused_and_one_replicas_flag_holds_on_both() {
    let Some(redis) = RedisServer::start("card testing across replicas: Luhn") else {
        return;
    };
    let replicas = two_replicas(&redis).await;
    let mut clients = [replicas[0].client().await, replicas[1].client().await];
    // 8 failures of 8 numbers on each replica: of at least 20, not more than half on either;
    // 16 of 20 over both.
    for client in &mut clients {
        for last in 0..8 {
            let number = format!("41111111111111{}", 12 + last);
            let answer = client.validate(validate_as("guesser", &number)).await;
            assert!(answer.is_ok(), "refused by one replica alone: {answer:?}");
        }
    }
    for client in &mut clients {
        let status = refused_soon(client, "guesser")
            .await
            .expect("the guesser was never refused");
        assert_refused_for(&status, "luhn_failures");
    }

    // A walker flagged by replica 0 on its own calls is refused by replica 1 too, within a
    // second or two of its first call there.
    for bin in 500_000..500_021 {
        let _ = clients[0].lookup_bin(lookup_as("walker", bin)).await;
    }
    assert!(
        clients[0]
            .lookup_bin(lookup_as("walker", 500_000))
            .await
            .is_err()
    );
    let status = refused_soon(&mut clients[1], "walker")
        .await
        .expect("replica 1 never refused the walker replica 0 flagged");
    assert_refused_for(&status, "bin_walk");
}

#[tokio::test]
async fn with_redis_down_each_replica_still_detects_on_its_own() {
    let Some(mut redis) = RedisServer::start("card testing with Redis down") else {
        return;
    };
    let replicas = two_replicas(&redis).await;
    let dropped_before = dropped_rounds(&replicas[0]).await;
    redis.kill();
    let mut client = replicas[0].client().await;
    let mut refused = None;
    for bin in 600_000..600_030 {
        let answer = client.lookup_bin(lookup_as("walker", bin)).await;
        if let Err(status) = answer {
            refused = Some((bin, status.code()));
            break;
        }
    }
    assert_eq!(refused, Some((600_020, Code::PermissionDenied)));
    // The replica's rounds to Redis fail, and are counted; no call waited on them.
    let deadline = Instant::now() + Duration::from_secs(10);
    while dropped_rounds(&replicas[0]).await <= dropped_before {
        assert!(Instant::now() < deadline, "no dropped round was counted");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
