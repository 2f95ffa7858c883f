//! `cardlookup.admin.v1.AdminService`: what BIN data is served, and reloading it.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use tonic::{Request, Response, Status};

use super::error::RequestError;
use super::observe::{CardNumberField, observe};
use crate::bins::store::{ReloadOutcome, ReloadRecord};
use crate::bins::{BinStore, ReloadTrigger};
use crate::proto::cardlookup::admin::v1 as pb;
use crate::telemetry::{Method, RpcMetrics};

/// The admin service over the live store.
#[derive(Debug, Clone)]
pub struct Admin {
    store: Arc<BinStore>,
    metrics: Arc<RpcMetrics>,
}

impl Admin {
    #[must_use]
    pub fn new(store: Arc<BinStore>, metrics: Arc<RpcMetrics>) -> Self {
        Self { store, metrics }
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

fn unix_ms(at: SystemTime) -> i64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn reload_result(record: &ReloadRecord, served_version: &str) -> pb::ReloadResult {
    let (success, changed, error) = match &record.result {
        Ok(ReloadOutcome::Replaced { .. }) => (true, true, String::new()),
        Ok(ReloadOutcome::Unchanged { .. }) => (true, false, String::new()),
        Err(error) => (false, false, error.clone()),
    };
    pb::ReloadResult {
        success,
        changed,
        dataset_version: served_version.to_owned(),
        error,
        trigger: record.trigger.name().to_owned(),
        at_unix_ms: unix_ms(record.at),
    }
}

fn index_info(store: &BinStore) -> pb::GetIndexInfoResponse {
    let info = store.info();
    pb::GetIndexInfoResponse {
        dataset_version: info.index.version().to_owned(),
        entries: info.index.len() as u64,
        entries_by_prefix_length: info
            .index
            .entries_by_length()
            .into_iter()
            .map(|(length, entries)| pb::PrefixLengthCount {
                prefix_length: length as u32,
                entries: entries as u64,
            })
            .collect(),
        ranges: info.index.range_count() as u64,
        sources: info
            .sources
            .iter()
            .map(|source| pb::DataSource {
                name: source.name.clone(),
                format: source.format.slug().to_owned(),
                rows: source.rows,
                skipped_rows: source.skipped_rows,
            })
            .collect(),
        loaded_at_unix_ms: unix_ms(info.loaded_at),
        last_reload: info
            .last_reload
            .as_ref()
            .map(|record| reload_result(record, info.index.version())),
    }
}

#[tonic::async_trait]
impl pb::admin_service_server::AdminService for Admin {
    async fn get_index_info(
        &self,
        request: Request<pb::GetIndexInfoRequest>,
    ) -> Result<Response<pb::GetIndexInfoResponse>, Status> {
        observe(&self.metrics, Method::GetIndexInfo, request, |_, _| async {
            Ok(index_info(&self.store))
        })
        .await
    }

    async fn reload(
        &self,
        request: Request<pb::ReloadRequest>,
    ) -> Result<Response<pb::ReloadResponse>, Status> {
        observe(&self.metrics, Method::Reload, request, |_, _| async {
            self.store
                .reload(ReloadTrigger::Admin)
                .await
                .map_err(|error| RequestError::Reload(error.to_string()))?;
            let info = self.store.info();
            let record = info.last_reload.expect("a reload just finished");
            Ok(pb::ReloadResponse {
                result: Some(reload_result(&record, info.index.version())),
            })
        })
        .await
    }
}
