//! Admission control: per-client rate limits, load shedding at the concurrency limit, the
//! request timeout, and health checks that are never refused.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::{EMBEDDED, TestServer, VALIDATE_PATH, grpc_request, h2_connection, pb};
use card_lookup::config::Config;
use tonic::{Code, Request};

fn config(rate_limits: &[&str], max_in_flight: usize) -> Config {
    Config {
        rate_limits: rate_limits.iter().map(|r| r.parse().unwrap()).collect(),
        max_concurrent_requests: max_in_flight,
        ..Config::default()
    }
}

/// [`config`] for a server that takes the `x-client-id` of callers on loopback as their
/// identity, as it would from a trusted gateway.
fn trusting_loopback(rate_limits: &[&str]) -> Config {
    Config {
        trusted_networks: vec!["127.0.0.0/8".parse().unwrap()],
        ..config(rate_limits, 1024)
    }
}

fn validate_as(client_id: &str) -> Request<pb::ValidateRequest> {
    let mut request = Request::new(pb::ValidateRequest {
        number: "4111111111111111".into(),
    });
    request
        .metadata_mut()
        .insert("x-client-id", client_id.parse().unwrap());
    request
}

/// The `grpc-retry-pushback-ms` a refusal carries.
fn pushback_ms(refused: &tonic::Status) -> u64 {
    refused
        .metadata()
        .get("grpc-retry-pushback-ms")
        .expect("a refusal says when to retry")
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn each_client_gets_its_own_rate_by_class() {
    let config = trusting_loopback(&["default=2/s", "checkout=50/s:checkout-svc"]);
    let server = TestServer::start_configured(config, Arc::clone(&EMBEDDED)).await;
    let mut client = server.client().await;

    // A default-class client gets 2 calls, then a refusal with a retry hint.
    assert!(client.validate(validate_as("batch-job")).await.is_ok());
    assert!(client.validate(validate_as("batch-job")).await.is_ok());
    let refused = client.validate(validate_as("batch-job")).await.unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted);
    assert!(
        refused.message().contains("`default` (2/s)"),
        "{}",
        refused.message()
    );
    let pushback = pushback_ms(&refused);
    assert!((1..=1000).contains(&pushback), "{pushback}");

    // Another client of the same class has its own bucket; the checkout class has more.
    assert!(client.validate(validate_as("other-job")).await.is_ok());
    for _ in 0..10 {
        assert!(client.validate(validate_as("checkout-svc")).await.is_ok());
    }

    // Health checks are never refused.
    let mut health = tonic_health::pb::health_client::HealthClient::new(server.channel().await);
    for _ in 0..5 {
        let mut check = Request::new(tonic_health::pb::HealthCheckRequest::default());
        check
            .metadata_mut()
            .insert("x-client-id", "batch-job".parse().unwrap());
        assert!(health.check(check).await.is_ok());
    }

    let scrape = server.scrape().await;
    assert!(
        scrape.contains(r#"cardlookup_requests_rate_limited_total{client_class="default"}"#),
        "{scrape}"
    );
    assert!(
        scrape.contains(r#"grpc_method="Validate",grpc_code="ResourceExhausted"}"#),
        "{scrape}"
    );
}

#[tokio::test]
async fn an_hourly_rate_is_exact_and_says_when_to_retry() {
    // 3 an hour: three calls, then a refusal that names the rate and asks for about 20
    // minutes, where rounding up to a whole call a second would have allowed 3,600.
    let server =
        TestServer::start_configured(trusting_loopback(&["default=3/h"]), Arc::clone(&EMBEDDED))
            .await;
    let mut client = server.client().await;
    for _ in 0..3 {
        assert!(client.validate(validate_as("shop")).await.is_ok());
    }
    let refused = client.validate(validate_as("shop")).await.unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted);
    assert!(
        refused.message().contains("`default` (3/h)"),
        "{}",
        refused.message()
    );
    let pushback = pushback_ms(&refused);
    assert!((1_190_000..=1_200_000).contains(&pushback), "{pushback}");
}

#[tokio::test]
async fn a_client_id_that_looks_like_a_card_number_is_not_used() {
    let config = config(&["default=1/s"], 1024);
    let server = TestServer::start_configured(config, Arc::clone(&EMBEDDED)).await;
    let mut client = server.client().await;
    // Falls back to the peer address: both ids below are the same client, 127.0.0.1.
    assert!(
        client
            .validate(validate_as("4111111111111111"))
            .await
            .is_ok()
    );
    let refused = client
        .validate(validate_as("4111111111111112"))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted);
}

/// Validate calls made as fast as they are answered, each with its own `x-client-id`, until
/// `calls` have been made; how many were answered OK.
async fn rotating_client_ids(server: &TestServer, calls: usize) -> usize {
    let mut client = server.client().await;
    let mut answered = 0;
    for n in 0..calls {
        match client.validate(validate_as(&format!("rotating-{n}"))).await {
            Ok(_) => answered += 1,
            Err(status) => assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}"),
        }
    }
    answered
}

#[tokio::test]
async fn a_new_client_id_buys_no_new_budget_unless_its_network_is_trusted() {
    let server =
        TestServer::start_configured(config(&["default=20/s"], 1024), Arc::clone(&EMBEDDED)).await;
    let started = Instant::now();
    let answered = rotating_client_ids(&server, 300).await;
    // One client, 127.0.0.1: its burst of 20, and 20 a second while the calls went on.
    let allowed = 21 + usize::try_from(started.elapsed().as_millis() / 50).unwrap();
    assert!(
        (1..=allowed).contains(&answered),
        "{answered} of 300 calls answered; at most {allowed} allowed"
    );

    // From a network the operator trusts, each x-client-id is a client of its own.
    let server =
        TestServer::start_configured(trusting_loopback(&["default=20/s"]), Arc::clone(&EMBEDDED))
            .await;
    assert_eq!(rotating_client_ids(&server, 300).await, 300);
}

#[tokio::test]
async fn one_client_holds_at_most_its_share_of_the_places_and_others_are_served() {
    let config = Config {
        max_concurrent_requests: 8,
        max_concurrent_requests_per_client: 2,
        request_timeout: Duration::from_secs(10),
        ..Config::default()
    };
    let server = TestServer::start_configured(config, Arc::clone(&EMBEDDED)).await;
    // The greedy client, 127.0.0.1, sends request headers and never the message, on as many
    // streams as the server would take.
    let mut greedy = h2_connection(server.grpc_addr).await;
    let mut held = Vec::new();
    let mut refusals = Vec::new();
    for _ in 0..12 {
        let (mut response, body) = greedy
            .send_request(grpc_request(server.grpc_addr, VALIDATE_PATH), false)
            .unwrap();
        // Kept while held: a dropped call is reset, which frees its place.
        match tokio::time::timeout(Duration::from_millis(300), &mut response).await {
            Ok(answered) => refusals.push(answered.unwrap()),
            Err(_) => held.push((response, body)),
        }
    }
    assert_eq!(
        held.len(),
        2,
        "the greedy client holds its share and no more"
    );
    let message = refusals[0].headers()["grpc-message"].to_str().unwrap();
    assert!(message.contains("its%20share"), "{message}");
    assert_eq!(
        refusals[0].headers()["grpc-status"],
        "8",
        "RESOURCE_EXHAUSTED"
    );

    // Another client (another address) is served at once.
    let channel = tonic::transport::Endpoint::from_shared(server.url())
        .unwrap()
        .local_address(Some("127.0.0.2".parse().unwrap()))
        .connect()
        .await
        .unwrap();
    let mut other = pb::card_lookup_service_client::CardLookupServiceClient::new(channel);
    assert!(other.validate(validate_as("other")).await.is_ok());
    let scrape = server.scrape().await;
    assert!(
        scrape.contains(r#"cardlookup_requests_shed_total{limit="client"} 10"#),
        "{scrape}"
    );
}

#[tokio::test]
async fn past_the_concurrency_limit_calls_are_shed_at_once() {
    let server = TestServer::start_configured(config(&[], 1), Arc::clone(&EMBEDDED)).await;
    let _stalled = server.stalled_call(None).await;
    let refused = server.first_refusal().await;
    assert_eq!(refused.code(), Code::ResourceExhausted);
    assert!(
        refused.message().contains("concurrency limit"),
        "{}",
        refused.message()
    );
    let scrape = server.scrape().await;
    assert!(
        scrape
            .lines()
            .any(|l| l.starts_with(r#"cardlookup_requests_shed_total{limit="server"} "#)),
        "{scrape}"
    );
}

#[tokio::test]
async fn a_call_that_outlives_its_deadline_is_answered() {
    let server = TestServer::start_configured(config(&[], 1024), Arc::clone(&EMBEDDED)).await;
    let started = Instant::now();
    let response = server.stalled_call(Some("200m")).await;
    let response = tokio::time::timeout(Duration::from_secs(5), response)
        .await
        .expect("answered before the test's own timeout")
        .unwrap();
    let elapsed = started.elapsed();
    let status = response
        .headers()
        .get("grpc-status")
        .map(|v| v.to_str().unwrap().to_owned());
    assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");
    assert_ne!(status.as_deref(), Some("0"), "{response:?}");
}

#[tokio::test]
async fn a_call_past_the_request_timeout_is_cancelled_and_frees_its_place() {
    let config = Config {
        request_timeout: Duration::from_millis(200),
        ..config(&[], 1)
    };
    let server = TestServer::start_configured(config, Arc::clone(&EMBEDDED)).await;
    // No grpc-timeout from the caller: only the server's own timeout can end this call.
    let response = server.stalled_call(None).await;
    let response = tokio::time::timeout(Duration::from_secs(5), response)
        .await
        .expect("answered before the test's own timeout")
        .unwrap();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    assert_eq!(header("grpc-status").as_deref(), Some("1"), "{response:?}");
    // Percent-encoded on the wire, as gRPC sends messages.
    assert_eq!(header("grpc-message").as_deref(), Some("Timeout%20expired"));
    // The one place (limit 1) is free again.
    let mut client = server.client().await;
    let answer = client.validate(validate_as("after")).await.unwrap();
    assert!(answer.into_inner().valid);
}

/// What admission means for an Inspect stream: it holds a concurrency place for its whole
/// life (so open streams count against the limit), `--request-timeout` does not end it, and
/// its rate limit is checked once, when it opens.
#[tokio::test]
async fn an_inspect_stream_holds_its_place_for_its_life_and_outlives_the_request_timeout() {
    let config = Config {
        request_timeout: Duration::from_millis(200),
        max_concurrent_requests: 1,
        ..trusting_loopback(&["default=3/m"])
    };
    let server = TestServer::start_configured(config, Arc::clone(&EMBEDDED)).await;
    let mut client = server.client().await;
    let batch = || pb::InspectRequest {
        items: vec![pb::InspectItem {
            id: "1".into(),
            number: "4111111111111111".into(),
        }],
        ..Default::default()
    };
    let (requests, received) = tokio::sync::mpsc::channel(1);
    let mut answers = client
        .inspect(tokio_stream::wrappers::ReceiverStream::new(received))
        .await
        .expect("the stream opens")
        .into_inner();
    requests.send(batch()).await.unwrap();
    assert!(answers.message().await.unwrap().is_some());

    // The stream holds the only place: a unary call is shed.
    let shed = client.validate(validate_as("other")).await.unwrap_err();
    assert_eq!(shed.code(), Code::ResourceExhausted);
    assert!(shed.message().contains("concurrency limit"), "{shed:?}");

    // Past the request timeout, the stream still answers; its batches cost no rate.
    tokio::time::sleep(Duration::from_millis(400)).await;
    for _ in 0..5 {
        requests.send(batch()).await.unwrap();
        let answer = answers.message().await.expect("still open").unwrap();
        assert_eq!(answer.results.len(), 1);
    }

    // Once it ends, its place is free again.
    drop(requests);
    assert!(answers.message().await.unwrap().is_none());
    let deadline = Instant::now() + Duration::from_secs(5);
    while let Err(status) = client.validate(validate_as("other")).await {
        assert_eq!(status.code(), Code::ResourceExhausted);
        assert!(
            Instant::now() < deadline,
            "the stream's place was not freed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// One connection cannot hold every place: it may open at most `MAX_CONCURRENT_STREAMS`
/// streams, fewer than the concurrency limit, so its stalled calls leave room for others.
#[tokio::test]
async fn one_connection_cannot_take_every_place() {
    let max_streams = card_lookup::server::MAX_CONCURRENT_STREAMS as usize;
    let config = Config {
        request_timeout: Duration::from_secs(5),
        ..config(&[], max_streams + 16)
    };
    let server = TestServer::start_configured(config, Arc::clone(&EMBEDDED)).await;
    let mut sender = h2_connection(server.grpc_addr).await;
    let validate = || grpc_request(server.grpc_addr, VALIDATE_PATH);
    // One whole exchange first, so that the client has the server's settings.
    sender
        .send_request(validate(), true)
        .unwrap()
        .0
        .await
        .unwrap();
    // Calls whose message never comes, as many as the server has places. The client sends the
    // first `max_streams` and queues the rest until the server allows more streams.
    let mut stalled = Vec::new();
    for _ in 0..max_streams + 16 {
        sender = sender.ready().await.unwrap();
        stalled.push(sender.send_request(validate(), false).unwrap());
    }
    // Give the server time to take them in.
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Another client is still served while they wait.
    let mut client = server.client().await;
    for _ in 0..10 {
        let answer = client.validate(validate_as("other")).await;
        assert!(answer.is_ok(), "{answer:?}");
    }
}
