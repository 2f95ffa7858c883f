//! The IIN ranges domestic card schemes publish (Dankort's 5019 and Visa/Dankort's 4571,
//! Bancontact's 6703, 479658 and 606005, eftpos Australia's BINs): a number in one belongs to
//! that scheme as well as to the network its IIN gives, and LookupBin names the scheme among the
//! card's co-badged networks.
//!
//! The table is `data/domestic-ranges.tsv` (its provenance and licences in `data/NOTICE`),
//! embedded and read once. A lookup is one bit for most numbers (no range lies under their
//! first four digits), else one binary search per prefix length the table has (4, 6 and 8
//! digits), over at most a few hundred ranges.

use std::sync::LazyLock;

use super::network::{CardNetwork, NetworkSet};
use super::prefixes::FourDigitPrefixes;

/// The embedded table: `network first last source`, tab-separated, after `#` comment lines and
/// the header.
const TABLE: &str = include_str!("../../data/domestic-ranges.tsv");

/// The header line of the table.
const HEADER: &str = "network\tfirst\tlast\tsource";

/// The longest prefix a range may have.
const MAX_DIGITS: usize = 8;

/// One published range: prefixes of `digits` digits from `first` to `last`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DomesticRange {
    pub network: CardNetwork,
    pub digits: usize,
    pub first: u32,
    pub last: u32,
}

/// The table, read once: the 4-digit prefixes its ranges lie under (most numbers are under
/// none, and are answered by one bit), then the ranges by length.
#[derive(Debug, Default)]
struct Table {
    prefixes: FourDigitPrefixes,
    by_length: Vec<SameLength>,
}

/// The ranges of one prefix length, sorted by `first`; ranges of one length never overlap
/// (checked by the tests), so the one that may hold a prefix is the last starting at or below it.
#[derive(Debug, Default)]
struct SameLength {
    digits: usize,
    ranges: Vec<DomesticRange>,
}

static RANGES: LazyLock<Table> = LazyLock::new(|| {
    let mut prefixes = FourDigitPrefixes::default();
    let mut by_length: Vec<SameLength> = Vec::new();
    for range in ranges() {
        prefixes.insert_range(range.digits, range.first, range.last);
        match by_length.iter_mut().find(|set| set.digits == range.digits) {
            Some(set) => set.ranges.push(range),
            None => by_length.push(SameLength {
                digits: range.digits,
                ranges: vec![range],
            }),
        }
    }
    for set in &mut by_length {
        set.ranges.sort_by_key(|range| range.first);
    }
    Table {
        prefixes,
        by_length,
    }
});

/// Every range of the embedded table, in the table's order.
///
/// # Panics
/// When the embedded table is malformed (its tests check it is not).
#[must_use]
pub fn ranges() -> Vec<DomesticRange> {
    let mut lines = TABLE.lines().filter(|line| !line.starts_with('#'));
    assert_eq!(
        lines.next(),
        Some(HEADER),
        "data/domestic-ranges.tsv header"
    );
    lines
        .enumerate()
        .map(|(i, line)| {
            parse_row(line).unwrap_or_else(|| panic!("data/domestic-ranges.tsv row {}", i + 1))
        })
        .collect()
}

fn parse_row(line: &str) -> Option<DomesticRange> {
    let mut fields = line.split('\t');
    let network = CardNetwork::from_slug(fields.next()?)?;
    let (first, last) = (fields.next()?, fields.next()?);
    let digits = first.len();
    let digits_ok = |text: &str| text.len() == digits && text.bytes().all(|b| b.is_ascii_digit());
    if !(4..=MAX_DIGITS).contains(&digits) || !digits_ok(first) || !digits_ok(last) {
        return None;
    }
    let (first, last) = (first.parse().ok()?, last.parse().ok()?);
    (first <= last).then_some(DomesticRange {
        network,
        digits,
        first,
        last,
    })
}

/// The domestic schemes whose published ranges hold the number starting with `digits` (values
/// 0 to 9). A range longer than the digits given cannot be told yet and is not counted.
#[must_use]
pub fn schemes_of(digits: &[u8]) -> NetworkSet {
    let mut schemes = NetworkSet::empty();
    if !RANGES.prefixes.may_hold(digits) {
        return schemes;
    }
    for set in &RANGES.by_length {
        let Some(prefix) = digits.get(..set.digits) else {
            continue;
        };
        let value = prefix
            .iter()
            .fold(0u32, |value, &d| value * 10 + u32::from(d));
        let after = set.ranges.partition_point(|range| range.first <= value);
        if let Some(range) = after.checked_sub(1).map(|i| &set.ranges[i])
            && value <= range.last
        {
            schemes.insert(range.network);
        }
    }
    schemes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digits(text: &str) -> Vec<u8> {
        text.bytes().map(|b| b - b'0').collect()
    }

    #[test]
    fn the_table_reads_and_names_domestic_schemes_only() {
        let ranges = ranges();
        assert!(ranges.len() > 400, "{}", ranges.len());
        assert!(
            ranges
                .iter()
                .all(|range| CardNetwork::DOMESTIC.contains(&range.network))
        );
    }

    #[test]
    fn ranges_of_one_length_do_not_overlap() {
        for set in &RANGES.by_length {
            for pair in set.ranges.windows(2) {
                assert!(pair[0].last < pair[1].first, "{pair:?}");
            }
        }
    }

    #[test]
    fn numbers_in_a_published_range_get_its_scheme() {
        use CardNetwork::{Bancontact, Dankort, EftposAustralia};
        let schemes = |number: &str| schemes_of(&digits(number)).iter().collect::<Vec<_>>();
        assert_eq!(schemes("5019717010103742"), [Dankort]);
        assert_eq!(schemes("4571100000000000"), [Dankort]);
        assert_eq!(schemes("6703000000000000003"), [Bancontact]);
        assert_eq!(schemes("4796580000000000"), [Bancontact]);
        assert_eq!(schemes("4072200000000000"), [EftposAustralia]);
        assert_eq!(schemes("4111111111111111"), []);
        assert_eq!(schemes("5018999999999999"), []);
        // Too few digits to reach a range's length: not counted.
        assert_eq!(schemes("501"), []);
    }

    #[test]
    fn rows_that_break_the_format_are_refused() {
        for row in [
            "dankort\t5019",
            "visa-ish\t5019\t5019\tx",
            "dankort\t501\t501\tx",
            "dankort\t5019\t50190\tx",
            "dankort\t5020\t5019\tx",
            "dankort\t123456789\t123456789\tx",
            "dankort\t50x9\t50x9\tx",
        ] {
            assert_eq!(parse_row(row), None, "{row:?}");
        }
        assert!(parse_row("dankort\t5019\t5019\tx").is_some());
    }
}
