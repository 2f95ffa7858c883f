//! The live BIN index, replaced whole when the data changes.
//!
//! A reload builds the new index beside the old one (on a thread of its own) and swaps it in
//! with one atomic pointer store: a lookup sees the old table or the new one, never a mix, and
//! never waits. A reload that fails leaves the old index serving and says why; the data it
//! refused is remembered by its content hash, so the same bytes are not parsed again.

use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use arc_swap::ArcSwap;

use super::index::BinIndex;
use super::load::{self, DataSource, LoadError, LoadOptions, SourceReport};
use super::metrics::{self, ReloadResult};

/// What asked for a reload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReloadTrigger {
    /// A watched data file changed.
    FileChange,
    /// SIGHUP.
    Signal,
    /// The admin service's Reload.
    Admin,
    /// The periodic re-check found a file's stat changed.
    Recheck,
}

impl ReloadTrigger {
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::FileChange => "file_change",
            Self::Signal => "signal",
            Self::Admin => "admin",
            Self::Recheck => "recheck",
        }
    }
}

/// What a successful reload did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReloadOutcome {
    /// New data is being served.
    Replaced { version: String },
    /// The data had not changed; the index was left as it was.
    Unchanged { version: String },
}

/// Why a reload failed; the current index keeps serving.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The sources hold the bytes the last failed reload refused: they are not parsed again.
    #[error("{reason} (the data is unchanged since it was refused, so it was not parsed again)")]
    StillRefused { reason: String },
    #[error("cannot start the reload thread: {0}")]
    Thread(#[source] std::io::Error),
}

/// The last reload, for the admin service.
#[derive(Debug, Clone)]
pub struct ReloadRecord {
    pub at: SystemTime,
    pub trigger: ReloadTrigger,
    /// The outcome, or why it failed.
    pub result: Result<ReloadOutcome, String>,
}

/// What the store is serving and how it got there.
#[derive(Debug, Clone)]
pub struct StoreInfo {
    pub index: Arc<BinIndex>,
    pub sources: Vec<SourceReport>,
    pub loaded_at: SystemTime,
    pub last_reload: Option<ReloadRecord>,
}

#[derive(Debug)]
struct State {
    sources: Vec<SourceReport>,
    loaded_at: SystemTime,
    last_reload: Option<ReloadRecord>,
    /// The version (content hash) of the data the last failed reload refused, and why.
    refused: Option<(String, String)>,
    /// The files as they were when last read, for [`BinStore::changed_on_disk`].
    stamps: Vec<Option<FileStamp>>,
}

/// What a stat says of a file: which file it is (a rename puts another there), its size and
/// times. Any difference means it may have changed.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FileStamp {
    device: u64,
    inode: u64,
    len: u64,
    modified: Option<SystemTime>,
    changed: (i64, i64),
}

fn stamp(path: &std::path::Path) -> Option<FileStamp> {
    use std::os::unix::fs::MetadataExt;
    let metadata = std::fs::metadata(path).ok()?;
    Some(FileStamp {
        device: metadata.dev(),
        inode: metadata.ino(),
        len: metadata.len(),
        modified: metadata.modified().ok(),
        changed: (metadata.ctime(), metadata.ctime_nsec()),
    })
}

/// The index being served, and the sources to reload it from.
#[derive(Debug)]
pub struct BinStore {
    current: ArcSwap<BinIndex>,
    sources: Vec<DataSource>,
    options: LoadOptions,
    state: Mutex<State>,
    /// One reload at a time: they would only repeat each other's work.
    reloading: tokio::sync::Mutex<()>,
}

impl BinStore {
    /// Loads the sources for the first time.
    ///
    /// # Errors
    /// [`LoadError`] when any source cannot be loaded.
    pub fn load(sources: Vec<DataSource>, options: LoadOptions) -> Result<Self, LoadError> {
        // Taken before reading: a change made during the read shows at the first re-check.
        let stamps = stamps(&sources);
        let loaded = load::load(&sources, options)?;
        Ok(Self::assemble(loaded, sources, options, stamps))
    }

    /// A store serving an index that is already loaded.
    #[must_use]
    pub fn from_loaded(
        loaded: load::Loaded,
        sources: Vec<DataSource>,
        options: LoadOptions,
    ) -> Self {
        let stamps = stamps(&sources);
        Self::assemble(loaded, sources, options, stamps)
    }

    fn assemble(
        loaded: load::Loaded,
        sources: Vec<DataSource>,
        options: LoadOptions,
        stamps: Vec<Option<FileStamp>>,
    ) -> Self {
        Self {
            current: ArcSwap::from_pointee(loaded.index),
            sources,
            options,
            state: Mutex::new(State {
                sources: loaded.sources,
                loaded_at: SystemTime::now(),
                last_reload: None,
                refused: None,
                stamps,
            }),
            reloading: tokio::sync::Mutex::new(()),
        }
    }

    /// The index to answer one request from. Cheap; never blocks.
    #[must_use]
    pub fn current(&self) -> arc_swap::Guard<Arc<BinIndex>> {
        self.current.load()
    }

    /// The files this store reloads from.
    pub fn files(&self) -> impl Iterator<Item = &std::path::Path> {
        self.sources.iter().filter_map(|source| match source {
            DataSource::File(path) => Some(path.as_path()),
            DataSource::Embedded => None,
        })
    }

    /// What is served, from which sources, and the last reload.
    ///
    /// # Panics
    /// If a thread panicked while holding the state lock.
    #[must_use]
    pub fn info(&self) -> StoreInfo {
        let state = self.state.lock().expect("store state lock");
        StoreInfo {
            index: self.current.load_full(),
            sources: state.sources.clone(),
            loaded_at: state.loaded_at,
            last_reload: state.last_reload.clone(),
        }
    }

    /// Reloads every source and swaps the new index in; unchanged data is not rebuilt, and
    /// data a reload refused is not parsed again until it changes. Concurrent calls run one
    /// after another.
    ///
    /// The work runs on a thread of its own rather than the runtime's blocking pool, which the
    /// runtime's shutdown waits for: a reload slow to fail (a read given up on a hung mount
    /// takes [`super::read::STALL_TIMEOUT`]) never holds the process's exit up.
    ///
    /// # Errors
    /// [`ReloadError`] when a source cannot be loaded; the current index keeps serving.
    ///
    /// # Panics
    /// If the reload thread panics.
    pub async fn reload(
        self: &Arc<Self>,
        trigger: ReloadTrigger,
    ) -> Result<ReloadOutcome, ReloadError> {
        let _one_at_a_time = self.reloading.lock().await;
        let store = Arc::clone(self);
        let (done, result) = tokio::sync::oneshot::channel();
        std::thread::Builder::new()
            .name("bin-data-reload".into())
            .spawn(move || {
                let _ = done.send(store.reload_blocking(trigger));
            })
            .map_err(ReloadError::Thread)?;
        result.await.expect("the reload thread does not panic")
    }

    fn reload_blocking(&self, trigger: ReloadTrigger) -> Result<ReloadOutcome, ReloadError> {
        // Taken before reading: a change made during the read shows at the next re-check.
        let stamps = stamps(&self.sources);
        let rebuilt = self.rebuild();
        let mut state = self.state.lock().expect("store state lock");
        state.stamps = stamps;
        let result = rebuilt.map(|rebuilt| match rebuilt {
            Rebuilt::Unchanged { version } => ReloadOutcome::Unchanged { version },
            Rebuilt::New(loaded) => {
                let loaded = *loaded;
                let version = loaded.index.version().to_owned();
                let previous = self.current.swap(Arc::new(loaded.index));
                // Said at once: callers see the new data from the swap on, and a process told
                // to stop may exit before this thread's next steps.
                tracing::info!(trigger = trigger.name(), version, "BIN data reloaded");
                metrics::record_index_replaced(&previous, &self.current.load());
                metrics::record_sources(&state.sources, &loaded.sources);
                state.sources = loaded.sources;
                state.loaded_at = SystemTime::now();
                ReloadOutcome::Replaced { version }
            }
        });
        match &result {
            Ok(ReloadOutcome::Replaced { .. }) => {}
            Ok(ReloadOutcome::Unchanged { version }) => {
                tracing::info!(trigger = trigger.name(), version, "BIN data unchanged");
            }
            Err(error) => tracing::error!(
                trigger = trigger.name(),
                %error,
                "BIN data reload failed; still serving the previous data"
            ),
        }
        metrics::record_reload(match &result {
            Ok(ReloadOutcome::Replaced { .. }) => ReloadResult::Success,
            Ok(ReloadOutcome::Unchanged { .. }) => ReloadResult::Unchanged,
            Err(_) => ReloadResult::Failure,
        });
        state.last_reload = Some(ReloadRecord {
            at: SystemTime::now(),
            trigger,
            result: result
                .as_ref()
                .map(Clone::clone)
                .map_err(ToString::to_string),
        });
        result
    }

    /// Whether a file's stat differs from when it was last read: a stat of each, no read.
    ///
    /// # Panics
    /// If a thread panicked while holding the state lock.
    #[must_use]
    pub fn changed_on_disk(&self) -> bool {
        let now = stamps(&self.sources);
        self.state.lock().expect("store state lock").stamps != now
    }

    /// Every `every`, on a thread of its own (a stat on a hung mount must not stall the
    /// runtime, nor its shutdown), reloads when [`Self::changed_on_disk`], until `stop`.
    ///
    /// # Errors
    /// When the thread cannot start.
    pub fn recheck_every(
        self: &Arc<Self>,
        every: std::time::Duration,
        stop: tokio_util::sync::CancellationToken,
    ) -> std::io::Result<()> {
        let (stopped, stops) = std::sync::mpsc::channel::<()>();
        let runtime = tokio::runtime::Handle::current();
        let store = Arc::clone(self);
        std::thread::Builder::new()
            .name("bin-data-recheck".into())
            .spawn(move || {
                while stops.recv_timeout(every) == Err(std::sync::mpsc::RecvTimeoutError::Timeout) {
                    if store.changed_on_disk() {
                        let store = Arc::clone(&store);
                        // The result is logged and exported by the store.
                        runtime.spawn(async move {
                            let _ = store.reload(ReloadTrigger::Recheck).await;
                        });
                    }
                }
            })?;
        tokio::spawn(async move {
            stop.cancelled().await;
            drop(stopped);
        });
        Ok(())
    }

    /// Loads the sources again, unless their bytes are what is being served or what was last
    /// refused.
    fn rebuild(&self) -> Result<Rebuilt, ReloadError> {
        let version = load::fingerprint(&self.sources, self.options)?;
        if version == self.current.load().version() {
            return Ok(Rebuilt::Unchanged { version });
        }
        let refused = self.state.lock().expect("store state lock").refused.clone();
        if let Some((_, reason)) = refused.filter(|(refused, _)| *refused == version) {
            return Err(ReloadError::StillRefused { reason });
        }
        let loaded = load::load(&self.sources, self.options);
        self.state.lock().expect("store state lock").refused = loaded
            .as_ref()
            .err()
            .map(|error| (version, error.to_string()));
        Ok(Rebuilt::New(Box::new(loaded?)))
    }
}

fn stamps(sources: &[DataSource]) -> Vec<Option<FileStamp>> {
    sources
        .iter()
        .map(|source| match source {
            DataSource::File(path) => stamp(path),
            DataSource::Embedded => None,
        })
        .collect()
}

enum Rebuilt {
    Unchanged { version: String },
    New(Box<load::Loaded>),
}
