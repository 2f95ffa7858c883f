//! `card-lookup`: serve (parse the configuration, load the BIN data, bind, serve until
//! SIGINT/SIGTERM), or run a command: `data`, `validate`, `lookup`, `mask`, `audit` (see `cli`).

use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use tokio::net::TcpListener;

use card_lookup::bins::BinStore;
use card_lookup::cli::{self, Cli, Command, DataCommand};
use card_lookup::config::{Args, Config};
use card_lookup::server::{self, Listeners};
use card_lookup::telemetry;

/// mimalloc rather than glibc's malloc: every answer is built from many small strings
/// (protobuf fields), and glibc's malloc spent up to a quarter of the server's time on them
/// under Inspect load; BENCHMARKS.md has the figures.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // A panic's message can hold request data; log where it happened, never what it said.
    std::panic::set_hook(Box::new(|info| {
        let location = info
            .location()
            .map_or_else(|| "unknown".to_owned(), ToString::to_string);
        tracing::error!(
            location,
            "panic (message withheld: it may hold request data)"
        );
        eprintln!("card-lookup: panic at {location}");
    }));
    let cli = Cli::parse();
    match cli.command {
        None => serve_command(cli.serve),
        Some(Command::Serve(args)) => serve_command(*args),
        Some(Command::Data(DataCommand::Check(files))) => {
            cli::check(&files, &mut std::io::stdout().lock()).unwrap_or_else(|error| {
                eprintln!("card-lookup: {error}");
                ExitCode::FAILURE
            })
        }
        Some(Command::Data(DataCommand::Convert { files, output })) => {
            match cli::convert(&files, output.as_ref()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    eprintln!("card-lookup: {error}");
                    ExitCode::FAILURE
                }
            }
        }
        Some(Command::Data(DataCommand::Sync(args))) => cli::sync::sync(&args),
        Some(Command::Validate(args)) => cli::validate(&args),
        Some(Command::Lookup(args)) => cli::lookup(&args),
        Some(Command::Mask(args)) => cli::mask(&args),
        Some(Command::Openapi) => {
            println!("{}", card_lookup::openapi::document());
            ExitCode::SUCCESS
        }
        Some(Command::Audit(command)) => cli::audit(&command),
    }
}

fn serve_command(args: Args) -> ExitCode {
    let config = match Config::try_from(args) {
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
    let store = BinStore::load(config.data_sources.clone(), config.load_options)
        .map_err(|e| format!("cannot load BIN data: {e}"))?;
    let info = store.info();
    for source in &info.sources {
        tracing::info!(
            source = source.name,
            format = source.format.slug(),
            rows = source.rows,
            skipped_rows = source.skipped_rows,
            "read BIN data"
        );
    }
    tracing::info!(
        bins = info.index.len(),
        version = info.index.version(),
        elapsed_ms = started.elapsed().as_millis(),
        "loaded {} BINs",
        info.index.len()
    );
    let bind = |addr| async move {
        TcpListener::bind(addr)
            .await
            .map_err(|e| format!("cannot listen on {addr}: {e}"))
    };
    let admin = match config.admin_listen {
        Some(addr) => Some(bind(addr).await?),
        None => None,
    };
    let health = match config.health_listen {
        Some(addr) => Some(bind(addr).await?),
        None => None,
    };
    let http = match config.http_listen {
        Some(addr) => Some(bind(addr).await?),
        None => None,
    };
    let listeners = Listeners {
        grpc: bind(config.listen).await?,
        metrics: bind(config.metrics_listen).await?,
        admin,
        health,
        http,
    };
    let local = |listener: &TcpListener| {
        listener
            .local_addr()
            .map_err(|e| format!("cannot read the bound address: {e}"))
    };
    // The bound addresses, not the configured ones: port 0 picks a free port.
    if let Some(http) = &listeners.http {
        tracing::info!("serving HTTP/JSON on {}", local(http)?);
    }
    tracing::info!(
        "serving gRPC on {}, metrics on http://{}/metrics",
        local(&listeners.grpc)?,
        local(&listeners.metrics)?
    );
    if let Some(admin) = &listeners.admin {
        tracing::info!("serving the admin service on {}", local(admin)?);
    }
    if let Some(health) = &listeners.health {
        tracing::info!("serving gRPC health only, plaintext, on {}", local(health)?);
    }
    // Boxed: the server future is large, and lives for the whole process anyway.
    Box::pin(server::run(
        &config,
        Arc::new(store),
        listeners,
        server::shutdown_signal(),
    ))
    .await
    .map_err(|e| e.to_string())
}
