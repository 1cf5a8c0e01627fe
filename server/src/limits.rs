//! Token buckets: how often a connection may send frames, messages and
//! joins, and how many refusals it may collect before it is closed (4008).

use std::time::Duration;

use tokio::time::Instant;

/// A rate: a sustained number of events per second and a burst above it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Events per second, sustained.
    pub per_sec: f64,
    /// Events allowed at once after a quiet spell.
    pub burst: u32,
}

impl Rate {
    /// `per_sec` sustained, `burst` at once.
    pub const fn new(per_sec: f64, burst: u32) -> Self {
        Self { per_sec, burst }
    }
}

/// A token bucket that refills continuously.
#[derive(Debug, Clone)]
pub(crate) struct Bucket {
    rate: Rate,
    tokens: f64,
    refilled_at: Instant,
}

impl Bucket {
    /// A full bucket.
    pub fn new(rate: Rate) -> Self {
        Self { rate, tokens: f64::from(rate.burst), refilled_at: Instant::now() }
    }

    /// Takes a token, or says how long until one is there.
    pub fn take(&mut self) -> Result<(), Duration> {
        let now = Instant::now();
        let elapsed = now.duration_since(self.refilled_at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate.per_sec).min(f64::from(self.rate.burst));
        self.refilled_at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else if self.rate.per_sec <= 0.0 {
            Err(Duration::MAX)
        } else {
            Err(Duration::from_secs_f64((1.0 - self.tokens) / self.rate.per_sec))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_burst_then_the_sustained_rate() {
        let mut bucket = Bucket::new(Rate::new(2.0, 3));
        for _ in 0..3 {
            assert!(bucket.take().is_ok());
        }
        let wait = bucket.take().unwrap_err();
        assert_eq!(wait, Duration::from_millis(500));
        tokio::time::advance(Duration::from_millis(500)).await;
        assert!(bucket.take().is_ok());
        assert!(bucket.take().is_err());
        // A long pause refills only up to the burst.
        tokio::time::advance(Duration::from_secs(60)).await;
        for _ in 0..3 {
            assert!(bucket.take().is_ok());
        }
        assert!(bucket.take().is_err());
    }
}
