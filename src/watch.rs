//! Acting when files change (BIN data, TLS certificates): a file watcher, debounced.
//!
//! The watcher watches the files' directories rather than the files: a file replaced by
//! rename (`mv new.csv bins.csv`) is a new inode that a watch on the old one would miss, and a
//! Kubernetes ConfigMap or Secret volume swaps a `..data` symlink in the directory. Events for
//! other files in the directory are ignored, and so are opens and reads, the callers' own
//! among them: only what changes a file counts.
//!
//! A directory deleted and made again is a new directory that the operating system's watch,
//! on the old one, does not see; every [`RECHECK`] a thread of the watcher's own (so that a
//! hung mount cannot stall the runtime) checks each directory is still the one watched (its
//! watch not dropped, its inode the same), watches it again when it is back, and reports when
//! one is gone. Callers make a spurious call cheap (the BIN store does nothing when the bytes
//! did not change).

use std::collections::HashSet;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::mpsc::RecvTimeoutError;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use notify::event::{AccessKind, AccessMode, ModifyKind};
use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use std::future::Future;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// How long the files must be quiet before a reload: editors and copies write in bursts.
pub(crate) const DEBOUNCE: Duration = Duration::from_millis(300);

/// How often the watched directories are checked to be the ones watched: a stat of each, so
/// cheap; 2 s keeps the time a recreated directory goes unseen short.
pub(crate) const RECHECK: Duration = Duration::from_secs(2);

/// Calls `on_change` after any of `files` changes (once the changes have been quiet for
/// [`DEBOUNCE`]), until `stop` is cancelled. Calls never overlap. `watching` hears whether
/// every directory is watched: `true` once they are, then each time that changes.
///
/// # Errors
/// When the operating system refuses a watch (a missing directory, too many watches), or the
/// re-check thread cannot start.
pub(crate) fn on_change<Changed>(
    files: &[&Path],
    stop: CancellationToken,
    watching: impl Fn(bool) + Send + 'static,
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
    let report = report_change.clone();
    // Directories whose watch the operating system dropped (deleted or moved away), for the
    // re-check thread: one made again in the same place may reuse the old one's inode.
    let lost = Arc::new(Mutex::new(HashSet::<PathBuf>::new()));
    let events_lost = Arc::clone(&lost);
    let watched_paths = directories.clone();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let Ok(event) = event else { return };
        if matches!(
            event.kind,
            EventKind::Remove(_) | EventKind::Modify(ModifyKind::Name(_))
        ) {
            let mut lost = events_lost.lock().unwrap_or_else(PoisonError::into_inner);
            lost.extend(
                event
                    .paths
                    .iter()
                    .filter(|path| watched_paths.contains(*path))
                    .cloned(),
            );
        }
        let relevant = is_change(event.kind)
            && (event.paths.is_empty()
                || event.paths.iter().any(|path| {
                    path.file_name().is_some_and(|name| {
                        names.contains(name) || name.to_string_lossy().starts_with("..")
                    })
                }));
        if relevant {
            // A full channel already holds a pending change: nothing is lost by dropping this.
            let _ = report.try_send(());
        }
    })?;
    let mut directories_watched = Vec::with_capacity(directories.len());
    for directory in directories {
        watcher.watch(&directory, RecursiveMode::NonRecursive)?;
        directories_watched.push(Watched {
            identity: identity(&directory),
            path: directory,
        });
    }
    watching(true);

    // Dropping the sender (when the task below ends) ends the re-check thread.
    let (stopped, recheck_stops) = std::sync::mpsc::channel::<()>();
    std::thread::Builder::new()
        .name("watch-recheck".into())
        .spawn(move || {
            let mut all_watched = true;
            while recheck_stops.recv_timeout(RECHECK) == Err(RecvTimeoutError::Timeout) {
                let lost =
                    std::mem::take(&mut *lost.lock().unwrap_or_else(PoisonError::into_inner));
                let (now_watched, came_back) =
                    recheck(&mut watcher, &mut directories_watched, &lost);
                if came_back {
                    // Its files may have changed while nobody watched.
                    let _ = report_change.try_send(());
                }
                if now_watched != all_watched {
                    all_watched = now_watched;
                    watching(all_watched);
                }
            }
        })?;

    tokio::spawn(async move {
        let _stop_recheck = stopped;
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

/// Whether an event of this kind can mean a file changed. Opening, reading and closing a file
/// unwritten do not, and the service's own reads make them: counted as changes, every reload
/// would start the next one.
fn is_change(kind: EventKind) -> bool {
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        _ => true,
    }
}

/// A watched directory, and which directory the watch is on (`None` while it is gone).
struct Watched {
    path: PathBuf,
    identity: Option<Identity>,
}

/// Checks each directory is still the one watched (not `lost`, nor replaced), watching it
/// again when it is back. Returns whether all are watched, and whether any came back.
fn recheck(
    watcher: &mut RecommendedWatcher,
    directories: &mut [Watched],
    lost: &HashSet<PathBuf>,
) -> (bool, bool) {
    let mut came_back = false;
    for directory in directories.iter_mut() {
        let now = identity(&directory.path);
        if now == directory.identity && !lost.contains(&directory.path) {
            continue;
        }
        // The old watch went with the old directory; the error says so and is no news.
        let _ = watcher.unwatch(&directory.path);
        directory.identity = None;
        if now.is_none() {
            tracing::warn!(
                directory = %directory.path.display(),
                "a watched directory is gone; its files' changes are not seen until it is back"
            );
            continue;
        }
        match watcher.watch(&directory.path, RecursiveMode::NonRecursive) {
            Ok(()) => {
                tracing::info!(directory = %directory.path.display(), "watching the directory again");
                directory.identity = now;
                came_back = true;
            }
            Err(error) => tracing::warn!(
                directory = %directory.path.display(),
                %error,
                "cannot watch the directory again; will retry"
            ),
        }
    }
    (directories.iter().all(|d| d.identity.is_some()), came_back)
}

/// Which directory is at a path: its device and inode, so that one put in the place of
/// another (renamed there, say) is told apart from it; [`identity`] gives `None` when nothing
/// is there.
type Identity = (u64, u64);

#[cfg(unix)]
fn identity(path: &Path) -> Option<Identity> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

#[cfg(not(unix))]
fn identity(path: &Path) -> Option<Identity> {
    path.is_dir().then_some((0, 0))
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify::event::{CreateKind, DataChange, RemoveKind, RenameMode};

    #[test]
    fn reads_are_not_changes() {
        for read in [
            AccessKind::Open(AccessMode::Read),
            AccessKind::Read,
            AccessKind::Close(AccessMode::Read),
            AccessKind::Any,
        ] {
            assert!(!is_change(EventKind::Access(read)), "{read:?}");
        }
        for change in [
            EventKind::Access(AccessKind::Close(AccessMode::Write)),
            EventKind::Create(CreateKind::File),
            EventKind::Modify(ModifyKind::Data(DataChange::Any)),
            EventKind::Modify(ModifyKind::Name(RenameMode::To)),
            EventKind::Remove(RemoveKind::File),
            EventKind::Any,
        ] {
            assert!(is_change(change), "{change:?}");
        }
    }

    /// The next report of `watching`, within 15 s.
    async fn next(watching: &mut mpsc::UnboundedReceiver<bool>) -> bool {
        tokio::time::timeout(Duration::from_secs(15), watching.recv())
            .await
            .expect("a report within 15 s")
            .unwrap()
    }

    #[tokio::test]
    async fn a_directory_deleted_and_made_again_is_reported_gone_then_watched() {
        let dir = std::env::temp_dir().join(format!("card-lookup-watch-{}", std::process::id()));
        let data = dir.join("data");
        std::fs::create_dir_all(&data).unwrap();
        let file = data.join("bins.csv");
        std::fs::write(&file, "a").unwrap();
        let (heard, mut watching) = mpsc::unbounded_channel();

        let stop = CancellationToken::new();
        on_change(
            &[&file],
            stop.clone(),
            move |ok| {
                let _ = heard.send(ok);
            },
            || std::future::ready(()),
        )
        .unwrap();
        assert!(next(&mut watching).await);

        std::fs::remove_dir_all(&data).unwrap();
        assert!(!next(&mut watching).await, "the loss is reported");
        std::fs::create_dir(&data).unwrap();
        assert!(next(&mut watching).await, "watched again");
        stop.cancel();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
