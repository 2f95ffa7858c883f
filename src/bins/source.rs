//! Where BIN data comes from (the embedded default, files), and loading it into an index.

use std::fmt::Write as _;
use std::io::Read;
use std::path::{Path, PathBuf};

use flate2::read::GzDecoder;
use sha2::{Digest, Sha256};

use super::bin_list_data::{self, ParseError};
use super::index::{BinIndex, IndexBuilder};

/// The default BIN table, compressed: bin-list-data by Venelin Kochev, CC BY 4.0 (data/NOTICE).
const EMBEDDED: &[u8] = include_bytes!("../../data/bin-list-data.csv.gz");

/// The first bytes of a gzip stream.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// A BIN table to load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataSource {
    /// The table compiled into the binary.
    Embedded,
    /// A table in a file (gzip-compressed or not) in the bin-list-data format.
    File(PathBuf),
}

impl DataSource {
    /// How errors name this source.
    #[must_use]
    pub fn name(&self) -> String {
        match self {
            Self::Embedded => "embedded default data".to_owned(),
            Self::File(path) => path.display().to_string(),
        }
    }
}

/// Why BIN data could not be loaded. Names the source and, for a bad row, its line.
#[derive(Debug, thiserror::Error)]
#[error("{source_name}: {error}")]
pub struct LoadError {
    pub source_name: String,
    #[source]
    pub error: ParseError,
}

/// Loads the sources in order, later ones replacing earlier ones for the same prefix.
///
/// The index's version is a SHA-256 over the sources' bytes, so replicas loading the same
/// data report the same version.
///
/// # Errors
/// [`LoadError`] for the first source that cannot be read or has a bad row; nothing is
/// returned then, so a bad file never half-loads.
pub fn load_index(sources: &[DataSource]) -> Result<BinIndex, LoadError> {
    let mut builder = IndexBuilder::default();
    let mut hasher = Sha256::new();
    for source in sources {
        let fail = |error| LoadError {
            source_name: source.name(),
            error,
        };
        let bytes = match source {
            DataSource::Embedded => std::borrow::Cow::Borrowed(EMBEDDED),
            DataSource::File(path) => std::borrow::Cow::Owned(read(path).map_err(fail)?),
        };
        hasher.update((bytes.len() as u64).to_le_bytes());
        hasher.update(&bytes);
        let reader: Box<dyn Read + '_> = if bytes.starts_with(&GZIP_MAGIC) {
            Box::new(GzDecoder::new(&bytes[..]))
        } else {
            Box::new(&bytes[..])
        };
        bin_list_data::parse(reader, &mut builder).map_err(fail)?;
    }
    let digest = hasher.finalize();
    let mut version = String::from("sha256:");
    for byte in &digest[..8] {
        let _ = write!(version, "{byte:02x}");
    }
    Ok(builder.build(version))
}

fn read(path: &Path) -> Result<Vec<u8>, ParseError> {
    std::fs::read(path).map_err(ParseError::Read)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digits(s: &str) -> Vec<u8> {
        s.bytes().map(|b| b - b'0').collect()
    }

    #[test]
    fn embedded_data_loads_whole() {
        let index = load_index(&[DataSource::Embedded]).unwrap();
        assert_eq!(index.len(), 327_012);
        assert!(index.version().starts_with("sha256:"));
        let hit = index.longest_match(&digits("4111111111111111"));
        assert!(hit.is_some());
    }

    #[test]
    fn files_override_the_embedded_data_and_change_the_version() {
        let dir = std::env::temp_dir().join(format!("card-lookup-source-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("extra.csv");
        std::fs::write(
            &path,
            format!(
                "{}\n411111,TEST BRAND,CREDIT,GOLD,TEST BANK,,,GB,GBR,UNITED KINGDOM\n",
                bin_list_data::HEADER.join(",")
            ),
        )
        .unwrap();
        let base = load_index(&[DataSource::Embedded]).unwrap();
        let both = load_index(&[DataSource::Embedded, DataSource::File(path.clone())]).unwrap();
        let hit = both.longest_match(&digits("4111111111111111")).unwrap();
        assert_eq!(&*hit.record.issuer.name, "TEST BANK");
        assert_ne!(base.version(), both.version());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_missing_file_is_named_in_the_error() {
        let err = load_index(&[DataSource::File("/nonexistent/bins.csv".into())]).unwrap_err();
        assert!(
            err.to_string().starts_with("/nonexistent/bins.csv: "),
            "{err}"
        );
    }
}
