//! `roomcast-bench`: a load generator that speaks the Roomcast protocol over
//! real sockets, from one process on one thread.
//!
//! # Layout
//! - `client`: tokens, connect and authenticate, join, drain a connection.
//! - `recorder`: deliveries and latency, read from timestamps in content.
//! - `scenario`: shared flags and measuring; `idle`, `fanout`, `mesh`.
//! - `proc`: CPU and memory of the generator and the server, from /proc.
//! - `report`: the table and the JSON; `plot`: latency against throughput.
//! - `stream`: the TCP stream under each connection (delayed ACKs).
//!
//! The generator is single-threaded on purpose: it is meant to be pinned to
//! one core (`taskset -c 1`) with the server on another, and one thread
//! shares its recorder without locks. Its own CPU use is reported, so a run
//! where it was the bottleneck says so.

use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};

mod client;
mod plot;
mod proc;
mod recorder;
mod report;
mod scenario;
mod stream;

use scenario::{fanout, fill, idle, mesh, wave};

#[derive(Parser)]
#[command(name = "roomcast-bench", version, about = "Load generator for Roomcast")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// N idle connections joined across R rooms: connect rate and server
    /// memory per connection.
    Idle(idle::Args),
    /// N subscribers in one room, one publisher: deliveries/s, latency, CPU.
    Fanout(fanout::Args),
    /// R rooms x K members, everyone chatting.
    Mesh(mesh::Args),
    /// N subscribers connecting and joining one room: joins/s (auth
    /// included) and the frames each member received.
    Fill(fill::Args),
    /// A reconnect wave in one big room: members drop and come back; the
    /// frames it cost the members that stayed and those that returned.
    Wave(wave::Args),
    /// Draws latency percentiles against delivered messages/s (SVG) from
    /// `fanout` JSON results.
    Plot(plot::Args),
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("roomcast-bench: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    let json = match &cli.command {
        Command::Plot(args) => return plot::run(args),
        Command::Idle(a) => a.common.json.clone(),
        Command::Fanout(a) => a.common.json.clone(),
        Command::Mesh(a) => a.common.json.clone(),
        Command::Fill(a) => a.common.json.clone(),
        Command::Wave(a) => a.common.json.clone(),
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let local = tokio::task::LocalSet::new();
    let report = local.block_on(&runtime, async {
        match &cli.command {
            Command::Idle(args) => idle::run(args).await,
            Command::Fanout(args) => fanout::run(args).await,
            Command::Mesh(args) => mesh::run(args).await,
            Command::Fill(args) => fill::run(args).await,
            Command::Wave(args) => wave::run(args).await,
            Command::Plot(_) => unreachable!("handled above"),
        }
    })?;
    if let Some(path) = json {
        report.write(&path)?;
        eprintln!("wrote {}", path.display());
    }
    // The connections are dropped with the runtime, without close
    // handshakes: the server sees them go, as after a crash of many clients.
    Ok(())
}
