//! What a replica keeps of a quota between its trips to Redis: tokens taken ahead of its calls
//! for fast quotas, and refusals.
//!
//! - **Leases.** A quota of at least [`LEASE_FROM`] calls a second (unless `--quota-exact`)
//!   asks Redis for a thousandth of a second's calls at once (at most [`MAX_LEASE`]) and
//!   spends them here, so that a busy key costs Redis one check every few hundred calls rather
//!   than every call. The tokens are taken from the shared GCRA when leased, so the replicas
//!   together never admit more than Redis granted; a replica may spend its last lease up to
//!   [`LEASE_LIFE`] after it was granted, so a window can see up to one lease a replica beyond
//!   the limit, and tokens unspent at the end of their life are lost (calls refused early, never
//!   late). One lease is asked for at a time a key; the calls that come while it is on its way
//!   are checked one by one. Slower quotas (the seed's 20 an hour) are exact to the call.
//! - **Refusals.** Redis refuses with the time until a call is allowed again, and a GCRA's
//!   allowed time only moves later, so no call can be allowed before then: calls until that
//!   time are refused here, exactly, without asking Redis. A client hammering past its quota
//!   costs Redis one check a reset.
//!
//! The table is keyed by the quota's key value (subject, client identity), which stays in the
//! process; Redis sees only hashes. It holds at most [`MAX_ENTRIES`] keys a quota
//! ([`crate::eviction`]).

use std::time::{Duration, Instant};

use dashmap::DashMap;
use rustc_hash::FxBuildHasher;

use crate::admission::rate::Rate;
use crate::eviction::make_room;

/// The fastest quota checked in Redis call by call, in calls a second: from here on a lease is
/// at least two calls.
const LEASE_FROM: u64 = 2_000;
/// The most calls one lease holds.
const MAX_LEASE: u32 = 1_000;
/// How long a lease's tokens may be spent.
const LEASE_LIFE: Duration = Duration::from_secs(1);
/// Keys kept a quota.
const MAX_ENTRIES: usize = 65_536;

/// What a call gets from what the replica holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Local {
    /// Admitted with a leased token.
    Allowed,
    /// Refused: a call is allowed again only after this.
    Refused(Duration),
    /// Redis must check the call: ask for this many tokens (1: the call's own).
    Ask(u32),
}

/// One key's state on this replica.
#[derive(Debug)]
struct Held {
    /// Leased tokens left, spendable until `expires`.
    tokens: u32,
    expires: Instant,
    /// A lease is on its way.
    asking: bool,
    /// Redis refused until then.
    refused_until: Option<Instant>,
    /// When the key was last used, in milliseconds from the table's start (for eviction).
    last_seen: u64,
}

/// One quota's leases and refusals.
#[derive(Debug)]
pub(super) struct Leases {
    /// The tokens a lease asks for; 1 for an exact quota.
    lease: u32,
    started: Instant,
    held: DashMap<Box<[u8]>, Held, FxBuildHasher>,
}

impl Leases {
    /// The table of a quota of `rate`; with `exact`, every call is checked in Redis.
    pub(super) fn new(rate: Rate, exact: bool) -> Self {
        let unit_seconds = rate.unit_length().as_secs().max(1);
        let count = u64::from(rate.count.get());
        let lease = if exact || count < LEASE_FROM * unit_seconds {
            1
        } else {
            // A thousandth of a second's calls, at most a hundredth of the quota's burst.
            let lease = (count / unit_seconds / 1_000).min(count / 100).max(1);
            u32::try_from(lease).map_or(MAX_LEASE, |lease| lease.min(MAX_LEASE))
        };
        Self {
            lease,
            started: Instant::now(),
            held: DashMap::with_hasher(FxBuildHasher),
        }
    }

    /// What a call keyed `value` gets at `now` from what the replica holds.
    pub(super) fn take(&self, value: &[u8], now: Instant) -> Local {
        if let Some(mut held) = self.held.get_mut(value) {
            held.last_seen = self.millis(now);
            // Tokens held were granted, so spending them is right even past a refusal: one call
            // checked alone while the lease was on its way may be refused after Redis granted it.
            if held.tokens > 0 && now < held.expires {
                held.tokens -= 1;
                return Local::Allowed;
            }
            if let Some(until) = held.refused_until {
                if now < until {
                    return Local::Refused(until - now);
                }
                held.refused_until = None;
            }
            if held.asking || self.lease == 1 {
                return Local::Ask(1);
            }
            held.asking = true;
            return Local::Ask(self.lease);
        }
        if self.lease == 1 {
            return Local::Ask(1);
        }
        self.insert(value, now, |held| held.asking = true);
        Local::Ask(self.lease)
    }

    /// Redis answered a check of `asked` tokens for `value`: `granted` of them (the call's own
    /// among them), else none and a call is allowed again in `wait`.
    pub(super) fn answered(
        &self,
        value: &[u8],
        asked: u32,
        granted: u32,
        wait: Duration,
        now: Instant,
    ) {
        if granted == 0 {
            let until = now + wait;
            let refuse = |held: &mut Held| {
                held.refused_until = Some(until);
                if asked > 1 {
                    held.asking = false;
                }
            };
            match self.held.get_mut(value) {
                Some(mut held) => refuse(&mut held),
                None => self.insert(value, now, refuse),
            }
        } else if asked > 1
            && let Some(mut held) = self.held.get_mut(value)
        {
            // Evicted while asking: the tokens are lost, as if they had expired.
            held.tokens = granted - 1;
            held.expires = now + LEASE_LIFE;
            held.asking = false;
        }
    }

    /// A check of `asked` tokens for `value` got no answer (Redis down or late): another call
    /// may ask for the lease.
    pub(super) fn unanswered(&self, value: &[u8], asked: u32) {
        if asked > 1
            && let Some(mut held) = self.held.get_mut(value)
        {
            held.asking = false;
        }
    }

    fn insert(&self, value: &[u8], now: Instant, set: impl FnOnce(&mut Held)) {
        make_room(&self.held, MAX_ENTRIES, |held| Some(held.last_seen));
        let mut held = Held {
            tokens: 0,
            expires: now,
            asking: false,
            refused_until: None,
            last_seen: self.millis(now),
        };
        set(&mut held);
        self.held.insert(value.into(), held);
    }

    fn millis(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.started).as_millis() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(text: &str) -> Rate {
        text.parse().unwrap()
    }

    #[test]
    fn slow_quotas_and_exact_ones_are_checked_call_by_call() {
        for slow in ["20/h", "1000/m", "1999/s"] {
            assert_eq!(Leases::new(rate(slow), false).lease, 1, "{slow}");
        }
        assert_eq!(Leases::new(rate("100000/s"), true).lease, 1);
        assert_eq!(Leases::new(rate("2000/s"), false).lease, 2);
        assert_eq!(Leases::new(rate("100000/s"), false).lease, 100);
        assert_eq!(Leases::new(rate("4000000000/s"), false).lease, MAX_LEASE);
    }

    #[test]
    fn a_lease_is_spent_here_then_asked_for_again() {
        let leases = Leases::new(rate("100000/s"), false);
        let now = Instant::now();
        assert_eq!(leases.take(b"shopper", now), Local::Ask(100));
        // While the lease is on its way, calls are checked one by one.
        assert_eq!(leases.take(b"shopper", now), Local::Ask(1));
        leases.answered(b"shopper", 100, 100, Duration::ZERO, now);
        for _ in 0..99 {
            assert_eq!(leases.take(b"shopper", now), Local::Allowed);
        }
        assert_eq!(leases.take(b"shopper", now), Local::Ask(100));
        // Another key has its own.
        assert_eq!(leases.take(b"other", now), Local::Ask(100));
    }

    #[test]
    fn a_partial_lease_is_spent_and_an_old_one_is_not() {
        let leases = Leases::new(rate("100000/s"), false);
        let now = Instant::now();
        assert_eq!(leases.take(b"k", now), Local::Ask(100));
        leases.answered(b"k", 100, 3, Duration::ZERO, now);
        assert_eq!(leases.take(b"k", now), Local::Allowed);
        let later = now + LEASE_LIFE;
        assert_eq!(leases.take(b"k", later), Local::Ask(100), "expired");
    }

    #[test]
    fn a_refusal_holds_until_its_time_for_exact_and_leased_quotas() {
        for quota in ["20/h", "100000/s"] {
            let leases = Leases::new(rate(quota), false);
            let lease = leases.lease;
            let now = Instant::now();
            assert_eq!(leases.take(b"k", now), Local::Ask(lease));
            leases.answered(b"k", lease, 0, Duration::from_secs(3), now);
            assert_eq!(
                leases.take(b"k", now + Duration::from_secs(1)),
                Local::Refused(Duration::from_secs(2)),
                "{quota}"
            );
            assert_eq!(leases.take(b"other", now), Local::Ask(lease), "{quota}");
            assert_eq!(
                leases.take(b"k", now + Duration::from_secs(3)),
                Local::Ask(lease),
                "{quota}: Redis is asked again at the reset"
            );
        }
    }

    #[test]
    fn leased_tokens_are_spent_before_a_refusal_that_came_after_them() {
        let leases = Leases::new(rate("100000/s"), false);
        let now = Instant::now();
        assert_eq!(leases.take(b"k", now), Local::Ask(100));
        assert_eq!(leases.take(b"k", now), Local::Ask(1));
        // Redis granted the lease its last 2 calls, then refused the call checked alone.
        leases.answered(b"k", 100, 2, Duration::ZERO, now);
        leases.answered(b"k", 1, 0, Duration::from_secs(3), now);
        assert_eq!(leases.take(b"k", now), Local::Allowed);
        assert_eq!(
            leases.take(b"k", now),
            Local::Refused(Duration::from_secs(3))
        );
    }

    #[test]
    fn an_unanswered_lease_can_be_asked_for_again() {
        let leases = Leases::new(rate("100000/s"), false);
        let now = Instant::now();
        assert_eq!(leases.take(b"k", now), Local::Ask(100));
        assert_eq!(leases.take(b"k", now), Local::Ask(1));
        leases.unanswered(b"k", 100);
        assert_eq!(leases.take(b"k", now), Local::Ask(100));
    }

    #[test]
    fn the_table_stays_bounded() {
        let leases = Leases::new(rate("100000/s"), false);
        let now = Instant::now();
        for key in 0..(MAX_ENTRIES as u32 + 100) {
            leases.take(&key.to_be_bytes(), now);
        }
        assert!(leases.held.len() <= MAX_ENTRIES);
    }
}
