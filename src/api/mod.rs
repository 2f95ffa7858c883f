//! The request layer, below every front end (the gRPC services, the command line): what a
//! request must look like, the domain call, and the answer, as the proto messages of
//! `cardlookup.v1` (the API's data, whatever carries it). A front end turns its input into a
//! request message, calls [`CardApi`], and turns the answer or the [`RequestError`] into its
//! own output; the rules themselves live only here.
//!
//! - `convert`: domain values to proto messages and back, the one mapping between the two.
//! - `rules`: the checks and answers shared by unary calls and Inspect items.
//! - [`inspect`]: Inspect's batches.
//! - [`binlist`]: binlist.net's lookup document, from a LookupBin answer (the HTTP face's
//!   drop-in for binlist callers).
//! - [`admin`]: the admin service's answers (what data is served, reloads).
//! - `error`: why a request cannot be answered, with its status code.
//! - `call`: who makes a call ([`Call`]); with `--audit-dir` every call carrying card data is
//!   recorded here, below every front end ([`crate::audit`]).

pub mod admin;
pub mod binlist;
mod call;
pub(crate) mod convert;
mod error;
pub mod inspect;
mod metrics;
mod rules;

use std::sync::Arc;
use std::time::SystemTime;

use futures_util::future::BoxFuture;
use tonic::Code;

pub use call::Call;
pub use error::{MIN_BIN_DIGITS, RequestError};

use self::metrics::{AnswerMetrics, BinLookups};
use crate::audit::{Auditor, CardSeen, Event};
use crate::bins::{self, BinStore, CardFacts, Examined};
use crate::card::mask::MIN_PAN_DIGITS;
use crate::card::{FingerprintKeys, Pan, TestCards, luhn};
use crate::card_testing::{CardTestingDetector, Seen, Verdict};
use crate::identity::ClientIdentity;
use crate::proto::cardlookup::v1 as pb;
use crate::telemetry::Method;

/// The card API over the live BIN data: Validate, LookupBin, MaskCard and Inspect's batches.
/// Cheap to clone; every clone answers from the same data.
#[derive(Debug, Clone)]
pub struct CardApi {
    store: Arc<BinStore>,
    /// Card-testing detection of the callers; none answering offline.
    card_testing: Option<Arc<CardTestingDetector>>,
    metrics: Arc<AnswerMetrics>,
    /// The largest Inspect response, encoded.
    inspect_max_answer_bytes: usize,
    /// The keys of card fingerprints; no fingerprints without them.
    fingerprint_keys: Option<FingerprintKeys>,
    /// Where every call carrying card data is recorded; none without `--audit-dir`.
    auditor: Option<Auditor>,
    /// The providers' test cards (and the operator's).
    test_cards: TestCards,
}

impl CardApi {
    /// The API over `store`, screening callers with `card_testing` when given, flagging the
    /// embedded list's test cards.
    #[must_use]
    pub fn new(store: Arc<BinStore>, card_testing: Option<Arc<CardTestingDetector>>) -> Self {
        Self {
            store,
            card_testing,
            metrics: Arc::new(AnswerMetrics::new()),
            inspect_max_answer_bytes: inspect::MAX_INSPECT_ANSWER_BYTES,
            fingerprint_keys: None,
            auditor: None,
            test_cards: TestCards::embedded(),
        }
    }

    /// The API recording every call in the audit trail of `auditor` (none when `None`, the
    /// default).
    #[must_use]
    pub fn with_auditor(mut self, auditor: Option<Auditor>) -> Self {
        self.auditor = auditor;
        self
    }

    /// Whether calls are recorded in an audit trail: the front ends then give every call a
    /// request id.
    #[must_use]
    pub fn audited(&self) -> bool {
        self.auditor.is_some()
    }

    /// The API flagging the test cards of `test_cards` (by default the embedded list's).
    #[must_use]
    pub fn with_test_cards(mut self, test_cards: TestCards) -> Self {
        self.test_cards = test_cards;
        self
    }

    /// The API with answers carrying fingerprints signed by the first of `keys` (none when
    /// `None`, the default).
    #[must_use]
    pub fn with_fingerprint_keys(mut self, keys: Option<FingerprintKeys>) -> Self {
        self.fingerprint_keys = keys;
        self
    }

    /// The API with Inspect responses of at most `bytes` encoded (by default
    /// [`inspect::MAX_INSPECT_ANSWER_BYTES`], what gRPC clients accept unless told otherwise).
    #[must_use]
    pub fn with_inspect_max_answer_bytes(mut self, bytes: usize) -> Self {
        self.inspect_max_answer_bytes = bytes;
        self
    }

    /// Validate: always an answer, a bad number being `valid = false` with its reason. The
    /// error is card-testing detection refusing the caller.
    pub async fn validate(
        &self,
        request: &pb::ValidateRequest,
        call: Call,
    ) -> Result<pb::ValidateResponse, RequestError> {
        let (answer, pan) = self.validate_number(request, call.client.as_ref());
        let Some(auditor) = &self.auditor else {
            return answer;
        };
        self.audit(
            auditor,
            call,
            Method::Validate,
            pan.as_ref(),
            answer,
            |answer| Told {
                valid: Some(answer.valid),
                fingerprint: Some(&answer.fingerprint),
            },
        )
        .await
    }

    /// Validate's answer, and the number parsed (none when it does not parse), which the
    /// audit event shows masked.
    fn validate_number(
        &self,
        request: &pb::ValidateRequest,
        caller: Option<&ClientIdentity>,
    ) -> (Result<pb::ValidateResponse, RequestError>, Option<Pan>) {
        let index = self.store.current();
        let Examined { validation, parsed } = bins::examine(&index, &request.number);
        let pan = parsed.ok().map(|(pan, _)| pan);
        // Partial numbers typed into a form fail Luhn as a matter of course and say nothing:
        // only a number of a length its network issues counts.
        let luhn = validation.length_valid.then_some(validation.luhn_valid);
        // A card counts as one when it could be charged: a whole number that passes Luhn.
        let whole = || validation.length_valid && validation.luhn_valid;
        if let Err(refused) = self.screen(caller, pan.as_ref(), whole, luhn) {
            return (Err(refused), pan);
        }
        let fingerprint = pan.as_ref().map_or_else(String::new, |pan| {
            rules::fingerprint(self.fingerprint_keys.as_ref(), pan)
        });
        let answer = convert::validation(
            validation,
            fingerprint,
            &rules::test_card(&self.test_cards, pan.as_ref()),
        );
        (Ok(answer), pan)
    }

    /// LookupBin: the issuer and card facts of the number's BIN.
    pub async fn lookup_bin(
        &self,
        request: &pb::LookupBinRequest,
        call: Call,
    ) -> Result<pb::LookupBinResponse, RequestError> {
        let pan = Pan::parse(&request.number);
        let answer = match &pan {
            Ok(pan) => self.look_up_bin(pan, call.client.as_ref()),
            Err(error) => Err(error.clone().into()),
        };
        let Some(auditor) = &self.auditor else {
            return answer;
        };
        self.audit(
            auditor,
            call,
            Method::LookupBin,
            pan.as_ref().ok(),
            answer,
            |_| Told::default(),
        )
        .await
    }

    fn look_up_bin(
        &self,
        pan: &Pan,
        caller: Option<&ClientIdentity>,
    ) -> Result<pb::LookupBinResponse, RequestError> {
        let whole = || pan.len() >= MIN_PAN_DIGITS && luhn::is_valid(pan.digits());
        self.screen(caller, Some(pan), whole, None)?;
        // One snapshot for the whole answer: a reload in between cannot mix two tables.
        let index = self.store.current();
        let facts = CardFacts::of(&index, pan);
        let answer = rules::bin_answer(&index, &facts, pan, &self.test_cards, index.version())?;
        self.metrics.bin_lookup(facts.hit.is_some());
        Ok(answer)
    }

    /// MaskCard: the number masked as the request asks, never showing more than PCI DSS allows.
    pub async fn mask_card(
        &self,
        request: &pb::MaskCardRequest,
        call: Call,
    ) -> Result<pb::MaskCardResponse, RequestError> {
        let pan = Pan::parse(&request.number);
        let answer = match &pan {
            Ok(pan) => self.mask_number(pan, request),
            Err(error) => Err(error.clone().into()),
        };
        let Some(auditor) = &self.auditor else {
            return answer;
        };
        self.audit(
            auditor,
            call,
            Method::MaskCard,
            pan.as_ref().ok(),
            answer,
            |answer| Told {
                valid: None,
                fingerprint: Some(&answer.fingerprint),
            },
        )
        .await
    }

    fn mask_number(
        &self,
        pan: &Pan,
        request: &pb::MaskCardRequest,
    ) -> Result<pb::MaskCardResponse, RequestError> {
        let options = rules::mask_options(request)?;
        let index = self.store.current();
        let facts = CardFacts::of(&index, pan);
        Ok(pb::MaskCardResponse {
            masked: rules::masked(&facts, pan, options)?,
            network: convert::network(facts.detection.network).into(),
            fingerprint: rules::fingerprint(self.fingerprint_keys.as_ref(), pan),
        })
    }

    /// One Inspect batch, answered from one snapshot of the data, in a response of at most the
    /// configured size. The error is for a batch that cannot be answered at all (it ends the
    /// stream); a bad item is answered with its own status.
    pub async fn inspect_batch(
        &self,
        request: pb::InspectRequest,
        call: &Call,
    ) -> Result<pb::InspectResponse, RequestError> {
        let index = self.store.current();
        let items = request.items.len();
        // What the trail says of each item's card, as the batch's answers parse the numbers.
        let mut seen = self.auditor.as_ref().map(|_| Vec::with_capacity(items));
        let mut lookups = BinLookups::default();
        let answer = inspect::answer_batch(
            &index,
            request,
            self.fingerprint_keys.as_ref(),
            &self.test_cards,
            &mut lookups,
            self.inspect_max_answer_bytes,
            seen.as_mut(),
        );
        if let (Some(auditor), Some(seen)) = (&self.auditor, seen) {
            let version = index.shared_version();
            for (position, card) in seen.into_iter().enumerate() {
                let (code, valid) =
                    match &answer {
                        Ok(response) => response.results.get(position).map_or(
                            (Code::Internal, None),
                            |result| {
                                (
                                    Code::from_i32(result.code),
                                    result.validation.as_ref().map(|v| v.valid),
                                )
                            },
                        ),
                        Err(error) => (error.code(), None),
                    };
                let event = Event {
                    time: SystemTime::now(),
                    request_id: call.request_id.clone(),
                    client: call.client.clone(),
                    subject: call.subject.clone(),
                    method: Method::Inspect,
                    card,
                    code,
                    valid,
                    dataset_version: Arc::clone(&version),
                };
                auditor
                    .record(event)
                    .await
                    .map_err(|_| RequestError::AuditUnavailable)?;
            }
        }
        let response = answer?;
        self.metrics.inspected(items, lookups);
        Ok(response)
    }

    /// Records a call in `auditor`'s trail and gives its answer; an answer the trail cannot
    /// record is not given (the call is refused instead). `pan` is the number as the handler
    /// parsed it (none when it did not parse); `told` is what an answer tells the event. The
    /// call's parts move into the event: cloning the caller's identity would cost every call
    /// reference-count updates that all calls of a client share.
    ///
    /// Boxed, and called only when there is a trail: waiting for a place in the trail's queue
    /// holds the event and the answer, and a handler's future that held them inline would be
    /// larger, and so costlier to move, on every call, with the trail off too.
    fn audit<'a, T: Send + 'a>(
        &self,
        auditor: &'a Auditor,
        call: Call,
        method: Method,
        pan: Option<&Pan>,
        answer: Result<T, RequestError>,
        told: fn(&T) -> Told<'_>,
    ) -> BoxFuture<'a, Result<T, RequestError>> {
        let Told { valid, fingerprint } = answer.as_ref().map_or_else(|_| Told::default(), told);
        let event = Event {
            time: SystemTime::now(),
            request_id: call.request_id,
            client: call.client,
            subject: call.subject,
            method,
            card: CardSeen::of(pan, self.fingerprint_keys.as_ref(), fingerprint),
            code: answer
                .as_ref()
                .map_or_else(RequestError::code, |_| Code::Ok),
            valid,
            dataset_version: self.store.current().shared_version(),
        };
        Box::pin(async move {
            auditor
                .record(event)
                .await
                .map_err(|_| RequestError::AuditUnavailable)?;
            answer
        })
    }

    /// Feeds card-testing detection: the number's BIN, the card when cards are counted and the
    /// number is `whole` (asked only then) and, for a validated number, its Luhn result. A
    /// caller the detector refuses gets the error.
    fn screen(
        &self,
        caller: Option<&ClientIdentity>,
        pan: Option<&Pan>,
        whole: impl FnOnce() -> bool,
        luhn_valid: Option<bool>,
    ) -> Result<(), RequestError> {
        let (Some(detector), Some(caller), Some(pan)) = (&self.card_testing, caller, pan) else {
            return Ok(());
        };
        let Some(bin) = rules::bin_of(pan) else {
            return Ok(());
        };
        let seen = Seen {
            bin,
            card: detector.card(pan.digits()).filter(|_| whole()),
            luhn_valid,
        };
        match detector.observe(caller, seen) {
            Verdict::Allow => Ok(()),
            Verdict::Refuse(suspicion) => Err(RequestError::CardTesting(suspicion.label())),
        }
    }
}

/// What an answer tells its call's audit event.
#[derive(Default)]
struct Told<'a> {
    /// Validate's result.
    valid: Option<bool>,
    /// The fingerprint the answer carries (empty when it has none).
    fingerprint: Option<&'a str>,
}
