//! `fanout`: N subscribers in one room and one publisher sending M messages
//! per second. Measures deliveries per second, end-to-end latency and CPU;
//! with `--step`, raises the rate until latency or delivery gives out and
//! reports the highest rate sustained.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

use anyhow::Result;
use futures_util::SinkExt;
use futures_util::StreamExt;
use futures_util::stream::SplitSink;
use serde::Serialize;
use serde_json::json;
use tokio::task::spawn_local;
use tokio_tungstenite::tungstenite::Message;

use super::{Common, SendStats, measure, run_id, settle};
use crate::client::{Ws, connect, drain, join, open_all, send_frame};
use crate::recorder::{Recorder, content, now_ns};
use crate::report::{Report, Row, print_header, print_rows};

/// Most messages the publisher sends in one burst before yielding, so that
/// the subscribers are read even when the publisher is behind.
const MAX_BURST: u64 = 1000;

/// Flags of `fanout`.
#[derive(Debug, Clone, clap::Args, Serialize)]
pub struct Args {
    #[command(flatten)]
    #[serde(flatten)]
    pub common: Common,
    /// Subscribers in the room.
    #[arg(long, default_value_t = 1000)]
    pub subscribers: usize,
    /// Messages per second from the publisher (the first rate with `--step`).
    #[arg(long, default_value_t = 10.0)]
    pub rate: f64,
    /// Bytes of content per message.
    #[arg(long, default_value_t = 100)]
    pub size: usize,
    /// Raise the rate by `--step-factor` after each window while p99 stays
    /// within `--p99-limit-ms` and every message is delivered.
    #[arg(long)]
    pub step: bool,
    /// Rate multiplier between steps.
    #[arg(long, default_value_t = 1.5)]
    pub step_factor: f64,
    /// Highest rate tried by `--step`.
    #[arg(long, default_value_t = 100_000.0)]
    pub max_rate: f64,
    /// The p99 latency a rate must stay within to count as sustained.
    #[arg(long, default_value_t = 250.0)]
    pub p99_limit_ms: f64,
    /// Connect the publisher to this instance instead (the subscribers stay
    /// on `--server`): measures delivery from one instance to another
    /// through Redis. Both must accept the same tokens (`--jwt-secret`).
    #[arg(long)]
    pub publish_to: Option<std::net::SocketAddr>,
}

/// Whether a window counts as sustained.
fn sustained(row: &Row, p99_limit_ms: f64) -> bool {
    row.latency.p99_ms <= p99_limit_ms
        && row.latency.count > 0
        && row.deliveries_kept_up()
        && row.sender_kept_up()
        && row.closed == 0
}

pub async fn run(args: &Args) -> Result<Report> {
    let common = &args.common;
    let n = args.subscribers;
    common.check_fd_limit(n + 1)?;
    let run = run_id();
    let room = format!("{run}-fanout");
    eprintln!("fanout: getting {} tokens", n + 1);
    let tokens = common.tokens().many(&run, n + 1).await?;
    eprintln!("fanout: connecting a publisher and {n} subscribers");
    let target = common.target(n + 1);
    // The publisher joins first, and reads (and drops) what it gets: its own
    // messages, acks and member events.
    let mut publisher_target = target.clone();
    if let Some(addr) = args.publish_to {
        publisher_target.addr = addr;
    }
    let mut publisher = connect(&publisher_target, n, &tokens[n]).await?;
    join(&mut publisher, &room).await?;
    let (sink, stream) = publisher.split();
    let publisher_end = Rc::new(RefCell::new(Recorder::default()));
    spawn_local(drain(stream, publisher_end.clone()));

    let recorder = Rc::new(RefCell::new(common.recorder()));
    let open_time = open_all(
        &target,
        &tokens[..n],
        |_| room.clone(),
        common.concurrency,
        |_, ws| {
            spawn_local(drain(ws, recorder.clone()));
        },
    )
    .await?;
    let opens_per_sec = n as f64 / open_time.as_secs_f64();
    eprintln!(
        "fanout: {n} connected, authenticated and joined in {:.2} s ({opens_per_sec:.0}/s)",
        open_time.as_secs_f64(),
    );
    settle(common).await?;
    let rate = Rc::new(Cell::new(0.0));
    let senders = Rc::new(SendStats::default());
    spawn_local(publish(sink, room, args.size, rate.clone(), senders.clone()));

    let mut rows = Vec::new();
    let mut best: Option<&Row> = None;
    let mut current = args.rate;
    print_header();
    loop {
        rate.set(current);
        let measured = measure(common, &recorder, &senders).await?;
        let row = Row::new(n, current, n as f64, &measured);
        print_rows(std::slice::from_ref(&row));
        let ok = sustained(&row, args.p99_limit_ms);
        rows.push(row);
        // An overloaded server closes slow consumers, the publisher (which
        // gets its own messages and acks) among them: no later step can run.
        if let Some(code) = publisher_end.borrow().closed.keys().next() {
            eprintln!("fanout: the server closed the publisher's connection (code {code})");
            break;
        }
        current *= args.step_factor;
        if !args.step || !ok || current > args.max_rate {
            break;
        }
    }
    rate.set(0.0);
    if args.step {
        best = rows.iter().rev().find(|r| sustained(r, args.p99_limit_ms));
        match best {
            Some(r) => eprintln!(
                "fanout: highest rate sustained with p99 <= {} ms: {:.0} msgs/s = {:.0} deliveries/s",
                args.p99_limit_ms, r.offered_rate, r.deliveries_per_sec
            ),
            None => eprintln!("fanout: no rate was sustained"),
        }
    }
    let summary = json!({
        "open_secs": open_time.as_secs_f64(),
        "opens_per_sec": opens_per_sec,
        "sustained_rate": best.map(|r| r.offered_rate),
        "sustained_deliveries_per_sec": best.map(|r| r.deliveries_per_sec),
        "publisher_closed_with": publisher_end.borrow().closed.keys().next(),
    });
    Ok(Report { scenario: "fanout".into(), params: serde_json::to_value(args)?, rows, summary })
}

/// Sends at the rate in `rate` (0: pause), stamping each message's content
/// with its send time.
async fn publish(
    sink: SplitSink<Ws, Message>,
    room: String,
    size: usize,
    rate: Rc<Cell<f64>>,
    stats: Rc<SendStats>,
) {
    if let Err(err) = publish_loop(sink, &room, size, &rate, &stats).await {
        eprintln!("fanout: the publisher stopped: {err}");
    }
}

async fn publish_loop(
    mut sink: SplitSink<Ws, Message>,
    room: &str,
    size: usize,
    rate: &Cell<f64>,
    stats: &SendStats,
) -> Result<()> {
    let mut current = 0.0;
    let mut started = Instant::now();
    // Messages sent at the current rate, and ever (the idempotency key).
    let mut k: u64 = 0;
    let mut id: u64 = 0;
    loop {
        let r = rate.get();
        if r != current {
            (current, started, k) = (r, Instant::now(), 0);
        }
        if r <= 0.0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        }
        let due = |k: u64| started + Duration::from_secs_f64(k as f64 / r);
        let now = Instant::now();
        let mut burst = 0;
        while due(k) <= now && burst < MAX_BURST {
            id += 1;
            sink.feed(send_frame(room, &content(now_ns(), size), id)).await?;
            stats.sent_late(now - due(k));
            k += 1;
            burst += 1;
        }
        if burst > 0 {
            sink.flush().await?;
        }
        if due(k) > Instant::now() {
            tokio::time::sleep_until(due(k).into()).await;
        } else {
            tokio::task::yield_now().await;
        }
    }
}
