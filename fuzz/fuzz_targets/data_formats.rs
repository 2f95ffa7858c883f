//! Any bytes as a BIN data file, in each format and detected: reading must never panic, and
//! what it accepts must build an index.
#![no_main]

use card_lookup::bins::format::{self, Format};
use card_lookup::bins::record::Strings;
use card_lookup::bins::IndexBuilder;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for format in Format::ALL.map(Some).into_iter().chain([None]) {
        let mut builder = IndexBuilder::default();
        let read = format::read(data, format, &mut Strings::default(), |row| {
            builder.insert(row.first, row.last, row.record);
        });
        if read.is_ok() {
            let index = builder.build(String::new());
            let _ = index.longest_match(&[4, 1, 1, 1, 1, 1, 1, 1]);
        }
    }
});
