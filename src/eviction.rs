//! Keeping per-client tables bounded: when a table is full, the least recently seen eighth of
//! its entries is evicted at once, so that a flood of new clients costs bounded memory, a new
//! client never waits, and the scan a full table needs is paid once for many new entries.
//! A leaf module: admission's client table and card-testing detection both use it.

use std::hash::{BuildHasher, Hash};

use dashmap::DashMap;

/// Makes room in `table`, which holds at most `max_entries`, when it is full: evicts the
/// eighth of the entries with the oldest `last_seen` among those it allows (`None`: keep).
pub(crate) fn make_room<K, V, S>(
    table: &DashMap<K, V, S>,
    max_entries: usize,
    last_seen: impl Fn(&V) -> Option<u64>,
) where
    K: Eq + Hash + Clone,
    S: BuildHasher + Clone,
{
    if table.len() < max_entries {
        return;
    }
    let mut candidates: Vec<(u64, K)> = table
        .iter()
        .filter_map(|entry| Some((last_seen(entry.value())?, entry.key().clone())))
        .collect();
    let evict = (max_entries / 8).max(1).min(candidates.len());
    if candidates.len() > evict {
        candidates.select_nth_unstable_by_key(evict, |(seen, _)| *seen);
    }
    for (_, key) in candidates.into_iter().take(evict) {
        table.remove_if(&key, |_, value| last_seen(value).is_some());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_table_loses_its_oldest_eighth_and_keeps_what_must_stay() {
        let table: DashMap<u64, (u64, bool)> = DashMap::new();
        for key in 0..80 {
            // Entry 0 is the oldest but must stay.
            table.insert(key, (key, key == 0));
        }
        let last_seen = |&(seen, keep): &(u64, bool)| (!keep).then_some(seen);
        make_room(&table, 100, last_seen);
        assert_eq!(table.len(), 80, "not full: nothing evicted");
        make_room(&table, 80, last_seen);
        assert_eq!(table.len(), 70);
        assert!(table.contains_key(&0));
        assert!(
            (1..=10).all(|key| !table.contains_key(&key)),
            "the oldest ten went"
        );
        assert!(table.contains_key(&11));
    }
}
