//! Card fingerprints: a keyed hash of a card number, equal for the same number under the same
//! key (on every replica that holds it), so callers can tell that two requests carried the same
//! card without storing its number.
//!
//! A fingerprint is `ID:HEX`: the id of the key that signed it, then HMAC-SHA-256 (RFC 2104)
//! of the number's digits as ASCII text (no separators), under that key, in 64 lower-case hex
//! digits. It is keyed, not a plain hash: a plain SHA-256 of a number can be reversed by trying
//! the 10^9 or so numbers of a BIN, which takes seconds; without the key nobody can.
//!
//! The keys come from the operator's key file ([`FingerprintKeys::parse`]): one key a line, the
//! first signs. The key id in each fingerprint says which key made it, so a new key can be put
//! first while fingerprints stored under the old one are still told apart from the new ones.
//!
//! Neither the keys nor the digits hashed appear in a `Debug` string or an error.

use std::fmt;
use std::sync::Arc;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

use super::Pan;
use super::mask::MIN_PAN_DIGITS;
use crate::hex::digest_hex;

/// The fewest bytes a secret in the key file may have: a key as long as the hash (RFC 2104,
/// section 3).
pub const MIN_SECRET_BYTES: usize = 32;
/// The most bytes a secret may have: a key longer than SHA-256's 64-byte block is hashed first,
/// so more would add nothing.
pub const MAX_SECRET_BYTES: usize = 64;
/// The longest key id.
pub const MAX_KEY_ID_LEN: usize = 32;

/// One fingerprint key: its id and HMAC-SHA-256 keyed with its secret.
#[derive(Clone)]
pub struct FingerprintKey {
    id: String,
    /// The HMAC with the key already absorbed: each fingerprint clones it and hashes only the
    /// digits (two SHA-256 blocks rather than four).
    mac: Hmac<Sha256>,
    /// Kept for comparing configurations; wiped on drop.
    secret: Zeroizing<Vec<u8>>,
}

impl FingerprintKey {
    /// A key named `id` with `secret` (any length; the key file asks for 32 to 64 bytes).
    ///
    /// # Panics
    /// Never: HMAC takes a key of any length.
    #[must_use]
    pub fn new(id: &str, secret: &[u8]) -> Self {
        Self {
            id: id.to_owned(),
            mac: Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes a key of any length"),
            secret: Zeroizing::new(secret.to_vec()),
        }
    }

    /// The key's id, as it prefixes its fingerprints.
    #[must_use]
    pub fn id(&self) -> &str {
        &self.id
    }

    /// HMAC-SHA-256 of `message` under this key.
    #[must_use]
    pub fn mac(&self, message: &[u8]) -> [u8; 32] {
        let mut mac = self.mac.clone();
        mac.update(message);
        mac.finalize().into_bytes().into()
    }

    /// The fingerprint of `pan`: `ID:` and the HMAC of its digits, in hex.
    ///
    /// # Panics
    /// Never: hex digits are ASCII.
    #[must_use]
    pub fn fingerprint(&self, pan: &Pan) -> String {
        let mut text = Zeroizing::new([0u8; super::pan::MAX_DIGITS]);
        for (ascii, digit) in text.iter_mut().zip(pan.digits()) {
            *ascii = b'0' + digit;
        }
        let tag = self.mac(&text[..pan.len()]);
        // Hex into an array first, pushed at once: pushing 64 chars one by one cost more.
        let hex = digest_hex(&tag);
        let mut out = String::with_capacity(self.id.len() + 1 + hex.len());
        out.push_str(&self.id);
        out.push(':');
        out.push_str(std::str::from_utf8(&hex).expect("hex digits are ASCII"));
        out
    }
}

impl PartialEq for FingerprintKey {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id && self.secret == other.secret
    }
}

impl fmt::Debug for FingerprintKey {
    /// The id only: never the secret.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FingerprintKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// The operator's fingerprint keys, in the key file's order: the first signs. Cheap to clone.
#[derive(Debug, Clone, PartialEq)]
pub struct FingerprintKeys {
    keys: Arc<[FingerprintKey]>,
}

/// Why a key file cannot be used. Names the line, never its text (which may hold a secret).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyFileError {
    #[error("holds no key (one a line: ID SECRET)")]
    NoKey,
    #[error("line {line}: {problem}")]
    Line { line: usize, problem: &'static str },
    #[error("line {line}: its key id is also an earlier line's")]
    DuplicateId { line: usize },
}

impl FingerprintKeys {
    /// Reads a key file's text: one key a line, `ID SECRET` separated by spaces or tabs; blank
    /// lines and lines starting with `#` ignored. ID is 1 to 32 letters, digits, `.`, `_` or
    /// `-`, and differs from every other line's; SECRET is 32 to 64 bytes in hex (64 to 128
    /// hex digits), as `openssl rand -hex 32` prints.
    ///
    /// # Errors
    /// [`KeyFileError`]: no key, a line that is not `ID SECRET`, or an id given twice.
    pub fn parse(text: &str) -> Result<Self, KeyFileError> {
        let mut keys: Vec<FingerprintKey> = Vec::new();
        for (number, line) in text.lines().enumerate() {
            let line_no = number + 1;
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let problem = |problem| KeyFileError::Line {
                line: line_no,
                problem,
            };
            let mut fields = line.split_ascii_whitespace();
            let (Some(id), Some(secret), None) = (fields.next(), fields.next(), fields.next())
            else {
                return Err(problem(
                    "expected a key id and a secret, separated by a space",
                ));
            };
            if id.len() > MAX_KEY_ID_LEN
                || !id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
            {
                return Err(problem(
                    "the key id must be 1 to 32 letters, digits, '.', '_' or '-'",
                ));
            }
            let secret = decode_hex(secret).ok_or_else(|| {
                problem("the secret must be 64 to 128 hex digits (32 to 64 bytes)")
            })?;
            if keys.iter().any(|key| key.id == id) {
                return Err(KeyFileError::DuplicateId { line: line_no });
            }
            keys.push(FingerprintKey::new(id, &secret));
        }
        if keys.is_empty() {
            return Err(KeyFileError::NoKey);
        }
        Ok(Self { keys: keys.into() })
    }

    /// The key that signs: the file's first.
    #[must_use]
    pub fn signing(&self) -> &FingerprintKey {
        &self.keys[0]
    }

    /// Every key, the signing key first.
    #[must_use]
    pub fn all(&self) -> &[FingerprintKey] {
        &self.keys
    }

    /// The card's fingerprint under the signing key: for a whole number only (at least
    /// [`MIN_PAN_DIGITS`]); a partial number, a BIN, gets none. Answers and the audit trail
    /// both follow this rule.
    #[must_use]
    pub fn of_card(&self, pan: &Pan) -> Option<String> {
        (pan.len() >= MIN_PAN_DIGITS).then(|| self.signing().fingerprint(pan))
    }
}

/// The bytes of a secret written in hex, when it is 32 to 64 bytes of it.
fn decode_hex(text: &str) -> Option<Zeroizing<Vec<u8>>> {
    let bytes = text.as_bytes();
    if !bytes.len().is_multiple_of(2)
        || !(2 * MIN_SECRET_BYTES..=2 * MAX_SECRET_BYTES).contains(&bytes.len())
    {
        return None;
    }
    let nibble = |c: u8| char::from(c).to_digit(16).map(|v| v as u8);
    let mut out = Zeroizing::new(Vec::with_capacity(bytes.len() / 2));
    for pair in bytes.chunks_exact(2) {
        out.push(nibble(pair[0])? << 4 | nibble(pair[1])?);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hex::hex;

    /// RFC 4231, section 4: the HMAC-SHA-256 test cases (case 5's output truncated to 128 bits
    /// as the RFC gives it).
    #[test]
    fn hmac_matches_rfc_4231_test_vectors() {
        let long_key = [0xaa; 131];
        let cases: [(&[u8], &[u8], &str); 7] = [
            (
                &[0x0b; 20],
                b"Hi There",
                "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
            ),
            (
                b"Jefe",
                b"what do ya want for nothing?",
                "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
            ),
            (
                &[0xaa; 20],
                &[0xdd; 50],
                "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe",
            ),
            (
                &[
                    1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22,
                    23, 24, 25,
                ],
                &[0xcd; 50],
                "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b",
            ),
            (
                &[0x0c; 20],
                b"Test With Truncation",
                "a3b6167473100ee06e0c796c2955552b",
            ),
            (
                &long_key,
                b"Test Using Larger Than Block-Size Key - Hash Key First",
                "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
            ),
            (
                &long_key,
                b"This is a test using a larger than block-size key and a larger than \
                  block-size data. The key needs to be hashed before being used by the HMAC \
                  algorithm.",
                "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2",
            ),
        ];
        for (number, (key, data, expected)) in cases.into_iter().enumerate() {
            let tag = hex(&FingerprintKey::new("rfc", key).mac(data));
            assert_eq!(&tag[..expected.len()], expected, "test case {}", number + 1);
        }
    }

    const KEY_A: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
    const KEY_B: &str = "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100";

    #[test]
    fn a_fingerprint_is_the_key_id_and_the_hmac_of_the_digits() {
        let keys = FingerprintKeys::parse(&format!("k1 {KEY_A}\n")).unwrap();
        let pan = Pan::parse("4242 4242 4242 4242").unwrap();
        let secret = decode_hex(KEY_A).unwrap();
        let expected = format!(
            "k1:{}",
            hex(&FingerprintKey::new("k1", &secret).mac(b"4242424242424242"))
        );
        assert_eq!(keys.signing().fingerprint(&pan), expected);
        assert_eq!(expected.len(), 3 + 64);
    }

    #[test]
    fn the_first_key_signs_and_another_key_gives_another_fingerprint() {
        let pan = Pan::parse("5555555555554444").unwrap();
        let ab =
            FingerprintKeys::parse(&format!("# rotated\n\nnew {KEY_B}\nold\t{KEY_A}\n")).unwrap();
        let a = FingerprintKeys::parse(&format!("old {KEY_A}")).unwrap();
        assert_eq!(ab.signing().id(), "new");
        assert_eq!(ab.all().len(), 2);
        assert_eq!(ab.all()[1].fingerprint(&pan), a.signing().fingerprint(&pan));
        let (new, old) = (
            ab.signing().fingerprint(&pan),
            a.signing().fingerprint(&pan),
        );
        assert_ne!(new[4..], old[4..]);
        // Same key, same number: same fingerprint, whoever computes it.
        assert_eq!(
            FingerprintKeys::parse(&format!("old {KEY_A}"))
                .unwrap()
                .signing()
                .fingerprint(&pan),
            old
        );
        let other = Pan::parse("5555555555554445").unwrap();
        assert_ne!(a.signing().fingerprint(&other), old);
    }

    #[test]
    fn bad_key_files_name_the_line_never_its_text() {
        let short = &KEY_A[..62];
        for (text, expected) in [
            ("", KeyFileError::NoKey),
            ("# only a comment\n\n", KeyFileError::NoKey),
            (KEY_A, line(1)),
            (&format!("k1 {short}"), line(1)),
            (&format!("k1 {KEY_A}{KEY_A}00"), line(1)),
            (&format!("k1 {}", KEY_A.replace('0', "g")), line(1)),
            (&format!("k1 {KEY_A} extra"), line(1)),
            (&format!("k:1 {KEY_A}"), line(1)),
            (&format!("{} {KEY_A}", "k".repeat(33)), line(1)),
            (
                &format!("k1 {KEY_A}\nk1 {KEY_B}"),
                KeyFileError::DuplicateId { line: 2 },
            ),
        ] {
            let error = FingerprintKeys::parse(text).unwrap_err();
            assert_eq!(
                std::mem::discriminant(&error),
                std::mem::discriminant(&expected),
                "{text:?}"
            );
            if let (KeyFileError::Line { line: got, .. }, KeyFileError::Line { line: want, .. }) =
                (&error, &expected)
            {
                assert_eq!(got, want);
            }
            let message = error.to_string();
            assert!(!message.contains("0a0b0c"), "{message}");
        }
    }

    fn line(line: usize) -> KeyFileError {
        KeyFileError::Line { line, problem: "" }
    }

    #[test]
    fn debug_never_shows_a_secret() {
        let keys = FingerprintKeys::parse(&format!("k1 {KEY_A}")).unwrap();
        let debug = format!("{keys:?}");
        assert!(debug.contains("k1"), "{debug}");
        assert!(
            !debug.contains("0a0b0c") && !debug.contains("10, 11"),
            "{debug}"
        );
    }
}
