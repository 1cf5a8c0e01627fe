//! What every scenario shares: the flags for reaching the server, setting up
//! connections, and measuring a window (warm-up, then deliveries, latency
//! and CPU over a fixed time).

use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Result, bail};
use serde::Serialize;

use crate::client::{Target, Tokens};
use crate::proc::{CpuMeter, CpuUse};
use crate::recorder::{Latency, Recorder};

pub mod fanout;
pub mod fill;
pub mod idle;
pub mod mesh;
pub mod wave;

/// Flags every scenario takes.
#[derive(Debug, Clone, clap::Args, Serialize)]
pub struct Common {
    /// The server's address.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub server: SocketAddr,
    /// The server's process id: its CPU and memory are read from /proc.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Another server-side process (such as `redis-server`) whose CPU counts
    /// as the server's; repeat for several.
    #[arg(long)]
    pub backend_pid: Vec<u32>,
    /// Sign tokens with this secret (the server's `--jwt-secret`) instead of
    /// asking a dev-mode server's `POST /api/dev/token` for each user.
    #[arg(long, env = "ROOMCAST_JWT_SECRET", hide_env_values = true)]
    #[serde(skip)]
    pub jwt_secret: Option<String>,
    /// Connections being opened (or joined) at the same time.
    #[arg(long, default_value_t = 128)]
    pub concurrency: usize,
    /// Connections per source address (127.0.0.1, then .2, ...).
    #[arg(long, default_value_t = 25_000)]
    pub per_source: usize,
    /// Bytes read from a socket at once.
    #[arg(long, default_value_t = 4096)]
    pub read_buffer: usize,
    /// Delay ACKs like a client that does not acknowledge every segment at
    /// once (Windows, or Linux in interactive mode) instead of Linux's
    /// default for a connection that only receives, which acknowledges
    /// every read. Shows what Nagle's algorithm costs a server without
    /// TCP_NODELAY.
    #[arg(long)]
    pub delay_acks: bool,
    /// Seconds of load before measuring.
    #[arg(long, default_value_t = 2.0)]
    pub warmup: f64,
    /// Seconds measured (per step, with `--step`).
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Write the results here as JSON (not recorded in them: the results
    /// say how they were measured, not where they were kept).
    #[arg(long)]
    #[serde(skip)]
    pub json: Option<PathBuf>,
    /// Parse every frame received as JSON, as a browser application does,
    /// rather than only looking for the timestamps of messages.
    #[arg(long)]
    pub parse: bool,
}

impl Common {
    pub fn target(&self, connections: usize) -> Target {
        Target {
            addr: self.server,
            read_buffer: self.read_buffer,
            per_source: self.per_source,
            many_sources: connections > self.per_source,
            delay_acks: self.delay_acks,
        }
    }

    /// The processes whose CPU is the server's.
    pub fn server_pids(&self) -> Vec<u32> {
        self.server_pid.into_iter().chain(self.backend_pid.iter().copied()).collect()
    }

    /// A recorder for this run's receiving connections.
    pub fn recorder(&self) -> crate::recorder::Recorder {
        let mut recorder = crate::recorder::Recorder::default();
        recorder.parse = self.parse;
        recorder
    }

    pub fn tokens(&self) -> Tokens {
        Tokens::new(self.server, self.jwt_secret.as_deref())
    }

    /// Checks that this process may open `connections` sockets.
    pub fn check_fd_limit(&self, connections: usize) -> Result<()> {
        if let Some(limit) = crate::proc::open_files_limit()
            && (connections as u64 + 64) > limit
        {
            bail!(
                "{connections} connections need more open files than the limit ({limit}): \
                 raise it with `ulimit -n` (the server needs as many)"
            );
        }
        Ok(())
    }
}

/// A prefix that keeps this run's users and rooms apart from earlier runs
/// against the same server.
pub fn run_id() -> String {
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    format!("b{:x}", millis % 0xff_ffff)
}

/// Server CPU (in cores) under which the server counts as idle.
const QUIET_CORES: f64 = 0.05;
/// Longest wait for the server to become idle after set-up.
const SETTLE_MAX: Duration = Duration::from_secs(120);

/// Waits until the server has worked off the set-up: joining a room of N
/// members announces the join to them (once per window since presence
/// diffs, once per joiner before), so the join phase
/// leaves a backlog that would otherwise land in the first window. Done
/// when the server's CPU stays under [`QUIET_CORES`] for a second (without
/// its pid, after a second).
pub async fn settle(common: &Common) -> Result<()> {
    let Some(pid) = common.server_pid else {
        sleep_secs(1.0).await;
        return Ok(());
    };
    let deadline = std::time::Instant::now() + SETTLE_MAX;
    loop {
        let before = crate::proc::cpu_seconds(crate::proc::Pid::Other(pid))?;
        sleep_secs(1.0).await;
        let used = crate::proc::cpu_seconds(crate::proc::Pid::Other(pid))? - before;
        if used < QUIET_CORES || std::time::Instant::now() > deadline {
            return Ok(());
        }
    }
}

/// Sleeps for a number of seconds.
pub async fn sleep_secs(secs: f64) {
    tokio::time::sleep(Duration::from_secs_f64(secs.max(0.0))).await;
}

/// What the senders did, shared with the tasks that send.
#[derive(Debug, Default)]
pub struct SendStats {
    /// Messages sent so far.
    pub sent: Cell<u64>,
    /// Largest lag of a send behind its schedule since the window began, in ms.
    pub max_lag_ms: Cell<f64>,
}

impl SendStats {
    /// Notes a send that was due `lag` ago.
    pub fn sent_late(&self, lag: Duration) {
        self.sent.set(self.sent.get() + 1);
        let ms = lag.as_secs_f64() * 1000.0;
        if ms > self.max_lag_ms.get() {
            self.max_lag_ms.set(ms);
        }
    }
}

/// What [`measure`] saw.
pub struct Measured {
    pub latency: Latency,
    pub deliveries: u64,
    pub sent: u64,
    pub max_send_lag_ms: f64,
    pub closed: u64,
    pub cpu: CpuUse,
}

/// Warms up, then measures for `common.duration` seconds.
pub async fn measure(
    common: &Common,
    recorder: &RefCell<Recorder>,
    senders: &SendStats,
) -> Result<Measured> {
    sleep_secs(common.warmup).await;
    let meter = CpuMeter::start(&common.server_pids())?;
    let sent_before = senders.sent.get();
    senders.max_lag_ms.set(0.0);
    recorder.borrow_mut().start_window();
    sleep_secs(common.duration).await;
    let latency = recorder.borrow_mut().end_window();
    let cpu = meter.stop()?;
    let recorder = recorder.borrow();
    Ok(Measured {
        latency,
        deliveries: recorder.deliveries,
        sent: senders.sent.get() - sent_before,
        max_send_lag_ms: senders.max_lag_ms.get(),
        closed: recorder.closed_count(),
        cpu,
    })
}
