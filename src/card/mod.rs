//! The card domain: card numbers, networks and their IIN ranges, check digits, validation,
//! masking, fingerprints and the providers' test cards.
//!
//! Pure functions over digits: no I/O, no gRPC. Everything here is safe to call on hostile input
//! (it never panics) and never puts a card number into an error or a `Debug` string.

pub mod check_digit;
pub mod domestic;
pub mod fingerprint;
pub mod iin;
pub mod luhn;
pub mod mask;
pub mod network;
pub mod pan;
mod prefixes;
pub mod test_cards;
pub mod validate;

pub use check_digit::CheckDigit;
pub use fingerprint::{FingerprintKey, FingerprintKeys, KeyFileError};
pub use mask::{MaskOptions, MaskStyle, MaskStyleError, mask};
pub use network::{CardNetwork, LengthSet, LengthSetError, NetworkSet};
pub use pan::{Pan, PanError};
pub use test_cards::{Providers, TestCardFileError, TestCards};
pub use validate::{Failure, IssuerRules, Validation, validate, validate_pan, validate_unparsed};
