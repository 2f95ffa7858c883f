//! Validate + LookupBin of one number (`bins::examine`), `N` times over 4,096 Luhn-valid cards
//! under the embedded table's entries: a fixed workload for counting instructions, which a busy
//! host does not change as it changes wall-clock time (BENCHMARKS.md).
//!
//! ```sh
//! cargo build --release --example examine_loop
//! for n in 0 200000; do
//!   valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!     target/release/examples/examine_loop $n 2>&1 | grep Collected
//! done   # (second - first) / 200000 = instructions a call
//! ```

use std::hint::black_box;

use card_lookup::bins::{DataSource, LoadOptions, examine, load};
use card_lookup::card::luhn;

/// The allocator the service uses (src/main.rs).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const CARDS: usize = 4096;

fn main() {
    let calls: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .expect("usage: examine_loop CALLS");
    let loaded = load(&[DataSource::Embedded], LoadOptions::default()).expect("embedded data");
    let entries = loaded.index.entries();
    let step = entries.len() / CARDS;
    let numbers: Vec<String> = (0..CARDS)
        .map(|i| {
            let mut digits: Vec<u8> = entries[i * step]
                .0
                .to_text()
                .bytes()
                .map(|b| b - b'0')
                .collect();
            // Fill to 15 digits from the card's index, then the check digit.
            let mut fill = i;
            while digits.len() < 15 {
                digits.push((fill % 10) as u8);
                fill = fill / 10 + 7;
            }
            digits.push(luhn::check_digit(&digits));
            digits.iter().map(|&d| char::from(b'0' + d)).collect()
        })
        .collect();
    for i in 0..calls {
        black_box(examine(&loaded.index, black_box(&numbers[i % CARDS])));
    }
}
