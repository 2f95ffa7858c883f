//! Lower-case hex: how every hash and key the service shows is written (dataset versions,
//! fingerprints, the audit chain's hashes, the shared store's keys, made request ids).

/// The digits, by value.
pub(crate) const DIGITS: &[u8; 16] = b"0123456789abcdef";

/// `bytes` in lower-case hex.
#[must_use]
pub fn hex(bytes: &[u8]) -> String {
    let mut text = String::with_capacity(2 * bytes.len());
    text.extend(bytes.iter().flat_map(|&byte| pair(byte)).map(char::from));
    text
}

/// A SHA-256 digest or HMAC tag in hex, in an array: no allocation (fingerprints and the audit
/// chain make one a call, and write it where it goes).
#[must_use]
pub(crate) fn digest_hex(digest: &[u8; 32]) -> [u8; 64] {
    let mut hex = [0u8; 64];
    for (out, &byte) in hex.chunks_exact_mut(2).zip(digest) {
        [out[0], out[1]] = pair(byte);
    }
    hex
}

/// The two digits of `byte`, high one first.
fn pair(byte: u8) -> [u8; 2] {
    [
        DIGITS[usize::from(byte >> 4)],
        DIGITS[usize::from(byte & 0xf)],
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_are_two_lower_case_digits_each_high_first() {
        assert_eq!(hex(&[]), "");
        assert_eq!(hex(&[0x00, 0x0f, 0xa0, 0xff, 0x42]), "000fa0ff42");
    }

    #[test]
    fn a_digest_in_an_array_is_the_same_text() {
        let digest: [u8; 32] = std::array::from_fn(|i| (i * 37 + 5) as u8);
        assert_eq!(
            std::str::from_utf8(&digest_hex(&digest)).unwrap(),
            hex(&digest)
        );
        assert!(hex(&digest).starts_with("052a4f74"));
    }
}
