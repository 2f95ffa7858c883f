//! `card-lookup data check` and `card-lookup data convert`, run as an operator runs them.

use crate::common::{TempDir, run_binary as run};

#[test]
fn check_summarises_good_files_and_exits_zero() {
    let dir = TempDir::new("check-good");
    let cn = dir.write(
        "cn.csv",
        "BIN,BankName,CardType,CardOrg\n622848,中国农业银行,借记卡,银联\n404119,交通银行,信用卡,Visa\n",
    );
    let ranges = dir.write(
        "ranges.csv",
        "iin_start,iin_end,number_length,number_luhn,scheme,brand,type,prepaid,country,bank_name,bank_logo,bank_url,bank_phone,bank_city\n\
         45710040,45710045,16,Y,VISA,Visa Classic,DEBIT,N,DK,JYSKE BANK,,,,\n",
    );
    let (code, out, _) = run(&[
        "data",
        "check",
        cn.to_str().unwrap(),
        ranges.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("cn.csv: cn-four-column, 2 rows, 0 bad"),
        "{out}"
    );
    assert!(
        out.contains("ranges.csv: binlist-ranges, 1 rows, 0 bad"),
        "{out}"
    );
    assert!(out.contains("entries: 3 (1 ranges)"), "{out}");
    assert!(
        out.contains("prefixes by length: 6 digits: 2, 8 digits: 1"),
        "{out}"
    );
    assert!(out.contains("networks: visa 2, unionpay 1"), "{out}");
    assert!(out.contains("countries: (none) 2, DK 1"), "{out}");
    assert!(out.contains("problems: 0"), "{out}");
}

#[test]
fn check_lists_every_problem_with_its_line_and_exits_non_zero() {
    let dir = TempDir::new("check-bad");
    let bad = dir.write(
        "bad.csv",
        "BIN,BankName,CardType,CardOrg\n622848,A,借记卡,银联\n4111111111111111,B,借记卡,银联\n622849,C,储蓄卡,银联\n",
    );
    let unknown = dir.write("unknown.csv", "pan,name\n1,2\n");
    let (code, out, _) = run(&[
        "data",
        "check",
        bad.to_str().unwrap(),
        unknown.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("line 3: BIN has 16 digits"), "{out}");
    assert!(
        out.contains("line 4: CardType: `储蓄卡` is not one of"),
        "{out}"
    );
    assert!(
        out.contains("unknown.csv: the header matches no known format"),
        "{out}"
    );
    assert!(out.contains("problems: 3"), "{out}");
    assert!(
        !out.contains("4111111111111111"),
        "a card number was echoed: {out}"
    );
}

#[test]
fn convert_writes_the_merged_table_in_the_projects_schema() {
    let dir = TempDir::new("convert");
    let older = dir.write(
        "older.csv",
        "BIN,BankName,CardType,CardOrg\n622848,OLD,借记卡,银联\n622849,KEPT,借记卡,银联\n",
    );
    let newer = dir.write(
        "newer.csv",
        "BIN,BankName,CardType,CardOrg\n622848,NEW,信用卡,银联\n",
    );
    let output = dir.0.join("out.csv");
    let (code, _, err) = run(&[
        "data",
        "convert",
        older.to_str().unwrap(),
        newer.to_str().unwrap(),
        "--output",
        output.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(0), "{err}");
    let converted = std::fs::read_to_string(&output).unwrap();
    let lines: Vec<_> = converted.lines().collect();
    assert_eq!(
        lines,
        [
            "prefix,prefix_end,pan_lengths,luhn,network,brand,card_type,prepaid,category,issuer_name,issuer_url,issuer_phone,country,co_badged,regulated",
            "622848,,,,unionpay,银联,credit,false,,NEW,,,,,",
            "622849,,,,unionpay,银联,debit,false,,KEPT,,,,,",
        ]
    );
    // What convert writes, check reads back cleanly.
    let (code, out, _) = run(&["data", "check", output.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("cardlookup, 2 rows, 0 bad"), "{out}");
}

#[test]
fn convert_writes_co_badged_brands_and_the_operators_columns() {
    let dir = TempDir::new("convert-co-badged");
    let brands = dir.write(
        "brands.csv",
        "BIN,Brand,Type,Category,Issuer,IssuerPhone,IssuerUrl,isoCode2,isoCode3,CountryName\n\
         457100,VISA/DANKORT,DEBIT,CLASSIC,NORDEA,,,DK,DNK,DENMARK\n\
         680001,GIROCARD,DEBIT,,,,,DE,DEU,GERMANY\n",
    );
    let own = dir.write(
        "own.csv",
        "prefix,network,co_badged,regulated\n41111111,visa,star;pulse,us-durbin\n",
    );
    let output = dir.0.join("out.csv");
    let (code, _, err) = run(&[
        "data",
        "convert",
        brands.to_str().unwrap(),
        own.to_str().unwrap(),
        "--output",
        output.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(0), "{err}");
    let converted = std::fs::read_to_string(&output).unwrap();
    let lines: Vec<_> = converted.lines().skip(1).collect();
    assert_eq!(
        lines,
        [
            "457100,,,,visa,VISA/DANKORT,debit,false,CLASSIC,NORDEA,,,DK,dankort,",
            "680001,,,,,GIROCARD,debit,,,,,,DE,girocard,",
            "41111111,,,,visa,,,,,,,,,star;pulse,us-durbin",
        ]
    );
    let bad = dir.write(
        "bad.csv",
        "prefix,co_badged\n411111,dankort;carte-blanche\n",
    );
    let (code, out, _) = run(&["data", "check", bad.to_str().unwrap()]);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("co_badged: `carte-blanche` is not one of"),
        "{out}"
    );
}

#[test]
fn convert_refuses_a_bad_file_with_file_and_line() {
    let dir = TempDir::new("convert-bad");
    let bad = dir.write(
        "bad.csv",
        "BIN,BankName,CardType,CardOrg\n62x848,A,借记卡,银联\n",
    );
    let (code, out, err) = run(&["data", "convert", bad.to_str().unwrap()]);
    assert_eq!(code, Some(1));
    assert!(out.is_empty(), "{out}");
    assert!(
        err.contains("bad.csv: line 2: BIN must be digits only"),
        "{err}"
    );
}

#[test]
fn check_refuses_an_issuer_name_of_kilobytes_naming_its_line() {
    let dir = TempDir::new("check-long-name");
    let long = "B".repeat(4_096);
    let table = dir.write(
        "long.csv",
        &format!(
            "BIN,BankName,CardType,CardOrg\n622848,A,借记卡,银联\n622849,{long},借记卡,银联\n"
        ),
    );
    let (code, out, _) = run(&["data", "check", table.to_str().unwrap()]);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("line 3: issuer name longer than 200 bytes"),
        "{out}"
    );
    assert!(!out.contains(&long), "the name was echoed: {out}");
    // The server's load refuses the file the same way.
    let (code, _, err) = run(&["data", "convert", table.to_str().unwrap()]);
    assert_eq!(code, Some(1));
    assert!(
        err.contains("long.csv: line 3: issuer name longer than 200 bytes"),
        "{err}"
    );
}
