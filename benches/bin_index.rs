//! The BIN index: `BinIndex::longest_match`, hit and miss, on the embedded 327,012-entry index
//! and on a synthetic 3,000,000-entry one (8-digit BINs, 60,000 of them ranges; built in memory
//! like the table of `examples/load_scale.rs`).
//!
//! Also `longer_entry_under_6_digits` on the synthetic index: whether a longer entry begins with
//! 6 given digits (LookupBin's `more_specific_match_possible`).
//!
//! Each measurement cycles through 4,096 different card numbers, so a large index is read from
//! memory rather than from one cached entry. A hit returns the record (an `Arc` clone); a miss
//! tries every prefix length the index holds.
//!
//! Target: no separate one; a lookup is part of "Validate plus LookupBin under 150 ns"
//! (`benches/request_path.rs`), which does two, so a hit should stay well under 50 ns, and the
//! 3M-entry index should not be much slower than the embedded one.
//!
//! Run: `cargo bench --bench bin_index`; smoke (seconds): `cargo bench --bench bin_index --
//! --quick`. The 3M-entry index takes a few seconds to build before its measurements.
//! BENCHMARKS.md records a run.

mod common;

use std::hint::black_box;

use card_lookup::bins::BinIndex;
use criterion::{
    BenchmarkGroup, Criterion, criterion_group, criterion_main, measurement::WallTime,
};

/// The allocator the service uses (src/main.rs), so allocations cost what they cost there.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Entries of the large synthetic index (issue 4: "327k and 3M entries").
const SYNTHETIC_ENTRIES: u64 = 3_000_000;

/// Looks up each of `numbers` in turn.
fn bench_lookups(
    group: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    index: &BinIndex,
    numbers: &[Vec<u8>],
) {
    assert_eq!(numbers.len(), common::KEYS);
    group.bench_function(name, |b| {
        let mut next = 0;
        b.iter(|| {
            next = (next + 1) % common::KEYS;
            index.longest_match(black_box(&numbers[next]))
        });
    });
}

fn bench_embedded(c: &mut Criterion) {
    let index = common::embedded_index();
    let hits = common::embedded_hits(&index);
    assert!(hits.iter().all(|n| index.longest_match(n).is_some()));
    let misses = common::misses(&index, &["1", "2", "3", "4", "5", "6", "7", "8", "9"]);
    let mut group = c.benchmark_group("longest_match_embedded_327k");
    bench_lookups(&mut group, "hit", &index, &hits);
    bench_lookups(&mut group, "miss", &index, &misses);
    group.finish();
}

fn bench_synthetic(c: &mut Criterion) {
    let index = common::synthetic_index(SYNTHETIC_ENTRIES);
    assert_eq!(index.len() as u64, SYNTHETIC_ENTRIES);
    let hits = common::synthetic_hits(SYNTHETIC_ENTRIES);
    assert!(hits.iter().all(|n| index.longest_match(n).is_some()));
    let misses = common::misses(&index, &["4", "5"]);
    let mut group = c.benchmark_group("longest_match_synthetic_3m");
    bench_lookups(&mut group, "hit", &index, &hits);
    bench_lookups(&mut group, "miss", &index, &misses);
    // LookupBin's "send more digits" check for 6 digits, under which the 8-digit entries lie.
    let six: Vec<Vec<u8>> = hits.iter().map(|n| n[..6].to_vec()).collect();
    assert!(six.iter().all(|n| index.longer_entry_under(n)));
    group.bench_function("longer_entry_under_6_digits", |b| {
        let mut next = 0;
        b.iter(|| {
            next = (next + 1) % common::KEYS;
            index.longer_entry_under(black_box(&six[next]))
        });
    });
    group.finish();
}

criterion_group!(benches, bench_embedded, bench_synthetic);
criterion_main!(benches);
