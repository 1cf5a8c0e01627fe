//! `idle`: N authenticated connections, each joined to one of R rooms, doing
//! nothing. Measures the connect rate (TCP, WebSocket handshake, `auth` and
//! `ready`), the join rate, and the server's resident memory per connection.

use std::cell::RefCell;
use std::rc::Rc;

use anyhow::Result;
use serde::Serialize;
use serde_json::json;
use tokio::task::spawn_local;

use super::{Common, run_id, sleep_secs};
use crate::client::{connect_many, drain, join_all};
use crate::proc::{CpuMeter, Pid, rss_kib};
use crate::report::Report;

/// Flags of `idle`.
#[derive(Debug, Clone, clap::Args, Serialize)]
pub struct Args {
    #[command(flatten)]
    #[serde(flatten)]
    pub common: Common,
    /// Connections.
    #[arg(long, default_value_t = 1000)]
    pub connections: usize,
    /// Rooms the connections are spread over.
    #[arg(long, default_value_t = 100)]
    pub rooms: usize,
    /// Seconds to wait after the joins before reading the server's memory,
    /// so that presence and member events have been delivered.
    #[arg(long, default_value_t = 3.0)]
    pub settle: f64,
}

pub async fn run(args: &Args) -> Result<Report> {
    let common = &args.common;
    let n = args.connections;
    let rooms = args.rooms.max(1);
    common.check_fd_limit(n)?;
    let run = run_id();
    eprintln!("idle: getting {n} tokens");
    let tokens = common.tokens().many(&run, n).await?;
    let server = common.server_pid.map(Pid::Other);
    let rss_before = server.map(rss_kib).transpose()?;

    eprintln!("idle: connecting {n}");
    // Who bounds the connect rate: the server's CPU or ours.
    let meter = CpuMeter::start(&common.server_pids())?;
    let (conns, connect_time) =
        connect_many(&common.target(n), &tokens, common.concurrency).await?;
    let connect_cpu = meter.stop()?;
    let recorder = Rc::new(RefCell::new(common.recorder()));
    let room_of = |i: usize| format!("{run}-idle-{}", i % rooms);
    let join_time = join_all(conns, room_of, common.concurrency, |_, ws| {
        spawn_local(drain(ws, recorder.clone()));
    })
    .await?;
    let connects_per_sec = n as f64 / connect_time.as_secs_f64();
    let joins_per_sec = n as f64 / join_time.as_secs_f64();
    sleep_secs(args.settle).await;
    let rss_after = server.map(rss_kib).transpose()?;

    // Idle means idle: the server should use next to no CPU now.
    let meter = CpuMeter::start(&common.server_pids())?;
    sleep_secs(common.duration).await;
    let cpu = meter.stop()?;
    let closed = recorder.borrow().closed_count();
    let per_conn = rss_before.zip(rss_after).map(|(b, a)| (a as f64 - b as f64) / n as f64);

    println!(
        "{:>7} {:>6} {:>11} {:>8} {:>8} {:>9} {:>10} {:>10} {:>10} {:>8} {:>7} {:>6}",
        "conns",
        "rooms",
        "connect/s",
        "srv cpu",
        "gen cpu",
        "join/s",
        "rss0 KiB",
        "rss KiB",
        "KiB/conn",
        "idle cpu",
        "gen KiB",
        "closed"
    );
    let show = |v: Option<f64>, digits: usize| v.map_or("-".into(), |v| format!("{v:.digits$}"));
    println!(
        "{:>7} {:>6} {:>11.0} {:>8} {:>8.2} {:>9.0} {:>10} {:>10} {:>10} {:>8} {:>7} {:>6}",
        n,
        rooms,
        connects_per_sec,
        show(connect_cpu.server, 2),
        connect_cpu.generator,
        joins_per_sec,
        show(rss_before.map(|v| v as f64), 0),
        show(rss_after.map(|v| v as f64), 0),
        show(per_conn, 2),
        show(cpu.server, 3),
        rss_kib(Pid::Own)?,
        closed,
    );
    let summary = json!({
        "connections": n,
        "rooms": rooms,
        "connect_secs": connect_time.as_secs_f64(),
        "connects_per_sec": connects_per_sec,
        "connect_server_cpu": connect_cpu.server,
        "connect_generator_cpu": connect_cpu.generator,
        "join_secs": join_time.as_secs_f64(),
        "joins_per_sec": joins_per_sec,
        "server_rss_before_kib": rss_before,
        "server_rss_after_kib": rss_after,
        "server_kib_per_connection": per_conn,
        "server_idle_cpu": cpu.server,
        "generator_rss_kib": rss_kib(Pid::Own)?,
        "closed": closed,
    });
    Ok(Report {
        scenario: "idle".into(),
        params: serde_json::to_value(args)?,
        rows: vec![],
        summary,
    })
}
