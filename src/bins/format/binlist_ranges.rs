//! binlist/data's `ranges.csv`:
//! `iin_start,iin_end,number_length,number_luhn,scheme,brand,type,prepaid,country,bank_name,bank_logo,bank_url,bank_phone,bank_city`.
//!
//! `iin_end` is empty for a single prefix, or ends a range of prefixes of the same length
//! (45710040-45710045). `number_length` and `number_luhn` override the network's rules for
//! Validate. `scheme` is the network (its text becomes the brand); binlist's `brand` is the
//! product (Traditional, Visa Classic) and becomes the category. Older copies have no
//! `number_luhn` column. `bank_logo` and `bank_city` are not served.

use crate::bins::record::{BinRecord, Issuer, Strings};
use crate::bins::regime::Regulations;
use crate::card::{CardNetwork, IssuerRules, NetworkSet};

use super::fields::{self, ColumnMap};
use super::{BinRow, RowError};

const NAMES: [&str; 14] = [
    "iin_start",
    "iin_end",
    "number_length",
    "number_luhn",
    "scheme",
    "brand",
    "type",
    "prepaid",
    "country",
    "bank_name",
    "bank_logo",
    "bank_url",
    "bank_phone",
    "bank_city",
];
const START: usize = 0;
const END: usize = 1;
const LENGTH: usize = 2;
const LUHN: usize = 3;
const SCHEME: usize = 4;
const PRODUCT: usize = 5;
const TYPE: usize = 6;
const PREPAID: usize = 7;
const COUNTRY: usize = 8;
const BANK: usize = 9;
const URL: usize = 11;
const PHONE: usize = 12;

#[derive(Debug)]
pub(super) struct Columns(ColumnMap);

impl super::Columns for Columns {
    fn from_header(header: &csv::StringRecord) -> Result<Self, String> {
        ColumnMap::new(header, &NAMES, &["iin_start", "iin_end", "scheme"]).map(Self)
    }

    fn row(&self, row: &csv::StringRecord, strings: &mut Strings) -> Result<BinRow, RowError> {
        let map = &self.0;
        map.check_width(row)?;
        let field = |i| map.get(row, i);
        let (first, last) = fields::prefix_range(field(START), field(END))?;
        let scheme = field(SCHEME);
        let network = match scheme {
            "" => None,
            text => Some(CardNetwork::from_brand(text).ok_or_else(|| {
                fields::value_error(
                    "scheme",
                    text,
                    "a card network such as VISA, MASTERCARD, AMEX, DINERS, UNIONPAY",
                )
            })?),
        };
        let record = BinRecord {
            network,
            co_badged: NetworkSet::empty(),
            brand: strings.string(scheme),
            card_type: fields::card_type("type", field(TYPE))?,
            prepaid: fields::yes_no("prepaid", field(PREPAID))?,
            category: strings.string(field(PRODUCT)),
            issuer: Issuer {
                name: strings.string(field(BANK)),
                url: strings.string(field(URL)),
                phone: strings.string(field(PHONE)),
            },
            country: fields::country("country", field(COUNTRY))?,
            rules: IssuerRules {
                lengths: fields::lengths("number_length", field(LENGTH))?,
                luhn: fields::yes_no("number_luhn", field(LUHN))?,
            },
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

    #[test]
    fn reads_ranges_and_rule_overrides() {
        let table = "\
iin_start,iin_end,number_length,number_luhn,scheme,brand,type,prepaid,country,bank_name,bank_logo,bank_url,bank_phone,bank_city
45710040,45710045,16,Y,VISA,Visa Classic,DEBIT,N,DK,JYSKE BANK,,www.jyskebank.dk,+45 89 89 89 89,Silkeborg
371241,371242,,,AMEX,,CREDIT,,US,AMERICAN EXPRESS,,www.americanexpress.com,8005284800,
360218,,,,DINERS,DINERS CLUB INTERNATIONAL,CREDIT,,EC,DINERS CLUB DEL ECUADOR S.A.,,www.dinersclub.com.ec,+593 2 297 3100,Quito
";
        let (report, rows) = read_table(table, None).unwrap();
        assert_eq!(
            (report.format, report.rows, report.bad_rows),
            (Format::BinlistRanges, 3, 0)
        );
        let jyske = &rows[0];
        assert_eq!(jyske.last.to_text(), "45710045");
        assert_eq!(jyske.record.network, Some(CardNetwork::Visa));
        assert_eq!(&*jyske.record.category, "Visa Classic");
        assert_eq!(jyske.record.card_type, Some(CardType::Debit));
        assert_eq!(jyske.record.prepaid, Some(false));
        assert_eq!(jyske.record.rules.lengths.unwrap().to_string(), "16");
        assert_eq!(jyske.record.rules.luhn, Some(true));
        assert_eq!(rows[1].record.network, Some(CardNetwork::AmericanExpress));
        assert_eq!(rows[2].first, rows[2].last);
        assert_eq!(rows[2].record.network, Some(CardNetwork::DinersClub));
    }

    #[test]
    fn the_older_header_without_number_luhn_is_read() {
        let table = "iin_start,iin_end,number_length,scheme,brand,type,prepaid,country,bank_name,bank_logo,bank_url,bank_phone,bank_city\n341142,,,AMEX,,CREDIT,,US,AMERICAN EXPRESS,,www.americanexpress.com,,\n";
        let report = read(table.as_bytes(), None, &mut Strings::default(), |_| {}).unwrap();
        assert_eq!((report.rows, report.bad_rows), (1, 0));
    }

    #[test]
    fn bad_ranges_and_values_are_refused() {
        let header = "iin_start,iin_end,scheme,type";
        let cases = [
            ("45710045,45710040,VISA,DEBIT", "RangeOrder"),
            ("4571004,45710045,VISA,DEBIT", "RangeOrder"),
            ("457100,,VISA,GOLD", "type"),
            ("457100,,MARSCARD,DEBIT", "scheme"),
        ];
        for (row, expected) in cases {
            let table = format!("{header}\n{row}\n");
            let report = read(table.as_bytes(), None, &mut Strings::default(), |_| {}).unwrap();
            let reason = &report.problems[0].reason;
            match reason {
                RowError::RangeOrder => assert_eq!(expected, "RangeOrder"),
                RowError::Value { column, .. } => assert_eq!(*column, expected),
                other => panic!("{row}: {other:?}"),
            }
        }
    }
}
