//! The bin-list-data CSV format (github.com/venelinkochev/bin-list-data), which the embedded
//! default data uses:
//! `BIN,Brand,Type,Category,Issuer,IssuerPhone,IssuerUrl,isoCode2,isoCode3,CountryName`.

use std::io::{BufRead, BufReader, Read};

use crate::card::CardNetwork;

use super::index::{IndexBuilder, Prefix, PrefixError};
use super::record::{BinRecord, CardType, Country, Issuer};

/// The header line this format must start with.
pub const HEADER: [&str; 10] = [
    "BIN",
    "Brand",
    "Type",
    "Category",
    "Issuer",
    "IssuerPhone",
    "IssuerUrl",
    "isoCode2",
    "isoCode3",
    "CountryName",
];

/// What is wrong with one row.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RowError {
    #[error("{0}")]
    Bin(#[from] PrefixError),
    #[error("expected {expected} columns, found {found}", expected = HEADER.len())]
    Columns { found: usize },
    #[error("Type must be DEBIT, CREDIT, CHARGE CARD or empty")]
    CardType,
    #[error("isoCode2 is not an ISO 3166-1 alpha-2 country code")]
    Country,
    #[error("not valid CSV")]
    Csv,
}

/// What went wrong reading a table in this format.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    #[error("the header must be `{}`", HEADER.join(","))]
    Header,
    #[error("line {line}: {reason}")]
    Row { line: u64, reason: RowError },
    #[error("{0}")]
    Read(#[source] std::io::Error),
}

/// Reads every row into `builder`; later rows replace earlier ones for the same BIN.
/// Returns how many rows were read.
///
/// # Errors
/// [`ParseError`] at the first bad header or row: the caller must then drop the builder,
/// so that nothing of a bad table is ever served.
pub fn parse(input: impl Read, builder: &mut IndexBuilder) -> Result<u64, ParseError> {
    let mut input = BufReader::new(input);
    // The csv crate reports the line of each record one too low when lines end in CRLF (it
    // counts the record's start before the LF of the line above); correct for that.
    let line_offset = u64::from(first_line_ends_in_crlf(&mut input).map_err(ParseError::Read)?);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(input);
    let headers = reader.headers().map_err(csv_error)?;
    if !headers.iter().map(str::trim).eq(HEADER) {
        return Err(ParseError::Header);
    }

    let mut row = csv::StringRecord::new();
    let mut rows = 0;
    loop {
        let line = reader.position().line() + line_offset;
        match reader.read_record(&mut row) {
            Ok(false) => break,
            Ok(true) => {}
            Err(err) => {
                return Err(match err.into_kind() {
                    csv::ErrorKind::Io(io) => ParseError::Read(io),
                    _ => ParseError::Row {
                        line,
                        reason: RowError::Csv,
                    },
                });
            }
        }
        let (prefix, record) = parse_row(&row, builder).map_err(|reason| ParseError::Row {
            line: row.position().map_or(line, |p| p.line() + line_offset),
            reason,
        })?;
        builder.insert(prefix, record);
        rows += 1;
    }
    Ok(rows)
}

fn first_line_ends_in_crlf(input: &mut impl BufRead) -> std::io::Result<bool> {
    let buffer = input.fill_buf()?;
    Ok(buffer
        .iter()
        .position(|&b| b == b'\n')
        .is_some_and(|lf| lf > 0 && buffer[lf - 1] == b'\r'))
}

fn csv_error(err: csv::Error) -> ParseError {
    match err.into_kind() {
        csv::ErrorKind::Io(io) => ParseError::Read(io),
        _ => ParseError::Header,
    }
}

fn parse_row(
    row: &csv::StringRecord,
    builder: &mut IndexBuilder,
) -> Result<(Prefix, BinRecord), RowError> {
    if row.len() != HEADER.len() {
        return Err(RowError::Columns { found: row.len() });
    }
    let field = |i: usize| row.get(i).unwrap_or_default().trim();
    let prefix = Prefix::parse(field(0))?;
    let brand = field(1);
    let card_type = match field(2).to_ascii_uppercase().as_str() {
        "" => None,
        "DEBIT" => Some(CardType::Debit),
        "CREDIT" => Some(CardType::Credit),
        "CHARGE" | "CHARGE CARD" => Some(CardType::Charge),
        _ => return Err(RowError::CardType),
    };
    let category = field(3);
    let country = match field(7) {
        "" => None,
        code => Some(Country::from_alpha2(code).ok_or(RowError::Country)?),
    };
    let strings = builder.interner();
    let record = BinRecord {
        network: CardNetwork::from_brand(brand),
        brand: strings.string(brand),
        card_type,
        prepaid: prepaid_from_category(category),
        category: strings.string(category),
        issuer: Issuer {
            name: strings.string(field(4)),
            phone: strings.string(field(5)),
            url: strings.string(field(6)),
        },
        country,
    };
    Ok((prefix, record))
}

/// This format has no prepaid column; its category says PREPAID for prepaid cards. An empty
/// category says nothing either way.
fn prepaid_from_category(category: &str) -> Option<bool> {
    if category.is_empty() {
        None
    } else {
        Some(category.to_ascii_uppercase().contains("PREPAID"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &str = "\
BIN,Brand,Type,Category,Issuer,IssuerPhone,IssuerUrl,isoCode2,isoCode3,CountryName
411111,VISA,DEBIT,PREPAID RELOADABLE,\"BANK, N.A.\",+1 800,https://bank.example,US,USA,UNITED STATES
622848,CHINA UNION PAY,CREDIT,,AGRICULTURAL BANK OF CHINA,,,CN,CHN,CHINA
";

    fn digits(s: &str) -> Vec<u8> {
        s.bytes().map(|b| b - b'0').collect()
    }

    #[test]
    fn reads_rows_into_records() {
        let mut builder = IndexBuilder::default();
        assert_eq!(parse(TABLE.as_bytes(), &mut builder).unwrap(), 2);
        let index = builder.build("t".into());
        let visa = index
            .longest_match(&digits("4111111111111111"))
            .unwrap()
            .record;
        assert_eq!(visa.network, Some(CardNetwork::Visa));
        assert_eq!(visa.card_type, Some(CardType::Debit));
        assert_eq!(visa.prepaid, Some(true));
        assert_eq!(&*visa.issuer.name, "BANK, N.A.");
        assert_eq!(&*visa.issuer.url, "https://bank.example");
        assert_eq!(visa.country.unwrap().numeric, Some(840));
        let cup = index.longest_match(&digits("622848")).unwrap().record;
        assert_eq!(cup.network, Some(CardNetwork::UnionPay));
        assert_eq!(cup.prepaid, None);
    }

    #[track_caller]
    fn row_error(row: &str) -> (u64, RowError) {
        let table = format!(
            "{}\n411111,VISA,DEBIT,,,,,US,USA,X\n{row}\n",
            HEADER.join(",")
        );
        match parse(table.as_bytes(), &mut IndexBuilder::default()) {
            Err(ParseError::Row { line, reason }) => (line, reason),
            other => panic!("expected a row error, got {other:?}"),
        }
    }

    #[test]
    fn reports_bad_rows_with_their_line() {
        assert_eq!(
            row_error("41111A,VISA,DEBIT,,,,,US,USA,X"),
            (3, RowError::Bin(PrefixError::NotDigits))
        );
        assert_eq!(
            row_error("411,VISA,DEBIT,,,,,US,USA,X"),
            (3, RowError::Bin(PrefixError::Length(3)))
        );
        assert_eq!(
            row_error("411112,VISA,GOLD,,,,,US,USA,X"),
            (3, RowError::CardType)
        );
        assert_eq!(
            row_error("411112,VISA,DEBIT,,,,,QQ,USA,X"),
            (3, RowError::Country)
        );
        assert_eq!(
            row_error("411112,VISA"),
            (3, RowError::Columns { found: 2 })
        );
    }

    #[test]
    fn line_numbers_are_right_with_crlf_line_ends() {
        let table = format!(
            "{}\r\n411111,VISA,DEBIT,,,,,US,USA,X\r\n411112,VISA,DEBIT,,,,,QQ,USA,X\r\n",
            HEADER.join(",")
        );
        match parse(table.as_bytes(), &mut IndexBuilder::default()) {
            Err(ParseError::Row { line, .. }) => assert_eq!(line, 3),
            other => panic!("expected a row error, got {other:?}"),
        }
    }

    #[test]
    fn rejects_another_header() {
        let err = parse(
            "iin_start,iin_end\n1,2\n".as_bytes(),
            &mut IndexBuilder::default(),
        );
        assert!(matches!(err, Err(ParseError::Header)), "{err:?}");
    }

    #[test]
    fn a_whole_card_number_in_the_bin_column_is_not_echoed() {
        let (_, reason) = row_error("4111111111111111,VISA,DEBIT,,,,,US,USA,X");
        assert!(!reason.to_string().contains("4111"), "{reason}");
    }
}
