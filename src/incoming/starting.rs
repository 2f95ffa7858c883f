//! The connections still starting on a port (TLS handshake, HTTP/2 preface), at most
//! [`MAX_STARTING`]. When every place is taken, the oldest starting connection is closed to make
//! room for the new one, rather than the new one refused: silent connections, however many
//! addresses they come from, can then only ever delay a real client's start, never lock it out,
//! since a real client finishes its start within milliseconds and is never the oldest for long.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tokio_util::sync::CancellationToken;

/// Connections accepted but not yet ready, per port: a handshake holds buffers, so their number
/// is bounded.
pub(super) const MAX_STARTING: usize = 1024;

/// The starting connections, oldest first, each with the token that closes it.
#[derive(Debug, Default)]
pub(super) struct Starting {
    queue: Mutex<VecDeque<(u64, CancellationToken)>>,
    next_id: std::sync::atomic::AtomicU64,
}

/// A starting connection's place; leaving it (ready, closed or timed out) frees the place.
#[derive(Debug)]
pub(super) struct StartingPlace {
    starting: Arc<Starting>,
    id: u64,
    /// Cancelled when the connection is closed to make room for a newer one.
    pub(super) evicted: CancellationToken,
}

impl Starting {
    /// A place for a new connection; and whether an older one was closed to make it.
    pub(super) fn enter(self: &Arc<Self>) -> (StartingPlace, bool) {
        let id = self
            .next_id
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let evicted = CancellationToken::new();
        let mut queue = self
            .queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let made_room = queue.len() >= MAX_STARTING;
        if made_room && let Some((_, oldest)) = queue.pop_front() {
            oldest.cancel();
        }
        queue.push_back((id, evicted.clone()));
        drop(queue);
        let place = StartingPlace {
            starting: Arc::clone(self),
            id,
            evicted,
        };
        (place, made_room)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.queue.lock().unwrap().len()
    }
}

impl Drop for StartingPlace {
    fn drop(&mut self) {
        let mut queue = self
            .starting
            .queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Ids rise with age: a binary search finds this one (gone already if it was evicted).
        if let Ok(at) = queue.binary_search_by_key(&self.id, |(id, _)| *id) {
            queue.remove(at);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_port_closes_its_oldest_starting_connection_for_a_new_one() {
        let starting = Arc::new(Starting::default());
        let mut places: Vec<StartingPlace> =
            (0..MAX_STARTING).map(|_| starting.enter().0).collect();
        assert!(places.iter().all(|place| !place.evicted.is_cancelled()));
        let (newest, made_room) = starting.enter();
        assert!(made_room);
        assert!(places[0].evicted.is_cancelled(), "the oldest is closed");
        assert!(!places[1].evicted.is_cancelled());
        assert_eq!(starting.len(), MAX_STARTING);
        // Places left in any order free their own entries, evicted or not.
        places.swap(0, 500);
        drop(places);
        assert_eq!(starting.len(), 1);
        drop(newest);
        assert_eq!(starting.len(), 0);
    }
}
