//! Sends in flight: a connection's `send`s are handed to the engine one
//! after another without waiting for each to be stored, so that a busy
//! sender's messages share commits, and they are answered in the order
//! they were sent. Any other frame (and any refusal) waits until the sends
//! before it are answered, so replies keep the order of the frames.

use std::collections::VecDeque;
use std::task::{Context, Poll, ready};

use roomcast_shared::frame::Ack;
use roomcast_shared::{Ref, ServerFrame};

use super::{Flow, Session};
use crate::engine::{Appended, Appending, Queued};

/// A connection's sends handed over and not answered yet, oldest first.
pub(super) type InFlight = VecDeque<Pending>;

/// Capacity an empty [`InFlight`] may keep: a connection that once sent a
/// burst does not hold its buffer while it idles.
const KEPT_CAPACITY: usize = 4;

/// One send handed over, until its ack is queued.
pub(super) struct Pending {
    reference: Option<Ref>,
    client_id: String,
    appending: Queued,
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending").field("client_id", &self.client_id).finish_non_exhaustive()
    }
}

impl Session {
    /// Whether sends wait for their answer.
    pub fn awaiting(&self) -> bool {
        !self.in_flight.is_empty()
    }

    /// Waits, at `--sends-in-flight`, until the oldest send in flight is
    /// answered: the client is read no faster than its sends are stored.
    pub(super) async fn make_room(&mut self) -> Flow {
        while self.in_flight.len() >= self.state.config.limits.sends_in_flight {
            if std::future::poll_fn(|cx| self.poll_answer(cx)).await == Flow::Stop {
                return Flow::Stop;
            }
        }
        Flow::Continue
    }

    /// Hands a send over. With nothing in flight, a send already done is
    /// answered at once (`Err` is its refusal); otherwise it is answered
    /// after the sends before it.
    pub(super) fn hand_over(
        &mut self,
        reference: Option<Ref>,
        client_id: String,
        appending: Appending,
    ) -> Result<(), super::FrameError> {
        let appending = match appending {
            Appending::Done(appended) if self.in_flight.is_empty() => {
                self.ack(reference, client_id, appended?);
                return Ok(());
            }
            Appending::Done(appended) => Box::pin(std::future::ready(appended)),
            Appending::Queued(appending) => appending,
        };
        self.in_flight.push_back(Pending { reference, client_id, appending });
        Ok(())
    }

    /// Answers the oldest send in flight once it is done (never ready
    /// with nothing in flight).
    pub fn poll_answer(&mut self, cx: &mut Context<'_>) -> Poll<Flow> {
        let Some(oldest) = self.in_flight.front_mut() else { return Poll::Pending };
        let appended = ready!(oldest.appending.as_mut().poll(cx));
        let Some(Pending { reference, client_id, .. }) = self.in_flight.pop_front() else {
            return Poll::Pending;
        };
        if self.in_flight.is_empty() && self.in_flight.capacity() > KEPT_CAPACITY {
            self.in_flight = InFlight::new();
        }
        Poll::Ready(match appended {
            Ok(appended) => {
                self.ack(reference, client_id, appended);
                Flow::Continue
            }
            Err(err) => self.fail(reference, err.into()),
        })
    }

    /// Answers every send in flight, in order; stops early if an answer
    /// closes the connection.
    pub async fn settle(&mut self) -> Flow {
        while self.awaiting() {
            if std::future::poll_fn(|cx| self.poll_answer(cx)).await == Flow::Stop {
                return Flow::Stop;
            }
        }
        Flow::Continue
    }

    fn ack(&self, reference: Option<Ref>, client_id: String, appended: Appended) {
        if appended.event.is_some() {
            self.state.metrics.messages.inc();
        }
        let ack = Ack { id: appended.id, offset: appended.offset, client_id: Some(client_id) };
        self.reply(reference, ServerFrame::Ack(ack));
    }
}
