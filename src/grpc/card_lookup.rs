//! `cardlookup.v1.CardLookupService`.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::convert;
use super::error::{MIN_BIN_DIGITS, RequestError};
use super::observe::{CardNumberField, observe};
use crate::admission::ClientIdentity;
use crate::bins::BinStore;
use crate::card::mask::MIN_PAN_DIGITS;
use crate::card::{self, MaskOptions, Pan, iin};
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
        if pan.len() < MIN_BIN_DIGITS {
            return Err(RequestError::TooFewDigitsForBin { digits: pan.len() });
        }
        self.screen(client, bin_of(&pan), None)?;
        // One snapshot for the whole answer: a reload in between cannot mix two tables.
        let index = self.store.current();
        let hit = index.longest_match(pan.digits());
        self.metrics.bin_lookup(hit.is_some());
        let iin_network = iin::detect(pan.digits()).network;
        Ok(convert::bin_lookup(hit, iin_network, index.version()))
    }

    fn mask_card(
        &self,
        request: &pb::MaskCardRequest,
    ) -> Result<pb::MaskCardResponse, RequestError> {
        let pan = Pan::parse(&request.number)?;
        if pan.len() < MIN_PAN_DIGITS {
            return Err(RequestError::NotACardNumber { digits: pan.len() });
        }
        let style = convert::mask_style(request.style)
            .ok_or(RequestError::UnknownMaskStyle(request.style))?;
        let mask_char = request
            .mask_character
            .as_deref()
            .map(MaskOptions::parse_mask_char)
            .transpose()?
            .unwrap_or('*');
        let network = iin::detect(pan.digits()).network;
        let bin_len = self
            .store
            .current()
            .longest_match(pan.digits())
            .map_or(0, |hit| hit.prefix.len());
        let options = MaskOptions {
            style,
            mask_char,
            keep_grouping: request.keep_grouping,
        };
        Ok(pb::MaskCardResponse {
            masked: card::mask(&pan, network, bin_len, &options),
            network: convert::network(network).into(),
        })
    }
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
