//! The load generator's smoke run, part of `cargo xtask test`: builds the
//! server and `roomcast-bench`, starts a dev-mode server on a free loopback
//! port, and runs every scenario (and the plot) for a second or two, so that
//! none of them can rot. It checks that each run succeeds, never timings:
//! those belong in `docs/performance.md`, measured on a quiet machine.

use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// How long the server may take to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// Stops the server however the smoke run ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn smoke() -> Result<()> {
    crate::cargo(&["build", "--package", "roomcast-server", "--package", "roomcast-bench"])?;
    let bin = crate::target_dir(&crate::workspace_root()).join("debug");
    let port = free_port()?;
    let addr = format!("127.0.0.1:{port}");
    // A load generator is a trusted client: the per-connection rate limits,
    // sized for people, are raised for it.
    let unlimited = [
        "--rate-frames",
        "1000000",
        "--rate-messages",
        "1000000",
        "--rate-user-messages",
        "1000000",
        "--rate-joins",
        "1000000",
    ];
    let out = std::env::temp_dir().join(format!("roomcast-bench-smoke-{port}"));
    std::fs::create_dir_all(&out)?;
    // Nothing durable, and nowhere near the repository: on its default
    // database the server would fill the demo's `roomcast-data/` with the
    // benchmark's rooms.
    println!("\n$ roomcast --bind {addr} --database-url memory {} &", unlimited.join(" "));
    let server = Server(
        Command::new(bin.join("roomcast"))
            .args(["--bind", &addr, "--database-url", "memory"])
            .args(unlimited)
            .current_dir(&out)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .context("cannot start the roomcast binary")?,
    );
    wait_listening(&addr)?;
    let pid = server.0.id().to_string();
    let json = |name: &str| out.join(name).display().to_string();
    let common = ["--server", &addr, "--server-pid", &pid, "--warmup", "0.5", "--duration", "1"];
    let bench = |scenario: &str, flags: &[&str], json_name: &str| -> Result<()> {
        let mut args = vec![scenario];
        args.extend(common);
        args.extend(flags);
        let path = json(json_name);
        args.extend(["--json", &path]);
        run(&bin.join("roomcast-bench"), &args)
    };
    bench("idle", &["--connections", "50", "--rooms", "5", "--settle", "0.2"], "idle.json")?;
    bench("fanout", &["--subscribers", "20", "--rate", "20"], "fanout.json")?;
    bench(
        "fanout",
        &[
            "--subscribers",
            "10",
            "--rate",
            "50",
            "--step",
            "--step-factor",
            "2",
            "--max-rate",
            "100",
        ],
        "fanout-step.json",
    )?;
    bench("mesh", &["--rooms", "4", "--members", "3", "--rate-per-member", "5"], "mesh.json")?;
    let svg = out.join("latency.svg").display().to_string();
    run(
        &bin.join("roomcast-bench"),
        &["plot", &json("fanout.json"), &json("fanout-step.json"), "--output", &svg],
    )?;
    drop(server);
    std::fs::remove_dir_all(&out)?;
    Ok(())
}

fn run(program: &Path, args: &[&str]) -> Result<()> {
    crate::command(&program.display().to_string(), args)
}

/// A loopback port nothing listens on (the OS picks it; we release it for
/// the server, which binds it right away).
fn free_port() -> Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?.local_addr()?.port())
}

fn wait_listening(addr: &str) -> Result<()> {
    let deadline = Instant::now() + START_TIMEOUT;
    while Instant::now() < deadline {
        if TcpStream::connect(addr).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!("the server did not listen on {addr} within {START_TIMEOUT:?}")
}
