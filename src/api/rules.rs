//! What a request must look like, and the answers built from one number's facts: shared by the
//! unary calls and every Inspect item, so that the two can never answer one number differently.

use super::convert;
use super::error::{MIN_BIN_DIGITS, RequestError};
use crate::bins::{BinIndex, CardFacts};
use crate::card::mask::MIN_PAN_DIGITS;
use crate::card::{self, FingerprintKeys, MaskOptions, Pan, TestCards};
use crate::proto::cardlookup::v1 as pb;

/// LookupBin's refusal of a number too short to have a BIN.
pub(super) fn require_bin(pan: &Pan) -> Result<(), RequestError> {
    if pan.len() < MIN_BIN_DIGITS {
        return Err(RequestError::TooFewDigitsForBin { digits: pan.len() });
    }
    Ok(())
}

/// LookupBin's answer for a parsed number, from the `index` its `facts` came from, labelled
/// with `dataset_version`.
pub(super) fn bin_answer(
    index: &BinIndex,
    facts: &CardFacts,
    pan: &Pan,
    test_cards: &TestCards,
    dataset_version: &str,
) -> Result<pb::LookupBinResponse, RequestError> {
    require_bin(pan)?;
    Ok(convert::bin_lookup(
        facts.hit,
        facts.detection.network,
        facts.co_badged(pan),
        more_specific_match_possible(index, pan),
        &test_card(test_cards, Some(pan)),
        dataset_version,
    ))
}

/// The test-card facts of a number (none for input that is not a number).
pub(super) fn test_card<'a>(lists: &'a TestCards, pan: Option<&Pan>) -> convert::TestCard<'a> {
    convert::TestCard {
        providers: pan.map(|pan| lists.providers(pan)).unwrap_or_default(),
        lists,
    }
}

/// Whether more digits than `pan` has could match a more specific BIN entry.
pub(super) fn more_specific_match_possible(index: &BinIndex, pan: &Pan) -> bool {
    index.longer_entry_under(pan.digits())
}

/// The fingerprint of a whole card number (12 to 19 digits, valid or not) under the signing
/// key; empty without keys and for a partial number, whose fingerprint would identify nothing.
pub(super) fn fingerprint(keys: Option<&FingerprintKeys>, pan: &Pan) -> String {
    keys.and_then(|keys| keys.of_card(pan)).unwrap_or_default()
}

/// MaskCard's masked number.
pub(super) fn masked(
    facts: &CardFacts,
    pan: &Pan,
    options: MaskOptions,
) -> Result<String, RequestError> {
    if pan.len() < MIN_PAN_DIGITS {
        return Err(RequestError::NotACardNumber { digits: pan.len() });
    }
    Ok(card::mask(
        pan,
        facts.detection.network,
        facts.bin_len(),
        &options,
    ))
}

/// The masking a MaskCard request asks for: its style, mask character (`*` by default) and
/// grouping.
pub(super) fn mask_options(request: &pb::MaskCardRequest) -> Result<MaskOptions, RequestError> {
    let style =
        convert::mask_style(request.style).ok_or(RequestError::UnknownMaskStyle(request.style))?;
    let mask_char = request
        .mask_character
        .as_deref()
        .map(MaskOptions::parse_mask_char)
        .transpose()?
        .unwrap_or('*');
    Ok(MaskOptions {
        style,
        mask_char,
        keep_grouping: request.keep_grouping,
    })
}

/// The BIN (first six digits) as a number, for card-testing detection.
pub(super) fn bin_of(pan: &Pan) -> Option<u32> {
    let digits = pan.digits().get(..MIN_BIN_DIGITS)?;
    Some(digits.iter().fold(0, |bin, &d| bin * 10 + u32::from(d)))
}
