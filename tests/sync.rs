//! `card-lookup data sync` against real origins started here: HTTP servers that answer
//! conditional requests and ones that do not, file:// URLs, origins that cut answers short,
//! never answer or are down, manifests whose files are corrupt, mis-hashed or fail their
//! checks; the exit codes of `--once` with the real binary; and a service serving what the
//! updater writes while clients keep calling.

#[path = "it/common/mod.rs"]
mod common;
#[path = "sync/origin.rs"]
mod origin;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use card_lookup::bins::{BinStore, DataSource, LoadOptions};
use card_lookup::sync::{
    ApplyError, FetchError, Limits, Location, SyncConfig, SyncError, Updater, fetch::Fetched,
};
use common::{TempDir, TestServer, pb};
use origin::{Mode, Origin, sha256};

/// A table whose every row names `bank`, so that what is served shows which table it is.
fn table(bank: &str) -> String {
    use std::fmt::Write as _;
    (622_800..622_900).fold(
        "BIN,BankName,CardType,CardOrg\n".to_owned(),
        |mut table, bin| {
            let _ = writeln!(table, "{bin},{bank},借记卡,银联");
            table
        },
    )
}

/// A table with a row the service refuses.
fn bad_table() -> String {
    let mut table = table("BAD BANK");
    table.push_str("62x999,BAD BANK,借记卡,银联\n");
    table
}

/// A manifest naming `(name, url, bytes)` files, with their digests.
fn manifest(files: &[(&str, &str, &str)]) -> String {
    let entries: Vec<String> = files
        .iter()
        .map(|(name, url, bytes)| {
            format!(
                r#"{{"name": "{name}", "url": "{url}", "sha256": "{}"}}"#,
                sha256(bytes.as_bytes())
            )
        })
        .collect();
    format!(
        r#"{{"published_at": "2026-12-01T12:00:00Z", "files": [{}]}}"#,
        entries.join(", ")
    )
}

/// Publishes `bank`'s table on `origin` as `bins-<tag>.csv` with a manifest naming it
/// `bins.csv`.
fn publish(origin: &Origin, tag: &str, bank: &str) {
    let url = format!("bins-{tag}.csv");
    let bytes = table(bank);
    origin.put(&url, bytes.clone());
    origin.put("manifest.json", manifest(&[("bins.csv", &url, &bytes)]));
}

fn config(source: &str, dest: &Path) -> SyncConfig {
    SyncConfig {
        source: Location::parse(source).unwrap(),
        dest: dest.to_path_buf(),
        interval: Duration::from_millis(200),
        limits: Limits {
            step: Duration::from_millis(500),
            total: Duration::from_secs(5),
        },
        max_file_bytes: 1 << 20,
        ca_file: None,
    }
}

/// The poll, or a failure if it hangs (the limits above end every poll within seconds).
async fn poll(updater: &mut Updater) -> Result<card_lookup::sync::Polled, SyncError> {
    tokio::time::timeout(Duration::from_secs(30), updater.poll())
        .await
        .expect("a poll ends within its limits")
}

fn read(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).unwrap()
}

/// What is in the directory besides the served set's entries: nothing, after any poll.
fn litter(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with(".staging") || name.starts_with(".link"))
        .collect();
    let sets = std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with(".set-")
        })
        .count();
    if sets > 1 {
        names.push(format!("{sets} sets"));
    }
    names
}

#[tokio::test]
async fn an_unchanged_conditional_origin_costs_a_304() {
    let origin = Origin::start(Mode::Conditional).await;
    publish(&origin, "1", "FIRST BANK");
    let dir = TempDir::new("sync-conditional");
    let mut updater = Updater::new(config(&origin.url("manifest.json"), &dir.0)).unwrap();

    assert!(matches!(
        poll(&mut updater).await.unwrap(),
        card_lookup::sync::Polled::Applied { files: 1 }
    ));
    assert_eq!(read(&dir.0, "bins.csv"), table("FIRST BANK"));
    assert_eq!(
        poll(&mut updater).await.unwrap(),
        card_lookup::sync::Polled::NotModified
    );
    assert_eq!(origin.not_modified.load(Ordering::Relaxed), 1);
    assert_eq!(origin.requests("bins-1.csv"), 1);

    publish(&origin, "2", "SECOND BANK");
    assert!(matches!(
        poll(&mut updater).await.unwrap(),
        card_lookup::sync::Polled::Applied { files: 1 }
    ));
    assert_eq!(read(&dir.0, "bins.csv"), table("SECOND BANK"));
    assert_eq!(
        std::fs::read_link(dir.0.join("bins.csv")).unwrap(),
        Path::new("..data/bins.csv")
    );
    assert!(litter(&dir.0).is_empty(), "{:?}", litter(&dir.0));
}

#[tokio::test]
async fn a_plain_origin_is_polled_by_comparing_the_manifest() {
    let origin = Origin::start(Mode::Plain).await;
    publish(&origin, "1", "PLAIN BANK");
    let dir = TempDir::new("sync-plain");
    let mut updater = Updater::new(config(&origin.url("manifest.json"), &dir.0)).unwrap();
    poll(&mut updater).await.unwrap();
    assert_eq!(
        poll(&mut updater).await.unwrap(),
        card_lookup::sync::Polled::Unchanged
    );
    assert_eq!(origin.requests("manifest.json"), 2);
    assert_eq!(
        origin.requests("bins-1.csv"),
        1,
        "the table is not fetched again"
    );
    assert_eq!(origin.not_modified.load(Ordering::Relaxed), 0);

    // A new updater on the same directory (a restarted sidecar) takes what is served as
    // applied: nothing is downloaded again.
    let mut restarted = Updater::new(config(&origin.url("manifest.json"), &dir.0)).unwrap();
    assert_eq!(
        poll(&mut restarted).await.unwrap(),
        card_lookup::sync::Polled::Unchanged
    );
    assert_eq!(origin.requests("bins-1.csv"), 1);
}

/// A Last-Modified in the second of the answer cannot tell a change made later in that second:
/// it is not used, so a manifest rewritten at once is still seen.
#[tokio::test]
async fn a_last_modified_of_the_answers_own_second_is_not_trusted() {
    let origin = Origin::start(Mode::SameSecond).await;
    publish(&origin, "1", "FIRST BANK");
    let dir = TempDir::new("sync-same-second");
    let mut updater = Updater::new(config(&origin.url("manifest.json"), &dir.0)).unwrap();
    poll(&mut updater).await.unwrap();
    publish(&origin, "2", "SECOND BANK");
    assert!(matches!(
        poll(&mut updater).await.unwrap(),
        card_lookup::sync::Polled::Applied { files: 1 }
    ));
    assert_eq!(read(&dir.0, "bins.csv"), table("SECOND BANK"));
    assert_eq!(origin.not_modified.load(Ordering::Relaxed), 0);
}

#[tokio::test]
async fn file_urls_and_absolute_file_urls_are_read() {
    let published = TempDir::new("sync-file-origin");
    let bytes = table("FILE BANK");
    published.write("bins-1.csv", &bytes);
    let other = TempDir::new("sync-file-other");
    let extra = table("OTHER BANK").replace("622", "623");
    let extra_path = other.write("extra.csv", &extra);
    let manifest_path = published.write(
        "manifest.json",
        &manifest(&[
            ("bins.csv", "bins-1.csv", &bytes),
            (
                "extra.csv",
                &format!("file://{}", extra_path.display()),
                &extra,
            ),
        ]),
    );
    let dir = TempDir::new("sync-file-dest");
    let source = format!("file://{}", manifest_path.display());
    let mut updater = Updater::new(config(&source, &dir.0)).unwrap();
    assert!(matches!(
        poll(&mut updater).await.unwrap(),
        card_lookup::sync::Polled::Applied { files: 2 }
    ));
    assert_eq!(read(&dir.0, "bins.csv"), bytes);
    assert_eq!(read(&dir.0, "extra.csv"), extra);
    // An unchanged file (its time and length) is not read again.
    assert_eq!(
        poll(&mut updater).await.unwrap(),
        card_lookup::sync::Polled::NotModified
    );
}

/// A poll that must fail, with the directory still serving `bank`'s table.
async fn fails_keeping(updater: &mut Updater, dir: &Path, bank: &str) -> SyncError {
    let error = poll(updater).await.unwrap_err();
    assert_eq!(read(dir, "bins.csv"), table(bank), "{error}");
    assert!(litter(dir).is_empty(), "{:?}", litter(dir));
    error
}

#[tokio::test]
async fn a_wrong_hash_leaves_the_last_good_set() {
    let origin = Origin::start(Mode::Conditional).await;
    publish(&origin, "1", "GOOD BANK");
    let dir = TempDir::new("sync-hash");
    let mut updater = Updater::new(config(&origin.url("manifest.json"), &dir.0)).unwrap();
    poll(&mut updater).await.unwrap();
    let served_manifest = read(&dir.0, ".manifest.json");

    // The bytes served are not the ones the manifest was written for: damaged at the origin
    // or on the way.
    let promised = table("NEW BANK");
    origin.put("bins-2.csv", table("CORRUPTED BANK"));
    origin.put(
        "manifest.json",
        manifest(&[("bins.csv", "bins-2.csv", &promised)]),
    );
    let error = fails_keeping(&mut updater, &dir.0, "GOOD BANK").await;
    assert!(
        matches!(
            &error,
            SyncError::Apply {
                error: ApplyError::Digest { .. },
                ..
            }
        ),
        "{error}"
    );
    assert!(
        error.to_string().contains("bins.csv: SHA-256 is"),
        "{error}"
    );
    assert_eq!(read(&dir.0, ".manifest.json"), served_manifest);
    assert_eq!(error.reason(), "digest");

    // Damage may be the network's: the next poll downloads again, and takes the right bytes.
    origin.put("bins-2.csv", promised.clone());
    poll(&mut updater).await.unwrap();
    assert_eq!(origin.requests("bins-2.csv"), 2);
    assert_eq!(read(&dir.0, "bins.csv"), promised);
}

#[tokio::test]
async fn a_download_cut_short_leaves_the_last_good_set() {
    let origin = Origin::start(Mode::Plain).await;
    publish(&origin, "1", "GOOD BANK");
    let dir = TempDir::new("sync-cut");
    let mut updater = Updater::new(config(&origin.url("manifest.json"), &dir.0)).unwrap();
    poll(&mut updater).await.unwrap();

    let cut = origin::cut_short(100_000, b"BIN,BankName,CardType,CardOrg\n6228").await;
    let bytes = table("NEW BANK");
    origin.put(
        "manifest.json",
        manifest(&[("bins.csv", &format!("http://{cut}/bins-2.csv"), &bytes)]),
    );
    let error = fails_keeping(&mut updater, &dir.0, "GOOD BANK").await;
    assert_eq!(error.reason(), "download", "{error}");
    // A download failure may be the network's: the next poll tries again.
    let again = fails_keeping(&mut updater, &dir.0, "GOOD BANK").await;
    assert_eq!(again.reason(), "download", "{again}");
}

#[tokio::test]
async fn a_manifest_naming_a_file_that_fails_its_checks_is_not_applied() {
    let origin = Origin::start(Mode::Conditional).await;
    publish(&origin, "1", "GOOD BANK");
    let dir = TempDir::new("sync-check");
    let mut updater = Updater::new(config(&origin.url("manifest.json"), &dir.0)).unwrap();
    poll(&mut updater).await.unwrap();

    let bad = bad_table();
    origin.put("bins-2.csv", bad.clone());
    origin.put(
        "manifest.json",
        manifest(&[("bins.csv", "bins-2.csv", &bad)]),
    );
    let error = fails_keeping(&mut updater, &dir.0, "GOOD BANK").await;
    assert_eq!(error.reason(), "check", "{error}");
    assert!(
        error
            .to_string()
            .contains("line 102: BIN must be digits only"),
        "{error}"
    );
    // The same manifest would fail the same way: it is not downloaded again.
    let again = fails_keeping(&mut updater, &dir.0, "GOOD BANK").await;
    assert!(matches!(again, SyncError::StillRefused { .. }), "{again}");
    assert_eq!(origin.requests("bins-2.csv"), 1);
}

#[tokio::test]
async fn a_bad_manifest_and_an_oversized_file_are_refused() {
    let origin = Origin::start(Mode::Plain).await;
    publish(&origin, "1", "GOOD BANK");
    let dir = TempDir::new("sync-refused");
    let mut updater = Updater::new(config(&origin.url("manifest.json"), &dir.0)).unwrap();
    poll(&mut updater).await.unwrap();

    origin.put(
        "manifest.json",
        r#"{"files": [{"name": "../x", "url": "u", "sha256": "00"}]}"#,
    );
    let error = fails_keeping(&mut updater, &dir.0, "GOOD BANK").await;
    assert_eq!(error.reason(), "manifest", "{error}");

    let huge = table("HUGE BANK").repeat(400);
    origin.put("bins-huge.csv", huge.clone());
    origin.put(
        "manifest.json",
        manifest(&[("bins.csv", "bins-huge.csv", &huge)]),
    );
    let error = fails_keeping(&mut updater, &dir.0, "GOOD BANK").await;
    assert!(
        matches!(
            &error,
            SyncError::Apply {
                error: ApplyError::Download {
                    error: FetchError::TooLarge { .. },
                    ..
                },
                ..
            }
        ),
        "{error}"
    );
}

#[tokio::test]
async fn an_origin_that_is_down_or_silent_fails_the_poll_within_its_limits() {
    let dir = TempDir::new("sync-down");
    let down = origin::down().await;
    let mut updater =
        Updater::new(config(&format!("http://{down}/manifest.json"), &dir.0)).unwrap();
    let error = poll(&mut updater).await.unwrap_err();
    assert_eq!(error.reason(), "manifest_download", "{error}");
    assert!(error.to_string().contains("connecting"), "{error}");

    let silent = origin::silent().await;
    let mut updater =
        Updater::new(config(&format!("http://{silent}/manifest.json"), &dir.0)).unwrap();
    let error = poll(&mut updater).await.unwrap_err();
    assert!(
        matches!(
            &error,
            SyncError::ManifestDownload(FetchError::Timeout {
                what: "the answer's headers",
                ..
            })
        ),
        "{error}"
    );
    assert!(!dir.0.join("bins.csv").exists());
}

#[tokio::test]
async fn the_files_of_a_manifest_are_applied_together_or_not_at_all() {
    let origin = Origin::start(Mode::Conditional).await;
    let dir = TempDir::new("sync-two");
    let (a1, b1) = (table("A ONE"), table("B ONE").replace("6228", "6229"));
    origin.put("a1.csv", a1.clone());
    origin.put("b1.csv", b1.clone());
    origin.put(
        "manifest.json",
        manifest(&[("a.csv", "a1.csv", &a1), ("b.csv", "b1.csv", &b1)]),
    );
    let mut updater = Updater::new(config(&origin.url("manifest.json"), &dir.0)).unwrap();
    poll(&mut updater).await.unwrap();
    assert_eq!(
        (read(&dir.0, "a.csv"), read(&dir.0, "b.csv")),
        (a1.clone(), b1.clone())
    );

    // The second file of the new set fails its checks: the first is not switched either.
    let (a2, bad) = (table("A TWO"), bad_table());
    origin.put("a2.csv", a2.clone());
    origin.put("bad.csv", bad.clone());
    origin.put(
        "manifest.json",
        manifest(&[("a.csv", "a2.csv", &a2), ("b.csv", "bad.csv", &bad)]),
    );
    poll(&mut updater).await.unwrap_err();
    assert_eq!(
        (read(&dir.0, "a.csv"), read(&dir.0, "b.csv")),
        (a1, b1.clone())
    );

    // Both good: both switched, by one rename of `..data`; the unchanged file is linked from
    // the old set, not downloaded again.
    origin.put(
        "manifest.json",
        manifest(&[("a.csv", "a2.csv", &a2), ("b.csv", "b1.csv", &b1)]),
    );
    poll(&mut updater).await.unwrap();
    assert_eq!((read(&dir.0, "a.csv"), read(&dir.0, "b.csv")), (a2, b1));
    assert_eq!(origin.requests("b1.csv"), 1);
    assert!(litter(&dir.0).is_empty(), "{:?}", litter(&dir.0));
}

#[tokio::test]
async fn a_file_url_that_does_not_change_is_not_modified_and_a_missing_one_fails() {
    let dir = TempDir::new("sync-file-missing");
    let source = format!("file://{}/nothing/manifest.json", dir.0.display());
    let mut updater = Updater::new(config(&source, &dir.0.join("dest"))).unwrap();
    let error = poll(&mut updater).await.unwrap_err();
    assert_eq!(error.reason(), "manifest_download", "{error}");
    // The client itself: an unchanged file, asked with its validators, is not read.
    let client = card_lookup::sync::Client::new(None, config(&source, &dir.0).limits).unwrap();
    let path = dir.write("m.json", "{}");
    let location = Location::File(path);
    let mut sink = |_: &[u8]| Ok(());
    let Fetched::Body { validators, .. } =
        client.get(&location, None, 100, &mut sink).await.unwrap()
    else {
        panic!("a first read has a body")
    };
    assert_eq!(
        client
            .get(&location, Some(&validators), 100, &mut sink)
            .await
            .unwrap(),
        Fetched::NotModified
    );
}

/// Runs the binary's `data sync` with `args`; its exit code and standard error.
fn sync_binary(args: &[&str]) -> (Option<i32>, String) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_card-lookup"))
        .args(["data", "sync"])
        .args(args)
        .output()
        .expect("the binary runs");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn once_exits_0_when_the_directory_serves_the_set_1_when_not_2_for_bad_flags() {
    let origin = Origin::start(Mode::Conditional).await;
    publish(&origin, "1", "ONCE BANK");
    let dir = TempDir::new("sync-once");
    let dest = dir.0.join("data");
    let dest_arg = dest.display().to_string();
    let url = origin.url("manifest.json");
    let run = |args: Vec<String>| {
        tokio::task::spawn_blocking(move || {
            sync_binary(&args.iter().map(String::as_str).collect::<Vec<_>>())
        })
    };
    let once = |source: &str| {
        vec![
            "--once".to_owned(),
            "--timeout".into(),
            "1s".into(),
            "--source".into(),
            source.to_owned(),
            "--dest".into(),
            dest_arg.clone(),
        ]
    };

    let (code, stderr) = run(once(&url)).await.unwrap();
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(read(&dest, "bins.csv"), table("ONCE BANK"));
    // Run again (a restarted init container): the set is there, exit 0, nothing downloaded.
    let (code, stderr) = run(once(&url)).await.unwrap();
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(origin.requests("bins-1.csv"), 1);

    let bad = bad_table();
    origin.put("bins-2.csv", bad.clone());
    origin.put(
        "manifest.json",
        manifest(&[("bins.csv", "bins-2.csv", &bad)]),
    );
    let (code, stderr) = run(once(&url)).await.unwrap();
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("line 102"), "{stderr}");
    assert_eq!(read(&dest, "bins.csv"), table("ONCE BANK"));

    let down = origin::down().await;
    let (code, stderr) = run(once(&format!("http://{down}/manifest.json")))
        .await
        .unwrap();
    assert_eq!(code, Some(1), "{stderr}");

    let (code, stderr) = run(once("ftp://example/manifest.json")).await.unwrap();
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("--source"), "{stderr}");
}

/// Calls LookupBin in a loop until stopped, counting the calls and the failed ones.
fn keep_calling(server: &TestServer, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<(u64, u64)> {
    let url = server.url();
    tokio::spawn(async move {
        let mut client = pb::card_lookup_service_client::CardLookupServiceClient::connect(url)
            .await
            .unwrap();
        let (calls, failed) = (AtomicU64::new(0), AtomicU64::new(0));
        while !stop.load(Ordering::Relaxed) {
            let answer = client
                .lookup_bin(pb::LookupBinRequest {
                    number: "6228480000000000".into(),
                })
                .await;
            calls.fetch_add(1, Ordering::Relaxed);
            if answer.is_err() {
                failed.fetch_add(1, Ordering::Relaxed);
            }
        }
        (calls.into_inner(), failed.into_inner())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_serves_what_the_updater_applies_with_no_failed_call() {
    let origin = Origin::start(Mode::Conditional).await;
    publish(&origin, "1", "FIRST BANK");
    let dir = TempDir::new("sync-serve");
    let mut updater = Updater::new(config(&origin.url("manifest.json"), &dir.0)).unwrap();
    poll(&mut updater).await.unwrap();
    let store = Arc::new(
        BinStore::load(
            vec![DataSource::File(dir.0.join("bins.csv"))],
            LoadOptions::default(),
        )
        .unwrap(),
    );
    let server = TestServer::start_with(store).await;
    let stop = Arc::new(AtomicBool::new(false));
    let caller = keep_calling(&server, Arc::clone(&stop));
    let updating = tokio::spawn(updater.run(tokio_util::sync::CancellationToken::new()));

    let mut client = server.client().await;
    for (tag, bank) in [("2", "SECOND BANK"), ("3", "THIRD BANK")] {
        publish(&origin, tag, bank);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let answer = client
                .lookup_bin(pb::LookupBinRequest {
                    number: "6228480000000000".into(),
                })
                .await
                .unwrap()
                .into_inner();
            if answer.issuer.is_some_and(|issuer| issuer.name == bank) {
                break;
            }
            assert!(Instant::now() < deadline, "{bank} not served within 20 s");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    stop.store(true, Ordering::Relaxed);
    updating.abort();
    let (calls, failed) = caller.await.unwrap();
    assert!(calls > 0);
    assert_eq!(failed, 0, "{failed} of {calls} calls failed");

    // The service says which bytes it serves, by the digest the manifest gave, and when they
    // were published.
    let digest = sha256(table("THIRD BANK").as_bytes());
    let info = server
        .admin()
        .await
        .get_index_info(common::admin_pb::GetIndexInfoRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(info.sources[0].sha256, digest);
    assert_eq!(info.sources[0].published_at_unix_ms, 1_796_126_400_000);
    let scrape = server.scrape().await;
    for series in [
        format!(r#"cardlookup_data_source_info{{source="bins.csv",sha256="{digest}"}} 1"#),
        format!(
            r#"cardlookup_data_source_info{{source="bins.csv",sha256="{}"}} 0"#,
            sha256(table("FIRST BANK").as_bytes())
        ),
        r#"cardlookup_data_published_timestamp_seconds{source="bins.csv"} 1796126400"#.to_owned(),
    ] {
        assert!(scrape.contains(&series), "no {series} in\n{scrape}");
    }
}

#[tokio::test]
async fn an_https_origin_is_trusted_through_the_ca_file_only() {
    use rustls::pki_types::pem::PemObject as _;
    let ca = common::pki::ca("sync test CA");
    let (cert, key) = common::pki::leaf(&ca, "origin", false);
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![rustls::pki_types::CertificateDer::from_pem_slice(cert.as_bytes()).unwrap()],
        rustls::pki_types::PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap(),
    )
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let origin = Origin::start_tls(Mode::Conditional, Some(acceptor)).await;
    publish(&origin, "1", "TLS BANK");
    let dir = TempDir::new("sync-https");
    let ca_file = dir.write("ca.pem", &ca.pem());

    // Without the CA, the handshake is refused and nothing is written.
    let dest = dir.0.join("data");
    let mut untrusting =
        Updater::new(config_for(&origin.https_url("manifest.json"), &dest, None)).unwrap();
    let error = poll(&mut untrusting).await.unwrap_err();
    assert!(error.to_string().contains("TLS handshake"), "{error}");
    assert!(!dest.join("bins.csv").exists());

    let mut updater = Updater::new(config_for(
        &origin.https_url("manifest.json"),
        &dest,
        Some(&ca_file),
    ))
    .unwrap();
    poll(&mut updater).await.unwrap();
    assert_eq!(read(&dest, "bins.csv"), table("TLS BANK"));
    assert_eq!(
        poll(&mut updater).await.unwrap(),
        card_lookup::sync::Polled::NotModified
    );
}

fn config_for(source: &str, dest: &Path, ca_file: Option<&Path>) -> SyncConfig {
    SyncConfig {
        ca_file: ca_file.map(Path::to_path_buf),
        ..config(source, dest)
    }
}

/// The sidecar's /metrics shows the manifest it saw and applied, and its files' digests with
/// the labels of the service's `cardlookup_data_source_info`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_updater_metrics_show_what_it_applied() {
    use std::io::BufRead as _;
    let origin = Origin::start(Mode::Conditional).await;
    publish(&origin, "1", "METRICS BANK");
    let dir = TempDir::new("sync-metrics");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_card-lookup"))
        .args([
            "data",
            "sync",
            "--interval",
            "200ms",
            "--metrics-listen",
            "127.0.0.1:0",
        ])
        .args(["--source", &origin.url("manifest.json"), "--dest"])
        .arg(&dir.0)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let _kill = common::KillOnDrop(pid);
    let stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let (line, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for text in stdout.lines().map_while(Result::ok) {
            let _ = line.send(text);
        }
    });
    let address = tokio::task::spawn_blocking(move || {
        loop {
            let text = lines
                .recv_timeout(Duration::from_secs(15))
                .expect("the metrics address");
            if let Some(rest) = text.split("serving metrics on http://").nth(1) {
                return rest.split('/').next().unwrap().to_owned();
            }
        }
    })
    .await
    .unwrap();

    let digest = sha256(table("METRICS BANK").as_bytes());
    let expected = format!(r#"cardlookup_sync_file_info{{source="bins.csv",sha256="{digest}"}} 1"#);
    let deadline = Instant::now() + Duration::from_secs(15);
    let scrape = loop {
        let scrape = common::http_get(address.parse().unwrap(), "/metrics")
            .await
            .1;
        if scrape.contains(&expected)
            && scrape.contains(r#"cardlookup_sync_polls_total{result="not_modified"}"#)
        {
            break scrape;
        }
        assert!(Instant::now() < deadline, "{scrape}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        scrape.contains(r#"cardlookup_sync_manifest_info{state="applied",sha256=""#),
        "{scrape}"
    );
    assert!(
        scrape.contains(
            r#"cardlookup_sync_manifest_published_timestamp_seconds{state="seen"} 1796126400"#
        ),
        "{scrape}"
    );
    assert!(
        scrape.contains(r#"cardlookup_sync_failures_total{reason="check"} 0"#),
        "{scrape}"
    );
    child.kill().unwrap();
    child.wait().unwrap();
}
