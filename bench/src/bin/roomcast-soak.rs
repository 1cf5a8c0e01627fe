//! `roomcast-soak`: many clients joining, chatting and dropping at random for
//! a bounded time, then checks that the server lost no acknowledged message,
//! sent no unexpected error, and gave back what the clients held (rooms,
//! members, presence, connections, memory).
//!
//!   roomcast-soak --server 127.0.0.1:8080 --server-pid <pid> \
//!     --jwt-secret <secret> --api-key <key> --duration 600
//!
//! Start the server with raised rate limits and a history that keeps every
//! message of the run (see docs/reliability.md).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Result, bail};
use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use rand::Rng;
use roomcast_shared::Claims;
use serde_json::{Value, json};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

#[derive(Debug, Parser)]
#[command(name = "roomcast-soak", about = "Bounded soak test of a Roomcast server")]
struct Args {
    /// The server's address.
    #[arg(long, default_value = "127.0.0.1:8080")]
    server: SocketAddr,
    /// The server's process id, to read its memory from /proc.
    #[arg(long)]
    server_pid: Option<u32>,
    /// The server's JWT secret (tokens are signed here).
    #[arg(long, env = "ROOMCAST_JWT_SECRET")]
    jwt_secret: String,
    /// The server's API key (history and presence are checked over HTTP).
    #[arg(long, env = "ROOMCAST_API_KEY")]
    api_key: String,
    /// Clients connected at any time.
    #[arg(long, default_value_t = 200)]
    clients: usize,
    /// Distinct users the clients are drawn from (several tabs per user).
    #[arg(long, default_value_t = 100)]
    users: usize,
    /// Rooms the clients join.
    #[arg(long, default_value_t = 20)]
    rooms: usize,
    /// Seconds of churn.
    #[arg(long, default_value_t = 600)]
    duration: u64,
    /// Seconds of churn before the memory baseline is taken: long enough
    /// for bounded histories to fill, so that what grows after is a leak.
    #[arg(long, default_value_t = 30)]
    warmup: u64,
    /// How long the server keeps a disconnected user (its presence grace).
    #[arg(long, default_value_t = 3000)]
    grace_ms: u64,
    /// Skip checking that every acked message is in the room's history
    /// (for runs whose server keeps less history than the run writes, to
    /// watch memory once history is full).
    #[arg(long)]
    no_history_check: bool,
    /// Write the result here as JSON.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
}

/// What the clients saw, shared by their tasks.
#[derive(Default)]
struct Tally {
    /// Every acked message: room to message ids.
    acked: BTreeMap<String, HashSet<String>>,
    /// `error` frames by code.
    errors: BTreeMap<String, u64>,
    /// Close codes the server sent.
    closes: BTreeMap<u16, u64>,
    /// Connections that could not be opened, by reason.
    connect_failures: BTreeMap<String, u64>,
    sessions: u64,
    messages_received: u64,
}

fn token(secret: &str, user: usize) -> Result<String> {
    let exp = jsonwebtoken::get_current_timestamp() + 24 * 3600;
    let claims =
        Claims { exp: Some(exp), ..Claims::new(format!("soak{user}"), format!("Soak {user}")) };
    let key = jsonwebtoken::EncodingKey::from_secret(secret.as_bytes());
    Ok(jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &key)?)
}

/// How long opening a connection may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// One client's life: connect, join, chat, drop; again until the deadline.
async fn client(
    args: Arc<Args>,
    tally: Arc<Mutex<Tally>>,
    deadline: Instant,
    seed: u64,
) -> Result<()> {
    let mut counter = 0u64;
    while Instant::now() < deadline {
        let (user, rooms, rounds, abrupt) = {
            let mut rng = rand::rng();
            let user = rng.random_range(0..args.users);
            let rooms: Vec<String> = (0..rng.random_range(1..=3))
                .map(|_| format!("soak-{}", rng.random_range(0..args.rooms)))
                .collect();
            (user, rooms, rng.random_range(1..20), rng.random_bool(0.5))
        };
        let url = format!("ws://{}/ws?token={}", args.server, token(&args.jwt_secret, user)?);
        let connected =
            tokio::time::timeout(CONNECT_TIMEOUT, tokio_tungstenite::connect_async(&url)).await;
        let mut ws = match connected {
            Ok(Ok((ws, _))) => ws,
            // Counted and reported: on a loaded 2-core machine a connect can
            // time out without the server being at fault.
            failed => {
                let why = match failed {
                    Ok(Err(err)) => err.to_string(),
                    _ => "timed out".to_owned(),
                };
                *tally.lock().unwrap().connect_failures.entry(why).or_default() += 1;
                tokio::time::sleep(random_ms(100..1000)).await;
                continue;
            }
        };
        tally.lock().unwrap().sessions += 1;
        for room in &rooms {
            ws.send(Message::text(json!({"type": "join", "room": room, "history": 5}).to_string()))
                .await?;
        }
        let mut pending: HashMap<String, String> = HashMap::new();
        for _ in 0..rounds {
            let room = &rooms[counter as usize % rooms.len()];
            counter += 1;
            let client_id = format!("{seed}-{counter}");
            pending.insert(client_id.clone(), room.clone());
            ws.send(Message::text(
                json!({"type": "typing", "room": room, "is_typing": true}).to_string(),
            ))
            .await?;
            let send = json!({"type": "send", "room": room, "content": format!("soak {client_id}"), "client_id": client_id});
            ws.send(Message::text(send.to_string())).await?;
            let until = Instant::now() + random_ms(20..300);
            while let Ok(Some(frame)) = tokio::time::timeout_at(until, ws.next()).await {
                if !read(frame?, &mut pending, &tally) {
                    break;
                }
            }
        }
        if abrupt {
            // Dropped without a close, like a phone losing its network: what
            // was sent but not acked may or may not be stored.
            drop(ws);
        } else {
            // Wait for the outstanding acks, then leave properly.
            let until = Instant::now() + Duration::from_secs(5);
            while !pending.is_empty() {
                match tokio::time::timeout_at(until, ws.next()).await {
                    Ok(Some(frame)) => {
                        if !read(frame?, &mut pending, &tally) {
                            break;
                        }
                    }
                    _ => break,
                }
            }
            let _ = ws.close(None).await;
        }
        tokio::time::sleep(random_ms(10..500)).await;
    }
    Ok(())
}

fn random_ms(range: std::ops::Range<u64>) -> Duration {
    Duration::from_millis(rand::rng().random_range(range))
}

/// Records one frame; false when the connection closed.
fn read(message: Message, pending: &mut HashMap<String, String>, tally: &Mutex<Tally>) -> bool {
    let mut tally = tally.lock().unwrap();
    match message {
        Message::Text(text) => {
            let Ok(frame) = serde_json::from_str::<Value>(&text) else { return true };
            match frame["type"].as_str() {
                Some("ack") => {
                    if let Some(room) = frame["client_id"].as_str().and_then(|c| pending.remove(c))
                    {
                        let id = frame["id"].as_str().unwrap_or_default().to_owned();
                        tally.acked.entry(room).or_default().insert(id);
                    }
                }
                Some("message") => tally.messages_received += 1,
                Some("error") => {
                    *tally
                        .errors
                        .entry(frame["code"].as_str().unwrap_or("?").to_owned())
                        .or_default() += 1;
                }
                _ => {}
            }
            true
        }
        Message::Close(frame) => {
            *tally.closes.entry(frame.map_or(1005, |f| u16::from(f.code))).or_default() += 1;
            false
        }
        _ => true,
    }
}

fn rss_kib(pid: Option<u32>) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{}/status", pid?)).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

async fn api(args: &Args, path: &str) -> Result<Value> {
    let url = format!("http://{}{path}", args.server);
    let reply = reqwest::Client::new().get(&url).bearer_auth(&args.api_key).send().await?;
    Ok(reply.error_for_status()?.json().await?)
}

/// Every message id the server keeps for `room`.
async fn stored_ids(args: &Args, room: &str) -> Result<HashSet<String>> {
    let mut ids = HashSet::new();
    let mut before = String::new();
    loop {
        let page = api(args, &format!("/api/rooms/{room}/messages?limit=100{before}")).await?;
        let messages = page["messages"].as_array().cloned().unwrap_or_default();
        ids.extend(messages.iter().filter_map(|m| m["id"].as_str().map(str::to_owned)));
        match messages.first().and_then(|m| m["offset"].as_u64()) {
            Some(oldest) if page["has_more"] == true => before = format!("&before={oldest}"),
            _ => return Ok(ids),
        }
    }
}

async fn churn(args: &Arc<Args>, tally: &Arc<Mutex<Tally>>, seconds: u64) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let tasks: Vec<_> = (0..args.clients as u64)
        .map(|seed| tokio::spawn(client(args.clone(), tally.clone(), deadline, seed)))
        .collect();
    for task in tasks {
        task.await??;
    }
    // Let the server's grace period end for everyone who left.
    tokio::time::sleep(Duration::from_millis(args.grace_ms + 1500)).await;
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let args = Arc::new(Args::parse());
    let tally = Arc::new(Mutex::new(Tally::default()));
    eprintln!("soak: {} s of warm-up, then the baseline", args.warmup);
    churn(&args, &tally, args.warmup).await?;
    let baseline = rss_kib(args.server_pid);
    eprintln!("soak: {} clients for {} s", args.clients, args.duration);
    churn(&args, &tally, args.duration).await?;

    let tally = std::mem::take(&mut *tally.lock().unwrap());
    // Everyone has left: wait (bounded) until the server has let go of them.
    let started = Instant::now();
    let (health, members_left) = loop {
        let health = api(&args, "/health").await.unwrap_or(Value::Null);
        let mut members = 0;
        for room in tally.acked.keys() {
            let presence = api(&args, &format!("/api/rooms/{room}/presence")).await?;
            members += presence["members"].as_array().map_or(0, Vec::len);
        }
        let clean = members == 0 && health["connections"] == 0 && health["rooms"] == 0;
        if clean || started.elapsed() > Duration::from_secs(60) {
            break (health, members);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let reclaimed_after_s = started.elapsed().as_secs_f64();
    let after = rss_kib(args.server_pid);
    let mut lost = 0;
    for (room, acked) in &tally.acked {
        if !args.no_history_check {
            let stored = stored_ids(&args, room).await?;
            lost += acked.difference(&stored).count();
        }
    }
    let acked: usize = tally.acked.values().map(HashSet::len).sum();
    let result = json!({
        "clients": args.clients, "users": args.users, "rooms": args.rooms, "duration_s": args.duration,
        "sessions": tally.sessions, "connect_failures": tally.connect_failures, "acked": acked, "lost_acked": lost, "messages_received": tally.messages_received,
        "errors": tally.errors, "server_closes": tally.closes,
        "history_checked": !args.no_history_check,
        "rss_kib_baseline": baseline, "rss_kib_after": after,
        "members_left": members_left, "reclaimed_after_s": reclaimed_after_s, "health_after": health,
    });
    println!("{}", serde_json::to_string_pretty(&result)?);
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&result)?)?;
    }
    let leftover =
        health["connections"].as_u64().unwrap_or(0) + health["rooms"].as_u64().unwrap_or(0);
    if lost > 0 || !tally.errors.is_empty() || members_left > 0 || leftover > 0 {
        bail!(
            "soak failed: {lost} acked messages lost, errors {:?}, {members_left} members and {leftover} connections/rooms left",
            tally.errors
        );
    }
    Ok(())
}
