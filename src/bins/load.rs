//! Loading BIN tables (the embedded default, files) into an index, all or nothing.

use std::io::{self, BufRead, BufReader, Read};
use std::path::PathBuf;

use flate2::read::GzDecoder;
use sha2::{Digest, Sha256};

use super::format::{self, Format, ParseError, Problem};
use super::index::{BinIndex, IndexBuilder};
use super::read::{self, Capped};
use super::record::Strings;
use crate::hex::hex;

/// The default BIN table, compressed: bin-list-data by Venelin Kochev, CC BY 4.0 (data/NOTICE).
const EMBEDDED: &[u8] = include_bytes!("../../data/bin-list-data.csv.gz");

/// The first bytes of a gzip stream.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// A BIN table to load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataSource {
    /// The table compiled into the binary.
    Embedded,
    /// A table in a file, gzip-compressed or not.
    File(PathBuf),
}

impl DataSource {
    /// How errors and reports name this source.
    #[must_use]
    pub fn name(&self) -> String {
        match self {
            Self::Embedded => "embedded default data".to_owned(),
            Self::File(path) => path.display().to_string(),
        }
    }

    /// The source's bytes; a file's bounded as [`read`] says (a regular file only, of at most
    /// [`read::MAX_DATA_BYTES`], that never stalls for long).
    fn open(&self) -> io::Result<Box<dyn Read + Send>> {
        Ok(match self {
            Self::Embedded => Box::new(EMBEDDED),
            Self::File(path) => Box::new(read::read_file(path.clone())?),
        })
    }
}

/// How to load.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoadOptions {
    /// The format of the files; `None` detects it from each header.
    pub format: Option<Format>,
    /// Load the good rows of a file that has bad ones (and count the bad), instead of
    /// refusing the whole file.
    pub skip_invalid_rows: bool,
}

/// What was loaded from one source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceReport {
    pub name: String,
    pub format: Format,
    pub rows: u64,
    /// Bad rows left out (only with `skip_invalid_rows`).
    pub skipped_rows: u64,
    /// The first bad rows, with their lines and reasons.
    pub problems: Vec<Problem>,
    /// The SHA-256 of the source's bytes (as stored: compressed, if it is), 64 hex digits.
    pub sha256: String,
    /// When it was published, if it came with a manifest (`data sync`) that says so.
    pub published_at: Option<std::time::SystemTime>,
}

/// An index and what went into it.
#[derive(Debug)]
pub struct Loaded {
    pub index: BinIndex,
    pub sources: Vec<SourceReport>,
}

/// Why BIN data could not be loaded. Names the source and, for a bad row, its line; never a
/// value that could be a card number.
#[derive(Debug, thiserror::Error)]
#[error("{source_name}: {error}")]
pub struct LoadError {
    pub source_name: String,
    #[source]
    pub error: SourceError,
}

/// What was wrong with a source.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{0}")]
    Parse(#[from] ParseError),
    #[error("{first}{}", more_problems(*.count))]
    BadRows { first: Problem, count: u64 },
}

fn more_problems(count: u64) -> String {
    match count {
        0 | 1 => String::new(),
        n => format!(
            " (and {} more bad rows; nothing from this file was loaded)",
            n - 1
        ),
    }
}

/// Loads the sources in order into one index; later sources win for the same prefix.
///
/// The index's version is a SHA-256 over the sources' bytes and the options, so replicas
/// loading the same data report the same version ([`fingerprint`] computes it without
/// loading).
///
/// # Errors
/// [`LoadError`] for the first source that cannot be read, or that has a bad row when
/// `skip_invalid_rows` is off. Nothing is returned then: a bad file never half-loads.
pub fn load(sources: &[DataSource], options: LoadOptions) -> Result<Loaded, LoadError> {
    let mut builder = IndexBuilder::default();
    let mut strings = Strings::default();
    let mut hasher = version_hasher(options);
    let mut reports = Vec::with_capacity(sources.len());
    for source in sources {
        let fail = |error: SourceError| LoadError {
            source_name: source.name(),
            error,
        };
        let input = source
            .open()
            .map_err(|e| fail(ParseError::Read(e).into()))?;
        let mut hashing = HashingReader {
            inner: input,
            hasher: &mut hasher,
            own: Sha256::new(),
        };
        let mut decoded =
            decompressed(&mut hashing).map_err(|e| fail(ParseError::Read(e).into()))?;
        let format = match source {
            DataSource::Embedded => Some(Format::BinListData),
            DataSource::File(_) => options.format,
        };
        // Rows go straight into the builder: if the file turns out bad, the whole builder is
        // dropped below, so nothing of it is ever served.
        let report = format::read(&mut decoded, format, &mut strings, |row| {
            builder.insert(row.first, row.last, row.record);
        })
        .map_err(|e| fail(e.into()))?;
        if report.bad_rows > 0 && !options.skip_invalid_rows {
            return Err(fail(SourceError::BadRows {
                first: report.problems[0].clone(),
                count: report.bad_rows,
            }));
        }
        // Whatever follows a gzip stream is part of the file's bytes, and of its digest.
        drop(decoded);
        io::copy(&mut hashing, &mut io::sink()).map_err(|e| fail(ParseError::Read(e).into()))?;
        let sha256 = hex(&hashing.own.finalize());
        end_source(&mut hasher);
        let published_at = match source {
            DataSource::File(path) => super::manifest::published_at_beside(path, &sha256),
            DataSource::Embedded => None,
        };
        reports.push(SourceReport {
            name: source.name(),
            format: report.format,
            rows: report.rows,
            skipped_rows: report.bad_rows,
            problems: report.problems,
            sha256,
            published_at,
        });
    }
    Ok(Loaded {
        index: builder.build(finish(hasher)),
        sources: reports,
    })
}

/// The version [`load`] would give these sources, computed by reading their bytes only.
///
/// # Errors
/// When a source cannot be read.
pub fn fingerprint(sources: &[DataSource], options: LoadOptions) -> Result<String, LoadError> {
    let mut hasher = version_hasher(options);
    for source in sources {
        let fail = |e| LoadError {
            source_name: source.name(),
            error: ParseError::Read(e).into(),
        };
        let mut input = source.open().map_err(fail)?;
        io::copy(&mut input, &mut HashWriter(&mut hasher)).map_err(fail)?;
        end_source(&mut hasher);
    }
    Ok(finish(hasher))
}

fn version_hasher(options: LoadOptions) -> Sha256 {
    let mut hasher = Sha256::new();
    hasher.update(options.format.map_or("auto", Format::slug));
    hasher.update([u8::from(options.skip_invalid_rows)]);
    hasher
}

fn end_source(hasher: &mut Sha256) {
    hasher.update(b"\0end of source\0");
}

fn finish(hasher: Sha256) -> String {
    format!("sha256:{}", hex(&hasher.finalize()[..8]))
}

/// The source's bytes, gunzipped when they start like gzip (to at most
/// [`read::MAX_DATA_BYTES`]: a few kilobytes of gzip can stand for gigabytes).
fn decompressed<'a>(input: impl Read + 'a) -> io::Result<Box<dyn Read + 'a>> {
    let mut buffered = BufReader::new(input);
    let gzip = buffered.fill_buf()?.starts_with(&GZIP_MAGIC);
    Ok(if gzip {
        Box::new(Capped::new(GzDecoder::new(buffered)))
    } else {
        Box::new(buffered)
    })
}

/// Feeds every byte read through it to the version hash and to the source's own digest.
struct HashingReader<'h, R> {
    inner: R,
    hasher: &'h mut Sha256,
    own: Sha256,
}

impl<R: Read> Read for HashingReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.own.update(&buf[..n]);
        Ok(n)
    }
}

struct HashWriter<'h>(&'h mut Sha256);

impl io::Write for HashWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digits(s: &str) -> Vec<u8> {
        s.bytes().map(|b| b - b'0').collect()
    }

    struct Dir(PathBuf);

    impl Dir {
        fn new(name: &str) -> Self {
            let path = std::env::temp_dir()
                .join(format!("card-lookup-load-{name}-{}", std::process::id()));
            std::fs::create_dir_all(&path).unwrap();
            Self(path)
        }

        fn file(&self, name: &str, contents: &str) -> DataSource {
            let path = self.0.join(name);
            std::fs::write(&path, contents).unwrap();
            DataSource::File(path)
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    const CN_HEADER: &str = "BIN,BankName,CardType,CardOrg";

    #[test]
    fn embedded_data_loads_whole() {
        let loaded = load(&[DataSource::Embedded], LoadOptions::default()).unwrap();
        assert_eq!(loaded.index.len(), 327_012);
        assert_eq!(loaded.sources[0].format, Format::BinListData);
        assert_eq!(loaded.sources[0].rows, 327_012);
        assert!(loaded.index.version().starts_with("sha256:"));
        assert!(
            loaded
                .index
                .longest_match(&digits("4111111111111111"))
                .is_some()
        );
    }

    #[test]
    fn later_files_win_and_the_version_follows_the_content() {
        let dir = Dir::new("override");
        let first = dir.file(
            "a.csv",
            &format!("{CN_HEADER}\n622848,FIRST BANK,借记卡,银联\n"),
        );
        let second = dir.file(
            "b.csv",
            &format!("{CN_HEADER}\n622848,SECOND BANK,信用卡,银联\n"),
        );
        let options = LoadOptions::default();
        let both = load(&[first.clone(), second.clone()], options).unwrap();
        let hit = both
            .index
            .longest_match(&digits("6228480000000000"))
            .unwrap();
        assert_eq!(&*hit.record.issuer.name, "SECOND BANK");
        let reversed = load(&[second.clone(), first.clone()], options).unwrap();
        let hit = reversed
            .index
            .longest_match(&digits("6228480000000000"))
            .unwrap();
        assert_eq!(&*hit.record.issuer.name, "FIRST BANK");
        assert_ne!(both.index.version(), reversed.index.version());
        assert_eq!(
            fingerprint(&[first, second], options).unwrap(),
            both.index.version()
        );
    }

    #[test]
    fn a_bad_row_refuses_the_whole_file_unless_told_to_skip() {
        let dir = Dir::new("bad");
        let table = format!(
            "{CN_HEADER}\n622848,A,借记卡,银联\n62x849,B,借记卡,银联\n622850,C,借记卡,银联\n62x851,D,借记卡,银联\n"
        );
        let source = dir.file("bad.csv", &table);
        let err = load(std::slice::from_ref(&source), LoadOptions::default()).unwrap_err();
        let message = err.to_string();
        assert!(
            message.contains("bad.csv: line 3: BIN must be digits only"),
            "{message}"
        );
        assert!(message.contains("and 1 more bad rows"), "{message}");

        let skipping = LoadOptions {
            skip_invalid_rows: true,
            ..LoadOptions::default()
        };
        let loaded = load(&[source], skipping).unwrap();
        assert_eq!(loaded.index.len(), 2);
        assert_eq!(
            (loaded.sources[0].rows, loaded.sources[0].skipped_rows),
            (2, 2)
        );
    }

    #[test]
    fn gzip_files_are_read_and_formats_can_be_forced() {
        use std::io::Write as _;
        let dir = Dir::new("gzip");
        let path = dir.0.join("table.csv.gz");
        let mut gz = flate2::write::GzEncoder::new(
            std::fs::File::create(&path).unwrap(),
            flate2::Compression::fast(),
        );
        write!(gz, "{CN_HEADER}\n622848,A,借记卡,银联\n").unwrap();
        gz.finish().unwrap();
        let source = DataSource::File(path);
        assert_eq!(
            load(std::slice::from_ref(&source), LoadOptions::default())
                .unwrap()
                .index
                .len(),
            1
        );
        let forced = LoadOptions {
            format: Some(Format::BinlistRanges),
            ..LoadOptions::default()
        };
        let err = load(&[source], forced).unwrap_err().to_string();
        assert!(err.contains("not binlist-ranges's"), "{err}");
    }

    #[test]
    fn a_missing_file_is_named_in_the_error() {
        let err = load(
            &[DataSource::File("/nonexistent/bins.csv".into())],
            LoadOptions::default(),
        )
        .unwrap_err();
        assert!(
            err.to_string().starts_with("/nonexistent/bins.csv: "),
            "{err}"
        );
    }
}
