//! What every call gets: a request id where it names something, a refusal of oversized
//! requests, and no card number in any error.

use crate::common::{TestServer, grpc_request, pb};
use tonic::{Code, Request};

#[tokio::test]
async fn request_ids_come_back_to_callers_that_send_them_and_with_every_error() {
    let server = TestServer::start().await;
    let mut client = server.client().await;

    let mut request = Request::new(pb::MaskCardRequest {
        number: "4111111111111111".into(),
        ..Default::default()
    });
    request
        .metadata_mut()
        .insert("x-request-id", "checkout-7f3a".parse().unwrap());
    let answer = client.mask_card(request).await.unwrap();
    assert_eq!(
        answer.metadata().get("x-request-id").unwrap(),
        "checkout-7f3a"
    );

    // Errors carry the caller's id, so a refused call can be found in the logs...
    let mut request = Request::new(pb::LookupBinRequest { number: "4".into() });
    request
        .metadata_mut()
        .insert("x-request-id", "retry-2".parse().unwrap());
    let status = client.lookup_bin(request).await.unwrap_err();
    assert_eq!(status.metadata().get("x-request-id").unwrap(), "retry-2");

    // ...or one the service made, when the caller sent none.
    let status = client
        .lookup_bin(pb::LookupBinRequest { number: "4".into() })
        .await
        .unwrap_err();
    let made = status.metadata().get("x-request-id").expect("x-request-id");
    assert!(!made.is_empty());

    // A success the service did not log (this server logs nothing) names no log line, so a
    // caller that sent no id gets none.
    let answer = client
        .validate(pb::ValidateRequest {
            number: "4111111111111111".into(),
        })
        .await
        .unwrap();
    assert_eq!(answer.metadata().get("x-request-id"), None);
}

#[tokio::test]
async fn oversized_requests_are_refused() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let status = client
        .validate(pb::ValidateRequest {
            number: "4".repeat(card_lookup::server::MAX_REQUEST_BYTES + 1),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::OutOfRange, "{status:?}");
    assert!(!status.message().contains("4444"), "{}", status.message());

    // The connection is still good afterwards.
    let answer = client
        .validate(pb::ValidateRequest {
            number: "4111111111111111".into(),
        })
        .await
        .unwrap();
    assert!(answer.into_inner().valid);
}

/// The admin port speaks HTTP/2 with the gRPC port's limits: as many streams a connection,
/// the same header list size.
#[tokio::test]
async fn the_admin_port_has_the_grpc_ports_http2_limits() {
    let server = TestServer::start().await;
    for addr in [server.grpc_addr, server.admin_addr] {
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (mut sender, mut connection) = h2::client::handshake(tcp).await.unwrap();
        // One exchange, so that the client has the server's settings.
        let request = grpc_request(addr, "/cardlookup.admin.v1.AdminService/GetIndexInfo");
        let (response, _) = sender.send_request(request, true).unwrap();
        tokio::select! {
            done = &mut connection => panic!("the connection ended: {done:?}"),
            response = response => drop(response.unwrap()),
        }
        assert_eq!(
            connection.max_concurrent_send_streams(),
            card_lookup::server::MAX_CONCURRENT_STREAMS as usize,
            "{addr}"
        );
    }
}
