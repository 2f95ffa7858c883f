//! Validate plus LookupBin of one card, in process: the domain work of the two RPCs as
//! `src/grpc/card_lookup.rs` does it, without gRPC, protobuf or metrics.
//!
//! - `validate_with` whose issuer-rules closure looks the number up in the index (Validate),
//! - then `Pan::parse`, `longest_match` and `iin::detect` (LookupBin).
//!
//! Target (issue 4): **Validate plus LookupBin of one card under 150 ns**, on the embedded
//! 327,012-entry index, cycling through 4,096 different valid card numbers whose BIN the index
//! holds.
//!
//! Also measured: the same through the live `BinStore` (one `current()` snapshot per RPC, as
//! the service takes it), and what recording one call's metrics costs (`RpcMetrics::started`
//! and `handled` with a timer: the issue asks that metrics cost no more than a few percent).
//!
//! Run: `cargo bench --bench request_path`; smoke (seconds): `cargo bench --bench request_path
//! -- --quick`. BENCHMARKS.md records a run.

mod common;

use std::hint::black_box;
use std::time::{Duration, Instant};

use card_lookup::bins::{BinIndex, BinMatch, BinStore, DataSource, LoadOptions, load};
use card_lookup::card::{self, CardNetwork, Pan, Validation, iin};
use card_lookup::telemetry::{self, Method, RpcMetrics};
use criterion::{Criterion, criterion_group, criterion_main};

/// Validate's domain call, as the service makes it.
fn validate(index: &BinIndex, number: &str) -> Validation {
    card::validate_with(number, |pan: &Pan| {
        let hit = index.longest_match(pan.digits())?;
        Some(hit.record.rules)
    })
}

/// LookupBin's domain calls, as the service makes them (the request has at least 6 digits).
fn lookup_bin(index: &BinIndex, number: &str) -> Option<(Option<BinMatch>, Option<CardNetwork>)> {
    let pan = Pan::parse(number).ok()?;
    let hit = index.longest_match(pan.digits());
    let network = iin::detect(pan.digits()).network;
    Some((hit, network))
}

fn bench_request_path(c: &mut Criterion) {
    let loaded = load(&[DataSource::Embedded], LoadOptions::default()).expect("embedded data");
    let numbers = common::embedded_valid_cards(&loaded.index);
    assert!(numbers.iter().all(|n| validate(&loaded.index, n).valid));
    let store = BinStore::from_loaded(loaded, vec![DataSource::Embedded], LoadOptions::default());

    let mut group = c.benchmark_group("request_path");
    {
        let index = store.current();
        group.bench_function("validate_and_lookup_bin", |b| {
            let mut next = 0;
            b.iter(|| {
                next = (next + 1) % common::KEYS;
                let number = black_box(numbers[next].as_str());
                (validate(&index, number), lookup_bin(&index, number))
            });
        });
        group.bench_function("validate_only", |b| {
            let mut next = 0;
            b.iter(|| {
                next = (next + 1) % common::KEYS;
                validate(&index, black_box(numbers[next].as_str()))
            });
        });
        group.bench_function("lookup_bin_only", |b| {
            let mut next = 0;
            b.iter(|| {
                next = (next + 1) % common::KEYS;
                lookup_bin(&index, black_box(numbers[next].as_str()))
            });
        });
    }
    group.bench_function("validate_and_lookup_bin_via_store", |b| {
        let mut next = 0;
        b.iter(|| {
            next = (next + 1) % common::KEYS;
            let number = black_box(numbers[next].as_str());
            let validation = validate(&store.current(), number);
            (validation, lookup_bin(&store.current(), number))
        });
    });
    group.finish();
}

fn bench_metrics(c: &mut Criterion) {
    let _prometheus = telemetry::install_metrics(Duration::from_millis(5));
    let metrics = RpcMetrics::new();
    c.bench_function("metrics/record_one_call", |b| {
        b.iter(|| {
            let started = Instant::now();
            metrics.started(Method::Validate);
            metrics.handled(
                black_box(Method::Validate),
                tonic::Code::Ok,
                started.elapsed(),
            );
        });
    });
}

criterion_group!(benches, bench_request_path, bench_metrics);
criterion_main!(benches);
