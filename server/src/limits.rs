//! Token buckets: how often a connection may send frames, messages and
//! joins, and how many refusals it may collect before it is closed (4008);
//! and [`PerAddress`], buckets kept per client address in a bounded table
//! (failed API key attempts).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
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

/// A token bucket that refills continuously at the rate its owner passes
/// to each call. The rate is not kept in the bucket: every connection has
/// four buckets whose rates are all in the config, and an idle
/// connection's session pays for each byte kept (see `ws::serve`).
#[derive(Debug, Clone)]
pub(crate) struct Bucket {
    tokens: f64,
    refilled_at: Instant,
}

impl Bucket {
    /// A full bucket.
    pub fn new(rate: Rate) -> Self {
        Self { tokens: f64::from(rate.burst), refilled_at: Instant::now() }
    }

    /// Takes a token, or says how long until one is there.
    pub fn take(&mut self, rate: Rate) -> Result<(), Duration> {
        self.check(rate)?;
        self.tokens -= 1.0;
        Ok(())
    }

    /// Whether a token is there, without taking it; if not, how long until
    /// one is.
    pub fn check(&mut self, rate: Rate) -> Result<(), Duration> {
        let now = Instant::now();
        let elapsed = now.duration_since(self.refilled_at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate.per_sec).min(f64::from(rate.burst));
        self.refilled_at = now;
        if self.tokens >= 1.0 {
            Ok(())
        } else if rate.per_sec <= 0.0 {
            Err(Duration::MAX)
        } else {
            Err(Duration::from_secs_f64((1.0 - self.tokens) / rate.per_sec))
        }
    }

    /// Whether the bucket has refilled to its burst: it then behaves as a
    /// new one, and can be forgotten.
    fn is_full(&mut self, rate: Rate) -> bool {
        let _ = self.check(rate);
        self.tokens >= f64::from(rate.burst)
    }
}

/// A bucket per client address, for events that only misbehaving clients
/// cause (a wrong API key): an address that spent its budget is refused
/// until it refills.
///
/// The table holds at most `capacity` addresses, so that many source
/// addresses cannot make it grow: when it is full, addresses whose budget
/// has refilled are forgotten, and if none has, a new address is not
/// recorded (its failures are not limited until there is room). IPv6
/// addresses count by their /64, the block one host is usually given.
#[derive(Debug)]
pub(crate) struct PerAddress {
    rate: Rate,
    capacity: usize,
    table: Mutex<HashMap<IpAddr, Bucket>>,
}

impl PerAddress {
    pub fn new(rate: Rate, capacity: usize) -> Self {
        Self { rate, capacity, table: Mutex::new(HashMap::new()) }
    }

    /// Whether `ip` may try now; if not, how long until it may.
    pub fn check(&self, ip: IpAddr) -> Result<(), Duration> {
        let mut table = self.table.lock().unwrap_or_else(|e| e.into_inner());
        table.get_mut(&key(ip)).map_or(Ok(()), |bucket| bucket.check(self.rate))
    }

    /// Counts one failure from `ip`.
    pub fn failed(&self, ip: IpAddr) {
        let key = key(ip);
        let mut table = self.table.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(bucket) = table.get_mut(&key) {
            let _ = bucket.take(self.rate);
            return;
        }
        if table.len() >= self.capacity {
            table.retain(|_, bucket| !bucket.is_full(self.rate));
            if table.len() >= self.capacity {
                return;
            }
        }
        let mut bucket = Bucket::new(self.rate);
        let _ = bucket.take(self.rate);
        table.insert(key, bucket);
    }

    /// Addresses recorded now.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.table.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

/// What an address counts as: itself, or for IPv6 its /64.
fn key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(prefix.into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_burst_then_the_sustained_rate() {
        let rate = Rate::new(2.0, 3);
        let mut bucket = Bucket::new(rate);
        for _ in 0..3 {
            assert!(bucket.take(rate).is_ok());
        }
        let wait = bucket.take(rate).unwrap_err();
        assert_eq!(wait, Duration::from_millis(500));
        tokio::time::advance(Duration::from_millis(500)).await;
        assert!(bucket.take(rate).is_ok());
        assert!(bucket.take(rate).is_err());
        // A long pause refills only up to the burst.
        tokio::time::advance(Duration::from_secs(60)).await;
        for _ in 0..3 {
            assert!(bucket.take(rate).is_ok());
        }
        assert!(bucket.take(rate).is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn an_address_that_spent_its_budget_waits_and_others_do_not() {
        let failures = PerAddress::new(Rate::new(1.0, 2), 100);
        let bad: IpAddr = "203.0.113.9".parse().unwrap();
        let other: IpAddr = "203.0.113.10".parse().unwrap();
        failures.failed(bad);
        assert!(failures.check(bad).is_ok(), "one failure of a burst of two");
        failures.failed(bad);
        assert_eq!(failures.check(bad), Err(Duration::from_secs(1)));
        assert!(failures.check(other).is_ok());
        // One host's IPv6 addresses share a budget.
        for ip in ["2001:db8::1", "2001:db8::2"] {
            failures.failed(ip.parse().unwrap());
        }
        assert!(failures.check("2001:db8::ffff".parse().unwrap()).is_err());
        assert!(failures.check("2001:db8:0:1::1".parse().unwrap()).is_ok(), "another /64");
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(failures.check(bad).is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn the_table_stays_bounded_under_many_addresses() {
        let failures = PerAddress::new(Rate::new(1.0, 1), 100);
        let first: IpAddr = "198.51.100.1".parse().unwrap();
        failures.failed(first);
        for i in 0..100_000u32 {
            failures.failed(IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i)));
            assert!(failures.len() <= 100);
        }
        assert!(failures.check(first).is_err(), "a recorded address is not pushed out");
        // Once budgets refill, the table makes room again.
        tokio::time::advance(Duration::from_secs(2)).await;
        let late: IpAddr = "198.51.100.2".parse().unwrap();
        failures.failed(late);
        assert!(failures.check(late).is_err());
        assert!(failures.len() <= 100);
    }
}
