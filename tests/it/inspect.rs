//! The Inspect stream: batches of numbers answered item by item, one bad number never failing
//! the stream, the per-request item cap, the bound on a response's size, and the stream's
//! idle timeout and maximum life.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::{EMBEDDED, TestServer, pb};
use card_lookup::config::Config;
use prost::Message;
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
    // Four distinct answers: 411111 for the test card 4111 1111 1111 1111 (asked twice),
    // 622848, the unknown BIN, and 411111 again for a number of it that is no test card.
    assert_eq!(shared.bins.len(), 4, "{:?}", shared.bins);
    assert_eq!(shared.bins[0].bin, "411111");
    assert_eq!(shared.bins[0].test_card_sources, ["adyen"]);
    assert_eq!(shared.bins[1].bin, "622848");
    assert!(!shared.bins[2].found);
    assert_eq!(shared.bins[3].bin, "411111");
    assert!(!shared.bins[3].test_card);
    assert!(shared.bins.iter().all(|bin| bin.dataset_version.is_empty()));
    assert_eq!(shared.dataset_version, per_result.dataset_version);
    let indexes: Vec<_> = shared.results.iter().map(|r| r.bin_index).collect();
    assert_eq!(
        indexes,
        [Some(0), Some(1), Some(0), None, Some(2), None, Some(3)]
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

/// Two numbers of one 6-digit entry (443428, Visa debit, AU) of which only one is in eftpos's
/// published 8-digit 44342800: their answers differ by the co-badge, shared or not.
#[tokio::test]
async fn numbers_of_one_entry_with_different_co_badges_get_different_answers() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let batch = |layout: pb::BinAnswerLayout| pb::InspectRequest {
        items: vec![
            item("eftpos", "4434280012345678"),
            item("visa-only", "4434281112345678"),
        ],
        bin_answers: layout.into(),
        ..Default::default()
    };
    let mut answers = client
        .inspect(tokio_stream::iter(vec![
            batch(pb::BinAnswerLayout::PerResult),
            batch(pb::BinAnswerLayout::Shared),
        ]))
        .await
        .unwrap()
        .into_inner();
    let per_result = answers.message().await.unwrap().unwrap();
    let shared = answers.message().await.unwrap().unwrap();
    let co_badged = |bin: &pb::LookupBinResponse| bin.co_badged_networks().collect::<Vec<_>>();
    let inline: Vec<_> = per_result
        .results
        .iter()
        .map(|r| r.bin.as_deref().expect("a BIN answer"))
        .collect();
    assert_eq!(inline[0].bin, "443428");
    assert_eq!(inline[1].bin, "443428");
    assert_eq!(co_badged(inline[0]), [pb::CardNetwork::EftposAustralia]);
    assert!(co_badged(inline[1]).is_empty(), "{:?}", inline[1]);
    assert_eq!(shared.bins.len(), 2, "{:?}", shared.bins);
    for (result, inline) in shared.results.iter().zip(inline) {
        let index = result.bin_index.expect("an index") as usize;
        assert_eq!(&shared.bins[index], inline, "{}", result.id);
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

/// The next answer of a stream, within a bound that only keeps a stream the server never ends
/// from hanging the test.
async fn next_answer(
    answers: &mut tonic::Streaming<pb::InspectResponse>,
) -> Result<Option<pb::InspectResponse>, tonic::Status> {
    tokio::time::timeout(Duration::from_secs(10), answers.message())
        .await
        .expect("the server answers or ends the stream")
}

/// How many items the next answer of a stream answers; it must come.
async fn answered_items(answers: &mut tonic::Streaming<pb::InspectResponse>) -> usize {
    next_answer(answers)
        .await
        .unwrap()
        .expect("an answer")
        .results
        .len()
}

/// A stream whose client sends nothing is ended after `--inspect-idle-timeout`, with a status
/// saying so, and gives its concurrency place back.
#[tokio::test]
async fn an_idle_stream_is_ended_and_its_place_freed() {
    let config = Config {
        max_concurrent_requests: 2,
        inspect_idle_timeout: Duration::from_millis(300),
        ..Config::default()
    };
    let server = TestServer::start_configured(config, Arc::clone(&EMBEDDED)).await;
    let mut client = server.client().await;
    // Two streams take both places, and send nothing.
    let mut idle = Vec::new();
    for _ in 0..2 {
        let requests = futures_util::stream::pending::<pb::InspectRequest>();
        idle.push(client.inspect(requests).await.unwrap().into_inner());
    }
    for answers in &mut idle {
        let status = next_answer(answers).await.unwrap_err();
        assert_eq!(status.code(), Code::DeadlineExceeded);
        assert_eq!(
            status.message(),
            "Inspect stream idle for 300ms; open a new stream when there is work"
        );
    }
    // Both places are free again (once the server has dropped the ended streams).
    let deadline = Instant::now() + Duration::from_secs(5);
    let validate = || pb::ValidateRequest {
        number: "4111111111111111".into(),
    };
    while let Err(status) = client.validate(validate()).await {
        assert_eq!(status.code(), Code::ResourceExhausted);
        assert!(
            Instant::now() < deadline,
            "the idle streams' places were not freed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let scrape = server.scrape().await;
    assert!(
        scrape.contains(r#"grpc_server_handled_total{grpc_type="bidi_stream",grpc_service="cardlookup.v1.CardLookupService",grpc_method="Inspect",grpc_code="DeadlineExceeded"}"#),
        "{scrape}"
    );
}

/// A stream that keeps sending is ended at `--inspect-max-life`, between answers: every
/// request answered before is answered whole, and the status tells the client to reconnect.
#[tokio::test]
async fn a_busy_stream_is_ended_at_its_maximum_life() {
    let config = Config {
        inspect_max_life: Duration::from_millis(500),
        ..Config::default()
    };
    let server = TestServer::start_configured(config, Arc::clone(&EMBEDDED)).await;
    let mut client = server.client().await;
    let (requests, received) = tokio::sync::mpsc::channel(1);
    let mut answers = client
        .inspect(tokio_stream::wrappers::ReceiverStream::new(received))
        .await
        .unwrap()
        .into_inner();
    let batch = || pb::InspectRequest {
        items: vec![item("a", "4111111111111111"), item("b", "5555555555554444")],
        ..Default::default()
    };
    let mut answered = 0;
    let status = loop {
        assert!(answered < 2000, "the stream outlived its maximum life");
        // Refused once the server has ended the stream: the status is then the next answer.
        let _ = requests.send(batch()).await;
        match next_answer(&mut answers).await {
            Ok(answer) => {
                assert_eq!(answer.expect("an answer").results.len(), 2);
                answered += 1;
            }
            Err(status) => break status,
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert!(answered > 0, "the stream answered before it ended");
    assert_eq!(status.code(), Code::Unavailable);
    assert_eq!(
        status.message(),
        "Inspect stream reached its maximum life of 500ms; open a new stream and send the requests not yet answered"
    );
    // The client does as it is told: a new stream answers.
    let mut answers = client
        .inspect(tokio_stream::iter(vec![batch()]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answered_items(&mut answers).await, 2);
    let scrape = server.scrape().await;
    assert!(
        scrape.contains(r#"grpc_method="Inspect",grpc_code="Unavailable"}"#),
        "{scrape}"
    );
}

/// A request whose answers would be larger than `--inspect-max-answer-bytes` ends the stream
/// with OUT_OF_RANGE, saying the limit and how many of its items fit; requests of that many
/// items are then answered, each response within the limit.
#[tokio::test]
async fn a_request_whose_answers_would_not_fit_in_a_response_is_refused() {
    let max = 16 * 1024;
    let config = Config {
        inspect_max_answer_bytes: max,
        ..Config::default()
    };
    let server = TestServer::start_configured(config, Arc::clone(&EMBEDDED)).await;
    let mut client = server.client().await;
    // Items of long ids (within the 128 KiB a request may have) and a BIN answer each: about
    // 250 bytes an answer.
    let items: Vec<_> = (0..card_lookup::api::inspect::MAX_INSPECT_ITEMS)
        .map(|i| item(&format!("{i:x>64}"), "6228480000000000000"))
        .collect();
    let batch = |items: &[pb::InspectItem]| pb::InspectRequest {
        items: items.to_vec(),
        ..Default::default()
    };
    let mut answers = client
        .inspect(tokio_stream::iter(vec![batch(&items[..2]), batch(&items)]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answered_items(&mut answers).await, 2);
    let status = match next_answer(&mut answers).await {
        Err(status) => status,
        Ok(answer) => panic!(
            "answered: {:?} bytes",
            answer.map(|answer| answer.encoded_len())
        ),
    };
    assert_eq!(status.code(), Code::OutOfRange);
    let message = status.message();
    let fitting: usize = message
        .strip_prefix(
            "answer: this request's answers would be larger than the 16384 bytes one Inspect response may carry (its first ",
        )
        .and_then(|rest| rest.strip_suffix(" items fit); send fewer items a request"))
        .and_then(|count| count.parse().ok())
        .unwrap_or_else(|| panic!("{message}"));
    assert!(fitting > 1 && fitting < items.len(), "{fitting}");

    let batches: Vec<_> = items.chunks(fitting).map(batch).collect();
    let sent = batches.len();
    let mut answers = client
        .inspect(tokio_stream::iter(batches))
        .await
        .unwrap()
        .into_inner();
    let mut answered = 0;
    while let Some(answer) = next_answer(&mut answers).await.unwrap() {
        assert!(answer.encoded_len() <= max, "{}", answer.encoded_len());
        assert!(answer.results.iter().all(|result| result.code == 0));
        answered += 1;
    }
    assert_eq!(answered, sent);
}

/// A client that stops reading its answers cannot be ended by the stream's own limits (HTTP/2
/// gives the server no turn while the client's window is shut); its connection's maximum age
/// ends it, after the grace.
#[tokio::test]
async fn a_client_that_stops_reading_is_closed_at_its_connection_age() {
    let config = Config {
        max_connection_age: Duration::from_millis(300),
        max_connection_age_grace: Duration::from_millis(300),
        ..Config::default()
    };
    let server = TestServer::start_configured(config, Arc::clone(&EMBEDDED)).await;
    let tcp = tokio::net::TcpStream::connect(server.grpc_addr)
        .await
        .unwrap();
    // A window of 1 KiB that is never given back: the first answer fills it.
    let (mut sender, connection) = h2::client::Builder::new()
        .initial_window_size(1024)
        .handshake::<_, tonic::codegen::Bytes>(tcp)
        .await
        .unwrap();
    let connection = tokio::spawn(connection);
    let request =
        crate::common::grpc_request(server.grpc_addr, "/cardlookup.v1.CardLookupService/Inspect");
    let (_response, mut requests) = sender.send_request(request, false).unwrap();
    let batch = pb::InspectRequest {
        items: (0..50)
            .map(|n| item(&n.to_string(), "4111111111111111"))
            .collect(),
        ..Default::default()
    };
    let message = batch.encode_to_vec();
    let mut frame = vec![0u8];
    frame.extend_from_slice(&u32::try_from(message.len()).unwrap().to_be_bytes());
    frame.extend_from_slice(&message);
    requests.send_data(frame.into(), false).unwrap();
    // Neither the response nor the stream is ever read or ended. The age (at most 330 ms with
    // its jitter) and the grace end the connection; the bound is generous.
    let ended = tokio::time::timeout(Duration::from_secs(5), connection).await;
    assert!(ended.is_ok(), "the connection outlived its age and grace");
}
