//! What the BIN data knows about a card range, and the interning that keeps millions of
//! entries small: entries share records, and records share strings.

use std::collections::HashSet;
use std::sync::Arc;

use crate::card::CardNetwork;

/// Debit, credit or charge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CardType {
    Debit,
    Credit,
    Charge,
}

/// The issuing bank. Empty strings where the data does not say.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Issuer {
    pub name: Arc<str>,
    pub url: Arc<str>,
    pub phone: Arc<str>,
}

/// An ISO 3166-1 country.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Country {
    pub alpha2: &'static str,
    pub alpha3: &'static str,
    /// Three digits with leading zeros.
    pub numeric: &'static str,
    pub name: &'static str,
}

impl Country {
    /// The country with this two-letter code, if ISO 3166-1 has one.
    #[must_use]
    pub fn from_alpha2(code: &str) -> Option<Self> {
        let country = celes::Country::from_alpha2(code).ok()?;
        Some(Self {
            alpha2: country.alpha2,
            alpha3: country.alpha3,
            numeric: country.code,
            name: country.long_name,
        })
    }
}

/// Everything LookupBin returns about a BIN.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BinRecord {
    /// The network the data names, if its brand is one.
    pub network: Option<CardNetwork>,
    /// The brand as the data spells it.
    pub brand: Arc<str>,
    pub card_type: Option<CardType>,
    pub prepaid: Option<bool>,
    /// The card level (CLASSIC, GOLD, ...) as the data spells it.
    pub category: Arc<str>,
    pub issuer: Issuer,
    pub country: Option<Country>,
}

/// Shares equal strings and equal records between entries while a table loads.
#[derive(Debug, Default)]
pub struct Interner {
    strings: HashSet<Arc<str>>,
    records: HashSet<Arc<BinRecord>>,
}

impl Interner {
    /// The shared copy of `text`.
    pub fn string(&mut self, text: &str) -> Arc<str> {
        if let Some(shared) = self.strings.get(text) {
            return Arc::clone(shared);
        }
        let shared: Arc<str> = Arc::from(text);
        self.strings.insert(Arc::clone(&shared));
        shared
    }

    /// The shared copy of `record`.
    pub fn record(&mut self, record: BinRecord) -> Arc<BinRecord> {
        if let Some(shared) = self.records.get(&record) {
            return Arc::clone(shared);
        }
        let shared = Arc::new(record);
        self.records.insert(Arc::clone(&shared));
        shared
    }

    /// How many distinct records were seen.
    #[must_use]
    pub fn record_count(&self) -> usize {
        self.records.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn countries_come_from_iso_3166() {
        let us = Country::from_alpha2("US").unwrap();
        assert_eq!((us.alpha3, us.numeric), ("USA", "840"));
        let at = Country::from_alpha2("AT").unwrap();
        assert_eq!(at.numeric, "040");
        assert_eq!(Country::from_alpha2("XX"), None);
        assert_eq!(Country::from_alpha2(""), None);
    }

    #[test]
    fn interner_shares_equal_values() {
        let mut interner = Interner::default();
        let a = interner.string("BANK");
        let b = interner.string("BANK");
        assert!(Arc::ptr_eq(&a, &b));
    }
}
