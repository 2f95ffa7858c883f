//! The BIN data load benchmark: how long the embedded table takes to load, and how long and how
//! much memory a 3-million-entry table (synthetic, in the project's schema) takes.
//!
//! Run: `cargo run --release --example load_scale [ENTRIES]` (default 3000000). It prints one
//! line a measurement; BENCHMARKS.md records a run.

use std::fmt::Write as _;
use std::io::Write as _;
use std::time::Instant;

use card_lookup::bins::{DataSource, LoadOptions, load};

/// Resident memory of this process in bytes (Linux), for before-and-after comparisons.
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// A table like real account-range files: 8-digit prefixes, some thousands of issuers, a
/// range every 50 rows.
fn synthetic_table(entries: u64) -> String {
    let mut table = String::from(
        "prefix,prefix_end,pan_lengths,luhn,network,brand,card_type,prepaid,category,issuer_name,issuer_url,issuer_phone,country\n",
    );
    let countries = ["US", "GB", "DE", "FR", "BR", "IN", "CN", "JP", "NG", "TR"];
    let networks = [("visa", "VISA", 4u64), ("mastercard", "MASTERCARD", 5)];
    for i in 0..entries {
        let (network, brand, lead) = networks[(i % 2) as usize];
        let prefix = lead * 10_000_000 + i * 3;
        let end = if i % 50 == 0 {
            format!("{}", prefix + 2)
        } else {
            String::new()
        };
        let issuer = i % 5_000;
        let _ = writeln!(
            table,
            "{prefix},{end},16,true,{network},{brand},{},false,CLASSIC,ISSUER {issuer},https://issuer{issuer}.example,+1 555 {issuer:04},{}",
            if i % 3 == 0 { "credit" } else { "debit" },
            countries[(issuer % 10) as usize],
        );
    }
    table
}

fn main() {
    let entries: u64 = std::env::args()
        .nth(1)
        .map_or(3_000_000, |n| n.parse().expect("ENTRIES is a number"));

    for _ in 0..3 {
        let started = Instant::now();
        let loaded = load(&[DataSource::Embedded], LoadOptions::default()).unwrap();
        println!(
            "embedded: {} entries in {} ms",
            loaded.index.len(),
            started.elapsed().as_millis()
        );
    }

    let path = std::env::temp_dir().join(format!("card-lookup-scale-{}.csv", std::process::id()));
    std::fs::File::create(&path)
        .unwrap()
        .write_all(synthetic_table(entries).as_bytes())
        .unwrap();
    let size = std::fs::metadata(&path).unwrap().len();
    let before = resident_bytes();
    let started = Instant::now();
    let loaded = load(&[DataSource::File(path.clone())], LoadOptions::default()).unwrap();
    let elapsed = started.elapsed();
    let after = resident_bytes();
    std::fs::remove_file(&path).unwrap();
    println!(
        "synthetic: {} entries ({} ranges) from {} MB in {} ms",
        loaded.index.len(),
        loaded.index.range_count(),
        size / 1_000_000,
        elapsed.as_millis()
    );
    if let (Some(before), Some(after)) = (before, after) {
        let added = after.saturating_sub(before);
        println!(
            "synthetic: index adds {} MB resident, {} bytes an entry",
            added / 1_000_000,
            added / loaded.index.len().max(1) as u64
        );
    }
}
