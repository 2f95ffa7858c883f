//! `--max-concurrent-requests` and its per-client share: the places calls hold while they run.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crossbeam_utils::CachePadded;

use super::Refusal;
use super::clients::Client;

/// The count of places taken, shared by every connection.
#[derive(Debug)]
pub(super) struct InFlight {
    /// Written by every call from every core: on a cache line of its own, so that the
    /// read-mostly admission rules beside it are not invalidated each time.
    taken: CachePadded<AtomicUsize>,
    max: usize,
    /// The places one client may hold at once.
    per_client: usize,
}

impl InFlight {
    pub(super) fn new(max: usize, per_client: usize) -> Self {
        Self {
            taken: CachePadded::new(AtomicUsize::new(0)),
            max,
            per_client,
        }
    }

    #[cfg(test)]
    fn taken(&self) -> usize {
        self.taken.load(Ordering::Acquire)
    }
}

/// Takes one place of `count` if fewer than `max` are taken. Compare-and-swap rather than
/// add-then-check, so that calls refused at the limit never make another call see the limit
/// reached when it is not.
fn take_one(count: &AtomicUsize, max: usize) -> bool {
    count
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |taken| {
            (taken < max).then_some(taken + 1)
        })
        .is_ok()
}

/// One admitted call's place, in the server's count and its client's, given back when the
/// call ends (answered, panicked or dropped).
///
/// Counters rather than semaphores: calls never wait for a place, and a semaphore's release
/// takes a lock on every call.
#[derive(Debug)]
pub(super) struct InFlightSlot {
    server: Arc<InFlight>,
    client: Arc<Client>,
}

impl InFlightSlot {
    /// A place if the client holds fewer than its share and the server fewer than its limit.
    pub(super) fn take(in_flight: &Arc<InFlight>, client: Arc<Client>) -> Result<Self, Refusal> {
        if !take_one(&client.in_flight, in_flight.per_client) {
            return Err(Refusal::ClientShareUsed {
                share: in_flight.per_client,
            });
        }
        if !take_one(&in_flight.taken, in_flight.max) {
            client.in_flight.fetch_sub(1, Ordering::AcqRel);
            return Err(Refusal::Overloaded);
        }
        Ok(Self {
            server: Arc::clone(in_flight),
            client,
        })
    }
}

impl Drop for InFlightSlot {
    fn drop(&mut self) {
        self.server.taken.fetch_sub(1, Ordering::AcqRel);
        self.client.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::super::clients::Clients;
    use super::*;

    #[test]
    fn at_most_the_limit_of_calls_hold_a_place_and_an_ended_call_frees_its_own() {
        let clients = Clients::new(16);
        let in_flight = Arc::new(InFlight::new(2, 2));
        let client = |name: &str| clients.get(&Arc::from(name), None);
        let first = InFlightSlot::take(&in_flight, client("a")).expect("below the limit");
        let second = InFlightSlot::take(&in_flight, client("b")).expect("below the limit");
        for _ in 0..3 {
            assert_eq!(
                InFlightSlot::take(&in_flight, client("c")).unwrap_err(),
                Refusal::Overloaded
            );
        }
        assert_eq!(client("c").in_flight.load(Ordering::Acquire), 0);
        drop(first);
        let third = InFlightSlot::take(&in_flight, client("c")).expect("a place was freed");
        drop((second, third));
        assert_eq!(in_flight.taken(), 0);
    }

    #[test]
    fn one_client_holds_at_most_its_share_and_others_still_get_places() {
        let clients = Clients::new(16);
        let in_flight = Arc::new(InFlight::new(10, 3));
        let greedy = clients.get(&Arc::from("greedy"), None);
        let held: Vec<_> = (0..3)
            .map(|_| InFlightSlot::take(&in_flight, Arc::clone(&greedy)).unwrap())
            .collect();
        assert_eq!(
            InFlightSlot::take(&in_flight, Arc::clone(&greedy)).unwrap_err(),
            Refusal::ClientShareUsed { share: 3 }
        );
        let other = InFlightSlot::take(&in_flight, clients.get(&Arc::from("other"), None));
        assert!(other.is_ok());
        drop(held);
        assert_eq!(greedy.in_flight.load(Ordering::Acquire), 0);
        assert!(InFlightSlot::take(&in_flight, greedy).is_ok());
    }
}
