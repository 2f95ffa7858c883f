//! `--quota`: limits shared by every replica, counted in Redis (or a server that speaks its
//! protocol: Valkey, a managed Redis), so that N replicas do not give a client N times its rate.
//!
//! Each quota is a GCRA (generic cell rate algorithm) in one Lua script, run atomically by
//! Redis: the key holds the "theoretical arrival time" of the next call, in microseconds of the
//! Redis server's own clock (so the replicas' clocks do not matter), and the script answers
//! allowed, or refused with the time until a call is allowed again. The checks of concurrent
//! calls go to Redis together, one script run a batch (`batch`). A call refused by one quota
//! still counts against the others.
//!
//! Each replica also keeps, for each key, what Redis last told it (`lease`): refusals until
//! their reset (exact), and for quotas of at least 2,000 calls a second (unless
//! `--quota-exact`) tokens taken ahead of its calls. Slower quotas are exact to the call across
//! replicas.
//!
//! Keys are `cardlookup:quota:<name>:<hex SHA-256 of the key kind and value>`: no subject or
//! client identity is stored in Redis, only these hashes and the arrival times.
//!
//! Redis (the process's [`SharedStore`]) is given `--quota-budget` a call; past it, or on any
//! error, `--quota-failure-mode` decides: `open` admits the call, `closed` refuses it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use metrics::{Counter, describe_counter};
use tonic::codegen::http;

use batch::{BatchError, Batcher, Check};
use lease::{Leases, Local};

use super::Refusal;
use super::rate::Rate;
use crate::shared_store::{SharedStore, hashed};
use crate::token::is_safe_token;

mod batch;
mod lease;

/// The metadata that names the end user a call is about, for `subject` quotas.
pub static SUBJECT_HEADER: http::HeaderName = http::HeaderName::from_static("x-cardlookup-subject");

/// The subject, unless it holds a run of digits as long as a card number's (spaces and dashes
/// between them count as part of the run): a caller that names shoppers by their card would
/// otherwise put an unkeyed hash of the card into Redis, which a PAN's small search space makes
/// reversible.
pub(crate) fn checked_subject(subject: &[u8]) -> Result<&[u8], Refusal> {
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

const REFUSED: &str = "cardlookup_quota_refused_total";
const UNKEYED: &str = "cardlookup_quota_unkeyed_total";
const BACKEND_ERRORS: &str = "cardlookup_quota_backend_errors_total";

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

/// `--quota`: the rules, and how long a call waits for Redis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaSettings {
    pub rules: Vec<QuotaRule>,
    /// The longest a call waits for Redis.
    pub budget: Duration,
    pub failure_mode: FailureMode,
    /// Every call checked in Redis, fast quotas too (no leases).
    pub exact: bool,
}

/// The quotas, the store they are counted in, and their metrics.
pub(super) struct Quotas {
    rules: Vec<Quota>,
    budget: Duration,
    failure_mode: FailureMode,
    batcher: Batcher,
    store: Arc<SharedStore>,
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
    leases: Leases,
    refused: Counter,
    unkeyed: Counter,
}

impl Quota {
    /// A call refused by this quota: counted, and told when to retry.
    fn refuse(&self, retry_after: Duration) -> Refusal {
        self.refused.increment(1);
        Refusal::QuotaExceeded {
            quota: Arc::clone(&self.name),
            rate: self.rate,
            retry_after,
        }
    }
}

impl Quotas {
    /// The quotas of `settings`, counted in `store`.
    pub(super) fn new(settings: &QuotaSettings, store: Arc<SharedStore>) -> Self {
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
                leases: Leases::new(rule.rate, settings.exact),
                refused: metrics::counter!(REFUSED, "quota" => rule.name.clone()),
                unkeyed: metrics::counter!(UNKEYED, "quota" => rule.name.clone()),
            })
            .collect();
        Self {
            rules: quotas,
            budget: settings.budget,
            failure_mode: settings.failure_mode,
            batcher: Batcher::start(Arc::clone(&store)),
            store,
            timeouts: metrics::counter!(BACKEND_ERRORS, "reason" => "timeout"),
            errors: metrics::counter!(BACKEND_ERRORS, "reason" => "error"),
        }
    }

    /// Checks and counts a call from `client` about `subject` against every quota: from what
    /// the replica holds (`lease`) where it can, else in Redis within the budget.
    pub(super) async fn check(&self, client: &str, subject: Option<&[u8]>) -> Result<(), Refusal> {
        let now = Instant::now();
        // Per check sent: its quota, the key's value and the calls asked for.
        let mut asked: Vec<(&Quota, &[u8], u32)> = Vec::new();
        let mut checks = Vec::new();
        // A call refused by one quota still counts against the others, so it is not answered
        // before they are checked.
        let mut refusal = None;
        for quota in &self.rules {
            let value = match quota.key {
                QuotaKey::Client => client.as_bytes(),
                QuotaKey::Subject => {
                    let Some(subject) = subject else {
                        quota.unkeyed.increment(1);
                        continue;
                    };
                    subject
                }
            };
            match quota.leases.take(value, now) {
                Local::Allowed => {}
                Local::Refused(wait) => {
                    refusal.get_or_insert_with(|| quota.refuse(wait));
                }
                Local::Ask(want) => {
                    asked.push((quota, value, want));
                    checks.push(Check {
                        key: redis_key(&quota.name, quota.key, value),
                        interval_micros: quota.interval_micros,
                        burst: quota.rate.count.get(),
                        want,
                    });
                }
            }
        }
        if checks.is_empty() {
            return refusal.map_or(Ok(()), Err);
        }
        let answers = tokio::time::timeout(self.budget, self.batcher.check(checks)).await;
        let answers = match answers {
            Ok(Ok(answers)) => answers,
            failed => {
                for (quota, value, want) in asked {
                    quota.leases.unanswered(value, want);
                }
                if let Ok(Err(BatchError::NotConnected | BatchError::Redis(_))) = failed {
                    self.errors.increment(1);
                } else {
                    self.timeouts.increment(1);
                    self.store.failed("timeout");
                }
                return refusal.map_or_else(|| self.unavailable(), Err);
            }
        };
        // Every answer is kept, refused or not, before the call's own is given.
        let now = Instant::now();
        for ((quota, value, want), (granted, wait_micros)) in asked.into_iter().zip(answers) {
            let wait = Duration::from_micros(wait_micros).max(Duration::from_millis(1));
            quota.leases.answered(value, want, granted, wait, now);
            if granted == 0 {
                refusal.get_or_insert_with(|| quota.refuse(wait));
            }
        }
        refusal.map_or(Ok(()), Err)
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
    format!("cardlookup:quota:{name}:{}", hashed(kind.name(), value))
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
}
