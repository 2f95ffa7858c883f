//! A set of 4-digit prefixes: a quick "not here" before a costlier lookup. Most card numbers
//! are in no small list (test cards, domestic schemes' ranges), and one bit test on their first
//! four digits says so, where a hash or a binary search over the list costs tens of
//! nanoseconds with its cache misses.

/// The 4-digit prefixes, 0000 to 9999: 10,000 bits.
const PREFIXES: usize = 10_000;

/// A set of 4-digit prefixes.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct FourDigitPrefixes([u64; PREFIXES.div_ceil(64)]);

impl Default for FourDigitPrefixes {
    fn default() -> Self {
        Self([0; PREFIXES.div_ceil(64)])
    }
}

impl std::fmt::Debug for FourDigitPrefixes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let count: u32 = self.0.iter().map(|word| word.count_ones()).sum();
        write!(f, "FourDigitPrefixes({count} prefixes)")
    }
}

impl FourDigitPrefixes {
    /// Adds the 4-digit prefixes under which the prefixes of `digits` digits (at least 4) from
    /// `first` to `last` lie.
    pub(crate) fn insert_range(&mut self, digits: usize, first: u32, last: u32) {
        let scale = 10u32.pow(u32::try_from(digits.saturating_sub(4)).unwrap_or(0));
        for prefix in first / scale..=last / scale {
            self.insert(prefix);
        }
    }

    /// Adds the first four of `digits` (values 0 to 9); nothing for fewer.
    pub(crate) fn insert_number(&mut self, digits: &[u8]) {
        if let Some(prefix) = first_four(digits) {
            self.insert(prefix);
        }
    }

    fn insert(&mut self, prefix: u32) {
        if let Some(word) = self.0.get_mut(prefix as usize / 64) {
            *word |= 1 << (prefix % 64);
        }
    }

    /// Whether the number starting with `digits` (values 0 to 9) may be in the list: false
    /// when its first four digits are no prefix of the set, or it has fewer than four.
    pub(crate) fn may_hold(&self, digits: &[u8]) -> bool {
        first_four(digits).is_some_and(|prefix| {
            self.0
                .get(prefix as usize / 64)
                .is_some_and(|word| word & (1 << (prefix % 64)) != 0)
        })
    }
}

fn first_four(digits: &[u8]) -> Option<u32> {
    let four = digits.get(..4)?;
    Some(four.iter().fold(0, |value, &d| value * 10 + u32::from(d)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digits(text: &str) -> Vec<u8> {
        text.bytes().map(|b| b - b'0').collect()
    }

    #[test]
    fn holds_what_was_added_and_nothing_else() {
        let mut set = FourDigitPrefixes::default();
        assert!(!set.may_hold(&digits("4111111111111111")));
        set.insert_number(&digits("4111111111111111"));
        // Six-digit ranges across a 4-digit boundary: both prefixes.
        set.insert_range(6, 479_658, 480_001);
        set.insert_range(4, 9999, 9999);
        for held in ["4111000000000000", "4796", "4797", "4800123", "9999"] {
            assert!(set.may_hold(&digits(held)), "{held}");
        }
        for not_held in ["4112111111111111", "4795", "4801", "411", "", "0000"] {
            assert!(!set.may_hold(&digits(not_held)), "{not_held}");
        }
    }
}
