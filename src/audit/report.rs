//! `card-lookup audit report --month YYYY-MM DIR`: the month's access report from the trail
//! files of every replica: calls by client and method, outcomes, distinct cards (by
//! fingerprint, else masked number) and distinct BINs, for the month and for each day.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use serde_json::{Value, json};

use super::chain::Chain;
use super::file::{self, RECORD};
use super::verify::verify_dir;

/// The tallies of a month, or of a day.
#[derive(Debug, Default)]
struct Tally {
    calls: u64,
    by_client_method: BTreeMap<(String, String), u64>,
    outcomes: BTreeMap<String, u64>,
    cards: BTreeSet<String>,
    bins: BTreeSet<String>,
}

impl Tally {
    fn add(&mut self, event: &serde_json::Map<String, Value>) {
        let text = |key: &str| event.get(key).and_then(Value::as_str);
        self.calls += 1;
        let client = text("client").unwrap_or("-").to_owned();
        let method = text("method").unwrap_or("-").to_owned();
        *self.by_client_method.entry((client, method)).or_default() += 1;
        *self
            .outcomes
            .entry(text("code").unwrap_or("-").to_owned())
            .or_default() += 1;
        let masked = text("masked").filter(|m| m.bytes().any(|b| b.is_ascii_digit()));
        if let Some(card) = text("fingerprint").or(masked) {
            self.cards.insert(card.to_owned());
        }
        if let Some(bin) = text("bin") {
            self.bins.insert(bin.to_owned());
        }
    }

    fn to_json(&self) -> Value {
        json!({
            "calls": self.calls,
            "calls_by_client_and_method": self.by_client_method.iter().map(|((client, method), calls)| {
                json!({"client": client, "method": method, "calls": calls})
            }).collect::<Vec<_>>(),
            "outcomes": self.outcomes,
            "distinct_cards": self.cards.len(),
            "distinct_bins": self.bins.len(),
        })
    }
}

/// The report of `month` (`YYYY-MM`) over the files in `dir`, as JSON: `month`, `verified`
/// (whether `audit verify` passes on the whole directory) and `broken` (its first finding),
/// `replicas`, `total` and `days`, each tally with `calls`, `calls_by_client_and_method`,
/// `outcomes`, `distinct_cards` and `distinct_bins`.
pub fn month_report(dir: &Path, month: &str, chain: &Chain) -> std::io::Result<Value> {
    let verified = verify_dir(dir, chain)?;
    let mut total = Tally::default();
    let mut days: BTreeMap<String, Tally> = BTreeMap::new();
    let mut replicas = BTreeSet::new();
    let prefix = format!("{month}-");
    for file in file::list(dir)?
        .into_iter()
        .filter(|f| f.day.starts_with(&prefix))
    {
        replicas.insert(file.replica.clone());
        let day = days.entry(file.day.clone()).or_default();
        for line in BufReader::new(File::open(&file.path)?).lines() {
            let Ok(Value::Object(event)) = serde_json::from_str::<Value>(&line?) else {
                continue;
            };
            if event.contains_key(RECORD) {
                continue;
            }
            total.add(&event);
            day.add(&event);
        }
    }
    Ok(json!({
        "month": month,
        "verified": verified.broken.is_none(),
        "broken": verified.broken.map(|b| b.to_string()),
        "replicas": replicas,
        "total": total.to_json(),
        "days": days.iter().map(|(day, tally)| {
            let mut entry = tally.to_json();
            entry["day"] = day.clone().into();
            entry
        }).collect::<Vec<_>>(),
    }))
}

/// The report as text, for people.
#[must_use]
pub fn report_text(report: &Value) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "audit report {}",
        report["month"].as_str().unwrap_or_default()
    );
    let verified = match report["broken"].as_str() {
        None => "yes: every file holds".to_owned(),
        Some(broken) => format!("NO: {broken}"),
    };
    let _ = writeln!(out, "verified: {verified}");
    let replicas: Vec<&str> = report["replicas"]
        .as_array()
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let _ = writeln!(out, "replicas: {}", replicas.join(", "));
    let tally = |out: &mut String, title: &str, tally: &Value| {
        let _ = writeln!(
            out,
            "\n{title}: {} calls, {} distinct cards, {} distinct BINs",
            tally["calls"], tally["distinct_cards"], tally["distinct_bins"]
        );
        for row in tally["calls_by_client_and_method"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let _ = writeln!(
                out,
                "  {:<40} {:<10} {:>10}",
                row["client"].as_str().unwrap_or_default(),
                row["method"].as_str().unwrap_or_default(),
                row["calls"]
            );
        }
        let outcomes: Vec<String> = tally["outcomes"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(code, n)| format!("{code} {n}"))
            .collect();
        let _ = writeln!(out, "  outcomes: {}", outcomes.join(", "));
    };
    tally(&mut out, "month", &report["total"]);
    for day in report["days"].as_array().into_iter().flatten() {
        tally(&mut out, day["day"].as_str().unwrap_or_default(), day);
    }
    out
}
