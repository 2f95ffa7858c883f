//! Putting a manifest's files in the destination directory, all of them at once or none.
//!
//! The directory is laid out as the kubelet lays out a ConfigMap volume, which the service's
//! watcher already follows:
//!
//! ```text
//! DIR/.set-<time>/bins.csv          the files of the applied manifest, and the manifest
//! DIR/.set-<time>/.manifest.json
//! DIR/..data -> .set-<time>         switched by one rename: the new set, whole, or the old
//! DIR/bins.csv -> ..data/bins.csv   what the service is pointed at (--bin-data DIR/bins.csv)
//! DIR/.manifest.json -> ..data/.manifest.json
//! ```
//!
//! A new set is built in a staging directory beside it: each file downloaded (or linked from
//! the set being served, when its digest is the one asked for), its SHA-256 compared with the
//! manifest's, then all of them loaded as the service and `data check` load them. Only then
//! is `..data` switched. Anything that fails leaves the served set as it was.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use super::fetch::{Client, FetchError, Fetched, Location};
use crate::bins::manifest::{FileEntry, Manifest};
use crate::bins::{DataSource, LoadError, LoadOptions};
use crate::hex::hex;

pub use crate::bins::manifest::FILE_NAME as MANIFEST_FILE;
/// The link switched to a new set.
const DATA_LINK: &str = "..data";
const SET_PREFIX: &str = ".set-";
const STAGING_PREFIX: &str = ".staging-";

/// Why a manifest's files were not applied; the set being served stays.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("{name}: {error}")]
    Download { name: String, error: FetchError },
    #[error("{name}: SHA-256 is {actual}, the manifest says {expected}")]
    Digest {
        name: String,
        expected: String,
        actual: String,
    },
    #[error("the files fail their checks: {0}")]
    Check(LoadError),
    #[error("{path}: {error}")]
    Write {
        path: PathBuf,
        #[source]
        error: std::io::Error,
    },
}

impl ApplyError {
    /// The `reason` label of the failure counter.
    #[must_use]
    pub const fn reason(&self) -> &'static str {
        match self {
            Self::Download { .. } => "download",
            Self::Digest { .. } => "digest",
            Self::Check(_) => "check",
            Self::Write { .. } => "write",
        }
    }
}

fn write_error(path: &Path) -> impl FnOnce(std::io::Error) -> ApplyError + '_ {
    move |error| ApplyError::Write {
        path: path.to_path_buf(),
        error,
    }
}

/// The manifest of the set `dir` serves, as it was published, if any.
#[must_use]
pub fn served_manifest(dir: &Path) -> Option<Vec<u8>> {
    std::fs::read(dir.join(MANIFEST_FILE)).ok()
}

/// Downloads, checks and switches `dir` to `manifest`'s files.
///
/// # Errors
/// [`ApplyError`]; the set being served is left as it was, and the staging directory removed.
pub async fn apply(
    client: &Client,
    base: &Location,
    manifest: &Manifest,
    raw: &[u8],
    dir: &Path,
    max_file_bytes: u64,
) -> Result<(), ApplyError> {
    let staging = Staging::new(dir)?;
    for entry in &manifest.files {
        stage_file(client, base, entry, dir, &staging.0, max_file_bytes).await?;
    }
    let paths: Vec<PathBuf> = manifest
        .files
        .iter()
        .map(|entry| staging.0.join(&entry.name))
        .collect();
    check(paths).await?;
    let manifest_path = staging.0.join(MANIFEST_FILE);
    std::fs::write(&manifest_path, raw).map_err(write_error(&manifest_path))?;
    switch(dir, staging, manifest)
}

/// Puts `entry` in `staging`: linked from the served set when it already has those bytes,
/// downloaded otherwise; checked against its digest either way.
async fn stage_file(
    client: &Client,
    base: &Location,
    entry: &FileEntry,
    dir: &Path,
    staging: &Path,
    max_file_bytes: u64,
) -> Result<(), ApplyError> {
    let target = staging.join(&entry.name);
    // The file itself, not its link: a hard link to the link would dangle in the new set.
    let served = std::fs::canonicalize(dir.join(&entry.name)).ok();
    if let Some(served) = served
        && digest_of(&served).await.as_deref() == Some(entry.sha256.as_str())
        && std::fs::hard_link(&served, &target).is_ok()
    {
        return Ok(());
    }
    let download = |error| ApplyError::Download {
        name: entry.name.clone(),
        error,
    };
    let location = base.join(&entry.url).map_err(download)?;
    let mut file = std::fs::File::create(&target).map_err(write_error(&target))?;
    let mut hasher = Sha256::new();
    let fetched = client
        .get(&location, None, max_file_bytes, &mut |chunk| {
            hasher.update(chunk);
            file.write_all(chunk)
        })
        .await
        .map_err(download)?;
    debug_assert!(matches!(fetched, Fetched::Body { .. }));
    file.sync_all().map_err(write_error(&target))?;
    let actual = hex(&hasher.finalize());
    if actual != entry.sha256 {
        return Err(ApplyError::Digest {
            name: entry.name.clone(),
            expected: entry.sha256.clone(),
            actual,
        });
    }
    Ok(())
}

/// The SHA-256 of the file at `path`, if it can be read.
async fn digest_of(path: &Path) -> Option<String> {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let mut file = std::fs::File::open(path).ok()?;
        let mut hasher = Sha256::new();
        std::io::copy(&mut file, &mut hasher).ok()?;
        Some(hex(&hasher.finalize()))
    })
    .await
    .ok()
    .flatten()
}

/// The files loaded together, as the service loads them (every row good, formats detected):
/// what `card-lookup data check` accepts.
async fn check(paths: Vec<PathBuf>) -> Result<(), ApplyError> {
    tokio::task::spawn_blocking(move || {
        let sources: Vec<DataSource> = paths.into_iter().map(DataSource::File).collect();
        crate::bins::load(&sources, LoadOptions::default())
            .map(drop)
            .map_err(ApplyError::Check)
    })
    .await
    .unwrap_or_else(|_| {
        Err(ApplyError::Write {
            path: PathBuf::new(),
            error: std::io::Error::other("the check panicked"),
        })
    })
}

/// The staging directory; removed unless switched in.
struct Staging(PathBuf);

impl Staging {
    fn new(dir: &Path) -> Result<Self, ApplyError> {
        std::fs::create_dir_all(dir).map_err(write_error(dir))?;
        let path = dir.join(format!("{STAGING_PREFIX}{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir(&path).map_err(write_error(&path))?;
        Ok(Self(path))
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Makes the staged set the served one: renamed to a set of its own, `..data` switched to it
/// in one rename, each file's link made where missing, then what is no longer served removed.
fn switch(dir: &Path, staging: Staging, manifest: &Manifest) -> Result<(), ApplyError> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let set_name = format!("{SET_PREFIX}{nanos}");
    let set = dir.join(&set_name);
    std::fs::rename(&staging.0, &set).map_err(write_error(&set))?;
    std::mem::forget(staging);
    let data_link = dir.join(DATA_LINK);
    replace_with_link(dir, &set_name, &data_link)?;
    let names = manifest
        .files
        .iter()
        .map(|entry| entry.name.as_str())
        .chain([MANIFEST_FILE]);
    for name in names {
        let link = dir.join(name);
        let target = format!("{DATA_LINK}/{name}");
        if std::fs::read_link(&link).ok().as_deref() != Some(Path::new(&target)) {
            replace_with_link(dir, &target, &link)?;
        }
    }
    remove_unserved(dir, &set_name, manifest);
    Ok(())
}

/// Points `link` at `target` with one rename, whatever was at `link` before.
fn replace_with_link(dir: &Path, target: &str, link: &Path) -> Result<(), ApplyError> {
    let temporary = dir.join(format!(".link-{}", std::process::id()));
    let _ = std::fs::remove_file(&temporary);
    std::os::unix::fs::symlink(target, &temporary).map_err(write_error(&temporary))?;
    std::fs::rename(&temporary, link).map_err(write_error(link))
}

/// Removes the sets not served, stale staging directories, and links to files the manifest
/// no longer names. Failures only leave litter, so they are logged, not returned.
fn remove_unserved(dir: &Path, served_set: &str, manifest: &Manifest) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        let stale_set = (name.starts_with(SET_PREFIX) && name != served_set)
            || name.starts_with(STAGING_PREFIX);
        let dropped_link = std::fs::read_link(&path)
            .is_ok_and(|target| target.starts_with(DATA_LINK) && name != DATA_LINK)
            && name != MANIFEST_FILE
            && !manifest.files.iter().any(|file| file.name == name);
        let removed = if stale_set {
            std::fs::remove_dir_all(&path)
        } else if dropped_link {
            std::fs::remove_file(&path)
        } else {
            continue;
        };
        if let Err(error) = removed {
            tracing::warn!(path = %path.display(), %error, "cannot remove what is no longer served");
        }
    }
}
