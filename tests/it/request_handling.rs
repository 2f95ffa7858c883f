//! What every call gets: a request id where it names something, a refusal of oversized
//! requests, and no card number in any error.

use crate::common::{TestServer, pb};
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
