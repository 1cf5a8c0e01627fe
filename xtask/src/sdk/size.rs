//! The size budget of the SDK's WebAssembly: after the package build, the
//! test command prints the wasm's raw and gzip size and fails when the gzip
//! size grew past [`GZIP_BUDGET`], so that growth is a decision, not an
//! accident. It also fails when the wasm names a folder of the machine
//! that built it (panic locations carry source paths).

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result, bail};
use flate2::{Compression, write::GzEncoder};

/// Most bytes the package's `roomcast_bg.wasm` may take gzipped (level 9):
/// the 80 KiB target itself (the package is 78.2 KiB); see "Size" in
/// docs/sdk.md for the breakdown.
pub(crate) const GZIP_BUDGET: usize = 80 * 1024;

/// Prints the size of the built wasm; fails above [`GZIP_BUDGET`].
pub(crate) fn check(wasm: &Path) -> Result<()> {
    let bytes = std::fs::read(wasm).with_context(|| format!("cannot read {}", wasm.display()))?;
    for folder in builder_folders() {
        if bytes.windows(folder.len()).any(|window| window == folder.as_bytes()) {
            bail!(
                "{} names {folder}, a folder of this machine: the package must not carry the \
                 builder's paths (see `--remap-path-prefix` in client-sdk/npm/build.mjs)",
                wasm.display()
            );
        }
    }
    let gzip = gzip_size(&bytes)?;
    let kib = |n: usize| format!("{:.1} KiB", n as f64 / 1024.0);
    println!(
        "\nSDK size: {} is {} raw, {} gzip (budget {} gzip)",
        wasm.display(),
        kib(bytes.len()),
        kib(gzip),
        kib(GZIP_BUDGET)
    );
    if gzip > GZIP_BUDGET {
        bail!(
            "the SDK's wasm grew to {} gzip, over its budget of {}: see what takes the bytes \
             with `twiggy top -n 40` on a build that keeps its names (\"Size\" in docs/sdk.md \
             gives the commands) and compare with the breakdown there; raise GZIP_BUDGET in \
             xtask/src/sdk/size.rs only if the growth is worth it",
            kib(gzip),
            kib(GZIP_BUDGET)
        );
    }
    Ok(())
}

/// The folders whose names a published build must not contain: the
/// workspace, the home folder and cargo's.
fn builder_folders() -> Vec<String> {
    let home = std::env::var("HOME").ok();
    let cargo_home = std::env::var("CARGO_HOME")
        .ok()
        .or_else(|| home.as_ref().map(|home| format!("{home}/.cargo")));
    [Some(crate::workspace_root().display().to_string()), home, cargo_home]
        .into_iter()
        .flatten()
        // "/" or an empty HOME names nothing in particular.
        .filter(|folder| folder.trim_end_matches('/').len() > 1)
        .collect()
}

/// The size of `bytes` gzipped at level 9, as `gzip -9` compresses.
fn gzip_size(bytes: &[u8]) -> Result<usize> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::best());
    encoder.write_all(bytes)?;
    Ok(encoder.finish()?.len())
}
