//! The integration tests, one module per behaviour, in one test binary: each binary links
//! tonic, hyper and tokio, and linking them once instead of once a file is most of what a
//! fresh `cargo test` saves.
//!
//! Tests that read process-wide state exactly stay in their own binaries beside this one
//! (`tests/metrics.rs`, `tests/cancelled_calls.rs`, `tests/counted_calls.rs`,
//! `tests/reload.rs`): the metrics recorder is one per process, and every server started here
//! adds to its counts and sets its gauges. They share `common` with this binary.

mod common;

mod admission;
mod audit;
mod binary;
mod card_testing;
mod cli_file;
mod cli_help;
mod cli_offline;
mod cli_server;
mod co_badging;
mod conformance;
mod connections;
mod data_cli;
mod fingerprint;
mod health_and_reflection;
mod http;
mod inspect;
mod lookup_bin;
mod mask_card;
mod networks;
mod properties;
mod quota;
mod request_handling;
mod shutdown;
mod test_cards;
mod tls;
mod validate;
