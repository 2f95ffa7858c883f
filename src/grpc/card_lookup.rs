//! `cardlookup.v1.CardLookupService`.

use std::sync::Arc;

use std::time::Instant;

use futures_util::{Stream, StreamExt};
use tonic::{Code, Request, Response, Status, Streaming};

use super::convert;
use super::error::{MIN_BIN_DIGITS, RequestError};
use super::inspect;
use super::observe::{CardNumberField, observe};
use crate::admission::ClientIdentity;
use crate::bins::{self, BinStore, CardFacts, Examined};
use crate::card::mask::MIN_PAN_DIGITS;
use crate::card::{self, MaskOptions, Pan};
use crate::card_testing::{CardTestingDetector, Verdict};
use crate::proto::cardlookup::v1 as pb;
use crate::telemetry::{BinLookups, Method, RpcMetrics};

/// The service: the live BIN data, card-testing detection and the metric handles.
#[derive(Debug, Clone)]
pub struct CardLookup {
    store: Arc<BinStore>,
    card_testing: Arc<CardTestingDetector>,
    metrics: Arc<RpcMetrics>,
}

impl CardLookup {
    #[must_use]
    pub fn new(
        store: Arc<BinStore>,
        card_testing: Arc<CardTestingDetector>,
        metrics: Arc<RpcMetrics>,
    ) -> Self {
        Self {
            store,
            card_testing,
            metrics,
        }
    }

    /// Feeds card-testing detection: the number's BIN and, for a validated number of a length
    /// the network issues, its Luhn result (partial numbers typed into a form fail Luhn as a
    /// matter of course and say nothing).
    fn screen(
        &self,
        client: Option<&ClientIdentity>,
        bin: Option<u32>,
        luhn_valid: Option<bool>,
    ) -> Result<(), RequestError> {
        let (Some(client), Some(bin)) = (client, bin) else {
            return Ok(());
        };
        match self.card_testing.observe(client, bin, luhn_valid) {
            Verdict::Allow => Ok(()),
            Verdict::Refuse(suspicion) => Err(RequestError::CardTesting(suspicion.label())),
        }
    }

    fn validate(
        &self,
        request: &pb::ValidateRequest,
        client: Option<&ClientIdentity>,
    ) -> Result<pb::ValidateResponse, RequestError> {
        let index = self.store.current();
        let Examined { validation, parsed } = bins::examine(&index, &request.number);
        let bin = parsed.ok().and_then(|(pan, _)| bin_of(&pan));
        let luhn = validation.length_valid.then_some(validation.luhn_valid);
        self.screen(client, bin, luhn)?;
        Ok(convert::validation(validation))
    }

    fn lookup_bin(
        &self,
        request: &pb::LookupBinRequest,
        client: Option<&ClientIdentity>,
    ) -> Result<pb::LookupBinResponse, RequestError> {
        let pan = Pan::parse(&request.number)?;
        self.screen(client, bin_of(&pan), None)?;
        // One snapshot for the whole answer: a reload in between cannot mix two tables.
        let index = self.store.current();
        let facts = CardFacts::of(&index, &pan);
        let answer = bin_answer(&facts, &pan, index.version())?;
        self.metrics.bin_lookup(facts.hit.is_some());
        Ok(answer)
    }

    fn mask_card(
        &self,
        request: &pb::MaskCardRequest,
    ) -> Result<pb::MaskCardResponse, RequestError> {
        let pan = Pan::parse(&request.number)?;
        let style = convert::mask_style(request.style)
            .ok_or(RequestError::UnknownMaskStyle(request.style))?;
        let mask_char = request
            .mask_character
            .as_deref()
            .map(MaskOptions::parse_mask_char)
            .transpose()?
            .unwrap_or('*');
        let options = MaskOptions {
            style,
            mask_char,
            keep_grouping: request.keep_grouping,
        };
        let index = self.store.current();
        let facts = CardFacts::of(&index, &pan);
        Ok(pb::MaskCardResponse {
            masked: masked(&facts, &pan, options)?,
            network: convert::network(facts.detection.network).into(),
        })
    }

    /// One Inspect batch, answered from one snapshot of the data.
    fn inspect_batch(&self, request: pb::InspectRequest) -> Result<pb::InspectResponse, Status> {
        let index = self.store.current();
        let items = request.items.len();
        let mut lookups = BinLookups::default();
        let response = inspect::answer_batch(&index, request, &mut lookups)?;
        self.metrics.inspected(items, lookups);
        Ok(response)
    }
}

/// LookupBin's refusal of a number too short to have a BIN.
pub(super) fn require_bin(pan: &Pan) -> Result<(), RequestError> {
    if pan.len() < MIN_BIN_DIGITS {
        return Err(RequestError::TooFewDigitsForBin { digits: pan.len() });
    }
    Ok(())
}

/// LookupBin's answer for a parsed number, labelled with `dataset_version`.
pub(super) fn bin_answer(
    facts: &CardFacts,
    pan: &Pan,
    dataset_version: &str,
) -> Result<pb::LookupBinResponse, RequestError> {
    require_bin(pan)?;
    Ok(convert::bin_lookup(
        facts.hit,
        facts.detection.network,
        dataset_version,
    ))
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

impl CardNumberField for pb::ValidateRequest {
    fn card_number(&self) -> Option<&str> {
        Some(&self.number)
    }
}

impl CardNumberField for pb::LookupBinRequest {
    fn card_number(&self) -> Option<&str> {
        Some(&self.number)
    }
}

impl CardNumberField for pb::MaskCardRequest {
    fn card_number(&self) -> Option<&str> {
        Some(&self.number)
    }
}

/// The answers of an Inspect stream, one response a request.
type InspectStream =
    std::pin::Pin<Box<dyn Stream<Item = Result<pb::InspectResponse, Status>> + Send>>;

/// Records an Inspect call's end (however it ends) in the gRPC metrics.
struct InspectCall {
    metrics: Arc<RpcMetrics>,
    started: Instant,
    code: Code,
}

impl Drop for InspectCall {
    fn drop(&mut self) {
        self.metrics
            .handled(Method::Inspect, self.code, self.started.elapsed());
    }
}

/// The BIN (first six digits) as a number, for card-testing detection.
fn bin_of(pan: &Pan) -> Option<u32> {
    let digits = pan.digits().get(..MIN_BIN_DIGITS)?;
    Some(digits.iter().fold(0, |bin, &d| bin * 10 + u32::from(d)))
}

#[tonic::async_trait]
impl pb::card_lookup_service_server::CardLookupService for CardLookup {
    async fn validate(
        &self,
        request: Request<pb::ValidateRequest>,
    ) -> Result<Response<pb::ValidateResponse>, Status> {
        observe(
            &self.metrics,
            Method::Validate,
            request,
            |request, client| async move { self.validate(&request, client.as_ref()) },
        )
        .await
    }

    async fn lookup_bin(
        &self,
        request: Request<pb::LookupBinRequest>,
    ) -> Result<Response<pb::LookupBinResponse>, Status> {
        observe(
            &self.metrics,
            Method::LookupBin,
            request,
            |request, client| async move { self.lookup_bin(&request, client.as_ref()) },
        )
        .await
    }

    type InspectStream = InspectStream;

    async fn inspect(
        &self,
        request: Request<Streaming<pb::InspectRequest>>,
    ) -> Result<Response<InspectStream>, Status> {
        self.metrics.started(Method::Inspect);
        let mut call = InspectCall {
            metrics: Arc::clone(&self.metrics),
            started: Instant::now(),
            code: Code::Ok,
        };
        let service = self.clone();
        let requests = request.into_inner();
        // Lazy: the next request is read only when the last answer has gone out, so a client
        // that does not read answers stops being read (HTTP/2 flow control bounds memory).
        let answers = requests.map(move |request| {
            // The whole record moves into the closure: it is dropped (and the call counted)
            // when the stream is.
            let call = &mut call;
            let answer = request.and_then(|request| service.inspect_batch(request));
            if let Err(status) = &answer {
                call.code = status.code();
            }
            // An error is the stream's last answer: tonic ends the call with it.
            answer
        });
        Ok(Response::new(Box::pin(answers) as InspectStream))
    }

    async fn mask_card(
        &self,
        request: Request<pb::MaskCardRequest>,
    ) -> Result<Response<pb::MaskCardResponse>, Status> {
        observe(
            &self.metrics,
            Method::MaskCard,
            request,
            |request, _client| async move { self.mask_card(&request) },
        )
        .await
    }
}
