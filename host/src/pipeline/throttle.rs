//! Rate limits: a token bucket per limit (rows, bytes). The worker asks before it
//! produces a batch and sleeps off any debt first, so the rate holds on average
//! even though batches arrive whole; the wait is backpressure like a full producer
//! queue, so the source slows down with it.

use std::time::{Duration, Instant};

/// One limit, in units per second.
#[derive(Debug, Clone)]
pub struct RateLimiter {
    rate: f64,
    /// Most credit saved up while idle: a fifth of a second's worth, so a burst
    /// after a pause stays short.
    capacity: f64,
    tokens: f64,
    last: Instant,
}

impl RateLimiter {
    /// A limit of `rate` units per second (positive).
    pub fn new(rate: f64) -> Self {
        let capacity = rate * 0.2;
        Self {
            rate,
            capacity,
            tokens: capacity,
            last: Instant::now(),
        }
    }

    /// Takes `amount` units and returns how long to wait before using them.
    pub fn take(&mut self, amount: f64) -> Duration {
        let now = Instant::now();
        let earned = now.duration_since(self.last).as_secs_f64() * self.rate;
        self.last = now;
        self.tokens = (self.tokens + earned).min(self.capacity) - amount;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / self.rate)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debt_is_paid_in_time() {
        let mut limiter = RateLimiter::new(1000.0);
        // 200 units of saved credit, then 5000 units: 4.8 s of debt.
        let wait = limiter.take(5000.0);
        assert!((wait.as_secs_f64() - 4.8).abs() < 0.01, "{wait:?}");
        assert_eq!(RateLimiter::new(1000.0).take(100.0), Duration::ZERO);
    }
}
