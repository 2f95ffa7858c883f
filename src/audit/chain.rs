//! The hash chain that makes the files tamper-evident. Every line is a JSON object whose last
//! two members are `prev`, the hash of the line before it (in this file, or for a file's first
//! line the last line of the replica's previous file), and `hash`, the hash of the line itself:
//! SHA-256, or HMAC-SHA-256 under `--audit-hmac-key-file`, of the line's text up to `prev`'s
//! value and the closing brace (the line without `,"hash":"..."`).
//!
//! An edited byte changes that line's hash; a removed line leaves the next one naming a `prev`
//! that is not the line before it; a removed file leaves the next one naming a `prev` that is
//! not the previous file's last line. Without a key anyone who can write the files can rebuild
//! the chain after an edit; with one only a holder of the key can.

use sha2::{Digest, Sha256};

use crate::card::FingerprintKey;
use crate::hex::{digest_hex, hex};

/// The `prev` of a replica's very first line: no line came before it.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What every line ends with after its body: `,"hash":"`, 64 hex digits, `"}`.
const HASH_MEMBER: &str = ",\"hash\":\"";
const SEAL_LEN: usize = HASH_MEMBER.len() + 64 + 2;

/// How lines are hashed: SHA-256, or HMAC-SHA-256 under a key.
#[derive(Debug, Clone, Default)]
pub struct Chain {
    key: Option<FingerprintKey>,
}

impl Chain {
    /// Lines hashed with HMAC-SHA-256 under `key`, or plain SHA-256 without one.
    #[must_use]
    pub fn new(key: Option<FingerprintKey>) -> Self {
        Self { key }
    }

    /// The hash of a line's body (the line without its `hash` member), in hex.
    #[must_use]
    pub fn hash(&self, body: &[u8]) -> String {
        hex(&self.digest(body))
    }

    fn digest(&self, body: &[u8]) -> [u8; 32] {
        match &self.key {
            Some(key) => key.mac(body),
            None => Sha256::digest(body).into(),
        }
    }

    /// Ends the line that `line[start..]` holds, a JSON object without its closing brace, with
    /// `prev` (the hash of the line before it) and its own hash and a newline; `prev` becomes
    /// the line's hash. The writer seals every event: the hex is written in place, without an
    /// allocation.
    pub(crate) fn seal(&self, line: &mut Vec<u8>, start: usize, prev: &mut String) {
        line.extend_from_slice(b",\"prev\":\"");
        line.extend_from_slice(prev.as_bytes());
        line.extend_from_slice(b"\"}");
        let digest = self.digest(&line[start..]);
        line.pop();
        line.extend_from_slice(HASH_MEMBER.as_bytes());
        let hex = digest_hex(&digest);
        line.extend_from_slice(&hex);
        line.extend_from_slice(b"\"}\n");
        prev.clear();
        prev.push_str(std::str::from_utf8(&hex).expect("hex digits are ASCII"));
    }

    /// Checks a line's own hash: its body and stated hash when they agree, else why not.
    pub(crate) fn open<'a>(&self, line: &'a str) -> Result<(String, &'a str), SealError> {
        let Some(split) = line.len().checked_sub(SEAL_LEN) else {
            return Err(SealError::NoHash);
        };
        let (head, seal) = line.split_at_checked(split).ok_or(SealError::NoHash)?;
        let stated = seal
            .strip_prefix(HASH_MEMBER)
            .and_then(|rest| rest.strip_suffix("\"}"))
            .filter(|hash| hash.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or(SealError::NoHash)?;
        let body = format!("{head}}}");
        if self.hash(body.as_bytes()) != stated {
            return Err(SealError::Mismatch);
        }
        Ok((body, stated))
    }
}

/// Why a line's own hash does not hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error("the line does not end with its hash")]
    NoHash,
    #[error("the line's hash does not match its text (the line was changed)")]
    Mismatch,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_line_opens_and_an_edited_one_does_not() {
        let chain = Chain::default();
        let mut line = b"{\"a\":1".to_vec();
        let mut hash = GENESIS.to_owned();
        chain.seal(&mut line, 0, &mut hash);
        let line = String::from_utf8(line).unwrap();
        let line = line.strip_suffix('\n').unwrap();
        let (body, stated) = chain.open(line).unwrap();
        assert_eq!(stated, hash);
        assert_eq!(hash, chain.hash(body.as_bytes()));
        assert!(body.ends_with(&format!("\"prev\":\"{GENESIS}\"}}")));
        let edited = line.replacen("\"a\":1", "\"a\":2", 1);
        assert_eq!(chain.open(&edited), Err(SealError::Mismatch));
        assert_eq!(chain.open("{}"), Err(SealError::NoHash));
    }

    #[test]
    fn a_keyed_chain_differs_from_the_plain_one() {
        let key = FingerprintKey::new("k1", &[7; 32]);
        let body = b"{\"prev\":\"0\"}";
        assert_ne!(
            Chain::new(Some(key)).hash(body),
            Chain::default().hash(body)
        );
    }
}
