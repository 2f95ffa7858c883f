//! The BIN index: prefix to record, answered by longest match.
//!
//! Entries live in a `DashMap` keyed by (prefix length, prefix value), so 8-digit BINs sit
//! beside 6-digit ones and a lookup tries the lengths present, longest first. A built index is
//! never written again: new data builds a new index, so lookups never wait for a writer.

use std::sync::Arc;

use dashmap::DashMap;
use rustc_hash::FxBuildHasher;

use super::record::{BinRecord, Interner};

/// The shortest and longest BIN prefixes the index holds.
pub const MIN_PREFIX_DIGITS: usize = 4;
pub const MAX_PREFIX_DIGITS: usize = 11;

/// A BIN prefix of 4 to 11 digits, leading zeros kept by its length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Prefix {
    len: u8,
    value: u64,
}

/// Why text is not a BIN prefix. Never carries the text, which may be a whole card number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PrefixError {
    #[error("BIN must be digits only")]
    NotDigits,
    #[error("BIN has {0} digits; a BIN has {MIN_PREFIX_DIGITS} to {MAX_PREFIX_DIGITS}")]
    Length(usize),
}

impl Prefix {
    /// Parses a BIN prefix of 4 to 11 digits.
    ///
    /// # Errors
    /// [`PrefixError`] for anything else.
    pub fn parse(text: &str) -> Result<Self, PrefixError> {
        if !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(PrefixError::NotDigits);
        }
        if !(MIN_PREFIX_DIGITS..=MAX_PREFIX_DIGITS).contains(&text.len()) {
            return Err(PrefixError::Length(text.len()));
        }
        Ok(Self::from_digits(
            &text.bytes().map(|b| b - b'0').collect::<Vec<_>>(),
        ))
    }

    fn from_digits(digits: &[u8]) -> Self {
        Self {
            // At most MAX_PREFIX_DIGITS, so it fits in a u8.
            len: digits.len() as u8,
            value: digits.iter().fold(0, |value, &d| value * 10 + u64::from(d)),
        }
    }

    /// How many digits the prefix has.
    #[must_use]
    pub fn len(self) -> usize {
        usize::from(self.len)
    }

    /// Always false: a prefix has at least four digits.
    #[must_use]
    pub fn is_empty(self) -> bool {
        self.len == 0
    }

    /// The prefix as digits, leading zeros included.
    #[must_use]
    pub fn to_text(self) -> String {
        format!("{:0width$}", self.value, width = self.len())
    }
}

/// A LookupBin hit: the prefix that matched and what the data says about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BinMatch {
    pub prefix: Prefix,
    pub record: Arc<BinRecord>,
}

/// An immutable, shareable BIN index.
#[derive(Debug)]
pub struct BinIndex {
    entries: DashMap<Prefix, Arc<BinRecord>, FxBuildHasher>,
    /// The prefix lengths present, longest first: a lookup tries only these.
    lengths: Vec<usize>,
    version: String,
}

impl BinIndex {
    /// The record of the longest prefix of `digits` (values 0 to 9) that the index holds.
    #[must_use]
    pub fn longest_match(&self, digits: &[u8]) -> Option<BinMatch> {
        self.lengths
            .iter()
            .filter(|&&len| len <= digits.len())
            .find_map(|&len| {
                let prefix = Prefix::from_digits(&digits[..len]);
                self.entries.get(&prefix).map(|record| BinMatch {
                    prefix,
                    record: Arc::clone(record.value()),
                })
            })
    }

    /// How many prefixes the index holds.
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The content hash of the data the index was built from.
    #[must_use]
    pub fn version(&self) -> &str {
        &self.version
    }
}

/// Collects entries (later ones replacing earlier ones for the same prefix) into a [`BinIndex`].
#[derive(Debug, Default)]
pub struct IndexBuilder {
    entries: std::collections::HashMap<Prefix, Arc<BinRecord>, FxBuildHasher>,
    interner: Interner,
}

impl IndexBuilder {
    /// The interner that records for this builder should share strings through.
    pub fn interner(&mut self) -> &mut Interner {
        &mut self.interner
    }

    /// Adds or replaces the entry for `prefix`.
    pub fn insert(&mut self, prefix: Prefix, record: BinRecord) {
        let record = self.interner.record(record);
        self.entries.insert(prefix, record);
    }

    /// Freezes the entries into an index labelled with `version`.
    #[must_use]
    pub fn build(self, version: String) -> BinIndex {
        let mut lengths: Vec<usize> = self.entries.keys().map(|p| p.len()).collect();
        lengths.sort_unstable_by(|a, b| b.cmp(a));
        lengths.dedup();
        let entries = DashMap::with_capacity_and_hasher(self.entries.len(), FxBuildHasher);
        for (prefix, record) in self.entries {
            entries.insert(prefix, record);
        }
        BinIndex {
            entries,
            lengths,
            version,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(brand: &str) -> BinRecord {
        BinRecord {
            network: None,
            brand: Arc::from(brand),
            card_type: None,
            prepaid: None,
            category: Arc::from(""),
            issuer: super::super::record::Issuer::default(),
            country: None,
        }
    }

    fn digits(s: &str) -> Vec<u8> {
        s.bytes().map(|b| b - b'0').collect()
    }

    fn index(entries: &[(&str, &str)]) -> BinIndex {
        let mut builder = IndexBuilder::default();
        for (prefix, brand) in entries {
            builder.insert(Prefix::parse(prefix).unwrap(), record(brand));
        }
        builder.build("test".into())
    }

    #[test]
    fn eight_digit_bins_win_over_the_six_digit_bin_under_them() {
        let index = index(&[("411111", "SIX"), ("41111122", "EIGHT")]);
        let hit = index.longest_match(&digits("4111112233334444")).unwrap();
        assert_eq!(&*hit.record.brand, "EIGHT");
        assert_eq!(hit.prefix.to_text(), "41111122");
        let hit = index.longest_match(&digits("4111119933334444")).unwrap();
        assert_eq!(&*hit.record.brand, "SIX");
        assert_eq!(hit.prefix.len(), 6);
    }

    #[test]
    fn misses_and_short_input() {
        let index = index(&[("411111", "SIX")]);
        assert_eq!(index.longest_match(&digits("5111111111111111")), None);
        assert_eq!(index.longest_match(&digits("41111")), None);
    }

    #[test]
    fn leading_zeros_are_part_of_the_prefix() {
        let index = index(&[("002102", "ZERO")]);
        assert!(index.longest_match(&digits("0021020000")).is_some());
        assert!(index.longest_match(&digits("2102000000")).is_none());
        assert_eq!(Prefix::parse("002102").unwrap().to_text(), "002102");
    }

    #[test]
    fn later_entries_replace_earlier_ones_and_records_are_shared() {
        let mut builder = IndexBuilder::default();
        builder.insert(Prefix::parse("411111").unwrap(), record("OLD"));
        builder.insert(Prefix::parse("411111").unwrap(), record("NEW"));
        builder.insert(Prefix::parse("422222").unwrap(), record("NEW"));
        let index = builder.build("v".into());
        assert_eq!(index.len(), 2);
        let a = index.longest_match(&digits("411111")).unwrap().record;
        let b = index.longest_match(&digits("422222")).unwrap().record;
        assert_eq!(&*a.brand, "NEW");
        assert!(Arc::ptr_eq(&a, &b));
    }

    #[test]
    fn prefixes_are_validated_without_echoing_them() {
        assert_eq!(Prefix::parse("12a456"), Err(PrefixError::NotDigits));
        assert_eq!(Prefix::parse("123"), Err(PrefixError::Length(3)));
        let err = Prefix::parse("4111111111111111").unwrap_err().to_string();
        assert!(!err.contains("4111"), "{err}");
    }
}
