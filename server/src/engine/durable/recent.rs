//! The recent events of each room, in memory in front of the store, so that
//! a reconnecting client recovers without a database read. A cache, never
//! the truth: every event in it was committed first, a window may be
//! dropped or emptied at any time (the store answers instead), and each
//! room's window starts from the store's head the first time it is needed.
//!
//! Each committed event reaches [`Recent::receive`] (from this instance's
//! committer, or from any instance's through Redis), which records it and
//! delivers its frame under the window's lock; a joiner's snapshot reads
//! the window under the same lock. That keeps the
//! promise the hub relies on: whatever a snapshot does not contain reaches
//! the joiner live, and what it contains is dropped from the live stream.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use dashmap::DashMap;
use roomcast_shared::{Position, RoomEvent, RoomName};
use tokio::sync::OnceCell;
use tungstenite::Utf8Bytes;

use crate::config::HistoryLimits;
use crate::hub::{Delivery, Exclude, Hub, encode_event};
use crate::store::{Store, StoreError};

/// What keeping one event costs, about: its JSON (`json_len` bytes: the
/// frame delivered with it is that JSON, so it is weighed without being
/// serialized again) and the fixed parts.
fn cost(json_len: usize) -> usize {
    const FIXED: usize = 256;
    FIXED + json_len
}

/// One room's head and latest events.
#[derive(Debug)]
pub(super) struct Window {
    pub epoch: String,
    /// The latest committed offset this instance knows of.
    pub last: u64,
    /// The latest events, oldest first, their offsets consecutive and the
    /// newest at `last` (or none).
    events: VecDeque<(RoomEvent, Instant, usize)>,
    bytes: usize,
}

impl Window {
    fn new(head: Position) -> Self {
        Self { epoch: head.epoch, last: head.offset, events: VecDeque::new(), bytes: 0 }
    }

    /// The events after `offset` when the window holds all of them.
    pub fn events_after(&self, offset: u64) -> Option<Vec<RoomEvent>> {
        let first = self.events.front().map_or(self.last + 1, |(e, _, _)| e.offset());
        // `offset <= last` first: a client's offset may be any u64, and
        // `offset + 1` is only safe below the window's last.
        (offset <= self.last && offset + 1 >= first).then(|| {
            let skip = usize::try_from(offset + 1 - first).unwrap_or(usize::MAX);
            self.events.iter().skip(skip).map(|(e, _, _)| e.clone()).collect()
        })
    }

    /// Records a committed event whose JSON is `json_len` bytes; returns the
    /// bytes it added (or freed).
    fn push(&mut self, event: &RoomEvent, json_len: usize, limits: &HistoryLimits) -> isize {
        let before = self.bytes;
        let offset = event.offset();
        if offset <= self.last {
            // Committed before the window read its head: counted already.
            return 0;
        }
        if offset != self.last + 1 {
            // A gap: a cache starts again rather than claim to hold it.
            self.clear();
        }
        self.last = offset;
        if let RoomEvent::MessageDeleted(deleted) = event {
            // As the store erased it: a recovery from the window gives what
            // one from the store would. The costs stay as counted, above
            // what the erased events now hold, until they leave.
            for (kept, _, _) in &mut self.events {
                kept.erase(&deleted.id);
            }
        }
        let bytes = cost(json_len);
        self.events.push_back((event.clone(), Instant::now(), bytes));
        self.bytes += bytes;
        self.prune(limits);
        self.bytes as isize - before as isize
    }

    /// Drops events over the count or age limit; returns the bytes freed.
    fn prune(&mut self, limits: &HistoryLimits) -> usize {
        let before = self.bytes;
        while let Some((_, at, bytes)) = self.events.front() {
            if self.events.len() <= limits.max_events && at.elapsed() <= limits.max_age {
                break;
            }
            self.bytes -= bytes;
            self.events.pop_front();
        }
        before - self.bytes
    }

    /// Forgets the events (the head stays); returns the bytes freed.
    fn clear(&mut self) -> usize {
        self.events.clear();
        std::mem::take(&mut self.bytes)
    }
}

type Cell = Arc<OnceCell<Mutex<Window>>>;

/// Every room's window, within a byte budget over all rooms.
#[derive(Debug)]
pub(super) struct Recent {
    store: Arc<dyn Store>,
    limits: HistoryLimits,
    rooms: DashMap<RoomName, Cell>,
    /// What all windows' events cost, held within `limits.memory_bytes`.
    bytes: AtomicUsize,
}

pub(super) fn lock(window: &Mutex<Window>) -> MutexGuard<'_, Window> {
    // A window is a cache whose every change is one push or one clear: a
    // panic elsewhere cannot leave it half-changed.
    window.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Recent {
    pub fn new(store: Arc<dyn Store>, limits: HistoryLimits) -> Self {
        Self { store, limits, rooms: DashMap::new(), bytes: AtomicUsize::new(0) }
    }

    /// The room's window, read from the store's head the first time. The
    /// entry exists before the head is read, which [`Recent::receive`]
    /// relies on.
    pub async fn window(&self, room: &RoomName) -> Result<Cell, StoreError> {
        let cell = self.rooms.entry(room.clone()).or_default().clone();
        cell.get_or_try_init(|| async {
            Ok::<_, StoreError>(Mutex::new(Window::new(self.store.head(room).await?)))
        })
        .await?;
        Ok(cell)
    }

    /// Records a committed event and delivers its frame to the room's local
    /// connections, in offset order: events come from this instance's
    /// committer, or from every instance's through Redis, where two
    /// instances' events of one room may cross. An event ahead of the
    /// window waits while the ones it skipped, committed before it (a room's
    /// offsets are taken under its row lock), are read from the store; a
    /// repeat is dropped. Called by one task at a time, beside
    /// [`Recent::catch_up`]: each records a run of offsets that continues
    /// from the window's last, under its lock, so whichever records an
    /// offset first delivers it and neither leaves a gap.
    pub async fn receive(&self, event: &RoomEvent, text: Utf8Bytes, hub: &Hub) {
        let room = event.room();
        let offset = event.offset();
        let delivery = Delivery { offset: Some(offset), text };
        // No window yet: no snapshot has read this room's head, and any
        // later one reads a head that holds this committed event.
        if !self.rooms.contains_key(room) {
            return hub.deliver(room, &delivery, &Exclude::Nobody);
        }
        let cell = match self.window(room).await {
            Ok(cell) => cell,
            Err(err) => {
                // The head could not be read: the window loads later, from
                // a head that holds this event.
                tracing::warn!(%room, %err, "room head unreadable; delivering without caching");
                return hub.deliver(room, &delivery, &Exclude::Nobody);
            }
        };
        let Some(window) = cell.get() else { return };
        let behind = lock(window).last;
        if offset > behind + 1 {
            let skipped = usize::try_from(offset - behind - 1).unwrap_or(usize::MAX);
            match self.store.events_after(room, behind, skipped.min(self.limits.max_events)).await {
                Ok(missed) => {
                    for event in &missed {
                        let text = encode_event(event);
                        self.record(window, event, text, hub);
                    }
                }
                Err(err) => {
                    // Delivered with the gap: clients see it and recover.
                    tracing::warn!(%room, %err, "events skipped by the fan-in unreadable");
                }
            }
        }
        self.record(window, event, delivery.text, hub);
        self.enforce_budget();
    }

    /// Records an event the window has not seen and delivers it, under the
    /// window's lock; drops a repeat.
    fn record(&self, window: &Mutex<Window>, event: &RoomEvent, text: Utf8Bytes, hub: &Hub) {
        let mut window = lock(window);
        if event.offset() <= window.last {
            return;
        }
        let added = window.push(event, text.len(), &self.limits);
        let delivery = Delivery { offset: Some(event.offset()), text };
        hub.deliver(event.room(), &delivery, &Exclude::Nobody);
        drop(window);
        self.account(added);
    }

    /// Delivers what the room's window lacks, from the store: events that
    /// arrived when the fan-in could not take them, or that a joining client
    /// saw on another instance before they arrived here.
    pub async fn catch_up(&self, room: &RoomName, hub: &Hub) {
        let Some(cell) = self.rooms.get(room).map(|cell| cell.clone()) else { return };
        let Some(window) = cell.get() else { return };
        let last = lock(window).last;
        match self.store.events_after(room, last, self.limits.max_events).await {
            Ok(missed) => {
                for event in &missed {
                    let text = encode_event(event);
                    self.record(window, event, text, hub);
                }
            }
            Err(err) => tracing::warn!(%room, %err, "cannot catch up from the store"),
        }
    }

    /// Forgets the room's window: this instance starts receiving the room
    /// (again), and what it missed meanwhile is in the store's head.
    pub fn forget(&self, room: &RoomName) {
        if let Some((_, cell)) = self.rooms.remove(room)
            && let Some(window) = cell.get()
        {
            let freed = lock(window).clear();
            self.account(-(freed as isize));
        }
    }

    fn account(&self, change: isize) {
        if change >= 0 {
            self.bytes.fetch_add(change.unsigned_abs(), Ordering::Relaxed);
        } else {
            self.bytes.fetch_sub(change.unsigned_abs(), Ordering::Relaxed);
        }
    }

    /// Over the budget: empties windows until a tenth of it is free again
    /// (recovery from them goes to the store meanwhile).
    fn enforce_budget(&self) {
        let budget = self.limits.memory_bytes;
        if self.bytes.load(Ordering::Relaxed) <= budget {
            return;
        }
        let target = budget - budget / 10;
        let cells: Vec<Cell> = self.rooms.iter().map(|entry| entry.value().clone()).collect();
        for cell in cells {
            if self.bytes.load(Ordering::Relaxed) <= target {
                break;
            }
            if let Some(window) = cell.get() {
                let freed = lock(window).clear();
                self.account(-(freed as isize));
            }
        }
    }

    /// Drops expired events and forgets the windows of rooms without local
    /// members (`has_members`); returns the rooms kept and their bytes.
    pub fn sweep(&self, has_members: impl Fn(&RoomName) -> bool) -> (usize, usize) {
        self.rooms.retain(|room, cell| {
            let Some(window) = cell.get() else { return true };
            let mut window = lock(window);
            let keep = has_members(room);
            let freed = if keep { window.prune(&self.limits) } else { window.clear() };
            self.account(-(freed as isize));
            keep
        });
        (self.rooms.len(), self.bytes.load(Ordering::Relaxed))
    }
}
