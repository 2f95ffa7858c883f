//! `cardlookup.v1.CardLookupService`.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::convert;
use super::error::{MIN_BIN_DIGITS, RequestError};
use super::observe::observe;
use crate::bins::BinIndex;
use crate::card::mask::MIN_PAN_DIGITS;
use crate::card::{self, MaskOptions, Pan, iin};
use crate::proto::cardlookup::v1 as pb;
use crate::telemetry::{Method, RpcMetrics};

/// The service: the live BIN index and the metric handles.
#[derive(Debug, Clone)]
pub struct CardLookup {
    index: Arc<BinIndex>,
    metrics: Arc<RpcMetrics>,
}

impl CardLookup {
    #[must_use]
    pub fn new(index: Arc<BinIndex>, metrics: Arc<RpcMetrics>) -> Self {
        Self { index, metrics }
    }

    fn lookup_bin(
        &self,
        request: &pb::LookupBinRequest,
    ) -> Result<pb::LookupBinResponse, RequestError> {
        let pan = Pan::parse(&request.number)?;
        if pan.len() < MIN_BIN_DIGITS {
            return Err(RequestError::TooFewDigitsForBin { digits: pan.len() });
        }
        let hit = self.index.longest_match(pan.digits());
        self.metrics.bin_lookup(hit.is_some());
        let iin_network = iin::detect(pan.digits()).network;
        Ok(convert::bin_lookup(hit, iin_network, self.index.version()))
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
            .index
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

#[tonic::async_trait]
impl pb::card_lookup_service_server::CardLookupService for CardLookup {
    async fn validate(
        &self,
        request: Request<pb::ValidateRequest>,
    ) -> Result<Response<pb::ValidateResponse>, Status> {
        observe(&self.metrics, Method::Validate, request, |request| {
            Ok(convert::validation(card::validate(&request.number)))
        })
    }

    async fn lookup_bin(
        &self,
        request: Request<pb::LookupBinRequest>,
    ) -> Result<Response<pb::LookupBinResponse>, Status> {
        observe(&self.metrics, Method::LookupBin, request, |request| {
            self.lookup_bin(&request)
        })
    }

    async fn mask_card(
        &self,
        request: Request<pb::MaskCardRequest>,
    ) -> Result<Response<pb::MaskCardResponse>, Status> {
        observe(&self.metrics, Method::MaskCard, request, |request| {
            self.mask_card(&request)
        })
    }
}
