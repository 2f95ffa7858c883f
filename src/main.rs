//! `card-lookup`: parse the configuration, load the BIN data, bind, serve until SIGINT/SIGTERM.

use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use tokio::net::TcpListener;

use card_lookup::bins::load_index;
use card_lookup::config::{Args, Config};
use card_lookup::server::{self, Listeners};
use card_lookup::telemetry;

fn main() -> ExitCode {
    let config = match Config::try_from(Args::parse()) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("card-lookup: {error}");
            return ExitCode::from(2);
        }
    };
    telemetry::init_tracing(config.log_format);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("card-lookup: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error}");
            eprintln!("card-lookup: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: Config) -> Result<(), String> {
    let started = std::time::Instant::now();
    let index =
        load_index(&config.data_sources).map_err(|e| format!("cannot load BIN data: {e}"))?;
    tracing::info!(
        bins = index.len(),
        version = index.version(),
        elapsed_ms = started.elapsed().as_millis(),
        "loaded {} BINs",
        index.len()
    );
    let bind = |addr| async move {
        TcpListener::bind(addr)
            .await
            .map_err(|e| format!("cannot listen on {addr}: {e}"))
    };
    let listeners = Listeners {
        grpc: bind(config.listen).await?,
        metrics: bind(config.metrics_listen).await?,
    };
    let local = |listener: &TcpListener| {
        listener
            .local_addr()
            .map_err(|e| format!("cannot read the bound address: {e}"))
    };
    // The bound addresses, not the configured ones: port 0 picks a free port.
    tracing::info!(
        "serving gRPC on {}, metrics on http://{}/metrics",
        local(&listeners.grpc)?,
        local(&listeners.metrics)?
    );
    server::run(
        &config,
        Arc::new(index),
        listeners,
        server::shutdown_signal(),
    )
    .await
    .map_err(|e| e.to_string())
}
