//! What the BIN data knows about a card range, and the interning that keeps millions of
//! entries small: entries share records, and records share strings.

use std::collections::HashSet;

use rustc_hash::FxBuildHasher;
use std::sync::{Arc, LazyLock};

use super::regime::{RegimeSet, Regulations};
use crate::card::{CardNetwork, IssuerRules, NetworkSet};

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
    /// None for Kosovo, which has no ISO numeric code.
    pub numeric: Option<u16>,
    /// The ISO English short name.
    pub name: &'static str,
}

/// Kosovo is not in ISO 3166-1, but card networks, SWIFT and the EU use the user-assigned code
/// XK for it, and real BIN tables (the embedded one included) carry it.
const KOSOVO: Country = Country {
    alpha2: "XK",
    alpha3: "XKX",
    numeric: None,
    name: "Kosovo",
};

impl Country {
    /// The country with this two-letter code (either case), if ISO 3166-1 has one (or it is
    /// XK, Kosovo). Read from a table of every pair of letters, made once: a table load asks
    /// for a country on every row.
    #[must_use]
    pub fn from_alpha2(code: &str) -> Option<Self> {
        static BY_CODE: LazyLock<Vec<Option<Country>>> = LazyLock::new(|| {
            let letters = b'A'..=b'Z';
            letters
                .clone()
                .flat_map(|first| letters.clone().map(move |second| [first, second]))
                .map(|code| Country::look_up(std::str::from_utf8(&code).unwrap_or_default()))
                .collect()
        });
        let &[first, second] = code.as_bytes() else {
            return None;
        };
        let letter = |byte: u8| {
            let upper = byte.to_ascii_uppercase();
            upper
                .is_ascii_uppercase()
                .then(|| usize::from(upper - b'A'))
        };
        BY_CODE[letter(first)? * 26 + letter(second)?]
    }

    /// The country of an upper-case two-letter code, from ISO 3166-1 (or XK, Kosovo).
    fn look_up(code: &str) -> Option<Self> {
        if code == KOSOVO.alpha2 {
            return Some(KOSOVO);
        }
        let country = rust_iso3166::from_alpha2(code)?;
        Some(Self {
            alpha2: country.alpha2,
            alpha3: country.alpha3,
            numeric: Some(country.numeric),
            name: country.name,
        })
    }

    /// The numeric code as ISO writes it, three digits with leading zeros; empty if none.
    #[must_use]
    pub fn numeric_text(self) -> String {
        self.numeric
            .map(|n| super::zero_padded(u64::from(n), 3))
            .unwrap_or_default()
    }
}

/// Everything LookupBin returns about a BIN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BinRecord {
    /// The network the data names, if its brand is one.
    pub network: Option<CardNetwork>,
    /// The other networks the data says the card belongs to (a brand such as "VISA/DANKORT",
    /// or the `co_badged` column); never `network`.
    pub co_badged: NetworkSet,
    /// The brand as the data spells it.
    pub brand: Arc<str>,
    pub card_type: Option<CardType>,
    pub prepaid: Option<bool>,
    /// The card level (CLASSIC, GOLD, ...) as the data spells it.
    pub category: Arc<str>,
    pub issuer: Issuer,
    pub country: Option<Country>,
    /// The issuer's own length and Luhn rules, where the data gives them.
    pub rules: IssuerRules,
    /// The regimes the data's `regulated` column names (`Some` of the empty set for `none`);
    /// `None` where it says nothing, and the regimes are derived.
    pub regulated: Option<RegimeSet>,
    /// The regimes that apply, with their reasons: worked out from the fields above by
    /// [`Regulations::of`] when the record enters an index (`IndexBuilder::insert`), which
    /// replaces whatever a reader put here.
    pub regulations: Regulations,
}

/// The longest each text field of a record may be, in bytes of UTF-8, checked as a table
/// loads (and by `data check`): a bank name of megabytes would be copied into every answer
/// about its BINs. The embedded table's longest are a brand of 25 bytes, a category of 38, an
/// issuer name of 98, a URL of 50 and a phone of 59; a Chinese bank name of 60 characters is
/// 180 bytes.
pub const TEXT_LIMITS: [(&str, usize); 5] = [
    ("brand", 100),
    ("category", 100),
    ("issuer name", 200),
    ("issuer URL", 300),
    ("issuer phone", 100),
];

impl BinRecord {
    /// The first text field longer than its [`TEXT_LIMITS`] entry allows, with that limit.
    #[must_use]
    pub fn overlong_text(&self) -> Option<(&'static str, usize)> {
        let texts = [
            &self.brand,
            &self.category,
            &self.issuer.name,
            &self.issuer.url,
            &self.issuer.phone,
        ];
        TEXT_LIMITS
            .into_iter()
            .zip(texts)
            .find(|((_, limit), text)| text.len() > *limit)
            .map(|(field, _)| field)
    }
}

/// Shares equal strings between records while a table loads: a 3-million-row table names a
/// few thousand issuers.
#[derive(Debug, Default)]
pub struct Strings {
    shared: HashSet<Arc<str>, FxBuildHasher>,
    /// The texts of the row before, in the order its reader asked for them: consecutive rows
    /// of a table sorted by BIN mostly repeat them, and comparing a text with the one before
    /// is cheaper than hashing it.
    previous: Vec<Arc<str>>,
    /// Which of the row's texts comes next.
    field: usize,
}

impl Strings {
    /// The shared copy of `text`, the next text of the row.
    pub fn string(&mut self, text: &str) -> Arc<str> {
        let field = self.field;
        self.field += 1;
        if let Some(previous) = self.previous.get(field)
            && **previous == *text
        {
            return Arc::clone(previous);
        }
        let shared = if let Some(shared) = self.shared.get(text) {
            Arc::clone(shared)
        } else {
            let shared: Arc<str> = Arc::from(text);
            self.shared.insert(Arc::clone(&shared));
            shared
        };
        match self.previous.get_mut(field) {
            Some(previous) => previous.clone_from(&shared),
            None => self.previous.push(Arc::clone(&shared)),
        }
        shared
    }

    /// Starts the next row: its texts are compared with this row's.
    pub fn next_row(&mut self) {
        self.field = 0;
    }
}

/// What makes two records of one load the same, cheaply: the identity of their texts rather
/// than the texts. A load interns equal texts ([`Strings`]), so equal records name the same
/// texts, and comparing addresses instead of bytes keeps sharing records cheap; records whose
/// equal texts were not interned are merely not shared. `regulations` is left out: it is
/// worked out from the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct RecordIdentity {
    texts: [usize; 5],
    network: Option<CardNetwork>,
    co_badged: NetworkSet,
    card_type: Option<CardType>,
    prepaid: Option<bool>,
    country: Option<&'static str>,
    rules: IssuerRules,
    regulated: Option<RegimeSet>,
}

impl BinRecord {
    /// The record's [`RecordIdentity`]; valid while its texts are alive.
    pub(crate) fn identity(&self) -> RecordIdentity {
        // Every field named, so that a new one cannot be left out of the identity unseen.
        let Self {
            network,
            co_badged,
            brand,
            card_type,
            prepaid,
            category,
            issuer: Issuer { name, url, phone },
            country,
            rules,
            regulated,
            regulations: _,
        } = self;
        RecordIdentity {
            texts: [brand, category, name, url, phone].map(|text| text.as_ptr().addr()),
            network: *network,
            co_badged: *co_badged,
            card_type: *card_type,
            prepaid: *prepaid,
            country: country.map(|country| country.alpha2),
            rules: *rules,
            regulated: *regulated,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn countries_come_from_iso_3166() {
        let us = Country::from_alpha2("US").unwrap();
        assert_eq!((us.alpha3, us.numeric), ("USA", Some(840)));
        let at = Country::from_alpha2("at").unwrap();
        assert_eq!(at.numeric_text(), "040");
        assert_eq!(at.name, "Austria");
        assert_eq!(Country::from_alpha2("XX"), None);
        let kosovo = Country::from_alpha2("XK").unwrap();
        assert_eq!((kosovo.alpha3, kosovo.numeric_text().as_str()), ("XKX", ""));
        assert_eq!(Country::from_alpha2(""), None);
        assert_eq!(Country::from_alpha2("xk"), Some(kosovo));
        for not_a_code in ["U", "USA", "U1", "ÜS", "\u{0}S"] {
            assert_eq!(Country::from_alpha2(not_a_code), None, "{not_a_code}");
        }
    }

    #[test]
    fn text_longer_than_its_limit_is_named() {
        let record = |name: &str, phone: &str| BinRecord {
            network: None,
            co_badged: NetworkSet::empty(),
            brand: "".into(),
            card_type: None,
            prepaid: None,
            category: "".into(),
            issuer: Issuer {
                name: name.into(),
                url: "".into(),
                phone: phone.into(),
            },
            country: None,
            rules: IssuerRules::default(),
            regulated: None,
            regulations: Regulations::default(),
        };
        assert_eq!(record(&"B".repeat(200), "").overlong_text(), None);
        assert_eq!(
            record(&"B".repeat(201), "").overlong_text(),
            Some(("issuer name", 200))
        );
        // Bytes, not characters: 67 Chinese characters are 201 bytes.
        assert_eq!(
            record(&"银".repeat(67), "").overlong_text(),
            Some(("issuer name", 200))
        );
        assert_eq!(
            record("", &"1".repeat(101)).overlong_text(),
            Some(("issuer phone", 100))
        );
    }

    #[test]
    fn strings_are_shared() {
        let mut strings = Strings::default();
        let bank = strings.string("BANK");
        assert!(Arc::ptr_eq(&bank, &strings.string("BANK")));
        // Across rows, whether a text sits where it sat in the row before or elsewhere.
        strings.next_row();
        assert!(Arc::ptr_eq(&bank, &strings.string("BANK")));
        let other = strings.string("OTHER");
        strings.next_row();
        assert!(Arc::ptr_eq(&other, &strings.string("OTHER")));
        assert!(Arc::ptr_eq(&bank, &strings.string("BANK")));
        assert_eq!((&*bank, &*other), ("BANK", "OTHER"));
    }
}
