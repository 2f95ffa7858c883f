//! The Inspect stream: batches of numbers answered item by item, one bad number never failing
//! the stream, and the per-request item cap.

use crate::common::{TestServer, pb};
use tonic::Code;

fn item(id: &str, number: &str) -> pb::InspectItem {
    pb::InspectItem {
        id: id.to_owned(),
        number: number.to_owned(),
    }
}

#[tokio::test]
async fn each_item_gets_its_answers_and_its_own_status() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let batches = vec![
        pb::InspectRequest {
            items: vec![
                item("visa", "4111 1111 1111 1111"),
                item("garbage", "4111-abcd"),
                item("short", "4111"),
            ],
            mask_style: pb::MaskStyle::BinAndLastFour.into(),
            ..Default::default()
        },
        pb::InspectRequest {
            items: vec![
                item("unionpay", "6228480000000000000"),
                item("luhn", "4111111111111112"),
            ],
            mask_style: pb::MaskStyle::Unspecified.into(),
            ..Default::default()
        },
    ];
    let mut answers = client
        .inspect(tokio_stream::iter(batches))
        .await
        .unwrap()
        .into_inner();

    let first = answers
        .message()
        .await
        .unwrap()
        .expect("an answer to the first batch");
    let ids: Vec<_> = first.results.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["visa", "garbage", "short"]);
    let visa = &first.results[0];
    assert_eq!(visa.code, 0);
    assert!(visa.validation.as_ref().unwrap().valid);
    assert_eq!(visa.bin.as_ref().unwrap().bin, "411111");
    assert_eq!(visa.masked, "411111******1111");
    // The data's version is named once a response, as LookupBin names it.
    let looked_up = client
        .lookup_bin(pb::LookupBinRequest {
            number: "411111".to_owned(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.dataset_version, looked_up.dataset_version);
    assert!(first.dataset_version.starts_with("sha256:"));
    assert_eq!(visa.bin.as_ref().unwrap().dataset_version, "");
    let garbage = &first.results[1];
    assert_eq!(garbage.code, Code::InvalidArgument as i32);
    assert_eq!(
        garbage.validation.as_ref().unwrap().failure(),
        pb::ValidationFailure::NonDigit
    );
    assert!(garbage.bin.is_none() && garbage.masked.is_empty());
    let short = &first.results[2];
    assert_eq!(short.code, Code::InvalidArgument as i32);
    assert!(short.message.contains("at least 6"), "{}", short.message);
    assert!(short.validation.as_ref().unwrap().potentially_valid);

    let second = answers
        .message()
        .await
        .unwrap()
        .expect("an answer to the second batch");
    let unionpay = &second.results[0];
    assert_eq!(unionpay.code, 0);
    assert_eq!(
        unionpay.bin.as_ref().unwrap().issuer.as_ref().unwrap().name,
        "AGRICULTURAL BANK OF CHINA"
    );
    assert_eq!(unionpay.masked, "***************0000");
    assert!(!second.results[1].validation.as_ref().unwrap().valid);
    assert_eq!(
        second.results[1].code, 0,
        "a Luhn failure is an answer, not an error"
    );
    assert!(
        answers.message().await.unwrap().is_none(),
        "one answer a request"
    );

    let scrape = server.scrape().await;
    assert!(
        scrape.contains(r#"grpc_server_handled_total{grpc_type="bidi_stream",grpc_service="cardlookup.v1.CardLookupService",grpc_method="Inspect",grpc_code="OK"}"#),
        "{scrape}"
    );
    assert!(
        scrape.contains("cardlookup_inspect_items_total"),
        "{scrape}"
    );
}

#[tokio::test]
async fn a_batch_over_the_cap_ends_the_stream() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let too_many = pb::InspectRequest {
        items: (0..=card_lookup::api::inspect::MAX_INSPECT_ITEMS)
            .map(|i| item(&i.to_string(), "4111111111111111"))
            .collect(),
        ..Default::default()
    };
    let fine = pb::InspectRequest {
        items: vec![item("a", "4111111111111111")],
        ..Default::default()
    };
    let mut answers = client
        .inspect(tokio_stream::iter(vec![fine, too_many]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answers.message().await.unwrap().unwrap().results.len(), 1);
    let status = answers.message().await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().contains("at most 1000"),
        "{}",
        status.message()
    );
    assert!(!status.message().contains("4111"));
}

#[tokio::test]
async fn ids_are_bounded_and_numbers_are_never_echoed() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let request = pb::InspectRequest {
        items: vec![item(&"x".repeat(200), "4111111111111111")],
        ..Default::default()
    };
    let mut answers = client
        .inspect(tokio_stream::iter(vec![request]))
        .await
        .unwrap()
        .into_inner();
    let result = answers.message().await.unwrap().unwrap().results.remove(0);
    assert_eq!(result.code, Code::InvalidArgument as i32);
    assert!(result.id.is_empty());
    // The item is an error: its number is validated, but no BIN or masked answer is built.
    assert!(result.validation.is_some());
    assert!(result.bin.is_none() && result.masked.is_empty());
    assert!(
        result.message.contains("id: longer than 128 bytes"),
        "{}",
        result.message
    );
}

/// A batch of a settlement file: cards of a few BINs, a repeat, and numbers with no BIN answer.
fn settlement_batch(bin_answers: pb::BinAnswerLayout) -> pb::InspectRequest {
    pb::InspectRequest {
        items: vec![
            item("visa-1", "4111111111111111"),
            item("unionpay", "6228480000000000000"),
            item("visa-2", "4111 1111 1111 1111"),
            item("short", "4111"),
            item("unknown-bin", "0000000000000000"),
            item("garbage", "4111-abcd"),
            item("visa-luhn", "4111111111111112"),
        ],
        mask_style: pb::MaskStyle::BinAndLastFour.into(),
        bin_answers: bin_answers.into(),
    }
}

#[tokio::test]
async fn shared_bin_answers_are_the_per_result_answers_given_once() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let mut answers = client
        .inspect(tokio_stream::iter(vec![
            settlement_batch(pb::BinAnswerLayout::Unspecified),
            settlement_batch(pb::BinAnswerLayout::Shared),
        ]))
        .await
        .unwrap()
        .into_inner();
    let per_result = answers.message().await.unwrap().unwrap();
    let shared = answers.message().await.unwrap().unwrap();

    assert!(per_result.bins.is_empty());
    assert!(per_result.results.iter().all(|r| r.bin_index.is_none()));
    // Three distinct answers: 411111 (asked three times), 622848, and the unknown BIN.
    assert_eq!(shared.bins.len(), 3, "{:?}", shared.bins);
    assert_eq!(shared.bins[0].bin, "411111");
    assert_eq!(shared.bins[1].bin, "622848");
    assert!(!shared.bins[2].found);
    assert!(shared.bins.iter().all(|bin| bin.dataset_version.is_empty()));
    assert_eq!(shared.dataset_version, per_result.dataset_version);
    let indexes: Vec<_> = shared.results.iter().map(|r| r.bin_index).collect();
    assert_eq!(
        indexes,
        [Some(0), Some(1), Some(0), None, Some(2), None, Some(0)]
    );
    for (inline, by_index) in per_result.results.iter().zip(&shared.results) {
        assert!(by_index.bin.is_none(), "{}", by_index.id);
        let resolved = by_index.bin_index.map(|i| &shared.bins[i as usize]);
        assert_eq!(inline.bin.as_deref(), resolved, "{}", inline.id);
        // Everything else is answered as with the per-result layout.
        let rest = |r: &pb::InspectResult| pb::InspectResult {
            bin: None,
            bin_index: None,
            ..r.clone()
        };
        assert_eq!(rest(inline), rest(by_index));
    }
}

#[tokio::test]
async fn an_unknown_bin_answer_layout_ends_the_stream() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let mut request = settlement_batch(pb::BinAnswerLayout::Shared);
    request.bin_answers = 7;
    let status = client
        .inspect(tokio_stream::iter(vec![request]))
        .await
        .unwrap()
        .into_inner()
        .message()
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(
        status.message(),
        "bin_answers: 7 is not a BinAnswerLayout value"
    );
}
