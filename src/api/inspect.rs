//! Inspect's batches: every item of a request answered (validation, BIN, masked) with its own
//! status, the BIN answers given in each result or once each for the whole response.

use std::collections::HashMap;

use rustc_hash::FxBuildHasher;

use super::convert;
use super::error::RequestError;
use super::metrics::BinLookups;
use super::rules::{bin_answer, masked, require_bin};
use crate::bins::{BinIndex, CardFacts, Examined, Prefix, examine};
use crate::card::{CardNetwork, MaskOptions, Pan};
use crate::proto::cardlookup::v1 as pb;

/// The most items one Inspect request may carry.
pub const MAX_INSPECT_ITEMS: usize = 1000;
/// The longest item id Inspect echoes.
const MAX_INSPECT_ID_BYTES: usize = 128;

/// Answers one Inspect request from `index`, tallying its BIN lookups in `lookups`. The error
/// is for a request that cannot be answered at all (too many items, a mask style or layout this
/// server does not know): it ends the stream.
pub(super) fn answer_batch(
    index: &BinIndex,
    request: pb::InspectRequest,
    lookups: &mut BinLookups,
) -> Result<pb::InspectResponse, RequestError> {
    if request.items.len() > MAX_INSPECT_ITEMS {
        return Err(RequestError::InspectItems {
            items: request.items.len(),
            max: MAX_INSPECT_ITEMS,
        });
    }
    let style = convert::mask_style(request.mask_style)
        .ok_or(RequestError::UnknownMaskStyle(request.mask_style))?;
    let options = MaskOptions {
        style,
        ..MaskOptions::default()
    };
    let mut bin_answers = match pb::BinAnswerLayout::try_from(request.bin_answers) {
        Ok(pb::BinAnswerLayout::Unspecified | pb::BinAnswerLayout::PerResult) => {
            BinAnswers::PerResult
        }
        Ok(pb::BinAnswerLayout::Shared) => BinAnswers::Shared(SharedBinAnswers::default()),
        Err(_) => return Err(RequestError::UnknownBinAnswerLayout(request.bin_answers)),
    };
    let results = request
        .items
        .into_iter()
        .map(|item| answer_item(index, item, options, &mut bin_answers, lookups))
        .collect();
    Ok(pb::InspectResponse {
        results,
        dataset_version: index.version().to_owned(),
        bins: match bin_answers {
            BinAnswers::PerResult => Vec::new(),
            BinAnswers::Shared(shared) => shared.answers,
        },
    })
}

/// One item: the three answers, and the first reason one of them could not be given. Its BIN
/// answer leaves `dataset_version` empty: the response names it once for every item.
fn answer_item(
    index: &BinIndex,
    item: pb::InspectItem,
    options: MaskOptions,
    bin_answers: &mut BinAnswers,
    lookups: &mut BinLookups,
) -> pb::InspectResult {
    let mut result = pb::InspectResult::default();
    let Examined { validation, parsed } = examine(index, &item.number);
    result.validation = Some(convert::validation(validation));
    // An id too long to echo makes the item an error: its other answers are not built.
    let answers = if item.id.len() > MAX_INSPECT_ID_BYTES {
        Err(RequestError::InspectId {
            max: MAX_INSPECT_ID_BYTES,
        })
    } else {
        result.id = item.id;
        parsed.map_err(RequestError::from).and_then(|(pan, facts)| {
            bin_answers.give(&mut result, &facts, &pan)?;
            lookups.count(facts.hit.is_some());
            result.masked = masked(&facts, &pan, options)?;
            Ok(())
        })
    };
    if let Err(error) = answers {
        result.code = error.code() as i32;
        result.message = error.to_string();
    }
    result
}

/// Where a batch's BIN answers go, as the request's `bin_answers` asks.
enum BinAnswers {
    PerResult,
    Shared(SharedBinAnswers),
}

/// The distinct BIN answers of a batch, in the order of first use.
#[derive(Default)]
struct SharedBinAnswers {
    answers: Vec<pb::LookupBinResponse>,
    /// Where each answer is in `answers`, by what decides it within one index snapshot: the
    /// matched prefix (and so the record) and the IIN network (the answer's network where the
    /// record names none). Fx hashing: a batch has at most 1,000 keys, so even chosen collisions
    /// cost little, and SipHash was some 6% of the server's time under Inspect load.
    positions: HashMap<(Option<Prefix>, Option<CardNetwork>), u32, FxBuildHasher>,
}

impl BinAnswers {
    /// Gives `result` the BIN answer for `pan`: in its `bin`, or as the position of the shared
    /// answer in its `bin_index`.
    fn give(
        &mut self,
        result: &mut pb::InspectResult,
        facts: &CardFacts,
        pan: &Pan,
    ) -> Result<(), RequestError> {
        match self {
            Self::PerResult => result.bin = Some(Box::new(bin_answer(facts, pan, "")?)),
            Self::Shared(shared) => {
                require_bin(pan)?;
                let key = (facts.hit.map(|hit| hit.prefix), facts.detection.network);
                // At most MAX_INSPECT_ITEMS answers: the count fits.
                let next = u32::try_from(shared.answers.len()).unwrap_or(u32::MAX);
                let position = *shared.positions.entry(key).or_insert_with(|| {
                    let answer = convert::bin_lookup(facts.hit, facts.detection.network, "");
                    shared.answers.push(answer);
                    next
                });
                result.bin_index = Some(position);
            }
        }
        Ok(())
    }
}
