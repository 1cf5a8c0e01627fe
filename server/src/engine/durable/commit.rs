//! Group commit: every change to a room stream, from any connection or the
//! HTTP API, goes through one task that takes whatever is waiting (up to
//! [`MAX_BATCH`]) and commits it in one transaction. A commit costs about
//! one disk sync (SQLite) or one round trip (PostgreSQL) whatever it holds,
//! so under load many messages share it; alone, a message waits for
//! nothing but its own commit.
//!
//! Each committed batch goes to a second task, the publisher, which
//! publishes what was stored in offset order ([`Publish`]) and only then
//! answers each caller. The committer starts the next commit meanwhile, so
//! a batch's fan-out and the next batch's commit overlap. The publisher
//! takes batches in commit order, so each room's events still reach
//! subscribers in offset order, and no caller hears of a change before its
//! commit ended.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use roomcast_shared::RoomEvent;

use super::recent::Recent;
use crate::engine::{EngineError, Fanout};
use crate::hub::{Delivery, Hub, encode_event};
use crate::store::outbox::EventRows;
use crate::store::{NewEvent, Outcome, Store};
use crate::telemetry::Metrics;

/// Most changes in one transaction: enough to amortise a commit under any
/// load one instance takes, few enough that a commit stays short.
const MAX_BATCH: usize = 512;

/// Changes waiting for the committer: callers wait (backpressure) beyond.
const QUEUE: usize = 8 * MAX_BATCH;

/// Committed batches waiting for the publisher: the committer waits
/// (backpressure) beyond. One is enough for a commit and a fan-out to
/// overlap; a second absorbs a slow fan-out without stalling commits.
const COMMITTED: usize = 2;

/// What the client is told when the database fails: in general terms (the
/// error itself is logged).
const UNAVAILABLE: &str = "the message store is unavailable; retry";

struct Job {
    change: NewEvent,
    done: oneshot::Sender<Option<Outcome>>,
}

/// A committed batch on its way to the publisher: each change's outcome and
/// who waits for it, in queue order.
struct Committed {
    outcomes: Vec<Outcome>,
    waiting: Vec<oneshot::Sender<Option<Outcome>>>,
}

/// Where committed events go.
#[derive(Debug, Clone)]
pub(super) enum Publish {
    /// Straight to this instance's connections: the only instance.
    Local { recent: Arc<Recent>, hub: Arc<Hub> },
    /// Through the engine's fan-out to every instance (this one included),
    /// whose fan-in puts each room's events in order (`fanin.rs`).
    Shared(Arc<dyn Fanout>),
}

impl Publish {
    /// Publishes a batch's stored events, in order.
    async fn publish(&self, events: &[&RoomEvent]) {
        match self {
            Self::Local { recent, hub } => {
                for event in events {
                    let text = encode_event(event);
                    recent.receive(event, text, hub).await;
                }
            }
            Self::Shared(fanout) => {
                let deliveries: Vec<_> = events
                    .iter()
                    .map(|event| {
                        let text = encode_event(event);
                        (event.room().clone(), Delivery { offset: Some(event.offset()), text })
                    })
                    .collect();
                // Committed already: a failed publish delays delivery (the
                // next event of each room brings the skipped ones from the
                // store) but loses nothing, so the senders are answered.
                if let Err(err) = fanout.publish_events(deliveries).await {
                    tracing::warn!(%err, events = events.len(), "committed events not published");
                }
            }
        }
    }
}

/// The committer's queue.
#[derive(Debug, Clone)]
pub(super) struct Committer {
    queue: mpsc::Sender<Job>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job").field("change", &self.change).finish_non_exhaustive()
    }
}

impl Committer {
    /// Starts the committer; it runs until every [`Committer`] is dropped,
    /// committing what is queued by then.
    /// `outbox` says which webhook rows each stored event takes.
    pub fn start(
        store: Arc<dyn Store>,
        outbox: Arc<dyn EventRows>,
        publish: Publish,
        metrics: Arc<Metrics>,
    ) -> (Self, JoinHandle<()>) {
        let (queue, jobs) = mpsc::channel(QUEUE);
        (Self { queue }, tokio::spawn(run(store, outbox, publish, metrics, jobs)))
    }

    /// Queues a change (waiting while the queue is full): it is committed
    /// after every change queued before it, and the returned [`Committing`]
    /// gives its outcome once it is durable and published.
    pub async fn queue(&self, change: NewEvent) -> Result<Committing, EngineError> {
        let (done, outcome) = oneshot::channel();
        self.queue.send(Job { change, done }).await.map_err(|_| unavailable())?;
        Ok(Committing(outcome))
    }
}

/// A queued change, until the committer answers.
#[derive(Debug)]
pub(super) struct Committing(oneshot::Receiver<Option<Outcome>>);

impl Committing {
    /// The change's outcome once it is durable and published.
    pub async fn outcome(self) -> Result<Outcome, EngineError> {
        self.0.await.ok().flatten().ok_or_else(unavailable)
    }
}

fn unavailable() -> EngineError {
    EngineError::Unavailable(UNAVAILABLE.into())
}

async fn run(
    store: Arc<dyn Store>,
    outbox: Arc<dyn EventRows>,
    publish: Publish,
    metrics: Arc<Metrics>,
    mut queue: mpsc::Receiver<Job>,
) {
    let (committed, batches) = mpsc::channel(COMMITTED);
    let publisher = tokio::spawn(publish_committed(publish, batches));
    let mut jobs = Vec::with_capacity(MAX_BATCH);
    while queue.recv_many(&mut jobs, MAX_BATCH).await > 0 {
        let (changes, waiting): (Vec<NewEvent>, Vec<_>) =
            jobs.drain(..).map(|job| (job.change, job.done)).unzip();
        match store.append_recorded(&changes, &*outbox).await {
            Ok(outcomes) => {
                metrics.store_commits.inc();
                metrics.store_committed_changes.inc_by(changes.len() as u64);
                // The publisher outlives this loop (it ends when `committed`
                // is dropped below), so the send fails only if it panicked;
                // then the callers hear "unavailable" as their senders drop,
                // and resend with their idempotency keys.
                if committed.send(Committed { outcomes, waiting }).await.is_err() {
                    tracing::error!("the publisher of committed events stopped");
                }
            }
            Err(err) => {
                // Nothing of the batch was stored, nothing is acknowledged:
                // each sender retries with its idempotency key.
                tracing::error!(%err, changes = changes.len(), "commit failed");
                metrics.store_commit_failures.inc();
                for done in waiting {
                    let _ = done.send(None);
                }
            }
        }
    }
    // Every batch committed is published and answered before the
    // committer's task ends (a closing server waits for it).
    drop(committed);
    let _ = publisher.await;
}

/// Publishes committed batches one after another, in commit order, and
/// answers each batch's callers once it is published.
async fn publish_committed(publish: Publish, mut batches: mpsc::Receiver<Committed>) {
    while let Some(Committed { outcomes, waiting }) = batches.recv().await {
        let stored: Vec<&RoomEvent> = outcomes
            .iter()
            .filter_map(|outcome| match outcome {
                Outcome::Appended(event) => Some(event),
                _ => None,
            })
            .collect();
        publish.publish(&stored).await;
        for (outcome, done) in outcomes.into_iter().zip(waiting) {
            let _ = done.send(Some(outcome));
        }
    }
}
