//! The gRPC services: proto in, a domain call, proto out.
//!
//! [`error`] is the one place where errors become `tonic::Status`; [`observe`] wraps every call
//! with its request id, metrics and log line; [`inspect`] answers the batches of the Inspect
//! stream, which [`card_lookup`] serves.

pub mod admin;
pub mod card_lookup;
mod convert;
pub mod error;
pub mod inspect;
pub mod observe;

pub use admin::Admin;
pub use card_lookup::CardLookup;
