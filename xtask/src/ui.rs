//! The demo chat's part of the tasks: install trunk and wasm-opt, build
//! `ui/` into `dist/` (which the server serves at `/`), and for
//! `cargo xtask test` (or `cargo xtask test-ui` alone) lint the crate for
//! wasm32 and run its Playwright end-to-end test (`tests/ui/`) against the
//! real server.
//!
//! Every step fails with what to do about it; nothing is skipped.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

use anyhow::{Context, Result, bail};

use crate::sdk::fixture::{Backing, Fixture};
use crate::sdk::{self, WASM_BINDGEN, npm};
use crate::tally::Tally;
use crate::{build_server, ensure_wasm32_target, install, target_dir, workspace_root};

/// The newest trunk that accepts our Rust version without flags.
const TRUNK: &str = "0.21.14";
/// Trunk.toml's `wasm_opt = "version_132"`: the binaryen that `tools/web`
/// pins. Debian's older binaryen breaks wasm-bindgen's output, so the npm
/// one is put first on PATH for trunk only.
const WASM_OPT_VERSION: &str = "version_132";

/// Installs what building the UI needs: the wasm32 target, wasm-bindgen,
/// trunk, and wasm-opt from npm into `tools/web`. Each is a quick check when
/// already there.
pub fn install_tools(root: &Path) -> Result<()> {
    ensure_wasm32_target()?;
    sdk::install_wasm_bindgen()?;
    install::cargo_tool("trunk", "trunk", TRUNK, true).with_context(|| {
        format!("installing trunk failed; try `cargo install trunk --version {TRUNK} --locked`")
    })?;
    sdk::require_node()?;
    let tools = root.join("tools/web");
    let wasm_opt = tools.join("node_modules/.bin/wasm-opt");
    let installed = install::version_of(&wasm_opt.to_string_lossy())
        .is_some_and(|version| version.contains(WASM_OPT_VERSION));
    if !installed {
        npm(&tools, &["ci", "--no-audit", "--no-fund"])
            .context("installing binaryen (wasm-opt) from npm failed")?;
    }
    Ok(())
}

/// What the UI is built from: when none of it changed since the last build,
/// the build is skipped (trunk itself rebuilds everything every time).
const INPUTS: &[&str] = &["ui", "shared", "client-sdk", "Trunk.toml", "Cargo.toml", "Cargo.lock"];
/// Folders under the inputs that are not inputs.
const NOT_INPUTS: &[&str] = &["target", "node_modules", "dist"];
/// Written into `dist` after a successful build; its time is the build's.
const STAMP: &str = ".roomcast-build";

/// `trunk build --release` (offline, as Trunk.toml says) into `dist`,
/// unless `dist` holds a complete build newer than every input.
pub fn build(root: &Path, dist: &Path) -> Result<()> {
    let stamp = dist.join(STAMP);
    if let Some(built) = modified(&stamp).filter(|_| dist.join("index.html").exists()) {
        match newest_input(root) {
            Some((changed, path)) if changed > built => {
                println!(
                    "
xtask: {} changed since the last UI build",
                    path.display()
                );
            }
            _ => {
                println!(
                    "
xtask: the UI in {} is up to date (no build)",
                    dist.display()
                );
                return Ok(());
            }
        }
    }
    trunk_build(root, dist)?;
    std::fs::write(&stamp, "built by `cargo xtask`: the UI inputs did not change after this file\n")
        .with_context(|| format!("cannot write {}", stamp.display()))
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// The most recently changed file of the UI's inputs, and when.
fn newest_input(root: &Path) -> Option<(SystemTime, PathBuf)> {
    let mut newest: Option<(SystemTime, PathBuf)> = None;
    let mut todo: Vec<PathBuf> = INPUTS.iter().map(|p| root.join(p)).collect();
    while let Some(path) = todo.pop() {
        let Ok(meta) = std::fs::symlink_metadata(&path) else { continue };
        if meta.is_dir() {
            if path.file_name().is_some_and(|n| NOT_INPUTS.iter().any(|x| n == *x)) {
                continue;
            }
            if let Ok(entries) = std::fs::read_dir(&path) {
                todo.extend(entries.flatten().map(|e| e.path()));
            }
        }
        // A folder's own time counts too: it changes when a file is removed.
        if let Ok(time) = meta.modified()
            && newest.as_ref().is_none_or(|(t, _)| time > *t)
        {
            newest = Some((time, path));
        }
    }
    newest
}

fn trunk_build(root: &Path, dist: &Path) -> Result<()> {
    let bin = root.join("tools/web/node_modules/.bin");
    let path = std::env::join_paths(
        std::iter::once(bin)
            .chain(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())),
    )?;
    println!(
        "\n$ trunk build --release --offline --dist {} (wasm-opt from tools/web)",
        dist.display()
    );
    let status = Command::new("trunk")
        .args(["build", "--release", "--offline", "--dist"])
        .arg(dist)
        .current_dir(root)
        .env("PATH", path)
        .status()
        .with_context(|| {
            format!("cannot start trunk (install it with `cargo install trunk --version {TRUNK} --locked`)")
        })?;
    if !status.success() {
        bail!(
            "`trunk build --release` failed ({status}); it needs wasm-bindgen {WASM_BINDGEN} and \
             wasm-opt {WASM_OPT_VERSION} on PATH, which `cargo xtask run` installs"
        );
    }
    if !dist.join("index.html").exists() {
        bail!("trunk did not produce {}", dist.join("index.html").display());
    }
    Ok(())
}

/// Lints the UI for wasm32, builds it, and runs its end-to-end test against
/// the real server. Returns how many browser tests passed and failed.
pub fn test() -> Result<Tally> {
    // The browser test runs in Chromium.
    install::apt(&[("chromium", "chromium")])?;
    let root = workspace_root();
    install_tools(&root)?;
    // Natively the crates compile to nothing, so the workspace lint does not
    // see them.
    sdk::clippy_wasm32("roomcast-ui")?;
    sdk::clippy_wasm32("roomcast-demo")?;
    let artifacts = target_dir(&root).join("ui-test");
    std::fs::create_dir_all(&artifacts)?;
    // A build of its own, so the test neither needs nor overwrites the
    // `dist/` that `cargo xtask run` serves.
    let dist = artifacts.join("dist");
    build(&root, &dist)?;
    let server = build_server(&root)?;
    let suite = root.join("tests/ui");
    npm(&suite, &["ci", "--no-audit", "--no-fund"])?;
    // The server as `cargo xtask run` starts it: history in a SQLite file
    // (a new one per run), so what was said before the restart test's
    // restart is still there after it.
    let database = artifacts.join("roomcast.db");
    for stale in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{stale}", database.display()));
    }
    let backing = Backing::Sqlite(database);
    let fixture = Fixture::start(&server, Some(&dist), backing, &artifacts.join("server.log"))?;
    sdk::npm_test(&suite, &fixture, &artifacts, "UI")
}
