//! The Prometheus endpoint: gRPC metrics under the names dashboards expect, the P99 target,
//! and the BIN data being served. All servers in this binary share one recorder, so the
//! assertions compare before and after.
//!
//! In its own binary, not in `tests/it`: the recorder is process-wide, so the calls of other
//! tests would add to the counts compared here, and their servers, started with other data,
//! would set the `cardlookup_bin_index_entries` and `cardlookup_data_info` gauges read here.

// Prometheus samples are floats; the values compared are small integers and literals, exact in f64.
#![allow(clippy::float_cmp, clippy::cast_precision_loss)]

#[path = "it/common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use card_lookup::client::resend_unsent;
use card_lookup::config::Config;
use card_lookup::tls::TlsFiles;
use common::pki::{ca, server_leaf_until};
use common::{EMBEDDED, TempDir, TestServer, http_get, pb};

/// The value of the sample whose line starts with `series` (name and labels), if any.
fn sample(scrape: &str, series: &str) -> Option<f64> {
    scrape
        .lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
}

const VALIDATE_OK: &str = r#"grpc_server_handled_total{grpc_type="unary",grpc_service="cardlookup.v1.CardLookupService",grpc_method="Validate",grpc_code="OK"}"#;
const LOOKUP_INVALID: &str = r#"grpc_server_handled_total{grpc_type="unary",grpc_service="cardlookup.v1.CardLookupService",grpc_method="LookupBin",grpc_code="InvalidArgument"}"#;
const VALIDATE_STARTED: &str = r#"grpc_server_started_total{grpc_type="unary",grpc_service="cardlookup.v1.CardLookupService",grpc_method="Validate"}"#;

#[tokio::test]
async fn calls_are_counted_by_method_and_code_with_latency_buckets() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let before = server.scrape().await;
    for _ in 0..3 {
        client
            .validate(pb::ValidateRequest {
                number: "4111111111111111".into(),
            })
            .await
            .unwrap();
    }
    let _ = client
        .lookup_bin(pb::LookupBinRequest { number: "4".into() })
        .await
        .unwrap_err();
    let after = server.scrape().await;

    let delta = |series: &str| {
        sample(&after, series).unwrap_or(0.0) - sample(&before, series).unwrap_or(0.0)
    };
    assert_eq!(delta(VALIDATE_OK), 3.0, "{after}");
    assert_eq!(delta(VALIDATE_STARTED), 3.0);
    assert_eq!(delta(LOOKUP_INVALID), 1.0);

    // The histogram has the P99 target (5 ms by default) as a boundary and buckets from 50 µs.
    let bucket = |le: &str| {
        format!(
            r#"grpc_server_handling_seconds_bucket{{grpc_type="unary",grpc_service="cardlookup.v1.CardLookupService",grpc_method="Validate",grpc_code="OK",le="{le}"}}"#
        )
    };
    assert!(sample(&after, &bucket("0.00005")).is_some(), "{after}");
    assert!(sample(&after, &bucket("0.005")).is_some(), "{after}");
    assert!(sample(&after, &bucket("+Inf")).unwrap() >= 3.0);
    assert!(after.contains("# TYPE grpc_server_handling_seconds histogram"));
}

#[tokio::test]
async fn target_and_data_are_exported() {
    let server = TestServer::start().await;
    let scrape = server.scrape().await;
    assert_eq!(
        sample(&scrape, "cardlookup_latency_p99_target_seconds"),
        Some(0.005)
    );
    assert_eq!(
        sample(&scrape, "cardlookup_bin_index_entries"),
        Some(EMBEDDED.current().len() as f64)
    );
    let info = format!(
        r#"cardlookup_data_info{{version="{}"}}"#,
        EMBEDDED.current().version()
    );
    assert_eq!(sample(&scrape, &info), Some(1.0), "{scrape}");
}

#[tokio::test]
async fn lookups_are_counted_found_or_not() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let found = r#"cardlookup_bin_lookups_total{result="found"}"#;
    let not_found = r#"cardlookup_bin_lookups_total{result="not_found"}"#;
    let before = server.scrape().await;
    for number in ["411111", "979299", "979298"] {
        client
            .lookup_bin(pb::LookupBinRequest {
                number: number.into(),
            })
            .await
            .unwrap();
    }
    let after = server.scrape().await;
    let delta = |series: &str| {
        sample(&after, series).unwrap_or(0.0) - sample(&before, series).unwrap_or(0.0)
    };
    assert_eq!(delta(found), 1.0);
    assert_eq!(delta(not_found), 2.0);
}

#[tokio::test]
async fn only_metrics_is_served() {
    let server = TestServer::start().await;
    let (status, _) = http_get(server.metrics_addr, "/").await;
    assert!(status.contains("404"), "{status}");
    let (status, body) = http_get(server.metrics_addr, "/metrics").await;
    assert!(status.contains("200"), "{status}");
    assert!(body.contains("grpc_server_started_total"));
}

/// The served certificate's notAfter is exported, and follows the certificate files when they
/// are replaced (a renewal).
#[tokio::test]
async fn the_served_certificates_expiry_is_exported_and_follows_a_renewal() {
    const EXPIRY: &str = "cardlookup_tls_certificate_expiry_timestamp_seconds";
    let dir = TempDir::new("metrics-tls-expiry");
    let authority = ca("Expiry CA");
    let (cert, key) = server_leaf_until(&authority, (2031, 5, 17));
    let files = TlsFiles {
        cert: dir.write("server.pem", &cert),
        key: dir.write("server.key", &key),
        client_ca: None,
    };
    let config = Config {
        tls: Some(files.clone()),
        ..Config::default()
    };
    let server = TestServer::start_configured(config, Arc::clone(&EMBEDDED)).await;
    // 2031-05-17T00:00:00Z
    assert_eq!(
        sample(&server.scrape().await, EXPIRY),
        Some(1_936_742_400.0)
    );

    let (cert, key) = server_leaf_until(&authority, (2032, 2, 29));
    std::fs::write(&files.key, key).unwrap();
    std::fs::write(&files.cert, cert).unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    // 2032-02-29T00:00:00Z
    while sample(&server.scrape().await, EXPIRY) != Some(1_961_625_600.0) {
        assert!(
            Instant::now() < deadline,
            "the renewed certificate's expiry was not exported"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A client that keeps calling across its connection's maximum age gets every answer: the
/// server's GOAWAY makes it open a new connection, and the old one, closed for its age, is
/// counted. A connection its client closes younger is not. tonic fails a call handed to a
/// connection in the instant it closes without sending it; the client sends such a call again
/// (`card_lookup::client::resend_unsent`, as the CLI does), which may happen at most once a
/// closed connection. MaskCard, because the counting test beside it compares Validate's counts
/// of the same process-wide recorder.
#[tokio::test]
async fn connections_closed_for_their_age_are_counted_and_their_clients_lose_no_call() {
    const CLOSED_FOR_AGE: &str = r#"cardlookup_connections_closed_for_age_total{port="grpc"}"#;
    let young = TestServer::start().await;
    let before = young.scrape().await;
    let mut client = young.client().await;
    client
        .mask_card(pb::MaskCardRequest {
            number: "4111111111111111".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    drop(client);
    // The young connection has closed by now (its client hung up), uncounted.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let young_closed = young.scrape().await;
    let delta = |before: &str, after: &str| {
        sample(after, CLOSED_FOR_AGE).unwrap_or(0.0) - sample(before, CLOSED_FOR_AGE).unwrap_or(0.0)
    };
    assert_eq!(delta(&before, &young_closed), 0.0, "{young_closed}");

    let config = Config {
        max_connection_age: Duration::from_millis(300),
        max_connection_age_grace: Duration::from_millis(300),
        ..Config::default()
    };
    let aged = TestServer::start_configured(config, Arc::clone(&EMBEDDED)).await;
    let client = aged.client().await;
    // 2 s of calls: past several ages (at most 330 ms with the jitter) and graces.
    let until = Instant::now() + Duration::from_secs(2);
    let (mut calls, mut sent) = (0, 0);
    while Instant::now() < until {
        let answer = resend_unsent(|| {
            sent += 1;
            let mut client = client.clone();
            async move {
                client
                    .mask_card(pb::MaskCardRequest {
                        number: "4111111111111111".into(),
                        ..Default::default()
                    })
                    .await
            }
        })
        .await;
        assert!(answer.is_ok(), "call {calls} failed: {answer:?}");
        calls += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(client);
    // The last connection ends when its own age and grace have passed.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let closed = delta(&young_closed, &aged.scrape().await);
    // About one connection an age and grace (300 to 660 ms): 3 to 7 in 2 s, with room.
    assert!(
        closed >= 3.0,
        "{closed} connections counted closed for age in {calls} calls"
    );
    assert!(
        closed <= 20.0,
        "{closed} connections counted closed for age"
    );
    let resent = f64::from(sent - calls);
    assert!(
        resent <= closed,
        "{resent} calls sent again, for {closed} connections closed for their age"
    );
}
