//! Results: one [`Row`] per measurement window, printed as a table and
//! written as JSON (which `roomcast-bench plot` reads back).

use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::recorder::Latency;
use crate::scenario::Measured;

/// Generator CPU (in cores) from which a window counts as generator-bound:
/// it runs on one thread, so near 1.0 it is the bottleneck.
pub const SATURATED_CORES: f64 = 0.9;
/// CPU of other processes (in cores) from which a window is marked noisy.
pub const NOISY_CORES: f64 = 0.1;

/// One measurement window of `fanout` or `mesh`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Row {
    /// Receiving connections.
    pub receivers: usize,
    /// Messages per second the senders were asked to send.
    pub offered_rate: f64,
    /// Messages per second actually sent in the window.
    pub sent_rate: f64,
    /// Deliveries per second the server should have made (sent x recipients).
    pub expected_deliveries_per_sec: f64,
    /// Timestamped messages received per second.
    pub deliveries_per_sec: f64,
    pub latency: Latency,
    /// Server CPU in cores (1.0 = one core), when its pid was given.
    pub server_cpu: Option<f64>,
    /// Deliveries per second divided by the server's CPU utilisation: what
    /// one fully used server core would deliver at this load.
    pub deliveries_per_server_cpu_sec: Option<f64>,
    /// The generator's CPU in cores.
    pub generator_cpu: f64,
    /// CPU used by other processes (and the hypervisor), in cores: when
    /// high, they competed with the server or the generator for their cores.
    #[serde(default)]
    pub others_cpu: f64,
    /// The generator was the bottleneck (its numbers are a floor).
    pub generator_saturated: bool,
    /// The generator's CPU time per delivery, in µs.
    #[serde(default)]
    pub generator_us_per_delivery: Option<f64>,
    /// The generator's floor: how long it takes, at this cost per delivery,
    /// to read one message from all of its recipients, in ms. No server can
    /// deliver a message to all of them sooner, as measured by this
    /// generator: the last recipients' latencies cannot fall below it.
    #[serde(default)]
    pub generator_floor_ms: Option<f64>,
    /// Largest lag of a send behind its schedule, in ms (the publisher was
    /// late, so the offered rate was not met in time).
    pub max_send_lag_ms: f64,
    /// Connections closed by the server so far (4009: slow consumer).
    pub closed: u64,
}

impl Row {
    /// A window where `receivers` connections each should get every
    /// message sent to it (`recipients_per_message` of them per message).
    pub fn new(
        receivers: usize,
        offered_rate: f64,
        recipients_per_message: f64,
        m: &Measured,
    ) -> Self {
        let secs = m.cpu.secs;
        let deliveries_per_sec = m.deliveries as f64 / secs;
        let generator_us_per_delivery =
            (m.deliveries > 0).then(|| m.cpu.generator / deliveries_per_sec * 1e6);
        Self {
            receivers,
            offered_rate,
            sent_rate: m.sent as f64 / secs,
            expected_deliveries_per_sec: m.sent as f64 * recipients_per_message / secs,
            deliveries_per_sec,
            latency: m.latency,
            server_cpu: m.cpu.server,
            deliveries_per_server_cpu_sec: m
                .cpu
                .server
                .filter(|cpu| *cpu > 0.0)
                .map(|cpu| deliveries_per_sec / cpu),
            generator_cpu: m.cpu.generator,
            others_cpu: m.cpu.others,
            generator_saturated: m.cpu.generator >= SATURATED_CORES,
            generator_us_per_delivery,
            generator_floor_ms: generator_us_per_delivery
                .map(|us| us * recipients_per_message / 1000.0),
            max_send_lag_ms: m.max_send_lag_ms,
            closed: m.closed,
        }
    }
}

impl Row {
    /// The senders sent at the offered rate (within 5%).
    pub fn sender_kept_up(&self) -> bool {
        self.sent_rate >= 0.95 * self.offered_rate
    }

    /// What was sent reached its recipients (within 5%).
    pub fn deliveries_kept_up(&self) -> bool {
        self.deliveries_per_sec >= 0.95 * self.expected_deliveries_per_sec
    }
}

/// A whole run, as written to `--json`.
#[derive(Debug, Serialize, Deserialize)]
pub struct Report {
    /// `idle`, `fanout` or `mesh`.
    pub scenario: String,
    /// The flags of the run.
    pub params: serde_json::Value,
    /// Windows of `fanout` and `mesh`.
    #[serde(default)]
    pub rows: Vec<Row>,
    /// Scenario-specific results (idle memory, the sustained rate, set-up times).
    #[serde(default)]
    pub summary: serde_json::Value,
}

impl Report {
    pub fn write(&self, path: &Path) -> Result<()> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let text = serde_json::to_string_pretty(self)?;
        std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))
    }

    pub fn read(path: &Path) -> Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
    }
}

fn opt(value: Option<f64>, scale: f64, digits: usize) -> String {
    value.map_or_else(|| "-".into(), |v| format!("{:.*}", digits, v / scale))
}

/// Prints the header of [`print_rows`]' table.
pub fn print_header() {
    println!(
        "{:>6} {:>9} {:>9} {:>10} {:>8} {:>8} {:>8} {:>8} {:>7} {:>7} {:>8} {:>10} {:>5} {:>6}  note",
        "recv",
        "rate/s",
        "sent/s",
        "deliv/s",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "max ms",
        "srv cpu",
        "gen cpu",
        "floor ms",
        "deliv/cpu-s",
        "other",
        "closed",
    );
}

/// Prints windows as table rows.
pub fn print_rows(rows: &[Row]) {
    for r in rows {
        let mut note = Vec::new();
        if r.generator_saturated {
            note.push("generator saturated");
        }
        if !r.deliveries_kept_up() {
            note.push("deliveries behind");
        }
        if !r.sender_kept_up() {
            note.push("sender behind");
        }
        if r.others_cpu >= NOISY_CORES {
            note.push("noisy: other processes busy");
        }
        println!(
            "{:>6} {:>9.0} {:>9.0} {:>10.0} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>7} {:>7.2} {:>8} {:>10} {:>5.2} {:>6}  {}",
            r.receivers,
            r.offered_rate,
            r.sent_rate,
            r.deliveries_per_sec,
            r.latency.p50_ms,
            r.latency.p90_ms,
            r.latency.p99_ms,
            r.latency.max_ms,
            opt(r.server_cpu, 1.0, 2),
            r.generator_cpu,
            opt(r.generator_floor_ms, 1.0, 2),
            opt(r.deliveries_per_server_cpu_sec, 1.0, 0),
            r.others_cpu,
            r.closed,
            note.join(", "),
        );
    }
}
