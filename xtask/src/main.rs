//! Roomcast's project tasks, so that two commands do everything:
//!
//! - `cargo xtask run [-- <roomcast flags>]`: build the demo chat (`ui/`,
//!   with trunk) and start the server (dev mode, in memory) serving it at
//!   http://127.0.0.1:8080.
//! - `cargo xtask test`: install what the checks need, then formatting,
//!   lints, the wasm build of the protocol crate, and every test, the
//!   browser ones included.
//! - `cargo xtask test-ui`: only the demo chat's part of `test` (its wasm32
//!   lint, trunk build and browser test).
//!
//! Each step prints the command it runs; the first failure stops the task
//! with a message saying what to do.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result, anyhow, bail};
use clap::{Parser, Subcommand};

mod bench;
mod install;
mod sdk;
mod socketio;
mod tally;
mod ui;

/// Browsers' target, which the protocol crate, the SDK and the UI are built for.
pub(crate) const WASM32: &str = "wasm32-unknown-unknown";

#[derive(Parser)]
#[command(name = "cargo xtask", about = "Roomcast project tasks")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Build the demo chat and start the server serving it, in dev mode (in
    /// memory, no Redis needed).
    Run {
        /// Flags for `roomcast` (see `cargo xtask run -- --help`).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        flags: Vec<String>,
    },
    /// Install what the checks need, then run formatting, lints and every test.
    Test,
    /// Only the demo chat's checks: its wasm32 lint, its trunk build and its
    /// browser test (a part of `test`).
    TestUi,
    /// Only the Socket.IO dialect's end-to-end test, with the real
    /// `socket.io-client` in Node (a part of `test`).
    TestSocketio,
    /// Only the SDK package build and its install into fresh Vite, Next.js
    /// and plain HTML apps, each built and driven in Chromium (a part of
    /// `test`).
    TestPackaging,
    /// Only the SDK package build and the React example's end-to-end tests
    /// (a part of `test`); with file names (`e2e/fallback.test.mjs`), only
    /// those tests.
    TestReact {
        /// Test files under `examples/react`, all of `e2e/` when none.
        files: Vec<String>,
    },
}

fn main() -> ExitCode {
    let result = match Cli::parse().task {
        Task::Run { flags } => run(&flags),
        Task::Test => test(),
        Task::TestUi => test_ui(),
        Task::TestSocketio => socketio::test().map(|tally| println!("\nxtask: {tally}")),
        Task::TestPackaging => sdk::test_packaging().map(|tally| println!("\nxtask: {tally}")),
        Task::TestReact { files } => {
            sdk::test_react(&files).map(|tally| println!("\nxtask: {tally}"))
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("\nxtask: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(flags: &[String]) -> Result<()> {
    let mut args: Vec<String> =
        ["run", "--release", "--package", "roomcast-server", "--bin", "roomcast", "--"]
            .map(String::from)
            .into();
    // `--help` needs no UI, and a UI of one's own needs no build of ours.
    let only_asking =
        flags.iter().any(|f| matches!(f.as_str(), "-h" | "--help" | "-V" | "--version"));
    let own_ui = flags.iter().any(|f| f.starts_with("--static-dir"));
    if !only_asking && !own_ui {
        let root = workspace_root();
        ui::install_tools(&root)?;
        let dist = root.join("dist");
        ui::build(&root, &dist)?;
        // Named explicitly, so the UI is served whatever directory this runs from.
        args.push("--static-dir".into());
        args.push(dist.to_str().context("the dist path is not UTF-8")?.into());
        // The server's default database, `roomcast-data/` under the working
        // directory, pinned to the repository's, whatever directory this
        // runs from.
        let chosen = |flag: &str| flags.iter().any(|f| f.starts_with(flag));
        if !chosen("--database-url")
            && !chosen("--redis-url")
            && std::env::var_os("ROOMCAST_DATABASE_URL").is_none()
            && std::env::var_os("ROOMCAST_REDIS_URL").is_none()
        {
            let database = root.join("roomcast-data/roomcast.db");
            let database = database.to_str().context("the data path is not UTF-8")?;
            args.push("--database-url".into());
            args.push(format!("sqlite://{database}"));
        }
    }
    args.extend(flags.iter().cloned());
    cargo(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

fn test() -> Result<()> {
    ensure_rust_tools()?;
    // The scale-out tests start real Redis servers and nginx; the store
    // suite a real PostgreSQL (its `initdb` is off PATH, so the package
    // database decides); the ingest suite (`--test amqp`) a RabbitMQ node.
    install::apt(&[
        ("redis-server", "redis-server"),
        ("nginx", "nginx"),
        ("initdb", "postgresql"),
        // Never run: `rabbitmq-server --version` starts a node.
        ("", "rabbitmq-server"),
    ])?;
    cargo(&["fmt", "--all", "--check"]).context("formatting differs: run `cargo fmt --all`")?;
    cargo(&["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"])?;
    // The protocol crate must stay free of IO so browsers can use it.
    cargo(&["build", "--package", "roomcast-shared", "--target", WASM32])?;
    bench::smoke()?;
    let mut tally = sdk::test()?;
    tally += ui::test()?;
    tally += socketio::test()?;
    tally += cargo_test(&["test", "--workspace", "--all-targets"], tally)?;
    println!("\nxtask: every check and test passed");
    println!("{tally}");
    Ok(())
}

fn test_ui() -> Result<()> {
    ensure_rust_tools()?;
    let tally = ui::test()?;
    println!("\nxtask: the demo chat's checks passed");
    println!("{tally}");
    Ok(())
}

/// Runs `cargo test`, showing its output as it comes, and adds up the
/// `test result:` lines of every test binary. On failure it prints the
/// totals so far, `before` included.
fn cargo_test(args: &[&str], before: tally::Tally) -> Result<tally::Tally> {
    let shown = format!("cargo {}", args.join(" "));
    tally::run_ok(Command::new(cargo_program()).args(args), &shown, |tally, status| {
        let mut total = before;
        total += tally;
        println!("{total}");
        anyhow!("`{shown}` failed ({status})")
    })
}

/// The rustup components and target the checks use. Both are no-ops when
/// already installed.
fn ensure_rust_tools() -> Result<()> {
    // The target first: it is the step that reports a missing rustup.
    ensure_wasm32_target()?;
    command("rustup", &["component", "add", "rustfmt", "clippy"])
}

/// The wasm32 target, added with rustup (a no-op when already installed,
/// and run once per task).
pub(crate) fn ensure_wasm32_target() -> Result<()> {
    static ADDED: AtomicBool = AtomicBool::new(false);
    if ADDED.load(Ordering::Relaxed) {
        return Ok(());
    }
    if !install::has("rustup") {
        bail!(
            "rustup not found: install Rust with rustup (https://rustup.rs) so the wasm32 target can be added"
        );
    }
    command("rustup", &["target", "add", WASM32])?;
    ADDED.store(true, Ordering::Relaxed);
    Ok(())
}

/// The standard library's source, which the npm package's build rebuilds
/// for size (client-sdk/npm/build.mjs); a no-op when already installed.
pub(crate) fn ensure_rust_src() -> Result<()> {
    ensure_wasm32_target()?;
    command("rustup", &["component", "add", "rust-src"])
}

/// Builds the server (a debug build) and returns its binary.
pub(crate) fn build_server(root: &Path) -> Result<PathBuf> {
    cargo(&["build", "-p", "roomcast-server", "--bin", "roomcast"])?;
    Ok(target_dir(root).join("debug/roomcast"))
}

pub(crate) fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask is in the workspace").to_owned()
}

/// Where cargo puts what it builds: `CARGO_TARGET_DIR`, or `target/` under
/// `root`.
pub(crate) fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root.join("target"))
}

/// The cargo running this task (`CARGO`), or `cargo` from PATH.
pub(crate) fn cargo_program() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

fn cargo(args: &[&str]) -> Result<()> {
    command(&cargo_program(), args)
}

fn command(program: &str, args: &[&str]) -> Result<()> {
    println!("\n$ {} {}", program.rsplit('/').next().unwrap_or(program), args.join(" "));
    let status = Command::new(program)
        .args(args)
        .status()
        .with_context(|| format!("cannot start {program}"))?;
    if !status.success() {
        bail!("`{program} {}` failed ({status})", args.join(" "));
    }
    Ok(())
}
