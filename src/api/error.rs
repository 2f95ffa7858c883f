//! Why a request cannot be answered, and the gRPC status code of each reason (the code is
//! part of the API, whatever the front end: `grpc::error` turns these into a `Status`).
//! Messages name the field and the rule broken, never the value: the value may be a card
//! number.

use std::time::Duration;

use tonic::Code;

use crate::card::mask::MIN_PAN_DIGITS;
use crate::card::pan::MAX_DIGITS;
use crate::card::{MaskStyleError, PanError};

/// The fewest digits LookupBin accepts: a BIN is at least 6 digits (the index works out
/// "send more digits" from this many on).
pub const MIN_BIN_DIGITS: usize = crate::bins::index::MIN_LOOKUP_DIGITS;

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
    /// An Inspect item whose answers alone would not fit in a response: it is answered with
    /// this status and its validation only.
    #[error(
        "answer: larger than the {max} bytes one Inspect response may carry; only the validation is given (ask the card-lookup operators about this card's BIN data)"
    )]
    InspectItemTooLarge { max: usize },
    /// An Inspect request whose answers together would not fit in one response: it ends the
    /// stream, unanswered.
    #[error(
        "answer: this request's answers would be larger than the {max} bytes one Inspect response may carry (its first {fitting} items fit); send fewer items a request"
    )]
    InspectAnswerTooLarge { max: usize, fitting: usize },
    /// The client sent no request for `--inspect-idle-timeout`: the server ends the stream.
    #[error(
        "Inspect stream idle for {}; open a new stream when there is work",
        humantime::format_duration(*timeout)
    )]
    InspectIdle { timeout: Duration },
    /// The stream reached `--inspect-max-life`: the server ends it after the answer in
    /// progress.
    #[error(
        "Inspect stream reached its maximum life of {}; open a new stream and send the requests not yet answered",
        humantime::format_duration(*max_life)
    )]
    InspectMaxLife { max_life: Duration },
    /// `--audit-overflow block`, and the audit trail could not take the call's event (its
    /// writer behind, or failing to write): the call is not answered unaudited.
    #[error(
        "the audit trail cannot record this call now (its writer is behind or cannot write); try again shortly"
    )]
    AuditUnavailable,
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
            // As a request over the size limit: the same request can never be answered.
            Self::InspectItemTooLarge { .. } | Self::InspectAnswerTooLarge { .. } => {
                Code::OutOfRange
            }
            Self::InspectIdle { .. } => Code::DeadlineExceeded,
            // As gRPC answers the calls of a connection past its maximum age: reconnect.
            Self::InspectMaxLife { .. } | Self::AuditUnavailable => Code::Unavailable,
        }
    }
}
