//! `fill`: N subscribers connect, authenticate and join one room, as a
//! webinar's audience does. Measures how fast the room fills (connect,
//! `auth` and `join` together, per second) and what the filling cost the
//! members: the frames each received until the server was idle again, so
//! that a fill whose announcements grow with the room shows as frames per
//! member growing with N.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Instant;

use anyhow::Result;
use serde::Serialize;
use serde_json::json;
use tokio::task::spawn_local;

use super::{Common, run_id, settle};
use crate::client::{drain, open_all};
use crate::proc::CpuMeter;
use crate::report::Report;

/// Flags of `fill`.
#[derive(Debug, Clone, clap::Args, Serialize)]
pub struct Args {
    #[command(flatten)]
    #[serde(flatten)]
    pub common: Common,
    /// Subscribers joining the room.
    #[arg(long, default_value_t = 1000)]
    pub subscribers: usize,
}

pub async fn run(args: &Args) -> Result<Report> {
    let common = &args.common;
    let n = args.subscribers;
    common.check_fd_limit(n)?;
    let run = run_id();
    eprintln!("fill: getting {n} tokens");
    let tokens = common.tokens().many(&run, n).await?;
    let room = format!("{run}-fill");

    eprintln!("fill: {n} subscribers joining {room}");
    let recorder = Rc::new(RefCell::new(common.recorder()));
    let meter = CpuMeter::start(&common.server_pids())?;
    let fill_time = open_all(&common.target(n), &tokens, |_| room.clone(), common.concurrency, {
        let recorder = recorder.clone();
        move |_, ws| {
            spawn_local(drain(ws, recorder.clone()));
        }
    })
    .await?;
    let fill_cpu = meter.stop()?;
    // What the fill left queued (announcements) is delivered, and counted,
    // before the frames are.
    let settling = Instant::now();
    settle(common).await?;
    let settle_secs = settling.elapsed().as_secs_f64();
    let joins_per_sec = n as f64 / fill_time.as_secs_f64();
    let (frames, unparsed, closed) = {
        let r = recorder.borrow();
        (r.frames, r.unparsed, r.closed_count())
    };
    // Each subscriber's own `joined` is one of its frames.
    let frames_per_member = frames as f64 / n as f64;

    println!(
        "{:>7} {:>9} {:>9} {:>8} {:>8} {:>11} {:>9} {:>9} {:>6}",
        "subs",
        "fill s",
        "join/s",
        "srv cpu",
        "gen cpu",
        "frames/sub",
        "settle s",
        "unparsed",
        "closed"
    );
    let show = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.2}"));
    println!(
        "{:>7} {:>9.2} {:>9.0} {:>8} {:>8.2} {:>11.2} {:>9.1} {:>9} {:>6}",
        n,
        fill_time.as_secs_f64(),
        joins_per_sec,
        show(fill_cpu.server),
        fill_cpu.generator,
        frames_per_member,
        settle_secs,
        unparsed,
        closed,
    );
    let summary = json!({
        "subscribers": n,
        "fill_secs": fill_time.as_secs_f64(),
        "joins_per_sec": joins_per_sec,
        "fill_server_cpu": fill_cpu.server,
        "fill_generator_cpu": fill_cpu.generator,
        "frames": frames,
        "frames_per_member": frames_per_member,
        "settle_secs": settle_secs,
        "parsed": common.parse,
        "unparsed": unparsed,
        "closed": closed,
    });
    Ok(Report {
        scenario: "fill".into(),
        params: serde_json::to_value(args)?,
        rows: vec![],
        summary,
    })
}
