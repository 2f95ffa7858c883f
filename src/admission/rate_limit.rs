//! `--rate-limit`: classes of clients, each client of a class with a token bucket at the
//! class's rate (kept in the client's entry, `clients`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota};
use metrics::{Counter, describe_counter};

use super::Refusal;
use super::rate::Rate;
use crate::token::is_safe_token;

/// The class of clients that no `--rate-limit` rule names.
pub const DEFAULT_CLASS: &str = "default";
const RATE_LIMITED: &str = "cardlookup_requests_rate_limited_total";

/// One `--rate-limit` rule: a class of clients, its rate, and its members.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimitRule {
    pub class: String,
    /// Calls each client of the class may make (`count` a `unit`; also the burst).
    pub rate: Rate,
    /// Client identities in the class; empty for `default`.
    pub members: Vec<String>,
}

impl std::str::FromStr for RateLimitRule {
    type Err = String;

    /// `CLASS=RATE[:ID,ID...]`, RATE as `N/s`, `N/m`, `N/h` or `N/d` ([`Rate`]):
    /// `default=100/s`, `checkout=5000/s:checkout-svc,checkout-canary`, `reports=500/d:batch`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let usage = || {
            format!("`{text}`: expected CLASS=RATE[:ID,ID...], e.g. checkout=5000/s:checkout-svc")
        };
        let (class, rest) = text.split_once('=').ok_or_else(usage)?;
        let (rate, members) = rest.split_once(':').unwrap_or((rest, ""));
        let rate: Rate = rate
            .parse()
            .map_err(|error| format!("{}: {error}", usage()))?;
        let class = class.trim();
        if class.is_empty() || !is_safe_token(class) {
            return Err(usage());
        }
        Ok(Self {
            class: class.to_owned(),
            rate,
            members: members
                .split(',')
                .map(str::trim)
                .filter(|m| !m.is_empty())
                .map(str::to_owned)
                .collect(),
        })
    }
}

/// The classes of the rules and who is in which.
#[derive(Debug)]
pub(super) struct RateLimits {
    classes: Vec<ClientClass>,
    /// Client id → index into `classes`.
    members: HashMap<String, usize>,
    default_class: Option<usize>,
    default_name: Arc<str>,
}

#[derive(Debug)]
pub(super) struct ClientClass {
    pub(super) name: Arc<str>,
    rate: Rate,
    /// Each client's bucket.
    pub(super) quota: Quota,
    refused: Counter,
}

impl RateLimits {
    pub(super) fn new(rules: &[RateLimitRule]) -> Self {
        describe_counter!(
            RATE_LIMITED,
            "Calls refused with RESOURCE_EXHAUSTED by a client class's rate limit."
        );
        let classes = rules
            .iter()
            .map(|rule| ClientClass {
                name: Arc::from(rule.class.as_str()),
                rate: rule.rate,
                quota: rule.rate.bucket(),
                refused: metrics::counter!(RATE_LIMITED, "client_class" => rule.class.clone()),
            })
            .collect();
        let members = rules
            .iter()
            .enumerate()
            .flat_map(|(i, rule)| rule.members.iter().map(move |m| (m.clone(), i)))
            .collect();
        Self {
            classes,
            members,
            default_class: rules.iter().position(|r| r.class == DEFAULT_CLASS),
            default_name: Arc::from(DEFAULT_CLASS),
        }
    }

    /// The class that covers client `id`, if any rule does.
    pub(super) fn class_of(&self, id: &str) -> Option<&ClientClass> {
        self.members
            .get(id)
            .copied()
            .or(self.default_class)
            .map(|i| &self.classes[i])
    }

    /// The name of `class`: its own, or `default` for clients no rule covers.
    pub(super) fn name(&self, class: Option<&ClientClass>) -> Arc<str> {
        Arc::clone(class.map_or(&self.default_name, |class| &class.name))
    }
}

impl ClientClass {
    /// The refusal when a client's bucket, at this class's rate, has no call left this
    /// instant.
    pub(super) fn check_rate(&self, bucket: &DefaultDirectRateLimiter) -> Result<(), Refusal> {
        let Err(not_until) = bucket.check() else {
            return Ok(());
        };
        self.refused.increment(1);
        let retry_after = not_until
            .wait_time_from(DefaultClock::default().now())
            .max(Duration::from_millis(1));
        Err(Refusal::RateLimited {
            class: Arc::clone(&self.name),
            rate: self.rate,
            retry_after,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_parse() {
        let rule: RateLimitRule = "checkout=5000/s:checkout-svc, canary".parse().unwrap();
        assert_eq!(rule.class, "checkout");
        assert_eq!(rule.rate.to_string(), "5000/s");
        assert_eq!(rule.members, ["checkout-svc", "canary"]);
        let rule: RateLimitRule = "default=90/m".parse().unwrap();
        assert_eq!(
            (rule.rate.to_string(), rule.members.len()),
            ("90/m".into(), 0)
        );
        let rule: RateLimitRule = "reports=500/d:batch".parse().unwrap();
        assert_eq!(rule.rate.to_string(), "500/d");
        for bad in [
            "checkout",
            "checkout=5000",
            "checkout=0/s",
            "checkout=5/w",
            "=5/s",
            "a b=5/s",
        ] {
            assert!(bad.parse::<RateLimitRule>().is_err(), "{bad}");
        }
    }
}
