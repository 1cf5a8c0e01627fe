//! Reconnect delays: exponential backoff with full jitter.
//!
//! Full jitter (a uniformly random delay between zero and the exponential
//! ceiling) spreads out the reconnects of many clients that lost the same
//! server at the same moment, which a fixed schedule would synchronise.

/// The reconnect schedule.
#[derive(Debug, Clone, PartialEq)]
pub struct Backoff {
    /// Ceiling of the first delay, in milliseconds.
    pub min_delay_ms: u64,
    /// Largest ceiling, in milliseconds.
    pub max_delay_ms: u64,
    /// How much the ceiling grows per failed attempt.
    pub factor: f64,
    /// Consecutive failed attempts after which the client gives up; `None`
    /// retries forever.
    pub max_attempts: Option<u32>,
}

impl Default for Backoff {
    fn default() -> Self {
        Self { min_delay_ms: 500, max_delay_ms: 30_000, factor: 2.0, max_attempts: None }
    }
}

impl Backoff {
    /// The ceiling for the delay after `attempt` failed attempts (0 for the
    /// first retry): `min * factor^attempt`, at most `max`.
    pub fn ceiling(&self, attempt: u32) -> u64 {
        let max = self.max_delay_ms.max(self.min_delay_ms) as f64;
        // powi saturates to infinity for large attempts; min() then caps it.
        let grown = self.min_delay_ms as f64 * self.factor.max(1.0).powi(attempt as i32);
        grown.min(max) as u64
    }

    /// The delay before the retry after `attempt` failed attempts, given a
    /// uniformly random `unit` in `[0, 1)`.
    pub fn delay(&self, attempt: u32, unit: f64) -> u64 {
        (self.ceiling(attempt) as f64 * unit.clamp(0.0, 1.0)) as u64
    }

    /// Whether `failed` consecutive failures exhaust the attempts.
    pub fn exhausted(&self, failed: u32) -> bool {
        self.max_attempts.is_some_and(|max| failed >= max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    #[test]
    fn ceilings_grow_by_the_factor_up_to_the_maximum() {
        let b = Backoff { min_delay_ms: 100, max_delay_ms: 1_000, factor: 2.0, max_attempts: None };
        let ceilings: Vec<u64> = (0..6).map(|a| b.ceiling(a)).collect();
        assert_eq!(ceilings, [100, 200, 400, 800, 1_000, 1_000]);
        assert_eq!(b.ceiling(10_000), 1_000, "huge attempt counts must not overflow");
    }

    #[test]
    fn delays_stay_within_zero_and_the_ceiling() {
        let b = Backoff::default();
        let mut rng = Rng::new(7);
        for attempt in 0..40 {
            for _ in 0..200 {
                let d = b.delay(attempt, rng.unit());
                assert!(d <= b.ceiling(attempt), "attempt {attempt}: {d}");
                assert!(d <= b.max_delay_ms);
            }
        }
        assert_eq!(b.delay(3, 0.0), 0);
        assert_eq!(b.delay(3, 1.0), b.ceiling(3));
    }

    #[test]
    fn delays_are_spread_over_the_whole_range() {
        // Full jitter: both halves of the range occur, so clients desynchronise.
        let b = Backoff::default();
        let mut rng = Rng::new(42);
        let ceiling = b.ceiling(4);
        let delays: Vec<u64> = (0..500).map(|_| b.delay(4, rng.unit())).collect();
        assert!(delays.iter().any(|&d| d < ceiling / 4));
        assert!(delays.iter().any(|&d| d > ceiling * 3 / 4));
    }

    #[test]
    fn a_factor_below_one_never_shrinks_the_delay() {
        let b = Backoff { min_delay_ms: 300, max_delay_ms: 1_000, factor: 0.5, max_attempts: None };
        assert_eq!(b.ceiling(5), 300);
    }

    #[test]
    fn max_attempts_bounds_the_retries() {
        let b = Backoff { max_attempts: Some(3), ..Backoff::default() };
        assert!(!b.exhausted(2));
        assert!(b.exhausted(3));
        assert!(!Backoff::default().exhausted(u32::MAX));
    }
}
