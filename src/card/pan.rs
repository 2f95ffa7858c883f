//! Card numbers (PANs) as normalised digits that never print themselves.

use std::fmt;

use zeroize::Zeroize;

/// The most digits a card number has (ISO/IEC 7812-1).
pub const MAX_DIGITS: usize = 19;

/// A whole or partial card number: 1 to 19 digits, separators removed.
///
/// Its `Debug` and `Display` show only a masked form, so a `Pan` can go into a log line or an
/// error by accident without leaking the number; its digits are wiped from memory on drop.
#[derive(Clone, PartialEq, Eq)]
pub struct Pan {
    digits: [u8; MAX_DIGITS],
    len: u8,
}

/// Why a string is not a card number. Never carries the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PanError {
    #[error("no digits")]
    Empty,
    #[error("contains a character other than digits, spaces and dashes")]
    NonDigit,
    #[error("{digit_count} digits, more than the {MAX_DIGITS} a card number can have")]
    TooLong {
        digit_count: usize,
        /// The first 19 digits, from which the network can still be told.
        leading: Pan,
    },
}

impl Pan {
    /// Parses digits, ignoring spaces, tabs, line breaks and dashes anywhere.
    ///
    /// # Errors
    /// [`PanError`] when there are no digits, a character that is not a digit or separator, or
    /// more than [`MAX_DIGITS`] digits.
    pub fn parse(input: &str) -> Result<Self, PanError> {
        let mut pan = Self {
            digits: [0; MAX_DIGITS],
            len: 0,
        };
        let mut digit_count = 0usize;
        for byte in input.bytes() {
            match byte {
                b'0'..=b'9' => {
                    if digit_count < MAX_DIGITS {
                        pan.digits[digit_count] = byte - b'0';
                    }
                    digit_count += 1;
                }
                b' ' | b'-' | b'\t' | b'\n' | b'\r' => {}
                _ => return Err(PanError::NonDigit),
            }
        }
        // Bounded by MAX_DIGITS, so it fits in a u8.
        pan.len = digit_count.min(MAX_DIGITS) as u8;
        match digit_count {
            0 => Err(PanError::Empty),
            n if n > MAX_DIGITS => Err(PanError::TooLong {
                digit_count: n,
                leading: pan,
            }),
            _ => Ok(pan),
        }
    }

    /// The digits as values 0 to 9, most significant first.
    #[must_use]
    pub fn digits(&self) -> &[u8] {
        &self.digits[..usize::from(self.len)]
    }

    /// How many digits there are (1 to 19).
    #[must_use]
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// Always false: a `Pan` has at least one digit. Here for API symmetry with `len`.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Drop for Pan {
    fn drop(&mut self) {
        self.digits.zeroize();
    }
}

/// Prints the masked form: the last four digits of a whole number, nothing of a partial one.
impl fmt::Debug for Pan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pan({self})")
    }
}

impl fmt::Display for Pan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::card::mask::mask_for_display(self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_spaces_and_dashes() {
        let pan = Pan::parse(" 4111-1111 1111\t1111 ").unwrap();
        assert_eq!(pan.len(), 16);
        assert_eq!(pan.digits()[..6], [4, 1, 1, 1, 1, 1]);
    }

    #[test]
    fn reports_empty_non_digit_and_too_long() {
        assert_eq!(Pan::parse(" - ").unwrap_err(), PanError::Empty);
        assert_eq!(Pan::parse("4111x").unwrap_err(), PanError::NonDigit);
        assert_eq!(Pan::parse("٤١١١").unwrap_err(), PanError::NonDigit);
        match Pan::parse("50000000000000000009").unwrap_err() {
            PanError::TooLong {
                digit_count,
                leading,
            } => {
                assert_eq!(digit_count, 20);
                assert_eq!(leading.len(), 19);
            }
            other => panic!("expected TooLong, got {other:?}"),
        }
    }

    #[test]
    fn debug_and_display_never_show_the_number() {
        let pan = Pan::parse("4111111111111111").unwrap();
        assert_eq!(format!("{pan:?}"), "Pan(************1111)");
        assert_eq!(pan.to_string(), "************1111");
        let partial = Pan::parse("411111").unwrap();
        assert_eq!(partial.to_string(), "******");
    }

    #[test]
    fn error_messages_never_carry_digits() {
        let err = Pan::parse("41111111111111111111111").unwrap_err();
        let message = err.to_string();
        assert!(!message.contains("4111"), "{message}");
        let debug = format!("{err:?}");
        assert!(!debug.contains("4111"), "{debug}");
    }
}
