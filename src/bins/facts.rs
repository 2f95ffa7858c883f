//! What the service knows about one card number: its longest match in the BIN data and its
//! network from the IIN ranges, found once and shared by every answer about the number
//! (Validate, LookupBin, MaskCard, each Inspect item).

use super::index::{BinIndex, BinMatch};
use crate::card::iin::{self, Detection};
use crate::card::{self, Pan, Validation};

/// Validate's answer for a number as typed: with the issuer's own rules where `index` has
/// them, and the reason when the text is not a number's digits.
#[must_use]
pub fn validate_number(index: &BinIndex, number: &str) -> Validation {
    match Pan::parse(number) {
        Ok(pan) => CardFacts::of(index, &pan).validation(&pan),
        Err(error) => card::validate_unparsed(&error),
    }
}

/// One number's BIN match and IIN detection, borrowed from the index they came from.
#[derive(Debug, Clone, Copy)]
pub struct CardFacts<'a> {
    pub hit: Option<BinMatch<'a>>,
    pub detection: Detection,
}

impl<'a> CardFacts<'a> {
    /// Looks `pan` up in `index` and in the IIN ranges.
    #[must_use]
    pub fn of(index: &'a BinIndex, pan: &Pan) -> Self {
        Self {
            hit: index.longest_match(pan.digits()),
            detection: iin::detect(pan.digits()),
        }
    }

    /// Validate's answer, with the issuer's own rules where the BIN data gives them.
    #[must_use]
    pub fn validation(&self, pan: &Pan) -> Validation {
        let rules = self.hit.map(|hit| hit.record.rules).unwrap_or_default();
        card::validate_pan(pan, self.detection, rules)
    }

    /// The length of the BIN that matched; 0 when none did (it decides how much masking may
    /// show).
    #[must_use]
    pub fn bin_len(&self) -> usize {
        self.hit.map_or(0, |hit| hit.prefix.len())
    }
}
