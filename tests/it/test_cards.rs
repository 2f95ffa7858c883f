//! Test cards over gRPC and the command line. Conformance: every number of the embedded list
//! (`data/test-cards.tsv`, read here on its own) is flagged by Validate, LookupBin and Inspect
//! with exactly the providers that list it; a valid number no list has is not. The operator's
//! list (`--test-cards-file`) adds its numbers; `data check` and `data convert` know the file.

use std::collections::{BTreeMap, BTreeSet};

use card_lookup::config::{Args, Config};
use clap::Parser;

use crate::common::{EMBEDDED, TempDir, TestServer, inspect_once, pb, run_binary as run};

const LIST: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/data/test-cards.tsv");

/// The embedded list as its file says: each number and the providers that list it.
fn listed() -> BTreeMap<String, BTreeSet<String>> {
    let text = std::fs::read_to_string(LIST).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("number\tprovider\tsource"));
    let mut numbers = BTreeMap::<String, BTreeSet<String>>::new();
    for line in lines {
        let fields: Vec<&str> = line.split('\t').collect();
        assert_eq!(fields.len(), 3, "{line}");
        numbers
            .entry(fields[0].to_owned())
            .or_default()
            .insert(fields[1].to_owned());
    }
    numbers
}

fn set(sources: &[String]) -> BTreeSet<String> {
    let set: BTreeSet<String> = sources.iter().cloned().collect();
    assert_eq!(
        set.len(),
        sources.len(),
        "a provider named twice: {sources:?}"
    );
    set
}

/// Validate's, LookupBin's and Inspect's (both layouts) test-card sources for each of `numbers`.
async fn answers(server: &TestServer, numbers: &[String]) -> Vec<[BTreeSet<String>; 4]> {
    let mut client = server.client().await;
    let mut inspected = Vec::new();
    let borrowed: Vec<&str> = numbers.iter().map(String::as_str).collect();
    for layout in [pb::BinAnswerLayout::PerResult, pb::BinAnswerLayout::Shared] {
        inspected.push(inspect_once(&mut client, &borrowed, layout).await);
    }
    let mut out = Vec::new();
    for (i, number) in numbers.iter().enumerate() {
        let validated = client
            .validate(pb::ValidateRequest {
                number: number.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        let looked_up = client
            .lookup_bin(pb::LookupBinRequest {
                number: number.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(validated.test_card, !validated.test_card_sources.is_empty());
        assert_eq!(looked_up.test_card, !looked_up.test_card_sources.is_empty());
        let per_result = &inspected[0].results[i];
        let shared = &inspected[1].results[i];
        assert_eq!(per_result.validation.as_ref(), Some(&validated));
        let shared_bin = &inspected[1].bins[shared.bin_index.unwrap() as usize];
        assert_eq!(shared_bin.test_card_sources, looked_up.test_card_sources);
        out.push([
            set(&validated.test_card_sources),
            set(&looked_up.test_card_sources),
            set(&per_result.bin.as_ref().unwrap().test_card_sources),
            set(&shared.validation.as_ref().unwrap().test_card_sources),
        ]);
    }
    out
}

/// A valid number (Luhn) with `body`'s digits and the check digit that makes it valid.
fn with_check_digit(body: &str) -> String {
    let sum: u32 = body
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 0 {
                let d = d * 2;
                if d > 9 { d - 9 } else { d }
            } else {
                d
            }
        })
        .sum();
    format!("{body}{}", (10 - sum % 10) % 10)
}

#[tokio::test]
async fn every_listed_number_is_flagged_with_its_providers_and_no_other_number_is() {
    let listed = listed();
    assert!(listed.len() >= 50, "{}", listed.len());
    let providers: BTreeSet<&str> = listed.values().flatten().map(String::as_str).collect();
    assert_eq!(
        providers,
        BTreeSet::from(["adyen", "braintree", "checkout", "stripe"])
    );
    let server = TestServer::start().await;
    let numbers: Vec<String> = listed.keys().cloned().collect();
    for (number, answers) in numbers.iter().zip(answers(&server, &numbers).await) {
        for answer in answers {
            assert_eq!(&answer, &listed[number], "{number}");
        }
    }

    // Valid numbers no provider lists, in the BINs of listed ones, and a BIN alone.
    let mut unlisted: Vec<String> = [
        "424242424242424",
        "411111111111111",
        "555555555555444",
        "378282246310",
        "601111111111111",
    ]
    .iter()
    .map(|body| with_check_digit(&format!("{body}9")))
    .collect();
    unlisted.push(with_check_digit("491633850608283"));
    unlisted.push("424242".to_owned());
    unlisted.push("4242424242424241".to_owned());
    for number in &unlisted {
        assert!(!listed.contains_key(number), "{number}");
    }
    for (number, answers) in unlisted.iter().zip(answers(&server, &unlisted).await) {
        for answer in answers {
            assert!(answer.is_empty(), "{number}: {answer:?}");
        }
    }
    server.stop().await.unwrap();
}

#[tokio::test]
async fn the_operators_list_adds_its_numbers() {
    let dir = TempDir::new("test-cards-operator");
    let ours = with_check_digit("400000000000123");
    let path = dir.write(
        "ours.tsv",
        &format!(
            "number\tprovider\tsource\n{ours}\tacme-qa\tour QA\n4242424242424242\tacme-qa\t\n"
        ),
    );
    let config = Config::try_from(Args::parse_from([
        "card-lookup",
        "--test-cards-file",
        path.to_str().unwrap(),
    ]))
    .unwrap();
    let server = TestServer::start_configured(config, EMBEDDED.clone()).await;
    let numbers = [ours, "4242424242424242".to_owned()];
    let answers = answers(&server, &numbers).await;
    for answer in &answers[0] {
        assert_eq!(answer, &BTreeSet::from(["acme-qa".to_owned()]));
    }
    for answer in &answers[1] {
        assert_eq!(
            answer,
            &BTreeSet::from(["acme-qa", "checkout", "stripe"].map(str::to_owned))
        );
    }
    server.stop().await.unwrap();
}

#[test]
fn the_command_line_says_who_lists_a_test_card() {
    let (code, out, err) = run(&["validate", "4242 4242 4242 4242"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.contains("test card:   yes, published by checkout, stripe"),
        "{out}"
    );
    let (_, out, _) = run(&["lookup", "5555555555554444", "--json"]);
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["test_card"], true);
    assert_eq!(
        json["test_card_sources"],
        serde_json::json!(["adyen", "braintree", "stripe"])
    );
    let unlisted = with_check_digit("424242424242420");
    let (_, out, _) = run(&["validate", &unlisted, "--json"]);
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["valid"], true);
    assert_eq!(json["test_card"], false);

    let dir = TempDir::new("test-cards-cli");
    let ours = dir.write(
        "ours.tsv",
        "number\tprovider\tsource\n4000000000000002\tacme-qa\t\n",
    );
    let (_, out, _) = run(&[
        "validate",
        "4000000000000002",
        "--test-cards-file",
        ours.to_str().unwrap(),
    ]);
    assert!(
        out.contains("test card:   yes, published by acme-qa"),
        "{out}"
    );
    let bad = dir.write(
        "bad.tsv",
        "number\tprovider\tsource\n4000000000000002\tAcme\t\n",
    );
    let (code, _, err) = run(&[
        "validate",
        "4000000000000002",
        "--test-cards-file",
        bad.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("line 2: the provider must be"), "{err}");
    assert!(!err.contains("4000000000000002"), "{err}");
}

#[test]
fn data_check_and_convert_know_a_test_card_list() {
    let listed = listed();
    let (code, out, err) = run(&["data", "check", LIST]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.contains(&format!("test-card list, {} numbers", listed.len()))
            || out.contains(&format!(", {} numbers", listed.len())),
        "{out}"
    );
    assert!(out.contains("providers: braintree "), "{out}");
    assert!(out.contains("problems: 0"), "{out}");

    let dir = TempDir::new("test-cards-data");
    let bad = dir.write(
        "bad.tsv",
        "number\tprovider\tsource\n4000000000000002\tacme\t\n4000 0000\tacme\t\n",
    );
    let (code, out, _) = run(&["data", "check", bad.to_str().unwrap()]);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("test-card list: line 3: the number must be 12 to 19 digits"),
        "{out}"
    );
    assert!(!out.contains("4000000000000002"), "{out}");

    let (code, _, err) = run(&["data", "convert", LIST]);
    assert_ne!(code, Some(0));
    assert!(err.contains("a test-card list, not BIN data"), "{err}");
}
