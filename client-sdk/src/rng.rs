//! A small seeded random generator (xorshift64*), so that jitter and
//! `client_id`s are deterministic in tests. The browser seeds it from
//! `Math.random` and the clock.

/// A xorshift64* generator.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed` (any value; zero is replaced, since xorshift
    /// would stay at zero forever).
    pub fn new(seed: u64) -> Self {
        Self(if seed == 0 { 0x9E37_79B9_7F4A_7C15 } else { seed })
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A uniform number in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A fresh idempotency key for a `send` made at `now` (Unix ms): the
    /// time in 12 hex digits, then 80 random bits, so that two tabs of one
    /// user never pick the same key. Keys that start with the time sort in
    /// the order they were made, which is what the server's store keeps
    /// cheapest to index (`migrations/*/0009_time_ordered_keys.sql`).
    pub fn client_id(&mut self, now: u64) -> String {
        let time = now & 0xFFFF_FFFF_FFFF;
        format!("c-{time:012x}{:016x}{:04x}", self.next_u64(), self.next_u64() as u16)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_are_in_range_and_ids_unique() {
        let mut rng = Rng::new(0);
        let mut ids = std::collections::HashSet::new();
        for _ in 0..1000 {
            let u = rng.unit();
            assert!((0.0..1.0).contains(&u));
            // All in the same millisecond: the random part tells them apart.
            assert!(ids.insert(rng.client_id(1_700_000_000_000)));
        }
    }

    #[test]
    fn client_ids_sort_in_the_order_they_were_made() {
        let mut rng = Rng::new(7);
        let times = [0, 1, 255, 1_700_000_000_000, 1_700_000_000_001, 0xFFFF_FFFF_FFFF];
        let ids: Vec<String> = times.iter().map(|&now| rng.client_id(now)).collect();
        assert!(ids.windows(2).all(|pair| pair[0] < pair[1]), "{ids:?}");
        assert!(ids.iter().all(|id| id.len() == 34 && id.starts_with("c-")), "{ids:?}");
        assert!(ids[3].starts_with("c-018bcfe56800"), "{}", ids[3]);
    }
}
