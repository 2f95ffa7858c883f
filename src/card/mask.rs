//! Masking card numbers for display and logs, within what PCI DSS 3.4.1 allows.
//!
//! The most a masked number shows is its BIN and last four digits: the first 6 digits, or the
//! first 8 when the BIN that matched is 8 digits long and the number has at least 16 digits.
//! On top of that, this module always hides at least [`MIN_HIDDEN_DIGITS`] digits, and hides
//! every digit of something too short to be a whole card number.

use super::network::CardNetwork;
use super::pan::Pan;

/// Fewer digits than this cannot be a whole card number: they are hidden entirely.
pub const MIN_PAN_DIGITS: usize = 12;
/// A masked number hides at least this many digits; the leading digits go first.
pub const MIN_HIDDEN_DIGITS: usize = 3;
const LAST_FOUR: usize = 4;

/// How much of a number to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MaskStyle {
    #[default]
    LastFour,
    BinAndLastFour,
    All,
}

/// The mask character was not one character, or was a digit or white space.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the mask character must be one character that is not a digit or white space")]
pub struct MaskStyleError;

/// How to mask.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaskOptions {
    pub style: MaskStyle,
    pub mask_char: char,
    /// Print the digits in the network's groups, separated by spaces.
    pub keep_grouping: bool,
}

impl Default for MaskOptions {
    fn default() -> Self {
        Self {
            style: MaskStyle::LastFour,
            mask_char: '*',
            keep_grouping: false,
        }
    }
}

impl MaskOptions {
    /// Checks a caller's mask character: exactly one character, not a digit, not white space.
    ///
    /// # Errors
    /// [`MaskStyleError`] when it is anything else.
    pub fn parse_mask_char(text: &str) -> Result<char, MaskStyleError> {
        let mut chars = text.chars();
        match (chars.next(), chars.next()) {
            (Some(c), None) if !c.is_numeric() && !c.is_whitespace() && !c.is_control() => Ok(c),
            _ => Err(MaskStyleError),
        }
    }
}

/// How many leading and trailing digits of a number of `len` digits a mask of `style` shows:
/// none of a partial number, at least [`MIN_HIDDEN_DIGITS`] hidden, 8 leading digits only when
/// the BIN that matched (`bin_len`) is that long.
#[must_use]
pub fn shown_digits(len: usize, style: MaskStyle, bin_len: usize) -> (usize, usize) {
    let (leading, trailing) = match style {
        _ if len < MIN_PAN_DIGITS => (0, 0),
        MaskStyle::All => (0, 0),
        MaskStyle::LastFour => (0, LAST_FOUR),
        MaskStyle::BinAndLastFour if bin_len >= 8 && len >= 16 => (8, LAST_FOUR),
        MaskStyle::BinAndLastFour => (6, LAST_FOUR),
    };
    if len < leading + trailing + MIN_HIDDEN_DIGITS {
        (0, trailing)
    } else {
        (leading, trailing)
    }
}

/// Masks a number.
///
/// `network` chooses the grouping; `bin_len` is the length of the BIN that matched in the BIN
/// data (0 when none did), which decides whether 8 leading digits may show.
#[must_use]
pub fn mask(
    pan: &Pan,
    network: Option<CardNetwork>,
    bin_len: usize,
    options: &MaskOptions,
) -> String {
    let digits = pan.digits();
    let len = digits.len();
    let (leading, trailing) = shown_digits(len, options.style, bin_len);
    let gaps: &[u8] = match (options.keep_grouping, network) {
        (false, _) => &[],
        (true, Some(network)) => network.spec().gaps,
        (true, None) => CardNetwork::Visa.spec().gaps,
    };

    // Built as bytes (digits, spaces and the mask character's UTF-8 form, so always UTF-8), a
    // group at a time: a run of hidden digits is one fill.
    let mut mask_utf8 = [0; 4];
    let hidden = options.mask_char.encode_utf8(&mut mask_utf8).as_bytes();
    let mut masked = Vec::with_capacity(len * hidden.len() + gaps.len());
    let shown = |range: std::ops::Range<usize>| digits[range].iter().map(|&digit| b'0' + digit);
    let mut start = 0;
    for end in gaps
        .iter()
        .map(|&gap| usize::from(gap))
        .filter(|&gap| gap < len)
        .chain([len])
    {
        if start > 0 {
            masked.push(b' ');
        }
        let hide_from = leading.clamp(start, end);
        let hide_to = (len - trailing).clamp(hide_from, end);
        masked.extend(shown(start..hide_from));
        if let &[byte] = hidden {
            masked.resize(masked.len() + (hide_to - hide_from), byte);
        } else {
            (hide_from..hide_to).for_each(|_| masked.extend_from_slice(hidden));
        }
        masked.extend(shown(hide_to..end));
        start = end;
    }
    String::from_utf8(masked).unwrap_or_default()
}

/// The form used wherever the service shows a number of its own accord (Validate's
/// `masked_number`, `Debug` of [`Pan`]): last four digits, default mask character.
#[must_use]
pub fn mask_for_display(pan: &Pan) -> String {
    mask(pan, None, 0, &MaskOptions::default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn masked(number: &str, style: MaskStyle, bin_len: usize, grouping: bool) -> String {
        let pan = Pan::parse(number).unwrap();
        let network = crate::card::iin::detect(pan.digits()).network;
        let options = MaskOptions {
            style,
            keep_grouping: grouping,
            ..MaskOptions::default()
        };
        mask(&pan, network, bin_len, &options)
    }

    #[test]
    fn styles() {
        use MaskStyle::*;
        assert_eq!(
            masked("4111111111111111", LastFour, 6, false),
            "************1111"
        );
        assert_eq!(
            masked("4111111111111111", BinAndLastFour, 6, false),
            "411111******1111"
        );
        assert_eq!(
            masked("4111111111111111", All, 6, false),
            "****************"
        );
    }

    #[test]
    fn eight_leading_digits_only_for_eight_digit_bins_on_long_numbers() {
        use MaskStyle::BinAndLastFour;
        assert_eq!(
            masked("4111111111111111", BinAndLastFour, 8, false),
            "41111111****1111"
        );
        assert_eq!(
            masked("378282246310005", BinAndLastFour, 8, false),
            "378282*****0005"
        );
    }

    #[test]
    fn grouping_follows_the_network() {
        use MaskStyle::*;
        assert_eq!(
            masked("378282246310005", LastFour, 0, true),
            "**** ****** *0005"
        );
        assert_eq!(
            masked("30569309025904", BinAndLastFour, 6, true),
            "3056 93**** 5904"
        );
        assert_eq!(
            masked("4111111111111111", LastFour, 0, true),
            "**** **** **** 1111"
        );
        assert_eq!(
            masked("6212345678900000003", LastFour, 0, true),
            "**** **** **** ***0 003"
        );
    }

    #[test]
    fn short_numbers_keep_enough_hidden() {
        use MaskStyle::*;
        assert_eq!(
            masked("500000000000", BinAndLastFour, 6, false),
            "********0000"
        );
        assert_eq!(
            masked("4222222222222", BinAndLastFour, 6, false),
            "422222***2222"
        );
        assert_eq!(masked("41111111111", LastFour, 6, false), "***********");
    }

    #[test]
    fn mask_character_rules() {
        assert_eq!(MaskOptions::parse_mask_char("#"), Ok('#'));
        assert_eq!(MaskOptions::parse_mask_char("•"), Ok('•'));
        assert!(MaskOptions::parse_mask_char("").is_err());
        assert!(MaskOptions::parse_mask_char("**").is_err());
        assert!(MaskOptions::parse_mask_char("7").is_err());
        assert!(MaskOptions::parse_mask_char(" ").is_err());
    }
}
