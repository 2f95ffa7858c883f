//! `card-lookup validate`, `lookup` and `mask` with `--server`, against the real server started
//! in-process on 127.0.0.1:0: the same answers as offline, the server's refusals and an
//! unreachable server (exit 2 with the gRPC code), TLS and mutual TLS.

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::Arc;

use crate::common::pki::{Ca, ca, leaf};
use crate::common::{EMBEDDED, TempDir, TestServer, leaked_pans};
use card_lookup::config::Config;
use card_lookup::tls::TlsFiles;

const BINARY: &str = env!("CARGO_BIN_EXE_card-lookup");

#[derive(Debug, PartialEq, Eq)]
struct Run {
    code: Option<i32>,
    out: String,
    err: String,
}

/// Runs the binary on a blocking thread, so the in-process server keeps serving meanwhile.
async fn run(args: Vec<String>, input: Option<String>) -> Run {
    tokio::task::spawn_blocking(move || {
        let mut child = Command::new(BINARY)
            .args(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the binary starts");
        // Written from another thread: the output is read meanwhile, or both pipes could fill.
        let mut stdin = child.stdin.take().unwrap();
        let writer = std::thread::spawn(move || {
            let _ = stdin.write_all(input.unwrap_or_default().as_bytes());
        });
        let output = child.wait_with_output().unwrap();
        writer.join().unwrap();
        Run {
            code: output.status.code(),
            out: String::from_utf8_lossy(&output.stdout).into_owned(),
            err: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    })
    .await
    .unwrap()
}

fn args(args: &[&str]) -> Vec<String> {
    args.iter().map(ToString::to_string).collect()
}

fn with_server(case: &[&str], url: &str) -> Vec<String> {
    let mut args = args(case);
    args.extend(["--server".to_owned(), url.to_owned()]);
    args
}

const NUMBERS: &str = "4111 1111 1111 1111\n5555-5555-5555-4444\n\n378282246310005\n\
                       4111111111111112\n9999819999999995\n4111x\n6011111111111117\n4111\n";

#[tokio::test]
async fn server_answers_are_the_offline_answers() {
    let server = TestServer::start().await;
    let url = server.url();
    let cases: [&[&str]; 12] = [
        &["validate", "--json", "4111111111111111"],
        &["validate", "--json", "4111111111111112"],
        &["validate", "--json", "62"],
        &["validate", "--json", "4111x"],
        &["validate", "--json", "41111111111111111111111"],
        &["validate", "4111 1111 1111 1111"],
        &["lookup", "--json", "622848"],
        &["lookup", "--json", "000000"],
        &["lookup", "4041 1900 0000 0000"],
        &[
            "mask",
            "--json",
            "--style",
            "bin-and-last-four",
            "--grouping",
            "4111111111111111",
        ],
        &[
            "mask",
            "--mask-char",
            "#",
            "--style",
            "all",
            "378282246310005",
        ],
        &["mask", "6212345678900000004"],
    ];
    let offline = futures_util::future::join_all(cases.iter().map(|case| run(args(case), None)));
    let online =
        futures_util::future::join_all(cases.iter().map(|case| run(with_server(case, &url), None)));
    let (offline, online) = tokio::join!(offline, online);
    for ((case, offline), online) in cases.iter().zip(offline).zip(online) {
        assert!(
            offline.code == Some(0) || offline.code == Some(1),
            "{case:?}: {offline:?}"
        );
        assert_eq!(online, offline, "{case:?}");
    }
}

#[tokio::test]
async fn validate_a_file_against_the_server_as_offline() {
    let server = TestServer::start().await;
    let dir = TempDir::new("cli-server-file");
    let file = dir.write("numbers.txt", NUMBERS);
    let file = file.to_str().unwrap();
    for json in [false, true] {
        let mut case = vec!["validate", "--file", file];
        if json {
            case.push("--json");
        }
        let (offline, online) = tokio::join!(
            run(args(&case), None),
            run(with_server(&case, &server.url()), None)
        );
        assert_eq!(online.code, Some(1), "{online:?}");
        assert_eq!(online, offline);
        if !json {
            assert!(
                online
                    .out
                    .contains("summary: 8 numbers, 4 valid, 4 invalid"),
                "{}",
                online.out
            );
        }
        let leaked = leaked_pans(
            &online.out,
            &["4111111111111111", "378282246310005", "6011111111111117"],
        );
        assert!(leaked.is_empty(), "leaked {leaked:?}");
    }

    // Standard input, and more numbers than the calls kept in flight, in the file's order.
    let many: String = (0..500)
        .map(|i| {
            if i % 5 == 0 {
                "4111111111111112\n"
            } else {
                "4111111111111111\n"
            }
        })
        .collect();
    let online = run(
        with_server(&["validate", "--json", "--file", "-"], &server.url()),
        Some(many),
    )
    .await;
    assert_eq!(online.code, Some(1), "{}", online.err);
    let lines: Vec<serde_json::Value> = online
        .out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 501);
    for (i, line) in lines[..500].iter().enumerate() {
        assert_eq!(line["line"], i + 1);
        assert_eq!(line["valid"], i % 5 != 0, "{line}");
    }
    assert_eq!(lines[500]["summary"]["invalid"], 100);
}

#[tokio::test]
async fn a_refusal_prints_the_grpc_code_and_message_and_exits_2() {
    let server = TestServer::start().await;
    let url = server.url();
    let lookup = run(with_server(&["lookup", "12345"], &url), None).await;
    assert_eq!(lookup.code, Some(2), "{lookup:?}");
    assert_eq!(lookup.out, "");
    let expected = format!(
        "card-lookup: server {url}: INVALID_ARGUMENT: number: 5 digits; LookupBin needs at \
         least 6 (a BIN) (request id "
    );
    assert!(lookup.err.starts_with(&expected), "{}", lookup.err);

    let mask = run(with_server(&["mask", "4111 1111"], &url), None).await;
    assert_eq!(mask.code, Some(2), "{mask:?}");
    assert!(
        mask.err.contains(
            ": INVALID_ARGUMENT: number: 8 digits; a card number has 12 to 19 (request id "
        ),
        "{}",
        mask.err
    );
}

#[tokio::test]
async fn an_unreachable_server_exits_2_with_unavailable() {
    // A port that was free a moment ago: nothing listens there.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let url = format!("http://127.0.0.1:{port}");
    for case in [
        &["validate", "4111111111111111"][..],
        &["lookup", "411111"],
        &["mask", "4111111111111111"],
        &["validate", "--file", "-"],
    ] {
        let run = run(with_server(case, &url), Some("4111111111111111\n".into())).await;
        assert_eq!(run.code, Some(2), "{case:?}: {run:?}");
        assert!(
            run.err
                .starts_with(&format!("card-lookup: server {url}: UNAVAILABLE: ")),
            "{case:?}: {}",
            run.err
        );
        let leaked = leaked_pans(&format!("{}{}", run.out, run.err), &["4111111111111111"]);
        assert!(leaked.is_empty(), "{case:?}: leaked");
    }
}

async fn tls_server(dir: &TempDir, authority: &Ca, client_ca: Option<&Ca>) -> TestServer {
    let (cert, key) = leaf(authority, "card-lookup", false);
    let files = TlsFiles {
        cert: dir.write("server.pem", &cert),
        key: dir.write("server.key", &key),
        client_ca: client_ca.map(|c| dir.write("client-ca.pem", &c.pem())),
    };
    let config = Config {
        tls: Some(files),
        ..Config::default()
    };
    TestServer::start_configured(config, Arc::clone(&EMBEDDED)).await
}

#[tokio::test]
async fn tls_with_the_servers_ca() {
    let dir = TempDir::new("cli-tls");
    let authority = ca("Test CA");
    let server = tls_server(&dir, &authority, None).await;
    let ca_pem = dir.write("ca.pem", &authority.pem());
    let ca_pem = ca_pem.to_str().unwrap();
    let port = server.grpc_addr.port();

    // The certificate is for localhost: by the URL's host, or named for an IP address.
    for extra in [
        vec![format!("https://localhost:{port}")],
        vec![
            format!("https://127.0.0.1:{port}"),
            "--tls-server-name".into(),
            "localhost".into(),
        ],
    ] {
        let mut case = args(&[
            "validate",
            "4111111111111111",
            "--ca-cert",
            ca_pem,
            "--server",
        ]);
        case.extend(extra);
        let run = run(case, None).await;
        assert_eq!(run.code, Some(0), "{run:?}");
        assert!(run.out.contains("valid:       yes"), "{}", run.out);
    }

    // Plaintext to a TLS port, and a CA that did not sign the server's certificate.
    let plain = run(
        with_server(
            &["validate", "4111111111111111"],
            &format!("http://127.0.0.1:{port}"),
        ),
        None,
    )
    .await;
    assert_eq!(plain.code, Some(2), "{plain:?}");
    // The TLS handshake is no HTTP/2 frame: an INTERNAL h2 protocol error.
    assert!(
        plain
            .err
            .starts_with(&format!("card-lookup: server http://127.0.0.1:{port}: ")),
        "{}",
        plain.err
    );
    let stranger = dir.write("stranger.pem", &ca("Someone Else").pem());
    let untrusted = run(
        args(&[
            "validate",
            "4111111111111111",
            "--server",
            &format!("https://localhost:{port}"),
            "--ca-cert",
            stranger.to_str().unwrap(),
        ]),
        None,
    )
    .await;
    assert_eq!(untrusted.code, Some(2), "{untrusted:?}");
    assert!(
        untrusted.err.contains(": UNAVAILABLE: "),
        "{}",
        untrusted.err
    );
}

#[tokio::test]
async fn mutual_tls_with_a_client_certificate() {
    let dir = TempDir::new("cli-mtls");
    let authority = ca("Test CA");
    let clients = ca("Client CA");
    let server = tls_server(&dir, &authority, Some(&clients)).await;
    let ca_pem = dir.write("ca.pem", &authority.pem());
    let (cert, key) = leaf(&clients, "checkout", true);
    let cert = dir.write("client.pem", &cert);
    let key = dir.write("client.key", &key);
    let url = format!("https://localhost:{}", server.grpc_addr.port());
    let base = args(&[
        "lookup",
        "--json",
        "622848",
        "--server",
        &url,
        "--ca-cert",
        ca_pem.to_str().unwrap(),
    ]);

    let mut member = base.clone();
    member.extend(args(&[
        "--cert",
        cert.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
    ]));
    let run_member = run(member, None).await;
    assert_eq!(run_member.code, Some(0), "{run_member:?}");
    let answer: serde_json::Value = serde_json::from_str(&run_member.out).unwrap();
    assert_eq!(answer["issuer"]["name"], "AGRICULTURAL BANK OF CHINA");

    let anonymous = run(base, None).await;
    assert_eq!(anonymous.code, Some(2), "{anonymous:?}");
    assert!(
        anonymous
            .err
            .starts_with(&format!("card-lookup: server {url}: ")),
        "{}",
        anonymous.err
    );

    let mut half = args(&["lookup", "622848", "--server", &url, "--ca-cert"]);
    half.extend(args(&[
        ca_pem.to_str().unwrap(),
        "--cert",
        cert.to_str().unwrap(),
    ]));
    let half = run(half, None).await;
    assert_eq!(half.code, Some(2), "--cert without --key: {half:?}");
}
