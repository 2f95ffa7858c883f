//! `cardlookup.admin.v1.AdminService`: what BIN data is served, and reloading it.

use tonic::{Request, Response, Status};

use super::observe::{CardNumberField, observe};
use crate::api::admin::AdminApi;
use crate::proto::cardlookup::admin::v1 as pb;
use crate::telemetry::Method;

/// The admin service: the admin API, answering over gRPC.
#[derive(Debug, Clone)]
pub(crate) struct Admin {
    api: AdminApi,
}

impl Admin {
    #[must_use]
    pub(crate) fn new(api: AdminApi) -> Self {
        Self { api }
    }
}

impl CardNumberField for pb::GetIndexInfoRequest {
    fn card_number(&self) -> Option<&str> {
        None
    }
}

impl CardNumberField for pb::ReloadRequest {
    fn card_number(&self) -> Option<&str> {
        None
    }
}

#[tonic::async_trait]
impl pb::admin_service_server::AdminService for Admin {
    async fn get_index_info(
        &self,
        request: Request<pb::GetIndexInfoRequest>,
    ) -> Result<Response<pb::GetIndexInfoResponse>, Status> {
        observe(Method::GetIndexInfo, false, request, |_, _| async {
            Ok(self.api.index_info())
        })
        .await
    }

    async fn reload(
        &self,
        request: Request<pb::ReloadRequest>,
    ) -> Result<Response<pb::ReloadResponse>, Status> {
        observe(Method::Reload, false, request, |_, _| self.api.reload()).await
    }
}
