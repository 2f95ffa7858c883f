//! The card rules, in process: Luhn, IIN network detection, validation of a whole number, and
//! masking. No index, no gRPC.
//!
//! Targets (issue 4): **Luhn of 16 digits under 20 ns**. The others have no target of their
//! own; they are the parts of "Validate plus LookupBin under 150 ns" (`benches/request_path.rs`).
//!
//! Run: `cargo bench --bench card`; smoke (seconds): `cargo bench --bench card -- --quick`.
//! BENCHMARKS.md records a run.

use std::hint::black_box;

use card_lookup::card::{self, CardNetwork, MaskOptions, MaskStyle, Pan, iin, luhn};
use criterion::{Criterion, criterion_group, criterion_main};

/// The allocator the service uses (src/main.rs), so allocations cost what they cost there.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Whole numbers of several networks, and partial ones as a checkout form sends them while the
/// customer types.
const NUMBERS: [(&str, &str); 5] = [
    ("visa_16", "4111111111111111"),
    ("mastercard_16", "5555555555554444"),
    ("amex_15", "378282246310005"),
    ("unionpay_19", "6212345678901234567"),
    ("partial_4", "4111"),
];

fn digits(text: &str) -> Vec<u8> {
    text.bytes().map(|b| b - b'0').collect()
}

fn bench_luhn(c: &mut Criterion) {
    let mut group = c.benchmark_group("luhn");
    let sixteen = digits("4111111111111111");
    group.bench_function("16_digits", |b| {
        b.iter(|| luhn::is_valid(black_box(&sixteen)));
    });
    let nineteen = digits("6212345678901234567");
    group.bench_function("19_digits", |b| {
        b.iter(|| luhn::is_valid(black_box(&nineteen)));
    });
    group.finish();
}

fn bench_iin(c: &mut Criterion) {
    let mut group = c.benchmark_group("iin_detect");
    for (name, number) in NUMBERS {
        let number = digits(number);
        group.bench_function(name, |b| b.iter(|| iin::detect(black_box(&number))));
    }
    group.finish();
}

fn bench_validate(c: &mut Criterion) {
    let mut group = c.benchmark_group("validate");
    for (name, number) in NUMBERS {
        group.bench_function(name, |b| b.iter(|| card::validate(black_box(number))));
    }
    // As a person types it: grouped in fours.
    group.bench_function("visa_16_spaced", |b| {
        b.iter(|| card::validate(black_box("4111 1111 1111 1111")));
    });
    group.bench_function("luhn_failed", |b| {
        b.iter(|| card::validate(black_box("4111111111111112")));
    });
    group.finish();
}

fn bench_mask(c: &mut Criterion) {
    let mut group = c.benchmark_group("mask");
    let pan = Pan::parse("4111111111111111").expect("a card number");
    let network = Some(CardNetwork::Visa);
    let last_four = MaskOptions::default();
    group.bench_function("last_four", |b| {
        b.iter(|| card::mask(black_box(&pan), network, 6, &last_four));
    });
    let bin_grouped = MaskOptions {
        style: MaskStyle::BinAndLastFour,
        mask_char: '*',
        keep_grouping: true,
    };
    group.bench_function("bin_and_last_four_grouped", |b| {
        b.iter(|| card::mask(black_box(&pan), network, 8, &bin_grouped));
    });
    group.bench_function("parse_and_mask", |b| {
        b.iter(|| {
            let pan = Pan::parse(black_box("4111 1111 1111 1111")).expect("a card number");
            card::mask(&pan, network, 6, &last_four)
        });
    });
    group.finish();
}

criterion_group!(benches, bench_luhn, bench_iin, bench_validate, bench_mask);
criterion_main!(benches);
