//! `--quota` against a real `redis-server`, started by each test on a free port: a quota is
//! exact across two replicas, subjects are hashed before they reach Redis, calls without a
//! subject are not counted, and a Redis that goes away and comes back.
//!
//! Without `redis-server` on PATH the tests say loudly that they were skipped, unless
//! CARDLOOKUP_REQUIRE_REDIS=1 (as .ci/run sets), which makes a missing server a failure.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::redis::RedisServer;
use crate::common::{EMBEDDED, TempDir, TestServer, pb};
use card_lookup::admission::quota::{FailureMode, QuotaSettings};
use card_lookup::config::Config;
use card_lookup::shared_store::RedisTarget;
use clap::Parser;
use tonic::transport::Channel;
use tonic::{Code, Request};
use tonic_types::StatusExt;

/// The keys of quotas in `redis` (card-testing detection keeps its own there too).
fn quota_keys(redis: &RedisServer) -> Vec<String> {
    let mut keys = redis.keys();
    keys.retain(|key| key.starts_with("cardlookup:quota:"));
    keys
}

fn config(redis: &RedisServer, quotas: &[&str], budget: Duration, mode: FailureMode) -> Config {
    Config {
        redis: Some(RedisTarget::new(&redis.url(), None).unwrap()),
        quotas: Some(QuotaSettings {
            rules: quotas.iter().map(|q| q.parse().unwrap()).collect(),
            budget,
            failure_mode: mode,
            exact: false,
        }),
        ..Config::default()
    }
}

/// A replica counting `quotas` in `redis`, with the test budget.
async fn replica(redis: &RedisServer, quotas: &[&str], mode: FailureMode) -> TestServer {
    TestServer::start_configured(config(redis, quotas, BUDGET, mode), Arc::clone(&EMBEDDED)).await
}

/// Two replicas sharing `redis`.
async fn two_replicas(redis: &RedisServer, quotas: &[&str], mode: FailureMode) -> [TestServer; 2] {
    [
        replica(redis, quotas, mode).await,
        replica(redis, quotas, mode).await,
    ]
}

fn validate_for(subject: Option<&str>) -> Request<pb::ValidateRequest> {
    let mut request = Request::new(pb::ValidateRequest {
        number: "4111111111111111".into(),
    });
    if let Some(subject) = subject {
        request
            .metadata_mut()
            .insert("x-cardlookup-subject", subject.parse().unwrap());
    }
    request
}

/// The value of the metric line `name` (with its labels) in `text`, if shown.
fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

// A generous budget: on a loaded machine a check must not time out and pass uncounted, or the
// count would not be exact.
const BUDGET: Duration = Duration::from_secs(1);

#[tokio::test]
async fn a_subject_quota_is_exact_across_two_replicas_and_hashes_the_subject() {
    let Some(redis) = RedisServer::start("exact across replicas") else {
        return;
    };
    let quota = "shared-shopper=20/h:subject";
    let replicas = two_replicas(&redis, &[quota], FailureMode::Open).await;
    let mut clients = [replicas[0].client().await, replicas[1].client().await];
    let subject = "shopper-7781@example.com";
    let mut passed = 0;
    let mut refusals = Vec::new();
    for call in 0..25 {
        match clients[call % 2]
            .validate(validate_for(Some(subject)))
            .await
        {
            Ok(_) => passed += 1,
            Err(status) => refusals.push(status),
        }
    }
    assert_eq!(passed, 20, "{refusals:?}");
    let refused = &refusals[0];
    assert_eq!(refused.code(), Code::ResourceExhausted);
    assert!(
        refused
            .message()
            .starts_with("quota `shared-shopper` (20/h) exceeded; resets in "),
        "{}",
        refused.message()
    );
    assert!(!refused.message().contains("shopper-7781"));
    // 20 an hour: the next call is allowed three minutes after the first.
    let retry = refused
        .get_details_retry_info()
        .and_then(|info| info.retry_delay)
        .expect("RetryInfo in the status details");
    assert!(
        retry > Duration::from_secs(170) && retry <= Duration::from_secs(180),
        "{retry:?}"
    );
    assert!(refused.metadata().get("grpc-retry-pushback-ms").is_some());

    // Another subject has its own 20.
    for call in 0..20 {
        let answer = clients[call % 2]
            .validate(validate_for(Some("shopper-2")))
            .await;
        assert!(answer.is_ok(), "{answer:?}");
    }

    let keys = quota_keys(&redis);
    assert_eq!(keys.len(), 2, "one key a subject: {keys:?}");
    for key in &keys {
        assert!(key.starts_with("cardlookup:quota:shared-shopper:"), "{key}");
        assert!(!key.contains("shopper-"), "{key}");
        assert!(!key.contains("127.0.0.1"), "{key}");
    }
    let scraped = replicas[0].scrape().await;
    assert_eq!(
        metric(
            &scraped,
            "cardlookup_quota_refused_total{quota=\"shared-shopper\"}"
        ),
        Some(5.0),
        "{scraped}"
    );
}

#[tokio::test]
async fn concurrent_calls_batched_together_are_counted_exactly() {
    let Some(redis) = RedisServer::start("concurrent calls") else {
        return;
    };
    // Two quotas a call, so that each batch holds several keys a call, and one key many times.
    let quotas = ["burst-shopper=20/h:subject", "burst-client=45/h:client"];
    let replicas = two_replicas(&redis, &quotas, FailureMode::Closed).await;
    let clients = [replicas[0].client().await, replicas[1].client().await];
    // 30 calls a replica for one shopper, all at once: 20 pass.
    let calls = (0..60).map(|call| {
        let mut client = clients[call % 2].clone();
        tokio::spawn(async move { client.validate(validate_for(Some("shopper-burst"))).await })
    });
    let answers = futures_util::future::join_all(calls).await;
    let passed = answers
        .iter()
        .filter(|a| a.as_ref().unwrap().is_ok())
        .count();
    assert_eq!(passed, 20);
    for answer in answers {
        if let Err(status) = answer.unwrap() {
            assert!(
                status.message().starts_with("quota `burst-shopper` (20/h)"),
                "{status:?}"
            );
        }
    }
    // Every one of those calls counted against the client quota too (60 of 45: the next 30
    // calls, for other shoppers, are refused by it after the 45th call in all).
    let calls = (0..30).map(|call| {
        let mut client = clients[call % 2].clone();
        let shopper = format!("shopper-{call}");
        tokio::spawn(async move { client.validate(validate_for(Some(&shopper))).await })
    });
    let answers = futures_util::future::join_all(calls).await;
    for answer in answers {
        let status = answer.unwrap().unwrap_err();
        assert!(
            status.message().starts_with("quota `burst-client` (45/h)"),
            "{status:?}"
        );
    }
}

/// A quota of 100,000 calls a second leases 100 calls at a time to each replica: 1,000 calls
/// from two replicas cost Redis about 10 checks. With `--quota-exact` every call is a check.
#[tokio::test]
async fn a_fast_quota_is_leased_to_each_replica_and_an_exact_one_is_not() {
    let Some(redis) = RedisServer::start("leases") else {
        return;
    };
    let quota = "fast-shopper=100000/s:subject";
    let replicas = two_replicas(&redis, &[quota], FailureMode::Closed).await;
    let mut clients = [replicas[0].client().await, replicas[1].client().await];
    let before = redis.scripts_run();
    for call in 0..1_000 {
        let answer = clients[call % 2]
            .validate(validate_for(Some("busy-shopper")))
            .await;
        assert!(answer.is_ok(), "call {call}: {answer:?}");
    }
    let checks = redis.scripts_run() - before;
    // 500 calls a replica, 100 a lease: 5 leases each, and a few more where a lease ran out
    // of its second on a slow machine.
    assert!(
        (10..=40).contains(&checks),
        "{checks} checks for 1,000 calls"
    );

    let mut exact = config(&redis, &[quota], BUDGET, FailureMode::Closed);
    exact.quotas.as_mut().unwrap().exact = true;
    let exact = TestServer::start_configured(exact, Arc::clone(&EMBEDDED)).await;
    let mut client = exact.client().await;
    let before = redis.scripts_run();
    for _ in 0..100 {
        let answer = client.validate(validate_for(Some("busy-shopper"))).await;
        assert!(answer.is_ok(), "{answer:?}");
    }
    // Card-testing detection runs a script of its own once a second a client.
    let checks = redis.scripts_run() - before;
    assert!(
        (100..=110).contains(&checks),
        "{checks} checks for 100 calls"
    );
}

/// A refused key is refused by the replica until its reset without asking Redis again.
#[tokio::test]
async fn a_refusal_is_remembered_until_its_reset() {
    let Some(redis) = RedisServer::start("refusals remembered") else {
        return;
    };
    let server = replica(
        &redis,
        &["remembered-shopper=2/h:subject"],
        FailureMode::Closed,
    )
    .await;
    let mut client = server.client().await;
    let before = redis.scripts_run();
    let mut refusals = Vec::new();
    for _ in 0..10 {
        if let Err(status) = client.validate(validate_for(Some("eager-shopper"))).await {
            refusals.push(status);
        }
    }
    assert_eq!(refusals.len(), 8);
    // Two calls and the first refusal; card-testing detection runs a script of its own once
    // a second a client.
    let checks = redis.scripts_run() - before;
    assert!((3..=5).contains(&checks), "{checks} checks for 10 calls");
    for refused in &refusals {
        assert!(
            refused
                .message()
                .starts_with("quota `remembered-shopper` (2/h) exceeded; resets in "),
            "{refused:?}"
        );
        let retry = refused
            .get_details_retry_info()
            .and_then(|info| info.retry_delay)
            .expect("RetryInfo in the status details");
        assert!(
            retry > Duration::from_secs(1790) && retry <= Duration::from_secs(1800),
            "{retry:?}"
        );
    }
}

#[tokio::test]
async fn calls_without_a_subject_are_not_counted_but_tallied() {
    let Some(redis) = RedisServer::start("calls without a subject") else {
        return;
    };
    let server = replica(
        &redis,
        &["unkeyed-shopper=2/h:subject"],
        FailureMode::Closed,
    )
    .await;
    let mut client = server.client().await;
    for _ in 0..5 {
        let answer = client.validate(validate_for(None)).await;
        assert!(answer.is_ok(), "{answer:?}");
    }
    // A subject that could be a card number is refused, and neither stored nor repeated.
    let refused = client
        .validate(validate_for(Some("5555 5555 5555 4444")))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
    assert!(!refused.message().contains("5555"), "{}", refused.message());
    assert_eq!(quota_keys(&redis), [] as [String; 0]);
    let scraped = server.scrape().await;
    assert_eq!(
        metric(
            &scraped,
            "cardlookup_quota_unkeyed_total{quota=\"unkeyed-shopper\"}"
        ),
        Some(5.0),
        "{scraped}"
    );
    // A client quota counts the same calls by the client's identity.
    let server = replica(&redis, &["per-client=3/h:client"], FailureMode::Closed).await;
    let mut client = server.client().await;
    for _ in 0..3 {
        assert!(client.validate(validate_for(None)).await.is_ok());
    }
    let refused = client.validate(validate_for(None)).await.unwrap_err();
    assert!(refused.message().contains("`per-client`"), "{refused:?}");
}

/// Calls `validate_for(subject)` until one is refused by a quota (not for want of Redis), for at
/// most `wait`.
async fn refused_within(
    client: &mut pb::card_lookup_service_client::CardLookupServiceClient<Channel>,
    subject: &str,
    wait: Duration,
) -> Option<tonic::Status> {
    let deadline = Instant::now() + wait;
    while Instant::now() < deadline {
        if let Err(status) = client.validate(validate_for(Some(subject))).await
            && status.message().starts_with("quota `")
        {
            return Some(status);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

#[tokio::test]
async fn a_redis_that_goes_away_fails_open_or_closed_and_quotas_return_with_it() {
    let Some(mut redis) = RedisServer::start("Redis goes away") else {
        return;
    };
    let budget = Duration::from_millis(200);
    let quota = "flaky-shopper=1/h:subject";
    let open = TestServer::start_configured(
        config(&redis, &[quota], budget, FailureMode::Open),
        Arc::clone(&EMBEDDED),
    )
    .await;
    let closed = TestServer::start_configured(
        config(&redis, &[quota], budget, FailureMode::Closed),
        Arc::clone(&EMBEDDED),
    )
    .await;
    let (mut open_client, mut closed_client) = (open.client().await, closed.client().await);
    assert!(open_client.validate(validate_for(Some("a"))).await.is_ok());
    assert!(
        closed_client
            .validate(validate_for(Some("a")))
            .await
            .is_err()
    );
    let errors_before = errors_counted(&open).await;

    redis.kill();
    // Every call is answered, however Redis fails (refused connection, reset, timeout): no
    // call waits on it for long. The bound is far above the budget, for a loaded machine.
    for _ in 0..10 {
        let answer = tokio::time::timeout(
            Duration::from_secs(5),
            open_client.validate(validate_for(Some("a"))),
        )
        .await
        .expect("an answer without Redis");
        assert!(answer.is_ok(), "fail open: {answer:?}");
        let answer = tokio::time::timeout(
            Duration::from_secs(5),
            closed_client.validate(validate_for(Some("b"))),
        )
        .await
        .expect("an answer without Redis");
        let refused = answer.unwrap_err();
        assert_eq!(refused.code(), Code::ResourceExhausted);
        assert!(
            refused.message().contains("quota store is unavailable"),
            "{refused:?}"
        );
    }
    assert!(errors_counted(&open).await >= errors_before + 10.0);

    redis.restart();
    // Redis came back empty: a fresh subject gets its one call, then is refused, on both.
    let refused = refused_within(&mut open_client, "c", Duration::from_secs(20))
        .await
        .expect("the quota applies again once Redis is back");
    assert!(refused.message().contains("`flaky-shopper`"), "{refused:?}");
    let refused = refused_within(&mut closed_client, "d", Duration::from_secs(20))
        .await
        .expect("the quota applies again once Redis is back");
    assert!(refused.message().contains("`flaky-shopper`"), "{refused:?}");
    let scraped = open.scrape().await;
    assert_eq!(
        metric(&scraped, "cardlookup_quota_backend_up"),
        Some(1.0),
        "{scraped}"
    );
}

/// The quota checks Redis failed, of either reason, so far in this process.
async fn errors_counted(server: &TestServer) -> f64 {
    let scraped = server.scrape().await;
    ["timeout", "error"]
        .iter()
        .filter_map(|reason| {
            metric(
                &scraped,
                &format!("cardlookup_quota_backend_errors_total{{reason=\"{reason}\"}}"),
            )
        })
        .sum()
}

#[tokio::test]
async fn a_redis_with_a_password_is_reached_with_the_password_file() {
    let Some(redis) = RedisServer::start_with_password("password file", Some("s3cret-pw")) else {
        return;
    };
    let dir = TempDir::new("redis-password");
    let password_file = dir.write("password", "s3cret-pw\n");
    let flags = |password_file: &std::path::Path| {
        let args = card_lookup::config::Args::try_parse_from([
            "card-lookup",
            "--redis-url",
            &redis.url(),
            "--redis-password-file",
            password_file.to_str().unwrap(),
            "--quota",
            "locked-shopper=1/h:subject",
            "--quota-budget",
            "1s",
            "--quota-failure-mode",
            "closed",
        ])
        .unwrap();
        Config::try_from(args).unwrap()
    };
    let server = TestServer::start_configured(flags(&password_file), Arc::clone(&EMBEDDED)).await;
    let mut client = server.client().await;
    assert!(client.validate(validate_for(Some("x"))).await.is_ok());
    let refused = client.validate(validate_for(Some("x"))).await.unwrap_err();
    assert!(
        refused.message().contains("`locked-shopper`"),
        "{refused:?}"
    );
    // The wrong password: every check fails, and fails closed.
    let wrong = dir.write("wrong", "not-it");
    let server = TestServer::start_configured(flags(&wrong), Arc::clone(&EMBEDDED)).await;
    let refused = server
        .client()
        .await
        .validate(validate_for(Some("y")))
        .await
        .unwrap_err();
    assert!(
        refused.message().contains("quota store is unavailable"),
        "{refused:?}"
    );
}
