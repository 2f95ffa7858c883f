//! Replacing BIN data live: by editing a file, by renaming one over it, and through the admin
//! service, while clients keep calling; a bad file leaves the old data serving.
//!
//! In its own binary, not in `tests/it`: the corrupt-file test reads the process-wide gauge
//! `cardlookup_data_last_reload_successful` for its exact value 0, and every server start sets
//! that gauge to 1, so the servers the other binary's tests start would race it.

#[path = "it/common/mod.rs"]
mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use card_lookup::bins::{BinStore, DataSource, LoadOptions};
use common::{TempDir, TestServer, admin_pb, pb};
use tonic::Code;

const HEADER: &str = "BIN,BankName,CardType,CardOrg";

/// A table whose every row names `bank`, so an answer shows which table it came from.
fn table(bank: &str) -> String {
    use std::fmt::Write as _;
    (622_800..622_900).fold(format!("{HEADER}\n"), |mut table, bin| {
        let _ = writeln!(table, "{bin},{bank},借记卡,银联");
        table
    })
}

fn files_only(files: &[&std::path::Path]) -> Arc<BinStore> {
    let sources = files
        .iter()
        .map(|f| DataSource::File(f.to_path_buf()))
        .collect();
    Arc::new(BinStore::load(sources, LoadOptions::default()).unwrap())
}

async fn lookup(
    client: &mut pb::card_lookup_service_client::CardLookupServiceClient<tonic::transport::Channel>,
) -> pb::LookupBinResponse {
    client
        .lookup_bin(pb::LookupBinRequest {
            number: "6228480000000000".into(),
        })
        .await
        .expect("LookupBin never fails during a reload")
        .into_inner()
}

/// Polls until `issuer` answers, or fails after 15 s.
async fn wait_for_issuer(server: &TestServer, issuer: &str) -> pb::LookupBinResponse {
    let mut client = server.client().await;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let answer = lookup(&mut client).await;
        if answer.issuer.as_ref().is_some_and(|i| i.name == issuer) {
            return answer;
        }
        assert!(Instant::now() < deadline, "still answering {answer:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Calls LookupBin in a loop until stopped; checks every answer is whole (its issuer belongs
/// with its dataset version) and counts them.
fn keep_calling(server: &TestServer, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<u64> {
    let url = server.url();
    tokio::spawn(async move {
        let mut client = pb::card_lookup_service_client::CardLookupServiceClient::connect(url)
            .await
            .unwrap();
        let calls = AtomicU64::new(0);
        let mut seen = std::collections::HashMap::<String, String>::new();
        while !stop.load(Ordering::Relaxed) {
            let answer = lookup(&mut client).await;
            let issuer = answer.issuer.unwrap().name;
            let version = answer.dataset_version;
            let first = seen
                .entry(version.clone())
                .or_insert_with(|| issuer.clone());
            assert_eq!(
                *first, issuer,
                "version {version} answered two issuers: a mixed table"
            );
            calls.fetch_add(1, Ordering::Relaxed);
        }
        calls.into_inner()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edited_file_is_reloaded_while_clients_keep_calling() {
    let dir = TempDir::new("reload-edit");
    let path = dir.write("bins.csv", &table("OLD BANK"));
    let server = TestServer::start_with(files_only(&[&path])).await;
    let old = wait_for_issuer(&server, "OLD BANK").await;

    let stop = Arc::new(AtomicBool::new(false));
    let caller = keep_calling(&server, Arc::clone(&stop));
    tokio::time::sleep(Duration::from_millis(100)).await;
    std::fs::write(&path, table("NEW BANK")).unwrap();
    let new = wait_for_issuer(&server, "NEW BANK").await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    stop.store(true, Ordering::Relaxed);
    assert!(caller.await.unwrap() > 0);
    assert_ne!(old.dataset_version, new.dataset_version);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_renamed_over_the_old_one_is_reloaded() {
    let dir = TempDir::new("reload-rename");
    let path = dir.write("bins.csv", &table("OLD BANK"));
    let server = TestServer::start_with(files_only(&[&path])).await;
    wait_for_issuer(&server, "OLD BANK").await;

    let stop = Arc::new(AtomicBool::new(false));
    let caller = keep_calling(&server, Arc::clone(&stop));
    let staged = dir.write("bins.csv.new", &table("RENAMED BANK"));
    std::fs::rename(&staged, &path).unwrap();
    wait_for_issuer(&server, "RENAMED BANK").await;
    stop.store(true, Ordering::Relaxed);
    assert!(caller.await.unwrap() > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_file_leaves_the_old_data_serving_and_says_why() {
    let dir = TempDir::new("reload-corrupt");
    let path = dir.write("bins.csv", &table("GOOD BANK"));
    let server = TestServer::start_with(files_only(&[&path])).await;
    let good = wait_for_issuer(&server, "GOOD BANK").await;
    let mut admin = server.admin().await;

    let mut corrupt = table("HALF BANK");
    corrupt.push_str("62x999,HALF BANK,借记卡,银联\n");
    std::fs::write(&path, corrupt).unwrap();
    let status = admin.reload(admin_pb::ReloadRequest {}).await.unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert!(
        status
            .message()
            .contains("bins.csv: line 102: BIN must be digits only"),
        "{}",
        status.message()
    );

    // Still the good table, whole: no row of the corrupt file was loaded.
    let mut client = server.client().await;
    let answer = lookup(&mut client).await;
    assert_eq!(answer.issuer.unwrap().name, "GOOD BANK");
    assert_eq!(answer.dataset_version, good.dataset_version);

    let info = admin
        .get_index_info(admin_pb::GetIndexInfoRequest {})
        .await
        .unwrap()
        .into_inner();
    let last = info.last_reload.unwrap();
    assert!(!last.success);
    assert!(last.error.contains("line 102"), "{}", last.error);
    assert_eq!(info.dataset_version, good.dataset_version);

    let scrape = server.scrape().await;
    assert!(
        scrape.contains("cardlookup_data_last_reload_successful 0"),
        "{scrape}"
    );
    assert!(
        scrape.contains(r#"cardlookup_data_reloads_total{result="failure"}"#),
        "{scrape}"
    );
}

#[tokio::test]
async fn the_admin_service_reloads_and_describes_the_data() {
    let dir = TempDir::new("reload-admin");
    let first = dir.write("first.csv", &table("FIRST BANK"));
    let second = dir.write(
        "second.csv",
        "iin_start,iin_end,number_length,number_luhn,scheme,brand,type,prepaid,country,bank_name,bank_logo,bank_url,bank_phone,bank_city\n\
         62284800,62284899,19,N,UNIONPAY,,DEBIT,N,CN,RANGE BANK,,,,\n",
    );
    let config = card_lookup::config::Config {
        watch_data_files: false,
        ..card_lookup::config::Config::default()
    };
    let server = TestServer::start_configured(config, files_only(&[&first, &second])).await;
    let mut admin = server.admin().await;

    let info = admin
        .get_index_info(admin_pb::GetIndexInfoRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(info.entries, 101);
    assert_eq!(info.ranges, 1);
    let lengths: Vec<_> = info
        .entries_by_prefix_length
        .iter()
        .map(|l| (l.prefix_length, l.entries))
        .collect();
    assert_eq!(lengths, [(6, 100), (8, 1)]);
    let sources: Vec<_> = info
        .sources
        .iter()
        .map(|s| (s.format.as_str(), s.rows))
        .collect();
    assert_eq!(sources, [("cn-four-column", 100), ("binlist-ranges", 1)]);
    assert!(info.last_reload.is_none());

    // The 8-digit range of the second file wins over the first file's 6-digit BIN, and its
    // length and Luhn rules apply to Validate.
    let mut client = server.client().await;
    let answer = lookup(&mut client).await;
    assert_eq!(answer.bin, "62284800");
    assert_eq!(answer.issuer.unwrap().name, "RANGE BANK");
    let validation = client
        .validate(pb::ValidateRequest {
            number: "6228480000000000".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(validation.failure(), pb::ValidationFailure::TooShort);
    assert_eq!(validation.network_lengths, [19]);

    let unchanged = admin
        .reload(admin_pb::ReloadRequest {})
        .await
        .unwrap()
        .into_inner()
        .result
        .unwrap();
    assert!(unchanged.success && !unchanged.changed);
    assert_eq!(unchanged.trigger, "admin");

    std::fs::write(&first, table("EDITED BANK")).unwrap();
    let changed = admin
        .reload(admin_pb::ReloadRequest {})
        .await
        .unwrap()
        .into_inner()
        .result
        .unwrap();
    assert!(changed.success && changed.changed);
    assert_ne!(changed.dataset_version, info.dataset_version);
    let answer = client
        .lookup_bin(pb::LookupBinRequest {
            number: "622801".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.issuer.unwrap().name, "EDITED BANK");
    assert_eq!(answer.dataset_version, changed.dataset_version);
}

/// A Kubernetes ConfigMap volume, laid out and updated as the kubelet's atomic writer does it:
/// the data in a timestamped directory (`..2026_...`), a `..data` symlink to that directory,
/// and each key a symlink through it (`bins.csv -> ..data/bins.csv`). An update writes a new
/// timestamped directory, renames a new `..data` symlink over the old one and removes the old
/// directory: `bins.csv` itself never changes, so only a watch on the directory sees it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configmap_volume_updated_by_the_kubelet_is_reloaded() {
    use std::os::unix::fs::symlink;

    let dir = TempDir::new("reload-configmap");
    let timestamped = |stamp: &str, bank: &str| {
        std::fs::create_dir(dir.0.join(stamp)).unwrap();
        std::fs::write(dir.0.join(stamp).join("bins.csv"), table(bank)).unwrap();
    };
    let first = "..2026_01_01_00_00_00.000000001";
    timestamped(first, "CONFIGMAP V1");
    symlink(first, dir.0.join("..data")).unwrap();
    symlink("..data/bins.csv", dir.0.join("bins.csv")).unwrap();
    let path = dir.0.join("bins.csv");
    let server = TestServer::start_with(files_only(&[&path])).await;
    let old = wait_for_issuer(&server, "CONFIGMAP V1").await;

    let second = "..2026_01_01_00_01_00.000000002";
    timestamped(second, "CONFIGMAP V2");
    symlink(second, dir.0.join("..data_tmp")).unwrap();
    std::fs::rename(dir.0.join("..data_tmp"), dir.0.join("..data")).unwrap();
    std::fs::remove_dir_all(dir.0.join(first)).unwrap();
    assert!(std::fs::symlink_metadata(&path).unwrap().is_symlink());

    // wait_for_issuer fails after 15 s.
    let new = wait_for_issuer(&server, "CONFIGMAP V2").await;
    assert_ne!(old.dataset_version, new.dataset_version);
}

/// The last reload the admin service reports: when it finished, and whether it succeeded.
async fn last_reload(server: &TestServer) -> Option<admin_pb::ReloadResult> {
    let mut admin = server.admin().await;
    admin
        .get_index_info(admin_pb::GetIndexInfoRequest {})
        .await
        .unwrap()
        .into_inner()
        .last_reload
}

/// Several debounce periods: long enough for a reload the watcher wrongly started to show.
const QUIET: Duration = Duration::from_millis(1_500);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_change_is_one_reload() {
    let dir = TempDir::new("reload-once");
    let path = dir.write("bins.csv", &table("OLD BANK"));
    let server = TestServer::start_with(files_only(&[&path])).await;
    wait_for_issuer(&server, "OLD BANK").await;

    let staged = dir.write("bins.csv.new", &table("RENAMED BANK"));
    std::fs::rename(&staged, &path).unwrap();
    wait_for_issuer(&server, "RENAMED BANK").await;
    let first = last_reload(&server).await.expect("a reload");
    assert!(first.success && first.changed, "{first:?}");
    assert_eq!(first.trigger, "file_change");
    // The reload read the file; that read is not a change, so nothing reloads again.
    tokio::time::sleep(QUIET).await;
    let later = last_reload(&server).await.unwrap();
    assert_eq!(
        later.at_unix_ms, first.at_unix_ms,
        "reloaded again: {later:?}"
    );

    // Rewritten in place, the same.
    std::fs::write(&path, table("EDITED BANK")).unwrap();
    wait_for_issuer(&server, "EDITED BANK").await;
    let edited = last_reload(&server).await.unwrap();
    assert!(edited.success && edited.changed, "{edited:?}");
    tokio::time::sleep(QUIET).await;
    let later = last_reload(&server).await.unwrap();
    assert_eq!(
        later.at_unix_ms, edited.at_unix_ms,
        "reloaded again: {later:?}"
    );
}

/// Polls until the last reload is a failure, or fails after 15 s.
async fn wait_for_failed_reload(server: &TestServer) -> admin_pb::ReloadResult {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(last) = last_reload(server).await.filter(|last| !last.success) {
            return last;
        }
        assert!(Instant::now() < deadline, "no failed reload");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_file_is_not_parsed_again_until_it_changes() {
    let dir = TempDir::new("reload-rejected");
    let path = dir.write("bins.csv", &table("GOOD BANK"));
    let server = TestServer::start_with(files_only(&[&path])).await;
    wait_for_issuer(&server, "GOOD BANK").await;

    let mut corrupt = table("HALF BANK");
    corrupt.push_str("62x999,HALF BANK,借记卡,银联\n");
    std::fs::write(&path, &corrupt).unwrap();
    let refused = wait_for_failed_reload(&server).await;
    assert!(refused.error.contains("line 102"), "{}", refused.error);
    tokio::time::sleep(QUIET).await;
    let later = last_reload(&server).await.unwrap();
    assert_eq!(later.at_unix_ms, refused.at_unix_ms, "re-read: {later:?}");

    // Asked again for the same bytes, the service says so instead of parsing them again.
    let mut admin = server.admin().await;
    let status = admin.reload(admin_pb::ReloadRequest {}).await.unwrap_err();
    assert!(
        status.message().contains("line 102"),
        "{}",
        status.message()
    );
    assert!(
        status.message().contains("not parsed again"),
        "{}",
        status.message()
    );

    // Changed, it is read again.
    std::fs::write(&path, table("FIXED BANK")).unwrap();
    wait_for_issuer(&server, "FIXED BANK").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_directory_deleted_and_made_again_is_watched_again() {
    let dir = TempDir::new("reload-recreated");
    let data = dir.0.join("data");
    std::fs::create_dir(&data).unwrap();
    let path = data.join("bins.csv");
    std::fs::write(&path, table("OLD BANK")).unwrap();
    let server = TestServer::start_with(files_only(&[&path])).await;
    wait_for_issuer(&server, "OLD BANK").await;

    std::fs::remove_dir_all(&data).unwrap();
    std::fs::create_dir(&data).unwrap();
    std::fs::write(&path, table("NEW BANK")).unwrap();
    // wait_for_issuer fails after 15 s.
    wait_for_issuer(&server, "NEW BANK").await;
    // And the new directory is watched: a later edit is seen too.
    std::fs::write(&path, table("EDITED BANK")).unwrap();
    wait_for_issuer(&server, "EDITED BANK").await;
}

/// The real binary serving `path` only, with a 1 s shutdown grace; returns it and its log
/// lines (standard output) as they come.
fn serve_binary(
    path: &std::path::Path,
) -> (std::process::Child, std::sync::mpsc::Receiver<String>) {
    use std::io::BufRead as _;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_card-lookup"))
        .args(["--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"])
        .args(["--no-default-data", "--shutdown-grace", "1s", "--bin-data"])
        .arg(path)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("the binary starts");
    let stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let (line, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for text in stdout.lines().map_while(Result::ok) {
            let _ = line.send(text);
        }
    });
    (child, lines)
}

/// The first line of `lines` containing `text`, within 15 s.
fn line_with(lines: &std::sync::mpsc::Receiver<String>, text: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) if line.contains(text) => return line,
            Ok(_) => {}
            Err(error) => panic!("no line with `{text}` within 15 s: {error}"),
        }
    }
}

/// A FIFO put where the data file was: opening it would wait for a writer forever. The reload
/// fails at once, saying what the path is, and SIGTERM still ends the process within its grace.
#[test]
fn a_fifo_in_place_of_the_data_file_fails_the_reload_and_never_delays_shutdown() {
    let dir = TempDir::new("reload-fifo");
    let path = dir.write("bins.csv", &table("FILE BANK"));
    let (mut child, lines) = serve_binary(&path);
    let guard = common::KillOnDrop(child.id());
    line_with(&lines, "watching the BIN data files");

    let fifo = dir.0.join("fifo");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    std::fs::rename(&fifo, &path).unwrap();
    let failed = line_with(&lines, "BIN data reload failed");
    assert!(failed.contains("is a FIFO, not a regular file"), "{failed}");

    let pid = child.id().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "still running 15 s after SIGTERM, with a 1 s grace"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status}");
    std::mem::forget(guard);
}

/// A change the watcher never reports (a network file system's, written from another node) is
/// found by the periodic re-check; an unchanged file costs only its stat: no reload at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_recheck_finds_a_change_no_event_reported() {
    let dir = TempDir::new("reload-recheck");
    let path = dir.write("bins.csv", &table("OLD BANK"));
    let config = card_lookup::config::Config {
        watch_data_files: false,
        data_recheck_interval: Some(Duration::from_millis(100)),
        ..card_lookup::config::Config::default()
    };
    let server = TestServer::start_configured(config, files_only(&[&path])).await;
    wait_for_issuer(&server, "OLD BANK").await;
    tokio::time::sleep(QUIET).await;
    assert!(
        last_reload(&server).await.is_none(),
        "an unchanged file was reloaded"
    );

    let staged = dir.write("bins.csv.new", &table("RECHECKED BANK"));
    std::fs::rename(&staged, &path).unwrap();
    wait_for_issuer(&server, "RECHECKED BANK").await;
    let reload = last_reload(&server).await.unwrap();
    assert_eq!(reload.trigger, "recheck");
    tokio::time::sleep(QUIET).await;
    assert_eq!(
        last_reload(&server).await.unwrap().at_unix_ms,
        reload.at_unix_ms,
        "reloaded again with nothing changed"
    );
}
