//! Inspect's batches: every item of a request answered (validation, BIN, masked) with its own
//! status, the BIN answers given in each result or once each for the whole response.

use std::collections::HashMap;

use prost::Message;
use rustc_hash::FxBuildHasher;

use super::convert;
use super::error::RequestError;
use super::metrics::BinLookups;
use super::rules::{
    bin_answer, fingerprint, masked, more_specific_match_possible, require_bin, test_card,
};
use crate::audit::CardSeen;
use crate::bins::{BinIndex, CardFacts, Examined, Prefix, examine};
use crate::card::{
    CardNetwork, FingerprintKeys, MaskOptions, NetworkSet, Pan, Providers, TestCards,
};
use crate::proto::cardlookup::v1 as pb;

/// The most items one Inspect request may carry.
pub const MAX_INSPECT_ITEMS: usize = 1000;
/// The longest item id Inspect echoes.
const MAX_INSPECT_ID_BYTES: usize = 128;
/// The largest Inspect response by default, and the most `--inspect-max-answer-bytes` allows:
/// gRPC clients refuse a message over 4 MiB unless told otherwise, so a client with default
/// settings can decode every answer.
pub const MAX_INSPECT_ANSWER_BYTES: usize = 4 * 1024 * 1024;
/// The least `--inspect-max-answer-bytes` allows: room for any one item answered with its
/// validation only (a fingerprint included), so every request of one item is answered.
pub const MIN_INSPECT_ANSWER_BYTES: usize = 1024;

/// Answers one Inspect request from `index`, tallying its BIN lookups in `lookups`, in a
/// response of at most `max_bytes` encoded. An item whose answers alone would not fit is
/// answered with its validation only. The error is for a request that cannot be answered at
/// all (too many items, a mask style or layout this server does not know, answers that
/// together would not fit): it ends the stream.
///
/// With `seen`, what the audit trail may say of each item's card goes there, one for every
/// item in order, answered or not: taken from the number as the item's answer parsed it and
/// the fingerprint the answer carries, so that no number is parsed or fingerprinted twice.
pub(super) fn answer_batch(
    index: &BinIndex,
    request: pb::InspectRequest,
    fingerprint_keys: Option<&FingerprintKeys>,
    test_cards: &TestCards,
    lookups: &mut BinLookups,
    max_bytes: usize,
    mut seen: Option<&mut Vec<CardSeen>>,
) -> Result<pb::InspectResponse, RequestError> {
    let mut items = request.items.into_iter();
    let refused = |error: RequestError, unanswered: std::vec::IntoIter<pb::InspectItem>, seen| {
        see_unanswered(unanswered, fingerprint_keys, seen);
        Err(error)
    };
    if items.len() > MAX_INSPECT_ITEMS {
        let error = RequestError::InspectItems {
            items: items.len(),
            max: MAX_INSPECT_ITEMS,
        };
        return refused(error, items, seen);
    }
    let Some(style) = convert::mask_style(request.mask_style) else {
        return refused(
            RequestError::UnknownMaskStyle(request.mask_style),
            items,
            seen,
        );
    };
    let mut bin_answers = match pb::BinAnswerLayout::try_from(request.bin_answers) {
        Ok(pb::BinAnswerLayout::Unspecified | pb::BinAnswerLayout::PerResult) => {
            BinAnswers::PerResult
        }
        Ok(pb::BinAnswerLayout::Shared) => BinAnswers::Shared(SharedBinAnswers::default()),
        Err(_) => {
            let error = RequestError::UnknownBinAnswerLayout(request.bin_answers);
            return refused(error, items, seen);
        }
    };
    let rules = ItemRules {
        index,
        options: MaskOptions {
            style,
            ..MaskOptions::default()
        },
        fingerprint_keys,
        test_cards,
    };
    let mut response = pb::InspectResponse {
        results: Vec::with_capacity(items.len()),
        dataset_version: index.version().to_owned(),
        bins: Vec::new(),
    };
    // Measured as it is built, so that a request is refused once its answers pass the limit,
    // without building the rest.
    let mut size = response.encoded_len();
    let item_max = max_bytes.saturating_sub(size);
    while let Some(item) = items.next() {
        let mut answer = answer_item(&rules, item, &bin_answers, lookups, seen.as_deref_mut());
        let mut bytes = answer.encoded_len();
        if bytes > item_max {
            answer.give_validation_only(&RequestError::InspectItemTooLarge { max: max_bytes });
            bytes = answer.encoded_len();
        }
        size += bytes;
        if size > max_bytes {
            let error = RequestError::InspectAnswerTooLarge {
                max: max_bytes,
                fitting: response.results.len(),
            };
            return refused(error, items, seen);
        }
        if let (BinAnswers::Shared(shared), Some((key, bin))) = (&mut bin_answers, answer.new_bin) {
            shared.add(key, bin);
        }
        response.results.push(answer.result);
    }
    if let BinAnswers::Shared(shared) = bin_answers {
        response.bins = shared.answers;
    }
    Ok(response)
}

/// What the trail may say of the cards of items a refused request did not answer.
fn see_unanswered(
    items: impl Iterator<Item = pb::InspectItem>,
    fingerprint_keys: Option<&FingerprintKeys>,
    seen: Option<&mut Vec<CardSeen>>,
) {
    if let Some(seen) = seen {
        seen.extend(items.map(|item| {
            let pan = Pan::parse(&item.number).ok();
            CardSeen::of(pan.as_ref(), fingerprint_keys, None)
        }));
    }
}

/// One item's answers, as they would go into the response: its result and, with shared BIN
/// answers, the BIN answer it is the first to name.
struct ItemAnswer {
    result: pb::InspectResult,
    new_bin: Option<(BinKey, pb::LookupBinResponse)>,
}

impl ItemAnswer {
    /// The bytes this item adds to the response.
    fn encoded_len(&self) -> usize {
        prost::encoding::message::encoded_len(RESULTS_TAG, &self.result)
            + self.new_bin.as_ref().map_or(0, |(_, bin)| {
                prost::encoding::message::encoded_len(BINS_TAG, bin)
            })
    }

    /// Drops every answer but the validation (and the id), with `error` as the item's status.
    fn give_validation_only(&mut self, error: &RequestError) {
        self.new_bin = None;
        self.result.bin = None;
        self.result.bin_index = None;
        self.result.masked = String::new();
        self.result.code = error.code() as i32;
        self.result.message = error.to_string();
    }
}

/// InspectResponse's field numbers of `results` and `bins`, for measuring an item's share.
const RESULTS_TAG: u32 = 1;
const BINS_TAG: u32 = 3;

/// What every item of a batch is answered by.
struct ItemRules<'a> {
    index: &'a BinIndex,
    options: MaskOptions,
    fingerprint_keys: Option<&'a FingerprintKeys>,
    test_cards: &'a TestCards,
}

/// One item: the three answers, and the first reason one of them could not be given; with
/// `seen`, what the trail may say of its card goes there. Its BIN answer leaves
/// `dataset_version` empty: the response names it once for every item.
fn answer_item(
    rules: &ItemRules<'_>,
    item: pb::InspectItem,
    bin_answers: &BinAnswers,
    lookups: &mut BinLookups,
    seen: Option<&mut Vec<CardSeen>>,
) -> ItemAnswer {
    let mut answer = ItemAnswer {
        result: pb::InspectResult::default(),
        new_bin: None,
    };
    let Examined { validation, parsed } = examine(rules.index, &item.number);
    let fingerprint = parsed.as_ref().map_or_else(
        |_| String::new(),
        |(pan, _)| fingerprint(rules.fingerprint_keys, pan),
    );
    let pan = parsed.as_ref().ok().map(|(pan, _)| pan);
    if let Some(seen) = seen {
        seen.push(CardSeen::of(
            pan,
            rules.fingerprint_keys,
            Some(&fingerprint),
        ));
    }
    answer.result.validation = Some(convert::validation(
        validation,
        fingerprint,
        &test_card(rules.test_cards, pan),
    ));
    // An id too long to echo makes the item an error: its other answers are not built.
    let answers = if item.id.len() > MAX_INSPECT_ID_BYTES {
        Err(RequestError::InspectId {
            max: MAX_INSPECT_ID_BYTES,
        })
    } else {
        answer.result.id = item.id;
        parsed.map_err(RequestError::from).and_then(|(pan, facts)| {
            bin_answers.give(&mut answer, rules, &facts, &pan)?;
            lookups.count(facts.hit.is_some());
            answer.result.masked = masked(&facts, &pan, rules.options)?;
            Ok(())
        })
    };
    if let Err(error) = answers {
        answer.result.code = error.code() as i32;
        answer.result.message = error.to_string();
    }
    answer
}

/// Where a batch's BIN answers go, as the request's `bin_answers` asks.
enum BinAnswers {
    PerResult,
    Shared(SharedBinAnswers),
}

/// What decides a BIN answer within one index snapshot: the matched prefix (and so the
/// record), the IIN network (the answer's network where the record names none), the co-badged
/// networks (the domestic ranges may be longer than the matched prefix), whether more digits
/// could match a more specific entry (which depends on how many were given), and the providers
/// listing the number as a test card (none for nearly every number).
type BinKey = (
    Option<Prefix>,
    Option<CardNetwork>,
    NetworkSet,
    bool,
    Providers,
);

/// The distinct BIN answers of a batch, in the order of first use.
#[derive(Default)]
struct SharedBinAnswers {
    answers: Vec<pb::LookupBinResponse>,
    /// Where each answer is in `answers`. Fx hashing: a batch has at most 1,000 keys, so even
    /// chosen collisions cost little, and SipHash was some 6% of the server's time under
    /// Inspect load.
    positions: HashMap<BinKey, u32, FxBuildHasher>,
}

impl SharedBinAnswers {
    /// Adds the answer an item was the first to name, at the position the item was given.
    fn add(&mut self, key: BinKey, answer: pb::LookupBinResponse) {
        self.positions.insert(key, self.next_position());
        self.answers.push(answer);
    }

    /// Where the next answer added goes. At most MAX_INSPECT_ITEMS answers: the count fits.
    fn next_position(&self) -> u32 {
        u32::try_from(self.answers.len()).unwrap_or(u32::MAX)
    }
}

impl BinAnswers {
    /// Gives the item the BIN answer for `pan`: in its `bin`, or as the position of the shared
    /// answer in its `bin_index` (an answer no earlier item named goes with the item, to be
    /// added when the item is).
    fn give(
        &self,
        answer: &mut ItemAnswer,
        rules: &ItemRules<'_>,
        facts: &CardFacts,
        pan: &Pan,
    ) -> Result<(), RequestError> {
        let ItemRules {
            index, test_cards, ..
        } = *rules;
        match self {
            Self::PerResult => {
                answer.result.bin = Some(Box::new(bin_answer(index, facts, pan, test_cards, "")?));
            }
            Self::Shared(shared) => {
                require_bin(pan)?;
                let more_specific = more_specific_match_possible(index, pan);
                let test_card = test_card(test_cards, Some(pan));
                let co_badged = facts.co_badged(pan);
                let key = (
                    facts.hit.map(|hit| hit.prefix),
                    facts.detection.network,
                    co_badged,
                    more_specific,
                    test_card.providers,
                );
                let position = if let Some(&position) = shared.positions.get(&key) {
                    position
                } else {
                    let bin = convert::bin_lookup(
                        facts.hit,
                        facts.detection.network,
                        co_badged,
                        more_specific,
                        &test_card,
                        "",
                    );
                    answer.new_bin = Some((key, bin));
                    shared.next_position()
                };
                answer.result.bin_index = Some(position);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::bins::{BinRecord, IndexBuilder, Issuer};
    use crate::card::IssuerRules;
    use crate::card::test_cards::{HEADER, MAX_PROVIDER_LEN, MAX_PROVIDERS};

    /// An index whose one BIN, 411111, names an issuer of `name_bytes` bytes: data no loader
    /// limit is assumed to have refused.
    fn index_with_issuer_name(name_bytes: usize) -> BinIndex {
        let mut builder = IndexBuilder::default();
        let bin = Prefix::parse("411111").unwrap();
        let record = BinRecord {
            network: None,
            co_badged: crate::card::NetworkSet::empty(),
            brand: Arc::from("VISA"),
            card_type: None,
            prepaid: None,
            category: Arc::from(""),
            issuer: Issuer {
                name: Arc::from("B".repeat(name_bytes)),
                ..Issuer::default()
            },
            country: None,
            rules: IssuerRules::default(),
            regulated: None,
            regulations: crate::bins::Regulations::default(),
        };
        builder.insert(bin, bin, record);
        builder.build("sha256:0123456789abcdef".into())
    }

    fn request(numbers: &[&str], layout: pb::BinAnswerLayout) -> pb::InspectRequest {
        pb::InspectRequest {
            items: numbers
                .iter()
                .enumerate()
                .map(|(i, number)| pb::InspectItem {
                    id: format!("{i:0>128}"),
                    number: (*number).to_owned(),
                })
                .collect(),
            bin_answers: layout.into(),
            ..Default::default()
        }
    }

    /// The finding: a 10 MB bank name made a 50-item answer of 524 MB. Each item's
    /// answer is now bounded on its own: the item gets OUT_OF_RANGE and its validation, and the
    /// other items their whole answers.
    #[test]
    fn an_item_whose_answer_alone_would_not_fit_gets_its_validation_only() {
        let index = index_with_issuer_name(10_000_000);
        let mut numbers = vec!["4111111111111111"; 50];
        numbers[1] = "5555555555554444";
        for layout in [pb::BinAnswerLayout::PerResult, pb::BinAnswerLayout::Shared] {
            let response = answer_batch(
                &index,
                request(&numbers, layout),
                None,
                &TestCards::embedded(),
                &mut BinLookups::default(),
                MAX_INSPECT_ANSWER_BYTES,
                None,
            )
            .unwrap();
            assert!(response.encoded_len() <= MAX_INSPECT_ANSWER_BYTES);
            assert_eq!(response.results.len(), 50);
            let refused = &response.results[0];
            assert_eq!(refused.code, tonic::Code::OutOfRange as i32, "{layout:?}");
            assert_eq!(
                refused.message,
                "answer: larger than the 4194304 bytes one Inspect response may carry; only the validation is given (ask the card-lookup operators about this card's BIN data)"
            );
            assert!(refused.validation.as_ref().unwrap().valid);
            assert_eq!(refused.id, format!("{:0>128}", 0));
            assert!(refused.bin.is_none() && refused.bin_index.is_none());
            assert!(refused.masked.is_empty());
            let mastercard = &response.results[1];
            assert_eq!(mastercard.code, 0, "{}", mastercard.message);
            assert_eq!(mastercard.masked, "************4444");
            // With shared answers, only the answer given is listed, and named from 0.
            if layout == pb::BinAnswerLayout::Shared {
                assert_eq!(response.bins.len(), 1);
                assert_eq!(mastercard.bin_index, Some(0));
            }
        }
    }

    #[test]
    fn a_request_whose_answers_together_would_not_fit_is_refused_saying_how_many_fit() {
        let index = index_with_issuer_name(10);
        let numbers = vec!["4111111111111111"; MAX_INSPECT_ITEMS];
        let max = 16 * 1024;
        let error = answer_batch(
            &index,
            request(&numbers, pb::BinAnswerLayout::PerResult),
            None,
            &TestCards::embedded(),
            &mut BinLookups::default(),
            max,
            None,
        );
        let Err(RequestError::InspectAnswerTooLarge {
            max: 16384,
            fitting,
        }) = error
        else {
            panic!("{:?}", error.map(|answer| answer.encoded_len()));
        };
        assert!(fitting > 0 && fitting < MAX_INSPECT_ITEMS, "{fitting}");
        // The items said to fit do: a request of them is answered, within the limit.
        let response = answer_batch(
            &index,
            request(&numbers[..fitting], pb::BinAnswerLayout::PerResult),
            None,
            &TestCards::embedded(),
            &mut BinLookups::default(),
            max,
            None,
        )
        .unwrap();
        assert_eq!(response.results.len(), fitting);
        assert!(response.encoded_len() <= max);
        assert!(response.results.iter().all(|result| result.code == 0));
    }

    /// MIN_INSPECT_ANSWER_BYTES holds any one item answered with its validation only, so a
    /// request of one item is always answered, whatever the limit.
    #[test]
    fn the_least_limit_holds_any_item_answered_with_its_validation_only() {
        let index = index_with_issuer_name(10_000);
        // As many digits as the largest request (128 KiB) can carry.
        let longest_digits = "4".repeat(128 * 1024);
        let hostile = [
            "4111111111111111",
            "4111 1111 1111 1112",
            "6228480000000000000",
            "",
            "4",
            "4111-abcd",
            "12345678901234567890123",
            longest_digits.as_str(),
        ];
        // With fingerprints too, under the longest key id a key file may give, and listed as a
        // test card by as many providers, of names as long, as the lists may have.
        let keys =
            FingerprintKeys::parse(&format!("{} {}", "k".repeat(32), "ab".repeat(32))).unwrap();
        // (The embedded list's providers count towards the most there may be.)
        let embedded = ["adyen", "braintree", "checkout", "stripe"];
        let list = (embedded.len()..MAX_PROVIDERS)
            .map(|i| format!("{i:p>MAX_PROVIDER_LEN$}"))
            .chain(embedded.map(str::to_owned))
            .map(|provider| format!("4111111111111111\t{provider}\tx"))
            .collect::<Vec<_>>()
            .join("\n");
        let test_cards = TestCards::embedded_and(&format!("{HEADER}\n{list}")).unwrap();
        for (number, keys) in hostile
            .iter()
            .flat_map(|number| [(number, None), (number, Some(&keys))])
        {
            let response = answer_batch(
                &index,
                request(&[number], pb::BinAnswerLayout::PerResult),
                keys,
                &test_cards,
                &mut BinLookups::default(),
                MIN_INSPECT_ANSWER_BYTES,
                None,
            )
            .unwrap_or_else(|error| panic!("{}: {error}", number.len()));
            assert!(response.encoded_len() <= MIN_INSPECT_ANSWER_BYTES);
            if *number == "4111111111111111" {
                let sources = &response.results[0].validation.as_ref().unwrap();
                assert_eq!(sources.test_card_sources.len(), MAX_PROVIDERS);
            }
        }
    }

    /// What the trail is told of a batch: one card for every item, in order, as its own
    /// parse would give it, with the fingerprint its answer carries; a request refused as a
    /// whole, or part way through, tells of every item too.
    #[test]
    fn the_trail_is_told_of_every_item_answered_or_refused() {
        let index = index_with_issuer_name(10);
        let keys = FingerprintKeys::parse(&format!("k1 {}", "ab".repeat(32))).unwrap();
        let numbers = [
            "4111111111111111",
            "not a number",
            "5555 5555 5555 4444",
            "4",
        ];
        let expected: Vec<CardSeen> = numbers
            .iter()
            .map(|number| CardSeen::of(Pan::parse(number).ok().as_ref(), Some(&keys), None))
            .collect();
        let answer = |request, max| {
            let mut seen = Vec::new();
            let answer = answer_batch(
                &index,
                request,
                Some(&keys),
                &TestCards::embedded(),
                &mut BinLookups::default(),
                max,
                Some(&mut seen),
            );
            (answer, seen)
        };

        let (response, seen) = answer(
            request(&numbers, pb::BinAnswerLayout::Shared),
            MAX_INSPECT_ANSWER_BYTES,
        );
        assert_eq!(seen, expected);
        let response = response.unwrap();
        let fingerprint = &response.results[0].validation.as_ref().unwrap().fingerprint;
        assert_eq!(seen[0].fingerprint.as_ref(), Some(fingerprint));
        assert_eq!(seen[0].masked.as_str(), "411111******1111");
        assert_eq!(seen[1], CardSeen::default());

        let mut unknown_style = request(&numbers, pb::BinAnswerLayout::PerResult);
        unknown_style.mask_style = 99;
        let (response, seen) = answer(unknown_style, MAX_INSPECT_ANSWER_BYTES);
        assert!(matches!(response, Err(RequestError::UnknownMaskStyle(99))));
        assert_eq!(seen, expected);

        // The first item's answer (its 128-byte id, validation, BIN answer) fits 1,024 bytes,
        // the first two together do not: refused part way through.
        let (response, seen) = answer(
            request(&numbers, pb::BinAnswerLayout::PerResult),
            MIN_INSPECT_ANSWER_BYTES,
        );
        assert!(
            matches!(response, Err(RequestError::InspectAnswerTooLarge { fitting, .. }) if fitting > 0 && fitting < numbers.len()),
            "{response:?}"
        );
        assert_eq!(seen, expected);

        let too_many = vec!["4111111111111111"; MAX_INSPECT_ITEMS + 1];
        let (response, seen) = answer(
            request(&too_many, pb::BinAnswerLayout::PerResult),
            MAX_INSPECT_ANSWER_BYTES,
        );
        assert!(matches!(response, Err(RequestError::InspectItems { .. })));
        assert_eq!(seen.len(), MAX_INSPECT_ITEMS + 1);
    }
}
