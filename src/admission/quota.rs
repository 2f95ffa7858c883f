//! `--quota`: limits shared by every replica, counted in Redis (or a server that speaks its
//! protocol: Valkey, a managed Redis), so that N replicas do not give a client N times its rate.
//!
//! Each quota is a GCRA (generic cell rate algorithm) in one Lua script, run atomically by
//! Redis: the key holds the "theoretical arrival time" of the next call, in microseconds of the
//! Redis server's own clock (so the replicas' clocks do not matter), and the script answers
//! allowed, or refused with the time until a call is allowed again. The quotas of a call are
//! checked concurrently on one multiplexed connection, so calls in flight share its round
//! trips. A call refused by one quota still counts against the others it passed.
//!
//! Keys are `cardlookup:quota:<name>:<hex SHA-256 of the key kind and value>`: no subject or
//! client identity is stored in Redis, only these hashes and the arrival times.
//!
//! Redis is given `--quota-budget` a call; past it, or on any error, `--quota-failure-mode`
//! decides: `open` admits the call, `closed` refuses it. The connection is made and remade in
//! the background with backoff, so no call waits on a Redis that is down.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use metrics::{Counter, Gauge, describe_counter, describe_gauge};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{IntoConnectionInfo, Script};
use sha2::{Digest, Sha256};
use tonic::codegen::http;

use super::Refusal;
use super::rate::Rate;
use crate::log_throttle::{LOG_INTERVAL, LogThrottle};
use crate::token::is_safe_token;

/// The metadata that names the end user a call is about, for `subject` quotas.
pub static SUBJECT_HEADER: http::HeaderName = http::HeaderName::from_static("x-cardlookup-subject");

/// The subject, unless it holds a run of digits as long as a card number's (spaces and dashes
/// between them count as part of the run): a caller that names shoppers by their card would
/// otherwise put an unkeyed hash of the card into Redis, which a PAN's small search space makes
/// reversible.
pub(super) fn checked_subject(subject: &[u8]) -> Result<&[u8], Refusal> {
    let mut run = 0;
    for &byte in subject {
        match byte {
            b'0'..=b'9' => run += 1,
            b' ' | b'-' => {}
            _ => run = 0,
        }
        if run >= crate::card::mask::MIN_PAN_DIGITS {
            return Err(Refusal::SubjectLooksLikeCard);
        }
    }
    Ok(subject)
}
const BACKEND_UP: &str = "cardlookup_quota_backend_up";
const REFUSED: &str = "cardlookup_quota_refused_total";
const UNKEYED: &str = "cardlookup_quota_unkeyed_total";
const BACKEND_ERRORS: &str = "cardlookup_quota_backend_errors_total";
/// The longest wait between two attempts to connect.
const MAX_RECONNECT_DELAY: Duration = Duration::from_secs(5);

/// GCRA. KEYS[1]: the key; ARGV[1]: microseconds between calls at the rate; ARGV[2]: the calls
/// a unit (the burst). Answers `{1, 0}` when the call is allowed (and counted), else
/// `{0, microseconds until one is}`.
const GCRA: &str = r"
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local interval = tonumber(ARGV[1])
local tolerance = interval * (tonumber(ARGV[2]) - 1)
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local allowed_at = tat - tolerance
if now < allowed_at then
  return {0, math.ceil(allowed_at - now)}
end
local next_tat = tat + interval
redis.call('SET', KEYS[1], string.format('%.0f', next_tat), 'PX', math.ceil((next_tat - now) / 1000) + 1)
return {1, 0}
";

/// What a quota counts calls by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuotaKey {
    /// The client's identity, as admission derives it (certificate, trusted `x-client-id`,
    /// address).
    Client,
    /// The end user the call is about, from the `x-cardlookup-subject` metadata.
    Subject,
}

impl QuotaKey {
    const fn name(self) -> &'static str {
        match self {
            Self::Client => "client",
            Self::Subject => "subject",
        }
    }
}

/// One `--quota` rule: `NAME=RATE:KEY`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaRule {
    pub name: String,
    pub rate: Rate,
    pub key: QuotaKey,
}

impl std::str::FromStr for QuotaRule {
    type Err = String;

    /// `per-shopper=20/h:subject`, `per-client=1000/m:client`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let usage = || {
            format!(
                "`{text}`: expected NAME=RATE:KEY, KEY client or subject, e.g. per-shopper=20/h:subject"
            )
        };
        let (name, rest) = text.split_once('=').ok_or_else(usage)?;
        let (rate, key) = rest.split_once(':').ok_or_else(usage)?;
        let rate: Rate = rate
            .parse()
            .map_err(|error| format!("{}: {error}", usage()))?;
        let key = match key.trim() {
            "client" => QuotaKey::Client,
            "subject" => QuotaKey::Subject,
            _ => return Err(usage()),
        };
        let name = name.trim();
        if name.is_empty() || !is_safe_token(name) {
            return Err(usage());
        }
        Ok(Self {
            name: name.to_owned(),
            rate,
            key,
        })
    }
}

/// What a call gets when Redis does not answer within the budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FailureMode {
    /// The call proceeds (the local `--rate-limit` still applies).
    Open,
    /// The call is refused with RESOURCE_EXHAUSTED.
    Closed,
}

/// Where Redis is. Its `Debug` leaves out the URL, which can hold a password.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisTarget {
    url: String,
    password: Option<String>,
}

impl std::fmt::Debug for RedisTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RedisTarget(..)")
    }
}

impl RedisTarget {
    /// A `redis://` or `rediss://` URL, with the password of `--redis-password-file` when
    /// given (it wins over one in the URL). The error never repeats the URL.
    pub fn new(url: &str, password: Option<String>) -> Result<Self, &'static str> {
        if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
            return Err("must start with redis:// or rediss://");
        }
        let target = Self {
            url: url.to_owned(),
            password,
        };
        target
            .connection_info()
            .map_err(|_| "is not a Redis URL (redis://[user:password@]host[:port][/db])")?;
        Ok(target)
    }

    fn connection_info(&self) -> redis::RedisResult<redis::ConnectionInfo> {
        let mut info = self.url.as_str().into_connection_info()?;
        if let Some(password) = &self.password {
            info.redis.password = Some(password.clone());
        }
        Ok(info)
    }
}

/// `--quota` and the Redis they are counted in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaSettings {
    pub rules: Vec<QuotaRule>,
    pub redis: RedisTarget,
    /// The longest a call waits for Redis.
    pub budget: Duration,
    pub failure_mode: FailureMode,
}

/// The quotas, their Redis connection and their metrics.
pub(super) struct Quotas {
    rules: Vec<Quota>,
    budget: Duration,
    failure_mode: FailureMode,
    script: Script,
    /// None until the first connection is made.
    connection: Arc<ArcSwapOption<ConnectionManager>>,
    /// True once the first connection is made.
    connected: tokio::sync::watch::Receiver<bool>,
    backend: Arc<Backend>,
    timeouts: Counter,
    errors: Counter,
}

impl std::fmt::Debug for Quotas {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Quotas")
            .field("rules", &self.rules.len())
            .field("budget", &self.budget)
            .finish_non_exhaustive()
    }
}

struct Quota {
    name: Arc<str>,
    rate: Rate,
    key: QuotaKey,
    /// Microseconds between two calls at the rate.
    interval_micros: f64,
    refused: Counter,
    unkeyed: Counter,
}

/// Whether Redis answers: the gauge, and a log line when that changes (throttled, so a Redis
/// that flaps cannot fill the log).
struct Backend {
    up: AtomicBool,
    gauge: Gauge,
    went: LogThrottle,
    came: LogThrottle,
}

impl Backend {
    fn answered(&self) {
        if !self.up.swap(true, Ordering::Relaxed) {
            self.gauge.set(1.0);
            if self.came.allow().is_some() {
                tracing::info!("the quota store (Redis) answers");
            }
        }
    }

    fn failed(&self, reason: &str) {
        if self.up.swap(false, Ordering::Relaxed) {
            self.gauge.set(0.0);
            if self.went.allow().is_some() {
                tracing::warn!(reason, "the quota store (Redis) does not answer");
            }
        }
    }
}

impl Quotas {
    /// The quotas of `settings`; the connection to Redis is made in the background (a task of
    /// the current runtime), and remade whenever it is lost.
    pub(super) fn new(settings: &QuotaSettings) -> Self {
        describe_gauge!(
            BACKEND_UP,
            "1 when the quota store (Redis) answered the last check, else 0."
        );
        describe_counter!(
            REFUSED,
            "Calls refused with RESOURCE_EXHAUSTED by a --quota, by quota."
        );
        describe_counter!(
            UNKEYED,
            "Calls a subject quota did not count, for want of x-cardlookup-subject metadata, by quota."
        );
        describe_counter!(
            BACKEND_ERRORS,
            "Quota checks Redis did not answer within --quota-budget (reason=timeout) or answered with an error (reason=error); each such call was admitted (--quota-failure-mode open) or refused (closed)."
        );
        let quotas = settings
            .rules
            .iter()
            .map(|rule| Quota {
                name: Arc::from(rule.name.as_str()),
                rate: rule.rate,
                key: rule.key,
                interval_micros: rule.rate.unit_length().as_secs_f64() * 1e6
                    / f64::from(rule.rate.count.get()),
                refused: metrics::counter!(REFUSED, "quota" => rule.name.clone()),
                unkeyed: metrics::counter!(UNKEYED, "quota" => rule.name.clone()),
            })
            .collect();
        let backend = Arc::new(Backend {
            up: AtomicBool::new(false),
            gauge: metrics::gauge!(BACKEND_UP),
            went: LogThrottle::new(LOG_INTERVAL),
            came: LogThrottle::new(LOG_INTERVAL),
        });
        backend.gauge.set(0.0);
        let connection = Arc::new(ArcSwapOption::empty());
        let (made, connected) = tokio::sync::watch::channel(false);
        tokio::spawn(connect(
            settings.redis.clone(),
            settings.budget,
            Arc::clone(&connection),
            Arc::clone(&backend),
            made,
        ));
        Self {
            rules: quotas,
            budget: settings.budget,
            failure_mode: settings.failure_mode,
            script: Script::new(GCRA),
            connection,
            connected,
            backend,
            timeouts: metrics::counter!(BACKEND_ERRORS, "reason" => "timeout"),
            errors: metrics::counter!(BACKEND_ERRORS, "reason" => "error"),
        }
    }

    /// Waits, at most `within`, for the first connection to Redis; whether it was made.
    pub(super) async fn connected(&self, within: Duration) -> bool {
        let mut connected = self.connected.clone();
        matches!(
            tokio::time::timeout(within, connected.wait_for(|made| *made)).await,
            Ok(Ok(_))
        )
    }

    /// The Redis keys of a call from `client` about `subject`, one per quota that counts it.
    fn keys(&self, client: &str, subject: Option<&[u8]>) -> Vec<(&Quota, String)> {
        self.rules
            .iter()
            .filter_map(|quota| {
                let value = match quota.key {
                    QuotaKey::Client => client.as_bytes(),
                    QuotaKey::Subject => {
                        let Some(subject) = subject else {
                            quota.unkeyed.increment(1);
                            return None;
                        };
                        subject
                    }
                };
                Some((quota, redis_key(&quota.name, quota.key, value)))
            })
            .collect()
    }

    /// Checks and counts a call from `client` about `subject` against every quota, within the
    /// budget.
    pub(super) async fn check(&self, client: &str, subject: Option<&[u8]>) -> Result<(), Refusal> {
        let keys = self.keys(client, subject);
        if keys.is_empty() {
            return Ok(());
        }
        let Some(connection) = self.connection.load_full() else {
            self.errors.increment(1);
            return self.unavailable();
        };
        let checks = keys.iter().map(|(quota, key)| {
            let mut connection = ConnectionManager::clone(&connection);
            let script = &self.script;
            async move {
                script
                    .key(key)
                    .arg(quota.interval_micros)
                    .arg(quota.rate.count.get())
                    .invoke_async::<(u8, u64)>(&mut connection)
                    .await
            }
        });
        let answers =
            tokio::time::timeout(self.budget, futures_util::future::try_join_all(checks)).await;
        let answers = match answers {
            Ok(Ok(answers)) => answers,
            Ok(Err(error)) => {
                self.errors.increment(1);
                self.backend.failed(&error.to_string());
                return self.unavailable();
            }
            Err(_elapsed) => {
                self.timeouts.increment(1);
                self.backend.failed("timeout");
                return self.unavailable();
            }
        };
        self.backend.answered();
        for ((quota, _), (allowed, wait_micros)) in keys.iter().zip(answers) {
            if allowed == 0 {
                quota.refused.increment(1);
                return Err(Refusal::QuotaExceeded {
                    quota: Arc::clone(&quota.name),
                    rate: quota.rate,
                    retry_after: Duration::from_micros(wait_micros).max(Duration::from_millis(1)),
                });
            }
        }
        Ok(())
    }

    fn unavailable(&self) -> Result<(), Refusal> {
        match self.failure_mode {
            FailureMode::Open => Ok(()),
            FailureMode::Closed => Err(Refusal::QuotaStoreUnavailable),
        }
    }
}

/// `cardlookup:quota:<name>:<hex SHA-256 of kind, NUL, value>`.
fn redis_key(name: &str, kind: QuotaKey, value: &[u8]) -> String {
    use std::fmt::Write;
    let mut hash = Sha256::new();
    hash.update(kind.name().as_bytes());
    hash.update([0]);
    hash.update(value);
    let mut key = format!("cardlookup:quota:{name}:");
    for byte in hash.finalize() {
        let _ = write!(key, "{byte:02x}");
    }
    key
}

/// Connects to Redis, with backoff up to [`MAX_RECONNECT_DELAY`] until it answers; from then on
/// the connection manager reconnects by itself when the connection is lost.
async fn connect(
    target: RedisTarget,
    budget: Duration,
    connection: Arc<ArcSwapOption<ConnectionManager>>,
    backend: Arc<Backend>,
    made: tokio::sync::watch::Sender<bool>,
) {
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(MAX_RECONNECT_DELAY)
        .set_response_timeout(budget.max(Duration::from_secs(1)))
        .set_number_of_retries(3)
        .set_max_delay(u64::try_from(MAX_RECONNECT_DELAY.as_millis()).unwrap_or(u64::MAX));
    let mut delay = Duration::from_millis(50);
    loop {
        let attempt = match target.connection_info().and_then(redis::Client::open) {
            Ok(client) => ConnectionManager::new_with_config(client, config.clone()).await,
            Err(error) => Err(error),
        };
        match attempt {
            Ok(manager) => {
                connection.store(Some(Arc::new(manager)));
                backend.answered();
                made.send_replace(true);
                return;
            }
            Err(error) => backend.failed(&error.to_string()),
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(MAX_RECONNECT_DELAY);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_parse() {
        let rule: QuotaRule = "per-shopper=20/h:subject".parse().unwrap();
        assert_eq!(
            (rule.name.as_str(), rule.rate.to_string(), rule.key),
            ("per-shopper", "20/h".into(), QuotaKey::Subject)
        );
        let rule: QuotaRule = " per-client = 1000/m : client ".parse().unwrap();
        assert_eq!(rule.key, QuotaKey::Client);
        for bad in [
            "per-shopper",
            "per-shopper=20/h",
            "per-shopper=20/w:subject",
            "per-shopper=20/h:ip",
            "=20/h:subject",
            "a b=20/h:subject",
        ] {
            assert!(bad.parse::<QuotaRule>().is_err(), "{bad}");
        }
    }

    #[test]
    fn a_subject_that_could_be_a_card_number_is_refused() {
        for card in [
            &b"4111111111111111"[..],
            b"4111 1111 1111 1111",
            b"user-4111-1111-1111",
        ] {
            assert_eq!(checked_subject(card), Err(Refusal::SubjectLooksLikeCard));
        }
        for fine in [
            &b"203.0.113.7"[..],
            b"2001:db8::1",
            b"user-12345678901",
            b"device-ab12",
        ] {
            assert_eq!(checked_subject(fine), Ok(fine));
        }
    }

    #[test]
    fn keys_are_hashes_of_kind_and_value() {
        let key = redis_key("per-shopper", QuotaKey::Subject, b"shopper-42");
        assert!(key.starts_with("cardlookup:quota:per-shopper:"), "{key}");
        assert!(!key.contains("shopper-42"), "{key}");
        assert_eq!(key.len(), "cardlookup:quota:per-shopper:".len() + 64);
        // The same value as a client is another key.
        assert_ne!(
            key,
            redis_key("per-shopper", QuotaKey::Client, b"shopper-42")
        );
    }

    #[test]
    fn a_target_is_a_redis_url_and_never_shows_it() {
        let target = RedisTarget::new("redis://:hunter2@127.0.0.1:6379/0", None).unwrap();
        assert!(!format!("{target:?}").contains("hunter2"));
        let info = RedisTarget::new("redis://127.0.0.1", Some("s3cret".into()))
            .unwrap()
            .connection_info()
            .unwrap();
        assert_eq!(info.redis.password.as_deref(), Some("s3cret"));
        assert!(RedisTarget::new("rediss://cache.internal:6380", None).is_ok());
        for bad in ["http://127.0.0.1", "127.0.0.1:6379", "redis://"] {
            assert!(RedisTarget::new(bad, None).is_err(), "{bad}");
        }
    }
}
