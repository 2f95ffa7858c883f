//! `cardlookup.v1.CardLookupService`.

use std::sync::Arc;

use std::time::Instant;

use futures_util::{Stream, StreamExt};
use tonic::{Code, Request, Response, Status, Streaming};

use super::convert;
use super::error::{MIN_BIN_DIGITS, RequestError};
use super::observe::{CardNumberField, observe};
use crate::admission::ClientIdentity;
use crate::bins::{BinIndex, BinStore};
use crate::card::mask::MIN_PAN_DIGITS;
use crate::card::{self, MaskOptions, Pan, Validation, iin};
use crate::card_testing::{CardTestingDetector, Verdict};
use crate::proto::cardlookup::v1 as pb;
use crate::telemetry::{Method, RpcMetrics};

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

    fn lookup_bin(
        &self,
        request: &pb::LookupBinRequest,
        client: Option<&ClientIdentity>,
    ) -> Result<pb::LookupBinResponse, RequestError> {
        let pan = Pan::parse(&request.number)?;
        self.screen(client, bin_of(&pan), None)?;
        // One snapshot for the whole answer: a reload in between cannot mix two tables.
        lookup(&self.store.current(), &pan, &self.metrics)
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
        mask(&self.store.current(), &pan, options)
    }

    /// One Inspect batch: every item answered, each with its own status.
    fn inspect_batch(&self, request: &pb::InspectRequest) -> Result<pb::InspectResponse, Status> {
        if request.items.len() > MAX_INSPECT_ITEMS {
            return Err(Status::invalid_argument(format!(
                "items: {} in one request; at most {MAX_INSPECT_ITEMS}",
                request.items.len()
            )));
        }
        let style = convert::mask_style(request.mask_style)
            .ok_or_else(|| Status::from(RequestError::UnknownMaskStyle(request.mask_style)))?;
        let options = MaskOptions {
            style,
            ..MaskOptions::default()
        };
        let index = self.store.current();
        let results = request
            .items
            .iter()
            .map(|item| inspect_item(&index, item, options, &self.metrics))
            .collect();
        self.metrics.inspected(request.items.len());
        Ok(pb::InspectResponse { results })
    }
}

/// The longest item id Inspect echoes.
const MAX_INSPECT_ID_BYTES: usize = 128;
/// The most items one Inspect request may carry.
pub const MAX_INSPECT_ITEMS: usize = 1000;

/// Validate's answer, with the issuer's own rules from the BIN data; and the number's BIN.
fn validate(index: &BinIndex, number: &str) -> (Validation, Option<u32>) {
    let mut bin = None;
    let issuer_rules = |pan: &Pan| {
        bin = bin_of(pan);
        let hit = index.longest_match(pan.digits())?;
        Some(hit.record.rules)
    };
    let validation = card::validate_with(number, issuer_rules);
    (validation, bin)
}

/// LookupBin's answer for a parsed number.
fn lookup(
    index: &BinIndex,
    pan: &Pan,
    metrics: &RpcMetrics,
) -> Result<pb::LookupBinResponse, RequestError> {
    if pan.len() < MIN_BIN_DIGITS {
        return Err(RequestError::TooFewDigitsForBin { digits: pan.len() });
    }
    let hit = index.longest_match(pan.digits());
    metrics.bin_lookup(hit.is_some());
    let iin_network = iin::detect(pan.digits()).network;
    Ok(convert::bin_lookup(hit, iin_network, index.version()))
}

/// MaskCard's answer for a parsed number.
fn mask(
    index: &BinIndex,
    pan: &Pan,
    options: MaskOptions,
) -> Result<pb::MaskCardResponse, RequestError> {
    if pan.len() < MIN_PAN_DIGITS {
        return Err(RequestError::NotACardNumber { digits: pan.len() });
    }
    let network = iin::detect(pan.digits()).network;
    let bin_len = index
        .longest_match(pan.digits())
        .map_or(0, |hit| hit.prefix.len());
    Ok(pb::MaskCardResponse {
        masked: card::mask(pan, network, bin_len, &options),
        network: convert::network(network).into(),
    })
}

/// One Inspect item: the three answers, and the first reason one of them could not be given.
fn inspect_item(
    index: &BinIndex,
    item: &pb::InspectItem,
    options: MaskOptions,
    metrics: &RpcMetrics,
) -> pb::InspectResult {
    let (validation, _) = validate(index, &item.number);
    let mut result = pb::InspectResult {
        id: item.id.clone(),
        validation: Some(convert::validation(validation)),
        ..pb::InspectResult::default()
    };
    let answers = if item.id.len() > MAX_INSPECT_ID_BYTES {
        Err(RequestError::InspectId {
            max: MAX_INSPECT_ID_BYTES,
        })
    } else {
        Pan::parse(&item.number)
            .map_err(RequestError::from)
            .and_then(|pan| {
                result.bin = Some(lookup(index, &pan, metrics)?);
                result.masked = mask(index, &pan, options)?.masked;
                Ok(())
            })
    };
    if let Err(error) = answers {
        result.code = error.code() as i32;
        result.message = error.to_string();
        if item.id.len() > MAX_INSPECT_ID_BYTES {
            result.id.clear();
        }
    }
    result
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
        let client = request.extensions().get::<ClientIdentity>().cloned();
        observe(
            &self.metrics,
            Method::Validate,
            request,
            |request| async move {
                let index = self.store.current();
                let mut bin = None;
                let issuer_rules = |pan: &Pan| {
                    bin = bin_of(pan);
                    let hit = index.longest_match(pan.digits())?;
                    Some(hit.record.rules)
                };
                let validation = card::validate_with(&request.number, issuer_rules);
                let luhn = validation.length_valid.then_some(validation.luhn_valid);
                self.screen(client.as_ref(), bin, luhn)?;
                Ok(convert::validation(validation))
            },
        )
        .await
    }

    async fn lookup_bin(
        &self,
        request: Request<pb::LookupBinRequest>,
    ) -> Result<Response<pb::LookupBinResponse>, Status> {
        let client = request.extensions().get::<ClientIdentity>().cloned();
        observe(
            &self.metrics,
            Method::LookupBin,
            request,
            |request| async move { self.lookup_bin(&request, client.as_ref()) },
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
            let answer = request.and_then(|request| service.inspect_batch(&request));
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
            |request| async move { self.mask_card(&request) },
        )
        .await
    }
}
