//! `card-lookup validate`, `lookup` and `mask` offline (the embedded data, `--bin-data`), run
//! as a person or a shell script runs them: exit codes, human and JSON output, and never a
//! whole card number in the output.

use std::io::Write;
use std::process::{Command, Stdio};

use crate::common::{TempDir, leaked_pans};
use serde_json::Value;

const BINARY: &str = env!("CARGO_BIN_EXE_card-lookup");

/// A binlist ranges.csv row: the 8-digit BINs 45710040 to 45710045, whose issuer issues
/// 16-digit numbers without a Luhn check digit.
const RANGES: &str = "iin_start,iin_end,number_length,number_luhn,scheme,brand,type,prepaid,\
                      country,bank_name,bank_logo,bank_url,bank_phone,bank_city\n\
                      45710040,45710045,16,N,VISA,Visa Classic,DEBIT,N,DK,JYSKE BANK,,,,\n";

struct Run {
    code: Option<i32>,
    out: String,
    err: String,
}

impl Run {
    fn json(&self) -> Value {
        assert_eq!(self.out.lines().count(), 1, "one JSON line: {}", self.out);
        serde_json::from_str(&self.out).expect("JSON output")
    }

    /// Fails the test if the output shows any of `pans` whole.
    #[track_caller]
    fn assert_no_leak(&self, pans: &[&str]) {
        let leaked = leaked_pans(&format!("{}{}", self.out, self.err), pans);
        assert!(
            leaked.is_empty(),
            "leaked {leaked:?}: {}{}",
            self.out,
            self.err
        );
    }
}

fn run(args: &[&str]) -> Run {
    run_with_input(args, None)
}

fn run_with_input(args: &[&str], input: Option<&str>) -> Run {
    let mut child = Command::new(BINARY)
        .args(args)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    if let Some(input) = input {
        // Short input: it fits in the pipe, so the output need not be read meanwhile.
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(input.as_bytes()).unwrap();
    }
    let output = child.wait_with_output().unwrap();
    Run {
        code: output.status.code(),
        out: String::from_utf8_lossy(&output.stdout).into_owned(),
        err: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

#[test]
fn validate_a_valid_number_exits_0_and_shows_it_masked() {
    let run = run(&["validate", "4111", "1111", "1111", "1111"]);
    assert_eq!(run.code, Some(0), "{}{}", run.out, run.err);
    for line in [
        "number:      ************1111",
        "valid:       yes",
        "network:     Visa",
        "length:      16 digits (valid: 13, 16, 18, 19)",
        "luhn:        passes",
    ] {
        assert!(run.out.contains(line), "{line:?} in\n{}", run.out);
    }
    assert!(!run.out.contains("reason:"), "{}", run.out);
    assert_eq!(run.err, "");
    run.assert_no_leak(&["4111111111111111"]);
}

#[test]
fn validate_an_invalid_number_exits_1_with_the_reason_in_words() {
    let run = run(&["validate", "4111-1111-1111-1112"]);
    assert_eq!(run.code, Some(1), "{}{}", run.out, run.err);
    assert!(run.out.contains("valid:       no"), "{}", run.out);
    assert!(
        run.out.contains("reason:      the check digit is wrong"),
        "{}",
        run.out
    );
    assert!(
        run.out.contains("number:      ************1112"),
        "{}",
        run.out
    );
    run.assert_no_leak(&["4111111111111112"]);

    let partial = self::run(&["validate", "4111"]);
    assert_eq!(partial.code, Some(1));
    assert!(
        partial
            .out
            .contains("reason:      too few digits for a card number of this network"),
        "{}",
        partial.out
    );
    assert!(
        partial.out.contains("more digits: could make it valid"),
        "{}",
        partial.out
    );
}

#[test]
fn validate_json_is_one_object_for_scripts() {
    let valid = run(&["validate", "--json", "5555 5555 5555 4444"]);
    assert_eq!(valid.code, Some(0), "{}{}", valid.out, valid.err);
    let answer = valid.json();
    assert_eq!(answer["valid"], true);
    assert_eq!(answer["network"], "mastercard");
    assert_eq!(answer["masked_number"], "************4444");
    assert_eq!(answer["failure"], Value::Null);
    assert_eq!(answer["luhn_valid"], true);
    assert_eq!(answer["digit_count"], 16);
    assert_eq!(answer["network_lengths"], serde_json::json!([16]));
    valid.assert_no_leak(&["5555555555554444"]);

    let unknown = run(&["validate", "--json", "9999819999999995"]);
    assert_eq!(unknown.code, Some(1));
    let answer = unknown.json();
    assert_eq!(answer["valid"], false);
    assert_eq!(answer["network"], Value::Null);
    assert_eq!(answer["failure"], "unknown-network");
    assert_eq!(
        answer["failure_message"],
        "the leading digits match no known card network"
    );

    let letters = run(&["validate", "--json", "4111x"]);
    assert_eq!(letters.code, Some(1));
    assert_eq!(letters.json()["failure"], "non-digit");
}

#[test]
fn a_dash_reads_the_number_from_standard_input() {
    let run = run_with_input(&["validate", "-"], Some("4111 1111 1111 1111\n"));
    assert_eq!(run.code, Some(0), "{}{}", run.out, run.err);
    assert!(run.out.contains("valid:       yes"), "{}", run.out);

    let masked = run_with_input(&["mask", "--json", "-"], Some("378282246310005\n"));
    assert_eq!(masked.code, Some(0), "{}{}", masked.out, masked.err);
    assert_eq!(masked.json()["masked"], "***********0005");
}

#[test]
fn validate_applies_the_issuer_rules_of_bin_data_files() {
    let dir = TempDir::new("cli-rules");
    let ranges = dir.write("ranges.csv", RANGES);
    // 16 digits in the issuer's range that fail the Luhn check: the issuer does not use it.
    let number = "4571004212345678";
    let with_rules = run(&["validate", "--bin-data", ranges.to_str().unwrap(), number]);
    assert_eq!(
        with_rules.code,
        Some(0),
        "{}{}",
        with_rules.out,
        with_rules.err
    );
    assert!(
        with_rules.out.contains("luhn:        fails (not required)"),
        "{}",
        with_rules.out
    );
    assert!(
        with_rules
            .out
            .contains("length:      16 digits (valid: 16)"),
        "{}",
        with_rules.out
    );
    let without = run(&["validate", number]);
    assert_eq!(without.code, Some(1), "{}", without.out);
}

#[test]
fn lookup_prints_the_issuer_and_exits_0_when_found() {
    let run = run(&["lookup", "622848"]);
    assert_eq!(run.code, Some(0), "{}{}", run.out, run.err);
    for line in [
        "found:    yes",
        "bin:      622848",
        "network:  UnionPay",
        "brand:    CHINA UNION PAY",
        "type:     debit",
        "prepaid:  no",
        "level:    STANDARD",
        "issuer:   AGRICULTURAL BANK OF CHINA (http://www.abchina.com, 95599)",
        "country:  China (CN)",
        "data:     sha256:",
    ] {
        assert!(run.out.contains(line), "{line:?} in\n{}", run.out);
    }
}

#[test]
fn lookup_json_has_every_field() {
    let run = run(&["lookup", "--json", "622848"]);
    assert_eq!(run.code, Some(0), "{}{}", run.out, run.err);
    let answer = run.json();
    assert_eq!(answer["found"], true);
    assert_eq!(answer["bin"], "622848");
    assert_eq!(answer["network"], "unionpay");
    assert_eq!(answer["brand"], "CHINA UNION PAY");
    assert_eq!(answer["card_type"], "debit");
    assert_eq!(answer["prepaid"], false);
    assert_eq!(answer["level"], "STANDARD");
    assert_eq!(answer["issuer"]["name"], "AGRICULTURAL BANK OF CHINA");
    assert_eq!(answer["issuer"]["phone"], "95599");
    assert_eq!(answer["country"]["alpha2"], "CN");
    assert_eq!(answer["country"]["alpha3"], "CHN");
    assert_eq!(answer["country"]["numeric"], "156");
    assert!(
        answer["dataset_version"]
            .as_str()
            .unwrap()
            .starts_with("sha256:")
    );
}

#[test]
fn lookup_shows_co_badged_networks_and_regulations() {
    // 457100: VISA/DANKORT, consumer debit, DK.
    let human = run(&["lookup", "457100"]);
    assert_eq!(human.code, Some(0), "{}{}", human.out, human.err);
    for line in [
        "network:  Visa",
        "co-badge: Dankort",
        "regime:   EU IFR: consumer debit card issued in DK (interchange capped at 0.2%)",
    ] {
        assert!(human.out.contains(line), "{line:?} in\n{}", human.out);
    }
    let json = run(&["lookup", "--json", "457100"]).json();
    assert_eq!(json["co_badged_networks"], serde_json::json!(["dankort"]));
    assert_eq!(json["regulations"][0]["regime"], "eu-ifr");
    assert_eq!(
        json["regulations"][0]["reason"],
        "EU IFR: consumer debit card issued in DK (interchange capped at 0.2%)"
    );
    // 408253: a German business card: no regime, and no co-badge.
    let business = run(&["lookup", "408253"]);
    assert!(
        business.out.contains("regime:   none known"),
        "{}",
        business.out
    );
    assert!(!business.out.contains("co-badge"), "{}", business.out);
    let json = run(&["lookup", "--json", "408253"]).json();
    assert_eq!(json["co_badged_networks"], serde_json::json!([]));
    assert_eq!(json["regulations"], serde_json::json!([]));
}

#[test]
fn lookup_of_an_unknown_bin_exits_1() {
    let human = run(&["lookup", "000000"]);
    assert_eq!(human.code, Some(1), "{}{}", human.out, human.err);
    assert!(human.out.contains("found:    no"), "{}", human.out);

    let json = run(&["lookup", "--json", "000000"]);
    assert_eq!(json.code, Some(1));
    let answer = json.json();
    assert_eq!(answer["found"], false);
    assert_eq!(answer["bin"], Value::Null);
    assert_eq!(answer["country"], Value::Null);
}

#[test]
fn lookup_of_a_whole_number_prints_only_its_bin() {
    let run = run(&["lookup", "6228 4800 0000 0000 004"]);
    assert_eq!(run.code, Some(0), "{}{}", run.out, run.err);
    assert!(run.out.contains("bin:      622848"), "{}", run.out);
    run.assert_no_leak(&["6228480000000000004"]);
}

#[test]
fn lookup_matches_ranges_of_8_digit_bins_from_bin_data_files() {
    let dir = TempDir::new("cli-lookup-ranges");
    let ranges = dir.write("ranges.csv", RANGES);
    let path = ranges.to_str().unwrap();
    let run = run(&["lookup", "--json", "--bin-data", path, "45710042"]);
    assert_eq!(run.code, Some(0), "{}{}", run.out, run.err);
    let answer = run.json();
    assert_eq!(answer["bin"], "45710042");
    assert_eq!(answer["issuer"]["name"], "JYSKE BANK");
    assert_eq!(answer["country"]["alpha2"], "DK");

    // Only the file: the embedded data's 411111 is not there.
    let only = self::run(&["lookup", "--no-default-data", "--bin-data", path, "411111"]);
    assert_eq!(only.code, Some(1), "{}{}", only.out, only.err);

    let missing = self::run(&["lookup", "--bin-data", "/nonexistent/bins.csv", "411111"]);
    assert_eq!(missing.code, Some(2));
    assert!(
        missing.err.contains("cannot load BIN data"),
        "{}",
        missing.err
    );
}

#[test]
fn lookup_of_fewer_than_six_digits_is_refused_with_exit_2() {
    let run = run(&["lookup", "12345"]);
    assert_eq!(run.code, Some(2), "{}{}", run.out, run.err);
    assert_eq!(run.out, "");
    assert!(
        run.err
            .contains("number: 5 digits; LookupBin needs at least 6 (a BIN)"),
        "{}",
        run.err
    );
}

#[test]
fn mask_styles_characters_and_grouping() {
    let default = run(&["mask", "4111111111111111"]);
    assert_eq!(default.code, Some(0), "{}{}", default.out, default.err);
    assert_eq!(
        default.out, "masked:   ************1111\nnetwork:  Visa\n",
        "{}",
        default.out
    );

    let grouped = run(&[
        "mask",
        "--style",
        "bin-and-last-four",
        "--grouping",
        "4111111111111111",
    ]);
    assert_eq!(grouped.code, Some(0));
    assert!(
        grouped.out.contains("masked:   4111 11** **** 1111"),
        "{}",
        grouped.out
    );

    let all = run(&[
        "mask",
        "--json",
        "--style",
        "all",
        "--mask-char",
        "#",
        "378282246310005",
    ]);
    assert_eq!(all.code, Some(0));
    let answer = all.json();
    assert_eq!(answer["masked"], "###############");
    assert_eq!(answer["network"], "american-express");

    for leaky in [&default, &grouped, &all] {
        leaky.assert_no_leak(&["4111111111111111", "378282246310005"]);
    }
}

#[test]
fn mask_shows_eight_leading_digits_only_for_an_eight_digit_bin() {
    let dir = TempDir::new("cli-mask-ranges");
    let ranges = dir.write("ranges.csv", RANGES);
    let args = ["mask", "--style", "bin-and-last-four", "4571004212345678"];
    let six = run(&args);
    assert!(
        six.out.contains("masked:   457100******5678"),
        "{}",
        six.out
    );
    let mut with_data = args.to_vec();
    with_data.extend(["--bin-data", ranges.to_str().unwrap()]);
    let eight = run(&with_data);
    assert!(
        eight.out.contains("masked:   45710042****5678"),
        "{}",
        eight.out
    );
}

#[test]
fn mask_refuses_what_is_not_a_card_number_with_exit_2() {
    let short = run(&["mask", "4111 1111"]);
    assert_eq!(short.code, Some(2), "{}{}", short.out, short.err);
    assert!(
        short
            .err
            .contains("number: 8 digits; a card number has 12 to 19"),
        "{}",
        short.err
    );

    let digit = run(&["mask", "--mask-char", "7", "4111111111111111"]);
    assert_eq!(digit.code, Some(2));
    assert!(digit.err.contains("--mask-char"), "{}", digit.err);
    digit.assert_no_leak(&["4111111111111111"]);
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        &["validate"][..],
        &["lookup"],
        &["mask"],
        &["validate", "--unmasked", "4111111111111111"],
        &["validate", "--file", "numbers.txt", "4111111111111111"],
        &["mask", "--style", "first-four", "4111111111111111"],
        &["lookup", "--ca-cert", "ca.pem", "411111"],
        &[
            "lookup",
            "--server",
            "http://127.0.0.1:1",
            "--bin-data",
            "bins.csv",
            "411111",
        ],
        &[
            "validate",
            "--server",
            "ftp://127.0.0.1:1",
            "4111111111111111",
        ],
        &["validate", "--timeout", "soon", "4111111111111111"],
    ] {
        let run = run(args);
        assert_eq!(run.code, Some(2), "{args:?}: {}{}", run.out, run.err);
        assert!(!run.err.is_empty(), "{args:?}: no message");
        run.assert_no_leak(&["4111111111111111"]);
    }
}

#[test]
fn https_without_a_ca_certificate_is_a_usage_error() {
    let run = run(&[
        "validate",
        "--server",
        "https://127.0.0.1:1",
        "4111111111111111",
    ]);
    assert_eq!(run.code, Some(2));
    assert!(run.err.contains("https needs --ca-cert"), "{}", run.err);
}

#[test]
fn offline_answers_carry_the_fingerprint_a_server_with_the_key_file_gives() {
    use crate::fingerprint::{SECRET_A, expected};
    let dir = TempDir::new("cli-fingerprint");
    let keys = dir.write("keys", &format!("k1 {SECRET_A}\n"));
    let keys = keys.to_str().unwrap();
    let want = expected("k1", SECRET_A, "5555555555554444");

    let validated = run(&[
        "validate",
        "--json",
        "--fingerprint-key-file",
        keys,
        "5555 5555 5555 4444",
    ]);
    assert_eq!(
        validated.code,
        Some(0),
        "{}{}",
        validated.out,
        validated.err
    );
    assert_eq!(validated.json()["fingerprint"], want.as_str());
    let masked = run(&["mask", "--fingerprint-key-file", keys, "5555555555554444"]);
    assert_eq!(masked.code, Some(0), "{}{}", masked.out, masked.err);
    assert!(
        masked.out.contains(&format!("fingerprint: {want}")),
        "{}",
        masked.out
    );
    masked.assert_no_leak(&["5555555555554444"]);
    assert_eq!(
        run(&["validate", "--json", "5555555555554444"]).json()["fingerprint"],
        Value::Null
    );

    let bad = dir.write("bad", &format!("k1 {}\n", &SECRET_A[..40]));
    let refused = run(&[
        "validate",
        "--fingerprint-key-file",
        bad.to_str().unwrap(),
        "5555555555554444",
    ]);
    assert_eq!(refused.code, Some(2), "{}{}", refused.out, refused.err);
    assert!(refused.err.contains("line 1"), "{}", refused.err);
    assert!(!refused.err.contains(&SECRET_A[..16]), "{}", refused.err);
}
