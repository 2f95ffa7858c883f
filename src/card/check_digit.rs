//! Check digits: the last digit of a card number, computed from the others so that a mistyped
//! digit is caught before the number reaches the issuer.
//!
//! Nearly every network uses Luhn (ISO/IEC 7812-1, [`super::luhn`]). UnionPay does not require
//! one. Tarjeta Naranja (Argentina) issued its own numbers with a weighted mod-11 check digit
//! before it joined the international networks, and cards of both kinds are in circulation:
//! a Naranja number is accepted when either digit is right, as ActiveMerchant does
//! (docs/card-networks.md, "Check digits").

/// The rule a number's last digit follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckDigit {
    /// Luhn (mod 10).
    Luhn,
    /// No check digit is required.
    None,
    /// Luhn, or Naranja's own mod-11 digit ([`naranja_is_valid`]).
    LuhnOrNaranja,
}

impl CheckDigit {
    /// Whether `digits` (values 0 to 9) end with a right check digit under this rule, given
    /// their Luhn result (which callers compute once, since Validate reports it anyway).
    #[must_use]
    pub fn accepts(self, digits: &[u8], luhn_valid: bool) -> bool {
        match self {
            Self::Luhn => luhn_valid,
            Self::None => true,
            Self::LuhnOrNaranja => luhn_valid || naranja_is_valid(digits),
        }
    }

    /// Whether the rule asks for a check digit at all.
    #[must_use]
    pub const fn is_required(self) -> bool {
        !matches!(self, Self::None)
    }

    /// The rule when an issuer's BIN data says whether its numbers use Luhn: `false` drops the
    /// check, `true` keeps the network's own (and adds Luhn where the network has none).
    #[must_use]
    pub const fn with_issuer_luhn(self, luhn: Option<bool>) -> Self {
        match (luhn, self) {
            (Some(false), _) => Self::None,
            (Some(true), Self::None) => Self::Luhn,
            (_, rule) => rule,
        }
    }
}

/// The weights of Naranja's mod-11 check digit, for the first fifteen digits of its 16-digit
/// numbers.
const NARANJA_WEIGHTS: [u32; 15] = [4, 3, 2, 7, 6, 5, 4, 3, 2, 7, 6, 5, 4, 3, 2];

/// Whether a 16-digit number ends with Naranja's mod-11 check digit: the weighted sum of the
/// first fifteen digits, `11 - sum % 11`, and 0 where that is 10 or 11.
#[must_use]
pub fn naranja_is_valid(digits: &[u8]) -> bool {
    let Some((&check, payload)) = digits.split_last() else {
        return false;
    };
    if payload.len() != NARANJA_WEIGHTS.len() {
        return false;
    }
    let sum: u32 = payload
        .iter()
        .zip(NARANJA_WEIGHTS)
        .map(|(&digit, weight)| u32::from(digit % 10) * weight)
        .sum();
    let expected = match 11 - sum % 11 {
        10 | 11 => 0,
        digit => digit,
    };
    u32::from(check) == expected
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::card::luhn;

    fn digits(s: &str) -> Vec<u8> {
        s.bytes().map(|b| b - b'0').collect()
    }

    #[test]
    fn naranja_numbers_of_both_kinds_are_accepted() {
        // A mod-11 number from ActiveMerchant's test suite, which fails Luhn...
        let own = digits("5895627823453005");
        assert!(!luhn::is_valid(&own));
        assert!(naranja_is_valid(&own));
        assert!(CheckDigit::LuhnOrNaranja.accepts(&own, false));
        // ...and a Luhn one under the same BIN.
        let luhn_number = digits("5895620000000002");
        assert!(luhn::is_valid(&luhn_number));
        assert!(CheckDigit::LuhnOrNaranja.accepts(&luhn_number, true));
    }

    #[test]
    fn a_mistyped_naranja_number_fails_both_rules() {
        let mistyped = digits("5895627823453006");
        assert!(!luhn::is_valid(&mistyped));
        assert!(!naranja_is_valid(&mistyped));
        assert!(!CheckDigit::LuhnOrNaranja.accepts(&mistyped, false));
    }

    #[test]
    fn the_mod_11_rule_needs_sixteen_digits() {
        assert!(!naranja_is_valid(&digits("589562782345300")));
        assert!(!naranja_is_valid(&[]));
    }

    #[test]
    fn issuer_data_can_drop_or_add_the_check() {
        assert_eq!(
            CheckDigit::Luhn.with_issuer_luhn(Some(false)),
            CheckDigit::None
        );
        assert_eq!(
            CheckDigit::None.with_issuer_luhn(Some(true)),
            CheckDigit::Luhn
        );
        assert_eq!(
            CheckDigit::LuhnOrNaranja.with_issuer_luhn(Some(true)),
            CheckDigit::LuhnOrNaranja
        );
        assert_eq!(CheckDigit::None.with_issuer_luhn(None), CheckDigit::None);
        assert!(CheckDigit::None.accepts(&digits("1234"), false));
        assert!(!CheckDigit::None.is_required());
    }
}
