//! Test cards: the card numbers payment providers publish for testing (4242 4242 4242 4242 and
//! the like). They reach production forms from QA scripts and from people probing a checkout, so
//! answers say when a number is one, and which providers list it.
//!
//! The lists are tab-separated text ([`HEADER`], then one `number provider source` row per line):
//! the embedded one ([`TestCards::embedded`], `data/test-cards.tsv`, its provenance in
//! `data/NOTICE`) and optionally the operator's (`--test-cards-file`), added to it. A number is a
//! test card exactly when a list has it: a valid number no list names is not one, and a listed
//! number is one whether or not it passes the Luhn check (some providers list numbers that fail
//! it on purpose).
//!
//! Looking a number up is one hash lookup of its digits packed in an integer; the providers of a
//! number are a bit set, their names kept once. Errors name the line, never its text (which holds
//! a card number).

use std::sync::Arc;

use rustc_hash::FxHashMap;

use super::Pan;
use super::mask::MIN_PAN_DIGITS;
use super::prefixes::FourDigitPrefixes;

/// The first line of every test-card list.
pub const HEADER: &str = "number\tprovider\tsource";

/// The embedded list: numbers from the test-card lists Stripe, Adyen, Braintree and Checkout.com
/// publish in their open-source SDKs (data/NOTICE).
const EMBEDDED: &str = include_str!("../../data/test-cards.tsv");

/// The most distinct provider names all lists together may have (the bits of [`Providers`]).
/// With [`MAX_PROVIDER_LEN`], it bounds what a number's answer can carry (Inspect's least
/// answer limit holds a number listed by all of them).
pub const MAX_PROVIDERS: usize = 16;
/// The longest provider name.
pub const MAX_PROVIDER_LEN: usize = 24;

/// The providers that list one number, as bits of [`TestCards`]' provider names. Empty for a
/// number no list has.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Providers(u16);

impl Providers {
    /// True when no provider lists the number: it is not a test card.
    #[must_use]
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
}

/// The test-card lists, merged: every listed number and the providers that list it.
/// Cheap to clone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestCards {
    inner: Arc<Lists>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Lists {
    /// By [`key`] of the number.
    numbers: FxHashMap<u128, Providers>,
    /// The numbers' first four digits: most numbers are no test card, and one bit says so.
    prefixes: FourDigitPrefixes,
    /// Provider names, bit `i` of [`Providers`] naming `providers[i]`.
    providers: Vec<Box<str>>,
}

/// Why a test-card list cannot be used. Names the line, never its text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TestCardFileError {
    #[error("the first line must be the header `number<TAB>provider<TAB>source`")]
    Header,
    #[error("line {line}: {problem}")]
    Line { line: usize, problem: &'static str },
    #[error("line {line}: more than {MAX_PROVIDERS} providers in all")]
    TooManyProviders { line: usize },
}

/// A summary of one list, for `data check`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListSummary {
    /// Rows (number and provider pairs).
    pub rows: usize,
    /// Distinct numbers.
    pub numbers: usize,
    /// Rows per provider, by name.
    pub by_provider: Vec<(String, usize)>,
}

impl TestCards {
    /// The embedded list alone.
    ///
    /// # Panics
    /// Never: the embedded list is checked by this module's tests.
    #[must_use]
    pub fn embedded() -> Self {
        Self::from_lists([EMBEDDED]).expect("the embedded test-card list is valid")
    }

    /// The embedded list with the operator's `text` added (its rows adding providers to the
    /// numbers both have).
    ///
    /// # Errors
    /// [`TestCardFileError`] for a line of `text` that is not a test-card row.
    pub fn embedded_and(text: &str) -> Result<Self, TestCardFileError> {
        Self::from_lists([EMBEDDED, text])
    }

    /// The lists' rows merged, in order.
    fn from_lists<'a>(texts: impl IntoIterator<Item = &'a str>) -> Result<Self, TestCardFileError> {
        let mut lists = Lists::default();
        for text in texts {
            parse(text, &mut lists)?;
        }
        Ok(Self {
            inner: Arc::new(lists),
        })
    }

    /// The providers that list `pan` (none for a number no list has, partial numbers included).
    #[must_use]
    pub fn providers(&self, pan: &Pan) -> Providers {
        if !self.inner.prefixes.may_hold(pan.digits()) {
            return Providers::default();
        }
        self.inner
            .numbers
            .get(&key(pan.digits()))
            .copied()
            .unwrap_or_default()
    }

    /// The names of `providers`, in the order the lists first name them.
    pub fn names(&self, providers: Providers) -> impl Iterator<Item = &str> {
        self.inner
            .providers
            .iter()
            .enumerate()
            .filter(move |(bit, _)| providers.0 & (1 << bit) != 0)
            .map(|(_, name)| &**name)
    }

    /// How many distinct numbers the lists have.
    #[must_use]
    pub fn len(&self) -> usize {
        self.inner.numbers.len()
    }

    /// True when no list has a number (never for the embedded one).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.inner.numbers.is_empty()
    }
}

/// Checks one list's `text` on its own and summarises it (`data check`).
///
/// # Errors
/// The first line that is not a test-card row.
pub fn check_list(text: &str) -> Result<ListSummary, TestCardFileError> {
    let mut lists = Lists::default();
    let rows = parse(text, &mut lists)?;
    let mut by_provider: Vec<(String, usize)> = lists
        .providers
        .iter()
        .enumerate()
        .map(|(bit, name)| {
            let count = lists
                .numbers
                .values()
                .filter(|p| p.0 & (1 << bit) != 0)
                .count();
            (name.to_string(), count)
        })
        .collect();
    by_provider.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    Ok(ListSummary {
        rows,
        numbers: lists.numbers.len(),
        by_provider,
    })
}

/// True when `text` begins as a test-card list does (its header).
#[must_use]
pub fn is_test_card_list(text: &[u8]) -> bool {
    text.strip_prefix(HEADER.as_bytes())
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(b"\n") || rest.starts_with(b"\r\n"))
}

/// The digits of a number as one integer, its length above them: 19 digits fit in 64 bits, and
/// the length keeps `0123...` and `123...` apart.
fn key(digits: &[u8]) -> u128 {
    let value = digits
        .iter()
        .fold(0u64, |value, &d| value * 10 + u64::from(d));
    (digits.len() as u128) << 64 | u128::from(value)
}

/// Adds the rows of `text` to `lists`; the number of rows.
fn parse(text: &str, lists: &mut Lists) -> Result<usize, TestCardFileError> {
    let mut lines = text.lines();
    if lines.next().map(str::trim_end) != Some(HEADER) {
        return Err(TestCardFileError::Header);
    }
    let mut rows = 0;
    for (index, line) in lines.enumerate() {
        let line_no = index + 2;
        let problem = |problem| TestCardFileError::Line {
            line: line_no,
            problem,
        };
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let mut fields = line.split('\t');
        let (Some(number), Some(provider), Some(_source), None) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            return Err(problem(
                "expected three tab-separated fields: number, provider, source",
            ));
        };
        let pan = Pan::parse(number)
            .ok()
            // Whole card numbers only (at most 19, as any).
            .filter(|pan| pan.len() >= MIN_PAN_DIGITS && number.bytes().all(|b| b.is_ascii_digit()))
            .ok_or_else(|| problem("the number must be 12 to 19 digits, nothing else"))?;
        if provider.is_empty()
            || provider.len() > MAX_PROVIDER_LEN
            || !provider
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(problem(
                "the provider must be 1 to 24 lower-case letters, digits or '-'",
            ));
        }
        let bit = match lists.providers.iter().position(|p| &**p == provider) {
            Some(bit) => bit,
            None if lists.providers.len() < MAX_PROVIDERS => {
                lists.providers.push(provider.into());
                lists.providers.len() - 1
            }
            None => return Err(TestCardFileError::TooManyProviders { line: line_no }),
        };
        lists.numbers.entry(key(pan.digits())).or_default().0 |= 1 << bit;
        lists.prefixes.insert_number(pan.digits());
        rows += 1;
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(cards: &TestCards, number: &str) -> Vec<String> {
        let pan = Pan::parse(number).unwrap();
        cards
            .names(cards.providers(&pan))
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn the_embedded_list_names_its_providers_and_a_source_on_every_row() {
        let cards = TestCards::embedded();
        assert_eq!(names(&cards, "4242 4242 4242 4242"), ["checkout", "stripe"]);
        assert_eq!(
            names(&cards, "5555555555554444"),
            ["adyen", "braintree", "stripe"]
        );
        assert_eq!(names(&cards, "4111111111111111"), ["adyen"]);
        // Valid, but no provider lists it.
        assert!(names(&cards, "4242424242424241").is_empty());
        assert!(names(&cards, "4916338506082832").is_empty());
        // A prefix of a test card is not one.
        assert!(names(&cards, "424242424242").is_empty());
        for line in EMBEDDED.lines().skip(1) {
            let source = line.split('\t').nth(2).unwrap();
            assert!(source.starts_with("https://github.com/"), "{line}");
            assert!(
                source.contains("/blob/") && source.split('/').nth(6).unwrap().len() == 40,
                "a source names its commit: {line}"
            );
        }
        let summary = check_list(EMBEDDED).unwrap();
        assert_eq!(summary.numbers, cards.len());
        assert_eq!(
            summary
                .by_provider
                .iter()
                .map(|p| p.0.as_str())
                .collect::<Vec<_>>(),
            ["braintree", "adyen", "stripe", "checkout"]
        );
    }

    #[test]
    fn the_operators_list_adds_numbers_and_providers() {
        let cards = TestCards::embedded_and(&format!(
            "{HEADER}\n# our QA cards\n4000000000000002\tacme-qa\tinternal\n\n4242424242424242\tacme-qa\t\n"
        ))
        .unwrap();
        assert_eq!(names(&cards, "4000000000000002"), ["acme-qa"]);
        assert_eq!(
            names(&cards, "4242424242424242"),
            ["checkout", "stripe", "acme-qa"]
        );
        assert_eq!(cards.len(), TestCards::embedded().len() + 1);
    }

    #[test]
    fn bad_lists_name_the_line_never_its_text() {
        let row = |line: &str| format!("{HEADER}\n4242424242424242\tok\tx\n{line}\n");
        for (text, expected) in [
            (String::new(), TestCardFileError::Header),
            (
                "4242424242424242\tstripe\tx\n".to_owned(),
                TestCardFileError::Header,
            ),
            (row("4111111111111111\tstripe"), line(3)),
            (row("4111111111111111\tstripe\tx\ty"), line(3)),
            (row("41111111111\tstripe\tx"), line(3)),
            (row("4111 1111 1111 1111\tstripe\tx"), line(3)),
            (row("41111111111111111111\tstripe\tx"), line(3)),
            (row("4111111111111111\tStripe\tx"), line(3)),
            (row("4111111111111111\t\tx"), line(3)),
            (
                row(&format!(
                    "4111111111111111\t{}\tx",
                    "p".repeat(MAX_PROVIDER_LEN + 1)
                )),
                line(3),
            ),
        ] {
            let error = TestCards::embedded_and(&text).unwrap_err();
            assert_eq!(
                std::mem::discriminant(&error),
                std::mem::discriminant(&expected),
                "{text:?}"
            );
            if let (
                TestCardFileError::Line { line: got, .. },
                TestCardFileError::Line { line: want, .. },
            ) = (&error, &expected)
            {
                assert_eq!(got, want, "{text:?}");
            }
            assert!(!error.to_string().contains("4111"), "{error}");
        }
        let many = (0..=MAX_PROVIDERS)
            .map(|i| format!("4111111111111111\tp{i}\tx"))
            .collect::<Vec<_>>()
            .join("\n");
        assert_eq!(
            check_list(&format!("{HEADER}\n{many}")).unwrap_err(),
            TestCardFileError::TooManyProviders {
                line: MAX_PROVIDERS + 2
            }
        );
    }

    #[test]
    fn a_list_is_told_by_its_header() {
        assert!(is_test_card_list(EMBEDDED.as_bytes()));
        assert!(is_test_card_list(HEADER.as_bytes()));
        assert!(!is_test_card_list(b"number\tprovider\tsources\n"));
        assert!(!is_test_card_list(b"BIN,Brand,Type\n"));
    }

    fn line(line: usize) -> TestCardFileError {
        TestCardFileError::Line { line, problem: "" }
    }
}
