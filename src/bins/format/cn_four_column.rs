//! The four-column table that Chinese payment teams keep: `BIN,BankName,CardType,CardOrg`,
//! for example `622848,中国农业银行,借记卡,银联`. UTF-8; names are kept as given.
//!
//! CardType: 借记卡 debit, 信用卡 credit, 准贷记卡 quasi-credit (a charge-style card),
//! 预付卡 prepaid. CardOrg names the network: 银联 UnionPay, or Visa, MasterCard, JCB,
//! 美国运通 / American Express, 大来 / Diners Club, 发现 / Discover. The table says nothing of
//! the country, so none is given.

use crate::bins::record::{BinRecord, CardType, Issuer, Strings};
use crate::bins::regime::Regulations;
use crate::card::{CardNetwork, IssuerRules, NetworkSet};

use super::fields::{self, ColumnMap};
use super::{BinRow, RowError};

const NAMES: [&str; 4] = ["bin", "bankname", "cardtype", "cardorg"];
const BIN: usize = 0;
const BANK: usize = 1;
const CARD_TYPE: usize = 2;
const CARD_ORG: usize = 3;

#[derive(Debug)]
pub(super) struct Columns(ColumnMap);

impl super::Columns for Columns {
    fn from_header(header: &csv::StringRecord) -> Result<Self, String> {
        ColumnMap::new(header, &NAMES, &NAMES).map(Self)
    }

    fn row(&self, row: &csv::StringRecord, strings: &mut Strings) -> Result<BinRow, RowError> {
        let map = &self.0;
        map.check_width(row)?;
        let field = |i| map.get(row, i);
        let (first, last) = fields::prefix_range(field(BIN), "")?;
        let (card_type, prepaid) = match field(CARD_TYPE) {
            "借记卡" => (Some(CardType::Debit), Some(false)),
            "信用卡" => (Some(CardType::Credit), Some(false)),
            "准贷记卡" => (Some(CardType::Charge), Some(false)),
            "预付卡" => (None, Some(true)),
            "" => (None, None),
            other => {
                return Err(fields::value_error(
                    "CardType",
                    other,
                    "借记卡, 信用卡, 准贷记卡, 预付卡 or empty",
                ));
            }
        };
        let organisation = field(CARD_ORG);
        let network = match organisation {
            "银联" | "中国银联" => Some(CardNetwork::UnionPay),
            "美国运通" => Some(CardNetwork::AmericanExpress),
            "大来" => Some(CardNetwork::DinersClub),
            "发现" => Some(CardNetwork::Discover),
            "万事达" => Some(CardNetwork::Mastercard),
            "" => None,
            other => Some(CardNetwork::from_brand(other).ok_or_else(|| {
                fields::value_error(
                    "CardOrg",
                    other,
                    "银联, Visa, MasterCard, JCB, 美国运通, 大来, 发现 or empty",
                )
            })?),
        };
        let record = BinRecord {
            network,
            co_badged: NetworkSet::empty(),
            brand: strings.string(organisation),
            card_type,
            prepaid,
            category: strings.string(""),
            issuer: Issuer {
                name: strings.string(field(BANK)),
                ..Issuer::default()
            },
            country: None,
            rules: IssuerRules::default(),
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
    fn reads_the_four_columns() {
        let table = "BIN,BankName,CardType,CardOrg\n\
                     622848,中国农业银行,借记卡,银联\n\
                     404119,交通银行,信用卡,Visa\n\
                     622575,招商银行,准贷记卡,银联\n\
                     623456,某银行,预付卡,银联\n";
        let (report, rows) = read_table(table, None).unwrap();
        assert_eq!(
            (report.format, report.rows, report.bad_rows),
            (Format::CnFourColumn, 4, 0)
        );
        let abc = &rows[0].record;
        assert_eq!(&*abc.issuer.name, "中国农业银行");
        assert_eq!(abc.network, Some(CardNetwork::UnionPay));
        assert_eq!(&*abc.brand, "银联");
        assert_eq!(abc.card_type, Some(CardType::Debit));
        let bocom = &rows[1].record;
        assert_eq!(
            (bocom.network, bocom.card_type),
            (Some(CardNetwork::Visa), Some(CardType::Credit))
        );
        assert_eq!(rows[2].record.card_type, Some(CardType::Charge));
        assert_eq!(
            (rows[3].record.card_type, rows[3].record.prepaid),
            (None, Some(true))
        );
    }

    #[test]
    fn unknown_values_are_refused_by_column() {
        let table = "BIN,BankName,CardType,CardOrg\n622848,中国农业银行,储蓄卡,银联\n622849,中国农业银行,借记卡,火星卡\n";
        let report = read(table.as_bytes(), None, &mut Strings::default(), |_| {}).unwrap();
        assert_eq!(report.bad_rows, 2);
        assert!(
            matches!(&report.problems[0].reason, RowError::Value { column: "CardType", value, .. } if value == "储蓄卡")
        );
        assert!(matches!(
            &report.problems[1].reason,
            RowError::Value {
                column: "CardOrg",
                ..
            }
        ));
    }
}
