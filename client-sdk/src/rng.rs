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

    /// A fresh idempotency key for a `send`: 128 random bits, so that two
    /// tabs of one user never pick the same key.
    pub fn client_id(&mut self) -> String {
        format!("c-{:016x}{:016x}", self.next_u64(), self.next_u64())
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
            assert!(ids.insert(rng.client_id()));
        }
    }
}
