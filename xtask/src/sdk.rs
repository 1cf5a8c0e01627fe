//! The client SDK's part of `cargo xtask test`: install the web toolchain,
//! lint the wasm build, run the browser tests against the real server, build
//! and pack the npm package, run the React example's end-to-end test, and
//! install the packed package into fresh Vite, Next.js and plain HTML apps.
//!
//! Every step fails with what to do about it; nothing is skipped.

pub(crate) mod fixture;
mod size;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, anyhow, bail};

use crate::tally::{self, Tally};
use crate::{WASM32, build_server, cargo, cargo_program, install, target_dir, workspace_root};
use fixture::{Backing, Fixture, Redis};

/// wasm-bindgen's CLI must match the `wasm-bindgen` crate exactly.
pub(crate) const WASM_BINDGEN: &str = "0.2.130";
const WASM_PACK: &str = "0.15.1";

/// Installs, builds and tests everything of the SDK; returns how many
/// browser tests (wasm-bindgen and the React example's) passed and failed.
pub fn test() -> Result<Tally> {
    install_tools()?;
    let root = workspace_root();
    clippy_wasm32("roomcast-client")?;
    let server = build_server(&root)?;
    let artifacts = target_dir(&root).join("sdk-test");
    std::fs::create_dir_all(&artifacts)?;
    let mut tally = browser_tests(&server, &artifacts)?;
    tally += allocator_test()?;
    let tarball = build_package(&root)?;
    tally += example_test(&root, &server, &tarball, &artifacts)?;
    tally += packaging_test(&root, &server, &tarball, &artifacts)?;
    Ok(tally)
}

/// `cargo xtask test-packaging`: the package built, packed and installed
/// into fresh apps alone.
pub fn test_packaging() -> Result<Tally> {
    let built = Built::new()?;
    packaging_test(&built.root, &built.server, &built.tarball, &built.artifacts)
}

/// `cargo xtask test-react`: the package and the React example's
/// end-to-end tests alone, or only `files` of them.
pub fn test_react(files: &[String]) -> Result<Tally> {
    let built = Built::new()?;
    example_test_only(&built.root, &built.server, &built.tarball, &built.artifacts, files)
}

/// What the package's own test tasks start from: the tools installed, the
/// server and the package built, a folder for the tests' artifacts.
struct Built {
    root: PathBuf,
    server: PathBuf,
    tarball: PathBuf,
    artifacts: PathBuf,
}

impl Built {
    fn new() -> Result<Self> {
        install_tools()?;
        let root = workspace_root();
        let server = build_server(&root)?;
        let artifacts = target_dir(&root).join("sdk-test");
        std::fs::create_dir_all(&artifacts)?;
        let tarball = build_package(&root)?;
        Ok(Self { root, server, tarball, artifacts })
    }
}

/// The tools the SDK's build and tests need, each installed if missing.
fn install_tools() -> Result<()> {
    install_wasm_bindgen()?;
    install::cargo_tool("wasm-pack", "wasm-pack", WASM_PACK, true)
        .context("installing wasm-pack failed; try `cargo install wasm-pack --locked`")?;
    // Debian's chromium and its driver come in matching versions; the
    // example's restart test keeps history in Redis.
    install::apt(&[
        ("chromium", "chromium"),
        ("chromedriver", "chromium-driver"),
        ("redis-server", "redis-server"),
    ])?;
    require_node()
}

/// wasm-bindgen's CLI at the crate's exact version (the SDK and trunk both
/// run it).
pub(crate) fn install_wasm_bindgen() -> Result<()> {
    install::cargo_tool("wasm-bindgen", "wasm-bindgen-cli", WASM_BINDGEN, false).with_context(|| {
        format!("installing wasm-bindgen-cli failed; try `cargo install wasm-bindgen-cli --version {WASM_BINDGEN}`")
    })
}

/// Node.js and npm, which the web builds and browser tests run under.
pub(crate) fn require_node() -> Result<()> {
    for program in ["node", "npm"] {
        if !install::has(program) {
            bail!(
                "{program} not found: install Node.js 20 or newer (for example `apt-get install nodejs npm`)"
            );
        }
    }
    Ok(())
}

/// wasm-bindgen-test in headless Chromium against the real server.
fn browser_tests(server: &Path, artifacts: &Path) -> Result<Tally> {
    let fixture =
        Fixture::start(server, None, Backing::Memory, &artifacts.join("browser-server.log"))?;
    let chromedriver = which("chromedriver").context("chromedriver not on PATH")?;
    tally::run_ok(
        Command::new(cargo_program())
            .args(["test", "-p", "roomcast-client", "--target", WASM32, "--test", "browser"])
            .env("CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER", "wasm-bindgen-test-runner")
            .env("CHROMEDRIVER", chromedriver)
            .env("WASM_BINDGEN_TEST_TIMEOUT", "300")
            .env("ROOMCAST_TEST_WS", fixture.ws_url())
            .env("ROOMCAST_TEST_CONTROL", fixture.control_url()),
        &format!(
            "cargo test -p roomcast-client --target {WASM32} --test browser (server at {})",
            fixture.ws_url()
        ),
        |tally, _| {
            println!("{tally} (the SDK's browser tests)");
            anyhow!("the SDK's browser tests failed; the server log is {}", fixture.log().display())
        },
    )
}

/// The wasm build's allocator under a long-running client (in Node, no
/// server): the heap settles. Built with the release profile, as the package.
fn allocator_test() -> Result<Tally> {
    tally::run_ok(
        Command::new(cargo_program())
            .args(["test", "--release", "-p", "roomcast-client", "--target", WASM32])
            .args(["--test", "allocator"])
            .env("CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER", "wasm-bindgen-test-runner"),
        &format!("cargo test --release -p roomcast-client --target {WASM32} --test allocator"),
        |tally, _| {
            println!("{tally} (the SDK's allocator test)");
            anyhow!("the SDK's allocator test failed")
        },
    )
}

/// Builds the npm package (wasm-pack, wasm-opt from npm's binaryen, the
/// React entry) and packs it; prints the wasm's size and fails over its
/// budget; returns the tarball.
fn build_package(root: &Path) -> Result<PathBuf> {
    let tools = root.join("client-sdk/npm");
    crate::ensure_rust_src()?;
    npm(&tools, &["ci", "--no-audit", "--no-fund"])?;
    npm(&tools, &["run", "build"])?;
    let tarball = target_dir(root).join("npm/roomcast.tgz");
    if !tarball.exists() {
        bail!("the package build did not produce {}", tarball.display());
    }
    size::check(&target_dir(root).join("npm/roomcast/roomcast_bg.wasm"))?;
    Ok(tarball)
}

/// The React example, built against the packed package, in two browser
/// contexts: `e2e/chat.test.mjs` (a chat through a server restart) and
/// `e2e/restarts.test.mjs` (at least 200 messages at the default rate limits through
/// two SIGKILLs and a SIGTERM), one after the other. The server keeps
/// history in Redis, as a deployment that must survive restarts does, with
/// its default limits, so the tests can require that every message is
/// still there afterwards, once and in order.
fn example_test(root: &Path, server: &Path, tarball: &Path, artifacts: &Path) -> Result<Tally> {
    example_test_only(root, server, tarball, artifacts, &[])
}

/// [`example_test`], running only `files` when some are named.
fn example_test_only(
    root: &Path,
    server: &Path,
    tarball: &Path,
    artifacts: &Path,
    files: &[String],
) -> Result<Tally> {
    let example = root.join("examples/react");
    npm(&example, &["ci", "--no-audit", "--no-fund"])?;
    // The tarball changes with every build, so it is installed over the
    // locked dependencies rather than locked itself.
    npm(
        &example,
        &["install", "--no-save", "--no-audit", "--no-fund", &tarball.to_string_lossy()],
    )?;
    // A development build: StrictMode mounts twice, and the test checks that
    // this opens no second connection.
    npm(&example, &["run", "build:test"])?;
    let redis = Redis::start(&artifacts.join("example-redis.log"))?;
    let dist = example.join("dist");
    let fixture = Fixture::start(
        server,
        Some(&dist),
        Backing::Redis(&redis),
        &artifacts.join("example-server.log"),
    )?;
    npm_test_files(&example, &fixture, artifacts, "React example", files)
}

/// `tests/packaging`: the tarball installed with `npm install` into a
/// fresh Vite app, a fresh Next.js app and a plain HTML page, each built by
/// its own tool (in `artifacts/packaging/`), served, and chatted through by
/// two users against a real server.
fn packaging_test(root: &Path, server: &Path, tarball: &Path, artifacts: &Path) -> Result<Tally> {
    let suite = root.join("tests/packaging");
    npm(&suite, &["ci", "--no-audit", "--no-fund"])?;
    let fixture =
        Fixture::start(server, None, Backing::Memory, &artifacts.join("packaging-server.log"))?;
    tally::run_ok(
        Command::new("npm")
            .arg("test")
            .current_dir(&suite)
            .env("ROOMCAST_TARBALL", tarball)
            .env("ROOMCAST_SERVER_URL", fixture.http_url())
            .env("ROOMCAST_API_KEY", fixture::API_KEY)
            .env("ROOMCAST_ARTIFACTS", artifacts),
        &format!("npm test (in {}, server at {})", suite.display(), fixture.http_url()),
        |tally, _| {
            println!("{tally} (the package in fresh apps)");
            anyhow!(
                "the package failed in a fresh app; the apps are in {}, the server log is {}",
                artifacts.join("packaging").display(),
                fixture.log().display()
            )
        },
    )
}

/// Lints `package` as built for browsers (wasm32), warnings denied.
pub(crate) fn clippy_wasm32(package: &str) -> Result<()> {
    cargo(&["clippy", "-p", package, "--target", WASM32, "--all-targets", "--", "-D", "warnings"])
}

/// `npm test` in `dir` against `fixture`'s server: the test finds the app,
/// the control API and where to save screenshots in the environment. A
/// failure names the screenshots and the server log.
pub(crate) fn npm_test(
    dir: &Path,
    fixture: &Fixture,
    artifacts: &Path,
    what: &str,
) -> Result<Tally> {
    npm_test_files(dir, fixture, artifacts, what, &[])
}

/// [`npm_test`], or `node --test` on `files` alone when some are named.
fn npm_test_files(
    dir: &Path,
    fixture: &Fixture,
    artifacts: &Path,
    what: &str,
    files: &[String],
) -> Result<Tally> {
    let mut command = if files.is_empty() {
        let mut npm = Command::new("npm");
        npm.arg("test");
        npm
    } else {
        let mut node = Command::new("node");
        node.args(["--test", "--test-concurrency=1"]).args(files);
        node
    };
    tally::run_ok(
        command
            .current_dir(dir)
            .env("ROOMCAST_APP_URL", fixture.http_url())
            .env("ROOMCAST_CONTROL_URL", fixture.control_url())
            .env("ROOMCAST_ARTIFACTS", artifacts),
        &format!("npm test (in {}, app at {})", dir.display(), fixture.http_url()),
        |tally, _| {
            println!("{tally} (the {what}'s end-to-end test)");
            anyhow!(
                "the {what}'s end-to-end test failed; screenshots are in {}, the server log is {}",
                artifacts.display(),
                fixture.log().display()
            )
        },
    )
}

pub(crate) fn npm(dir: &Path, args: &[&str]) -> Result<()> {
    println!("\n$ npm {} (in {})", args.join(" "), dir.display());
    let status =
        Command::new("npm").args(args).current_dir(dir).status().context("cannot start npm")?;
    if !status.success() {
        bail!("`npm {}` in {} failed ({status})", args.join(" "), dir.display());
    }
    Ok(())
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|dir| Path::new(dir).join(program))
        .find(|path| path.is_file())
}
