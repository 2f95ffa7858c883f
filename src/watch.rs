//! Acting when files change (BIN data, TLS certificates): a file watcher, debounced.
//!
//! The watcher watches the files' directories rather than the files: a file replaced by
//! rename (`mv new.csv bins.csv`) is a new inode that a watch on the old one would miss, and a
//! Kubernetes ConfigMap or Secret volume swaps a `..data` symlink in the directory. Events for
//! other files in the directory are ignored. Callers make a spurious call cheap (the BIN store
//! does nothing when the bytes did not change).

use std::collections::HashSet;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use std::future::Future;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// How long the files must be quiet before a reload: editors and copies write in bursts.
pub(crate) const DEBOUNCE: Duration = Duration::from_millis(300);

/// Calls `on_change` after any of `files` changes (once the changes have been quiet for
/// [`DEBOUNCE`]), until `stop` is cancelled. Calls never overlap.
///
/// # Errors
/// When the operating system refuses a watch (a missing directory, too many watches).
pub(crate) fn on_change<Changed>(
    files: &[&Path],
    stop: CancellationToken,
    on_change: impl Fn() -> Changed + Send + 'static,
) -> notify::Result<()>
where
    Changed: Future<Output = ()> + Send,
{
    let files: Vec<PathBuf> = files.iter().map(|f| absolute(f)).collect();
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
            on_change().await;
        }
    });
    Ok(())
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}
