//! `card-lookup validate --file`: a file of numbers (or standard input), streamed, one line per
//! number, a summary, and no whole number in the output unless `--unmasked` asks for it.

use std::io::Write;
use std::process::{Command, Stdio};

use crate::common::{TempDir, leaked_pans};
use serde_json::Value;

const BINARY: &str = env!("CARGO_BIN_EXE_card-lookup");

/// Eight numbers, one blank line (line 3): 4 valid, 4 invalid for 4 different reasons.
const NUMBERS: &str = "4111 1111 1111 1111\n\
                       5555-5555-5555-4444\n\
                       \n\
                       378282246310005\n\
                       4111111111111112\n\
                       9999819999999995\n\
                       4111x\n\
                       6011111111111117\n\
                       4111\n";

const PANS: [&str; 6] = [
    "4111111111111111",
    "5555555555554444",
    "378282246310005",
    "4111111111111112",
    "9999819999999995",
    "6011111111111117",
];

struct Run {
    code: Option<i32>,
    out: String,
    err: String,
}

fn run(args: &[&str], input: Option<&str>) -> Run {
    let mut child = Command::new(BINARY)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    // Written from another thread: the output is read meanwhile, or both pipes could fill.
    let mut stdin = child.stdin.take().unwrap();
    let input = input.unwrap_or_default().to_owned();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(input.as_bytes());
    });
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap();
    Run {
        code: output.status.code(),
        out: String::from_utf8_lossy(&output.stdout).into_owned(),
        err: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn numbers_file(dir: &TempDir) -> String {
    dir.write("numbers.txt", NUMBERS)
        .to_str()
        .unwrap()
        .to_owned()
}

#[test]
fn one_masked_line_per_number_and_a_summary() {
    let dir = TempDir::new("cli-file");
    let run = run(&["validate", "--file", &numbers_file(&dir)], None);
    assert_eq!(run.code, Some(1), "{}{}", run.out, run.err);
    let lines: Vec<&str> = run.out.lines().collect();
    assert_eq!(
        lines[..9],
        [
            "  line  number               valid  network           reason",
            "     1  ************1111     yes    Visa",
            "     2  ************4444     yes    Mastercard",
            "     4  ***********0005      yes    American Express",
            "     5  ************1112     no     Visa              the check digit is wrong",
            "     6  ************9995     no     -                 the leading digits match no known card network",
            "     7  -                    no     -                 only digits, spaces and dashes are allowed",
            "     8  ************1117     yes    Discover",
            "     9  ****                 no     Visa              too few digits for a card number of this network",
        ],
        "{}",
        run.out
    );
    assert_eq!(
        lines[9..],
        [
            "",
            "summary: 8 numbers, 4 valid, 4 invalid",
            "valid by network: Visa 1, Mastercard 1, American Express 1, Discover 1",
            "invalid by reason: Luhn check failed 1, not digits 1, too short 1, unknown network 1",
        ],
        "{}",
        run.out
    );
    // Standard error is not a terminal here: no progress bar, nothing at all.
    assert_eq!(run.err, "");
    let leaked = leaked_pans(&run.out, &PANS);
    assert!(leaked.is_empty(), "leaked {leaked:?}");
}

#[test]
fn json_lines_and_a_summary_object() {
    let dir = TempDir::new("cli-file-json");
    let run = run(&["validate", "--json", "--file", &numbers_file(&dir)], None);
    assert_eq!(run.code, Some(1), "{}{}", run.out, run.err);
    let objects: Vec<Value> = run
        .out
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect();
    assert_eq!(objects.len(), 9, "{}", run.out);
    let first = &objects[0];
    assert_eq!(first["line"], 1);
    assert_eq!(first["masked_number"], "************1111");
    assert_eq!(first["valid"], true);
    assert_eq!(first["network"], "visa");
    assert_eq!(first["failure"], Value::Null);
    assert!(first.get("number").is_none(), "{first}");
    assert_eq!(objects[3]["line"], 5);
    assert_eq!(objects[3]["failure"], "luhn-failed");
    assert_eq!(
        objects[8],
        serde_json::json!({"summary": {
            "numbers": 8,
            "valid": 4,
            "invalid": 4,
            "networks": {"visa": 1, "mastercard": 1, "american-express": 1, "discover": 1},
            "reasons": {"luhn-failed": 1, "non-digit": 1, "too-short": 1, "unknown-network": 1},
        }})
    );
    let leaked = leaked_pans(&run.out, &PANS);
    assert!(leaked.is_empty(), "leaked {leaked:?}");
}

#[test]
fn unmasked_prints_whole_numbers_only_when_asked() {
    let dir = TempDir::new("cli-file-unmasked");
    let file = numbers_file(&dir);
    let human = run(&["validate", "--unmasked", "--file", &file], None);
    assert_eq!(human.code, Some(1));
    assert!(
        human
            .out
            .contains("     1  4111 1111 1111 1111  yes    Visa\n"),
        "{}",
        human.out
    );
    assert!(
        human.out.contains("     2  5555-5555-5555-4444  yes"),
        "{}",
        human.out
    );
    // The numbers written without separators are there whole too.
    assert_eq!(leaked_pans(&human.out, &PANS[2..]), PANS[2..]);

    let json = run(&["validate", "--unmasked", "--json", "--file", &file], None);
    let first: Value = serde_json::from_str(json.out.lines().next().unwrap()).unwrap();
    assert_eq!(first["number"], "4111 1111 1111 1111");
    assert_eq!(first["masked_number"], "************1111");
}

#[test]
fn a_dash_reads_standard_input() {
    let run = run(&["validate", "--json", "--file", "-"], Some(NUMBERS));
    assert_eq!(run.code, Some(1), "{}{}", run.out, run.err);
    let summary: Value = serde_json::from_str(run.out.lines().last().unwrap()).unwrap();
    assert_eq!(summary["summary"]["numbers"], 8);
    assert_eq!(summary["summary"]["valid"], 4);
    assert!(leaked_pans(&run.out, &PANS).is_empty());
}

#[test]
fn exit_0_when_every_number_is_valid_and_for_an_empty_file() {
    let valid = run(
        &["validate", "--file", "-"],
        Some("4111111111111111\n5555555555554444\r\n"),
    );
    assert_eq!(valid.code, Some(0), "{}{}", valid.out, valid.err);
    assert!(
        valid.out.contains("summary: 2 numbers, 2 valid, 0 invalid"),
        "{}",
        valid.out
    );
    assert!(
        valid.out.contains("invalid by reason: none"),
        "{}",
        valid.out
    );

    let empty = run(&["validate", "--file", "-"], Some(""));
    assert_eq!(empty.code, Some(0), "{}{}", empty.out, empty.err);
    assert!(
        empty.out.contains("summary: 0 numbers, 0 valid, 0 invalid"),
        "{}",
        empty.out
    );
}

#[test]
fn a_line_without_end_is_cut_and_the_file_goes_on() {
    let mut input = "4".repeat(200_000);
    input.push_str("\n4111111111111111\n");
    let run = run(&["validate", "--json", "--file", "-"], Some(&input));
    let objects: Vec<Value> = run
        .out
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(objects.len(), 3, "{}", run.out);
    assert_eq!(objects[0]["failure"], "too-long");
    assert_eq!(objects[1]["line"], 2);
    assert_eq!(objects[1]["valid"], true);
}

#[test]
fn many_numbers_stream_through() {
    let mut input = String::new();
    for i in 0..20_000u32 {
        // Alternately valid (the test numbers) and failing Luhn.
        input.push_str(if i % 2 == 0 {
            "4111111111111111\n"
        } else {
            "4111111111111112\n"
        });
    }
    let run = run(&["validate", "--file", "-"], Some(&input));
    assert_eq!(run.code, Some(1));
    assert!(
        run.out
            .contains("summary: 20000 numbers, 10000 valid, 10000 invalid"),
        "{}",
        run.out.lines().last().unwrap_or_default()
    );
    assert!(run.out.contains("valid by network: Visa 10000\n"));
}

#[test]
fn a_missing_file_exits_2() {
    let run = run(&["validate", "--file", "/nonexistent/numbers.txt"], None);
    assert_eq!(run.code, Some(2));
    assert!(
        run.err
            .starts_with("card-lookup: /nonexistent/numbers.txt: "),
        "{}",
        run.err
    );
}
