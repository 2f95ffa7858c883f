//! Every call is counted exactly once: over a run that takes every path a call can end by
//! (answers, each error code, shedding, rate limiting, the request timeout, the caller's
//! deadline, a reset, a message the decoder refuses, a panic, Inspect streams ended by either
//! side), `grpc_server_started_total` of each method equals the calls made, and the sum of its
//! `grpc_server_handled_total` over codes equals that too, each code where it belongs.
//!
//! In its own binary: the metrics recorder is process-wide, and other tests' calls would add to
//! the counts this one checks exactly.

#[path = "it/common/mod.rs"]
mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use card_lookup::admission::{Admission, AdmissionLayer, RateLimitRule};
use card_lookup::config::Config;
use card_lookup::proto::cardlookup::v1::card_lookup_service_client::CardLookupServiceClient;
use common::{EMBEDDED, TestServer, admin_pb, pb};
use futures_util::StreamExt;
use tokio::net::TcpListener;
use tonic::transport::{Channel, Server};
use tonic::{Code, Request, Response, Status, Streaming};

/// Counts of one metric by (method, code), read from a scrape.
fn counts(scrape: &str, metric: &str) -> BTreeMap<(String, String), u64> {
    let mut counts = BTreeMap::new();
    for line in scrape
        .lines()
        .filter(|l| l.starts_with(&format!("{metric}{{")))
    {
        let (labels, value) = line.rsplit_once(' ').unwrap();
        let label = |name: &str| {
            labels
                .split(&format!("{name}=\""))
                .nth(1)
                .and_then(|rest| rest.split('"').next())
                .unwrap_or_default()
                .to_owned()
        };
        *counts
            .entry((label("grpc_method"), label("grpc_code")))
            .or_default() += value.parse::<u64>().unwrap();
    }
    counts
}

/// Calls started, and calls handled by code, of each method.
fn by_method(scrape: &str) -> BTreeMap<String, (u64, BTreeMap<String, u64>)> {
    let mut methods: BTreeMap<String, (u64, BTreeMap<String, u64>)> = BTreeMap::new();
    for ((method, _), started) in counts(scrape, "grpc_server_started_total") {
        methods.entry(method).or_default().0 += started;
    }
    for ((method, code), handled) in counts(scrape, "grpc_server_handled_total") {
        *methods
            .entry(method)
            .or_default()
            .1
            .entry(code)
            .or_default() += handled;
    }
    methods
}

/// Calls started, and how many ended with each code.
type Expected = (u64, Vec<(&'static str, u64)>);

/// A service whose Validate panics, behind the real admission layer.
#[derive(Debug, Clone, Copy)]
struct Panicking;

#[tonic::async_trait]
impl pb::card_lookup_service_server::CardLookupService for Panicking {
    async fn validate(
        &self,
        _: Request<pb::ValidateRequest>,
    ) -> Result<Response<pb::ValidateResponse>, Status> {
        panic!("a handler's bug");
    }

    async fn lookup_bin(
        &self,
        _: Request<pb::LookupBinRequest>,
    ) -> Result<Response<pb::LookupBinResponse>, Status> {
        Err(Status::unimplemented("not in this test"))
    }

    type InspectStream = futures_util::stream::Empty<Result<pb::InspectResponse, Status>>;

    async fn inspect(
        &self,
        _: Request<Streaming<pb::InspectRequest>>,
    ) -> Result<Response<Self::InspectStream>, Status> {
        Err(Status::unimplemented("not in this test"))
    }

    async fn mask_card(
        &self,
        _: Request<pb::MaskCardRequest>,
    ) -> Result<Response<pb::MaskCardResponse>, Status> {
        Err(Status::unimplemented("not in this test"))
    }
}

/// The code a call ended with.
fn code<T>(result: Result<T, Status>) -> Code {
    result.map_or_else(|status| status.code(), |_| Code::Ok)
}

fn validate(number: &str) -> pb::ValidateRequest {
    pb::ValidateRequest {
        number: number.into(),
    }
}

fn limited(number: &str) -> Request<pb::ValidateRequest> {
    let mut request = Request::new(validate(number));
    request
        .metadata_mut()
        .insert("x-client-id", "limited-client".parse().unwrap());
    request
}

/// Calls Validate until one is shed (a stalled call holds the only place once the server has
/// read it); returns how many were answered before that.
async fn refused_once(client: &mut CardLookupServiceClient<Channel>) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut answered = 0;
    loop {
        match client.validate(validate("4111111111111111")).await {
            Ok(_) => answered += 1,
            Err(status) => {
                assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
                return answered;
            }
        }
        assert!(Instant::now() < deadline, "no call was refused");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
#[allow(clippy::too_many_lines)] // one run over every path, in the order it takes them
async fn every_call_is_counted_once_with_the_code_it_got() {
    let config = Config {
        max_concurrent_requests: 1,
        request_timeout: Duration::from_millis(300),
        rate_limits: vec![
            "limited=1/m:limited-client"
                .parse::<RateLimitRule>()
                .unwrap(),
        ],
        trusted_networks: vec!["127.0.0.1".parse().unwrap()],
        ..Config::default()
    };
    let server = TestServer::start_configured(config, Arc::clone(&EMBEDDED)).await;
    let mut client = server.client().await;

    // Answers and refusals of the request rules.
    assert_eq!(
        code(client.validate(validate("4111111111111111")).await),
        Code::Ok
    );
    let lookup = |number: &str| pb::LookupBinRequest {
        number: number.into(),
    };
    assert_eq!(code(client.lookup_bin(lookup("411111")).await), Code::Ok);
    assert_eq!(
        code(client.lookup_bin(lookup("41111")).await),
        Code::InvalidArgument
    );
    let mask = pb::MaskCardRequest {
        number: "4111111111111111".into(),
        ..Default::default()
    };
    assert_eq!(code(client.mask_card(mask).await), Code::Ok);
    let bad_style = pb::MaskCardRequest {
        number: "4111111111111111".into(),
        style: 99,
        ..Default::default()
    };
    assert_eq!(
        code(client.mask_card(bad_style).await),
        Code::InvalidArgument
    );
    // A message over the limit: refused by tonic's decoder, before any handler.
    let huge = validate(&"4".repeat(200 * 1024));
    assert_eq!(code(client.validate(huge).await), Code::OutOfRange);

    // Rate limiting: one call a minute for this client.
    assert_eq!(
        code(client.validate(limited("4111111111111111")).await),
        Code::Ok
    );
    assert_eq!(
        code(client.validate(limited("4111111111111111")).await),
        Code::ResourceExhausted
    );

    // Shedding, while a stalled call holds the only place; then the request timeout ends it.
    let stalled = server.stalled_call(None).await;
    let mut answered_ok = refused_once(&mut client).await;
    let timed_out = tokio::time::timeout(Duration::from_secs(5), stalled)
        .await
        .expect("answered at the request timeout")
        .unwrap();
    assert_eq!(timed_out.headers()["grpc-status"], "1");
    // The caller's deadline passes first: tonic answers it, outside admission.
    let deadline = tokio::time::timeout(
        Duration::from_secs(5),
        server.stalled_call(Some("100m")).await,
    )
    .await
    .expect("answered at the caller's deadline")
    .unwrap();
    assert_eq!(deadline.headers()["grpc-status"], "1");
    // A caller that resets its call once it holds the place, before sending its message.
    // hyper hands tonic such a request as one that ended without a message, and tonic answers
    // INTERNAL "Missing request message.", which nobody receives: the call counts as Canceled.
    let reset = server.stalled_call(None).await;
    answered_ok += refused_once(&mut client).await;
    drop(reset);

    // Inspect: a stream the client ends, one the server ends with an error, one the client
    // abandons in the middle.
    let item = pb::InspectItem {
        id: "1".into(),
        number: "4111111111111111".into(),
    };
    let batch = |items: usize| pb::InspectRequest {
        items: vec![item.clone(); items],
        ..Default::default()
    };
    let mut answers = client
        .inspect(tokio_stream::iter(vec![batch(2), batch(3)]))
        .await
        .unwrap()
        .into_inner();
    let mut answered = 0;
    while let Some(answer) = answers.next().await {
        answered += answer.unwrap().results.len();
    }
    assert_eq!(answered, 5);
    let mut answers = client
        .inspect(tokio_stream::iter(vec![batch(1), batch(1001)]))
        .await
        .unwrap()
        .into_inner();
    assert!(answers.next().await.unwrap().is_ok());
    assert_eq!(
        answers.next().await.unwrap().unwrap_err().code(),
        Code::InvalidArgument
    );
    let (requests, received) = tokio::sync::mpsc::channel(1);
    let mut answers = client
        .inspect(tokio_stream::wrappers::ReceiverStream::new(received))
        .await
        .unwrap()
        .into_inner();
    requests.send(batch(1)).await.unwrap();
    assert!(answers.next().await.unwrap().is_ok());
    drop((answers, requests));

    // The admin service, counted without admission's rules.
    let mut admin = server.admin().await;
    admin
        .get_index_info(admin_pb::GetIndexInfoRequest {})
        .await
        .unwrap();

    // A panicking handler, behind the real admission layer on a server of its own.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let panicking = format!("http://{}", listener.local_addr().unwrap());
    let admission = Admission::new(&Config::default().admission_rules(), None);
    tokio::spawn(
        Server::builder()
            .layer(AdmissionLayer(Arc::new(admission)))
            .add_service(pb::card_lookup_service_server::CardLookupServiceServer::new(Panicking))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    let channel = Channel::from_shared(panicking)
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut panics = pb::card_lookup_service_client::CardLookupServiceClient::new(channel);
    assert_eq!(
        code(panics.validate(validate("4111111111111111")).await),
        Code::Internal
    );

    let expected: BTreeMap<&str, Expected> = BTreeMap::from([
        (
            "Validate",
            (
                10 + answered_ok,
                vec![
                    ("OK", 2 + answered_ok),
                    ("OutOfRange", 1),
                    ("ResourceExhausted", 3),
                    ("Canceled", 3),
                    ("Internal", 1),
                ],
            ),
        ),
        ("LookupBin", (2, vec![("OK", 1), ("InvalidArgument", 1)])),
        ("MaskCard", (2, vec![("OK", 1), ("InvalidArgument", 1)])),
        (
            "Inspect",
            (3, vec![("OK", 1), ("InvalidArgument", 1), ("Canceled", 1)]),
        ),
        ("GetIndexInfo", (1, vec![("OK", 1)])),
    ]);
    // Dropped calls are counted when the server drops them, which may come after the caller
    // has moved on.
    let wait = Instant::now() + Duration::from_secs(5);
    loop {
        let scrape = server.scrape().await;
        let seen = by_method(&scrape);
        let matches = expected.iter().all(|(method, (started, codes))| {
            seen.get(*method).is_some_and(|(s, handled)| {
                *s == *started
                    && handled.len() == codes.len()
                    && codes.iter().all(|(code, n)| handled.get(*code) == Some(n))
            })
        });
        if matches {
            for (method, (started, handled)) in &seen {
                assert_eq!(*started, handled.values().sum::<u64>(), "{method}");
            }
            break;
        }
        assert!(
            Instant::now() < wait,
            "expected {expected:?}\nseen {seen:?}\nin:\n{scrape}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
