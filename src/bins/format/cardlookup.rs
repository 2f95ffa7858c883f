//! The project's own BIN table schema (docs/data-format.md): every field LookupBin returns,
//! ranges, and the issuer's own length and Luhn rules. `data convert` writes it.
//!
//! ```text
//! prefix,prefix_end,pan_lengths,luhn,network,brand,card_type,prepaid,category,issuer_name,issuer_url,issuer_phone,country,co_badged,regulated
//! 45710040,45710045,16,true,visa,VISA/DANKORT,debit,false,CLASSIC,EXAMPLE BANK,https://bank.example,+45 00 00 00 00,DK,dankort,
//! ```

use std::io::Write;

use crate::bins::index::Prefix;
use crate::bins::record::{BinRecord, CardType, Issuer, Strings};
use crate::bins::regime::Regulations;
use crate::card::{CardNetwork, IssuerRules};

use super::fields::{self, ColumnMap};
use super::{BinRow, RowError};

/// The columns, in the order `data convert` writes them. Only `prefix` is required.
pub const HEADER: [&str; 15] = [
    "prefix",
    "prefix_end",
    "pan_lengths",
    "luhn",
    "network",
    "brand",
    "card_type",
    "prepaid",
    "category",
    "issuer_name",
    "issuer_url",
    "issuer_phone",
    "country",
    "co_badged",
    "regulated",
];
const PREFIX: usize = 0;
const PREFIX_END: usize = 1;
const PAN_LENGTHS: usize = 2;
const LUHN: usize = 3;
const NETWORK: usize = 4;
const BRAND: usize = 5;
const CARD_TYPE: usize = 6;
const PREPAID: usize = 7;
const CATEGORY: usize = 8;
const ISSUER_NAME: usize = 9;
const ISSUER_URL: usize = 10;
const ISSUER_PHONE: usize = 11;
const COUNTRY: usize = 12;
const CO_BADGED: usize = 13;
const REGULATED: usize = 14;

#[derive(Debug)]
pub(super) struct Columns(ColumnMap);

impl super::Columns for Columns {
    fn from_header(header: &csv::StringRecord) -> Result<Self, String> {
        ColumnMap::new(header, &HEADER, &["prefix"]).map(Self)
    }

    fn row(&self, row: &csv::StringRecord, strings: &mut Strings) -> Result<BinRow, RowError> {
        let map = &self.0;
        map.check_width(row)?;
        let field = |i| map.get(row, i);
        let (first, last) = fields::prefix_range(field(PREFIX), field(PREFIX_END))?;
        let network = match field(NETWORK) {
            "" => None,
            slug => Some(CardNetwork::from_slug(slug).ok_or_else(|| {
                fields::value_error("network", slug, "a network name such as visa, mastercard, american-express, unionpay (docs/data-format.md)")
            })?),
        };
        let mut co_badged = fields::networks("co_badged", field(CO_BADGED))?;
        if let Some(network) = network {
            co_badged.remove(network);
        }
        let record = BinRecord {
            network,
            co_badged,
            brand: strings.string(field(BRAND)),
            card_type: fields::card_type("card_type", field(CARD_TYPE))?,
            prepaid: fields::yes_no("prepaid", field(PREPAID))?,
            category: strings.string(field(CATEGORY)),
            issuer: Issuer {
                name: strings.string(field(ISSUER_NAME)),
                url: strings.string(field(ISSUER_URL)),
                phone: strings.string(field(ISSUER_PHONE)),
            },
            country: fields::country("country", field(COUNTRY))?,
            rules: IssuerRules {
                lengths: fields::lengths("pan_lengths", field(PAN_LENGTHS))?,
                luhn: fields::yes_no("luhn", field(LUHN))?,
            },
            regulated: fields::regimes("regulated", field(REGULATED))?,
            regulations: Regulations::default(),
        };
        Ok(BinRow {
            first,
            last,
            record,
        })
    }
}

/// Writes rows in this schema, header first.
///
/// # Errors
/// When writing fails.
pub fn write<'a>(
    output: impl Write,
    rows: impl IntoIterator<Item = (Prefix, Prefix, &'a BinRecord)>,
) -> csv::Result<()> {
    let mut writer = csv::Writer::from_writer(output);
    writer.write_record(HEADER)?;
    for (first, last, record) in rows {
        let optional = |value: Option<bool>| value.map(|v| v.to_string()).unwrap_or_default();
        writer.write_record([
            first.to_text(),
            if first == last {
                String::new()
            } else {
                last.to_text()
            },
            record
                .rules
                .lengths
                .map(|l| l.to_string())
                .unwrap_or_default(),
            optional(record.rules.luhn),
            record
                .network
                .map(|n| n.slug().to_owned())
                .unwrap_or_default(),
            record.brand.to_string(),
            match record.card_type {
                None => "",
                Some(CardType::Debit) => "debit",
                Some(CardType::Credit) => "credit",
                Some(CardType::Charge) => "charge",
            }
            .to_owned(),
            optional(record.prepaid),
            record.category.to_string(),
            record.issuer.name.to_string(),
            record.issuer.url.to_string(),
            record.issuer.phone.to_string(),
            record
                .country
                .map(|c| c.alpha2.to_owned())
                .unwrap_or_default(),
            record
                .co_badged
                .iter()
                .map(CardNetwork::slug)
                .collect::<Vec<_>>()
                .join(";"),
            record
                .regulated
                .map(|regimes| regimes.to_string())
                .unwrap_or_default(),
        ])?;
    }
    writer.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::{Format, RowError, read};
    use super::*;

    const TABLE: &str = "\
prefix,prefix_end,pan_lengths,luhn,network,brand,card_type,prepaid,category,issuer_name,issuer_url,issuer_phone,country,co_badged,regulated
45710040,45710045,16;19,true,visa,VISA,debit,false,CLASSIC,EXAMPLE BANK,https://bank.example,+44 20 0000 0000,GB,dankort;visa,none
622848,,,false,unionpay,CHINA UNION PAY,credit,,,,,,CN,,
41111111,,,,visa,VISA,debit,,,,,,US,star;pulse,us-durbin;eu-ifr
";

    fn rows(table: &str) -> (super::super::TableReport, Vec<BinRow>) {
        super::super::read_table(table, None).unwrap()
    }

    #[test]
    fn reads_ranges_rules_and_every_field() {
        let (report, rows) = rows(TABLE);
        assert_eq!(
            (report.format, report.rows, report.bad_rows),
            (Format::CardLookup, 3, 0)
        );
        let range = &rows[0];
        assert_eq!(
            (range.first.to_text(), range.last.to_text()),
            ("45710040".into(), "45710045".into())
        );
        assert_eq!(range.record.rules.lengths.unwrap().to_string(), "16;19");
        assert_eq!(range.record.rules.luhn, Some(true));
        assert_eq!(range.record.prepaid, Some(false));
        assert_eq!(range.record.country.unwrap().alpha3, "GBR");
        assert_eq!(rows[1].first, rows[1].last);
        assert_eq!(rows[1].record.rules.luhn, Some(false));
        // The network itself is never co-badged with itself.
        assert_eq!(
            range.record.co_badged.iter().collect::<Vec<_>>(),
            [CardNetwork::Dankort]
        );
        assert_eq!(range.record.regulated.unwrap().to_string(), "none");
        assert_eq!(
            (rows[1].record.co_badged.len(), rows[1].record.regulated),
            (0, None)
        );
        assert_eq!(
            rows[2].record.co_badged.iter().collect::<Vec<_>>(),
            [CardNetwork::Star, CardNetwork::Pulse]
        );
        assert_eq!(
            rows[2].record.regulated.unwrap().to_string(),
            "eu-ifr;us-durbin"
        );
    }

    #[test]
    fn writes_what_it_reads() {
        let (_, read_rows) = rows(TABLE);
        let mut out = Vec::new();
        write(
            &mut out,
            read_rows.iter().map(|r| (r.first, r.last, &r.record)),
        )
        .unwrap();
        let (_, again) = rows(std::str::from_utf8(&out).unwrap());
        assert_eq!(again, read_rows);
    }

    #[test]
    fn checks_every_field() {
        let bad = [
            ("45710045,45710040", RowError::RangeOrder),
            ("4571004,45710045", RowError::RangeOrder),
        ];
        for (range, expected) in bad {
            let table = format!("prefix,prefix_end\n{range}\n");
            assert_eq!(rows(&table).0.problems[0].reason, expected);
        }
        let columns = |header: &str, row: &str| {
            let (report, _) = rows(&format!("{header}\n{row}\n"));
            report.problems[0].reason.clone()
        };
        assert!(matches!(
            columns("prefix,network", "411111,visa-ish"),
            RowError::Value {
                column: "network",
                ..
            }
        ));
        assert!(matches!(
            columns("prefix,pan_lengths", "411111,20"),
            RowError::Lengths { .. }
        ));
        assert!(matches!(
            columns("prefix,luhn", "411111,maybe"),
            RowError::Value { column: "luhn", .. }
        ));
        assert!(matches!(
            columns("prefix,country", "411111,ZZ"),
            RowError::Country { column: "country" }
        ));
        assert!(matches!(
            columns("prefix,co_badged", "411111,dankort;carte-blanche"),
            RowError::Value {
                column: "co_badged",
                ..
            }
        ));
        assert!(matches!(
            columns("prefix,regulated", "411111,durbin"),
            RowError::Value {
                column: "regulated",
                ..
            }
        ));
    }

    #[test]
    fn a_misspelt_column_is_refused() {
        let result = read(
            "prefix,isuer_name\n411111,X\n".as_bytes(),
            None,
            &mut Strings::default(),
            |_| {},
        );
        let err = result.unwrap_err().to_string();
        assert!(err.contains("unknown column `isuer_name`"), "{err}");
    }
}
