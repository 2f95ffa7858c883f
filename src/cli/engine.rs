//! What answers the card commands: the request layer over the loaded BIN data (offline), or a
//! server. Both take the same request messages and give the same answer messages, which
//! `answer` prints, so offline and server output cannot drift apart.

use std::future::Future;

use tonic::Status;
use tonic::transport::Channel;
use zeroize::Zeroize;

use super::CliError;
use super::answer::{BinInfo, Checked, Masked};
use super::remote::Remote;
use super::target::Target;
use crate::api::{Call, CardApi, RequestError};
use crate::bins::{BinStore, DataSource, LoadOptions};
use crate::client::resend_unsent;
use crate::proto::cardlookup::v1 as pb;
use crate::proto::cardlookup::v1::card_lookup_service_client::CardLookupServiceClient;

/// The request layer, or a server; either is called on a runtime of the command's own.
#[derive(Debug)]
pub(super) enum Engine {
    Offline {
        runtime: Box<tokio::runtime::Runtime>,
        api: CardApi,
    },
    Remote {
        runtime: Box<tokio::runtime::Runtime>,
        remote: Remote,
    },
}

impl Engine {
    /// Loads the BIN data (offline), or sets up the client (with --server).
    pub(super) fn new(target: &Target) -> Result<Self, CliError> {
        let runtime = Box::new(
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| CliError::Io(format!("cannot start the runtime: {e}")))?,
        );
        let Some(url) = &target.server else {
            let mut sources: Vec<DataSource> = Vec::new();
            if !target.no_default_data {
                sources.push(DataSource::Embedded);
            }
            sources.extend(target.bin_data.iter().cloned().map(DataSource::File));
            let options = LoadOptions {
                format: target.bin_data_format,
                skip_invalid_rows: false,
            };
            let store = BinStore::load(sources, options)
                .map_err(|e| CliError::Usage(format!("cannot load BIN data: {e}")))?;
            let keys = crate::config::fingerprint_keys(target.fingerprint_key_file.as_deref())
                .map_err(|e| CliError::Usage(e.to_string()))?;
            let test_cards = crate::config::test_cards(target.test_cards_file.as_deref())
                .map_err(|e| CliError::Usage(e.to_string()))?;
            return Ok(Self::Offline {
                runtime,
                api: CardApi::new(store.into(), None)
                    .with_fingerprint_keys(keys)
                    .with_test_cards(test_cards),
            });
        };
        let remote = {
            let _context = runtime.enter();
            Remote::new(url, target)?
        };
        Ok(Self::Remote { runtime, remote })
    }

    /// Validate.
    pub(super) fn validate(&mut self, request: pb::ValidateRequest) -> Result<Checked, CliError> {
        self.answer(
            request,
            async |api, request| api.validate(request, Call::default()).await,
            |mut client, request| async move { client.validate(request).await },
        )
        .map(Checked::from)
    }

    /// LookupBin.
    pub(super) fn lookup_bin(
        &mut self,
        request: pb::LookupBinRequest,
    ) -> Result<BinInfo, CliError> {
        self.answer(
            request,
            async |api, request| api.lookup_bin(request, Call::default()).await,
            |mut client, request| async move { client.lookup_bin(request).await },
        )
        .map(BinInfo::from)
    }

    /// MaskCard.
    pub(super) fn mask_card(&mut self, request: pb::MaskCardRequest) -> Result<Masked, CliError> {
        self.answer(
            request,
            async |api, request| api.mask_card(request, Call::default()).await,
            |mut client, request| async move { client.mask_card(request).await },
        )
        .map(Masked::from)
    }

    /// The answer to `request`, from the request layer or the server; the request's number is
    /// wiped once answered.
    fn answer<Req, Res, Called>(
        &mut self,
        mut request: Req,
        offline: impl AsyncFnOnce(&CardApi, &Req) -> Result<Res, RequestError>,
        server: impl Fn(CardLookupServiceClient<Channel>, Req) -> Called,
    ) -> Result<Res, CliError>
    where
        Req: NumberRequest,
        Called: Future<Output = Result<tonic::Response<Res>, Status>>,
    {
        let answer = match self {
            Self::Offline { runtime, api } => runtime
                .block_on(offline(api, &request))
                .map_err(CliError::from),
            Self::Remote { runtime, remote } => runtime
                .block_on(resend_unsent(|| {
                    server(remote.client.clone(), request.clone())
                }))
                .map(tonic::Response::into_inner)
                .map_err(|status| remote.failed(&status)),
        };
        request.number().zeroize();
        answer
    }
}

/// A request that carries a card number.
trait NumberRequest: Clone {
    fn number(&mut self) -> &mut String;
}

impl NumberRequest for pb::ValidateRequest {
    fn number(&mut self) -> &mut String {
        &mut self.number
    }
}

impl NumberRequest for pb::LookupBinRequest {
    fn number(&mut self) -> &mut String {
        &mut self.number
    }
}

impl NumberRequest for pb::MaskCardRequest {
    fn number(&mut self) -> &mut String {
        &mut self.number
    }
}
