//! Reloading when the data files change: a file watcher, debounced.
//!
//! The watcher watches the files' directories rather than the files: a file replaced by
//! rename (`mv new.csv bins.csv`) is a new inode that a watch on the old one would miss, and a
//! Kubernetes ConfigMap volume swaps a `..data` symlink in the directory. Events for other
//! files in the directory are ignored; spurious ones cost a content hash, since a reload of
//! unchanged bytes does nothing.

use std::collections::HashSet;
use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::store::{BinStore, ReloadTrigger};

/// How long the files must be quiet before a reload: editors and copies write in bursts.
pub const DEBOUNCE: Duration = Duration::from_millis(300);

/// Starts watching the store's files, reloading on change until `stop` is cancelled.
/// Returns `Ok(false)` when there are no files to watch.
///
/// # Errors
/// When the operating system refuses a watch (a missing directory, too many watches).
pub fn watch_files(store: Arc<BinStore>, stop: CancellationToken) -> notify::Result<bool> {
    let files: Vec<PathBuf> = store.files().map(absolute).collect();
    if files.is_empty() {
        return Ok(false);
    }
    let names: HashSet<OsString> = files
        .iter()
        .filter_map(|f| f.file_name().map(OsString::from))
        .collect();
    let directories: HashSet<PathBuf> = files
        .iter()
        .filter_map(|f| f.parent().map(PathBuf::from))
        .collect();

    let (report_change, mut changes) = mpsc::channel::<()>(1);
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let relevant = event.is_ok_and(|event| {
            event.paths.is_empty()
                || event.paths.iter().any(|path| {
                    path.file_name().is_some_and(|name| {
                        names.contains(name) || name.to_string_lossy().starts_with("..")
                    })
                })
        });
        if relevant {
            // A full channel already holds a pending change: nothing is lost by dropping this.
            let _ = report_change.try_send(());
        }
    })?;
    for directory in &directories {
        watcher.watch(directory, RecursiveMode::NonRecursive)?;
    }

    tokio::spawn(async move {
        // The watcher lives as long as this task.
        let _watcher = watcher;
        while stop
            .run_until_cancelled(changes.recv())
            .await
            .flatten()
            .is_some()
        {
            // Wait until the files have been quiet for DEBOUNCE.
            while let Ok(Some(())) = tokio::time::timeout(DEBOUNCE, changes.recv()).await {}
            // The result is logged and exported by the store.
            let _ = store.reload(ReloadTrigger::FileChange).await;
        }
    });
    Ok(true)
}

fn absolute(path: &std::path::Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}
