//! The admin service's answers: what BIN data is served, and reloading it.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use super::RequestError;
use crate::bins::store::{ReloadOutcome, ReloadRecord};
use crate::bins::{BinStore, ReloadTrigger};
use crate::proto::cardlookup::admin::v1 as pb;

/// The admin API over the live store.
#[derive(Debug, Clone)]
pub struct AdminApi {
    store: Arc<BinStore>,
}

impl AdminApi {
    #[must_use]
    pub fn new(store: Arc<BinStore>) -> Self {
        Self { store }
    }

    /// What is served: version, entries by prefix length, sources, the last reload.
    #[must_use]
    pub fn index_info(&self) -> pb::GetIndexInfoResponse {
        let info = self.store.info();
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
                    sha256: source.sha256.clone(),
                    published_at_unix_ms: source.published_at.map_or(0, unix_ms),
                })
                .collect(),
            loaded_at_unix_ms: unix_ms(info.loaded_at),
            last_reload: info
                .last_reload
                .as_ref()
                .map(|record| reload_result(record, info.index.version())),
        }
    }

    /// Reloads the data now; a failed reload leaves the previous data serving.
    ///
    /// # Panics
    /// If a thread panicked while holding the store's state lock.
    pub async fn reload(&self) -> Result<pb::ReloadResponse, RequestError> {
        self.store
            .reload(ReloadTrigger::Admin)
            .await
            .map_err(|error| RequestError::Reload(error.to_string()))?;
        let info = self.store.info();
        let record = info.last_reload.expect("a reload just finished");
        Ok(pb::ReloadResponse {
            result: Some(reload_result(&record, info.index.version())),
        })
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
