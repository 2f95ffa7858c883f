//! The rule for caller-supplied text that the service logs or puts into metric labels:
//! request ids, client ids and rate-limit class names.

use crate::card::mask::MIN_PAN_DIGITS;

/// The longest token accepted.
pub(crate) const MAX_TOKEN_LEN: usize = 64;

/// Short, printable, and without a run of digits long enough to be a card number: such a
/// token is logged, and a caller must not be able to put a PAN into the logs through it.
#[must_use]
pub(crate) fn is_safe_token(token: &str) -> bool {
    (1..=MAX_TOKEN_LEN).contains(&token.len())
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        && token
            .split(|c: char| !c.is_ascii_digit())
            .all(|digits| digits.len() < MIN_PAN_DIGITS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_short_printable_and_hold_no_card_number() {
        assert!(is_safe_token("checkout-42.a_b"));
        assert!(is_safe_token("order-41111111111"), "11 digits in a row");
        assert!(!is_safe_token("id-411111111111"), "12 digits in a row");
        assert!(!is_safe_token("has space"));
        assert!(!is_safe_token(""));
        assert!(!is_safe_token(&"a".repeat(MAX_TOKEN_LEN + 1)));
        assert!(is_safe_token(&"a".repeat(MAX_TOKEN_LEN)));
    }
}
