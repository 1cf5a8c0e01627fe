//! One connection's outbound queue and kill switch, between the senders (the
//! hub and the session, through [`Conn`](super::Conn)) and the connection's
//! writer task.
//!
//! A bounded queue that holds no memory while it is empty: an idle
//! connection costs one small allocation here, where tokio's `mpsc` costs a
//! channel and a block of 32 slots (about 1.5 KiB), and keeps every block it
//! ever grew (docs/performance.md). The writer takes everything queued (up
//! to a batch) at once, so between bursts the queue's buffer goes with the
//! batch and is freed after it is written.
//!
//! The queue is bounded twice: in frames and in bytes. The bytes are what
//! the connection holds on to: frames queued, and frames the writer took
//! and has not finished writing (a client that never reads keeps them in
//! the writer). A frame's bytes may be shared with other recipients of a
//! fan-out; each connection counts them all the same, since each keeps
//! them alive.
//!
//! Invariants:
//! - At most `capacity` frames and `max_bytes` bytes wait (one frame alone
//!   may be bigger); pushing onto a full queue fails (the caller closes the
//!   connection as a slow consumer) and never waits.
//! - Once killed, the writer sees the kill before any queued frame.
//! - The writer ends (sees [`Next::Ended`]) only once the sender is gone and
//!   every frame queued before that has been taken.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use roomcast_shared::CloseCode;

use super::Outbound;

/// Why a connection closes at once, and with which close frame.
pub(crate) type Kill = (CloseCode, &'static str);

/// A new queue of at most `capacity` frames and `max_bytes` bytes: its
/// sending side (one per connection, not cloneable) and the writer's side.
pub(crate) fn queue(capacity: usize, max_bytes: usize) -> (Sender, Receiver) {
    let shared = Arc::new(Shared {
        capacity,
        max_bytes,
        state: Mutex::new(State {
            frames: VecDeque::new(),
            bytes: 0,
            taken: 0,
            killed: None,
            nudged: false,
            sender_gone: false,
            receiver_gone: false,
            writer: None,
            writer_kill: None,
            reader: None,
        }),
    });
    (Sender(shared.clone()), Receiver(shared))
}

/// What the two sides share, in one allocation.
#[derive(Debug)]
struct Shared {
    /// Frames that may wait before a push fails (`--send-queue`).
    capacity: usize,
    /// Bytes the connection may hold before a push fails
    /// (`--send-queue-bytes`).
    max_bytes: usize,
    /// Everything else, behind one lock: it is held for a push, a kill or
    /// taking a batch, never across an `.await`.
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    /// Frames not yet taken by the writer; no allocation while empty.
    frames: VecDeque<Outbound>,
    /// Bytes of the frames queued, and of those taken by the writer and
    /// not yet released ([`Receiver::release`]).
    bytes: usize,
    /// Bytes of the batch the writer took last and has not released: kept
    /// here rather than in the writer's future, which lives as long as the
    /// connection (docs/performance.md, idle memory).
    taken: usize,
    /// Set once, by the first kill: the close frame the writer sends.
    killed: Option<Kill>,
    /// Set by [`Sender::nudge`] until the reader sees it: something for the
    /// session to look at (the hub's evictions of this connection).
    nudged: bool,
    /// The sender is dropped: nothing more will be queued.
    sender_gone: bool,
    /// The writer is gone: pushes are dropped.
    receiver_gone: bool,
    /// The writer task, waiting in [`Receiver::next`] for frames, a kill or
    /// the end.
    writer: Option<Waker>,
    /// The writer task, waiting in [`Receiver::killed`] while it sends (a
    /// push does not wake it there).
    writer_kill: Option<Waker>,
    /// The connection's reader, waiting in [`Sender::killed`].
    reader: Option<Waker>,
}

impl State {
    /// A kill first, then up to `batch` queued frames, then the end.
    fn next(&mut self, batch: usize) -> Option<Next> {
        if let Some(kill) = self.killed {
            return Some(Next::Killed(kill));
        }
        if self.frames.is_empty() {
            return self.sender_gone.then_some(Next::Ended);
        }
        let frames: VecDeque<Outbound> = if self.frames.len() <= batch {
            // The whole buffer goes with the batch: an idle queue keeps none.
            std::mem::take(&mut self.frames)
        } else {
            self.frames.drain(..batch).collect()
        };
        self.taken += frames.iter().map(Outbound::weight).sum::<usize>();
        Some(Next::Frames(frames))
    }

    /// Waits in `slot` for a kill.
    fn poll_killed(
        &mut self,
        cx: &Context<'_>,
        slot: fn(&mut Self) -> &mut Option<Waker>,
    ) -> Poll<Kill> {
        match self.killed {
            Some(kill) => Poll::Ready(kill),
            None => {
                register(slot(self), cx);
                Poll::Pending
            }
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding this lock; should it, the state is
        // still consistent (every change is one assignment or one push).
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Stores `cx`'s waker in `slot`, unless the same task is already there.
fn register(slot: &mut Option<Waker>, cx: &Context<'_>) {
    match slot {
        Some(waker) if waker.will_wake(cx.waker()) => {}
        _ => *slot = Some(cx.waker().clone()),
    }
}

/// What became of a pushed frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pushed {
    /// Queued for the writer.
    Queued,
    /// Not queued: the queue is full (the caller decides what that means).
    Full,
    /// Not queued: the writer is gone or the connection was killed.
    Closed,
}

/// The sending side of a connection's queue; dropping it lets the writer
/// finish what is queued and end.
#[derive(Debug)]
pub(crate) struct Sender(Arc<Shared>);

impl Sender {
    /// Queues a frame without waiting.
    pub fn push(&self, outbound: Outbound) -> Pushed {
        let waker = {
            let mut state = self.0.lock();
            if state.receiver_gone || state.killed.is_some() {
                return Pushed::Closed;
            }
            let bytes = outbound.weight();
            // One frame alone always fits: a reply bigger than the bound
            // (a `joined` of a large room) is still delivered.
            let over_bytes = state.bytes > 0 && state.bytes + bytes > self.0.max_bytes;
            if state.frames.len() >= self.0.capacity || over_bytes {
                return Pushed::Full;
            }
            state.bytes += bytes;
            state.frames.push_back(outbound);
            // Only the first frame after the writer emptied the queue needs
            // to wake it: it takes everything queued when it runs.
            state.writer.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
        Pushed::Queued
    }

    /// Trips the kill switch: the writer sends `kill`'s close frame next,
    /// dropping what is queued. Returns whether this call tripped it (the
    /// first reason wins).
    pub fn kill(&self, kill: Kill) -> bool {
        let wakers = {
            let mut state = self.0.lock();
            if state.killed.is_some() {
                return false;
            }
            state.killed = Some(kill);
            // Queued frames will never be sent: free them now.
            state.frames = VecDeque::new();
            [state.writer.take(), state.writer_kill.take(), state.reader.take()]
        };
        wakers.into_iter().flatten().for_each(Waker::wake);
        true
    }

    /// Wakes the connection's reader with [`Signal::Nudged`] (unless the
    /// connection was killed).
    pub fn nudge(&self) {
        let waker = {
            let mut state = self.0.lock();
            state.nudged = true;
            state.reader.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// Resolves when the kill switch trips, with its close code and reason,
    /// or when the connection is nudged. For the connection's reader (one
    /// task at a time).
    pub async fn signalled(&self) -> Signal {
        poll_fn(|cx| {
            let mut state = self.0.lock();
            if let Some(kill) = state.killed {
                return Poll::Ready(Signal::Killed(kill));
            }
            if std::mem::take(&mut state.nudged) {
                return Poll::Ready(Signal::Nudged);
            }
            register(&mut state.reader, cx);
            Poll::Pending
        })
        .await
    }
}

impl Drop for Sender {
    fn drop(&mut self) {
        let waker = {
            let mut state = self.0.lock();
            state.sender_gone = true;
            state.writer.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

/// What wakes a connection's reader besides its socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Signal {
    /// Close at once, with this close frame.
    Killed(Kill),
    /// The hub has something for the session (see [`Sender::nudge`]).
    Nudged,
}

/// What the writer does next.
#[derive(Debug)]
pub(crate) enum Next {
    /// Send these frames (at most the batch asked for), in order.
    Frames(VecDeque<Outbound>),
    /// Send this close frame at once; queued frames are dropped.
    Killed(Kill),
    /// The sender is gone and everything queued was taken: close normally.
    Ended,
}

/// The writer's side of a connection's queue; dropping it makes later
/// pushes fail (and frees what is queued).
#[derive(Debug)]
pub(crate) struct Receiver(Arc<Shared>);

impl Receiver {
    /// Waits until there is something to do: a kill first, then up to
    /// `batch` queued frames, then the end of the queue.
    pub fn next(&mut self, batch: usize) -> impl Future<Output = Next> + '_ {
        poll_fn(move |cx| {
            let mut state = self.0.lock();
            match state.next(batch) {
                Some(next) => Poll::Ready(next),
                None => {
                    // Under the lock pushes take, so none can slip in between.
                    register(&mut state.writer, cx);
                    Poll::Pending
                }
            }
        })
    }

    /// What [`Receiver::next`] would return now, if anything.
    pub fn try_next(&mut self, batch: usize) -> Option<Next> {
        self.0.lock().next(batch)
    }

    /// Gives back the bytes of the frames taken with [`Receiver::next`],
    /// once they are written (see [`Outbound::weight`]).
    pub fn release(&self) {
        let mut state = self.0.lock();
        state.bytes = state.bytes.saturating_sub(state.taken);
        state.taken = 0;
    }

    /// Resolves when the kill switch trips. For the writer, while it sends.
    pub fn killed(&self) -> impl Future<Output = Kill> + '_ {
        poll_fn(|cx| self.0.lock().poll_killed(cx, |state| &mut state.writer_kill))
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let mut state = self.0.lock();
        state.receiver_gone = true;
        state.frames = VecDeque::new();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn frame(text: &str) -> Outbound {
        Outbound::Frame(text.into())
    }

    fn texts(next: Option<Next>) -> Vec<String> {
        match next {
            Some(Next::Frames(frames)) => frames
                .into_iter()
                .map(|f| match f {
                    Outbound::Frame(text) => text.as_str().to_owned(),
                    Outbound::Ping => "ping".to_owned(),
                    Outbound::Pong(_) => "pong".to_owned(),
                    Outbound::Close(..) => "close".to_owned(),
                })
                .collect(),
            other => panic!("expected frames, got {other:?}"),
        }
    }

    #[test]
    fn bounded_and_taken_in_batches_in_order() {
        let (tx, mut rx) = queue(3, usize::MAX);
        assert!(rx.try_next(2).is_none(), "nothing queued yet");
        for text in ["a", "b", "c"] {
            assert_eq!(tx.push(frame(text)), Pushed::Queued);
        }
        assert_eq!(tx.push(frame("d")), Pushed::Full, "a full queue refuses, never waits");
        assert_eq!(texts(rx.try_next(2)), ["a", "b"]);
        assert_eq!(tx.push(frame("d")), Pushed::Queued, "taken frames free their slots");
        assert_eq!(texts(rx.try_next(2)), ["c", "d"]);
        assert!(rx.try_next(2).is_none());
    }

    #[test]
    fn bounded_in_bytes_until_the_writer_releases_what_it_wrote() {
        let (tx, mut rx) = queue(100, 3 * frame("0123456789").weight());
        assert_eq!(tx.push(frame(&"x".repeat(4096))), Pushed::Queued, "one frame alone fits");
        assert_eq!(tx.push(frame("a")), Pushed::Full, "but nothing after it");
        let Some(Next::Frames(taken)) = rx.try_next(8) else { panic!("expected frames") };
        assert_eq!(tx.push(frame("a")), Pushed::Full, "taken but not written: still held");
        drop(taken);
        rx.release();
        for text in ["0123456789", "0123456789", "0123456789"] {
            assert_eq!(tx.push(frame(text)), Pushed::Queued);
        }
        assert_eq!(tx.push(frame("0")), Pushed::Full, "the byte bound, not the frame bound");
    }

    #[test]
    fn a_kill_comes_before_queued_frames_and_the_first_reason_wins() {
        let (tx, mut rx) = queue(8, usize::MAX);
        tx.push(frame("a"));
        assert!(tx.kill((CloseCode::SLOW_CONSUMER, "slow")));
        assert!(!tx.kill((CloseCode::NORMAL, "later")), "only the first kill counts");
        assert!(matches!(rx.try_next(8), Some(Next::Killed((CloseCode::SLOW_CONSUMER, "slow")))));
        assert_eq!(tx.push(frame("b")), Pushed::Closed, "nothing is queued after a kill");
    }

    #[test]
    fn the_end_comes_after_every_queued_frame() {
        let (tx, mut rx) = queue(8, usize::MAX);
        tx.push(frame("a"));
        drop(tx);
        assert_eq!(texts(rx.try_next(8)), ["a"]);
        assert!(matches!(rx.try_next(8), Some(Next::Ended)));
    }

    #[test]
    fn pushes_fail_once_the_writer_is_gone() {
        let (tx, rx) = queue(8, usize::MAX);
        drop(rx);
        assert_eq!(tx.push(frame("a")), Pushed::Closed);
    }

    #[tokio::test(start_paused = true)]
    async fn waiters_wake_on_a_push_a_kill_and_the_end() {
        let (tx, mut rx) = queue(8, usize::MAX);
        let writer = tokio::spawn(async move {
            let first = texts(Some(rx.next(8).await));
            let second = rx.next(8).await;
            (first, second)
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        tx.push(frame("a"));
        tokio::time::sleep(Duration::from_millis(10)).await;
        let reader = async { tx.signalled().await };
        let (kill, ()) = tokio::join!(reader, async {
            tokio::time::sleep(Duration::from_millis(10)).await;
            tx.kill((CloseCode::SLOW_CONSUMER, "slow"));
        });
        assert_eq!(kill, Signal::Killed((CloseCode::SLOW_CONSUMER, "slow")));
        let (first, second) = writer.await.unwrap();
        assert_eq!(first, ["a"]);
        assert!(matches!(second, Next::Killed((CloseCode::SLOW_CONSUMER, _))));

        let (tx, mut rx) = queue(8, usize::MAX);
        let writer = tokio::spawn(async move { rx.next(8).await });
        tokio::time::sleep(Duration::from_millis(10)).await;
        drop(tx);
        assert!(matches!(writer.await.unwrap(), Next::Ended));
    }

    #[tokio::test]
    async fn a_nudge_wakes_the_reader_once_and_a_kill_wins() {
        let (tx, _rx) = queue(8, usize::MAX);
        tx.nudge();
        assert_eq!(tx.signalled().await, Signal::Nudged);
        let again = tokio::time::timeout(Duration::from_millis(20), tx.signalled()).await;
        assert!(again.is_err(), "a nudge is seen once");
        tx.nudge();
        tx.kill((CloseCode::DISCONNECTED, "gone"));
        assert_eq!(tx.signalled().await, Signal::Killed((CloseCode::DISCONNECTED, "gone")));
    }
}
