//! The Luhn (mod 10) check digit algorithm (ISO/IEC 7812-1 Annex B).

/// Each digit's contribution when it sits in a doubled position: 2d, minus 9 when that exceeds 9.
const DOUBLED: [u8; 10] = [0, 2, 4, 6, 8, 1, 3, 5, 7, 9];

/// Whether `digits` (values 0 to 9, most significant first) pass the Luhn check.
///
/// An empty slice has sum 0 and so passes; callers decide whether that counts as a number.
#[must_use]
pub fn is_valid(digits: &[u8]) -> bool {
    let mut sum: u32 = 0;
    for (position_from_right, &digit) in digits.iter().rev().enumerate() {
        let digit = digit % 10;
        sum += u32::from(if position_from_right % 2 == 1 {
            DOUBLED[usize::from(digit)]
        } else {
            digit
        });
    }
    sum.is_multiple_of(10)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digits(s: &str) -> Vec<u8> {
        s.bytes().map(|b| b - b'0').collect()
    }

    #[test]
    fn accepts_published_test_numbers() {
        for number in [
            "4111111111111111",
            "5555555555554444",
            "378282246310005",
            "6011111111111117",
            "3530111333300000",
            "30569309025904",
            "4222222222222",
            "79927398713",
        ] {
            assert!(is_valid(&digits(number)), "{number}");
        }
    }

    #[test]
    fn rejects_a_changed_check_digit() {
        for number in ["4111111111111112", "5555555555554446", "378282246310006"] {
            assert!(!is_valid(&digits(number)), "{number}");
        }
    }

    #[test]
    fn rejects_swapped_adjacent_digits() {
        // 79927398713 is valid; swapping 9 and 8 changes the doubled position's contribution.
        assert!(!is_valid(&digits("79927389713")));
    }
}
