//! Room streams in one process: each room's [`RoomStream`] behind its own
//! lock (rooms never wait on each other), with all kept history held within
//! one byte budget, the oldest events of any room going first.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use async_trait::async_trait;
use dashmap::DashMap;
use roomcast_shared::{Position, ReadReceipt, RoomName};

use super::room_stream::RoomStream;
use super::{MemorySettings, shrink_when_sparse};
use crate::engine::{Appended, Change, EngineError, Page, Snapshot, Streams};
use crate::hub::{Delivery, Exclude, Hub, encode_event};

/// The in-memory streams.
#[derive(Debug)]
pub(crate) struct MemoryStreams {
    hub: Arc<Hub>,
    settings: MemorySettings,
    /// Each room's stream behind its own lock: rooms never wait on each other.
    streams: DashMap<RoomName, Arc<Mutex<RoomStream>>>,
    /// What all kept events cost (the sum of every stream's `bytes`), held
    /// within `history.memory_bytes`.
    history_bytes: AtomicUsize,
    /// Held by whoever is dropping events over the budget: one at a time.
    evicting: Mutex<()>,
}

impl MemoryStreams {
    pub fn new(hub: Arc<Hub>, settings: MemorySettings) -> Self {
        Self {
            hub,
            settings,
            streams: DashMap::new(),
            history_bytes: AtomicUsize::new(0),
            evicting: Mutex::new(()),
        }
    }

    /// Runs `change` on the room's stream, under its lock, and counts what
    /// it cost or freed.
    fn with_stream<T>(&self, room: &RoomName, change: impl FnOnce(&mut RoomStream) -> T) -> T {
        let mut change = Some(change);
        loop {
            let stream = self.stream(room);
            let mut stream = lock(&stream);
            // The sweep forgot it between the lookup and the lock: changing
            // it would change nobody's stream.
            if stream.retired {
                continue;
            }
            if let Some(change) = change.take() {
                let before = stream.bytes();
                let result = change(&mut stream);
                self.account(before, stream.bytes());
                return result;
            }
        }
    }

    fn account(&self, before: usize, after: usize) {
        if after >= before {
            self.history_bytes.fetch_add(after - before, Ordering::Relaxed);
        } else {
            self.history_bytes.fetch_sub(before - after, Ordering::Relaxed);
        }
    }

    /// Over the history budget: drops the oldest events of all rooms until
    /// a tenth of the budget is free again (so that this runs rarely). A
    /// `since` from before what a room keeps is answered `recovered: false`.
    fn enforce_budget(&self) {
        let budget = self.settings.history.memory_bytes;
        if self.history_bytes.load(Ordering::Relaxed) <= budget {
            return;
        }
        let Ok(_only_us) = self.evicting.try_lock() else { return };
        let target = budget - budget / 10;
        let streams: Vec<Arc<Mutex<RoomStream>>> =
            self.streams.iter().map(|entry| entry.value().clone()).collect();
        let mut oldest: BinaryHeap<Reverse<(Instant, usize)>> = streams
            .iter()
            .enumerate()
            .filter_map(|(i, s)| lock(s).oldest_at().map(|at| Reverse((at, i))))
            .collect();
        while self.history_bytes.load(Ordering::Relaxed) > target
            && let Some(Reverse((_, i))) = oldest.pop()
        {
            let mut stream = lock(&streams[i]);
            let before = stream.bytes();
            stream.drop_oldest();
            self.account(before, stream.bytes());
            if let Some(at) = stream.oldest_at() {
                oldest.push(Reverse((at, i)));
            }
        }
    }

    /// Drops expired events and forgets rooms with neither kept events nor
    /// members (`has_members`); their epoch goes with them: a client coming
    /// back gets `recovered: false` and the room as it is, empty, which
    /// loses nothing. Returns the rooms kept and the bytes their history
    /// costs.
    pub fn sweep(&self, has_members: impl Fn(&RoomName) -> bool) -> (usize, usize) {
        let streams: Vec<Arc<Mutex<RoomStream>>> =
            self.streams.iter().map(|entry| entry.value().clone()).collect();
        for stream in streams {
            let mut stream = lock(&stream);
            let before = stream.bytes();
            stream.prune(&self.settings.history);
            self.account(before, stream.bytes());
        }
        // A joiner is a member before it reads the stream, so a room without
        // members has no reader that could miss a change to a forgotten one.
        self.streams.retain(|room, stream| {
            let mut stream = lock(stream);
            let forget = stream.is_empty() && !has_members(room);
            stream.retired = forget;
            !forget
        });
        shrink_when_sparse(&self.streams);
        (self.streams.len(), self.history_bytes.load(Ordering::Relaxed))
    }

    fn stream(&self, room: &RoomName) -> Arc<Mutex<RoomStream>> {
        self.streams
            .entry(room.clone())
            .or_insert_with(|| {
                // A fresh epoch per stream: a restarted process cannot confuse
                // its new offsets with the old ones.
                let epoch = crate::engine::random_id();
                Arc::new(Mutex::new(RoomStream::new(room.clone(), epoch)))
            })
            .clone()
    }
}

fn lock(stream: &Mutex<RoomStream>) -> std::sync::MutexGuard<'_, RoomStream> {
    // A panic while holding the lock cannot leave a stream half-updated in a
    // way later readers would misread, so a poisoned lock is still usable.
    stream.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[async_trait]
impl Streams for MemoryStreams {
    async fn append(&self, room: &RoomName, change: Change) -> Result<Appended, EngineError> {
        let appended = self.with_stream(room, |stream| {
            let appended = stream.apply(change, &self.settings.history)?;
            if let Some(event) = &appended.event {
                // Delivered while the stream is locked, so that every
                // connection receives a room's events in offset order.
                let text = encode_event(event);
                self.hub.deliver(
                    room,
                    &Delivery { offset: Some(appended.offset), text },
                    &Exclude::Nobody,
                );
            }
            Ok(appended)
        });
        self.enforce_budget();
        appended
    }

    async fn snapshot(
        &self,
        room: &RoomName,
        since: Option<&Position>,
        history: usize,
    ) -> Result<Snapshot, EngineError> {
        Ok(self.with_stream(room, |stream| {
            stream.prune(&self.settings.history);
            stream.snapshot(since, history)
        }))
    }

    async fn history(
        &self,
        room: &RoomName,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Page, EngineError> {
        let Some(stream) = self.streams.get(room).map(|s| s.clone()) else {
            return Ok(Page { messages: Vec::new(), has_more: false });
        };
        let mut stream = lock(&stream);
        let bytes = stream.bytes();
        stream.prune(&self.settings.history);
        self.account(bytes, stream.bytes());
        Ok(stream.history(before, limit))
    }

    async fn keep_read(&self, room: &RoomName, receipt: ReadReceipt) {
        if let Some(stream) = self.streams.get(room).map(|s| s.clone()) {
            lock(&stream).keep_read(receipt);
        }
    }

    async fn reads(&self, room: &RoomName, limit: usize) -> Result<Vec<ReadReceipt>, EngineError> {
        Ok(self.streams.get(room).map(|s| lock(&s).reads(limit)).unwrap_or_default())
    }
}
