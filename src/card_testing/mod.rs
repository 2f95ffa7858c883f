//! Card-testing detection: a client that walks through BINs, or sends mostly invalid numbers,
//! is probably testing stolen or generated card numbers, not paying.
//!
//! Per client (the identity the admission layer gives) the detector keeps a sliding window in
//! six slots: the distinct BINs seen (each with the last slot it was seen in), with
//! `--card-testing-max-cards` the distinct cards (whole numbers that pass the Luhn check, by a
//! keyed 64-bit hash), and, of the numbers validated, how many failed the Luhn check. Crossing
//! a threshold flags the client once a window: a warning log line, the counter
//! `cardlookup_card_testing_suspected_total{client_class,reason}`, and, with `--card-testing
//! refuse`, PERMISSION_DENIED for its calls until the window has passed. Nothing of the numbers
//! is kept but their BIN (first six digits), which PCI DSS allows to store, and the cards'
//! 64-bit SipHash under a secret key: drawn at start, or with `--fingerprint-key-file` derived
//! from the signing key, so that every replica with the key gives a card the same hash.
//!
//! With a shared store (`--redis-url`) the windows are also pooled across replicas
//! ([`fleet`]): each replica keeps what it has not reported yet (the BINs new in a slot, the
//! Luhn counts, a flag it raised) and sends it once a second, so a client is judged on its
//! calls to every replica, and one flagged anywhere is flagged everywhere. The calls themselves
//! never wait on Redis. Distinct cards are pooled only when the replicas share a card key
//! (`--fingerprint-key-file`): otherwise their hashes differ, each replica counts alone, and a
//! client one replica flags for them is still flagged everywhere, as any.

pub mod fleet;

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher, RandomState};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use dashmap::DashMap;
use rustc_hash::FxBuildHasher;

use siphasher::sip::SipHasher13;

use crate::card::FingerprintKey;
use crate::eviction::make_room;
use crate::identity::ClientIdentity;

const SLOTS: usize = 6;
const SUSPECTED: &str = "cardlookup_card_testing_suspected_total";

/// What the detector looks for, and what it does.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CardTestingConfig {
    /// The sliding window.
    pub window: Duration,
    /// Distinct BINs in a window above which a client is flagged; 0 turns this check off.
    pub max_distinct_bins: usize,
    /// Distinct cards (whole numbers passing Luhn) in a window above which a client is
    /// flagged; 0 (the default) turns this check off.
    pub max_distinct_cards: usize,
    /// Share of Luhn failures among validated numbers above which a client is flagged...
    pub max_luhn_failure_ratio: f64,
    /// ...taken of at least this many numbers: a client that validated fewer is flagged once
    /// its failures alone exceed that share of this many (which it would reach anyway, however
    /// many of its next numbers pass).
    pub min_validations: u32,
    /// Refuse a flagged client's calls (PERMISSION_DENIED) rather than only report it.
    pub refuse: bool,
    /// Clients whose windows are kept at once; the least recently seen are forgotten first.
    pub max_clients: usize,
}

impl Default for CardTestingConfig {
    /// Thresholds that honest callers do not reach: 1,000 distinct BINs a minute, or more than
    /// half of the numbers failing Luhn, and more than 25 (half of 50) of them: typing errors are
    /// a few percent.
    fn default() -> Self {
        Self {
            window: Duration::from_secs(60),
            max_distinct_bins: 1000,
            // Off: a payment service's calls carry a new card each, as a rule.
            max_distinct_cards: 0,
            max_luhn_failure_ratio: 0.5,
            min_validations: 50,
            refuse: false,
            max_clients: 10_000,
        }
    }
}

/// Why a client was flagged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Suspicion {
    /// Many distinct BINs: walking through issuers' ranges.
    BinWalk,
    /// Mostly invalid numbers: guessing.
    LuhnFailures,
    /// Many distinct valid numbers: trying generated or stolen cards, often within one BIN.
    CardWalk,
}

impl Suspicion {
    #[must_use]
    pub const fn label(self) -> &'static str {
        match self {
            Self::BinWalk => "bin_walk",
            Self::LuhnFailures => "luhn_failures",
            Self::CardWalk => "card_walk",
        }
    }

    const ALL: [Self; 3] = [Self::BinWalk, Self::LuhnFailures, Self::CardWalk];

    /// The suspicion of a [`Self::label`].
    fn from_label(label: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|suspicion| suspicion.label() == label)
    }
}

/// What the card key is derived from the fingerprint key with: another use of the secret than
/// fingerprints, so that neither tells anything of the other.
const CARD_KEY_LABEL: &[u8] = b"cardlookup card-testing card key v1";

/// 64 random bits, from the standard library's per-process hash keys.
fn random_u64() -> u64 {
    RandomState::new().build_hasher().finish()
}

/// Where slot number `now` lives in a window's ring of slots.
fn slot_index(now: u64) -> usize {
    (now % SLOTS as u64) as usize
}

#[derive(Debug, Default)]
struct Slot {
    /// Which slot of time this is (time since start / slot length); older contents are stale.
    number: u64,
    /// Atomic, so that calls holding the client's entry shared can count.
    validations: AtomicU32,
    luhn_failures: AtomicU32,
}

impl Slot {
    fn count(&self, luhn_valid: Option<bool>) {
        if let Some(valid) = luhn_valid {
            self.validations.fetch_add(1, Ordering::Relaxed);
            if !valid {
                self.luhn_failures.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// What a replica has seen of a client and not yet reported to the pool ([`fleet`]); kept only
/// when the detector is pooled.
#[derive(Debug, Default)]
struct Unreported {
    /// The client called: its report, even with nothing new in it, tells the replica whether
    /// the pool has flagged the client.
    called: AtomicBool,
    /// BINs in the order they were first seen in a slot (a BIN seen in two slots is here
    /// twice: the pool counts distinct BINs itself).
    bins: Vec<u32>,
    /// Cards likewise, when the replicas share the card key.
    cards: Vec<u64>,
    /// Atomic, as the slots' counts are.
    validations: AtomicU32,
    luhn_failures: AtomicU32,
    /// A flag raised here.
    flagged: Option<Suspicion>,
}

#[derive(Debug, Default)]
struct ClientWindow {
    slots: [Slot; SLOTS],
    /// BIN → the last slot it was seen in. One map for the window rather than a set a slot:
    /// the distinct count is its length, where a union of the slots' sets cost every call of a
    /// client with many BINs time in proportion to them.
    bins: HashMap<u32, u64, FxBuildHasher>,
    /// A card's hash → the last slot it was seen in, as `bins` (only with a card limit).
    cards: HashMap<u64, u64, FxBuildHasher>,
    /// Flagged until this slot number (exclusive): one report a window.
    flagged_until: u64,
    flagged_for: Option<Suspicion>,
    /// The last slot a call of the client was recorded in (and `bins` pruned in).
    last_seen: u64,
    /// The client's rate-limit class, for the pool's report.
    class: Arc<str>,
    unreported: Unreported,
}

impl ClientWindow {
    /// Whether a call in slot `now` with `bin` and `card` would change nothing here but the
    /// Luhn counts: the client was recorded in this slot already (so the slot is current), and
    /// so were the BIN (when BINs are counted) and the card (when given: cards are counted).
    fn is_current(&self, now: u64, bin: u32, card: Option<u64>, max_distinct_bins: usize) -> bool {
        self.last_seen == now
            && (max_distinct_bins == 0 || self.bins.get(&bin) == Some(&now))
            && card.is_none_or(|card| self.cards.get(&card) == Some(&now))
    }

    /// Counts a call and its Luhn result in slot `now`, which is current (see [`Self::slot`]);
    /// and for the pool, when `pooled`.
    fn count(&self, now: u64, luhn_valid: Option<bool>, pooled: bool) {
        self.slots[slot_index(now)].count(luhn_valid);
        if !pooled {
            return;
        }
        // Read first: a busy client's calls on several cores then share the line unmodified.
        if !self.unreported.called.load(Ordering::Relaxed) {
            self.unreported.called.store(true, Ordering::Relaxed);
        }
        if let Some(valid) = luhn_valid {
            self.unreported.validations.fetch_add(1, Ordering::Relaxed);
            if !valid {
                self.unreported
                    .luhn_failures
                    .fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Records a call in slot `now`: what a call holding the entry shared cannot. `pooled`:
    /// kept for the pool; `pool_cards`: cards too.
    fn record(
        &mut self,
        now: u64,
        seen: Seen,
        config: &CardTestingConfig,
        (pooled, pool_cards): (bool, bool),
    ) {
        let Seen {
            bin,
            card,
            luhn_valid,
        } = seen;
        let max_distinct_bins = config.max_distinct_bins;
        if self.last_seen != now {
            // The client's first call in this slot: forget what was last seen before the window.
            self.bins.retain(|_, seen| *seen + SLOTS as u64 > now);
            self.cards.retain(|_, seen| *seen + SLOTS as u64 > now);
            self.last_seen = now;
        }
        if let Some(card) = card {
            let new_in_slot = self.cards.get(&card) != Some(&now);
            see(&mut self.cards, card, now, config.max_distinct_cards);
            if pool_cards && new_in_slot && self.unreported.cards.len() <= config.max_distinct_cards
            {
                self.unreported.cards.push(card);
            }
        }
        if max_distinct_bins > 0 {
            let new_in_slot = self.bins.get(&bin) != Some(&now);
            see(&mut self.bins, bin, now, max_distinct_bins);
            // Bounded as `bins` is: past the limit the pool needs no more to flag the client.
            if pooled && new_in_slot && self.unreported.bins.len() <= max_distinct_bins {
                self.unreported.bins.push(bin);
            }
        }
        self.slot(now);
        self.count(now, luhn_valid, pooled);
    }

    /// Makes slot `now` current, emptying it if it held an older slot.
    fn slot(&mut self, now: u64) {
        let slot = &mut self.slots[slot_index(now)];
        if slot.number != now {
            *slot = Slot {
                number: now,
                ..Slot::default()
            };
        }
    }

    fn live(&self, now: u64) -> impl Iterator<Item = &Slot> {
        self.slots
            .iter()
            .filter(move |s| s.number + SLOTS as u64 > now && s.number <= now)
    }
}

/// Notes `key` (a BIN, a card) as seen in slot `now` in `seen`. Once the window holds more than
/// `limit` keys only those already there are renewed: the count is only ever compared with the
/// limit, and a client walking through every BIN or card must not make the map grow without
/// bound.
fn see<K: std::hash::Hash + Eq>(
    seen: &mut HashMap<K, u64, FxBuildHasher>,
    key: K,
    now: u64,
    limit: usize,
) {
    if seen.len() <= limit {
        seen.insert(key, now);
    } else if let Some(last) = seen.get_mut(&key) {
        *last = now;
    }
}

/// What a call shows the detector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seen {
    /// The number's BIN (first six digits).
    pub bin: u32,
    /// The card, by [`CardTestingDetector::card`], when the number is a whole valid one and
    /// cards are counted.
    pub card: Option<u64>,
    /// Whether the number passed the Luhn check, when it was validated.
    pub luhn_valid: Option<bool>,
}

/// The detector, shared by all calls.
#[derive(Debug)]
pub struct CardTestingDetector {
    config: CardTestingConfig,
    started: Instant,
    slot_nanos: u64,
    /// The map entry's lock serialises the calls of one client; other clients' calls go on.
    clients: DashMap<Arc<str>, ClientWindow, FxBuildHasher>,
    /// Whether what is seen is kept for the pool ([`fleet`]).
    pooled: bool,
    /// The key of the cards' hashes.
    card_key: (u64, u64),
    /// Whether every replica has that key (it comes from the fingerprint key), so that the
    /// pool can count cards too.
    card_key_shared: bool,
}

/// What a replica tells the pool of one client ([`CardTestingDetector::take_unreported`]).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Report {
    pub(crate) client: Arc<str>,
    pub(crate) class: Arc<str>,
    pub(crate) bins: Vec<u32>,
    pub(crate) cards: Vec<u64>,
    pub(crate) validations: u32,
    pub(crate) luhn_failures: u32,
    /// A flag this replica raised.
    pub(crate) flagged: Option<Suspicion>,
}

/// What a call should do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    /// The client is flagged and the detector refuses its calls.
    Refuse(Suspicion),
}

impl CardTestingDetector {
    /// A detector for clients of these classes (their suspicion counters start at 0, so that
    /// `increase()` sees the first suspect).
    #[must_use]
    pub fn new(config: CardTestingConfig, classes: &[&str]) -> Self {
        metrics::describe_counter!(
            SUSPECTED,
            "Clients flagged by card-testing detection, by class and reason (bin_walk, luhn_failures); once a window each."
        );
        for class in classes {
            for reason in Suspicion::ALL {
                metrics::counter!(
                    SUSPECTED,
                    "client_class" => (*class).to_owned(),
                    "reason" => reason.label()
                )
                .increment(0);
            }
        }
        Self {
            config,
            started: Instant::now(),
            slot_nanos: u64::try_from(
                (config.window / SLOTS as u32)
                    .max(Duration::from_millis(1))
                    .as_nanos(),
            )
            .unwrap_or(u64::MAX),
            clients: DashMap::default(),
            pooled: false,
            card_key: (random_u64(), random_u64()),
            card_key_shared: false,
        }
    }

    /// The detector, keeping what it sees for the pool ([`fleet::pool`] sends it).
    #[must_use]
    pub fn pooled(mut self) -> Self {
        self.pooled = true;
        self
    }

    /// The detector hashing cards under a key derived from `key` (the fingerprint signing
    /// key), the same on every replica that has it, rather than under one drawn at start.
    #[must_use]
    pub fn with_card_key_from(mut self, key: &FingerprintKey) -> Self {
        let derived = key.mac(CARD_KEY_LABEL);
        let half = |at: usize| u64::from_le_bytes(std::array::from_fn(|i| derived[at + i]));
        self.card_key = (half(0), half(8));
        self.card_key_shared = true;
        self
    }

    /// The current slot's number. In 64 bits: a 128-bit division cost more than the rest of a
    /// busy client's call here.
    fn now(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_nanos()).unwrap_or(u64::MAX) / self.slot_nanos
    }

    /// The card of `digits` as the detector counts it, when it counts cards: a keyed hash.
    #[must_use]
    pub fn card(&self, digits: &[u8]) -> Option<u64> {
        (self.config.max_distinct_cards > 0).then(|| {
            let mut hasher = SipHasher13::new_with_keys(self.card_key.0, self.card_key.1);
            hasher.write(digits);
            hasher.finish()
        })
    }

    /// Records a call: what it shows of its number.
    pub fn observe(&self, client: &ClientIdentity, seen: Seen) -> Verdict {
        self.observe_in_slot(self.now(), client, seen)
    }

    /// [`Self::observe`] in slot `now` of the window's clock.
    fn observe_in_slot(&self, now: u64, client: &ClientIdentity, seen: Seen) -> Verdict {
        let Seen {
            bin,
            card,
            luhn_valid,
        } = seen;
        // Most calls of a busy client change nothing but the Luhn counts. Those hold the
        // client's entry shared, so that its calls on other cores need not wait for each other,
        // and count with atomics; the rest, and flagging, hold it exclusively.
        let max_bins = self.config.max_distinct_bins;
        let counted = match self.clients.get(&*client.id) {
            Some(window) if window.is_current(now, bin, card, max_bins) => {
                window.count(now, luhn_valid, self.pooled);
                if window.flagged_until > now {
                    return self.verdict(window.flagged_for);
                }
                // Of these calls only a Luhn failure can take the client over a line: a number
                // that passes, or is not validated, only lowers the failures' share (see
                // `suspicion`), so those skip summing the window.
                if luhn_valid != Some(false) || self.suspicion(&window, now).is_none() {
                    return Verdict::Allow;
                }
                true
            }
            _ => false,
        };
        // Looked up by reference first: the key's clone (and its drop) is needed only for a
        // new client, and its reference count is shared by every call of the connection.
        let mut window = if let Some(window) = self.clients.get_mut(&*client.id) {
            window
        } else {
            make_room(&self.clients, self.config.max_clients, |window| {
                Some(window.last_seen)
            });
            self.clients
                .entry(Arc::clone(&client.id))
                .or_insert_with(|| ClientWindow {
                    class: Arc::clone(&client.class),
                    ..ClientWindow::default()
                })
        };
        if !counted {
            let pooling = (self.pooled, self.pooled && self.card_key_shared);
            window.record(now, seen, &self.config, pooling);
        }
        // Checked again: another call may have flagged the client since the shared look.
        if window.flagged_until > now {
            return self.verdict(window.flagged_for);
        }
        let Some(suspicion) = self.suspicion(&window, now) else {
            return Verdict::Allow;
        };
        window.flagged_until = now + SLOTS as u64;
        window.flagged_for = Some(suspicion);
        if self.pooled {
            window.unreported.flagged = Some(suspicion);
        }
        drop(window);
        self.report_flag(client, suspicion, false);
        self.verdict(Some(suspicion))
    }

    /// Counts and logs a client flagged here, on this replica's calls (`pooled` false) or on
    /// the pool's (true).
    fn report_flag(&self, client: &ClientIdentity, suspicion: Suspicion, pooled: bool) {
        metrics::counter!(
            SUSPECTED,
            "client_class" => client.class.to_string(),
            "reason" => suspicion.label()
        )
        .increment(1);
        tracing::warn!(
            client = %client.id,
            client_label = client.label.as_deref().unwrap_or_default(),
            class = %client.class,
            reason = suspicion.label(),
            refused = self.config.refuse,
            across_replicas = pooled,
            "client suspected of card testing"
        );
    }

    /// What the pool has not been told yet, of every client that called since the last time,
    /// leaving nothing unreported.
    pub(crate) fn take_unreported(&self) -> Vec<Report> {
        let mut reports = Vec::new();
        for mut entry in self.clients.iter_mut() {
            let (client, window) = entry.pair_mut();
            let unreported = &mut window.unreported;
            let called = std::mem::take(unreported.called.get_mut());
            if !called && unreported.flagged.is_none() {
                continue;
            }
            let validations = std::mem::take(unreported.validations.get_mut());
            let luhn_failures = std::mem::take(unreported.luhn_failures.get_mut());
            reports.push(Report {
                client: Arc::clone(client),
                class: Arc::clone(&window.class),
                bins: std::mem::take(&mut unreported.bins),
                cards: std::mem::take(&mut unreported.cards),
                validations,
                luhn_failures,
                flagged: unreported.flagged.take(),
            });
        }
        reports
    }

    /// The pool's answer for `client`: flagged for `suspicion` for `remaining` more, by the
    /// pool's own counts (`decided_by_pool`) or by a replica. The client is flagged here too,
    /// for what remains (and reported here when the pool decided on this replica's report).
    pub(crate) fn flagged_by_pool(
        &self,
        report: &Report,
        suspicion: &str,
        remaining: Duration,
        decided_by_pool: bool,
    ) {
        let Some(suspicion) = Suspicion::from_label(suspicion) else {
            return;
        };
        let now = self.now();
        let slots = remaining
            .as_nanos()
            .div_ceil(u128::from(self.slot_nanos))
            .max(1);
        let until = now.saturating_add(u64::try_from(slots).unwrap_or(u64::MAX));
        if let Some(mut window) = self.clients.get_mut(&report.client)
            && window.flagged_until <= now
        {
            window.flagged_until = until;
            window.flagged_for = Some(suspicion);
        }
        if decided_by_pool {
            let client = ClientIdentity {
                id: Arc::clone(&report.client),
                class: Arc::clone(&report.class),
                label: None,
            };
            self.report_flag(&client, suspicion, true);
        }
    }

    fn verdict(&self, suspicion: Option<Suspicion>) -> Verdict {
        match suspicion {
            Some(suspicion) if self.config.refuse => Verdict::Refuse(suspicion),
            _ => Verdict::Allow,
        }
    }

    fn suspicion(&self, window: &ClientWindow, now: u64) -> Option<Suspicion> {
        let config = &self.config;
        if config.max_distinct_bins > 0 && window.bins.len() > config.max_distinct_bins {
            return Some(Suspicion::BinWalk);
        }
        if config.max_distinct_cards > 0 && window.cards.len() > config.max_distinct_cards {
            return Some(Suspicion::CardWalk);
        }
        let (validations, failures) = window.live(now).fold((0u32, 0u32), |(v, f), s| {
            (
                v + s.validations.load(Ordering::Relaxed),
                f + s.luhn_failures.load(Ordering::Relaxed),
            )
        });
        // The share is taken of at least `min_validations`: so a call whose number passes
        // never turns a client suspect, which lets the shared path above skip this sum.
        let judged = validations.max(config.min_validations);
        (f64::from(failures) > config.max_luhn_failure_ratio * f64::from(judged))
            .then_some(Suspicion::LuhnFailures)
    }

    /// Forgets clients not seen for a whole window.
    pub fn forget_idle_clients(&self) {
        let now = self.now();
        self.clients
            .retain(|_, window| window.last_seen + SLOTS as u64 > now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(bin: u32, luhn_valid: Option<bool>) -> Seen {
        Seen {
            bin,
            card: None,
            luhn_valid,
        }
    }

    fn client(id: &str) -> ClientIdentity {
        ClientIdentity {
            id: Arc::from(id),
            class: Arc::from("default"),
            label: None,
        }
    }

    fn detector(refuse: bool) -> CardTestingDetector {
        CardTestingDetector::new(
            CardTestingConfig {
                max_distinct_bins: 10,
                min_validations: 10,
                refuse,
                ..CardTestingConfig::default()
            },
            &["default"],
        )
    }

    #[test]
    fn walking_through_bins_is_flagged_and_refused_when_configured() {
        let detector = detector(true);
        let walker = client("walker");
        let verdicts: Vec<_> = (0..12)
            .map(|i| detector.observe(&walker, seen(400_000 + i, None)))
            .collect();
        assert!(verdicts[..10].iter().all(|v| *v == Verdict::Allow));
        assert_eq!(verdicts[11], Verdict::Refuse(Suspicion::BinWalk));
        // Another client is not affected; the same BIN again and again is not a walk.
        let merchant = client("merchant");
        for _ in 0..100 {
            assert_eq!(
                detector.observe(&merchant, seen(411_111, Some(true))),
                Verdict::Allow
            );
        }
    }

    #[test]
    fn many_distinct_cards_are_flagged_when_counted_and_one_card_again_is_not() {
        let detector = CardTestingDetector::new(
            CardTestingConfig {
                max_distinct_cards: 10,
                refuse: true,
                ..CardTestingConfig::default()
            },
            &["default"],
        );
        let card = |number: &str| {
            let digits: Vec<u8> = number.bytes().map(|b| b - b'0').collect();
            detector.card(&digits)
        };
        assert_eq!(card("4111111111111111"), card("4111111111111111"));
        assert_ne!(card("4111111111111111"), card("4111111111111129"));
        // Eleven numbers of one BIN, all valid: a BIN attack, which the BIN count never sees.
        let tester = client("tester");
        let verdicts: Vec<_> = (0..11)
            .map(|i| {
                let seen = Seen {
                    bin: 411_111,
                    card: card(&format!("41111111111{i:05}")),
                    luhn_valid: Some(true),
                };
                detector.observe(&tester, seen)
            })
            .collect();
        assert!(verdicts[..10].iter().all(|v| *v == Verdict::Allow));
        assert_eq!(verdicts[10], Verdict::Refuse(Suspicion::CardWalk));
        // One card again and again is one card.
        let shopper = client("shopper");
        let seen = Seen {
            bin: 411_111,
            card: card("4111111111111111"),
            luhn_valid: Some(true),
        };
        for _ in 0..100 {
            assert_eq!(detector.observe(&shopper, seen), Verdict::Allow);
        }
        // Off by default: no card is counted.
        let default = CardTestingDetector::new(CardTestingConfig::default(), &["default"]);
        assert_eq!(default.card(&[4, 1, 1, 1]), None);
    }

    #[test]
    fn replicas_with_one_fingerprint_key_hash_cards_alike_and_others_do_not() {
        let config = CardTestingConfig {
            max_distinct_cards: 10,
            ..CardTestingConfig::default()
        };
        let key = FingerprintKey::new("k1", b"one secret");
        let replica = || CardTestingDetector::new(config, &[]).with_card_key_from(&key);
        let card = [4, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1];
        assert_eq!(replica().card(&card), replica().card(&card));
        let other_key = FingerprintKey::new("k2", b"another secret");
        let other = CardTestingDetector::new(config, &[]).with_card_key_from(&other_key);
        assert_ne!(replica().card(&card), other.card(&card));
        // Without a fingerprint key each process draws its own.
        let drawn = || CardTestingDetector::new(config, &[]);
        assert_ne!(drawn().card(&card), drawn().card(&card));
        // Only a shared key lets the pool hear of cards.
        for (detector, pooled_cards) in [(replica().pooled(), 1), (drawn().pooled(), 0)] {
            let seen = Seen {
                bin: 411_111,
                card: detector.card(&card),
                luhn_valid: Some(true),
            };
            detector.observe(&client("shopper"), seen);
            assert_eq!(detector.take_unreported()[0].cards.len(), pooled_cards);
        }
    }

    #[test]
    fn mostly_invalid_numbers_are_flagged_but_a_few_typos_are_not() {
        let detector = detector(true);
        let guesser = client("guesser");
        let mut last = Verdict::Allow;
        for i in 0..10 {
            last = detector.observe(&guesser, seen(411_111, Some(i % 4 == 0)));
        }
        assert_eq!(last, Verdict::Refuse(Suspicion::LuhnFailures));
        let typist = client("typist");
        for i in 0..100 {
            assert_eq!(
                detector.observe(&typist, seen(411_111, Some(i % 20 != 0))),
                Verdict::Allow
            );
        }
    }

    #[test]
    fn failures_past_the_share_of_min_validations_flag_at_once_and_passes_never_do() {
        // At least 10 numbers judged, at most half failing: a sixth failure is too many already,
        // however many of the next numbers pass.
        let detector = detector(true);
        let guesser = client("guesser");
        let verdicts: Vec<_> = (0..6)
            .map(|_| detector.observe(&guesser, seen(411_111, Some(false))))
            .collect();
        assert!(verdicts[..5].iter().all(|v| *v == Verdict::Allow));
        assert_eq!(verdicts[5], Verdict::Refuse(Suspicion::LuhnFailures));
        // Five failures are half of ten, not more; the numbers that pass after them never turn
        // the client suspect.
        let typist = client("typist");
        for valid in [false; 5].into_iter().chain([true; 100]) {
            assert_eq!(
                detector.observe(&typist, seen(411_111, Some(valid))),
                Verdict::Allow
            );
        }
    }

    #[test]
    fn without_refusal_suspects_are_only_reported() {
        let detector = detector(false);
        let walker = client("walker");
        for i in 0..50 {
            assert_eq!(
                detector.observe(&walker, seen(400_000 + i, None)),
                Verdict::Allow
            );
        }
    }

    #[test]
    fn bins_count_once_across_slots_and_leave_with_the_window() {
        let detector = CardTestingDetector::new(
            CardTestingConfig {
                max_distinct_bins: 5,
                refuse: true,
                ..CardTestingConfig::default()
            },
            &[],
        );
        let client = client("merchant");
        let observe = |slot: u64, bins: std::ops::RangeInclusive<u32>| {
            bins.map(|bin| detector.observe_in_slot(slot, &client, seen(bin, None)))
                .collect::<Vec<_>>()
        };
        // The same five BINs in two slots are five, not ten.
        assert!(observe(0, 1..=5).iter().all(|v| *v == Verdict::Allow));
        assert!(observe(1, 1..=5).iter().all(|v| *v == Verdict::Allow));
        // A sixth is one too many.
        assert_eq!(observe(2, 6..=6), [Verdict::Refuse(Suspicion::BinWalk)]);
        // Slot 9: the flag (until slot 8) and every BIN seen by slot 3 have left the window.
        assert!(observe(9, 11..=15).iter().all(|v| *v == Verdict::Allow));
        // A walker's map stops growing past the limit.
        assert_eq!(
            observe(9, 100..=1000).last(),
            Some(&Verdict::Refuse(Suspicion::BinWalk))
        );
        let entry = detector.clients.get("merchant").unwrap();
        assert_eq!(entry.bins.len(), 6);
    }

    #[test]
    fn calls_on_many_threads_are_all_counted() {
        let detector = detector(true);
        let busy = client("busy");
        std::thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(|| {
                    for _ in 0..2_000 {
                        let verdict = detector.observe_in_slot(0, &busy, seen(411_111, Some(true)));
                        assert_eq!(verdict, Verdict::Allow);
                    }
                });
            }
        });
        let window = detector.clients.get("busy").unwrap();
        assert_eq!(window.slots[0].validations.load(Ordering::Relaxed), 8_000);
        assert_eq!(window.slots[0].luhn_failures.load(Ordering::Relaxed), 0);
        drop(window);
        // The same client failing Luhn from now on is flagged, whichever thread crosses the line
        // (each thread sends enough failures to cross it alone: threads may run one after
        // another).
        let verdicts: Vec<Verdict> = std::thread::scope(|scope| {
            let threads: Vec<_> = (0..4)
                .map(|_| {
                    scope.spawn(|| {
                        (0..10_000).fold(Verdict::Allow, |_, _| {
                            detector.observe_in_slot(0, &busy, seen(411_111, Some(false)))
                        })
                    })
                })
                .collect();
            threads.into_iter().map(|t| t.join().unwrap()).collect()
        });
        assert!(
            verdicts
                .iter()
                .all(|v| *v == Verdict::Refuse(Suspicion::LuhnFailures))
        );
    }

    #[test]
    fn a_pooled_detector_keeps_what_the_pool_has_not_heard_and_adopts_its_flags() {
        let config = CardTestingConfig {
            max_distinct_bins: 10,
            min_validations: 10,
            refuse: true,
            ..CardTestingConfig::default()
        };
        let detector = CardTestingDetector::new(config, &["default"]).pooled();
        let walker = client("walker");
        for bin in [1, 2, 2, 3] {
            detector.observe_in_slot(0, &walker, seen(bin, Some(bin != 3)));
        }
        detector.observe_in_slot(1, &walker, seen(1, None));
        let report = Report {
            client: Arc::from("walker"),
            class: Arc::from("default"),
            // Each BIN once a slot: the pool counts distinct BINs itself.
            bins: vec![1, 2, 3, 1],
            cards: vec![],
            validations: 4,
            luhn_failures: 1,
            flagged: None,
        };
        assert_eq!(detector.take_unreported(), std::slice::from_ref(&report));
        assert_eq!(detector.take_unreported(), []);
        // A flag raised here is reported, once.
        for bin in 100..108 {
            detector.observe_in_slot(1, &walker, seen(bin, None));
        }
        let reports = detector.take_unreported();
        assert_eq!(reports[0].flagged, Some(Suspicion::BinWalk));
        assert_eq!(detector.take_unreported(), []);
        // A call that adds nothing new is still reported: its answer may be the pool's flag.
        detector.observe_in_slot(1, &walker, seen(100, None));
        let reports = detector.take_unreported();
        assert_eq!(
            (reports.len(), reports[0].bins.len(), reports[0].validations),
            (1, 0, 0)
        );

        // A client the pool flagged is refused here for what remains of the flag.
        let ring = client("ring");
        assert_eq!(detector.observe(&ring, seen(1, None)), Verdict::Allow);
        let ring_report = Report {
            client: Arc::from("ring"),
            ..report
        };
        detector.flagged_by_pool(&ring_report, "bin_walk", Duration::from_secs(60), false);
        assert_eq!(
            detector.observe(&ring, seen(1, None)),
            Verdict::Refuse(Suspicion::BinWalk)
        );

        // Unpooled, nothing is kept for a pool.
        let alone = CardTestingDetector::new(config, &[]);
        alone.observe(&walker, seen(1, Some(false)));
        assert_eq!(alone.take_unreported(), []);
    }

    #[test]
    fn the_window_slides() {
        let detector = CardTestingDetector::new(
            CardTestingConfig {
                window: Duration::from_millis(60),
                max_distinct_bins: 5,
                refuse: true,
                ..CardTestingConfig::default()
            },
            &[],
        );
        let client = client("slow");
        for i in 0..5 {
            assert_eq!(
                detector.observe(&client, seen(400_000 + i, None)),
                Verdict::Allow
            );
        }
        std::thread::sleep(Duration::from_millis(80));
        for i in 5..10 {
            assert_eq!(
                detector.observe(&client, seen(400_000 + i, None)),
                Verdict::Allow
            );
        }
        detector.forget_idle_clients();
        std::thread::sleep(Duration::from_millis(80));
        detector.forget_idle_clients();
        assert!(detector.clients.is_empty());
    }
}
