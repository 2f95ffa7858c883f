//! Why a request cannot be answered, and the gRPC status code of each reason (the code is
//! part of the API, whatever the front end: `grpc::error` turns these into a `Status`).
//! Messages name the field and the rule broken, never the value: the value may be a card
//! number.

use tonic::Code;

use crate::card::mask::MIN_PAN_DIGITS;
use crate::card::pan::MAX_DIGITS;
use crate::card::{MaskStyleError, PanError};

/// The fewest digits LookupBin accepts: a BIN is at least 6 digits.
pub const MIN_BIN_DIGITS: usize = 6;

/// Why a request cannot be answered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("number: {0}")]
    Number(#[from] PanError),
    #[error("number: {digits} digits; LookupBin needs at least {MIN_BIN_DIGITS} (a BIN)")]
    TooFewDigitsForBin { digits: usize },
    #[error("number: {digits} digits; a card number has {MIN_PAN_DIGITS} to {MAX_DIGITS}")]
    NotACardNumber { digits: usize },
    #[error("mask_character: {0}")]
    MaskCharacter(#[from] MaskStyleError),
    #[error("style: {0} is not a MaskStyle value")]
    UnknownMaskStyle(i32),
    #[error("id: longer than {max} bytes")]
    InspectId { max: usize },
    #[error("items: {items} in one request; at most {max}")]
    InspectItems { items: usize, max: usize },
    #[error("bin_answers: {0} is not a BinAnswerLayout value")]
    UnknownBinAnswerLayout(i32),
    /// The client was flagged by card-testing detection and refusal is on.
    #[error(
        "refused: this client's calls look like card testing ({0}); ask the card-lookup operators"
    )]
    CardTesting(&'static str),
    /// A data reload failed; the message names the file, line and reason.
    #[error("reload failed, still serving the previous data: {0}")]
    Reload(String),
}

impl RequestError {
    /// The gRPC status code for this error.
    #[must_use]
    pub fn code(&self) -> Code {
        match self {
            Self::Number(_)
            | Self::TooFewDigitsForBin { .. }
            | Self::NotACardNumber { .. }
            | Self::MaskCharacter(_)
            | Self::UnknownMaskStyle(_)
            | Self::InspectId { .. }
            | Self::InspectItems { .. }
            | Self::UnknownBinAnswerLayout(_) => Code::InvalidArgument,
            Self::Reload(_) => Code::FailedPrecondition,
            Self::CardTesting(_) => Code::PermissionDenied,
        }
    }
}
