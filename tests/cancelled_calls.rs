//! Calls that end before any handler answers them are counted as `Canceled` in
//! `grpc_server_handled_total`, so operators see callers' deadlines and stalled requests: the
//! caller's `grpc-timeout` passes, or `--request-timeout` does, while the call waits for its
//! request, or its caller resets it. A call its caller resets frees its place.
//!
//! One test in its own binary: the metrics recorder is process-wide, and other tests' stalled
//! calls would add to the counts this one checks exactly.

#[path = "it/common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use card_lookup::config::Config;
use common::{EMBEDDED, TestServer, pb};

const CANCELLED: &str = r#"grpc_server_handled_total{grpc_type="unary",grpc_service="cardlookup.v1.CardLookupService",grpc_method="Validate",grpc_code="Canceled"}"#;

/// Waits (at most 5 s) until Validate's `Canceled` count is `count`: a dropped call is counted
/// as the server drops it, which may come after the caller has moved on.
async fn wait_for_cancelled(server: &TestServer, count: u32) {
    let series = format!("{CANCELLED} {count}");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let scrape = server.scrape().await;
        if scrape.lines().any(|line| line == series) {
            return;
        }
        assert!(Instant::now() < deadline, "no `{series}` in:\n{scrape}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn calls_ended_before_their_handler_are_counted_as_cancelled() {
    let config = Config {
        max_concurrent_requests: 1,
        request_timeout: Duration::from_millis(500),
        ..Config::default()
    };
    let server = TestServer::start_configured(config, Arc::clone(&EMBEDDED)).await;
    let mut client = server.client().await;

    // A caller that gives up while its request has not arrived: its place is freed, and the
    // call is counted as cancelled.
    let stalled = server.stalled_call(None).await;
    server.first_refusal().await;
    drop(stalled);
    let deadline = Instant::now() + Duration::from_secs(5);
    let valid = loop {
        let answer = client
            .validate(pb::ValidateRequest {
                number: "4111111111111111".into(),
            })
            .await;
        if let Ok(answer) = answer {
            break answer.into_inner().valid;
        }
        assert!(
            Instant::now() < deadline,
            "the reset call's place was not freed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(valid);
    wait_for_cancelled(&server, 1).await;

    // The caller's own deadline passes first: tonic answers it.
    let response = server.stalled_call(Some("100m")).await;
    let response = tokio::time::timeout(Duration::from_secs(5), response)
        .await
        .expect("answered at the caller's deadline")
        .unwrap();
    assert_eq!(response.headers()["grpc-status"], "1", "{response:?}");
    wait_for_cancelled(&server, 2).await;

    // The server's --request-timeout passes: the admission layer answers it.
    let response = server.stalled_call(None).await;
    let response = tokio::time::timeout(Duration::from_secs(5), response)
        .await
        .expect("answered at the request timeout")
        .unwrap();
    assert_eq!(response.headers()["grpc-message"], "Timeout%20expired");
    wait_for_cancelled(&server, 3).await;
}
