//! What the benches share: test card numbers, the embedded index, and a synthetic index of
//! any size built in memory the way `examples/load_scale.rs` writes its table.

// Each bench is its own crate and uses only some of these.
#![allow(dead_code)]

use std::sync::Arc;

use card_lookup::bins::{
    BinIndex, BinRecord, CardType, Country, DataSource, IndexBuilder, Issuer, LoadOptions, Prefix,
    Regulations, load, validate_number,
};
use card_lookup::card::{CardNetwork, IssuerRules, LengthSet, NetworkSet, luhn};

/// How many different numbers a lookup bench cycles through: enough that a large index is
/// read from memory, not from a cache that holds one hot entry.
pub(crate) const KEYS: usize = 4096;

/// A small, fixed pseudo-random sequence (SplitMix64), so every run looks up the same numbers.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number below `bound`.
    pub(crate) fn below(&mut self, bound: u64) -> u64 {
        self.next_u64() % bound
    }
}

/// Digits 0 to 9 of `text` (which holds only ASCII digits).
pub(crate) fn digits(text: &str) -> Vec<u8> {
    text.bytes().map(|b| b - b'0').collect()
}

/// A 16-digit number that starts with `prefix`, is filled with pseudo-random digits and ends
/// with the right Luhn check digit: a card number as a payment would send it.
pub(crate) fn card_number(prefix: &str, rng: &mut Rng) -> String {
    let mut number: Vec<u8> = digits(prefix);
    while number.len() < 15 {
        number.push((rng.below(10)) as u8);
    }
    number.push(luhn::check_digit(&number));
    number.iter().map(|&d| char::from(b'0' + d)).collect()
}

/// The embedded table (327,012 six-digit BINs), loaded as the service loads it.
pub(crate) fn embedded_index() -> BinIndex {
    load(&[DataSource::Embedded], LoadOptions::default())
        .expect("the embedded table loads")
        .index
}

/// A synthetic index like `examples/load_scale.rs`'s table: `entries` 8-digit prefixes, Visa
/// (4...) and Mastercard (5...) alternating, 5,000 issuers, a range of three prefixes every 50
/// entries. Entry `i` is the prefix `lead * 10^7 + 3i`.
pub(crate) fn synthetic_index(entries: u64) -> BinIndex {
    let countries = ["US", "GB", "DE", "FR", "BR", "IN", "CN", "JP", "NG", "TR"];
    let records: Vec<BinRecord> = (0..5_000u64)
        .map(|issuer| {
            let (network, brand) = if issuer.is_multiple_of(2) {
                (CardNetwork::Visa, "VISA")
            } else {
                (CardNetwork::Mastercard, "MASTERCARD")
            };
            BinRecord {
                network: Some(network),
                co_badged: NetworkSet::empty(),
                brand: Arc::from(brand),
                card_type: Some(if issuer.is_multiple_of(3) {
                    CardType::Credit
                } else {
                    CardType::Debit
                }),
                prepaid: Some(false),
                category: Arc::from("CLASSIC"),
                issuer: Issuer {
                    name: Arc::from(format!("ISSUER {issuer}")),
                    url: Arc::from(format!("https://issuer{issuer}.example")),
                    phone: Arc::from(format!("+1 555 {issuer:04}")),
                },
                country: Country::from_alpha2(countries[(issuer % 10) as usize]),
                rules: IssuerRules {
                    lengths: Some(LengthSet::from_lengths(&[16])),
                    luhn: Some(true),
                },
                regulated: None,
                regulations: Regulations::default(),
            }
        })
        .collect();
    let mut builder = IndexBuilder::default();
    for i in 0..entries {
        let first = synthetic_prefix(i);
        let last = if i.is_multiple_of(50) {
            first + 2
        } else {
            first
        };
        let parse = |value: u64| Prefix::parse(&value.to_string()).expect("8 digits");
        builder.insert(
            parse(first),
            parse(last),
            records[(i % 5_000) as usize].clone(),
        );
    }
    builder.build(format!("synthetic-{entries}"))
}

/// The prefix of entry `i` of [`synthetic_index`].
pub(crate) fn synthetic_prefix(i: u64) -> u64 {
    let lead = if i.is_multiple_of(2) { 4 } else { 5 };
    lead * 10_000_000 + i * 3
}

/// [`KEYS`] card numbers whose BIN the index holds, spread over the whole index.
pub(crate) fn embedded_hits(index: &BinIndex) -> Vec<Vec<u8>> {
    let entries = index.entries();
    let mut rng = Rng::new(1);
    (0..KEYS)
        .map(|_| {
            let (first, _, _) = &entries[rng.below(entries.len() as u64) as usize];
            digits(&card_number(&first.to_text(), &mut rng))
        })
        .collect()
}

/// [`KEYS`] card numbers whose BIN the index holds and that Validate finds valid with it
/// (the right length for their network, a good check digit), spread over the whole index.
pub(crate) fn embedded_valid_cards(index: &BinIndex) -> Vec<String> {
    let entries = index.entries();
    let mut rng = Rng::new(4);
    let mut found = Vec::with_capacity(KEYS);
    // Bounded: most BINs are of 16-digit networks, so a few thousand tries are enough.
    for _ in 0..(KEYS * 64) {
        let (first, _, _) = &entries[rng.below(entries.len() as u64) as usize];
        let number = card_number(&first.to_text(), &mut rng);
        // Valid as the service answers: with the network the data names for the BIN.
        if validate_number(index, &number).valid {
            found.push(number);
            if found.len() == KEYS {
                return found;
            }
        }
    }
    panic!("found only {} valid card numbers", found.len());
}

/// [`KEYS`] entries of a synthetic index of `entries` entries, as card numbers.
pub(crate) fn synthetic_hits(entries: u64) -> Vec<Vec<u8>> {
    let mut rng = Rng::new(2);
    (0..KEYS)
        .map(|_| {
            let prefix = synthetic_prefix(rng.below(entries));
            digits(&card_number(&prefix.to_string(), &mut rng))
        })
        .collect()
}

/// [`KEYS`] card numbers starting with `lead` whose BIN the index does not hold (no prefix of
/// any length matches), so a lookup tries every length and finds nothing.
pub(crate) fn misses(index: &BinIndex, leads: &[&str]) -> Vec<Vec<u8>> {
    let mut rng = Rng::new(3);
    let mut found = Vec::with_capacity(KEYS);
    // Bounded: a quarter of a million candidates is far more than any index here needs.
    for _ in 0..(KEYS * 64) {
        let lead = leads[rng.below(leads.len() as u64) as usize];
        let number = digits(&card_number(lead, &mut rng));
        if index.longest_match(&number).is_none() {
            found.push(number);
            if found.len() == KEYS {
                return found;
            }
        }
    }
    panic!("found only {} misses in the index", found.len());
}
