//! What the service knows about one card number: its longest match in the BIN data and its
//! network, found once and shared by every answer about the number (Validate, LookupBin,
//! MaskCard, each Inspect item).
//!
//! The network is the BIN data's where its entry names one, and the IIN ranges' otherwise. The
//! data knows single BINs better than any range table (a Maestro BIN inside UnionPay's 622, a
//! JCB BIN a range table has not caught up with), and taking its word makes Validate and
//! LookupBin always name the same network for a number. The ranges answer numbers the data
//! does not know and prefixes too short to match an entry.

use super::index::{BinIndex, BinMatch};
use crate::card::iin::{self, Detection};
use crate::card::{self, NetworkSet, Pan, PanError, Validation, domestic};

/// A number as typed, examined once: Validate's answer for it and, when it is a number's
/// digits, the digits with their facts (what LookupBin and MaskCard answer from).
#[derive(Debug)]
pub struct Examined<'a> {
    pub validation: Validation,
    pub parsed: Result<(Pan, CardFacts<'a>), PanError>,
}

/// Parses `number`, looks it up in `index` and the IIN ranges when it parses, and validates
/// it: with the issuer's own rules where `index` has them, and the reason when the text is not
/// a number's digits.
#[must_use]
pub fn examine<'a>(index: &'a BinIndex, number: &str) -> Examined<'a> {
    match Pan::parse(number) {
        Ok(pan) => {
            let facts = CardFacts::of(index, &pan);
            Examined {
                validation: facts.validation(&pan),
                parsed: Ok((pan, facts)),
            }
        }
        Err(error) => Examined {
            validation: card::validate_unparsed(&error),
            parsed: Err(error),
        },
    }
}

/// Validate's answer for a number as typed ([`examine`]'s validation).
#[must_use]
pub fn validate_number(index: &BinIndex, number: &str) -> Validation {
    examine(index, number).validation
}

/// One number's BIN match and network, borrowed from the index they came from.
#[derive(Debug, Clone, Copy)]
pub struct CardFacts<'a> {
    pub hit: Option<BinMatch<'a>>,
    /// The network: the BIN entry's when it names one, the IIN ranges' otherwise.
    pub detection: Detection,
}

impl<'a> CardFacts<'a> {
    /// Looks `pan` up in `index`, and in the IIN ranges when the entry names no network.
    #[must_use]
    pub fn of(index: &'a BinIndex, pan: &Pan) -> Self {
        let hit = index.longest_match(pan.digits());
        let detection = match hit.and_then(|hit| hit.record.network) {
            Some(network) => Detection::decided(network),
            None => iin::detect(pan.digits()),
        };
        Self { hit, detection }
    }

    /// Validate's answer, with the issuer's own rules where the BIN data gives them.
    #[must_use]
    pub fn validation(&self, pan: &Pan) -> Validation {
        let rules = self.hit.map(|hit| hit.record.rules).unwrap_or_default();
        card::validate_pan(pan, self.detection, rules)
    }

    /// The other networks `pan` belongs to: the BIN entry's co-badged networks and the domestic
    /// schemes whose published ranges hold it, less the card's network.
    #[must_use]
    pub fn co_badged(&self, pan: &Pan) -> NetworkSet {
        let from_entry = self
            .hit
            .map_or_else(NetworkSet::empty, |hit| hit.record.co_badged);
        let mut co_badged = from_entry.union(domestic::schemes_of(pan.digits()));
        if let Some(network) = self.detection.network {
            co_badged.remove(network);
        }
        co_badged
    }

    /// The length of the BIN that matched; 0 when none did (it decides how much masking may
    /// show).
    #[must_use]
    pub fn bin_len(&self) -> usize {
        self.hit.map_or(0, |hit| hit.prefix.len())
    }
}
