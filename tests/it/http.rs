//! The HTTP/JSON port (`--http-listen`) as its callers use it, over HTTP/1.1 and HTTP/2 with
//! hyper's client: binlist's lookup, the gRPC API as JSON (the same answers as over gRPC), bad
//! input, CORS, and admission's rules.

use std::sync::Arc;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use serde_json::{Value, json};
use tokio::net::TcpStream;

use crate::common::{EMBEDDED, TestServer, pb};
use card_lookup::config::Config;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Version {
    Http1,
    Http2,
}

const VERSIONS: [Version; 2] = [Version::Http1, Version::Http2];

/// An answer as the client got it.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: http::HeaderMap,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }

    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .unwrap_or_else(|| panic!("no {name} in {:?}", self.headers))
            .to_str()
            .unwrap()
    }
}

/// Sends `request` on a new connection of `version` and reads the whole answer.
async fn send(
    server: &TestServer,
    version: Version,
    request: http::request::Builder,
    body: impl Into<Bytes>,
) -> Answer {
    let addr = server.http_addr;
    let request = request
        .header(http::header::HOST, addr.to_string())
        .body(Full::new(body.into()))
        .unwrap();
    let io = hyper_util::rt::TokioIo::new(TcpStream::connect(addr).await.unwrap());
    let response = match version {
        Version::Http1 => {
            let (mut sender, connection) = hyper::client::conn::http1::handshake(io).await.unwrap();
            tokio::spawn(connection);
            sender.send_request(request).await.unwrap()
        }
        Version::Http2 => {
            let (mut sender, connection) =
                hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), io)
                    .await
                    .unwrap();
            tokio::spawn(connection);
            // HTTP/2 takes the scheme and authority from the URI.
            let (mut parts, body) = request.into_parts();
            parts.uri = format!("http://{addr}{}", parts.uri).parse().unwrap();
            sender
                .send_request(http::Request::from_parts(parts, body))
                .await
                .unwrap()
        }
    };
    let (parts, body) = response.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    Answer {
        status: parts.status.as_u16(),
        headers: parts.headers,
        body: String::from_utf8(body.to_vec()).unwrap(),
    }
}

async fn get(server: &TestServer, version: Version, path: &str) -> Answer {
    send(server, version, http::Request::get(path), Bytes::new()).await
}

async fn post(server: &TestServer, version: Version, path: &str, body: &str) -> Answer {
    let request = http::Request::post(path).header("content-type", "application/json");
    send(server, version, request, body.to_owned()).await
}

/// An error answer's `google.rpc.Status` code, after checking its HTTP status.
fn rpc_code(answer: &Answer, http_status: u16) -> i64 {
    assert_eq!(answer.status, http_status, "{answer:?}");
    assert_eq!(answer.header("content-type"), "application/json");
    let status = answer.json();
    assert!(status["message"].is_string(), "{status}");
    status["code"].as_i64().expect("a code")
}

#[tokio::test]
async fn the_json_api_gives_co_badged_networks_and_regulations() {
    let server = TestServer::start().await;
    for version in VERSIONS {
        // 457100: VISA/DANKORT, consumer debit, DK.
        let answer = get(&server, version, "/v1/bins/457100").await;
        assert_eq!(answer.status, 200, "{answer:?}");
        let body = answer.json();
        assert_eq!(body["network"], "CARD_NETWORK_VISA");
        assert_eq!(body["coBadgedNetworks"], json!(["CARD_NETWORK_DANKORT"]));
        assert_eq!(
            body["regulations"],
            json!([{
                "regime": "REGULATION_REGIME_EU_IFR",
                "reason": "EU IFR: consumer debit card issued in DK (interchange capped at 0.2%)"
            }])
        );
        // binlist's document keeps binlist's fields only.
        let binlist = get(&server, version, "/457100").await.json();
        assert!(binlist.get("coBadgedNetworks").is_none(), "{binlist}");
        assert!(binlist.get("co_badged_networks").is_none(), "{binlist}");
        assert!(binlist.get("regulations").is_none(), "{binlist}");
    }
    server.stop().await.unwrap();
}

#[tokio::test]
async fn binlist_lookup_answers_binlists_document() {
    let server = TestServer::start().await;
    for version in VERSIONS {
        let answer = send(
            &server,
            version,
            http::Request::get("/45710012").header("accept-version", "3"),
            Bytes::new(),
        )
        .await;
        assert_eq!(answer.status, 200, "{version:?}: {answer:?}");
        assert_eq!(answer.header("access-control-allow-origin"), "*");
        assert_eq!(
            answer.json(),
            json!({
                "number": {"luhn": true},
                "scheme": "visa",
                "type": "debit",
                "brand": "VISA/DANKORT",
                "prepaid": false,
                "country": {
                    "numeric": "208",
                    "alpha2": "DK",
                    "name": "Denmark",
                    "emoji": "🇩🇰",
                    "currency": "DKK",
                    "latitude": 56,
                    "longitude": 10
                },
                "bank": {
                    "name": "NORDEA BANK DANMARK A/S",
                    "url": "http://www.nordea.com",
                    "phone": "(+45) 33-33-33-33"
                }
            }),
            "{version:?}"
        );
    }
    // Six digits too, and an American Express BIN names its one length and binlist's scheme.
    let amex = get(&server, Version::Http1, "/378282").await;
    assert_eq!(amex.status, 200, "{amex:?}");
    assert_eq!(amex.json()["scheme"], "amex");
    assert_eq!(amex.json()["number"]["length"], 15);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn binlist_lookup_refuses_what_is_not_a_bin_and_does_not_know_unknown_ones() {
    let server = TestServer::start().await;
    for version in VERSIONS {
        assert_eq!(rpc_code(&get(&server, version, "/000001").await, 404), 5);
        for path in [
            "/12345",
            "/123456789",
            "/abcdef",
            "/4571-00",
            "/41111111111111111111",
        ] {
            let answer = get(&server, version, path).await;
            assert_eq!(rpc_code(&answer, 400), 3, "{path}");
            assert!(!answer.body.contains("1111111111"), "{answer:?}");
        }
        assert_eq!(rpc_code(&get(&server, version, "/a/b").await, 404), 5);
        let answer = post(&server, version, "/45710012", "{}").await;
        assert_eq!(answer.status, 405, "{answer:?}");
        assert_eq!(answer.header("allow"), "GET");
    }
    server.stop().await.unwrap();
}

#[tokio::test]
async fn the_json_api_answers_what_grpc_answers() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let number = "4111111111111111";
    let validated = client
        .validate(pb::ValidateRequest {
            number: number.into(),
        })
        .await
        .unwrap()
        .into_inner();
    let looked_up = client
        .lookup_bin(pb::LookupBinRequest {
            number: "411111".into(),
        })
        .await
        .unwrap()
        .into_inner();
    // A whole number: an Adyen test card, which only the whole number says.
    let looked_up_whole = client
        .lookup_bin(pb::LookupBinRequest {
            number: number.into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(looked_up_whole.test_card && !looked_up.test_card);
    let masked = client
        .mask_card(pb::MaskCardRequest {
            number: number.into(),
            style: pb::MaskStyle::BinAndLastFour.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    for version in VERSIONS {
        let answer = post(
            &server,
            version,
            "/v1/cards:validate",
            &format!(r#"{{"number": "{number}"}}"#),
        )
        .await;
        assert_eq!(answer.status, 200, "{answer:?}");
        assert_eq!(answer.json(), serde_json::to_value(&validated).unwrap());
        // The proto3 JSON mapping: lowerCamelCase names, enums by name.
        assert_eq!(answer.json()["network"], "CARD_NETWORK_VISA");
        assert_eq!(answer.json()["luhnValid"], true);
        assert_eq!(answer.json()["testCard"], true);
        assert_eq!(answer.json()["testCardSources"], json!(["adyen"]));

        let answer = get(&server, version, "/v1/bins/411111").await;
        assert_eq!(answer.status, 200, "{answer:?}");
        assert_eq!(answer.json(), serde_json::to_value(&looked_up).unwrap());
        assert_eq!(answer.json()["issuer"]["name"], "CONOTOXIA SP. Z O.O");
        let answer = post(
            &server,
            version,
            "/v1/bins:lookup",
            &format!(r#"{{"number": "{number}"}}"#),
        )
        .await;
        assert_eq!(
            answer.json(),
            serde_json::to_value(&looked_up_whole).unwrap()
        );
        assert_eq!(answer.json()["testCardSources"], json!(["adyen"]));

        let answer = post(
            &server,
            version,
            "/v1/cards:mask",
            &format!(r#"{{"number": "{number}", "style": "MASK_STYLE_BIN_AND_LAST_FOUR"}}"#),
        )
        .await;
        assert_eq!(answer.status, 200, "{answer:?}");
        assert_eq!(answer.json(), serde_json::to_value(&masked).unwrap());
        assert_eq!(answer.json()["masked"], "411111******1111");
    }
    server.stop().await.unwrap();
}

#[tokio::test]
async fn bad_input_gets_a_400_that_does_not_repeat_it() {
    let server = TestServer::start().await;
    for version in VERSIONS {
        let bad = [
            ("/v1/cards:validate", "not json 4111111111111111"),
            ("/v1/cards:validate", r#"{"number": 4111111111111111}"#),
            (
                "/v1/cards:validate",
                r#"{"number": "4111111111111111", "cvv": "123"}"#,
            ),
            ("/v1/cards:validate", r#"{"number": "4111111111111111""#),
            (
                "/v1/cards:mask",
                r#"{"number": "4111111111111111", "style": "NO_SUCH_STYLE"}"#,
            ),
            ("/v1/cards:mask", r#"{"number": "41111111"}"#),
        ];
        for (path, body) in bad {
            let answer = post(&server, version, path, body).await;
            assert_eq!(rpc_code(&answer, 400), 3, "{path} {body}");
            assert!(!answer.body.contains("41111111"), "{answer:?}");
        }
        // A whole card number in a path is refused unread: paths are logged by proxies.
        let answer = get(&server, version, "/v1/bins/41111111111111111111").await;
        assert_eq!(rpc_code(&answer, 400), 3);
        assert!(!answer.body.contains("1111111111"), "{answer:?}");
        let answer = get(&server, version, "/v1/bins/letters").await;
        assert_eq!(rpc_code(&answer, 400), 3);
        let answer = get(&server, version, "/v1/cards:validate").await;
        assert_eq!(answer.status, 405, "{answer:?}");
        assert_eq!(answer.header("allow"), "POST");
    }
    // A body of 10 MB is refused after the first 128 KiB, and the server goes on.
    let huge = format!(r#"{{"number": "{}"}}"#, "4".repeat(10 << 20));
    let answer = post(&server, Version::Http2, "/v1/cards:validate", &huge).await;
    assert_eq!(rpc_code(&answer, 400), 11, "OUT_OF_RANGE");
    let answer = get(&server, Version::Http1, "/45710012").await;
    assert_eq!(answer.status, 200);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn browsers_get_cors_preflights_and_headers() {
    let server = TestServer::start().await;
    for version in VERSIONS {
        let request = http::Request::options("/v1/cards:validate")
            .header("origin", "https://shop.example")
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type");
        let answer = send(&server, version, request, Bytes::new()).await;
        assert_eq!(answer.status, 204, "{answer:?}");
        assert_eq!(answer.header("access-control-allow-origin"), "*");
        assert!(
            answer
                .header("access-control-allow-methods")
                .contains("POST")
        );
        assert!(
            answer
                .header("access-control-allow-headers")
                .contains("content-type")
        );
        let answer = post(&server, version, "/v1/cards:validate", "{}").await;
        assert_eq!(answer.header("access-control-allow-origin"), "*");
        assert!(
            answer
                .header("access-control-expose-headers")
                .contains("x-request-id")
        );
    }
    server.stop().await.unwrap();
}

#[tokio::test]
async fn admission_rules_apply_and_request_ids_come_back() {
    let config = Config {
        rate_limits: vec!["default=2/m".parse().unwrap()],
        ..Config::default()
    };
    let server = TestServer::start_configured(config, Arc::clone(&EMBEDDED)).await;
    let request = || http::Request::get("/v1/bins/411111").header("x-request-id", "checkout-42");
    for _ in 0..2 {
        let answer = send(&server, Version::Http1, request(), Bytes::new()).await;
        assert_eq!(answer.status, 200, "{answer:?}");
        assert_eq!(answer.header("x-request-id"), "checkout-42");
    }
    // The same client (its address) over the other version and another route: refused.
    let answer = get(&server, Version::Http2, "/45710012").await;
    assert_eq!(rpc_code(&answer, 429), 8, "RESOURCE_EXHAUSTED");
    let status = answer.json();
    assert!(
        status["message"].as_str().unwrap().contains("rate limit"),
        "{status}"
    );
    assert_eq!(
        status["details"][0]["@type"],
        "type.googleapis.com/google.rpc.RetryInfo"
    );
    assert!(answer.header("retry-after").parse::<u64>().unwrap() >= 1);
    assert_eq!(answer.header("access-control-allow-origin"), "*");
    // And the gRPC port shares the budget: its call is refused too.
    let refused = server
        .client()
        .await
        .lookup_bin(pb::LookupBinRequest {
            number: "411111".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::ResourceExhausted);
    server.stop().await.unwrap();
}

/// binlookup, the most used binlist client (npm), with its base URL set to the HTTP port,
/// reads the same document binlist's own lookup answers, and fails on an unknown BIN. Without
/// node or the client installed (`npm install --prefix tests/binlookup`) the test says loudly
/// that it was skipped, unless CARDLOOKUP_REQUIRE_BINLOOKUP=1 (as .ci/run sets), which makes
/// that a failure.
#[tokio::test]
async fn the_binlookup_client_reads_the_binlist_answers() {
    use std::io::Write;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/binlookup");
    let node = std::process::Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|output| output.status.success());
    let installed = dir.join("node_modules/binlookup").is_dir();
    if !(node && installed) {
        let why = if node {
            "binlookup is not installed (npm install --prefix tests/binlookup)"
        } else {
            "node not found"
        };
        assert!(
            std::env::var("CARDLOOKUP_REQUIRE_BINLOOKUP").as_deref() != Ok("1"),
            "{why}, and CARDLOOKUP_REQUIRE_BINLOOKUP=1"
        );
        // Straight to stderr: the test harness keeps `eprintln!` of a passing test to itself.
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED: {why}: the binlookup client test"
        );
        return;
    }
    let server = TestServer::start().await;
    let output = tokio::process::Command::new("node")
        .arg(dir.join("lookup.js"))
        .arg(format!("http://{}/", server.http_addr))
        .args(["45710012", "378282", "000001"])
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines: Vec<Value> = stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    for line in &lines[..2] {
        let bin = line["bin"].as_str().unwrap();
        let direct = get(&server, Version::Http1, &format!("/{bin}"))
            .await
            .json();
        assert_eq!(line["answer"], direct, "{bin}");
    }
    assert_eq!(lines[0]["answer"]["country"]["currency"], "DKK");
    assert!(lines[2]["error"].is_string(), "{}", lines[2]);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn the_openapi_description_describes_what_the_routes_answer() {
    let server = TestServer::start().await;
    for version in VERSIONS {
        let described = get(&server, version, "/openapi.json").await;
        assert_eq!(described.status, 200, "{described:?}");
        assert_eq!(described.header("content-type"), "application/json");
        assert_eq!(described.body, card_lookup::openapi::document());
    }
    let doc: Value = serde_json::from_str(card_lookup::openapi::document()).unwrap();
    let schemas = &doc["components"]["schemas"];
    // Every field a real answer carries is a property of the schema the description names
    // for that route's 200 answer.
    let calls = [
        (
            "post",
            "/v1/cards:validate",
            r#"{"number": "4111 1111 1111 1111"}"#,
        ),
        (
            "post",
            "/v1/cards:mask",
            r#"{"number": "4111111111111111"}"#,
        ),
        (
            "post",
            "/v1/bins:lookup",
            r#"{"number": "4111111111111111"}"#,
        ),
        ("get", "/v1/bins/{number}", ""),
    ];
    for (verb, path, body) in calls {
        let answer = if verb == "post" {
            post(&server, Version::Http1, path, body).await
        } else {
            get(&server, Version::Http1, "/v1/bins/411111").await
        };
        assert_eq!(answer.status, 200, "{path}: {answer:?}");
        let reference = doc["paths"][path][verb]["responses"]["200"]["content"]["application/json"]
            ["schema"]["$ref"]
            .as_str()
            .unwrap_or_else(|| panic!("{verb} {path} is not described"));
        let schema = &schemas[reference.trim_start_matches("#/components/schemas/")];
        let answered = answer.json();
        assert!(!answered.as_object().unwrap().is_empty(), "{path}");
        for field in answered.as_object().unwrap().keys() {
            assert!(
                schema["properties"].get(field).is_some(),
                "{path} answered {field}, which {reference} does not describe"
            );
        }
    }
    // Errors are described as what they are: a google.rpc.Status.
    let refused = post(&server, Version::Http1, "/v1/cards:validate", "not json").await;
    let status = refused.json();
    for field in status.as_object().unwrap().keys() {
        assert!(
            schemas["google.rpc.Status"]["properties"]
                .get(field)
                .is_some(),
            "{field}"
        );
    }
}

/// At --max-connection-age an HTTP connection, as a gRPC one, is closed gracefully (HTTP/2:
/// GOAWAY; HTTP/1.1: closed once its answer is out), so that keep-alive clients reconnect and
/// spread over the replicas.
#[tokio::test]
async fn connections_past_their_age_are_closed_after_their_answers() {
    let config = Config {
        max_connection_age: std::time::Duration::from_millis(300),
        max_connection_age_grace: std::time::Duration::from_secs(5),
        ..Config::default()
    };
    let server = TestServer::start_configured(config, Arc::clone(&EMBEDDED)).await;
    let addr = server.http_addr;
    for version in VERSIONS {
        let io = hyper_util::rt::TokioIo::new(TcpStream::connect(addr).await.unwrap());
        let request = || {
            http::Request::get(format!("http://{addr}/45717360"))
                .header(http::header::HOST, addr.to_string())
                .body(Full::new(Bytes::new()))
                .unwrap()
        };
        // The senders are kept: a client connection whose sender is dropped closes itself.
        let (status, connection, _http1, _http2) = match version {
            Version::Http1 => {
                let (mut sender, connection) =
                    hyper::client::conn::http1::handshake(io).await.unwrap();
                let connection = tokio::spawn(connection);
                let status = sender.send_request(request()).await.unwrap().status();
                (status, connection, Some(sender), None)
            }
            Version::Http2 => {
                let (mut sender, connection) =
                    hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), io)
                        .await
                        .unwrap();
                let connection = tokio::spawn(connection);
                let status = sender.send_request(request()).await.unwrap().status();
                (status, connection, None, Some(sender))
            }
        };
        assert_eq!(status, 200, "{version:?}");
        // Idle past the age (at most 330 ms with its jitter): the server ends the connection,
        // long before the 5 s grace would force it.
        let ended = tokio::time::timeout(std::time::Duration::from_secs(3), connection).await;
        assert!(
            ended.is_ok(),
            "{version:?}: the connection stayed open past its age"
        );
    }
    // Counted when the server has let go of the connection, a moment after the client sees
    // it end.
    let mut closed = 0.0;
    for _ in 0..40 {
        let metrics = server.scrape().await;
        closed = metrics
            .lines()
            .find_map(|line| {
                line.strip_prefix("cardlookup_connections_closed_for_age_total{port=\"http\"} ")
            })
            .expect("the HTTP port's age counter")
            .parse()
            .unwrap();
        if closed >= 2.0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(closed >= 2.0, "{closed}");
}
