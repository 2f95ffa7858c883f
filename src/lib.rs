//! card-lookup: a gRPC service that validates card numbers, finds their issuer by BIN, and
//! masks them.
//!
//! The layout follows the path of a request, from the inside out:
//!
//! - [`card`]: the pure domain. Card numbers ([`card::Pan`], which never prints itself),
//!   networks and their IIN table, check digits, validation, masking, keyed fingerprints
//!   ([`card::FingerprintKeys`]) and the providers' published test cards ([`card::TestCards`],
//!   `data/test-cards.tsv` built in). No I/O, no gRPC.
//! - [`bins`]: BIN records, the data formats they are read from, the [`bins::BinIndex`]
//!   that answers by longest prefix (and knows which prefixes begin a longer entry), the facts of one number (its entry and network), and the
//!   live store that reloads it.
//! - [`card_testing`]: per-client detection of card testing, pooled across replicas through
//!   the [`shared_store`] when one is configured.
//! - [`api`]: the request layer below every front end: what a request must look like, the
//!   domain call, the answer as a proto message, one mapping between domain and proto.
//! - Front ends: `grpc` (the services: proto in, an [`api`] call, proto out; errors become
//!   `tonic::Status` in one place), `http` (`--http-listen`: binlist.net's lookup and the gRPC
//!   API as JSON by its `google.api.http` annotations, through the same admission and
//!   `grpc::observe`; errors become `google.rpc.Status` JSON in one place; [`openapi`], its
//!   description generated from the proto) and [`cli`] (the
//!   command line, offline through [`api`] or a client of a server, printing the same answers
//!   either way). [`client`]: what a Rust client needs beyond the generated stub (sending
//!   again a call its closing connection never sent), used by the CLI.
//! - In front of the gRPC services and the HTTP face: `incoming` (connections, TLS handshakes,
//!   peer identity, within the caps of [`connection_limits`]; `log_throttle` for the lines peers
//!   can cause) and [`admission`] (identity, rate limits, quotas shared through Redis, load shedding,
//!   timeouts, and the one place calls are counted).
//! - Leaves that any layer may use: [`identity`] (who a call comes from), [`request_id`] (a
//!   call's request id, the caller's or one made), [`shared_store`]
//!   (the Redis every replica shares: its connection, whether it answers), `token` (the rule
//!   for caller text that is logged), `eviction` (keeping per-client tables bounded), [`hex`]
//!   (how hashes and keys are written),
//!   [`telemetry`] (logging set-up, the metrics recorder, method names), [`proto`] (the
//!   generated types).
//! - [`audit`]: the audit trail (`--audit-dir`): every call carrying card data recorded by the
//!   request layer in hash-chained daily files by one writer thread, and `audit verify`.
//! - [`sync`]: `card-lookup data sync`, the updater that keeps a directory holding the BIN
//!   data an origin publishes (manifest, download, digest, check, one switch).
//! - [`config`]: flags, parsed and validated once. [`server`]: wiring, limits, health,
//!   reflection and shutdown. `main.rs` only parses the configuration, loads the data, binds
//!   the ports and calls [`server::run`], which tests call with their own listeners and
//!   shutdown signal.

pub mod admission;
pub mod api;
pub mod audit;
pub mod bins;
pub mod card;
pub mod card_testing;
pub mod cli;
pub mod client;
pub mod config;
pub mod connection_limits;
pub(crate) mod eviction;
pub(crate) mod grpc;
pub mod hex;
pub(crate) mod http;
pub use http::openapi;
pub mod identity;
pub(crate) mod incoming;
pub(crate) mod log_throttle;
pub mod proto;
pub mod request_id;
pub mod server;
pub mod shared_store;
pub mod sync;
pub mod telemetry;
pub mod tls;
pub(crate) mod token;
pub(crate) mod watch;
