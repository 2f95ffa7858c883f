//! The BIN index: prefix to record, answered by longest match.
//!
//! Single prefixes live in a hash map keyed by (length, value), so 8-digit BINs sit beside
//! 6-digit ones. Ranges of prefixes (45710040-45710045) live in a sorted table per length and
//! are found by binary search, so a range costs one entry however many prefixes it spans. A
//! lookup tries the lengths present, longest first; at one length a single prefix and a range
//! never both answer, because the builder resolves overlaps (the later source wins).
//!
//! A built index is never written again: new data builds a new index beside it, which is then
//! swapped in whole, so lookups never wait for a writer: its maps are plain maps, read without
//! locks (one thread builds them), and a lookup costs a hash probe, with no atomic operation on
//! a lock or a reference count.
//!
//! For "send more digits", the build also records, for each number of digits a lookup may give
//! (6 to 10), the prefixes of that many digits under which a longer entry lies
//! ([`BinIndex::longer_entry_under`]): a lookup then learns with one binary search whether more
//! digits could find a more specific entry, instead of scanning the entries under its match.
//! Only entries longer than 6 digits can lie under a lookup's digits, so a table of six-digit
//! BINs (the embedded one) costs this nothing.
//!
//! Six-digit prefixes, the commonest BIN length, are also copied into a direct table of a
//! million slots (8 MB) when the data has any: looking one up reads one slot, where a hash probe
//! reads the table's control bytes and then the slot, two cache misses when the cards vary.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use rustc_hash::FxBuildHasher;

use super::record::{BinRecord, RecordIdentity};
use super::regime::Regulations;

/// The shortest and longest BIN prefixes the index holds.
pub const MIN_PREFIX_DIGITS: usize = 4;
pub const MAX_PREFIX_DIGITS: usize = 11;
/// The fewest digits a lookup gives (LookupBin's least): a BIN is at least 6 digits.
pub const MIN_LOOKUP_DIGITS: usize = 6;

/// A BIN prefix of 4 to 11 digits, leading zeros kept by its length.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Prefix {
    len: u8,
    value: u64,
}

/// The most leading digits `Debug` shows: a prefix matched against a card number can be 11 of
/// its digits, more than the first 8 PCI DSS lets anything show.
const DEBUG_SHOWN_DIGITS: usize = 8;

impl std::fmt::Debug for Prefix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = self.to_text();
        let shown = text.len().min(DEBUG_SHOWN_DIGITS);
        write!(
            f,
            "Prefix({}{})",
            &text[..shown],
            "*".repeat(text.len() - shown)
        )
    }
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
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(PrefixError::NotDigits);
        }
        if !(MIN_PREFIX_DIGITS..=MAX_PREFIX_DIGITS).contains(&text.len()) {
            return Err(PrefixError::Length(text.len()));
        }
        Ok(Self {
            len: text.len() as u8,
            value: text.parse().map_err(|_| PrefixError::NotDigits)?,
        })
    }

    /// The first `len` digits of `digits` (values 0 to 9); `len` is at most 11.
    fn of_digits(digits: &[u8], len: usize) -> Self {
        Self {
            len: len as u8,
            value: digits[..len]
                .iter()
                .fold(0, |value, &d| value * 10 + u64::from(d)),
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
        super::zero_padded(self.value, self.len())
    }

    /// The map key: length and value in one word.
    fn key(self) -> u64 {
        (u64::from(self.len) << 56) | self.value
    }

    /// The prefix a map key stands for.
    fn from_key(key: u64) -> Self {
        Self {
            len: (key >> 56) as u8,
            value: key & ((1 << 56) - 1),
        }
    }
}

/// A LookupBin hit: the prefix of the number that matched and what the data says about it,
/// borrowed from the index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BinMatch<'a> {
    pub prefix: Prefix,
    pub record: &'a BinRecord,
}

/// The ranges of one prefix length: sorted, disjoint.
#[derive(Debug, Default)]
struct RangeTable {
    firsts: Vec<u64>,
    lasts: Vec<u64>,
    records: Vec<Arc<BinRecord>>,
}

impl RangeTable {
    fn find(&self, value: u64) -> Option<&Arc<BinRecord>> {
        let after = self.firsts.partition_point(|&first| first <= value);
        let i = after.checked_sub(1)?;
        (self.lasts[i] >= value).then(|| &self.records[i])
    }
}

/// Prefixes of one length as sorted, disjoint, non-adjacent spans of values.
#[derive(Debug, Default)]
struct Spans {
    firsts: Vec<u64>,
    lasts: Vec<u64>,
}

impl Spans {
    /// The spans covering exactly the values of `spans` (in any order, overlapping or not).
    fn merged(mut spans: Vec<(u64, u64)>) -> Self {
        spans.sort_unstable();
        let mut merged = Self::default();
        for (first, last) in spans {
            match merged.lasts.last_mut() {
                Some(end) if first <= end.saturating_add(1) => *end = (*end).max(last),
                _ => {
                    merged.firsts.push(first);
                    merged.lasts.push(last);
                }
            }
        }
        merged
    }

    fn contains(&self, value: u64) -> bool {
        let after = self.firsts.partition_point(|&first| first <= value);
        after.checked_sub(1).is_some_and(|i| self.lasts[i] >= value)
    }
}

/// Single prefixes: key → (the order it was added in, record). The order resolves overlaps
/// with ranges while building; it costs no lookup time.
type Singles = HashMap<u64, (u32, Arc<BinRecord>), FxBuildHasher>;

/// The prefix length the direct table serves.
const DIRECT_DIGITS: usize = 6;

/// Six-digit single prefixes by value (10^6 slots), beside [`Singles`].
type DirectTable = Box<[Option<Arc<BinRecord>>]>;

/// An immutable, shareable BIN index.
#[derive(Debug)]
pub struct BinIndex {
    singles: Singles,
    /// The six-digit singles again, by value; `None` when the data has none.
    direct: Option<DirectTable>,
    /// Indexed by prefix length.
    ranges: [RangeTable; MAX_PREFIX_DIGITS + 1],
    /// The prefix lengths present, longest first: a lookup tries only these.
    lengths: Vec<usize>,
    /// Indexed by a number of digits n from [`MIN_LOOKUP_DIGITS`]: the n-digit prefixes that
    /// begin a longer entry (empty below it).
    longer_under: [Spans; MAX_PREFIX_DIGITS],
    version: Arc<str>,
}

impl BinIndex {
    /// The record of the longest prefix of `digits` (values 0 to 9) that the index holds.
    #[must_use]
    pub fn longest_match(&self, digits: &[u8]) -> Option<BinMatch<'_>> {
        self.lengths
            .iter()
            .filter(|&&len| len <= digits.len())
            .find_map(|&len| {
                let prefix = Prefix::of_digits(digits, len);
                let record = match self.single(prefix) {
                    Some(record) => record,
                    None => self.ranges[len].find(prefix.value)?,
                };
                Some(BinMatch { prefix, record })
            })
    }

    /// Whether an entry longer than `digits` (values 0 to 9) begins with them: a longer number
    /// could then match a more specific entry than these digits can. False for 11 digits or
    /// more (no entry is longer) and for fewer than [`MIN_LOOKUP_DIGITS`] (no lookup gives so
    /// few, so the build works none out). One binary search, on spans the build computed.
    #[must_use]
    pub fn longer_entry_under(&self, digits: &[u8]) -> bool {
        let given = digits.len();
        (MIN_LOOKUP_DIGITS..MAX_PREFIX_DIGITS).contains(&given)
            && self.longer_under[given].contains(Prefix::of_digits(digits, given).value)
    }

    /// The record of exactly `prefix`, when it was added as a single prefix.
    fn single(&self, prefix: Prefix) -> Option<&Arc<BinRecord>> {
        match &self.direct {
            Some(direct) if prefix.len() == DIRECT_DIGITS => direct[prefix.value as usize].as_ref(),
            _ => self.singles.get(&prefix.key()).map(|(_, record)| record),
        }
    }

    /// How many single prefixes and ranges the index holds.
    #[must_use]
    pub fn len(&self) -> usize {
        self.singles.len() + self.range_count()
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many ranges (entries spanning more than one prefix) the index holds.
    #[must_use]
    pub fn range_count(&self) -> usize {
        self.ranges.iter().map(|t| t.firsts.len()).sum()
    }

    /// Entries (single prefixes and ranges) by prefix length: `(length, count)`, shortest first.
    #[must_use]
    pub fn entries_by_length(&self) -> Vec<(usize, usize)> {
        let mut counts = [0usize; MAX_PREFIX_DIGITS + 1];
        for key in self.singles.keys() {
            counts[Prefix::from_key(*key).len()] += 1;
        }
        for (len, table) in self.ranges.iter().enumerate() {
            counts[len] += table.firsts.len();
        }
        counts
            .into_iter()
            .enumerate()
            .filter(|&(_, count)| count > 0)
            .collect()
    }

    /// Every entry as `(first, last, record)` in prefix order (length, then value): what
    /// `data convert` writes.
    #[must_use]
    pub fn entries(&self) -> Vec<(Prefix, Prefix, Arc<BinRecord>)> {
        let mut entries: Vec<_> = self
            .singles
            .iter()
            .map(|(&key, (_, record))| {
                let prefix = Prefix::from_key(key);
                (prefix, prefix, Arc::clone(record))
            })
            .collect();
        for (len, table) in self.ranges.iter().enumerate() {
            for i in 0..table.firsts.len() {
                let at = |value| Prefix {
                    len: len as u8,
                    value,
                };
                entries.push((
                    at(table.firsts[i]),
                    at(table.lasts[i]),
                    Arc::clone(&table.records[i]),
                ));
            }
        }
        entries.sort_unstable_by_key(|(first, _, _)| *first);
        entries
    }

    /// The content hash of the data the index was built from.
    #[must_use]
    pub fn version(&self) -> &str {
        &self.version
    }

    /// [`Self::version`], shared: for what outlives the call that read it (an audit event).
    #[must_use]
    pub fn shared_version(&self) -> Arc<str> {
        Arc::clone(&self.version)
    }
}

/// A range as added, with the order it came in.
#[derive(Debug)]
struct PendingRange {
    order: u32,
    first: Prefix,
    last: Prefix,
    record: Arc<BinRecord>,
}

/// Collects entries into a [`BinIndex`]. Where entries overlap at the same prefix length, the
/// one added later wins (for the prefixes it covers).
#[derive(Debug, Default)]
pub struct IndexBuilder {
    singles: Singles,
    ranges: Vec<PendingRange>,
    added: u32,
    /// Bit `n` is set when a prefix of `n` digits was added.
    lengths: u16,
    /// Equal records are stored once: many prefixes share an issuer's record.
    records: HashMap<RecordIdentity, Arc<BinRecord>, FxBuildHasher>,
}

impl IndexBuilder {
    /// Adds the prefixes `first..=last` (of equal length; equal for a single prefix).
    ///
    /// The record's regulations are worked out here, once per distinct record rather than per
    /// lookup ([`Regulations::of`]).
    pub fn insert(&mut self, first: Prefix, last: Prefix, mut record: BinRecord) {
        debug_assert!(first.len == last.len && first.value <= last.value);
        let record = match self.records.entry(record.identity()) {
            Entry::Occupied(shared) => Arc::clone(shared.get()),
            Entry::Vacant(slot) => {
                record.regulations = Regulations::of(&record);
                Arc::clone(slot.insert(Arc::new(record)))
            }
        };
        self.added += 1;
        self.lengths |= 1 << first.len;
        if first == last {
            self.singles.insert(first.key(), (self.added, record));
        } else {
            self.ranges.push(PendingRange {
                order: self.added,
                first,
                last,
                record,
            });
        }
    }

    /// Resolves overlaps and freezes the entries into an index labelled with `version`.
    #[must_use]
    pub fn build(self, version: String) -> BinIndex {
        let mut painted: [PaintedRanges; MAX_PREFIX_DIGITS + 1] =
            std::array::from_fn(|_| BTreeMap::new());
        for range in self.ranges {
            paint(&mut painted[range.first.len()], range);
        }

        let mut singles = self.singles;
        if painted.iter().any(|table| !table.is_empty()) {
            // A single prefix inside a range added after it gives way to the range.
            singles.retain(|&key, (order, _)| {
                let Prefix { len, value } = Prefix::from_key(key);
                !painted[usize::from(len)]
                    .range(..=value)
                    .next_back()
                    .is_some_and(|(_, &(last, range_order, _))| {
                        last >= value && range_order > *order
                    })
            });
        }
        let ranges = painted.map(|table| {
            let mut ranges = RangeTable::default();
            for (first, (last, _, record)) in table {
                ranges.firsts.push(first);
                ranges.lasts.push(last);
                ranges.records.push(record);
            }
            ranges
        });

        let lengths = (0..=MAX_PREFIX_DIGITS)
            .rev()
            .filter(|&len| self.lengths & (1 << len) != 0)
            .collect();
        let direct = (self.lengths & (1 << DIRECT_DIGITS) != 0).then(|| direct_table(&singles));
        let longer_under = longer_under(&singles, &ranges);
        BinIndex {
            singles,
            direct,
            ranges,
            lengths,
            longer_under,
            version: version.into(),
        }
    }
}

/// For each number of digits n a lookup may give, the n-digit prefixes of the entries longer
/// than n: the prefix of a single entry, or the span a range's first and last prefixes begin.
/// Worked out from the longest entries down, each length from the one above it (the entries one
/// digit longer, and the prefixes already found there), so no entry is handled more than once.
/// Entries of [`MIN_LOOKUP_DIGITS`] or fewer lie under no lookup's digits and are skipped: the
/// 327,012 six-digit BINs of the embedded table are neither collected nor sorted.
fn longer_under(singles: &Singles, ranges: &[RangeTable]) -> [Spans; MAX_PREFIX_DIGITS] {
    let mut by_len: [Vec<(u64, u64)>; MAX_PREFIX_DIGITS + 1] = std::array::from_fn(|_| Vec::new());
    for &key in singles.keys() {
        let prefix = Prefix::from_key(key);
        if prefix.len() > MIN_LOOKUP_DIGITS {
            by_len[prefix.len()].push((prefix.value, prefix.value));
        }
    }
    for (len, table) in ranges.iter().enumerate().skip(MIN_LOOKUP_DIGITS + 1) {
        by_len[len].extend(
            table
                .firsts
                .iter()
                .copied()
                .zip(table.lasts.iter().copied()),
        );
    }
    let mut under: [Spans; MAX_PREFIX_DIGITS] = std::array::from_fn(|_| Spans::default());
    for given in (MIN_LOOKUP_DIGITS..MAX_PREFIX_DIGITS).rev() {
        let mut spans = std::mem::take(&mut by_len[given + 1]);
        if let Some(deeper) = under.get(given + 1) {
            spans.extend(
                deeper
                    .firsts
                    .iter()
                    .copied()
                    .zip(deeper.lasts.iter().copied()),
            );
        }
        for (first, last) in &mut spans {
            (*first, *last) = (*first / 10, *last / 10);
        }
        under[given] = Spans::merged(spans);
    }
    under
}

/// The six-digit entries of `singles`, each in the slot of its value.
fn direct_table(singles: &Singles) -> DirectTable {
    let mut direct = vec![None; 10_usize.pow(DIRECT_DIGITS as u32)].into_boxed_slice();
    for (&key, (_, record)) in singles {
        let prefix = Prefix::from_key(key);
        if prefix.len() == DIRECT_DIGITS {
            direct[prefix.value as usize] = Some(Arc::clone(record));
        }
    }
    direct
}

/// Disjoint ranges of one prefix length: first → (last, order added, record).
type PaintedRanges = BTreeMap<u64, (u64, u32, Arc<BinRecord>)>;

/// Adds `range` on top of the disjoint ranges in `table`, trimming or splitting what it
/// overlaps.
fn paint(table: &mut PaintedRanges, range: PendingRange) {
    let (first, last) = (range.first.value, range.last.value);
    let overlapping: Vec<u64> = table
        .range(..=last)
        .rev()
        .take_while(|(_, (end, _, _))| *end >= first)
        .map(|(&start, _)| start)
        .collect();
    for start in overlapping {
        let (end, order, record) = table.remove(&start).expect("key was just listed");
        if start < first {
            table.insert(start, (first - 1, order, Arc::clone(&record)));
        }
        if end > last {
            table.insert(last + 1, (end, order, record));
        }
    }
    table.insert(first, (last, range.order, range.record));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bins::record::{Issuer, Strings};
    use crate::card::IssuerRules;

    /// A record of `brand`, its texts interned in `strings` as a load's are.
    fn record(brand: &str, strings: &mut Strings) -> BinRecord {
        BinRecord {
            network: None,
            co_badged: crate::card::NetworkSet::empty(),
            brand: strings.string(brand),
            card_type: None,
            prepaid: None,
            category: strings.string(""),
            issuer: Issuer {
                name: strings.string(""),
                url: strings.string(""),
                phone: strings.string(""),
            },
            country: None,
            rules: IssuerRules::default(),
            regulated: None,
            regulations: Regulations::default(),
        }
    }

    fn digits(s: &str) -> Vec<u8> {
        s.bytes().map(|b| b - b'0').collect()
    }

    fn p(text: &str) -> Prefix {
        Prefix::parse(text).unwrap()
    }

    fn index(entries: &[(&str, &str, &str)]) -> BinIndex {
        let (mut builder, mut strings) = (IndexBuilder::default(), Strings::default());
        for (first, last, brand) in entries {
            let last = if last.is_empty() { first } else { last };
            builder.insert(p(first), p(last), record(brand, &mut strings));
        }
        builder.build("test".into())
    }

    fn brand(index: &BinIndex, number: &str) -> Option<String> {
        index
            .longest_match(&digits(number))
            .map(|hit| hit.record.brand.to_string())
    }

    #[test]
    fn eight_digit_bins_win_over_the_six_digit_bin_under_them() {
        let index = index(&[("411111", "", "SIX"), ("41111122", "", "EIGHT")]);
        let hit = index.longest_match(&digits("4111112233334444")).unwrap();
        assert_eq!(&*hit.record.brand, "EIGHT");
        assert_eq!(hit.prefix.to_text(), "41111122");
        let hit = index.longest_match(&digits("4111119933334444")).unwrap();
        assert_eq!(&*hit.record.brand, "SIX");
        assert_eq!(hit.prefix.len(), 6);
    }

    #[test]
    fn a_longer_entry_under_the_digits_given_is_found_at_every_length() {
        let index = index(&[
            ("411111", "", "SIX"),
            ("41111122", "", "EIGHT"),
            ("45710040", "45710045", "RANGE"),
            ("5500", "", "FOUR"),
            ("55001234567", "", "ELEVEN"),
        ]);
        let under = |number: &str| index.longer_entry_under(&digits(number));
        // 6 or 7 digits that an 8-digit entry begins with: more digits could match it.
        assert!(under("411111"));
        assert!(under("4111112"));
        // The digits given are already enough, or lead elsewhere than the longer entry.
        assert!(!under("41111122"));
        assert!(!under("4111113"));
        assert!(!under("4111119933334444"));
        // Ranges: every prefix their first and last begin, none beyond.
        assert!(under("457100") && under("4571004"));
        assert!(!under("4571005") && !under("457101"));
        // The deepest entry: 6 to 10 digits lead to it, 11 and more never need more.
        for given in MIN_LOOKUP_DIGITS..=10 {
            assert!(under(&"55001234567"[..given]), "{given}");
        }
        assert!(!under("55001234567") && !under("5500123456700"));
        // Fewer digits than a lookup gives: never asked, so never worked out.
        assert!(!under("5500") && !under("55001"));
        assert!(!under("550"));
        assert!(!under("5501"));
    }

    /// Against a scan of the entries: every query of 5 to 10 digits under 4111 and 4571 (below
    /// 6 digits, none is worked out).
    #[test]
    fn longer_entries_agree_with_a_scan_of_the_entries() {
        let entries = [
            ("411111", ""),
            ("41111122", ""),
            ("411112", "411119"),
            ("4111250", "4111261"),
            ("45710040", "45710045"),
            ("4571", ""),
            ("45719999999", ""),
        ];
        let index = index(&entries.map(|(first, last)| (first, last, "X")));
        let begins = |query: &str| {
            entries.iter().any(|&(first, last)| {
                let last = if last.is_empty() { first } else { last };
                let n = query.len();
                let value: u64 = query.parse().unwrap();
                first.len() > n
                    && (first[..n].parse::<u64>().unwrap()..=last[..n].parse().unwrap())
                        .contains(&value)
            })
        };
        for stem in ["4111", "4571"] {
            let mut queries = vec![stem.to_owned()];
            for _ in 0..6 {
                queries = queries
                    .iter()
                    .flat_map(|q| {
                        // Every next digit where the scan says more lies beneath, and two that
                        // lead nowhere.
                        (0..10)
                            .map(move |d| format!("{q}{d}"))
                            .filter(|q| begins(q) || q.ends_with(['0', '9']))
                    })
                    .collect();
                for query in &queries {
                    assert_eq!(
                        index.longer_entry_under(&digits(query)),
                        query.len() >= MIN_LOOKUP_DIGITS && begins(query),
                        "{query}"
                    );
                }
            }
        }
    }

    #[test]
    fn spans_merge_overlapping_and_adjacent_values() {
        let spans = Spans::merged(vec![(5, 7), (1, 2), (3, 3), (10, 12), (11, 11), (20, 20)]);
        assert_eq!(spans.firsts, [1, 5, 10, 20]);
        assert_eq!(spans.lasts, [3, 7, 12, 20]);
        for (value, inside) in [
            (0, false),
            (1, true),
            (3, true),
            (4, false),
            (7, true),
            (8, false),
            (12, true),
            (20, true),
            (21, false),
        ] {
            assert_eq!(spans.contains(value), inside, "{value}");
        }
    }

    #[test]
    fn misses_and_short_input() {
        let index = index(&[("411111", "", "SIX")]);
        assert_eq!(index.longest_match(&digits("5111111111111111")), None);
        assert_eq!(index.longest_match(&digits("41111")), None);
    }

    #[test]
    fn leading_zeros_are_part_of_the_prefix() {
        let index = index(&[("002102", "", "ZERO")]);
        assert!(index.longest_match(&digits("0021020000")).is_some());
        assert!(index.longest_match(&digits("2102000000")).is_none());
        assert_eq!(p("002102").to_text(), "002102");
    }

    #[test]
    fn debug_shows_at_most_eight_digits() {
        assert_eq!(format!("{:?}", p("411111")), "Prefix(411111)");
        assert_eq!(format!("{:?}", p("41111111111")), "Prefix(41111111***)");
        let index = index(&[("41111111111", "", "ELEVEN")]);
        let hit = index.longest_match(&digits("4111111111111111")).unwrap();
        assert!(!format!("{hit:?}").contains("411111111"), "{hit:?}");
    }

    #[test]
    fn six_digit_prefixes_are_found_from_the_first_slot_to_the_last() {
        let index = index(&[
            ("000000", "", "FIRST"),
            ("999999", "", "LAST"),
            ("123456", "", "SIX"),
            ("12345678", "", "EIGHT"),
            ("1234", "", "FOUR"),
        ]);
        assert!(index.direct.is_some());
        assert_eq!(brand(&index, "0000000000").as_deref(), Some("FIRST"));
        assert_eq!(brand(&index, "9999999999").as_deref(), Some("LAST"));
        assert_eq!(brand(&index, "1234567800").as_deref(), Some("EIGHT"));
        assert_eq!(brand(&index, "1234569900").as_deref(), Some("SIX"));
        assert_eq!(brand(&index, "1234999900").as_deref(), Some("FOUR"));
        assert_eq!(brand(&index, "0000010000"), None);
        // Without six-digit prefixes there is no table.
        assert!(self::index(&[("12345678", "", "EIGHT")]).direct.is_none());
    }

    #[test]
    fn ranges_answer_every_prefix_they_span_with_one_entry() {
        let index = index(&[("45710040", "45710045", "RANGE"), ("457100", "", "SIX")]);
        assert_eq!(index.len(), 2);
        assert_eq!(index.range_count(), 1);
        for inside in ["4571004000000000", "4571004299999999", "4571004512345678"] {
            assert_eq!(brand(&index, inside).as_deref(), Some("RANGE"), "{inside}");
        }
        let hit = index.longest_match(&digits("4571004312345678")).unwrap();
        assert_eq!(hit.prefix.to_text(), "45710043");
        assert_eq!(brand(&index, "4571004612345678").as_deref(), Some("SIX"));
        assert_eq!(brand(&index, "4571003912345678").as_deref(), Some("SIX"));
        assert_eq!(index.entries_by_length(), [(6, 1), (8, 1)]);
    }

    #[test]
    fn a_huge_range_is_still_one_entry() {
        let index = index(&[("40000000000", "49999999999", "ALL VISA")]);
        assert_eq!(index.len(), 1);
        assert_eq!(
            brand(&index, "4111111111111111").as_deref(),
            Some("ALL VISA")
        );
    }

    #[test]
    fn later_entries_win_where_they_overlap() {
        // A later range splits an earlier one...
        let split = index(&[("400000", "400099", "OLD"), ("400010", "400019", "NEW")]);
        assert_eq!(brand(&split, "4000050000").as_deref(), Some("OLD"));
        assert_eq!(brand(&split, "4000150000").as_deref(), Some("NEW"));
        assert_eq!(brand(&split, "4000950000").as_deref(), Some("OLD"));
        // ...replaces an earlier single inside it, and gives way to a later single.
        let mixed = index(&[
            ("400015", "", "SINGLE BEFORE"),
            ("400010", "400019", "RANGE"),
            ("400017", "", "SINGLE AFTER"),
        ]);
        assert_eq!(brand(&mixed, "4000150000").as_deref(), Some("RANGE"));
        assert_eq!(brand(&mixed, "4000170000").as_deref(), Some("SINGLE AFTER"));
        // A later single replaces an earlier single.
        let singles = index(&[("411111", "", "OLD"), ("411111", "", "NEW")]);
        assert_eq!(brand(&singles, "411111").as_deref(), Some("NEW"));
        assert_eq!(singles.len(), 1);
    }

    #[test]
    fn equal_records_are_shared() {
        let index = index(&[("411111", "", "SAME"), ("422222", "", "SAME")]);
        let a = index.longest_match(&digits("411111")).unwrap().record;
        let b = index.longest_match(&digits("422222")).unwrap().record;
        assert!(std::ptr::eq(a, b));
    }

    #[test]
    fn entries_list_singles_and_ranges_in_prefix_order() {
        let index = index(&[
            ("422222", "", "B"),
            ("41111100", "41111199", "C"),
            ("411111", "", "A"),
        ]);
        let listed: Vec<_> = index
            .entries()
            .into_iter()
            .map(|(first, last, record)| {
                (first.to_text(), last.to_text(), record.brand.to_string())
            })
            .collect();
        assert_eq!(
            listed,
            [
                ("411111".into(), "411111".into(), "A".into()),
                ("422222".into(), "422222".into(), "B".into()),
                ("41111100".into(), "41111199".into(), "C".into()),
            ]
        );
    }

    #[test]
    fn prefixes_are_validated_without_echoing_them() {
        assert_eq!(Prefix::parse("12a456"), Err(PrefixError::NotDigits));
        assert_eq!(Prefix::parse(""), Err(PrefixError::NotDigits));
        assert_eq!(Prefix::parse("123"), Err(PrefixError::Length(3)));
        let err = Prefix::parse("4111111111111111").unwrap_err().to_string();
        assert!(!err.contains("4111"), "{err}");
    }
}
