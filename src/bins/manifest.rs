//! The manifest an origin publishes for a set of BIN data files (`card-lookup data sync`
//! applies it; the service reads the one kept beside the files for their publication time):
//! which files make up the set, where each is, and its SHA-256. JSON of this shape (fields not named here are ignored, so publishers can add
//! some):
//!
//! ```json
//! {"published_at": "2026-12-01T12:00:00Z",
//!  "files": [{"name": "bins.csv", "url": "bins-3f2a.csv", "sha256": "<64 hex digits>"}]}
//! ```

use std::io::Read as _;
use std::path::Path;
use std::time::SystemTime;

use serde_json::Value;

/// The name of the applied manifest kept beside its files.
pub const FILE_NAME: &str = ".manifest.json";

/// The largest manifest read: it lists files, it does not hold them.
pub const MAX_MANIFEST_BYTES: u64 = 1 << 20;

/// The most files one manifest may name.
pub const MAX_FILES: usize = 64;

/// A manifest, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// When the publisher says it published this set (RFC 3339), if it says.
    pub published_at: Option<SystemTime>,
    pub files: Vec<FileEntry>,
}

/// One file of a manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEntry {
    /// The file name written in the destination directory (no directories in it).
    pub name: String,
    /// Where to download it: relative to the manifest's URL, or absolute.
    pub url: String,
    /// The SHA-256 of its bytes, 64 lower-case hex digits.
    pub sha256: String,
}

/// Why a manifest was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ManifestError {
    #[error("the manifest is not JSON: {0}")]
    Json(String),
    #[error("the manifest is not a JSON object with a `files` list")]
    Shape,
    #[error("the manifest names no files")]
    NoFiles,
    #[error("the manifest names {0} files; at most {MAX_FILES} are taken")]
    TooManyFiles(usize),
    #[error("files[{index}]: `{field}` is missing or not a string")]
    Field { index: usize, field: &'static str },
    #[error(
        "files[{index}]: name {name:?} is not a plain file name (no `/`, not starting with `.`)"
    )]
    Name { index: usize, name: String },
    #[error("files[{index}]: the name {name:?} is given twice")]
    Duplicate { index: usize, name: String },
    #[error("files[{index}]: sha256 is not 64 hex digits")]
    Digest { index: usize },
    #[error("published_at is not an RFC 3339 time ({0})")]
    PublishedAt(String),
}

/// Parses and checks a manifest.
///
/// # Errors
/// [`ManifestError`] saying what is wrong; nothing of a refused manifest is used.
pub fn parse(bytes: &[u8]) -> Result<Manifest, ManifestError> {
    let value: Value =
        serde_json::from_slice(bytes).map_err(|e| ManifestError::Json(e.to_string()))?;
    let files = value
        .get("files")
        .and_then(Value::as_array)
        .ok_or(ManifestError::Shape)?;
    if files.is_empty() {
        return Err(ManifestError::NoFiles);
    }
    if files.len() > MAX_FILES {
        return Err(ManifestError::TooManyFiles(files.len()));
    }
    let published_at = match value.get("published_at") {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) => Some(
            humantime::parse_rfc3339_weak(text)
                .map_err(|e| ManifestError::PublishedAt(e.to_string()))?,
        ),
        Some(other) => {
            return Err(ManifestError::PublishedAt(format!(
                "{other} is not a string"
            )));
        }
    };
    let mut entries: Vec<FileEntry> = Vec::with_capacity(files.len());
    for (index, file) in files.iter().enumerate() {
        let field = |field: &'static str| {
            file.get(field)
                .and_then(Value::as_str)
                .ok_or(ManifestError::Field { index, field })
        };
        let name = field("name")?.to_owned();
        if !is_plain_name(&name) {
            return Err(ManifestError::Name { index, name });
        }
        if entries.iter().any(|entry| entry.name == name) {
            return Err(ManifestError::Duplicate { index, name });
        }
        let sha256 = field("sha256")?.to_ascii_lowercase();
        if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ManifestError::Digest { index });
        }
        entries.push(FileEntry {
            name,
            url: field("url")?.to_owned(),
            sha256,
        });
    }
    Ok(Manifest {
        published_at,
        files: entries,
    })
}

/// When the file at `path`, whose bytes have the SHA-256 `sha256`, was published: the
/// `published_at` of the manifest kept beside it, if that manifest names this file with these
/// bytes (a file replaced by other means has no publication time).
#[must_use]
pub fn published_at_beside(path: &Path, sha256: &str) -> Option<SystemTime> {
    let name = path.file_name()?.to_str()?;
    let beside = path.parent()?.join(FILE_NAME);
    let file = std::fs::File::open(beside).ok()?;
    let mut raw = Vec::new();
    file.take(MAX_MANIFEST_BYTES).read_to_end(&mut raw).ok()?;
    let manifest = parse(&raw).ok()?;
    manifest
        .files
        .iter()
        .any(|file| file.name == name && file.sha256 == sha256)
        .then_some(manifest.published_at)?
}

/// A name that stays in the destination directory and cannot be taken for the updater's own
/// entries there (which start with `.`).
fn is_plain_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && !name.starts_with('.')
        && !name.contains(['/', '\\', '\0'])
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "3f2a000000000000000000000000000000000000000000000000000000000000";

    #[test]
    fn a_manifest_of_the_documented_shape_parses() {
        let manifest = parse(
            format!(
                r#"{{"published_at": "2026-12-01T12:00:00Z", "extra": 1,
                   "files": [{{"name": "bins.csv", "url": "bins-3f2a.csv", "sha256": "{}"}}]}}"#,
                DIGEST.to_uppercase()
            )
            .as_bytes(),
        )
        .unwrap();
        assert_eq!(manifest.files.len(), 1);
        assert_eq!(manifest.files[0].sha256, DIGEST);
        let published = manifest.published_at.unwrap();
        assert_eq!(
            published
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs(),
            1_796_126_400
        );
    }

    #[test]
    fn names_that_leave_the_directory_or_clash_are_refused() {
        for name in ["../x.csv", "a/b.csv", ".manifest.json", "..data", ""] {
            let text =
                format!(r#"{{"files": [{{"name": {name:?}, "url": "u", "sha256": "{DIGEST}"}}]}}"#);
            assert!(
                matches!(parse(text.as_bytes()), Err(ManifestError::Name { .. })),
                "{name}"
            );
        }
        let twice = format!(
            r#"{{"files": [{{"name": "a", "url": "u", "sha256": "{DIGEST}"}},
                           {{"name": "a", "url": "v", "sha256": "{DIGEST}"}}]}}"#
        );
        assert!(matches!(
            parse(twice.as_bytes()),
            Err(ManifestError::Duplicate { index: 1, .. })
        ));
    }

    #[test]
    fn bad_digests_times_and_shapes_are_refused() {
        let short = r#"{"files": [{"name": "a", "url": "u", "sha256": "3f2a"}]}"#;
        assert_eq!(
            parse(short.as_bytes()),
            Err(ManifestError::Digest { index: 0 })
        );
        let time = format!(
            r#"{{"published_at": "yesterday", "files": [{{"name": "a", "url": "u", "sha256": "{DIGEST}"}}]}}"#
        );
        assert!(matches!(
            parse(time.as_bytes()),
            Err(ManifestError::PublishedAt(_))
        ));
        assert_eq!(parse(b"[]"), Err(ManifestError::Shape));
        assert_eq!(parse(br#"{"files": []}"#), Err(ManifestError::NoFiles));
        assert!(matches!(parse(b"{"), Err(ManifestError::Json(_))));
    }
}
