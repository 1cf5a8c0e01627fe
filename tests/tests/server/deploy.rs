//! The deployment files stay true to the binary: every `ROOMCAST_*`
//! variable and flag that `deploy/Dockerfile` and the Roomcast services of
//! `deploy/compose.yaml` set is one the binary reads, and the image builds
//! with a Rust at least as new as the workspace needs.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use roomcast_tests::process::roomcast_binary;

fn deploy_file(name: &str) -> (PathBuf, String) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy").join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    (path, text)
}

/// The words of `text` that start with `prefix` and go on with `tail`
/// characters (`ROOMCAST_BIND`, `--redis-url`).
fn words(text: &str, prefix: &str, tail: fn(char) -> bool) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find(prefix) {
        let before = rest[..at].chars().next_back();
        let word: String =
            rest[at..].chars().take_while(|&c| c == '-' || c == '_' || tail(c)).collect();
        if !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            && word.len() > prefix.len()
        {
            found.insert(word.trim_end_matches(['-', '_']).to_owned());
        }
        rest = &rest[at + prefix.len()..];
    }
    found
}

fn env_names(text: &str) -> BTreeSet<String> {
    words(text, "ROOMCAST_", |c| c.is_ascii_uppercase() || c.is_ascii_digit())
}

fn flags(text: &str) -> BTreeSet<String> {
    words(text, "--", |c| c.is_ascii_lowercase() || c.is_ascii_digit())
}

/// The blocks of `compose.yaml`'s services that run the Roomcast image:
/// those built from `deploy/Dockerfile`, and aliases of one (`*roomcast`).
fn roomcast_services(compose: &str) -> Vec<(String, String)> {
    // Each service: its name, what follows the name (`&anchor`, `*alias`),
    // and its block.
    let mut services: Vec<(String, String, String)> = Vec::new();
    let mut in_services = false;
    for line in compose.lines() {
        if !line.starts_with(' ') && !line.trim().is_empty() {
            in_services = line.trim_end() == "services:";
            continue;
        }
        if !in_services {
            continue;
        }
        let indent = line.len() - line.trim_start().len();
        if indent == 2
            && !line.trim_start().starts_with('#')
            && let Some((name, value)) = line.trim().split_once(':')
        {
            services.push((name.to_owned(), value.trim().to_owned(), String::new()));
            continue;
        }
        if let Some((_, _, block)) = services.last_mut() {
            block.push_str(line);
            block.push('\n');
        }
    }
    let anchored = |alias: &str| {
        services
            .iter()
            .find(|(_, value, _)| value.strip_prefix('&') == Some(alias))
            .map(|(_, _, block)| block.clone())
    };
    let resolved: Vec<(String, String)> = services
        .iter()
        .map(|(name, value, block)| match value.strip_prefix('*') {
            Some(alias) => (name.clone(), anchored(alias).unwrap_or_default()),
            None => (name.clone(), block.clone()),
        })
        .collect();
    resolved
        .into_iter()
        .filter(|(_, block)| block.contains("dockerfile: deploy/Dockerfile"))
        .collect()
}

/// What `roomcast --help` lists: its flags and their variables.
async fn help() -> String {
    let output = tokio::process::Command::new(roomcast_binary().await)
        .arg("--help")
        .output()
        .await
        .expect("running roomcast --help");
    assert!(output.status.success(), "roomcast --help failed");
    String::from_utf8(output.stdout).expect("help is UTF-8")
}

#[tokio::test]
async fn every_variable_and_flag_the_deploy_files_set_exists_in_the_binary() {
    let help = help().await;
    let (known_env, known_flags) = (env_names(&help), flags(&help));
    assert!(known_env.contains("ROOMCAST_BIND") && known_flags.contains("--bind"), "{help}");

    let (dockerfile_path, dockerfile) = deploy_file("Dockerfile");
    let (compose_path, compose) = deploy_file("compose.yaml");
    let services = roomcast_services(&compose);
    assert!(services.len() >= 2, "two Roomcast instances in {}", compose_path.display());
    let mut used = vec![(dockerfile_path.display().to_string(), dockerfile.clone())];
    used.extend(services.into_iter().map(|(name, block)| (format!("service {name}"), block)));
    for (place, text) in &used {
        // Only what the binary reads: not comments, not the build; flags
        // only where the binary's command line is written.
        let read: Vec<&str> = text
            .lines()
            .filter(|l| !l.trim_start().starts_with('#') && !l.contains("cargo build"))
            .collect();
        let command_line: Vec<&str> = read
            .iter()
            .copied()
            .filter(|l| {
                let l = l.trim_start();
                ["ENTRYPOINT", "CMD", "command:", "entrypoint:"].iter().any(|k| l.starts_with(k))
            })
            .collect();
        for name in env_names(&read.join("\n")) {
            assert!(known_env.contains(&name), "{place} sets {name}, which roomcast does not read");
        }
        for flag in flags(&command_line.join("\n")) {
            assert!(known_flags.contains(&flag), "{place} passes {flag}, which roomcast lacks");
        }
    }
    assert!(env_names(&compose).contains("ROOMCAST_REDIS_URL"), "the check saw the services");
}

#[test]
fn the_image_builds_with_a_new_enough_rust() {
    let (path, dockerfile) = deploy_file("Dockerfile");
    let image = dockerfile
        .lines()
        .find_map(|l| l.strip_prefix("FROM rust:"))
        .unwrap_or_else(|| panic!("{} builds FROM rust:<version>", path.display()));
    let manifest =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml"))
            .expect("the workspace manifest");
    let needed = manifest
        .lines()
        .find_map(|l| l.strip_prefix("rust-version = \""))
        .and_then(|v| v.strip_suffix('"'))
        .expect("the workspace's rust-version");
    let version = |v: &str| -> Vec<u32> {
        v.split(['.', '-']).take(2).map(|n| n.parse().unwrap_or(0)).collect()
    };
    assert!(
        version(image) >= version(needed),
        "the image's Rust {image} is older than the workspace's rust-version {needed}"
    );
}
