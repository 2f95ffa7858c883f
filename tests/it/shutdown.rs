//! Graceful shutdown: the server stops accepting, reports NOT_SERVING, and `run` returns.

use std::time::Duration;

use crate::common::{TestServer, VALIDATE_PATH, grpc_request, h2_connection, pb};

#[tokio::test]
async fn run_returns_after_the_shutdown_signal() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    client
        .validate(pb::ValidateRequest {
            number: "4111111111111111".into(),
        })
        .await
        .unwrap();
    let grpc_addr = server.grpc_addr;
    tokio::time::timeout(Duration::from_secs(10), server.stop())
        .await
        .expect("the server stops within 10 s")
        .expect("the server stops cleanly");
    // Nothing listens any more.
    assert!(tokio::net::TcpStream::connect(grpc_addr).await.is_err());
}

#[tokio::test]
async fn a_call_that_never_finishes_cannot_hold_the_server_past_the_grace_period() {
    let config = card_lookup::config::Config {
        shutdown_grace: Duration::from_millis(300),
        ..card_lookup::config::Config::default()
    };
    let server =
        TestServer::start_configured(config, std::sync::Arc::clone(&crate::common::EMBEDDED)).await;
    // A client that starts a call and never sends its message: the call stays in flight.
    let mut sender = h2_connection(server.grpc_addr).await;
    let request = grpc_request(server.grpc_addr, VALIDATE_PATH);
    let stalled = sender.send_request(request, false).unwrap();
    let started = std::time::Instant::now();
    tokio::time::timeout(Duration::from_secs(10), server.stop())
        .await
        .expect("the server stops within 10 s")
        .expect("the server stops cleanly");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    drop(stalled);
}
