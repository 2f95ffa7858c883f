//! card-lookup: a gRPC service that validates card numbers, finds their issuer by BIN, and
//! masks them.
//!
//! The layout follows the path of a request, from the inside out:
//!
//! - [`card`]: the pure domain. Card numbers ([`card::Pan`], which never prints itself),
//!   networks and their IIN table, Luhn, validation and masking. No I/O, no gRPC.
//! - [`bins`]: BIN records, the data formats they are read from, and the [`bins::BinIndex`]
//!   that answers by longest prefix.
//! - [`grpc`]: the service implementations; proto in, a domain call, proto out. Errors become
//!   `tonic::Status` in one place ([`grpc::error`]).
//! - [`proto`]: the generated types of `proto/cardlookup/v1/card_lookup.proto`.
//! - [`telemetry`]: logs and Prometheus metrics. [`config`]: flags, parsed and validated once.
//! - [`server`]: wiring, limits, health, reflection and shutdown. `main.rs` only parses the
//!   configuration, loads the data, binds the ports and calls [`server::run`], which tests call
//!   with their own listeners and shutdown signal.

pub mod admission;
pub mod bins;
pub mod card;
pub mod card_testing;
pub mod cli;
pub mod config;
pub mod grpc;
pub mod incoming;
pub mod proto;
pub mod server;
pub mod telemetry;
pub mod tls;
pub mod watch;
