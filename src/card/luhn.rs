//! The Luhn (mod 10) check digit algorithm (ISO/IEC 7812-1 Annex B).

/// Each digit's contribution when it sits in a doubled position: 2d, minus 9 when that exceeds 9.
const DOUBLED: [u8; 10] = [0, 2, 4, 6, 8, 1, 3, 5, 7, 9];

/// Whether `digits` (values 0 to 9, most significant first) pass the Luhn check.
///
/// An empty slice has sum 0 and so passes; callers decide whether that counts as a number.
#[must_use]
pub fn is_valid(digits: &[u8]) -> bool {
    sum(digits, 1).is_multiple_of(10)
}

/// The check digit that makes `payload` (values 0 to 9, most significant first) followed by
/// it pass the Luhn check: what test and benchmark numbers end with.
#[must_use]
pub fn check_digit(payload: &[u8]) -> u8 {
    // The payload's last digit sits where the check digit doubles it.
    ((10 - sum(payload, 0) % 10) % 10) as u8
}

/// The Luhn sum of `digits`, doubling those whose position from the right (from 0) has the
/// parity `doubled`.
#[inline]
fn sum(digits: &[u8], doubled: usize) -> u32 {
    let mut sum: u32 = 0;
    for (position_from_right, &digit) in digits.iter().rev().enumerate() {
        let digit = digit % 10;
        sum += u32::from(if position_from_right % 2 == doubled {
            DOUBLED[usize::from(digit)]
        } else {
            digit
        });
    }
    sum
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
    fn check_digits_complete_published_numbers() {
        for number in ["4111111111111111", "378282246310005", "79927398713", "0"] {
            let (payload, check) = number.split_at(number.len() - 1);
            assert_eq!(
                check_digit(&digits(payload)),
                check.as_bytes()[0] - b'0',
                "{number}"
            );
        }
    }

    #[test]
    fn rejects_swapped_adjacent_digits() {
        // 79927398713 is valid; swapping 9 and 8 changes the doubled position's contribution.
        assert!(!is_valid(&digits("79927389713")));
    }
}
