//! The bin-list-data CSV format (github.com/venelinkochev/bin-list-data), which the embedded
//! default data uses:
//! `BIN,Brand,Type,Category,Issuer,IssuerPhone,IssuerUrl,isoCode2,isoCode3,CountryName`.
//!
//! `isoCode3` and `CountryName` are read from ISO 3166 by `isoCode2` instead.

use crate::bins::record::{BinRecord, Issuer, Strings};
use crate::bins::regime::Regulations;
use crate::card::CardNetwork;

use super::fields::{self, ColumnMap};
use super::{BinRow, RowError};

/// The header, in order.
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
const NAMES: [&str; 10] = [
    "bin",
    "brand",
    "type",
    "category",
    "issuer",
    "issuerphone",
    "issuerurl",
    "isocode2",
    "isocode3",
    "countryname",
];
const BIN: usize = 0;
const BRAND: usize = 1;
const TYPE: usize = 2;
const CATEGORY: usize = 3;
const ISSUER: usize = 4;
const PHONE: usize = 5;
const URL: usize = 6;
const COUNTRY: usize = 7;

#[derive(Debug)]
pub(super) struct Columns(ColumnMap);

impl super::Columns for Columns {
    fn from_header(header: &csv::StringRecord) -> Result<Self, String> {
        ColumnMap::new(header, &NAMES, &["bin", "brand"]).map(Self)
    }

    fn row(&self, row: &csv::StringRecord, strings: &mut Strings) -> Result<BinRow, RowError> {
        let map = &self.0;
        map.check_width(row)?;
        let field = |i| map.get(row, i);
        let (first, last) = fields::prefix_range(field(BIN), "")?;
        let card_type = fields::card_type("Type", field(TYPE))?;
        let country = fields::country("isoCode2", field(COUNTRY))?;
        let (brand, category) = (field(BRAND), field(CATEGORY));
        let (network, co_badged) = CardNetwork::brand_networks(brand);
        let record = BinRecord {
            network,
            co_badged,
            brand: strings.string(brand),
            card_type,
            prepaid: fields::prepaid_from_category(category),
            category: strings.string(category),
            issuer: Issuer {
                name: strings.string(field(ISSUER)),
                url: strings.string(field(URL)),
                phone: strings.string(field(PHONE)),
            },
            country,
            rules: crate::card::IssuerRules::default(),
            regulated: None,
            regulations: Regulations::default(),
        };
        Ok(BinRow {
            first,
            last,
            record,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Format, RowError, read, read_table};
    use crate::bins::record::{CardType, Strings};
    use crate::card::CardNetwork;

    const TABLE: &str = "\
BIN,Brand,Type,Category,Issuer,IssuerPhone,IssuerUrl,isoCode2,isoCode3,CountryName
411111,VISA,DEBIT,PREPAID RELOADABLE,\"BANK, N.A.\",+1 800,https://bank.example,US,USA,UNITED STATES
622848,CHINA UNION PAY,CHARGE CARD,,AGRICULTURAL BANK OF CHINA,,,CN,CHN,CHINA
";

    #[test]
    fn reads_rows_into_records() {
        let (report, rows) = read_table(TABLE, None).unwrap();
        assert_eq!((report.format, report.rows), (Format::BinListData, 2));
        let visa = &rows[0].record;
        assert_eq!(visa.network, Some(CardNetwork::Visa));
        assert_eq!(visa.card_type, Some(CardType::Debit));
        assert_eq!(visa.prepaid, Some(true));
        assert_eq!(&*visa.issuer.name, "BANK, N.A.");
        assert_eq!(&*visa.issuer.url, "https://bank.example");
        assert_eq!(visa.country.unwrap().numeric, Some(840));
        let cup = &rows[1].record;
        assert_eq!(cup.network, Some(CardNetwork::UnionPay));
        assert_eq!(cup.card_type, Some(CardType::Charge));
        assert_eq!(cup.prepaid, None);
    }

    #[track_caller]
    fn problem(row: &str) -> (u64, RowError) {
        let table = format!(
            "{}\n411111,VISA,DEBIT,,,,,US,USA,X\n{row}\n",
            super::HEADER.join(",")
        );
        let report = read(table.as_bytes(), None, &mut Strings::default(), |_| {}).unwrap();
        let problem = report.problems.first().expect("a bad row").clone();
        (problem.line, problem.reason)
    }

    #[test]
    fn reports_bad_rows_with_their_line() {
        use crate::bins::index::PrefixError;
        assert_eq!(
            problem("41111A,VISA,DEBIT,,,,,US,USA,X"),
            (3, RowError::Bin(PrefixError::NotDigits))
        );
        assert_eq!(
            problem("411,VISA,DEBIT,,,,,US,USA,X"),
            (3, RowError::Bin(PrefixError::Length(3)))
        );
        assert!(matches!(
            problem("411112,VISA,GOLD,,,,,US,USA,X").1,
            RowError::Value { column: "Type", .. }
        ));
        assert_eq!(
            problem("411112,VISA,DEBIT,,,,,QQ,USA,X"),
            (3, RowError::Country { column: "isoCode2" })
        );
        assert_eq!(
            problem("411112,VISA"),
            (
                3,
                RowError::Columns {
                    expected: 10,
                    found: 2
                }
            )
        );
    }

    #[test]
    fn a_whole_card_number_in_the_bin_column_is_not_echoed() {
        let (_, reason) = problem("4111111111111111,VISA,DEBIT,,,,,US,USA,X");
        assert!(!reason.to_string().contains("4111"), "{reason}");
        let (_, reason) = problem("411112,VISA,4111111111111111,,,,,US,USA,X");
        assert!(!reason.to_string().contains("4111"), "{reason}");
    }
}
