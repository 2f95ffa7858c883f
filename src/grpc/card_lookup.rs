//! `cardlookup.v1.CardLookupService`.

use futures_util::{Stream, StreamExt};
use tonic::{Request, Response, Status, Streaming};

use super::inspect_stream::{Limited, StreamLimits};
use super::observe::{CardNumberField, observe, stream_call};
use crate::api::CardApi;
use crate::proto::cardlookup::v1 as pb;
use crate::telemetry::Method;

/// The service: the card API, answering over gRPC.
#[derive(Debug, Clone)]
pub(crate) struct CardLookup {
    api: CardApi,
    inspect_limits: StreamLimits,
}

impl CardLookup {
    /// The service answering from `api`, its Inspect streams within `inspect_limits`.
    #[must_use]
    pub(crate) fn new(api: CardApi, inspect_limits: StreamLimits) -> Self {
        Self {
            api,
            inspect_limits,
        }
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

/// The answers of an Inspect stream, one response a request.
type InspectStream =
    std::pin::Pin<Box<dyn Stream<Item = Result<pb::InspectResponse, Status>> + Send>>;

#[tonic::async_trait]
impl pb::card_lookup_service_server::CardLookupService for CardLookup {
    async fn validate(
        &self,
        request: Request<pb::ValidateRequest>,
    ) -> Result<Response<pb::ValidateResponse>, Status> {
        observe(
            Method::Validate,
            self.api.audited(),
            request,
            |request, call| async move { self.api.validate(&request, call).await },
        )
        .await
    }

    async fn lookup_bin(
        &self,
        request: Request<pb::LookupBinRequest>,
    ) -> Result<Response<pb::LookupBinResponse>, Status> {
        observe(
            Method::LookupBin,
            self.api.audited(),
            request,
            |request, call| async move { self.api.lookup_bin(&request, call).await },
        )
        .await
    }

    type InspectStream = InspectStream;

    async fn inspect(
        &self,
        request: Request<Streaming<pb::InspectRequest>>,
    ) -> Result<Response<InspectStream>, Status> {
        let api = self.api.clone();
        let mut request = request;
        let call = stream_call(api.audited(), &mut request);
        // Lazy: the next request is read only when HTTP/2 has taken the last answer, which it
        // does only as the client's window lets answers out, so a client that does not read
        // answers stops being read (flow control bounds memory). An error, a limit's too, is
        // the stream's last answer: tonic ends the call with it.
        let requests = Limited::new(request.into_inner(), self.inspect_limits);
        let answers = requests.then(move |request| {
            let (api, call) = (api.clone(), call.clone());
            async move {
                api.inspect_batch(request?, &call)
                    .await
                    .map_err(Status::from)
            }
        });
        Ok(Response::new(Box::pin(answers) as InspectStream))
    }

    async fn mask_card(
        &self,
        request: Request<pb::MaskCardRequest>,
    ) -> Result<Response<pb::MaskCardResponse>, Status> {
        observe(
            Method::MaskCard,
            self.api.audited(),
            request,
            |request, call| async move { self.api.mask_card(&request, call).await },
        )
        .await
    }
}
