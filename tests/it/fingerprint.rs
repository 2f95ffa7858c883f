//! Card fingerprints (`--fingerprint-key-file`) over gRPC: Validate, MaskCard and Inspect give
//! the same fingerprint for a number, every server with the same key gives it, another key
//! gives another, and it is the key id and HMAC-SHA-256 of the digits under the key.

use std::fmt::Write as _;
use std::sync::Arc;

use crate::common::{EMBEDDED, TempDir, TestServer, inspect_once, pb};
use card_lookup::config::{Args, Config};
use clap::Parser;
use hmac::{Hmac, Mac};
use sha2::Sha256;

pub(crate) const SECRET_A: &str =
    "3c1f7e2a9b8d4c6e5f0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60";
const SECRET_B: &str = "c0ffeec0ffeec0ffeec0ffeec0ffeec0ffeec0ffeec0ffeec0ffeec0ffeec0ff";

/// A server's configuration with `keys` as its key file.
fn config_with_keys(dir: &TempDir, name: &str, keys: &str) -> Config {
    let path = dir.write(name, keys);
    Config::try_from(Args::parse_from([
        "card-lookup",
        "--fingerprint-key-file",
        path.to_str().unwrap(),
    ]))
    .expect("a valid key file")
}

/// What the fingerprint of `digits` must be: `ID:` and the HMAC in lower-case hex.
pub(crate) fn expected(id: &str, secret_hex: &str, digits: &str) -> String {
    let secret: Vec<u8> = (0..secret_hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&secret_hex[i..i + 2], 16).unwrap())
        .collect();
    let mut mac = Hmac::<Sha256>::new_from_slice(&secret).unwrap();
    mac.update(digits.as_bytes());
    let tag = mac
        .finalize()
        .into_bytes()
        .iter()
        .fold(String::new(), |mut out, b| {
            let _ = write!(out, "{b:02x}");
            out
        });
    format!("{id}:{tag}")
}

fn thrice(fingerprint: &str) -> [String; 3] {
    [(); 3].map(|()| fingerprint.to_owned())
}

/// The fingerprints Validate, MaskCard and Inspect give `number`.
async fn fingerprints(server: &TestServer, number: &str) -> [String; 3] {
    let mut client = server.client().await;
    let validated = client
        .validate(pb::ValidateRequest {
            number: number.to_owned(),
        })
        .await
        .unwrap()
        .into_inner();
    let masked = client
        .mask_card(pb::MaskCardRequest {
            number: number.to_owned(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let inspected = inspect_once(&mut client, &[number], pb::BinAnswerLayout::PerResult).await;
    let validation = inspected.results[0].validation.clone().unwrap();
    [
        validated.fingerprint,
        masked.fingerprint,
        validation.fingerprint,
    ]
}

#[tokio::test]
async fn equal_under_one_key_on_every_server_and_different_under_another() {
    let dir = TempDir::new("fingerprint");
    let rotated = format!("# newest first\nk2026 {SECRET_A}\nk2025 {SECRET_B}\n");
    let replica_1 = TestServer::start_configured(
        config_with_keys(&dir, "a1", &rotated),
        Arc::clone(&EMBEDDED),
    )
    .await;
    let replica_2 = TestServer::start_configured(
        config_with_keys(&dir, "a2", &format!("k2026 {SECRET_A}\n")),
        Arc::clone(&EMBEDDED),
    )
    .await;
    let other_key = TestServer::start_configured(
        config_with_keys(&dir, "b", &format!("k2025 {SECRET_B}\n")),
        Arc::clone(&EMBEDDED),
    )
    .await;

    let number = "4242 4242-4242 4242";
    let want = expected("k2026", SECRET_A, "4242424242424242");
    for server in [&replica_1, &replica_2] {
        assert_eq!(fingerprints(server, number).await, thrice(&want));
    }
    let under_b = expected("k2025", SECRET_B, "4242424242424242");
    assert_eq!(fingerprints(&other_key, number).await, thrice(&under_b));
    assert_ne!(want[6..], under_b[6..]);
    // Another number, another fingerprint; a Luhn failure is fingerprinted all the same.
    let [other, ..] = fingerprints(&replica_1, "4242424242424241").await;
    assert_eq!(other, expected("k2026", SECRET_A, "4242424242424241"));
    assert_ne!(other, want);
    for server in [replica_1, replica_2, other_key] {
        server.stop().await.unwrap();
    }
}

#[tokio::test]
async fn none_without_a_key_or_for_a_partial_number() {
    let dir = TempDir::new("fingerprint-none");
    let keyed = TestServer::start_configured(
        config_with_keys(&dir, "a", &format!("k1 {SECRET_A}\n")),
        Arc::clone(&EMBEDDED),
    )
    .await;
    let mut client = keyed.client().await;
    for partial in ["42424242424", "4242", "", "4242x", "42424242424242424242"] {
        let answer = client
            .validate(pb::ValidateRequest {
                number: partial.to_owned(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(answer.fingerprint, "", "{partial:?}");
    }
    // 12 digits: the shortest whole number.
    let [twelve, ..] = fingerprints(&keyed, "500000000000").await;
    assert_eq!(twelve, expected("k1", SECRET_A, "500000000000"));

    let plain = TestServer::start().await;
    assert_eq!(fingerprints(&plain, "4242424242424242").await, thrice(""));
    keyed.stop().await.unwrap();
    plain.stop().await.unwrap();
}
