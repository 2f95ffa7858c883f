//! The gRPC front end: proto in, a call to the request layer ([`crate::api`]), proto out.
//!
//! [`error`] is the one place where errors become `tonic::Status`; [`observe`] gives every
//! call its request id and log line (admission counts it in the metrics); [`inspect_stream`]
//! ends an Inspect stream that is idle too long or has lived its life.

pub(crate) mod admin;
pub(crate) mod card_lookup;
mod error;
pub(crate) mod inspect_stream;
pub(crate) mod observe;

pub(crate) use admin::Admin;
pub(crate) use card_lookup::CardLookup;
