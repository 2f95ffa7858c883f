//! The audit trail (`--audit-dir`): a real server records every call carrying card data, over
//! gRPC and HTTP, masked; `audit verify` passes on what it wrote and names each kind of
//! tampering; a full disk, or one that hangs, refuses calls (health NOT_SERVING) and recovers;
//! a crash leaves a trail that verify describes and the next start takes up.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use card_lookup::audit::chain::{Chain, GENESIS};
use card_lookup::audit::{AuditSettings, Overflow};
use card_lookup::card::{FingerprintKeys, Pan};
use card_lookup::config::Config;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tonic::transport::Channel;
use tonic::{Code, Status};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

use crate::common::pb::card_lookup_service_client::CardLookupServiceClient;
use crate::common::pb::card_lookup_service_server::SERVICE_NAME;
use crate::common::{EMBEDDED, KillOnDrop, TempDir, TestServer, http_get, leaked_pans, pb};

const BINARY: &str = env!("CARGO_BIN_EXE_card-lookup");

/// Every number the tests send.
const PANS: [&str; 5] = [
    "4111111111111111",
    "5555 5555 5555 4444",
    "4111111111111112",
    "3782-822463-10005",
    "6011000990139424",
];

fn settings(dir: &Path, replica: &str, overflow: Overflow) -> AuditSettings {
    AuditSettings {
        dir: dir.to_owned(),
        replica: replica.to_owned(),
        hmac_key: None,
        overflow,
        retention: Duration::from_secs(400 * 24 * 60 * 60),
    }
}

/// The fingerprint keys the audited servers answer with.
fn keys() -> FingerprintKeys {
    FingerprintKeys::parse(&format!("k1 {}\n", "ab".repeat(32))).unwrap()
}

/// The fingerprint answers give `number` under [`keys`].
fn fingerprint_of(number: &str) -> String {
    keys().signing().fingerprint(&Pan::parse(number).unwrap())
}

async fn audited_server(settings: AuditSettings) -> TestServer {
    let config = Config {
        audit: Some(settings),
        fingerprint_keys: Some(keys()),
        ..Config::default()
    };
    TestServer::start_configured(config, std::sync::Arc::clone(&EMBEDDED)).await
}

/// Every line of every file in `dir`, as JSON.
fn lines(dir: &Path) -> Vec<Value> {
    files(dir)
        .iter()
        .flat_map(|path| {
            std::fs::read_to_string(path)
                .unwrap()
                .lines()
                .map(|line| serde_json::from_str(line).unwrap())
                .collect::<Vec<Value>>()
        })
        .collect()
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    files.sort();
    files
}

fn all_text(dir: &Path) -> String {
    files(dir)
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect()
}

/// `card-lookup audit verify DIR`: exit code and standard output.
fn verify(dir: &Path) -> (i32, String) {
    let output = Command::new(BINARY)
        .args(["audit", "verify"])
        .arg(dir)
        .output()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8(output.stdout).unwrap(),
    )
}

fn events<'a>(lines: &'a [Value], method: &str) -> Vec<&'a Value> {
    lines
        .iter()
        .filter(|l| l.get("record").is_none() && l["method"] == method)
        .collect()
}

/// A minimal HTTP/1.1 POST of a JSON body: the status line.
async fn http_post(addr: std::net::SocketAddr, path: &str, body: &str) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    response.lines().next().unwrap_or_default().to_owned()
}

/// Calls every RPC over gRPC, good and bad, and Validate and binlist's lookup over HTTP: nine
/// calls carrying card data (the Inspect request has two items). Gives the request ids the
/// second Validate (a success the caller sent no id with) and the refused LookupBin came back
/// with.
async fn call_every_rpc(server: &TestServer) -> (Option<String>, String) {
    let mut client = server.client().await;

    let mut validate = tonic::Request::new(pb::ValidateRequest {
        number: PANS[0].into(),
    });
    validate
        .metadata_mut()
        .insert("x-request-id", "checkout-7".parse().unwrap());
    validate
        .metadata_mut()
        .insert("x-cardlookup-subject", "shopper-42".parse().unwrap());
    assert!(client.validate(validate).await.unwrap().into_inner().valid);
    let invalid = client
        .validate(pb::ValidateRequest {
            number: PANS[2].into(),
        })
        .await
        .unwrap();
    let success_id = invalid
        .metadata()
        .get("x-request-id")
        .map(|id| id.to_str().unwrap().to_owned());
    assert!(!invalid.into_inner().valid);
    client
        .lookup_bin(pb::LookupBinRequest {
            number: PANS[1].into(),
        })
        .await
        .unwrap();
    let refused = client
        .lookup_bin(pb::LookupBinRequest { number: "4".into() })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    let error_id = refused.metadata().get("x-request-id").unwrap();
    let error_id = error_id.to_str().unwrap().to_owned();
    client
        .mask_card(pb::MaskCardRequest {
            number: PANS[3].into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let items = vec![
        pb::InspectItem {
            id: "a".into(),
            number: PANS[4].into(),
        },
        pb::InspectItem {
            id: "b".into(),
            number: "not a number".into(),
        },
    ];
    let mut answers = client
        .inspect(tokio_stream::iter(vec![pb::InspectRequest {
            items,
            ..Default::default()
        }]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answers.message().await.unwrap().unwrap().results.len(), 2);
    assert!(
        http_post(
            server.http_addr,
            "/v1/cards:validate",
            &format!("{{\"number\":\"{}\"}}", PANS[0])
        )
        .await
        .contains("200")
    );
    assert!(
        http_get(server.http_addr, "/411111")
            .await
            .0
            .contains("200")
    );
    (success_id, error_id)
}

#[tokio::test]
async fn every_call_carrying_card_data_is_recorded_masked_and_the_trail_verifies() {
    let dir = TempDir::new("audit-calls");
    let server = audited_server(settings(&dir.0, "it-a", Overflow::Block)).await;
    let (success_id, error_id) = call_every_rpc(&server).await;
    server.stop().await.unwrap();

    let lines = lines(&dir.0);
    let validates = events(&lines, "Validate");
    assert_eq!(validates.len(), 3, "{validates:#?}");
    let first = validates[0];
    assert_eq!(first["request_id"], "checkout-7");
    assert_eq!(first["code"], "OK");
    assert_eq!(first["valid"], true);
    assert_eq!(first["masked"], "411111******1111");
    assert_eq!(first["bin"], "411111");
    assert_eq!(first["replica"], "it-a");
    // The fingerprint answers give (Validate's taken from its answer, LookupBin's computed):
    // an auditor can find a card's calls by it.
    assert_eq!(first["fingerprint"], fingerprint_of(PANS[0]));
    assert_eq!(first["client"], "127.0.0.1");
    assert_eq!(first["subject"].as_str().unwrap().len(), 64);
    assert!(
        first["dataset_version"]
            .as_str()
            .is_some_and(|v| !v.is_empty())
    );
    assert_eq!(validates[1]["valid"], false);
    assert!(
        validates[1]["request_id"]
            .as_str()
            .is_some_and(|id| !id.is_empty()),
        "every audited call gets a request id"
    );
    assert_eq!(
        success_id, None,
        "a success the caller sent no id with, not logged, carries none back"
    );
    let lookups = events(&lines, "LookupBin");
    let codes: Vec<_> = lookups
        .iter()
        .map(|e| e["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["OK", "InvalidArgument", "OK"], "{lookups:#?}");
    assert_eq!(
        lookups[1]["request_id"], error_id,
        "an error carries back the id its event names"
    );
    assert_eq!(lookups[2]["bin"], "411111", "binlist's lookup over HTTP");
    assert_eq!(lookups[0]["fingerprint"], fingerprint_of(PANS[1]));
    assert_eq!(
        lookups[1].get("fingerprint"),
        None,
        "a partial number has none"
    );
    let mask = events(&lines, "MaskCard")[0];
    assert_eq!(mask["masked"], "378282*****0005");
    assert_eq!(mask["fingerprint"], fingerprint_of(PANS[3]));
    let inspected = events(&lines, "Inspect");
    assert_eq!(inspected.len(), 2);
    assert_eq!(inspected[0]["valid"], true);
    assert_eq!(inspected[0]["masked"], "601100******9424");
    assert_eq!(inspected[0]["fingerprint"], fingerprint_of(PANS[4]));
    assert_eq!(inspected[1]["code"], "InvalidArgument");
    let last = lines.last().unwrap();
    assert_eq!(last["record"], "close");
    assert_eq!(last["events"], 9);

    let text = all_text(&dir.0);
    assert!(leaked_pans(&text, &PANS).is_empty(), "{text}");
    assert!(!text.contains("shopper-42"));
    let (code, out) = verify(&dir.0);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("all 1 files hold"), "{out}");
}

/// A line as the writer seals it, for trails written by the tests.
fn sealed(chain: &Chain, mut body: serde_json::Map<String, Value>, prev: &str) -> (String, String) {
    body.insert("prev".into(), prev.into());
    let body = Value::Object(body).to_string();
    let hash = chain.hash(body.as_bytes());
    (
        format!("{},\"hash\":\"{hash}\"}}", &body[..body.len() - 1]),
        hash,
    )
}

/// Writes a closed file of `events` events for `replica` on `day`, chained after `prev`; the
/// last hash.
fn write_day(dir: &Path, replica: &str, day: &str, events: &[Value], prev: &str) -> String {
    let chain = Chain::default();
    let mut prev = prev.to_owned();
    let mut text = String::new();
    for event in events {
        let mut body = event.as_object().unwrap().clone();
        body.insert("replica".into(), replica.into());
        let (line, hash) = sealed(&chain, body, &prev);
        text.push_str(&line);
        text.push('\n');
        prev = hash;
    }
    let close = serde_json::json!({
        "record": "close", "time": format!("{day}T23:59:59Z"), "replica": replica,
        "events": events.len(), "last_hash": prev,
    });
    let (line, hash) = sealed(&chain, close.as_object().unwrap().clone(), &prev);
    text.push_str(&line);
    text.push('\n');
    std::fs::write(dir.join(format!("audit-{day}-{replica}.jsonl")), text).unwrap();
    hash
}

fn event(day: &str, n: u32, client: &str, method: &str, bin: &str) -> Value {
    serde_json::json!({
        "time": format!("{day}T10:00:{:02}Z", n % 60), "request_id": format!("r{n}"),
        "client": client, "method": method, "masked": format!("{bin}******{:04}", n),
        "bin": bin, "code": "OK", "dataset_version": "v1",
    })
}

/// Three closed days of replica `r1`, then the days' file names.
fn three_days(dir: &Path) -> [String; 3] {
    let mut prev = GENESIS.to_owned();
    let days = ["2025-03-01", "2025-03-02", "2025-03-03"];
    for day in days {
        let events: Vec<Value> = (0..4)
            .map(|n| event(day, n, "shop", "Validate", "411111"))
            .collect();
        prev = write_day(dir, "r1", day, &events, &prev);
    }
    days.map(|day| format!("audit-{day}-r1.jsonl"))
}

fn edit(path: &Path, change: impl FnOnce(&mut Vec<String>)) {
    let mut lines: Vec<String> = std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    change(&mut lines);
    std::fs::write(path, lines.join("\n") + "\n").unwrap();
}

#[tokio::test]
async fn verify_names_the_first_broken_file_and_line_for_each_kind_of_tampering() {
    /// A kind of tampering, the exit code verify must give, and the change itself: done to
    /// three days' files (in the directory, by name), it gives what verify must say.
    type Case = (&'static str, i32, fn(&Path, &[String; 3]) -> String);
    let cases: [Case; 7] = [
        ("nothing", 0, |_, _| "all 3 files hold".to_owned()),
        ("an edited byte", 1, |dir, names| {
            edit(&dir.join(&names[1]), |lines| {
                lines[1] = lines[1].replacen("\"client\":\"shop\"", "\"client\":\"shoq\"", 1);
            });
            format!("BROKEN {}: line 2: its hash does not match", names[1])
        }),
        ("a removed line", 1, |dir, names| {
            edit(&dir.join(&names[1]), |lines| {
                lines.remove(2);
            });
            format!("BROKEN {}: line 3: does not follow line 2", names[1])
        }),
        ("a removed file in the middle", 1, |dir, names| {
            std::fs::remove_file(dir.join(&names[1])).unwrap();
            format!(
                "BROKEN {}: line 1: does not follow the last line of {}",
                names[2], names[0]
            )
        }),
        (
            "lines cut from the end of a closed file, its closing record with them",
            1,
            |dir, names| {
                edit(&dir.join(&names[0]), |lines| {
                    lines.pop();
                });
                format!(
                    "BROKEN {}: line 4: the file ends without its closing record",
                    names[0]
                )
            },
        ),
        (
            "the newest file cut after a whole line: open, not broken",
            0,
            |dir, names| {
                edit(&dir.join(&names[2]), |lines| {
                    lines.truncate(2);
                });
                format!("ok {}: 2 events, open: ends at line 2", names[2])
            },
        ),
        (
            "a tail cut mid-line, as a crash mid-write leaves it",
            1,
            |dir, names| {
                let path = dir.join(&names[2]);
                let text = std::fs::read_to_string(&path).unwrap();
                let whole: usize = text.lines().take(3).map(|l| l.len() + 1).sum();
                std::fs::write(&path, &text[..whole + 20]).unwrap();
                format!(
                    "BROKEN {}: line 4: cut off: the file ends mid-line, 20 bytes into it (the writer stopped mid-write, e.g. a crash); its 3 whole lines end at byte {whole}",
                    names[2]
                )
            },
        ),
    ];
    for (kind, expected_code, tamper) in cases {
        let dir = TempDir::new("audit-tamper");
        let names = three_days(&dir.0);
        let expected = tamper(&dir.0, &names);
        let (code, out) = verify(&dir.0);
        assert_eq!(code, expected_code, "{kind}: {out}");
        assert!(out.contains(&expected), "{kind}: {out}");
    }
}

#[tokio::test]
async fn a_server_takes_up_the_chain_of_earlier_files_and_links_its_own() {
    let dir = TempDir::new("audit-resume");
    let names = three_days(&dir.0);
    // Kept past the default retention: these days are long gone.
    let keep_all = AuditSettings {
        retention: Duration::from_secs(10 * 366 * 24 * 60 * 60),
        ..settings(&dir.0, "r1", Overflow::Block)
    };
    let server = audited_server(keep_all).await;
    let mut client = server.client().await;
    client
        .validate(pb::ValidateRequest {
            number: PANS[0].into(),
        })
        .await
        .unwrap();
    server.stop().await.unwrap();
    let (code, out) = verify(&dir.0);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("all 4 files hold"), "{out}");
    // Without the third day's file, today's no longer follows.
    std::fs::remove_file(dir.0.join(&names[2])).unwrap();
    let (code, out) = verify(&dir.0);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("does not follow the last line of audit-2025-03-02-r1.jsonl"),
        "{out}"
    );
}

async fn serving(server: &TestServer) -> ServingStatus {
    let mut health = HealthClient::new(server.channel().await);
    let answer = health
        .check(HealthCheckRequest {
            service: SERVICE_NAME.into(),
        })
        .await
        .unwrap();
    answer.into_inner().status()
}

fn validate() -> pb::ValidateRequest {
    pb::ValidateRequest {
        number: PANS[0].into(),
    }
}

/// Calls Validate every 20 ms until one is refused, for at most `within` (a failure names
/// `when`): the refusal, and how many calls were answered before it.
async fn until_refused(
    client: &mut CardLookupServiceClient<Channel>,
    within: Duration,
    when: &str,
) -> (usize, Status) {
    let deadline = Instant::now() + within;
    let mut answered = 0;
    loop {
        assert!(Instant::now() < deadline, "no call was refused {when}");
        match client.validate(validate()).await {
            Ok(_) => answered += 1,
            Err(status) => return (answered, status),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// What a call refused for the trail shows from outside: UNAVAILABLE naming the audit trail,
/// health NOT_SERVING, and `metric` (the cause) on `/metrics`.
async fn refused_for_the_trail(server: &TestServer, refusal: &Status, metric: &str) {
    assert_eq!(refusal.code(), Code::Unavailable, "{refusal:?}");
    assert!(
        refusal.message().contains("audit trail"),
        "{}",
        refusal.message()
    );
    assert_eq!(serving(server).await, ServingStatus::NotServing);
    let metrics = server.scrape().await;
    assert!(metrics.contains(metric), "{metrics}");
}

/// Calls Validate until one is answered, within 10 s (a failure names `when`); health is then
/// SERVING.
async fn answered_again(
    server: &TestServer,
    client: &mut CardLookupServiceClient<Channel>,
    when: &str,
) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while client.validate(validate()).await.is_err() {
        assert!(
            Instant::now() < deadline,
            "calls were not answered again {when}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(serving(server).await, ServingStatus::Serving);
}

/// A small tmpfs at `path`, unmounted when dropped; none where mounting is not allowed.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(path: &Path, size: &str) -> Option<Self> {
        std::fs::create_dir_all(path).unwrap();
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        mounted.then(|| Self(path.to_owned()))
    }
}

impl Tmpfs {
    /// A small tmpfs, or none (said loudly) where it cannot be mounted; with
    /// CARDLOOKUP_REQUIRE_MOUNTS set (.ci/run) that fails the test instead.
    ///
    /// Room for the batch a failing writer retries whole: the test's calls until one is
    /// refused can gather 100 ms of events (755 of about 470 bytes in one run), and a batch
    /// that does not fit the space that returns is never written.
    fn mount_or_skip(path: &Path, test: &str) -> Option<Self> {
        let mounted = Self::mount(path, "4m");
        if mounted.is_none() {
            skip_without_mounts(test, "a tmpfs");
        }
        mounted
    }

    /// Fills the file system but for less than one event.
    fn fill(&self) -> PathBuf {
        use std::io::Write;
        let filler = self.0.join("filler");
        let mut file = std::fs::File::create(&filler).unwrap();
        let block = [0u8; 4096];
        while file
            .write_all(&block)
            .and_then(|()| file.sync_all())
            .is_ok()
        {}
        let byte = [0u8; 1];
        while file.write_all(&byte).and_then(|()| file.sync_all()).is_ok() {}
        filler
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Lazily: a test that failed may still have its server's files open.
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Says loudly that `test` is skipped for want of `what` (mounting needs root); with
/// CARDLOOKUP_REQUIRE_MOUNTS set (.ci/run, which runs as root) fails it instead.
fn skip_without_mounts(test: &str, what: &str) {
    eprintln!(
        "SKIPPED {test}: cannot mount {what} here (needs root); set CARDLOOKUP_REQUIRE_MOUNTS=1 to fail instead"
    );
    assert!(
        std::env::var_os("CARDLOOKUP_REQUIRE_MOUNTS").is_none(),
        "CARDLOOKUP_REQUIRE_MOUNTS is set but {what} cannot be mounted"
    );
}

/// A small ext4 file system in an image on a loop device, which `fsfreeze` can freeze: writes
/// to a frozen file system wait without bound, as on a hung disk. Unmounted when dropped.
struct LoopDisk(PathBuf);

impl LoopDisk {
    /// The file system mounted at `path`, or none (said loudly) where it cannot be made.
    fn mount_or_skip(path: &Path, test: &str) -> Option<Self> {
        std::fs::create_dir_all(path).unwrap();
        let image = path.with_extension("img");
        std::fs::File::create(&image)
            .and_then(|file| file.set_len(32 << 20))
            .unwrap();
        let run = |program: &str, args: &[&std::ffi::OsStr]| {
            Command::new(program)
                .args(args)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        let mounted = run("fsfreeze", &["--version".as_ref()])
            && run("mkfs.ext4", &["-q".as_ref(), "-F".as_ref(), image.as_ref()])
            && run(
                "mount",
                &[
                    "-o".as_ref(),
                    "loop".as_ref(),
                    image.as_ref(),
                    path.as_ref(),
                ],
            );
        if !mounted {
            skip_without_mounts(test, "an ext4 image on a loop device, with fsfreeze");
        }
        mounted.then(|| Self(path.to_owned()))
    }

    /// Freezes the file system until the answer is dropped.
    fn freeze(&self) -> Frozen<'_> {
        let frozen = Command::new("fsfreeze").arg("-f").arg(&self.0).status();
        assert!(frozen.is_ok_and(|s| s.success()), "fsfreeze -f failed");
        Frozen(self)
    }
}

impl Drop for LoopDisk {
    fn drop(&mut self) {
        // Lazily, as a tmpfs; the loop device goes with the mount (`mount -o loop` sets it to).
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// A frozen [`LoopDisk`], thawed when dropped (also when a test fails: a thread left waiting
/// on a frozen file system would keep the test process from ending).
struct Frozen<'a>(&'a LoopDisk);

impl Drop for Frozen<'_> {
    fn drop(&mut self) {
        let _ = Command::new("fsfreeze").arg("-u").arg(&self.0.0).status();
    }
}

#[tokio::test]
async fn a_full_disk_refuses_calls_and_turns_health_not_serving_until_space_returns() {
    let dir = TempDir::new("audit-full");
    let mount_point = dir.0.join("tmpfs");
    let Some(tmpfs) = Tmpfs::mount_or_skip(&mount_point, "a_full_disk_refuses_calls") else {
        return;
    };
    let trail = mount_point.join("trail");
    let server = audited_server(settings(&trail, "full", Overflow::Block)).await;
    let mut client = server.client().await;
    client.validate(validate()).await.unwrap();
    // Fill the disk: not one more event fits.
    let filler = tmpfs.fill();
    let (_, refusal) = until_refused(&mut client, Duration::from_secs(10), "on a full disk").await;
    refused_for_the_trail(&server, &refusal, "cardlookup_audit_write_errors_total").await;

    std::fs::remove_file(&filler).unwrap();
    answered_again(&server, &mut client, "after space returned").await;
    server.stop().await.unwrap();
    let (code, out) = verify(&trail);
    assert_eq!(
        code, 0,
        "a failed write leaves no part line and no hole: {out}"
    );
}

/// A disk that hangs (a frozen file system) returns no error: the writer waits in its write.
/// The watchdog turns health NOT_SERVING and calls are refused, rather than each waiting for
/// room in a full queue; when the disk answers again, every call answered meanwhile is in the
/// trail, which verifies.
#[tokio::test]
async fn a_disk_that_hangs_refuses_calls_and_turns_health_not_serving_until_it_answers() {
    let dir = TempDir::new("audit-hung");
    let Some(disk) = LoopDisk::mount_or_skip(&dir.0.join("ext4"), "a_disk_that_hangs") else {
        return;
    };
    let trail = disk.0.join("trail");
    let server = audited_server(settings(&trail, "hung", Overflow::Block)).await;
    let mut client = server.client().await;
    let frozen = disk.freeze();
    let (answered, refusal) =
        until_refused(&mut client, Duration::from_secs(20), "while the disk hung").await;
    refused_for_the_trail(&server, &refusal, "cardlookup_audit_write_stalls_total ").await;

    drop(frozen);
    answered_again(&server, &mut client, "after the disk came back").await;
    server.stop().await.unwrap();
    let (code, out) = verify(&trail);
    assert_eq!(code, 0, "{out}");
    let lines = lines(&trail);
    assert_eq!(
        events(&lines, "Validate").len(),
        answered + 1,
        "every call answered (and the one answered again) has its event"
    );
}

/// A volume that hangs as the replica starts (here its trail directory cannot be made) keeps
/// the replica from serving, and from answering calls unaudited: its log says so after the
/// stall limit, rather than nothing, and it serves once the volume answers.
#[tokio::test]
async fn a_volume_that_hangs_at_start_is_logged_and_the_replica_serves_once_it_answers() {
    let dir = TempDir::new("audit-hung-start");
    let Some(disk) = LoopDisk::mount_or_skip(&dir.0.join("ext4"), "a_volume_that_hangs_at_start")
    else {
        return;
    };
    let trail = disk.0.join("trail");
    let frozen = disk.freeze();
    let (child, addr, log) = start_binary(&trail, "hung-start");
    let guard = KillOnDrop(child.id());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let line = log
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("nothing logged while the volume hung at start");
        if line.contains("the disk may hang") {
            break;
        }
    }
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect_lazy();
    // Health, not a card call: a call sent now would be answered (and recorded) once the
    // volume answers, after its caller gave up.
    let mut check = tonic::Request::new(HealthCheckRequest {
        service: SERVICE_NAME.into(),
    });
    check.set_timeout(Duration::from_millis(500));
    let unanswered = HealthClient::new(channel.clone()).check(check).await;
    assert!(
        unanswered.is_err(),
        "served while the volume hung: {unanswered:?}"
    );
    let mut client = CardLookupServiceClient::new(channel);

    drop(frozen);
    let mut call = tonic::Request::new(validate());
    call.set_timeout(Duration::from_secs(10));
    client.validate(call).await.unwrap();
    let answered_again = log
        .recv_timeout(Duration::from_secs(5))
        .expect("nothing logged when the volume answered");
    assert!(
        answered_again.contains("the audit directory answered"),
        "{answered_again}"
    );
    terminate(child, guard);
    let (code, out) = verify(&trail);
    assert_eq!(code, 0, "{out}");
    assert_eq!(events(&lines(&trail), "Validate").len(), 1, "{out}");
}

/// A shutdown while the volume hangs does not wait on it in silence: after its limit the log
/// says the writer has not finished and how many events were queued. The process exits once the
/// write returns, and the trail it leaves verifies (the next start takes it up).
#[tokio::test]
async fn a_shutdown_on_a_hung_volume_says_what_was_not_written() {
    let dir = TempDir::new("audit-hung-stop");
    let Some(disk) = LoopDisk::mount_or_skip(&dir.0.join("ext4"), "a_shutdown_on_a_hung_volume")
    else {
        return;
    };
    let trail = disk.0.join("trail");
    let (child, addr, log) = start_binary(&trail, "hung-stop");
    let guard = KillOnDrop(child.id());
    let mut client = CardLookupServiceClient::connect(format!("http://{addr}"))
        .await
        .unwrap();
    client.validate(validate()).await.unwrap();
    let frozen = disk.freeze();
    // Answered: its event is queued, and the writer's next write waits on the frozen disk.
    client.validate(validate()).await.unwrap();
    drop(client); // no connection for the shutdown to wait on
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut said = Vec::new();
    while !said
        .iter()
        .any(|line: &String| line.contains("the audit writer has not finished"))
    {
        let line = log
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|_| panic!("no word of the writer at shutdown: {said:#?}"));
        said.push(line);
    }
    // Thawed once the process has surely begun to exit: the hung write then returns without
    // writing (its thread has a kill pending), rather than being killed halfway through.
    std::thread::sleep(Duration::from_secs(1));
    drop(frozen);
    let mut child = child;
    let _ = child.wait();
    std::mem::forget(guard);
    let (code, out) = verify(&trail);
    assert_eq!(code, 0, "{out}");
    // Every call answered is in the trail, or named in the log: queued, or in the hung write.
    let named = |field: &str| -> usize {
        said.iter()
            .find_map(|line| line.split(&format!("{field}=")).nth(1))
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("no {field} in the log: {said:#?}"))
            .parse()
            .unwrap()
    };
    let accounted = events(&lines(&trail), "Validate").len()
        + named("queued_events")
        + named("events_being_written");
    assert!(accounted >= 2, "{accounted} of 2 calls: {said:#?}");
}

/// Stops the binary as Kubernetes does (SIGTERM: it closes its file) and waits for it to exit;
/// `guard`, its kill should the test fail before, is then not needed.
fn terminate(mut child: std::process::Child, guard: KillOnDrop) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    std::mem::forget(guard);
}

/// Starts the binary writing a trail into `dir` as `replica`: the process, its gRPC address,
/// and the lines of its log after that, as they come (until it exits).
fn start_binary(
    dir: &Path,
    replica: &str,
) -> (
    std::process::Child,
    std::net::SocketAddr,
    std::sync::mpsc::Receiver<String>,
) {
    use std::io::{BufRead, BufReader};
    let mut child = Command::new(BINARY)
        .args(["--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"])
        .args(["--replica-name", replica])
        .arg("--audit-dir")
        .arg(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    let addr = loop {
        line.clear();
        assert!(
            stdout.read_line(&mut line).unwrap() > 0,
            "the server exited"
        );
        if let Some(rest) = line.split("serving gRPC on ").nth(1) {
            break rest.split(',').next().unwrap().trim().parse().unwrap();
        }
    };
    let (lines, log) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        // Read to the end even when no one listens: a closed pipe would fail the server's log.
        for line in stdout.lines().map_while(Result::ok) {
            let _ = lines.send(line);
        }
    });
    (child, addr, log)
}

#[tokio::test]
async fn after_a_crash_mid_batch_verify_says_where_the_file_ends_and_a_restart_takes_it_up() {
    let dir = TempDir::new("audit-crash");
    let (child, addr, _log) = start_binary(&dir.0, "crash");
    let guard = KillOnDrop(child.id());
    let callers: Vec<_> = (0..4)
        .map(|_| {
            tokio::spawn(async move {
                let mut client = pb::card_lookup_service_client::CardLookupServiceClient::connect(
                    format!("http://{addr}"),
                )
                .await
                .unwrap();
                let mut answered = 0u32;
                while client
                    .validate(pb::ValidateRequest {
                        number: PANS[0].into(),
                    })
                    .await
                    .is_ok()
                {
                    answered += 1;
                }
                answered
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(800)).await;
    drop(guard); // SIGKILL, with calls in flight and batches being written
    let mut answered = 0;
    for caller in callers {
        answered += caller.await.unwrap();
    }
    let mut child = child;
    let _ = child.wait();
    assert!(answered > 0);

    // The kill leaves whole batches (one write each): verify names the last line. A write cut
    // mid-line, as a crash of the machine can leave it, is named as such.
    let path = files(&dir.0).pop().unwrap();
    let whole_lines = std::fs::read_to_string(&path).unwrap().lines().count();
    let (code, out) = verify(&dir.0);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!("open: ends at line {whole_lines}")),
        "{out}"
    );
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    std::io::Write::write_all(&mut file, b"{\"time\":\"20").unwrap();
    drop(file);
    let (code, out) = verify(&dir.0);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!("line {}: cut off", whole_lines + 1)),
        "{out}"
    );

    // A restart cuts the part line off, records the cut, and goes on with the chain.
    let (child, addr, log) = start_binary(&dir.0, "crash");
    let guard = KillOnDrop(child.id());
    let mut client =
        pb::card_lookup_service_client::CardLookupServiceClient::connect(format!("http://{addr}"))
            .await
            .unwrap();
    client
        .validate(pb::ValidateRequest {
            number: PANS[1].into(),
        })
        .await
        .unwrap();
    terminate(child, guard);
    let (code, out) = verify(&dir.0);
    assert_eq!(code, 0, "{out}");
    let lines = lines(&dir.0);
    assert!(
        lines
            .iter()
            .any(|l| l["record"] == "recovered" && l["cut_bytes"] == 11),
        "the cut is recorded"
    );
    assert_eq!(lines.last().unwrap()["record"], "close");
    // The log, kept apart from the files, witnesses the closed file's last hash, which verify
    // prints: an auditor can tell a file cut back to an earlier, rebuilt close.
    let log: Vec<String> = log.iter().collect();
    let witnessed = log
        .iter()
        .find(|line| line.contains("closed an audit file"))
        .and_then(|line| line.split("last_hash=").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no closed file in the log: {log:?}"));
    assert!(
        out.contains(&format!("closed, last hash {witnessed}")),
        "{witnessed}: {out}"
    );
}

/// The UTC day `days` before today.
fn days_ago(days: u64) -> String {
    let time = std::time::SystemTime::now() - Duration::from_secs(days * 24 * 60 * 60);
    humantime::format_rfc3339_seconds(time).to_string()[..10].to_owned()
}

#[tokio::test]
async fn retention_deletes_only_old_files_and_only_while_they_verify() {
    for tampered in [false, true] {
        let dir = TempDir::new("audit-retention");
        let days = [days_ago(500), days_ago(450), days_ago(10)];
        let mut prev = GENESIS.to_owned();
        for day in &days {
            let events = vec![event(day, 1, "shop", "Validate", "411111")];
            prev = write_day(&dir.0, "r1", day, &events, &prev);
        }
        write_day(
            &dir.0,
            "r2",
            &days[0],
            &[event(&days[0], 1, "x", "MaskCard", "555555")],
            GENESIS,
        );
        let name = |replica: &str, day: &str| format!("audit-{day}-{replica}.jsonl");
        if tampered {
            edit(&dir.0.join(name("r1", &days[1])), |lines| {
                lines[0] = lines[0].replacen("shop", "shoq", 1);
            });
        }
        let server = audited_server(settings(&dir.0, "r1", Overflow::Block)).await;
        server.stop().await.unwrap();
        let left: Vec<String> = files(&dir.0)
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        let mut expected = vec![name("r2", &days[0])];
        if tampered {
            expected.push(name("r1", &days[1]));
        }
        expected.push(name("r1", &days[2]));
        expected.sort();
        let mut left_sorted = left.clone();
        left_sorted.sort();
        assert_eq!(left_sorted, expected, "tampered: {tampered}");
        let (code, out) = verify(&dir.0);
        assert_eq!(code, i32::from(tampered), "{out}");
    }
}

#[tokio::test]
async fn the_monthly_report_counts_calls_outcomes_cards_and_bins_per_day() {
    let dir = TempDir::new("audit-report");
    let mut month = Vec::new();
    for (day, replica) in [
        ("2025-03-01", "a"),
        ("2025-03-02", "a"),
        ("2025-03-02", "b"),
    ] {
        let mut events = Vec::new();
        for n in 0..10 {
            let mut e = event(
                day,
                n,
                if n < 6 { "shop" } else { "batch" },
                "Validate",
                "411111",
            );
            if n == 9 {
                e["code"] = "InvalidArgument".into();
                e["bin"] = "555555".into();
            }
            events.push(e);
        }
        month.push((day, replica, events));
    }
    let mut prevs = std::collections::HashMap::new();
    for (day, replica, events) in &month {
        let prev = prevs
            .get(replica)
            .cloned()
            .unwrap_or_else(|| GENESIS.to_owned());
        prevs.insert(*replica, write_day(&dir.0, replica, day, events, &prev));
    }
    let april = "2025-04-01";
    let prev = prevs["a"].clone();
    write_day(
        &dir.0,
        "a",
        april,
        &[event(april, 1, "shop", "LookupBin", "400000")],
        &prev,
    );

    let output = Command::new(BINARY)
        .args(["audit", "report", "--month", "2025-03", "--json"])
        .arg(&dir.0)
        .output()
        .unwrap();
    assert!(output.status.success());
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["verified"], true, "{report:#}");
    assert_eq!(report["replicas"], serde_json::json!(["a", "b"]));
    let total = &report["total"];
    assert_eq!(total["calls"], 30);
    assert_eq!(
        total["calls_by_client_and_method"],
        serde_json::json!([
            {"client": "batch", "method": "Validate", "calls": 12},
            {"client": "shop", "method": "Validate", "calls": 18},
        ])
    );
    assert_eq!(
        total["outcomes"],
        serde_json::json!({"InvalidArgument": 3, "OK": 27})
    );
    // Masked numbers 411111******0000 to ...0009 on every day: ten cards, two BINs.
    assert_eq!(total["distinct_cards"], 10);
    assert_eq!(total["distinct_bins"], 2);
    let days = report["days"].as_array().unwrap();
    assert_eq!(days.len(), 2);
    assert_eq!(
        (days[0]["day"].as_str(), days[0]["calls"].as_u64()),
        (Some("2025-03-01"), Some(10))
    );
    assert_eq!(
        (days[1]["day"].as_str(), days[1]["calls"].as_u64()),
        (Some("2025-03-02"), Some(20))
    );

    let text = Command::new(BINARY)
        .args(["audit", "report", "--month", "2025-03"])
        .arg(&dir.0)
        .output()
        .unwrap();
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(text.contains("verified: yes"), "{text}");
    assert!(
        text.contains("month: 30 calls, 10 distinct cards, 2 distinct BINs"),
        "{text}"
    );
    let bad = Command::new(BINARY)
        .args(["audit", "report", "--month", "2025-13"])
        .arg(&dir.0)
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
}

#[tokio::test]
async fn a_keyed_chain_verifies_only_with_its_key() {
    let dir = TempDir::new("audit-keyed");
    let secret = "5a".repeat(32);
    let key_file = dir.write("audit.key", &format!("audit1 {secret}\n"));
    let trail = dir.0.join("trail");
    let keyed = AuditSettings {
        hmac_key: Some(
            FingerprintKeys::parse(&format!("audit1 {secret}\n"))
                .unwrap()
                .signing()
                .clone(),
        ),
        ..settings(&trail, "keyed", Overflow::Block)
    };
    let server = audited_server(keyed).await;
    server
        .client()
        .await
        .validate(pb::ValidateRequest {
            number: PANS[0].into(),
        })
        .await
        .unwrap();
    server.stop().await.unwrap();
    let (code, out) = verify(&trail);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("line 1: its hash does not match its text"),
        "{out}"
    );
    let output = Command::new(BINARY)
        .args(["audit", "verify", "--hmac-key-file"])
        .arg(&key_file)
        .arg(&trail)
        .output()
        .unwrap();
    let out = String::from_utf8(output.stdout).unwrap();
    assert_eq!(output.status.code(), Some(0), "{out}");
    assert!(!out.contains(&secret));
}

#[tokio::test]
async fn with_overflow_drop_a_full_disk_drops_events_and_calls_are_answered() {
    let dir = TempDir::new("audit-drop");
    let mount_point = dir.0.join("tmpfs");
    let Some(tmpfs) = Tmpfs::mount_or_skip(&mount_point, "with_overflow_drop_a_full_disk") else {
        return;
    };
    let server = audited_server(settings(&mount_point.join("trail"), "drop", Overflow::Drop)).await;
    let mut client = server.client().await;
    tmpfs.fill();
    for _ in 0..20 {
        let answer = client.validate(validate()).await;
        assert!(answer.is_ok(), "{answer:?}");
    }
    assert_eq!(serving(&server).await, ServingStatus::Serving);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !server
        .scrape()
        .await
        .contains("cardlookup_audit_events_dropped_total{reason=\"write_error\"}")
    {
        assert!(Instant::now() < deadline, "no dropped events counted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.stop().await.unwrap();
}
