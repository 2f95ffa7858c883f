//! Validate against the card-number cases of other validators' public test suites
//! (`tests/conformance/<suite>/cases.tsv`, extracted by `tests/conformance/extract.py`): every
//! case agrees, or is listed with its reason in `tests/conformance/differences.tsv`, and every
//! listed difference is still one. docs/card-networks.md quotes the agreement this prints and
//! explains each reason.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use card_lookup::bins::validate_number;
use card_lookup::card::{CardNetwork, Validation};

use crate::common::EMBEDDED;

/// braintree's suite and at least three more, as issue 16 asks.
const MIN_SUITES: usize = 4;

fn conformance_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance")
}

/// One peer test case: what the peer asserts about one number, claim by claim.
struct Case {
    suite: String,
    number: String,
    /// `(column, expected)` for each column the peer says something about, in file order.
    claims: Vec<(&'static str, String)>,
}

/// The columns that carry a claim, in the order of cases.tsv.
const CLAIMS: [&str; 5] = [
    "valid",
    "network",
    "length_valid",
    "potentially_valid",
    "candidates",
];

const HEADER: &str =
    "number\tvalid\tnetwork\tlength_valid\tpotentially_valid\tcandidates\tpeer_brand\tsource";

fn read_suite(dir: &Path) -> Vec<Case> {
    let suite = dir.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        dir.join("LICENSE").is_file(),
        "{suite}: the peer's licence belongs in {}/LICENSE",
        dir.display()
    );
    let text = std::fs::read_to_string(dir.join("cases.tsv"))
        .unwrap_or_else(|e| panic!("{suite}/cases.tsv: {e}"));
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some(HEADER), "{suite}/cases.tsv header");
    lines
        .enumerate()
        .map(|(i, line)| {
            let fields: Vec<&str> = line.split('\t').collect();
            assert_eq!(fields.len(), 8, "{suite}/cases.tsv line {}", i + 2);
            let claims: Vec<_> = CLAIMS
                .iter()
                .zip(&fields[1..6])
                .filter(|(_, expected)| !expected.is_empty())
                .map(|(&column, expected)| (column, (*expected).to_owned()))
                .collect();
            assert!(
                !claims.is_empty() || !fields[6].is_empty(),
                "{suite}/cases.tsv line {}: no claim",
                i + 2
            );
            Case {
                suite: suite.clone(),
                number: fields[0].to_owned(),
                claims,
            }
        })
        .collect()
}

fn slug(network: Option<CardNetwork>) -> &'static str {
    network.map_or("unknown", CardNetwork::slug)
}

/// Our answer in a claim's terms, and whether it is what the peer expects.
fn ours(column: &str, expected: &str, v: &Validation) -> (String, bool) {
    let ours = match column {
        "valid" => v.valid.to_string(),
        "length_valid" => v.length_valid.to_string(),
        "potentially_valid" => v.potentially_valid.to_string(),
        "network" => slug(v.network).to_owned(),
        "candidates" => {
            let mut slugs: Vec<_> = v.candidates.iter().map(CardNetwork::slug).collect();
            slugs.sort_unstable();
            slugs.join(";")
        }
        other => unreachable!("no claim column {other}"),
    };
    let agrees = match expected.strip_prefix('!') {
        Some(not) if column == "network" => {
            assert!(CardNetwork::from_slug(not).is_some(), "no network {not}");
            ours != not
        }
        _ => ours == expected,
    };
    (ours, agrees)
}

fn claims_text(claims: impl Iterator<Item = (&'static str, String)>) -> String {
    claims
        .map(|(column, value)| format!("{column}={value}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A line of differences.tsv: a case we disagree with, and why.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Difference {
    suite: String,
    number: String,
    theirs: String,
    ours: String,
}

impl Difference {
    fn line(&self, reason: &str) -> String {
        format!(
            "{}\t{}\t{}\t{}\t{reason}",
            self.suite, self.number, self.theirs, self.ours
        )
    }
}

fn read_differences() -> BTreeMap<Difference, String> {
    let text = std::fs::read_to_string(conformance_dir().join("differences.tsv"))
        .expect("tests/conformance/differences.tsv");
    let mut listed = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        if i == 0 {
            assert_eq!(line, "suite\tnumber\ttheirs\tours\treason");
            continue;
        }
        let fields: Vec<&str> = line.split('\t').collect();
        assert_eq!(fields.len(), 5, "differences.tsv line {}", i + 1);
        let reason = fields[4];
        assert!(
            !reason.is_empty()
                && reason
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
            "differences.tsv line {}: the reason is a kebab-case key",
            i + 1
        );
        let difference = Difference {
            suite: fields[0].to_owned(),
            number: fields[1].to_owned(),
            theirs: fields[2].to_owned(),
            ours: fields[3].to_owned(),
        };
        assert!(
            listed.insert(difference, reason.to_owned()).is_none(),
            "differences.tsv line {} is listed twice",
            i + 1
        );
    }
    listed
}

fn suite_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<_> = std::fs::read_dir(conformance_dir())
        .expect("tests/conformance")
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.join("cases.tsv").is_file())
        .collect();
    dirs.sort();
    dirs
}

/// Validate's answer to `case` when it disagrees: the line differences.tsv should have.
fn difference(case: &Case, validation: &Validation) -> Option<Difference> {
    let answers: Vec<_> = case
        .claims
        .iter()
        .map(|(column, expected)| (*column, ours(column, expected, validation)))
        .collect();
    if answers.iter().all(|(_, (_, agrees))| *agrees) {
        return None;
    }
    Some(Difference {
        suite: case.suite.clone(),
        number: case.number.clone(),
        theirs: claims_text(case.claims.iter().cloned()),
        ours: claims_text(answers.into_iter().map(|(c, (ours, _))| (c, ours))),
    })
}

/// The differences found, held against the listed ones.
struct Findings {
    /// Listed and not found (yet).
    listed: BTreeMap<Difference, String>,
    unlisted: Vec<String>,
    /// (listed line, line with our answer now) where only our answer changed.
    changed: Vec<(String, String)>,
}

impl Findings {
    fn record(&mut self, found: &Difference) {
        if self.listed.remove(found).is_some() {
            return;
        }
        // Listed with another answer of ours: the reason may no longer fit.
        let before = self
            .listed
            .iter()
            .find(|(d, _)| {
                (&d.suite, &d.number, &d.theirs) == (&found.suite, &found.number, &found.theirs)
            })
            .map(|(d, reason)| (d.clone(), reason.clone()));
        if let Some((old, reason)) = before {
            self.listed.remove(&old);
            self.changed.push((old.line(&reason), found.line(&reason)));
        } else {
            self.unlisted.push(found.line("REASON"));
        }
    }

    /// What is wrong with differences.tsv, with the lines to paste; empty when nothing is.
    fn problems(&self) -> String {
        let mut problems = String::new();
        if !self.unlisted.is_empty() {
            writeln!(
                problems,
                "differences not in tests/conformance/differences.tsv (add them, each with a reason):"
            )
            .unwrap();
            for line in &self.unlisted {
                writeln!(problems, "{line}").unwrap();
            }
        }
        for (old, new) in &self.changed {
            writeln!(
                problems,
                "our answer changed (check the reason); replace\n{old}\nwith\n{new}"
            )
            .unwrap();
        }
        if !self.listed.is_empty() {
            writeln!(
                problems,
                "listed in differences.tsv but not a difference (any more): remove them"
            )
            .unwrap();
            for (stale, reason) in &self.listed {
                writeln!(problems, "{}", stale.line(reason)).unwrap();
            }
        }
        problems
    }
}

/// The reasons of differences.tsv that docs/card-networks.md does not explain.
fn unexplained_reasons() -> String {
    let docs = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/card-networks.md"),
    )
    .expect("docs/card-networks.md");
    let (_, agreement) = docs
        .split_once("\n## Agreement with other validators\n")
        .expect("docs/card-networks.md has a section \"Agreement with other validators\"");
    let reasons: BTreeSet<_> = read_differences().into_values().collect();
    let mut problems = String::new();
    for reason in reasons {
        if !agreement.contains(&format!("`{reason}`")) {
            writeln!(
                problems,
                "docs/card-networks.md, \"Agreement with other validators\", does not explain `{reason}`"
            )
            .unwrap();
        }
    }
    problems
}

#[test]
fn validate_agrees_with_other_validators_or_the_difference_is_explained() {
    let index = EMBEDDED.current();
    let dirs = suite_dirs();
    assert!(
        dirs.len() >= MIN_SUITES,
        "{} suites in tests/conformance, expected braintree's and at least three more",
        dirs.len()
    );
    let mut findings = Findings {
        listed: read_differences(),
        unlisted: Vec::new(),
        changed: Vec::new(),
    };
    let mut report = String::new();
    for dir in dirs {
        let cases = read_suite(&dir);
        // A case with no claim only names a brand we do not have: nothing to compare.
        let compared: Vec<_> = cases.iter().filter(|c| !c.claims.is_empty()).collect();
        let mut agreed = 0;
        for case in &compared {
            match difference(case, &validate_number(&index, &case.number)) {
                Some(found) => findings.record(&found),
                None => agreed += 1,
            }
        }
        let suite = dir.file_name().unwrap().to_string_lossy().into_owned();
        writeln!(
            report,
            "{suite}: {agreed}/{} agree ({} cases, {} of brands we do not have only)",
            compared.len(),
            cases.len(),
            cases.len() - compared.len()
        )
        .unwrap();
    }
    println!("{report}");
    let problems = findings.problems() + &unexplained_reasons();
    assert!(problems.is_empty(), "{report}\n{problems}");
}
