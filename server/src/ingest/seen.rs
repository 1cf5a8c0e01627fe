//! The ids of applied notify and event envelopes, so that a redelivered
//! one is skipped: in the store when there is one (shared by every
//! instance, kept across restarts for `--amqp-dedup-hours`), otherwise in
//! a bounded set in this process (`--amqp-dedup-ids`, the oldest forgotten
//! first, lost at restart).

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

use super::AmqpSettings;
use crate::store::{Store, StoreError};

/// How often ids older than `--amqp-dedup-hours` are removed from the store.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// Applied envelope ids.
#[derive(Debug)]
pub(super) struct Seen {
    store: Option<Arc<dyn Store>>,
    memory: Mutex<Recent>,
}

/// The newest `cap` ids, in the order they were recorded.
#[derive(Debug)]
struct Recent {
    ids: HashSet<String>,
    order: VecDeque<String>,
    cap: usize,
}

impl Seen {
    pub fn new(store: Option<Arc<dyn Store>>, settings: &AmqpSettings) -> Self {
        let recent =
            Recent { ids: HashSet::new(), order: VecDeque::new(), cap: settings.dedup_ids };
        Self { store, memory: Mutex::new(recent) }
    }

    /// Whether `id` was recorded as applied.
    pub async fn contains(&self, id: &str) -> Result<bool, StoreError> {
        match &self.store {
            Some(store) => store.ingested(id).await,
            None => Ok(self.lock().ids.contains(id)),
        }
    }

    /// Records `id` as applied.
    pub async fn record(&self, id: &str) -> Result<(), StoreError> {
        match &self.store {
            Some(store) => store.record_ingested(id, OffsetDateTime::now_utc()).await,
            None => {
                let mut recent = self.lock();
                if recent.ids.insert(id.to_owned()) {
                    recent.order.push_back(id.to_owned());
                    while recent.order.len() > recent.cap {
                        if let Some(oldest) = recent.order.pop_front() {
                            recent.ids.remove(&oldest);
                        }
                    }
                }
                Ok(())
            }
        }
    }

    /// With a store: the task that forgets ids older than `keep`, hourly.
    pub fn pruning(
        &self,
        keep: Duration,
        shutdown: CancellationToken,
    ) -> Option<impl Future<Output = ()> + use<>> {
        let store = self.store.clone()?;
        Some(async move {
            crate::engine::every(PRUNE_EVERY, &shutdown, || async {
                let before = OffsetDateTime::now_utc() - keep;
                match store.prune_ingested(before).await {
                    Ok(0) => {}
                    Ok(pruned) => tracing::info!(pruned, "forgot old ingested envelope ids"),
                    Err(err) => tracing::warn!(%err, "cannot prune ingested envelope ids"),
                }
            })
            .await;
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Recent> {
        self.memory.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn memory_keeps_only_the_newest_ids() {
        let settings = AmqpSettings { dedup_ids: 2, ..AmqpSettings::default() };
        let seen = Seen::new(None, &settings);
        for id in ["a", "b", "b", "c"] {
            seen.record(id).await.unwrap();
        }
        assert!(!seen.contains("a").await.unwrap(), "the oldest is forgotten past the cap");
        assert!(seen.contains("b").await.unwrap() && seen.contains("c").await.unwrap());
    }
}
