//! `wave`: a reconnect wave in one big room. N subscribers fill the room;
//! then `--drop` of them lose their connections at once (a deploy, a
//! proxy restart, a train through a tunnel), stay away for `--away-secs`
//! and come back, connecting, authenticating and joining again. Measures
//! what the wave cost: the frames each member that stayed received, and
//! each returning member (its own `joined` included), from the drop until
//! the server is idle again. A wave whose announcements grow with the
//! room shows as frames per member growing with N; a bounded one does not.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Instant;

use anyhow::{Result, bail};
use serde::Serialize;
use serde_json::json;
use tokio::task::{JoinHandle, spawn_local};

use super::{Common, run_id, settle, sleep_secs};
use crate::client::{drain, open_all};
use crate::proc::CpuMeter;
use crate::recorder::Recorder;
use crate::report::Report;

/// Flags of `wave`.
#[derive(Debug, Clone, clap::Args, Serialize)]
pub struct Args {
    #[command(flatten)]
    #[serde(flatten)]
    pub common: Common,
    /// Members of the room.
    #[arg(long, default_value_t = 6000)]
    pub subscribers: usize,
    /// Members that drop and come back (the first ones); the others stay
    /// and watch the wave.
    #[arg(long, default_value_t = 5000)]
    pub drop: usize,
    /// Seconds the dropped members stay away: longer than the server's
    /// presence grace period (3 s) makes them go offline first.
    #[arg(long, default_value_t = 4.0)]
    pub away_secs: f64,
}

/// Text frames a recorder has seen so far.
fn frames(recorder: &Rc<RefCell<Recorder>>) -> u64 {
    recorder.borrow().frames
}

pub async fn run(args: &Args) -> Result<Report> {
    let common = &args.common;
    let (n, dropped) = (args.subscribers, args.drop);
    if dropped == 0 || dropped > n {
        bail!("--drop must be between 1 and --subscribers ({n})");
    }
    // The dropped connections are closed before their members come back.
    common.check_fd_limit(n)?;
    let run = run_id();
    eprintln!("wave: getting {n} tokens");
    let tokens = common.tokens().many(&run, n).await?;
    let room = format!("{run}-wave");

    eprintln!("wave: {n} subscribers joining {room}");
    // Who stays and who drops count their frames apart; a returning member
    // counts from its new connection on.
    let stayers = Rc::new(RefCell::new(common.recorder()));
    let leavers = Rc::new(RefCell::new(common.recorder()));
    let returners = Rc::new(RefCell::new(common.recorder()));
    let mut leaving: Vec<JoinHandle<()>> = Vec::with_capacity(dropped);
    open_all(
        &common.target(n),
        &tokens,
        |_| room.clone(),
        common.concurrency,
        |i, ws| {
            if i < dropped {
                leaving.push(spawn_local(drain(ws, leavers.clone())));
            } else {
                spawn_local(drain(ws, stayers.clone()));
            }
        },
    )
    .await?;
    settle(common).await?;

    eprintln!("wave: {dropped} members drop for {:.1} s and come back", args.away_secs);
    let stayed_before = frames(&stayers);
    let meter = CpuMeter::start(&common.server_pids())?;
    let wave = Instant::now();
    // Dropping a task drops its socket: the server sees the connection end
    // without a close frame, as after a network failure.
    for task in leaving {
        task.abort();
    }
    sleep_secs(args.away_secs).await;
    let back = open_all(
        &common.target(n),
        &tokens[..dropped],
        |_| room.clone(),
        common.concurrency,
        |_, ws| {
            spawn_local(drain(ws, returners.clone()));
        },
    )
    .await?;
    let wave_secs = wave.elapsed().as_secs_f64();
    let cpu = meter.stop()?;
    let settling = Instant::now();
    settle(common).await?;
    let settle_secs = settling.elapsed().as_secs_f64();

    let stayed = n - dropped;
    let per_stayer = match stayed {
        0 => None,
        _ => Some((frames(&stayers) - stayed_before) as f64 / stayed as f64),
    };
    let per_returner = frames(&returners) as f64 / dropped as f64;
    let rejoins_per_sec = dropped as f64 / back.as_secs_f64();
    let (unparsed, closed) = {
        let (s, r) = (stayers.borrow(), returners.borrow());
        (s.unparsed + r.unparsed, s.closed_count() + r.closed_count())
    };

    println!(
        "{:>6} {:>6} {:>7} {:>9} {:>9} {:>8} {:>8} {:>12} {:>13} {:>9} {:>9} {:>6}",
        "subs",
        "drop",
        "away s",
        "wave s",
        "rejoin/s",
        "srv cpu",
        "gen cpu",
        "frames/stay",
        "frames/return",
        "settle s",
        "unparsed",
        "closed"
    );
    let show = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.2}"));
    println!(
        "{:>6} {:>6} {:>7.1} {:>9.2} {:>9.0} {:>8} {:>8.2} {:>12} {:>13.2} {:>9.1} {:>9} {:>6}",
        n,
        dropped,
        args.away_secs,
        wave_secs,
        rejoins_per_sec,
        show(cpu.server),
        cpu.generator,
        show(per_stayer),
        per_returner,
        settle_secs,
        unparsed,
        closed,
    );
    let summary = json!({
        "subscribers": n,
        "dropped": dropped,
        "away_secs": args.away_secs,
        "wave_secs": wave_secs,
        "rejoin_secs": back.as_secs_f64(),
        "rejoins_per_sec": rejoins_per_sec,
        "wave_server_cpu": cpu.server,
        "wave_generator_cpu": cpu.generator,
        "frames_per_stayer": per_stayer,
        "frames_per_returner": per_returner,
        "settle_secs": settle_secs,
        "parsed": common.parse,
        "unparsed": unparsed,
        "closed": closed,
    });
    Ok(Report {
        scenario: "wave".into(),
        params: serde_json::to_value(args)?,
        rows: vec![],
        summary,
    })
}
