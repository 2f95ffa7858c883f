//! Network detection from the leading digits (the IIN, issuer identification number).
//!
//! [`IIN_RANGES`] is the whole rule set, one line a range. A number belongs to a network when
//! its leading digits fall in one of the network's ranges; where ranges of several networks
//! match, the longest range wins (401178 is Elo although every 4 is Visa), then the narrowest.
//! A partial number that could still fall into ranges of several networks has no network yet:
//! [`Detection::candidates`] lists them, as a checkout form needs while the user types.

use std::sync::LazyLock;

use super::network::{CardNetwork, NetworkSet};

use CardNetwork::{
    AmericanExpress, DinaCard, DinersClub, Discover, Elo, Hiper, Hipercard, Jcb, Maestro,
    Mastercard, Mir, Naranja, RuPay, Troy, Uatp, UnionPay, Verve, Visa,
};

/// `(network, first, last)`: numbers whose leading digits, read to the length of `first`, lie
/// between `first` and `last` inclusive. `first` and `last` have the same number of digits.
///
/// Sources, range by range in docs/card-networks.md: Discover Global Network's IIN table for
/// Discover, Diners Club and JCB (which DGN lists as its partner); the networks' published
/// ranges as collected by braintree/credit-card-type (MIT) for the rest; RuPay and the Troy
/// BINs from the embedded BIN data. Single BINs that the BIN data files under another network
/// than these ranges (a Maestro BIN inside UnionPay's 622) are not repeated here: Validate
/// takes the data's network where it names one (`bins::facts`), and these ranges answer the
/// rest.
pub const IIN_RANGES: &[(CardNetwork, &str, &str)] = &[
    (Visa, "4", "4"),
    (Mastercard, "51", "55"),
    (Mastercard, "2221", "2229"),
    (Mastercard, "223", "229"),
    (Mastercard, "23", "26"),
    (Mastercard, "270", "271"),
    (Mastercard, "2720", "2720"),
    (AmericanExpress, "34", "34"),
    (AmericanExpress, "37", "37"),
    (DinersClub, "300", "305"),
    (DinersClub, "3095", "3095"),
    (DinersClub, "36", "36"),
    (DinersClub, "38", "39"),
    (Discover, "6011", "6011"),
    (Discover, "644", "649"),
    (Discover, "65", "65"),
    (Jcb, "2131", "2131"),
    (Jcb, "1800", "1800"),
    (Jcb, "3088", "3094"),
    (Jcb, "3096", "3102"),
    (Jcb, "3112", "3120"),
    (Jcb, "3158", "3159"),
    (Jcb, "3337", "3349"),
    (Jcb, "3528", "3589"),
    (UnionPay, "620", "620"),
    (UnionPay, "62100", "62182"),
    (UnionPay, "62184", "62197"),
    (UnionPay, "62200", "62205"),
    (UnionPay, "622010", "622999"),
    (UnionPay, "62207", "62209"),
    (UnionPay, "623", "626"),
    (UnionPay, "6270", "6270"),
    (UnionPay, "6272", "6272"),
    (UnionPay, "6276", "6276"),
    (UnionPay, "627700", "627779"),
    (UnionPay, "627781", "627799"),
    (UnionPay, "6282", "6289"),
    (UnionPay, "6291", "6292"),
    (UnionPay, "810", "810"),
    (UnionPay, "8110", "8171"),
    (Maestro, "493698", "493698"),
    (Maestro, "500000", "504174"),
    (Maestro, "504176", "506698"),
    (Maestro, "506779", "508999"),
    (Maestro, "56", "59"),
    (Maestro, "63", "63"),
    (Maestro, "67", "67"),
    (Maestro, "6", "6"),
    (Mir, "2200", "2204"),
    (Elo, "401178", "401179"),
    (Elo, "431274", "431274"),
    (Elo, "438935", "438935"),
    (Elo, "451416", "451416"),
    (Elo, "457393", "457393"),
    (Elo, "457631", "457632"),
    (Elo, "504175", "504175"),
    (Elo, "506699", "506778"),
    (Elo, "509000", "509999"),
    (Elo, "627780", "627780"),
    (Elo, "636297", "636297"),
    (Elo, "636368", "636368"),
    (Elo, "650031", "650033"),
    (Elo, "650035", "650051"),
    (Elo, "650405", "650439"),
    (Elo, "650485", "650538"),
    (Elo, "650541", "650598"),
    (Elo, "650700", "650718"),
    (Elo, "650720", "650727"),
    (Elo, "650901", "650978"),
    (Elo, "651652", "651679"),
    (Elo, "655000", "655019"),
    (Elo, "655021", "655058"),
    (Hipercard, "606282", "606282"),
    (Hiper, "637095", "637095"),
    (Hiper, "637568", "637568"),
    (Hiper, "637599", "637599"),
    (Hiper, "637609", "637609"),
    (Hiper, "637612", "637612"),
    (Hiper, "63737423", "63737423"),
    (Hiper, "63743358", "63743358"),
    (Troy, "9792", "9792"),
    (Troy, "650052", "650052"),
    (Troy, "650170", "650170"),
    (Troy, "650274", "650274"),
    (Troy, "650923", "650923"),
    (Troy, "654997", "654997"),
    (Troy, "657366", "657366"),
    (Troy, "657998", "657998"),
    (Verve, "506099", "506127"),
    (Verve, "506129", "506129"),
    (Verve, "506133", "506150"),
    (Verve, "506158", "506163"),
    (Verve, "506166", "506166"),
    (Verve, "506168", "506168"),
    (Verve, "506170", "506170"),
    (Verve, "506173", "506173"),
    (Verve, "506176", "506180"),
    (Verve, "506184", "506184"),
    (Verve, "506187", "506188"),
    (Verve, "506191", "506191"),
    (Verve, "506195", "506195"),
    (Verve, "506197", "506197"),
    (Verve, "507865", "507866"),
    (Verve, "507868", "507877"),
    (Verve, "507880", "507888"),
    (Verve, "507900", "507900"),
    (Verve, "507941", "507941"),
    (RuPay, "508500", "508999"),
    (RuPay, "606100", "608999"),
    (RuPay, "652150", "653149"),
    (RuPay, "817200", "820199"),
    (Naranja, "402918", "402918"),
    (Naranja, "527572", "527572"),
    (Naranja, "589562", "589562"),
    (Uatp, "1", "1"),
    (DinaCard, "9891", "9891"),
];

/// The most leading digits any range looks at.
pub const MAX_IIN_DIGITS: usize = 8;

const POW10: [u32; MAX_IIN_DIGITS + 1] = [
    1,
    10,
    100,
    1_000,
    10_000,
    100_000,
    1_000_000,
    10_000_000,
    100_000_000,
];

/// A range of [`IIN_RANGES`] as numbers.
#[derive(Debug, Clone, Copy)]
struct Range {
    network: CardNetwork,
    digits: usize,
    first: u32,
    last: u32,
}

static RANGES: LazyLock<Vec<Range>> = LazyLock::new(|| {
    IIN_RANGES
        .iter()
        .map(|&(network, first, last)| Range {
            network,
            digits: first.len(),
            first: first.parse().expect("IIN_RANGES holds digits"),
            last: last.parse().expect("IIN_RANGES holds digits"),
        })
        .collect()
});

/// How strongly a network matched: a whole range beats a prefix of one; then longer ranges
/// beat shorter ones, and narrower beat wider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Strength {
    whole: bool,
    digits: usize,
    width: u32,
}

impl Strength {
    fn beats(self, other: Self) -> bool {
        (self.whole, self.digits, std::cmp::Reverse(self.width))
            > (other.whole, other.digits, std::cmp::Reverse(other.width))
    }
}

/// What the leading digits say about the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Detection {
    /// The network, once the digits determine one.
    pub network: Option<CardNetwork>,
    /// Every network the number matches or could still match as more digits come.
    pub candidates: NetworkSet,
}

impl Detection {
    /// The answer when something other than the ranges (a BIN table's entry) names the network.
    #[must_use]
    pub fn decided(network: CardNetwork) -> Self {
        Self {
            network: Some(network),
            candidates: std::iter::once(network).collect(),
        }
    }
}

/// Detects the network of a whole or partial number from its leading digits (values 0 to 9).
///
/// The network is determined when exactly one network is still possible, or when every
/// possible network already matches a whole range (the strongest then wins).
///
/// Every call is on the request path (Validate, LookupBin, MaskCard and each Inspect item), so
/// the answer is read from the segment table (`SEGMENTS`), built once from the ranges: a bucket
/// chosen by the first three digits, then a binary search over the few segments in it, instead
/// of a walk over every range.
#[must_use]
pub fn detect(digits: &[u8]) -> Detection {
    let known = digits.len().min(MAX_IIN_DIGITS);
    let bucket_digits = known.min(BUCKET_DIGITS);
    let bucket = leading_value(&digits[..bucket_digits]);
    let value = digits[bucket_digits..known]
        .iter()
        .fold(bucket, |value, &d| value * 10 + u32::from(d % 10));
    SEGMENTS[known].find(bucket as usize, value)
}

/// Builds the table [`detect`] reads, if it is not built yet: about a millisecond, which
/// otherwise falls on the first call.
pub fn build_table() {
    LazyLock::force(&SEGMENTS);
}

/// The digits (values 0 to 9) as a number.
fn leading_value(digits: &[u8]) -> u32 {
    digits
        .iter()
        .fold(0, |value, &d| value * 10 + u32::from(d % 10))
}

/// How many leading digits choose the bucket a search starts from.
const BUCKET_DIGITS: usize = 3;

/// For numbers of one count of known digits: the values at which the set of matching ranges
/// changes, and the detection that holds from each of them up to the next.
#[derive(Debug)]
struct Segments {
    starts: Vec<u32>,
    detections: Vec<Detection>,
    /// For each value `b` of the first [`BUCKET_DIGITS`] digits (fewer when fewer are known),
    /// how many `starts` are at most the smallest value beginning with `b`; one more entry
    /// for the value past the last. A search looks only between two neighbours.
    buckets: Vec<u32>,
}

impl Segments {
    fn new(known: usize) -> Self {
        let mut starts = vec![0];
        for range in RANGES.iter() {
            let (first, end) = range.matching_values(known);
            starts.push(first);
            starts.push(end);
        }
        starts.retain(|&start| start < POW10[known]);
        starts.sort_unstable();
        starts.dedup();
        let detections = starts
            .iter()
            .map(|&start| detect_by_scan(&digits_of(start, known)))
            .collect();
        let scale = POW10[known - known.min(BUCKET_DIGITS)];
        let buckets = (0..=POW10[known.min(BUCKET_DIGITS)])
            .map(|bucket| {
                let at_most = starts.partition_point(|&start| start <= bucket * scale);
                u32::try_from(at_most).expect("a few hundred segments")
            })
            .collect();
        Self {
            starts,
            detections,
            buckets,
        }
    }

    /// The detection of `value`, whose leading digits are `bucket`.
    fn find(&self, bucket: usize, value: u32) -> Detection {
        let (low, high) = (
            self.buckets[bucket] as usize,
            self.buckets[bucket + 1] as usize,
        );
        // `starts[0]` is 0, so `low` is at least 1; and no start in `high..` is `value` or less.
        let at_most = low + self.starts[low..high].partition_point(|&start| start <= value);
        self.detections[at_most - 1]
    }
}

/// [`Segments`] for 0 to [`MAX_IIN_DIGITS`] known digits; each detection is the one
/// [`detect_by_scan`] gives for the segment's first value, which holds for the whole segment
/// because no range starts or ends inside it.
static SEGMENTS: LazyLock<[Segments; MAX_IIN_DIGITS + 1]> =
    LazyLock::new(|| std::array::from_fn(Segments::new));

/// `value` as `known` digits, leading zeros kept.
fn digits_of(value: u32, known: usize) -> Vec<u8> {
    (0..known)
        .rev()
        .map(|k| (value / POW10[k] % 10) as u8)
        .collect()
}

impl Range {
    /// The values of `known` leading digits that match the range, whole or as a prefix of it:
    /// from `first` up to, not including, `end`.
    fn matching_values(&self, known: usize) -> (u32, u32) {
        if known >= self.digits {
            let scale = POW10[known - self.digits];
            (self.first * scale, (self.last + 1) * scale)
        } else {
            let scale = POW10[self.digits - known];
            (self.first / scale, self.last / scale + 1)
        }
    }
}

/// [`detect`] by walking every range: the definition the segment table is built from.
fn detect_by_scan(digits: &[u8]) -> Detection {
    let known = digits.len().min(MAX_IIN_DIGITS);
    let mut prefix = [0u32; MAX_IIN_DIGITS + 1];
    for k in 1..=known {
        prefix[k] = prefix[k - 1] * 10 + u32::from(digits[k - 1] % 10);
    }

    let mut best: [Option<Strength>; CardNetwork::ALL.len()] = [None; CardNetwork::ALL.len()];
    for range in RANGES.iter() {
        let whole = known >= range.digits;
        let (value, scale) = if whole {
            (prefix[range.digits], 1)
        } else {
            (prefix[known], POW10[range.digits - known])
        };
        if value < range.first / scale || value > range.last / scale {
            continue;
        }
        let strength = Strength {
            whole,
            digits: range.digits,
            width: range.last - range.first,
        };
        let slot = &mut best[range.network as usize];
        if slot.is_none_or(|current| strength.beats(current)) {
            *slot = Some(strength);
        }
    }

    let mut candidates = NetworkSet::empty();
    let mut all_whole = true;
    let mut strongest: Option<(CardNetwork, Strength)> = None;
    for network in CardNetwork::ALL {
        let Some(strength) = best[network as usize] else {
            continue;
        };
        candidates.insert(network);
        all_whole &= strength.whole;
        if strongest.is_none_or(|(_, current)| strength.beats(current)) {
            strongest = Some((network, strength));
        }
    }
    let network = strongest
        .filter(|_| candidates.len() == 1 || all_whole)
        .map(|(network, _)| network);
    Detection {
        network,
        candidates,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn detect_str(s: &str) -> Detection {
        let digits: Vec<u8> = s.bytes().map(|b| b - b'0').collect();
        detect(&digits)
    }

    fn network(s: &str) -> Option<CardNetwork> {
        detect_str(s).network
    }

    #[test]
    fn table_is_well_formed() {
        for &(network, first, last) in IIN_RANGES {
            assert_eq!(first.len(), last.len(), "{network}: {first}-{last}");
            assert!(first.len() <= MAX_IIN_DIGITS, "{network}: {first}");
            assert!(
                first
                    .bytes()
                    .chain(last.bytes())
                    .all(|b| b.is_ascii_digit())
            );
            assert!(first <= last, "{network}: {first}-{last}");
        }
    }

    #[test]
    fn every_network_has_ranges() {
        for net in CardNetwork::ALL {
            assert!(IIN_RANGES.iter().any(|&(n, _, _)| n == net), "{net}");
        }
    }

    #[test]
    fn published_test_numbers() {
        let cases = [
            ("4111111111111111", Visa),
            ("4012888888881881", Visa),
            ("4222222222222", Visa),
            ("5555555555554444", Mastercard),
            ("2223003122003222", Mastercard),
            ("378282246310005", AmericanExpress),
            ("371449635398431", AmericanExpress),
            ("6011111111111117", Discover),
            ("6011000990139424", Discover),
            ("30569309025904", DinersClub),
            ("38520000023237", DinersClub),
            ("3530111333300000", Jcb),
            ("3566002020360505", Jcb),
            ("6200000000000005", UnionPay),
            ("6212345678901232", UnionPay),
            ("6759649826438453", Maestro),
            ("6304000000000000", Maestro),
            ("2200000000000004", Mir),
            ("6362970000457013", Elo),
            ("6062826786276634", Hipercard),
            ("6370950000000005", Hiper),
            ("9792030000000000", Troy),
            ("5061001234567890123", Verve),
            ("6521500000000000", RuPay),
            ("5895626292990446", Naranja),
            ("135412345678911", Uatp),
            ("9891000000000003", DinaCard),
        ];
        for (number, expected) in cases {
            assert_eq!(network(number), Some(expected), "{number}");
        }
    }

    #[test]
    fn discover_global_networks_partner_ranges() {
        // Diners Club's 3095 and JCB's ranges outside 3528-3589, from DGN's IIN table.
        assert_eq!(network("30950000000000"), Some(DinersClub));
        for prefix in [
            "3088", "3094", "3096", "3102", "3112", "3120", "3158", "3159", "3337",
        ] {
            assert_eq!(network(prefix), Some(Jcb), "{prefix}");
        }
        assert_eq!(network("3349"), Some(Jcb));
        for outside in [
            "3087", "3103", "3111", "3121", "3157", "3160", "3336", "3350",
        ] {
            assert_eq!(network(outside), None, "{outside}");
        }
        // Before its fourth digit a 30 number may be Diners Club or JCB.
        assert_eq!(
            detect_str("30").candidates.iter().collect::<Vec<_>>(),
            [DinersClub, Jcb]
        );
    }

    #[test]
    fn longest_range_wins_where_ranges_overlap() {
        assert_eq!(network("401178"), Some(Elo));
        assert_eq!(network("4011780000000000"), Some(Elo));
        assert_eq!(network("401177"), Some(Visa));
        assert_eq!(network("6221260000000000"), Some(UnionPay));
        assert_eq!(network("62183"), Some(Maestro));
        assert_eq!(network("6277809"), Some(Elo));
        // A single BIN beats a range of the same length.
        assert_eq!(network("650923"), Some(Troy));
        assert_eq!(network("606282"), Some(Hipercard));
    }

    #[test]
    fn short_prefixes_stay_open_until_one_network_is_left() {
        assert_eq!(network(""), None);
        assert_eq!(detect_str("").candidates.len(), CardNetwork::ALL.len());
        assert_eq!(network("4"), None);
        assert_eq!(
            detect_str("4").candidates.iter().collect::<Vec<_>>(),
            [Visa, Maestro, Elo, Naranja]
        );
        assert_eq!(network("41"), Some(Visa));
        assert_eq!(network("2"), None);
        assert_eq!(network("27"), Some(Mastercard));
        assert_eq!(network("1"), None);
        assert_eq!(network("18"), None);
        assert_eq!(network("1800"), Some(Jcb));
        assert_eq!(network("1354"), Some(Uatp));
        assert_eq!(network("220"), Some(Mir));
        assert_eq!(network("601"), None);
        assert_eq!(network("6011"), Some(Discover));
        assert_eq!(network("637374"), None);
        assert_eq!(network("63737423"), Some(Hiper));
    }

    /// The segment table answers exactly as the walk over every range, on every value where a
    /// segment starts or ends, on their neighbours, and on every value of up to five digits.
    #[test]
    fn segment_table_agrees_with_the_scan() {
        for known in 0..=MAX_IIN_DIGITS {
            let limit = POW10[known];
            let mut values: Vec<u32> = if known <= 5 {
                (0..limit).collect()
            } else {
                SEGMENTS[known]
                    .starts
                    .iter()
                    .flat_map(|&s| [s.saturating_sub(1), s, s + 1])
                    .chain([limit - 1])
                    .filter(|&v| v < limit)
                    .collect()
            };
            values.dedup();
            for value in values {
                let digits = digits_of(value, known);
                assert_eq!(detect(&digits), detect_by_scan(&digits), "{digits:?}");
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn segment_table_agrees_with_the_scan_on_any_number(
            digits in proptest::collection::vec(0u8..10, 0..20)
        ) {
            proptest::prop_assert_eq!(detect(&digits), detect_by_scan(&digits));
        }
    }

    #[test]
    fn unknown_prefixes_have_no_candidates() {
        for prefix in ["0", "221", "2721", "306", "3103", "32", "7", "99"] {
            let detection = detect_str(prefix);
            assert!(detection.candidates.is_empty(), "{prefix}");
            assert_eq!(detection.network, None, "{prefix}");
        }
    }
}
