//! Properties that must hold for any input: nothing panics, masking never shows more than
//! PCI DSS allows, and Validate's Luhn agrees with a plain reference implementation.

use card_lookup::card::{self, MaskOptions, MaskStyle, Pan, iin};
use proptest::prelude::*;

/// The textbook Luhn check, written independently of `card::luhn`.
fn reference_luhn(digits: &str) -> bool {
    let sum: u32 = digits
        .chars()
        .rev()
        .enumerate()
        .map(|(i, c)| {
            let d = c.to_digit(10).unwrap();
            if i % 2 == 1 {
                let doubled = d * 2;
                if doubled > 9 { doubled - 9 } else { doubled }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

fn styles() -> impl Strategy<Value = MaskStyle> {
    prop_oneof![
        Just(MaskStyle::LastFour),
        Just(MaskStyle::BinAndLastFour),
        Just(MaskStyle::All)
    ]
}

proptest! {
    #[test]
    fn validate_never_panics(input in ".{0,64}") {
        let _ = card::validate(&input);
    }

    #[test]
    fn validate_luhn_matches_the_reference(digits in "[0-9]{1,19}") {
        prop_assert_eq!(card::validate(&digits).luhn_valid, reference_luhn(&digits));
    }

    #[test]
    fn separators_never_change_the_answer(digits in "[0-9]{1,19}", cuts in proptest::collection::vec(0usize..20, 0..5)) {
        let mut spaced = digits.clone();
        for cut in cuts {
            let at = cut.min(spaced.len());
            spaced.insert(at, if at % 2 == 0 { ' ' } else { '-' });
        }
        prop_assert_eq!(card::validate(&spaced), card::validate(&digits));
    }

    #[test]
    fn a_valid_number_is_potentially_valid_and_has_a_network(digits in "[0-9]{12,19}") {
        let v = card::validate(&digits);
        if v.valid {
            prop_assert!(v.potentially_valid && v.length_valid && v.network.is_some());
        }
        prop_assert_eq!(v.valid, v.failure.is_none());
    }

    #[test]
    fn detection_is_consistent(digits in proptest::collection::vec(0u8..10, 0..19)) {
        let detection = iin::detect(&digits);
        if let Some(network) = detection.network {
            prop_assert!(detection.candidates.contains(network));
        }
        if detection.candidates.len() == 1 {
            prop_assert!(detection.network.is_some());
        }
    }

    #[test]
    fn masking_never_shows_more_than_pci_allows(
        digits in "[0-9]{1,19}",
        style in styles(),
        bin_len in 0usize..12,
        grouping in any::<bool>(),
        mask_char in proptest::sample::select(vec!['*', 'X', '#', '\u{2022}', '\u{2588}']),
    ) {
        let pan = Pan::parse(&digits).unwrap();
        let network = iin::detect(pan.digits()).network;
        let options = MaskOptions { style, mask_char, keep_grouping: grouping };
        let masked = card::mask(&pan, network, bin_len, &options);
        let shown: Vec<(usize, char)> = masked
            .chars()
            .filter(|c| *c != ' ')
            .enumerate()
            .filter(|(_, c)| c.is_ascii_digit())
            .collect();
        let len = digits.len();
        let leading_allowed = if bin_len >= 8 && len >= 16 { 8 } else { 6 };
        // Every digit shown is a true digit in an allowed position: the first 6 (or 8), or the last 4.
        for (position, c) in &shown {
            prop_assert_eq!(digits.as_bytes()[*position] as char, *c);
            prop_assert!(*position < leading_allowed || *position >= len.saturating_sub(4));
        }
        prop_assert!(shown.len() <= 12);
        // At least 3 digits stay hidden, and partial numbers are hidden entirely.
        prop_assert!(len - shown.len() >= 3.min(len));
        if len < 12 || style == MaskStyle::All {
            prop_assert!(shown.is_empty());
        }
        prop_assert_eq!(masked.chars().filter(|c| *c != ' ').count(), len);
        // Every other character is the mask character; spaces only when grouping.
        prop_assert!(masked.chars().all(|c| c.is_ascii_digit() || c == mask_char || (grouping && c == ' ')));
        prop_assert!(!masked.starts_with(' ') && !masked.ends_with(' '));
    }

    #[test]
    fn parse_never_panics_and_never_keeps_non_digits(input in "\\PC{0,40}") {
        if let Ok(pan) = Pan::parse(&input) {
            prop_assert!(pan.digits().iter().all(|d| *d < 10));
        }
    }
}
