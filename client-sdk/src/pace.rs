//! Pacing: the client's own copy of the server's budgets, so that sends,
//! edits and deletes (a whole outbox resent after a reconnect in particular)
//! and joins (every room re-joined after a reconnect) go out within the rate
//! limits the server announced in `ready` instead of being refused with
//! `rate_limited`.
//!
//! The server's budget for a new connection is a full token bucket
//! (`burst` at once, refilled at `per_sec`). The client uses only half of
//! that burst: the other half absorbs the network bunching frames together
//! on their way (frames sent 100 ms apart may arrive 10 ms apart), so a
//! paced client is never refused by its connection's own bucket. When it is
//! refused anyway (the user's bucket is shared with their other tabs), it
//! waits as told and halves its rate, then regains the rate with every
//! accepted request.

use roomcast_shared::frame::{Limits, RateLimit};

/// The message budget the server uses when it announces none (its
/// documented defaults).
pub const DEFAULT_LIMIT: RateLimit = RateLimit { per_sec: 10.0, burst: 20 };
/// The join budget the server uses when it announces none.
pub const DEFAULT_JOIN_LIMIT: RateLimit = RateLimit { per_sec: 5.0, burst: 10 };
/// The frame budget the server uses when it announces none.
pub const DEFAULT_FRAME_LIMIT: RateLimit = RateLimit { per_sec: 50.0, burst: 100 };

/// Slowest pace after refusals, as a share of the announced rate.
const MIN_SHARE: f64 = 1.0 / 8.0;
/// Share of the announced rate regained with each accepted request.
const RECOVERY_SHARE: f64 = 1.0 / 10.0;

/// A token bucket on the host's clock (milliseconds).
#[derive(Debug, Clone, PartialEq)]
pub struct Pace {
    /// The announced rate, per millisecond.
    full_rate: f64,
    /// The rate in use now (lower after refusals), per millisecond.
    rate: f64,
    /// Tokens the bucket holds when full.
    capacity: f64,
    tokens: f64,
    /// When `tokens` was last brought up to date.
    at: u64,
    /// Nothing goes out before this (the server's `retry_after_ms`).
    blocked_until: u64,
}

impl Pace {
    /// The budget for the messages of a connection whose `ready` announced
    /// `limits` (or none): the tighter of the connection's and the user's
    /// bucket, starting full.
    pub fn messages(limits: Option<&Limits>, now: u64) -> Self {
        let limit = match limits {
            Some(l) => RateLimit {
                per_sec: l.messages.per_sec.min(l.user_messages.per_sec),
                burst: l.messages.burst.min(l.user_messages.burst),
            },
            None => DEFAULT_LIMIT,
        };
        Self::for_limit(limit, now)
    }

    /// The budget for the joins of a connection whose `ready` announced
    /// `limits` (or none), starting full.
    pub fn joins(limits: Option<&Limits>, now: u64) -> Self {
        Self::for_limit(limits.map_or(DEFAULT_JOIN_LIMIT, |l| l.joins), now)
    }

    /// The budget for all the frames of a connection whose `ready`
    /// announced `limits` (or none), starting full: paced joins and outbox
    /// entries take from it as well as from their own, so that together
    /// they stay within it too.
    pub fn frames(limits: Option<&Limits>, now: u64) -> Self {
        Self::for_limit(limits.map_or(DEFAULT_FRAME_LIMIT, |l| l.frames), now)
    }

    /// A full bucket using half of `limit`'s burst (at least one token).
    pub fn for_limit(limit: RateLimit, now: u64) -> Self {
        let per_ms = if limit.per_sec.is_finite() { limit.per_sec.max(0.0) / 1000.0 } else { 0.0 };
        let capacity = f64::from((limit.burst / 2).max(1));
        Self {
            full_rate: per_ms,
            rate: per_ms,
            capacity,
            tokens: capacity,
            at: now,
            blocked_until: now,
        }
    }

    fn refill(&mut self, now: u64) {
        let elapsed = now.saturating_sub(self.at) as f64;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.capacity);
        self.at = self.at.max(now);
    }

    /// Takes a token for one request, or says when one is there.
    pub fn take(&mut self, now: u64) -> Result<(), u64> {
        self.check(now)?;
        self.tokens -= 1.0;
        Ok(())
    }

    /// Takes a token from this bucket and one from `other` (a request that
    /// counts against both), or none and says when both have one.
    pub fn take_with(&mut self, other: &mut Pace, now: u64) -> Result<(), u64> {
        match (self.check(now), other.check(now)) {
            (Ok(()), Ok(())) => {
                self.tokens -= 1.0;
                other.tokens -= 1.0;
                Ok(())
            }
            (mine, theirs) => Err(mine.err().max(theirs.err()).unwrap_or(now)),
        }
    }

    /// Whether a token is there, without taking it; if not, when one is.
    fn check(&mut self, now: u64) -> Result<(), u64> {
        if now < self.blocked_until {
            return Err(self.blocked_until);
        }
        self.refill(now);
        if self.tokens >= 1.0 {
            return Ok(());
        }
        if self.rate <= 0.0 {
            // A server that allows no messages: try once a minute, and let
            // its refusals tell the application.
            return Err(now + 60_000);
        }
        let wait = ((1.0 - self.tokens) / self.rate).ceil() as u64;
        Err(now + wait.max(1))
    }

    /// The server refused a request for rate: nothing goes out for
    /// `retry_after_ms`, then one request (the server said a token would be
    /// there by then), then the bucket refills at half the pace.
    pub fn refused(&mut self, now: u64, retry_after_ms: u64) {
        self.blocked_until = self.blocked_until.max(now + retry_after_ms);
        self.tokens = 1.0;
        self.at = self.blocked_until;
        self.rate = (self.rate / 2.0).max(self.full_rate * MIN_SHARE);
    }

    /// The server accepted a request: regain some of the announced rate.
    pub fn accepted(&mut self, now: u64) {
        self.refill(now);
        self.rate = (self.rate + self.full_rate * RECOVERY_SHARE).min(self.full_rate);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The server's bucket, as `server/src/limits.rs` keeps it, fed with the
    /// arrival times of the client's frames.
    struct ServerBucket {
        limit: RateLimit,
        tokens: f64,
        at: u64,
    }

    impl ServerBucket {
        fn new(limit: RateLimit, now: u64) -> Self {
            Self { limit, tokens: f64::from(limit.burst), at: now }
        }

        fn take(&mut self, now: u64) -> bool {
            let elapsed = (now - self.at) as f64 / 1000.0;
            self.tokens =
                (self.tokens + elapsed * self.limit.per_sec).min(f64::from(self.limit.burst));
            self.at = now;
            if self.tokens >= 1.0 {
                self.tokens -= 1.0;
                true
            } else {
                false
            }
        }
    }

    /// Sends `count` requests as fast as the pace allows from `start`,
    /// returning the send times.
    fn drain(pace: &mut Pace, start: u64, count: usize) -> Vec<u64> {
        let mut now = start;
        let mut times = Vec::new();
        while times.len() < count {
            match pace.take(now) {
                Ok(()) => times.push(now),
                Err(at) => {
                    assert!(at > now, "a wait moves time forward");
                    now = at;
                }
            }
        }
        times
    }

    #[test]
    fn a_resend_of_a_full_outbox_stays_within_the_servers_bucket() {
        let limit = DEFAULT_LIMIT;
        let mut pace = Pace::for_limit(limit, 0);
        let times = drain(&mut pace, 0, 100);
        assert_eq!(&times[..10], &[0; 10], "half the burst goes out at once");
        assert!(times[10] >= 100, "then the announced rate");
        // Every frame reaches the server at once, or bunched: each frame is
        // delayed by up to 900 ms, the ones after it at least as much.
        for delay in [0_u64, 300, 900] {
            let mut server = ServerBucket::new(limit, 0);
            let mut last = 0;
            for (i, t) in times.iter().enumerate() {
                let arrival = if i % 10 == 3 { t + delay } else { *t }.max(last);
                last = arrival;
                assert!(server.take(arrival), "frame {i} refused (delay {delay})");
            }
        }
    }

    #[test]
    fn the_tighter_of_the_connections_and_the_users_bucket_counts() {
        let limits = Limits {
            messages: RateLimit { per_sec: 10.0, burst: 20 },
            user_messages: RateLimit { per_sec: 4.0, burst: 8 },
            frames: RateLimit { per_sec: 50.0, burst: 100 },
            joins: RateLimit { per_sec: 5.0, burst: 10 },
        };
        let mut pace = Pace::messages(Some(&limits), 0);
        let times = drain(&mut pace, 0, 8);
        assert_eq!(&times[..4], &[0; 4]);
        assert_eq!(times[4], 250, "four per second");
    }

    #[test]
    fn a_refusal_waits_as_told_and_slows_down_until_requests_pass_again() {
        let mut pace = Pace::for_limit(DEFAULT_LIMIT, 0);
        drain(&mut pace, 0, 10);
        pace.refused(5, 700);
        assert_eq!(pace.take(600), Err(705), "nothing before retry_after_ms");
        assert_eq!(pace.take(705), Ok(()), "then the one request the server expects");
        // Half the rate: a token every 200 ms.
        assert_eq!(pace.take(705), Err(905));
        assert_eq!(pace.take(905), Ok(()));
        for _ in 0..10 {
            pace.accepted(905);
        }
        assert_eq!(pace.take(905), Err(1005), "the announced rate again");
    }

    #[test]
    fn a_request_counted_by_two_budgets_waits_for_both() {
        let mut joins = Pace::for_limit(DEFAULT_JOIN_LIMIT, 0);
        let mut frames = Pace::for_limit(RateLimit { per_sec: 2.0, burst: 6 }, 0);
        for _ in 0..3 {
            assert_eq!(joins.take_with(&mut frames, 0), Ok(()));
        }
        assert_eq!(joins.take_with(&mut frames, 0), Err(500), "the frames wait longest");
        assert_eq!(joins.take(0), Ok(()), "and a refused pair took nothing");
        assert_eq!(joins.take_with(&mut frames, 500), Ok(()));
    }

    #[test]
    fn a_server_that_announces_nonsense_does_not_stall_the_client() {
        let zero = RateLimit { per_sec: 0.0, burst: 0 };
        let mut pace = Pace::for_limit(zero, 0);
        assert_eq!(pace.take(0), Ok(()), "one token, so the server's refusal is seen");
        assert_eq!(pace.take(0), Err(60_000));
        let nan = RateLimit { per_sec: f64::NAN, burst: 4 };
        let mut pace = Pace::for_limit(nan, 0);
        assert_eq!(drain(&mut pace, 0, 2), [0, 0]);
    }
}
