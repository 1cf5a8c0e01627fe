//! Installing what the tasks need, idempotently: each function checks first
//! and installs only what is missing, printing the command it runs. System
//! packages come from apt-get when running as root; otherwise the exact
//! command to run is printed and the task fails.

use std::process::Command;

use anyhow::{Result, bail};

use crate::command;

/// Whether `program --version` runs.
pub fn has(program: &str) -> bool {
    version_of(program).is_some()
}

/// The first line `program --version` prints, if it runs.
pub fn version_of(program: &str) -> Option<String> {
    let output = Command::new(program).arg("--version").output().ok()?;
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    output.status.success().then(|| text.lines().next().unwrap_or_default().to_owned())
}

/// Debian packages, each named with a program that shows it is installed
/// (`program --version` succeeds), or with `""` when the package database
/// alone must say.
pub fn apt(packages: &[(&str, &str)]) -> Result<()> {
    let missing: Vec<&str> = packages
        .iter()
        .filter(|(program, package)| {
            (program.is_empty() || !has(program)) && !dpkg_installed(package)
        })
        .map(|(_, package)| *package)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let install = format!("apt-get install -y {}", missing.join(" "));
    if !is_root() {
        bail!(
            "missing system packages; install them with:\n    sudo apt-get update && sudo {install}"
        );
    }
    command("apt-get", &["update", "-qq"])?;
    let mut args = vec!["install", "-y", "-qq"];
    args.extend(&missing);
    command("apt-get", &args)
}

/// A tool installed with `cargo install`, at exactly `version`.
pub fn cargo_tool(program: &str, krate: &str, version: &str, locked: bool) -> Result<()> {
    if version_of(program).is_some_and(|v| v.split_whitespace().any(|word| word == version)) {
        return Ok(());
    }
    let mut args = vec!["install", krate, "--version", version];
    if locked {
        args.push("--locked");
    }
    crate::cargo(&args)
}

/// Whether Debian's package database lists `package` as installed (some
/// programs, like nginx, have no `--version`).
fn dpkg_installed(package: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", package])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}
