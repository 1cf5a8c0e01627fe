//! `mesh`: R rooms of K members, every member chatting at a steady rate;
//! each message reaches the K members of its room (its sender included).
//! With `--closed-loop`, each member instead sends its next message as soon
//! as the server acknowledges the last: the most the server commits with
//! R x K senders waiting on it (a store's group commit at work), and with
//! one room of one member, what one send costs end to end.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use anyhow::Result;
use futures_util::{SinkExt, StreamExt};
use memchr::memmem::Finder;
use serde::Serialize;
use serde_json::json;
use tokio::task::spawn_local;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use super::{Common, SendStats, measure, run_id};
use crate::client::{Ws, on_item, open_all, send_frame};
use crate::recorder::{Recorder, content, now_ns};
use crate::report::{Report, Row, print_header, print_rows};

/// Flags of `mesh`.
#[derive(Debug, Clone, clap::Args, Serialize)]
pub struct Args {
    #[command(flatten)]
    #[serde(flatten)]
    pub common: Common,
    /// Rooms.
    #[arg(long, default_value_t = 500)]
    pub rooms: usize,
    /// Members per room (one connection each).
    #[arg(long, default_value_t = 10)]
    pub members: usize,
    /// Messages per second each member sends.
    #[arg(long, default_value_t = 1.0)]
    pub rate_per_member: f64,
    /// Bytes of content per message.
    #[arg(long, default_value_t = 100)]
    pub size: usize,
    /// Send each member's next message when the last is acknowledged (or
    /// refused) instead of at `--rate-per-member`.
    #[arg(long)]
    pub closed_loop: bool,
}

pub async fn run(args: &Args) -> Result<Report> {
    let common = &args.common;
    let (rooms, members) = (args.rooms.max(1), args.members.max(1));
    let n = rooms * members;
    common.check_fd_limit(n)?;
    let run = run_id();
    eprintln!("mesh: getting {n} tokens");
    let tokens = common.tokens().many(&run, n).await?;
    eprintln!("mesh: connecting {rooms} rooms x {members} members");

    let recorder = Rc::new(RefCell::new(common.recorder()));
    let senders = Rc::new(SendStats::default());
    let period = Duration::from_secs_f64(1.0 / args.rate_per_member.max(1e-3));
    let room_of = |i: usize| format!("{run}-mesh-{}", i / members);
    let open_time = open_all(&common.target(n), &tokens, room_of, common.concurrency, |i, ws| {
        // Spread the members' send times evenly over a period (golden-ratio
        // sequence), as independent users would be.
        let phase = period.mul_f64((i as f64 * 0.618_033_988_75).fract());
        let member = Member {
            room: room_of(i),
            size: args.size,
            recorder: recorder.clone(),
            stats: senders.clone(),
        };
        if args.closed_loop {
            spawn_local(member.run_closed_loop(ws));
        } else {
            spawn_local(member.run(ws, period, phase));
        }
    })
    .await?;
    eprintln!("mesh: connected, authenticated and joined in {:.2} s", open_time.as_secs_f64());

    let measured = measure(common, &recorder, &senders).await?;
    // A closed loop offers what the server answers.
    let offered = if args.closed_loop {
        measured.sent as f64 / measured.cpu.secs
    } else {
        n as f64 * args.rate_per_member
    };
    let row = Row::new(n, offered, members as f64, &measured);
    print_header();
    print_rows(std::slice::from_ref(&row));
    let summary = json!({
        "open_secs": open_time.as_secs_f64(),
        "opens_per_sec": n as f64 / open_time.as_secs_f64(),
        "closed_loop": args.closed_loop,
    });
    Ok(Report {
        scenario: "mesh".into(),
        params: serde_json::to_value(args)?,
        rows: vec![row],
        summary,
    })
}

/// One chatting member: reads everything, sends every `period`.
struct Member {
    room: String,
    size: usize,
    recorder: Rc<RefCell<Recorder>>,
    stats: Rc<SendStats>,
}

impl Member {
    async fn run(self, mut ws: Ws, period: Duration, phase: Duration) {
        let mut due = Instant::now() + phase;
        // One timer, reset after each send: cheaper than a new timer for
        // every frame read.
        let timer = tokio::time::sleep_until(due.into());
        tokio::pin!(timer);
        let mut sent: u64 = 0;
        loop {
            tokio::select! {
                item = ws.next() => if !on_item(item, &self.recorder) { return },
                () = &mut timer => {
                    let now = Instant::now();
                    sent += 1;
                    let frame = send_frame(&self.room, &content(now_ns(), self.size), sent);
                    if ws.send(frame).await.is_err() {
                        return;
                    }
                    self.stats.sent_late(now - due);
                    due += period;
                    timer.as_mut().reset(due.into());
                }
            }
        }
    }
}

/// What ends a closed-loop member's wait: the server's answer to its send.
static ANSWER: LazyLock<[Finder<'static>; 2]> =
    LazyLock::new(|| [Finder::new(br#""type":"ack""#), Finder::new(br#""type":"error""#)]);

/// Whether a frame answers a send (an `ack` or an `error`).
fn answers_send(item: &Option<Result<Message, WsError>>) -> bool {
    matches!(item, Some(Ok(Message::Text(text)))
        if ANSWER.iter().any(|f| f.find(text.as_bytes()).is_some()))
}

impl Member {
    /// Reads everything; sends again as soon as the last send is answered.
    async fn run_closed_loop(self, mut ws: Ws) {
        let mut sent: u64 = 0;
        loop {
            sent += 1;
            let frame = send_frame(&self.room, &content(now_ns(), self.size), sent);
            if ws.send(frame).await.is_err() {
                return;
            }
            self.stats.sent_late(Duration::ZERO);
            loop {
                let item = ws.next().await;
                let answered = answers_send(&item);
                if !on_item(item, &self.recorder) {
                    return;
                }
                if answered {
                    break;
                }
            }
        }
    }
}
