//! The state admission keeps per client: its rate limiter and its calls in flight, in one
//! table bounded in entries.
//!
//! An entry is made at a client's first call. Entries of clients not seen for a whole round of
//! forgetting (a minute: `Admission::forget_idle_clients`) are forgotten then, which is longer
//! than any rate limit's refill, so forgetting never hands back calls the limit had taken. The
//! clock of "last seen" is that round's number, read with one load a call rather than the
//! time. When the table is full (a
//! flood of new addresses), the least recently seen of the entries without calls in flight
//! are evicted (`crate::eviction`). An evicted client that comes back starts with a full
//! rate-limit bucket: eviction only happens when more clients than the table holds are calling.
//! The table exceeds its bound only by clients with calls in flight, which the concurrency
//! limit bounds.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use dashmap::DashMap;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use rustc_hash::FxBuildHasher;

use crate::eviction::make_room;

/// One client's state.
#[derive(Debug)]
pub(super) struct Client {
    /// The client's bucket, at its class's rate; none when no rule covers the client.
    pub(super) limiter: Option<DefaultDirectRateLimiter>,
    /// Calls of the client holding a concurrency place.
    pub(super) in_flight: AtomicUsize,
    /// The round of forgetting of the client's last call.
    last_seen: AtomicU64,
}

/// Every client's state, shared by every connection.
#[derive(Debug)]
pub(super) struct Clients {
    table: DashMap<Arc<str>, Arc<Client>, FxBuildHasher>,
    max_entries: usize,
    /// Rounds of forgetting so far: the clock of `last_seen`.
    round: AtomicU64,
}

impl Clients {
    pub(super) fn new(max_entries: usize) -> Self {
        Self {
            table: DashMap::default(),
            max_entries: max_entries.max(1),
            round: AtomicU64::new(0),
        }
    }

    fn now(&self) -> u64 {
        self.round.load(Ordering::Relaxed)
    }

    /// The state of client `id`, made (with a bucket of `quota`) at its first call.
    pub(super) fn get(&self, id: &Arc<str>, quota: Option<Quota>) -> Arc<Client> {
        let now = self.now();
        if let Some(client) = self.table.get(id) {
            // A store only when the round changed: most calls leave the line unwritten.
            if client.last_seen.load(Ordering::Relaxed) != now {
                client.last_seen.store(now, Ordering::Relaxed);
            }
            return Arc::clone(&client);
        }
        // Clients with calls in flight stay: their count would otherwise start again from 0.
        make_room(&self.table, self.max_entries, |client| {
            (client.in_flight.load(Ordering::Relaxed) == 0)
                .then(|| client.last_seen.load(Ordering::Relaxed))
        });
        let client = Arc::new(Client {
            limiter: quota.map(RateLimiter::direct),
            in_flight: AtomicUsize::new(0),
            last_seen: AtomicU64::new(now),
        });
        Arc::clone(
            self.table
                .entry(Arc::clone(id))
                .or_insert_with(|| client)
                .value(),
        )
    }

    /// Ends a round: forgets the clients not seen during it, which have been idle at least as
    /// long as a round lasts.
    pub(super) fn forget_idle(&self) {
        let ended = self.round.fetch_add(1, Ordering::Relaxed);
        self.table.retain(|_, client| {
            client.in_flight.load(Ordering::Relaxed) > 0
                || client.last_seen.load(Ordering::Relaxed) >= ended
        });
        self.table.shrink_to_fit();
    }

    /// Clients in the table.
    pub(super) fn len(&self) -> usize {
        self.table.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: usize) -> Arc<str> {
        Arc::from(format!("client-{n}"))
    }

    #[test]
    fn the_table_never_holds_more_than_its_bound_and_keeps_clients_with_calls() {
        let clients = Clients::new(64);
        let busy = clients.get(&id(0), None);
        busy.in_flight.store(1, Ordering::Relaxed);
        for n in 1..10_000 {
            clients.get(&id(n), None);
            assert!(clients.len() <= 64, "{} entries", clients.len());
        }
        assert!(
            Arc::ptr_eq(&busy, &clients.get(&id(0), None)),
            "a client with a call in flight keeps its entry"
        );
        assert!(clients.table.contains_key(&id(9_999)), "the newest is kept");
    }

    #[test]
    fn a_client_keeps_its_state_between_calls() {
        let clients = Clients::new(64);
        let quota = Quota::per_second(std::num::NonZeroU32::new(1).unwrap());
        let call = || {
            clients
                .get(&id(1), Some(quota))
                .limiter
                .as_ref()
                .unwrap()
                .check()
        };
        assert!(call().is_ok());
        assert!(
            call().is_err(),
            "the second call within the second finds the bucket empty"
        );
        clients.forget_idle();
        assert_eq!(clients.len(), 1, "seen in the round that ended: kept");
        clients.forget_idle();
        assert_eq!(clients.len(), 0, "not seen for a whole round: forgotten");
    }
}
