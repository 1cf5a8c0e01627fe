//! The `roomcast` binary: flags, logging, signals, and the subcommands
//! (`db copy`) run instead of the server; the rest is the library.

use std::io::IsTerminal;

use anyhow::Context;
use clap::Parser;
use roomcast_server::command::{Command, DbCommand};
use roomcast_server::logging::{LogFormat, OneLine};
use roomcast_server::store::copy;
use roomcast_server::{Args, Config};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = Args::parse();
    // Every event on one line, whatever a client put in the fields (see
    // `logging`): JSON escapes them itself, text through `OneLine`.
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let log = tracing_subscriber::fmt().with_env_filter(filter);
    match args.log_format {
        LogFormat::Json => log
            .json()
            .with_current_span(false)
            .with_span_list(true)
            .with_writer(OneLine::new(std::io::stdout, false))
            .init(),
        LogFormat::Text => {
            // Colours only on a terminal.
            let ansi = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
            log.with_ansi(ansi).with_writer(OneLine::new(std::io::stdout, ansi)).init();
        }
    }
    if let Some(command) = args.command.take() {
        // One line either way, without the backtrace an `anyhow` error from
        // `main` may carry: this is an answer to a person at a terminal.
        match run_command(command).await {
            Ok(outcome) => println!("{outcome}"),
            Err(err) => {
                eprintln!("roomcast: {err}");
                std::process::exit(1);
            }
        }
        return Ok(());
    }
    let made_up_key = args.api_key.is_none();
    let mut config = Config::from_args(args)?;
    if config.static_dir.is_none() && std::path::Path::new("dist/index.html").exists() {
        config.static_dir = Some("dist".into());
    }
    let listener = tokio::net::TcpListener::bind(config.bind)
        .await
        .with_context(|| format!("cannot listen on {}", config.bind))?;
    if config.dev {
        tracing::warn!(
            "DEV MODE: tokens without exp accepted, POST /api/dev/token open. \
             Give --jwt-secret and --api-key (and no --dev) in production."
        );
    }
    if config.dev && made_up_key {
        tracing::warn!(api_key = %config.api_key, "made-up secrets for this process; the API key is");
    }
    if let Some(dir) = &config.static_dir {
        tracing::info!(dir = %dir.display(), "serving the UI");
    }
    // On a worker thread, not the main one: the connections' allocations
    // then come from one thread's heap (with two, an idle connection cost
    // 0.3 KiB more at 10,000, docs/performance.md).
    tokio::spawn(roomcast_server::run(listener, config, shutdown_signal())).await??;
    Ok(())
}

/// Runs a subcommand; what it did, in one line.
async fn run_command(command: Command) -> Result<String, String> {
    match command {
        Command::Db { command: DbCommand::Copy { from, to, batch_rows } } => {
            match copy::copy(&from, &to, batch_rows).await {
                Ok(copied) => Ok(format!("db copy: {copied}")),
                Err(err) => Err(format!("db copy: {err}")),
            }
        }
    }
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}
