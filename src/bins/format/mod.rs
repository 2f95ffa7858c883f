//! The BIN table formats the service reads, detected from the header line.
//!
//! Every format is CSV with a header. Each format module maps its columns (found by name, in
//! any order) onto [`BinRow`]s; this module reads the table, checks every row, and reports the
//! rows it could not use with their line numbers.

pub mod bin_list_data;
pub mod binlist_ranges;
pub mod cardlookup;
pub mod cn_four_column;
mod fields;

use std::fmt;
use std::io::{BufRead, BufReader, Read};

use super::index::{Prefix, PrefixError};
use super::record::{BinRecord, Strings};
use crate::card::LengthSetError;

/// A supported table format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// The project's own schema (docs/data-format.md).
    CardLookup,
    /// venelinkochev/bin-list-data, the embedded default's format.
    BinListData,
    /// The four-column table Chinese payment teams keep: `BIN,BankName,CardType,CardOrg`.
    CnFourColumn,
    /// binlist/data's `ranges.csv`.
    BinlistRanges,
}

impl Format {
    pub const ALL: [Self; 4] = [
        Self::CardLookup,
        Self::BinListData,
        Self::CnFourColumn,
        Self::BinlistRanges,
    ];

    /// The name used on the command line and in reports.
    #[must_use]
    pub const fn slug(self) -> &'static str {
        match self {
            Self::CardLookup => "cardlookup",
            Self::BinListData => "bin-list-data",
            Self::CnFourColumn => "cn-four-column",
            Self::BinlistRanges => "binlist-ranges",
        }
    }

    /// The format whose header this is, if any.
    #[must_use]
    pub fn detect(header: &csv::StringRecord) -> Option<Self> {
        let first = header.get(0)?.trim().trim_start_matches('\u{feff}');
        let second = header.get(1).unwrap_or_default().trim();
        match (
            first.to_ascii_lowercase().as_str(),
            second.to_ascii_lowercase().as_str(),
        ) {
            ("prefix", _) => Some(Self::CardLookup),
            ("iin_start", _) => Some(Self::BinlistRanges),
            ("bin", "brand") => Some(Self::BinListData),
            ("bin", "bankname") => Some(Self::CnFourColumn),
            _ => None,
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.slug())
    }
}

impl std::str::FromStr for Format {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|format| format.slug() == text)
            .ok_or_else(|| {
                let names: Vec<_> = Self::ALL.iter().map(|f| f.slug()).collect();
                format!("unknown format `{text}`; one of {}", names.join(", "))
            })
    }
}

/// One usable row: the prefixes `first..=last` (equal for a single BIN) and their record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BinRow {
    pub first: Prefix,
    pub last: Prefix,
    pub record: BinRecord,
}

/// What is wrong with one row. Never carries a value that could be a card number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RowError {
    #[error("{0}")]
    Bin(#[from] PrefixError),
    #[error("the range end must have as many digits as its start and not be below it")]
    RangeOrder,
    #[error("expected {expected} columns, found {found}")]
    Columns { expected: usize, found: usize },
    #[error("{column}: `{value}` is not one of {allowed}")]
    Value {
        column: &'static str,
        value: String,
        allowed: &'static str,
    },
    #[error("{column}: not an ISO 3166-1 alpha-2 country code")]
    Country { column: &'static str },
    #[error("{column}: {source}")]
    Lengths {
        column: &'static str,
        source: LengthSetError,
    },
    #[error("not valid CSV")]
    Csv,
    /// A text field past its limit ([`crate::bins::record::TEXT_LIMITS`]).
    #[error("{field} longer than {limit} bytes")]
    TooLong { field: &'static str, limit: usize },
}

/// Why a table could not be read at all.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    #[error(
        "the header matches no known format (cardlookup, bin-list-data, cn-four-column, binlist-ranges)"
    )]
    UnknownFormat,
    #[error("the header is not {format}'s: {reason}")]
    Header { format: Format, reason: String },
    #[error("{0}")]
    Read(#[source] std::io::Error),
}

/// A row that could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub line: u64,
    pub reason: RowError,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.reason)
    }
}

/// What reading a table found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableReport {
    pub format: Format,
    /// Rows used.
    pub rows: u64,
    /// Rows that could not be used.
    pub bad_rows: u64,
    /// The first [`MAX_PROBLEMS`] bad rows, with their reasons.
    pub problems: Vec<Problem>,
}

/// How many bad rows a report lists (all are counted).
pub const MAX_PROBLEMS: usize = 100;

/// The columns of one format, found in a header.
trait Columns {
    fn from_header(header: &csv::StringRecord) -> Result<Self, String>
    where
        Self: Sized;
    fn row(&self, row: &csv::StringRecord, strings: &mut Strings) -> Result<BinRow, RowError>;
}

/// Reads a table, handing each usable row to `on_row` and counting the others.
///
/// `format` forces a format; `None` detects it from the header.
///
/// # Errors
/// [`ParseError`] when the table cannot be read or its header fits no (or not the given)
/// format. Bad rows are not errors here: they are in the report, and the caller decides.
pub fn read(
    input: impl Read,
    format: Option<Format>,
    strings: &mut Strings,
    on_row: impl FnMut(BinRow),
) -> Result<TableReport, ParseError> {
    let mut input = BufReader::new(input);
    // The csv crate reports the line of each record one too low when lines end in CRLF (it
    // counts the record's start before the LF of the line above); correct for that.
    let line_offset = u64::from(first_line_ends_in_crlf(&mut input).map_err(ParseError::Read)?);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(input);
    let header = reader
        .headers()
        .map_err(|err| match err.into_kind() {
            csv::ErrorKind::Io(io) => ParseError::Read(io),
            _ => ParseError::UnknownFormat,
        })?
        .clone();
    let format = match format {
        Some(format) => format,
        None => Format::detect(&header).ok_or(ParseError::UnknownFormat)?,
    };
    let header_error = |reason| ParseError::Header { format, reason };
    let columns: Box<dyn Columns> = match format {
        Format::CardLookup => {
            Box::new(cardlookup::Columns::from_header(&header).map_err(header_error)?)
        }
        Format::BinListData => {
            Box::new(bin_list_data::Columns::from_header(&header).map_err(header_error)?)
        }
        Format::CnFourColumn => {
            Box::new(cn_four_column::Columns::from_header(&header).map_err(header_error)?)
        }
        Format::BinlistRanges => {
            Box::new(binlist_ranges::Columns::from_header(&header).map_err(header_error)?)
        }
    };
    read_rows(
        &mut reader,
        columns.as_ref(),
        format,
        line_offset,
        strings,
        on_row,
    )
}

fn read_rows<R: Read>(
    reader: &mut csv::Reader<R>,
    columns: &dyn Columns,
    format: Format,
    line_offset: u64,
    strings: &mut Strings,
    mut on_row: impl FnMut(BinRow),
) -> Result<TableReport, ParseError> {
    let mut report = TableReport {
        format,
        rows: 0,
        bad_rows: 0,
        problems: Vec::new(),
    };
    let mut row = csv::StringRecord::new();
    loop {
        let line = reader.position().line() + line_offset;
        let parsed = match reader.read_record(&mut row) {
            Ok(false) => break,
            Ok(true) => {
                strings.next_row();
                columns.row(&row, strings).and_then(within_limits)
            }
            Err(err) => match err.into_kind() {
                csv::ErrorKind::Io(io) => return Err(ParseError::Read(io)),
                _ => Err(RowError::Csv),
            },
        };
        match parsed {
            Ok(bin_row) => {
                on_row(bin_row);
                report.rows += 1;
            }
            Err(reason) => {
                report.bad_rows += 1;
                if report.problems.len() < MAX_PROBLEMS {
                    let line = row.position().map_or(line, |p| p.line() + line_offset);
                    report.problems.push(Problem { line, reason });
                }
            }
        }
    }
    Ok(report)
}

fn within_limits(row: BinRow) -> Result<BinRow, RowError> {
    match row.record.overlong_text() {
        Some((field, limit)) => Err(RowError::TooLong { field, limit }),
        None => Ok(row),
    }
}

fn first_line_ends_in_crlf(input: &mut impl BufRead) -> std::io::Result<bool> {
    let buffer = input.fill_buf()?;
    Ok(buffer
        .iter()
        .position(|&b| b == b'\n')
        .is_some_and(|lf| lf > 0 && buffer[lf - 1] == b'\r'))
}

/// Reads a table from text, for the format modules' tests.
#[cfg(test)]
pub(super) fn read_table(
    table: &str,
    format: Option<Format>,
) -> Result<(TableReport, Vec<BinRow>), ParseError> {
    let mut rows = Vec::new();
    let report = read(table.as_bytes(), format, &mut Strings::default(), |row| {
        rows.push(row);
    })?;
    Ok((report, rows))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(text: &str) -> csv::StringRecord {
        csv::StringRecord::from(text.split(',').collect::<Vec<_>>())
    }

    #[test]
    fn detects_each_format_from_its_header() {
        let cases = [
            ("prefix,prefix_end,network", Format::CardLookup),
            ("BIN,Brand,Type,Category,Issuer", Format::BinListData),
            ("BIN,BankName,CardType,CardOrg", Format::CnFourColumn),
            (
                "iin_start,iin_end,number_length,scheme",
                Format::BinlistRanges,
            ),
            (
                "\u{feff}bin,bankname,cardtype,cardorg",
                Format::CnFourColumn,
            ),
        ];
        for (text, format) in cases {
            assert_eq!(Format::detect(&header(text)), Some(format), "{text}");
        }
        assert_eq!(Format::detect(&header("pan,name")), None);
    }

    #[test]
    fn slugs_parse_back() {
        for format in Format::ALL {
            assert_eq!(format.slug().parse::<Format>(), Ok(format));
        }
        assert!("csv".parse::<Format>().unwrap_err().contains("cardlookup"));
    }

    #[test]
    fn bad_rows_are_counted_with_their_lines_and_good_rows_kept() {
        let table = "BIN,BankName,CardType,CardOrg\n622848,农业银行,借记卡,银联\n62x848,农业银行,借记卡,银联\n622849,农业银行,信用卡,银联\n";
        let (report, rows) = read_table(table, None).unwrap();
        assert_eq!((report.rows, report.bad_rows), (2, 1));
        assert_eq!(report.problems[0].line, 3);
        assert_eq!(rows.len(), 2);
    }

    #[test]
    fn line_numbers_are_right_with_crlf_line_ends() {
        let table =
            "BIN,BankName,CardType,CardOrg\r\n622848,A,借记卡,银联\r\n62x84,A,借记卡,银联\r\n";
        let (report, _) = read_table(table, None).unwrap();
        assert_eq!(report.problems[0].line, 3);
    }

    #[test]
    fn unknown_headers_and_forced_mismatches_are_refused() {
        assert!(matches!(
            read_table("pan,name\n1,2\n", None),
            Err(ParseError::UnknownFormat)
        ));
        let forced = read_table(
            "BIN,BankName,CardType,CardOrg\n",
            Some(Format::BinlistRanges),
        );
        assert!(
            matches!(forced, Err(ParseError::Header { .. })),
            "{forced:?}"
        );
    }
}
