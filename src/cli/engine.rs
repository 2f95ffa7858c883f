//! What answers the card commands: the request layer over the loaded BIN data (offline), or a
//! server. Both take the same request messages and give the same answer messages, which
//! `answer` prints, so offline and server output cannot drift apart.

use zeroize::Zeroize;

use super::CliError;
use super::answer::{BinInfo, Checked, Masked};
use super::remote::Remote;
use super::target::Target;
use crate::api::CardApi;
use crate::bins::{BinStore, DataSource, LoadOptions};
use crate::proto::cardlookup::v1 as pb;

/// The request layer, or a server.
#[derive(Debug)]
pub(super) enum Engine {
    Offline(CardApi),
    Remote {
        runtime: Box<tokio::runtime::Runtime>,
        remote: Remote,
    },
}

impl Engine {
    /// Loads the BIN data (offline), or sets up the client (with --server).
    pub(super) fn new(target: &Target) -> Result<Self, CliError> {
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
            return Ok(Self::Offline(CardApi::new(store.into(), None)));
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| CliError::Io(format!("cannot start the runtime: {e}")))?;
        let remote = {
            let _context = runtime.enter();
            Remote::new(url, target)?
        };
        Ok(Self::Remote {
            runtime: Box::new(runtime),
            remote,
        })
    }

    /// Validate. The request's number is wiped once answered.
    pub(super) fn validate(
        &mut self,
        mut request: pb::ValidateRequest,
    ) -> Result<Checked, CliError> {
        let response = match self {
            Self::Offline(api) => {
                let answer = api.validate(&request, None);
                request.number.zeroize();
                answer?
            }
            Self::Remote { runtime, remote } => {
                let answer = runtime.block_on(remote.client.validate(request.clone()));
                request.number.zeroize();
                answer.map_err(|s| remote.failed(&s))?.into_inner()
            }
        };
        Ok(response.into())
    }

    /// LookupBin. The request's number is wiped once answered.
    pub(super) fn lookup_bin(
        &mut self,
        mut request: pb::LookupBinRequest,
    ) -> Result<BinInfo, CliError> {
        let response = match self {
            Self::Offline(api) => {
                let answer = api.lookup_bin(&request, None);
                request.number.zeroize();
                answer?
            }
            Self::Remote { runtime, remote } => {
                let answer = runtime.block_on(remote.client.lookup_bin(request.clone()));
                request.number.zeroize();
                answer.map_err(|s| remote.failed(&s))?.into_inner()
            }
        };
        Ok(response.into())
    }

    /// MaskCard. The request's number is wiped once answered.
    pub(super) fn mask_card(
        &mut self,
        mut request: pb::MaskCardRequest,
    ) -> Result<Masked, CliError> {
        let response = match self {
            Self::Offline(api) => {
                let answer = api.mask_card(&request);
                request.number.zeroize();
                answer?
            }
            Self::Remote { runtime, remote } => {
                let answer = runtime.block_on(remote.client.mask_card(request.clone()));
                request.number.zeroize();
                answer.map_err(|s| remote.failed(&s))?.into_inner()
            }
        };
        Ok(response.into())
    }
}
