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
        Self::starting_at(rate, Instant::now())
    }

    /// A limit whose clock starts at `now` (tests drive the clock themselves).
    pub fn starting_at(rate: f64, now: Instant) -> Self {
        let capacity = rate * 0.2;
        Self {
            rate,
            capacity,
            tokens: capacity,
            last: now,
        }
    }

    /// Takes `amount` units and returns how long to wait before using them.
    pub fn take(&mut self, amount: f64) -> Duration {
        self.take_at(amount, Instant::now())
    }

    /// [`Self::take`] at the time `now`.
    pub fn take_at(&mut self, amount: f64, now: Instant) -> Duration {
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

    /// A sender that sleeps what the limiter asks holds the rate over a long run,
    /// whatever its batch size and however long each batch takes to send, and a
    /// pause earns at most a fifth of a second of burst. The clock is simulated, so
    /// the figures are exact on any machine.
    #[test]
    fn a_long_run_holds_the_rate_and_a_pause_earns_a_short_burst() {
        let start = Instant::now();
        for (rate, batch, send_time) in [
            (5_000.0, 1_000.0, Duration::from_millis(3)),
            (5_000.0, 8_192.0, Duration::ZERO),
            (250.0, 1.0, Duration::from_micros(100)),
            (2e6, 65_536.0, Duration::from_millis(20)),
        ] {
            let mut limiter = RateLimiter::starting_at(rate, start);
            let mut now = start;
            let mut sent = 0.0;
            while now.duration_since(start) < Duration::from_secs(100) {
                now += limiter.take_at(batch, now);
                now += send_time;
                sent += batch;
            }
            let achieved = sent / now.duration_since(start).as_secs_f64();
            assert!(
                (achieved - rate).abs() / rate < 0.01,
                "rate {rate}, batches of {batch}: {achieved}/s"
            );
        }
        let mut limiter = RateLimiter::starting_at(1000.0, start);
        let later = start + Duration::from_secs(3600);
        assert_eq!(
            limiter.take_at(200.0, later),
            Duration::ZERO,
            "saved credit"
        );
        let wait = limiter.take_at(100.0, later);
        assert!((wait.as_secs_f64() - 0.1).abs() < 1e-9, "no more: {wait:?}");
    }
}
