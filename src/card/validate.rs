//! Validation of whole and partial card numbers, as a checkout form and a payment API need it.

use super::iin::{self, Detection};
use super::luhn;
use super::mask::mask_for_display;
use super::network::{CardNetwork, LengthSet, NetworkSet};
use super::pan::{Pan, PanError};

/// Why a number is not valid, in the order the checks run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    Empty,
    NonDigit,
    TooShort,
    TooLong,
    LengthInvalidForNetwork,
    LuhnFailed,
    UnknownNetwork,
}

impl Failure {
    /// A sentence for people; never contains the number.
    #[must_use]
    pub const fn message(self) -> &'static str {
        match self {
            Self::Empty => "no digits were given",
            Self::NonDigit => "only digits, spaces and dashes are allowed",
            Self::TooShort => "too few digits for a card number of this network",
            Self::TooLong => "too many digits for a card number of this network",
            Self::LengthInvalidForNetwork => "the network issues no card numbers of this length",
            Self::LuhnFailed => "the check digit is wrong",
            Self::UnknownNetwork => "the leading digits match no known card network",
        }
    }
}

/// The answer to "is this a valid card number?".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validation {
    pub valid: bool,
    pub luhn_valid: bool,
    pub length_valid: bool,
    pub network: Option<CardNetwork>,
    /// The networks still possible; the one network once it is determined.
    pub candidates: NetworkSet,
    pub failure: Option<Failure>,
    pub potentially_valid: bool,
    pub digit_count: usize,
    /// The lengths that are valid for this number: the network's, or the issuer's own.
    pub lengths: LengthSet,
    /// Whether a check digit is required: the network's rule, or the issuer's own.
    pub luhn_required: bool,
    /// Whether the last digit is right under the rule that applies: Luhn, Luhn or Naranja's
    /// mod 11, or none (then true). Equal to `luhn_valid` when the network is not known.
    pub check_digit_valid: bool,
    /// The number masked to its last four digits; empty when the input is not digits.
    pub masked: String,
}

impl Validation {
    fn rejected(failure: Failure, potentially_valid: bool) -> Self {
        Self {
            valid: false,
            luhn_valid: false,
            length_valid: false,
            network: None,
            candidates: NetworkSet::empty(),
            failure: Some(failure),
            potentially_valid,
            digit_count: 0,
            lengths: LengthSet::default(),
            luhn_required: false,
            check_digit_valid: false,
            masked: String::new(),
        }
    }
}

/// What an issuer's BIN data says about its numbers, where it differs from the network's rules
/// (binlist's `number_length` and `number_luhn`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct IssuerRules {
    pub lengths: Option<LengthSet>,
    pub luhn: Option<bool>,
}

/// Validates a whole or partial card number; spaces and dashes are ignored.
///
/// A number is valid when its network is known, its length is one the network issues and,
/// where the network uses one, its check digit is right. `potentially_valid` says whether
/// typing more digits could still make it valid. The service validates with the issuer's own
/// rules where its BIN data has them: [`validate_pan`].
#[must_use]
pub fn validate(input: &str) -> Validation {
    match Pan::parse(input) {
        Ok(pan) => validate_pan(&pan, iin::detect(pan.digits()), IssuerRules::default()),
        Err(error) => validate_unparsed(&error),
    }
}

/// The answer for input that is not a card number's digits: why, and what can still be told.
#[must_use]
pub fn validate_unparsed(error: &PanError) -> Validation {
    match error {
        // Nothing typed yet can still become a card number of any network.
        PanError::Empty => Validation {
            candidates: iin::detect(&[]).candidates,
            ..Validation::rejected(Failure::Empty, true)
        },
        PanError::NonDigit => Validation::rejected(Failure::NonDigit, false),
        PanError::TooLong {
            digit_count,
            leading,
        } => {
            let detection = iin::detect(leading.digits());
            Validation {
                network: detection.network,
                candidates: detection.candidates,
                digit_count: *digit_count,
                masked: mask_for_display(leading),
                ..Validation::rejected(Failure::TooLong, false)
            }
        }
    }
}

/// Validates digits already parsed into a [`Pan`], given their network detection (callers
/// that also look the number up detect it once for both) and the issuer's rules where known.
#[must_use]
pub fn validate_pan(pan: &Pan, detection: Detection, rules: IssuerRules) -> Validation {
    let digits = pan.digits();
    let luhn_valid = luhn::is_valid(digits);
    let Detection {
        network,
        candidates,
    } = detection;
    let base = Validation {
        luhn_valid,
        check_digit_valid: luhn_valid,
        candidates,
        digit_count: digits.len(),
        masked: mask_for_display(pan),
        ..Validation::rejected(Failure::UnknownNetwork, false)
    };
    let Some(network) = network else {
        if candidates.is_empty() {
            return base;
        }
        // Several networks are still possible: more digits will tell.
        return Validation {
            failure: Some(Failure::TooShort),
            potentially_valid: true,
            ..base
        };
    };

    let lengths = rules.lengths.unwrap_or_else(|| network.lengths());
    let check_digit = network.spec().check_digit.with_issuer_luhn(rules.luhn);
    let check_digit_valid = check_digit.accepts(digits, luhn_valid);
    let (shortest, longest) = lengths.bounds().unwrap_or((0, 0));
    let length = digits.len();
    let length_valid = lengths.contains(length);
    let valid = length_valid && check_digit_valid;
    let failure = if valid {
        None
    } else if length < shortest {
        Some(Failure::TooShort)
    } else if length > longest {
        Some(Failure::TooLong)
    } else if !length_valid {
        Some(Failure::LengthInvalidForNetwork)
    } else {
        Some(Failure::LuhnFailed)
    };
    Validation {
        valid,
        length_valid,
        lengths,
        luhn_required: check_digit.is_required(),
        check_digit_valid,
        network: Some(network),
        candidates: std::iter::once(network).collect(),
        failure,
        // Shorter than the longest length: more digits may still give a valid number.
        potentially_valid: valid || length < longest,
        ..base
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use CardNetwork::*;

    #[track_caller]
    fn check(input: &str, network: Option<CardNetwork>, potentially_valid: bool, valid: bool) {
        let v = validate(input);
        assert_eq!(
            (v.network, v.potentially_valid, v.valid),
            (network, potentially_valid, valid),
            "{input:?}: {v:?}"
        );
        assert_eq!(v.valid, v.failure.is_none(), "{input:?}");
    }

    #[test]
    fn whole_numbers() {
        check("4111111111111111", Some(Visa), true, true);
        check("4111-1111-1111-1111", Some(Visa), true, true);
        check("4111 1111 1111 1111", Some(Visa), true, true);
        check(
            "601 1 1 1  1 1 1 1   1 1 1 1 1 7",
            Some(Discover),
            true,
            true,
        );
        check("378282246310005", Some(AmericanExpress), true, true);
        check("5555555555554446", Some(Mastercard), false, false);
        check("3530111333300000", Some(Jcb), true, true);
    }

    #[test]
    fn partial_numbers_may_still_become_valid() {
        check("", None, true, false);
        check("4", None, true, false);
        check("41", Some(Visa), true, false);
        check("6011111", Some(Discover), true, false);
        check("55555555", Some(Mastercard), true, false);
        check("3782", Some(AmericanExpress), true, false);
    }

    #[test]
    fn maestro_lengths_and_luhn() {
        check("500000000000", Some(Maestro), true, false);
        check("500000000000061", Some(Maestro), true, false);
        check("5000000000000611", Some(Maestro), true, true);
        check("5000000000000612", Some(Maestro), true, false);
        check("5000000000000000005", Some(Maestro), true, true);
        check("5000000000000000001", Some(Maestro), false, false);
        check("50000000000000000009", Some(Maestro), false, false);
    }

    #[test]
    fn unionpay_needs_no_luhn() {
        let v = validate("6212345678900000004");
        assert!(v.valid, "{v:?}");
        assert!(!v.luhn_valid);
        assert_eq!(v.network, Some(UnionPay));
    }

    #[test]
    fn issuer_rules_override_the_network() {
        let rules = IssuerRules {
            lengths: Some(LengthSet::parse("19").unwrap()),
            luhn: Some(false),
        };
        // A 16-digit Visa that passes Luhn is not valid for an issuer of 19-digit numbers...
        let pan = |number| Pan::parse(number).unwrap();
        let with_rules = |pan: &Pan| validate_pan(pan, iin::detect(pan.digits()), rules);
        let v = with_rules(&pan("4111111111111111"));
        assert_eq!(v.failure, Some(Failure::TooShort));
        assert!(v.potentially_valid);
        // ...and a 19-digit one that fails Luhn is, when the issuer does not use Luhn.
        let v = with_rules(&pan("4111111111111111112"));
        assert!(v.valid, "{v:?}");
        assert!(!v.luhn_required);
    }

    #[test]
    fn garbage_is_never_potentially_valid() {
        check("x", None, false, false);
        check("411111y", None, false, false);
        check("723", None, false, false);
        check("32908234", None, false, false);
    }

    #[test]
    fn failures_say_why() {
        let failure = |s: &str| validate(s).failure;
        assert_eq!(failure(""), Some(Failure::Empty));
        assert_eq!(failure("4111x"), Some(Failure::NonDigit));
        assert_eq!(failure("411111"), Some(Failure::TooShort));
        assert_eq!(failure("4"), Some(Failure::TooShort));
        assert_eq!(failure("3782822463100051"), Some(Failure::TooLong));
        assert_eq!(failure("41111111111111111111"), Some(Failure::TooLong));
        assert_eq!(
            failure("41111111111111111"),
            Some(Failure::LengthInvalidForNetwork)
        );
        assert_eq!(failure("4111111111111112"), Some(Failure::LuhnFailed));
        assert_eq!(failure("7111111111111111"), Some(Failure::UnknownNetwork));
        assert_eq!(failure("4111111111111111"), None);
    }

    #[test]
    fn reports_lengths_and_masks() {
        let v = validate("4111 1111 1111 1111");
        assert!(v.length_valid && v.luhn_valid);
        assert_eq!(v.digit_count, 16);
        assert_eq!(v.masked, "************1111");
        assert_eq!(validate("4111").masked, "****");
        assert_eq!(validate("abc").masked, "");
    }
}
