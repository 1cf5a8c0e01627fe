//! Read positions on their way to the store. A `read` has no ack, and a
//! room of many members reads every message many times over, so reads are
//! gathered (the latest few per user and room) and written together every
//! [`FLUSH_INTERVAL`]: durable within about that long, one transaction
//! however many arrived. What waits is bounded by the users and rooms that
//! read within one interval, times [`MARKS_PER_READER`] (each connection's
//! reads are rate limited).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use roomcast_shared::RoomName;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::store::{ReadMark, Store};

/// How often gathered reads are written: reads are durable within this.
const FLUSH_INTERVAL: Duration = Duration::from_millis(500);

/// How many reads of one user in one room wait for a write. Only the store
/// knows which message is later (by its position), so the latest read is
/// not enough: a tab that is behind, or a read naming a message that is not
/// there, would replace the position another tab just moved forward. The
/// store keeps the furthest of them.
const MARKS_PER_READER: usize = 4;

/// Reads gathered since the last write, the latest last for each reader.
#[derive(Debug, Default)]
pub(super) struct PendingReads {
    marks: Mutex<HashMap<(String, RoomName), Vec<ReadMark>>>,
}

impl PendingReads {
    /// Keeps the latest reads of each user in each room until the next write.
    pub fn add(&self, mark: ReadMark) {
        let mut marks = self.marks.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let waiting = marks.entry((mark.user_id.clone(), mark.room.clone())).or_default();
        waiting.retain(|kept| kept.id != mark.id);
        if waiting.len() == MARKS_PER_READER {
            waiting.remove(0);
        }
        waiting.push(mark);
    }

    fn take(&self) -> Vec<ReadMark> {
        let mut marks = self.marks.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        std::mem::take(&mut *marks).into_values().flatten().collect()
    }

    /// Writes what is gathered; on failure the reads are kept for the next
    /// try, behind any that arrived meanwhile.
    async fn flush(&self, store: &dyn Store) {
        let marks = self.take();
        if marks.is_empty() {
            return;
        }
        if let Err(err) = store.set_reads(&marks).await {
            tracing::warn!(%err, reads = marks.len(), "read positions not written; retrying");
            let mut pending = self.marks.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            for mark in marks {
                let waiting = pending.entry((mark.user_id.clone(), mark.room.clone())).or_default();
                if waiting.len() < MARKS_PER_READER
                    && !waiting.iter().any(|kept| kept.id == mark.id)
                {
                    waiting.insert(0, mark);
                }
            }
        }
    }

    /// Writes gathered reads every [`FLUSH_INTERVAL`] until `stop`, then
    /// once more.
    pub fn start(
        self: Arc<Self>,
        store: Arc<dyn Store>,
        stop: CancellationToken,
    ) -> JoinHandle<()> {
        tokio::spawn(async move {
            crate::engine::every(FLUSH_INTERVAL, &stop, || self.flush(&*store)).await;
            self.flush(&*store).await;
        })
    }
}
