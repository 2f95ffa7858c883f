//! TLS and mutual TLS on the gRPC port, with certificates made here (rcgen): who gets in,
//! who is refused, the client certificate as the client's identity, and certificate reload.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::pki::{Ca, ca, leaf};
use crate::common::{EMBEDDED, TempDir, TestServer, pb};
use crate::connections::{PATIENCE, closed_by_server};
use card_lookup::config::Config;
use card_lookup::tls::TlsFiles;
use pb::card_lookup_service_client::CardLookupServiceClient;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tonic::Code;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

/// Server certificate files signed by `ca`, and the client CA when mutual TLS is wanted.
fn server_files(dir: &TempDir, ca: &Ca, client_ca: Option<&Ca>) -> TlsFiles {
    let (cert, key) = leaf(ca, "card-lookup", false);
    TlsFiles {
        cert: dir.write("server.pem", &cert),
        key: dir.write("server.key", &key),
        client_ca: client_ca.map(|c| dir.write("client-ca.pem", &c.pem())),
    }
}

async fn start(files: TlsFiles, rate_limits: &str) -> TestServer {
    start_configured(files, rate_limits, Config::default()).await
}

async fn start_configured(files: TlsFiles, rate_limits: &str, config: Config) -> TestServer {
    let config = Config {
        tls: Some(files),
        rate_limits: rate_limits
            .split(';')
            .filter(|r| !r.is_empty())
            .map(|r| r.parse().unwrap())
            .collect(),
        ..config
    };
    TestServer::start_configured(config, Arc::clone(&EMBEDDED)).await
}

async fn connect(
    server: &TestServer,
    trusted: &Ca,
    identity: Option<(String, String)>,
) -> Result<CardLookupServiceClient<Channel>, tonic::transport::Error> {
    connect_from(server, trusted, identity, None).await
}

/// [`connect`] from the local address `from` (another address than other connections').
async fn connect_from(
    server: &TestServer,
    trusted: &Ca,
    identity: Option<(String, String)>,
    from: Option<IpAddr>,
) -> Result<CardLookupServiceClient<Channel>, tonic::transport::Error> {
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(trusted.pem()))
        .domain_name("localhost");
    if let Some((cert, key)) = identity {
        tls = tls.identity(Identity::from_pem(cert, key));
    }
    let channel = Channel::from_shared(format!("https://{}", server.grpc_addr))
        .unwrap()
        .tls_config(tls)?
        .local_address(from)
        .connect_timeout(PATIENCE)
        .timeout(PATIENCE)
        .connect()
        .await?;
    Ok(CardLookupServiceClient::new(channel))
}

async fn validate(
    client: &mut CardLookupServiceClient<Channel>,
) -> Result<pb::ValidateResponse, tonic::Status> {
    client
        .validate(pb::ValidateRequest {
            number: "4111111111111111".into(),
        })
        .await
        .map(tonic::Response::into_inner)
}

#[tokio::test]
async fn tls_serves_and_plaintext_is_refused() {
    let dir = TempDir::new("tls");
    let authority = ca("Test CA");
    let server = start(server_files(&dir, &authority, None), "").await;

    let mut client = connect(&server, &authority, None).await.unwrap();
    assert!(validate(&mut client).await.unwrap().valid);

    let mut plain = server.client().await;
    assert!(validate(&mut plain).await.is_err(), "plaintext got through");
    let stranger = ca("Someone Else");
    assert!(
        connect(&server, &stranger, None).await.is_err(),
        "an untrusted server certificate was accepted"
    );
}

#[tokio::test]
async fn mutual_tls_lets_in_only_clients_of_the_client_ca() {
    let dir = TempDir::new("mtls");
    let authority = ca("Test CA");
    let clients = ca("Client CA");
    let server = start(server_files(&dir, &authority, Some(&clients)), "").await;

    let mut member = connect(&server, &authority, Some(leaf(&clients, "checkout", true)))
        .await
        .unwrap();
    assert!(validate(&mut member).await.unwrap().valid);

    for identity in [None, Some(leaf(&ca("Rogue CA"), "checkout", true))] {
        let refused = match connect(&server, &authority, identity).await {
            Err(_) => true,
            Ok(mut client) => validate(&mut client).await.is_err(),
        };
        assert!(
            refused,
            "a client without a certificate of the client CA got through"
        );
    }
}

/// Under mutual TLS, the health port answers a plaintext client without a certificate, as a
/// kubelet gRPC probe is, with the main port's status (the service's name is known there:
/// one reporter), while the main port refuses that client. It serves nothing else.
#[tokio::test]
async fn the_health_port_answers_probes_without_a_certificate_and_serves_only_health() {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

    let dir = TempDir::new("mtls-health");
    let authority = ca("Test CA");
    let clients = ca("Client CA");
    let server = start(server_files(&dir, &authority, Some(&clients)), "").await;
    let service = card_lookup::proto::cardlookup::v1::card_lookup_service_server::SERVICE_NAME;

    let probe = Channel::from_shared(format!("http://{}", server.health_addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = HealthClient::new(probe.clone());
    for name in ["", service] {
        let answer = health
            .check(HealthCheckRequest {
                service: name.to_owned(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(answer.status(), ServingStatus::Serving, "{name:?}");
    }

    let mut main_port = HealthClient::new(
        Channel::from_shared(format!("http://{}", server.grpc_addr))
            .unwrap()
            .connect_timeout(PATIENCE)
            .timeout(PATIENCE)
            .connect_lazy(),
    );
    assert!(
        main_port
            .check(HealthCheckRequest::default())
            .await
            .is_err(),
        "the mTLS port answered a plaintext probe"
    );

    let refused = validate(&mut CardLookupServiceClient::new(probe.clone()))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unimplemented, "{refused:?}");
    let mut reflection =
        tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient::new(probe);
    let refused = reflection
        .server_reflection_info(tokio_stream::iter([
            tonic_reflection::pb::v1::ServerReflectionRequest::default(),
        ]))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unimplemented, "{refused:?}");
}

#[tokio::test]
async fn the_client_certificate_is_the_rate_limit_identity() {
    let dir = TempDir::new("mtls-rate");
    let authority = ca("Test CA");
    let clients = ca("Client CA");
    let server = start(
        server_files(&dir, &authority, Some(&clients)),
        "terminals=1/s:pos-terminal",
    )
    .await;
    let mut terminal = connect(
        &server,
        &authority,
        Some(leaf(&clients, "pos-terminal", true)),
    )
    .await
    .unwrap();
    assert!(validate(&mut terminal).await.is_ok());
    let status = validate(&mut terminal).await.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted);
    assert!(
        status.message().contains("`terminals`"),
        "{}",
        status.message()
    );
    assert!(status.metadata().get("grpc-retry-pushback-ms").is_some());

    // Another certificate is another client, not in the class.
    let mut other = connect(
        &server,
        &authority,
        Some(leaf(&clients, "back-office", true)),
    )
    .await
    .unwrap();
    for _ in 0..3 {
        assert!(validate(&mut other).await.is_ok());
    }
}

#[tokio::test]
async fn certificates_are_reloaded_when_their_files_change() {
    let dir = TempDir::new("tls-reload");
    let first = ca("First CA");
    let files = server_files(&dir, &first, None);
    let server = start(files.clone(), "").await;
    assert!(connect(&server, &first, None).await.is_ok());

    let second = ca("Second CA");
    let (cert, key) = leaf(&second, "card-lookup", false);
    std::fs::write(&files.key, key).unwrap();
    std::fs::write(&files.cert, cert).unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Ok(mut client) = connect(&server, &second, None).await
            && validate(&mut client).await.is_ok()
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the new certificate was not served"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A TLS connection to the server whose handshake is done, trusting `ca`, that has sent
/// nothing inside it.
async fn tls_handshake_only(
    server: &TestServer,
    trusted: &Ca,
) -> tokio_rustls::client::TlsStream<TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(trusted.pem().as_bytes()).unwrap())
        .unwrap();
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let tcp = TcpStream::connect(server.grpc_addr).await.unwrap();
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect("localhost".try_into().unwrap(), tcp)
        .await
        .expect("the handshake succeeds")
}

#[tokio::test]
async fn tls_connections_that_send_nothing_are_closed_after_the_preface_timeout() {
    let dir = TempDir::new("tls-silent-one");
    let authority = ca("Test CA");
    let config = Config {
        connection_preface_timeout: Duration::from_millis(300),
        ..Config::default()
    };
    let server = start_configured(server_files(&dir, &authority, None), "", config).await;
    // No ClientHello.
    let mut silent = TcpStream::connect(server.grpc_addr).await.unwrap();
    assert!(
        closed_by_server(&mut silent).await,
        "a connection without a ClientHello stayed open"
    );
    let metrics = server.scrape().await;
    assert!(
        metrics
            .lines()
            .any(|line| line
                .starts_with(r#"cardlookup_tls_handshake_failures_total{reason="timeout"}"#)),
        "{metrics}"
    );
    // A handshake, then no HTTP/2 preface.
    let mut quiet = tls_handshake_only(&server, &authority).await;
    let mut buf = [0; 256];
    let closed = tokio::time::timeout(PATIENCE, async {
        while quiet.read(&mut buf).await.is_ok_and(|n| n > 0) {}
    })
    .await;
    assert!(
        closed.is_ok(),
        "a TLS connection without an HTTP/2 preface stayed open"
    );
}

#[tokio::test]
async fn silent_connections_do_not_keep_tls_clients_out() {
    let dir = TempDir::new("tls-silent-many");
    let authority = ca("Test CA");
    let server = start(server_files(&dir, &authority, None), "").await;
    // More connections that never send a ClientHello than handshakes the server keeps in
    // progress, from one address.
    let mut silent = Vec::new();
    for _ in 0..1100 {
        silent.push(TcpStream::connect(server.grpc_addr).await.unwrap());
    }
    // Clients from another address connect and are answered. The bound is generous for five
    // connections on loopback, and shorter than the handshake timeout (10 s) for which a
    // silent connection once held one of the server's handshake places.
    let from = Some(IpAddr::from([127, 0, 0, 2]));
    let clients = async {
        for _ in 0..5 {
            let mut client = connect_from(&server, &authority, None, from)
                .await
                .expect("a TLS client connects past the silent connections");
            assert!(validate(&mut client).await.unwrap().valid);
        }
    };
    assert!(
        tokio::time::timeout(Duration::from_secs(5), clients)
            .await
            .is_ok(),
        "TLS clients waited behind silent connections"
    );
    drop(silent);
}

/// A GET over HTTP/1.1 on the HTTP/JSON port under TLS (ALPN `http/1.1`), with a client
/// certificate when given: the answer's status, or the error that ended the connection.
async fn https_get(
    server: &TestServer,
    trusted: &Ca,
    identity: Option<(String, String)>,
    path: &str,
) -> Result<u16, String> {
    use http_body_util::{BodyExt, Empty};
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(trusted.pem().as_bytes()).unwrap())
        .unwrap();
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots);
    let mut config = match identity {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => builder
            .with_client_auth_cert(
                vec![CertificateDer::from_pem_slice(cert.as_bytes()).unwrap()],
                rustls::pki_types::PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap(),
            )
            .unwrap(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let tcp = TcpStream::connect(server.http_addr).await.unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect("localhost".try_into().unwrap(), tcp)
        .await
        .map_err(|e| e.to_string())?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
            .await
            .map_err(|e| e.to_string())?;
    tokio::spawn(connection);
    let request = http::Request::get(path)
        .header("host", "localhost")
        .body(Empty::<hyper::body::Bytes>::new())
        .unwrap();
    let answer = sender
        .send_request(request)
        .await
        .map_err(|e| e.to_string())?;
    let status = answer.status().as_u16();
    answer
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?;
    Ok(status)
}

#[tokio::test]
async fn the_http_port_takes_the_grpc_ports_mutual_tls_and_certificate_identity() {
    let dir = TempDir::new("mtls-http");
    let authority = ca("Test CA");
    let clients = ca("Client CA");
    let server = start(
        server_files(&dir, &authority, Some(&clients)),
        "terminals=1/m:pos-terminal",
    )
    .await;
    // No certificate, or plaintext: no answer.
    assert!(
        https_get(&server, &authority, None, "/45710012")
            .await
            .is_err()
    );
    let (status, _) = crate::common::http_get(server.http_addr, "/45710012").await;
    assert!(!status.contains("200"), "{status}");
    // The certificate is the client: its class's rate applies, over HTTP as over gRPC.
    let terminal = || Some(leaf(&clients, "pos-terminal", true));
    assert_eq!(
        https_get(&server, &authority, terminal(), "/45710012").await,
        Ok(200)
    );
    assert_eq!(
        https_get(&server, &authority, terminal(), "/45710012").await,
        Ok(429)
    );
    let mut grpc = connect(&server, &authority, terminal()).await.unwrap();
    assert_eq!(
        validate(&mut grpc).await.unwrap_err().code(),
        Code::ResourceExhausted
    );
    let other = Some(leaf(&clients, "back-office", true));
    assert_eq!(
        https_get(&server, &authority, other, "/45710012").await,
        Ok(200)
    );
}
