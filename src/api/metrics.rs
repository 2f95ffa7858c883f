//! What the answers themselves are counted by: BIN lookups found or not, and numbers answered
//! on Inspect streams. (Calls are counted by admission, whatever their answer.)

use metrics::{Counter, counter, describe_counter};

const BIN_LOOKUPS: &str = "cardlookup_bin_lookups_total";
const INSPECT_ITEMS: &str = "cardlookup_inspect_items_total";

/// Cached handles, so that counting costs an atomic add and no lookup by name.
#[derive(Debug)]
pub(super) struct AnswerMetrics {
    bin_found: Counter,
    bin_not_found: Counter,
    inspected_items: Counter,
}

impl AnswerMetrics {
    pub(super) fn new() -> Self {
        describe_counter!(
            BIN_LOOKUPS,
            "LookupBin answers, by whether the BIN data had the BIN."
        );
        describe_counter!(INSPECT_ITEMS, "Numbers answered on Inspect streams.");
        Self {
            bin_found: counter!(BIN_LOOKUPS, "result" => "found"),
            bin_not_found: counter!(BIN_LOOKUPS, "result" => "not_found"),
            inspected_items: counter!(INSPECT_ITEMS),
        }
    }

    /// Counts the items of an Inspect batch and the BIN lookups made for them.
    pub(super) fn inspected(&self, items: usize, lookups: BinLookups) {
        self.inspected_items.increment(items as u64);
        self.bin_found.increment(lookups.found);
        self.bin_not_found.increment(lookups.not_found);
    }

    pub(super) fn bin_lookup(&self, found: bool) {
        if found {
            self.bin_found.increment(1);
        } else {
            self.bin_not_found.increment(1);
        }
    }
}

/// BIN lookups tallied over a batch, recorded with one update per counter.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct BinLookups {
    found: u64,
    not_found: u64,
}

impl BinLookups {
    pub(super) fn count(&mut self, found: bool) {
        if found {
            self.found += 1;
        } else {
            self.not_found += 1;
        }
    }
}
