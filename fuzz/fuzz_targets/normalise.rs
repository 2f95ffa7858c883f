//! Any text as a card number: parsing, validation, network detection and masking must never
//! panic, and masking must never show more than PCI DSS allows.
#![no_main]

use card_lookup::card::{self, MaskOptions, MaskStyle, Pan, iin};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let validation = card::validate(text);
    assert_eq!(validation.valid, validation.failure.is_none());
    let Ok(pan) = Pan::parse(text) else {
        return;
    };
    let network = iin::detect(pan.digits()).network;
    for style in [MaskStyle::LastFour, MaskStyle::BinAndLastFour, MaskStyle::All] {
        for bin_len in [0, 6, 8] {
            let options = MaskOptions {
                style,
                mask_char: '*',
                keep_grouping: data.first().is_some_and(|b| b % 2 == 0),
            };
            let masked = card::mask(&pan, network, bin_len, &options);
            let shown = masked.chars().filter(char::is_ascii_digit).count();
            assert!(shown <= 12, "{shown} digits shown");
            assert!(pan.len() - shown >= 3.min(pan.len()));
        }
    }
});
