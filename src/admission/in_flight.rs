//! `--max-concurrent-requests`: the places calls hold while they run.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crossbeam_utils::CachePadded;

/// The count of places taken, shared by every connection.
#[derive(Debug)]
pub(super) struct InFlight {
    /// Written by every call from every core: on a cache line of its own, so that the
    /// read-mostly admission rules beside it are not invalidated each time.
    taken: CachePadded<AtomicUsize>,
    max: usize,
}

impl InFlight {
    pub(super) fn new(max: usize) -> Self {
        Self {
            taken: CachePadded::new(AtomicUsize::new(0)),
            max,
        }
    }

    #[cfg(test)]
    fn taken(&self) -> usize {
        self.taken.load(Ordering::Acquire)
    }
}

/// One admitted call's place, given back when the call ends (answered, panicked or dropped).
///
/// A counter rather than a semaphore: calls never wait for a place, and a semaphore's release
/// takes a lock on every call.
#[derive(Debug)]
pub(super) struct InFlightSlot(Arc<InFlight>);

impl InFlightSlot {
    /// A place if fewer than the limit of calls hold one. Compare-and-swap rather than
    /// add-then-check, so that calls refused at the limit never make another call see the
    /// limit reached when it is not.
    pub(super) fn take(in_flight: &Arc<InFlight>) -> Option<Self> {
        in_flight
            .taken
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |taken| {
                (taken < in_flight.max).then_some(taken + 1)
            })
            .ok()
            .map(|_| Self(Arc::clone(in_flight)))
    }
}

impl Drop for InFlightSlot {
    fn drop(&mut self) {
        self.0.taken.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_most_the_limit_of_calls_hold_a_place_and_an_ended_call_frees_its_own() {
        let in_flight = Arc::new(InFlight::new(2));
        let first = InFlightSlot::take(&in_flight).expect("below the limit");
        let second = InFlightSlot::take(&in_flight).expect("below the limit");
        for _ in 0..3 {
            assert!(InFlightSlot::take(&in_flight).is_none(), "at the limit");
        }
        drop(first);
        let third = InFlightSlot::take(&in_flight).expect("a place was freed");
        assert!(InFlightSlot::take(&in_flight).is_none());
        drop((second, third));
        assert_eq!(in_flight.taken(), 0);
    }
}
