//! Rate limiters (POLICIES.md §9): Envoy's token bucket, GCRA (redis-cell) and Resilience4j's
//! AtomicRateLimiter (cycles with reservations), all exact in integer nanoseconds.

use crate::time::{SimDuration, SimTime};

/// Envoy TokenBucket: starts full; every `fill_interval`, `tokens_per_fill` tokens are added up
/// to `max_tokens`; a request takes one token or is rejected.
#[derive(Clone, Debug)]
pub struct TokenBucket {
    max_tokens: u64,
    tokens_per_fill: u64,
    fill_interval: SimDuration,
    tokens: u64,
    /// Fill ticks already credited (tick k happens at k · fill_interval).
    ticks: u64,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(max_tokens: u64, tokens_per_fill: u64, fill_interval: SimDuration) -> Self {
        TokenBucket {
            max_tokens,
            tokens_per_fill,
            fill_interval: SimDuration(fill_interval.0.max(1)),
            tokens: max_tokens,
            ticks: 0,
        }
    }

    /// Tokens available at `now`.
    pub fn available(&mut self, now: SimTime) -> u64 {
        let ticks = now.0 / self.fill_interval.0;
        if ticks > self.ticks {
            let add = (ticks - self.ticks).saturating_mul(self.tokens_per_fill);
            self.tokens = self.tokens.saturating_add(add).min(self.max_tokens);
            self.ticks = ticks;
        }
        self.tokens
    }

    /// Takes one token at `now`, or refuses.
    pub fn try_take(&mut self, now: SimTime) -> bool {
        if self.available(now) > 0 {
            self.tokens -= 1;
            true
        } else {
            false
        }
    }
}

/// The answer of a GCRA request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GcraResult {
    /// Whether the request was allowed.
    pub allowed: bool,
    /// Requests that could still be allowed at once.
    pub remaining: i64,
    /// When limited (and allowable at all): how long until it would be allowed.
    pub retry_after: Option<SimDuration>,
    /// How long until the limiter is back to full.
    pub reset_after: SimDuration,
}

/// GCRA: emission interval T = period / count; tolerance τ = T · (max_burst + 1).
#[derive(Clone, Debug)]
pub struct Gcra {
    t_ns: u64,
    tau_ns: u64,
    tat: Option<SimTime>,
}

impl Gcra {
    /// `count` requests per `period`, bursts of `max_burst` beyond the steady rate.
    pub fn new(count: u64, period: SimDuration, max_burst: u64) -> Self {
        let t_ns = period.0 / count.max(1);
        Gcra {
            t_ns,
            tau_ns: t_ns * (max_burst + 1),
            tat: None,
        }
    }

    /// A request of quantity `q` at `now` (q = 0 only peeks).
    pub fn request(&mut self, now: SimTime, q: u64) -> GcraResult {
        let tat = self.tat.unwrap_or(now).max(now).0 as i128;
        let t = now.0 as i128;
        let (tn, tau) = (self.t_ns as i128, self.tau_ns as i128);
        let increment = q as i128 * tn;
        let new_tat = tat + increment;
        let allow_at = new_tat - tau;
        let remaining = |reset_after: i128| {
            if tau - reset_after > -tn {
                (tau - reset_after) / tn
            } else {
                0
            }
        };
        if t < allow_at {
            let reset_after = tat - t;
            GcraResult {
                allowed: false,
                remaining: remaining(reset_after) as i64,
                retry_after: (increment <= tau).then(|| SimDuration((allow_at - t) as u64)),
                reset_after: SimDuration(reset_after as u64),
            }
        } else {
            if q > 0 {
                self.tat = Some(SimTime(new_tat as u64));
            }
            let reset_after = new_tat - t;
            GcraResult {
                allowed: true,
                remaining: remaining(reset_after) as i64,
                retry_after: None,
                reset_after: SimDuration(reset_after as u64),
            }
        }
    }
}

/// Resilience4j AtomicRateLimiter: `limit` permissions per cycle of `period` (cycles counted
/// from t = 0); a request may wait up to `timeout` for a later cycle, reserving its permission
/// (permissions go negative: the debt is repaid by later cycles).
#[derive(Clone, Debug)]
pub struct R4jLimiter {
    limit: i64,
    period_ns: u64,
    timeout: SimDuration,
    permissions: i64,
    cycle: u64,
}

impl R4jLimiter {
    /// limitForPeriod, limitRefreshPeriod, timeoutDuration.
    pub fn new(limit: u32, period: SimDuration, timeout: SimDuration) -> Self {
        R4jLimiter {
            limit: limit as i64,
            period_ns: period.0.max(1),
            timeout,
            permissions: limit as i64,
            cycle: 0,
        }
    }

    /// Asks for `k` permissions at `now`: `Some(wait)` when granted after `wait` (reserved
    /// now), `None` when refused (nothing reserved).
    pub fn acquire(&mut self, now: SimTime, k: u32) -> Option<SimDuration> {
        let k = k as i64;
        let cycle = now.0 / self.period_ns;
        if cycle > self.cycle {
            let elapsed = (cycle - self.cycle).min(i64::MAX as u64 / 2) as i64;
            self.permissions =
                (self.permissions + elapsed.saturating_mul(self.limit)).min(self.limit);
            self.cycle = cycle;
        }
        let wait = if self.permissions >= k {
            0
        } else {
            let to_next_cycle = (cycle + 1) * self.period_ns - now.0;
            let at_next_cycle = self.permissions + self.limit;
            let full_cycles = if k > at_next_cycle {
                (k - at_next_cycle + self.limit - 1) / self.limit.max(1)
            } else {
                0
            };
            full_cycles as u64 * self.period_ns + to_next_cycle
        };
        if wait > self.timeout.0 {
            return None;
        }
        self.permissions -= k;
        Some(SimDuration(wait))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(x: u64) -> SimTime {
        SimTime::ZERO.after(SimDuration::from_millis(x))
    }

    #[test]
    fn s9_1_b1_ten_per_second() {
        let mut b = TokenBucket::new(10, 10, SimDuration::from_secs(1));
        assert!((0..10).all(|_| b.try_take(ms(0))));
        assert!(!b.try_take(ms(0)));
        assert!((0..10).all(|_| b.try_take(ms(1000))));
        assert!(!b.try_take(ms(1000)));
    }

    #[test]
    fn s9_1_b2_one_per_100ms_burst_of_15() {
        let mut b = TokenBucket::new(10, 1, SimDuration::from_millis(100));
        let passed = (0..15).filter(|_| b.try_take(ms(0))).count();
        assert_eq!(passed, 10);
        assert_eq!(b.available(ms(250)), 2);
    }

    #[test]
    fn s9_3_b1_r4j_no_wait() {
        let mut l = R4jLimiter::new(1, SimDuration::from_millis(250), SimDuration::ZERO);
        assert_eq!(l.acquire(ms(250), 1), Some(SimDuration::ZERO));
        assert_eq!(l.acquire(ms(250), 1), None);
        assert_eq!(l.acquire(ms(500), 1), Some(SimDuration::ZERO));
    }

    #[test]
    fn s9_3_b2_r4j_reserves_a_later_cycle() {
        let mut l = R4jLimiter::new(
            1,
            SimDuration::from_millis(250),
            SimDuration::from_millis(250),
        );
        assert_eq!(l.acquire(ms(250), 1), Some(SimDuration::ZERO));
        assert_eq!(l.acquire(ms(250), 1), Some(SimDuration::from_millis(250)));
        assert_eq!(l.permissions, -1);
        // The debt is repaid by the next cycle: at 500 ms nothing is left for a newcomer.
        assert_eq!(l.acquire(ms(500), 1), Some(SimDuration::from_millis(250)));
        assert_eq!(
            l.acquire(ms(500), 1),
            None,
            "two cycles ahead is past the timeout"
        );
    }

    #[test]
    fn s9_2_b1_redis_cell_vector() {
        let s = |x: f64| SimTime((x * 1e9).round() as u64);
        let d = |x: f64| SimDuration((x * 1e9).round() as u64);
        let mut g = Gcra::new(1, SimDuration::from_secs(1), 4);
        let r = g.request(s(0.0), 6);
        assert_eq!(
            r,
            GcraResult {
                allowed: false,
                remaining: 5,
                retry_after: None,
                reset_after: d(0.0)
            }
        );
        for k in 0..5 {
            let r = g.request(s(0.0), 1);
            assert!(r.allowed);
            assert_eq!(r.remaining, 4 - k);
            assert_eq!(r.reset_after, d(k as f64 + 1.0));
        }
        let r = g.request(s(0.0), 1);
        assert!(!r.allowed);
        assert_eq!(r.retry_after, Some(d(1.0)));
        let expect = |g: &mut Gcra, at: f64, q: u64, allowed: bool, remaining: i64, reset: f64| {
            let r = g.request(s(at), q);
            assert_eq!(
                (r.allowed, r.remaining, r.reset_after),
                (allowed, remaining, d(reset)),
                "t={at} q={q}"
            );
            r
        };
        expect(&mut g, 3.0, 1, true, 2, 3.0);
        expect(&mut g, 3.1, 1, true, 1, 3.9);
        expect(&mut g, 4.0, 1, true, 1, 4.0);
        expect(&mut g, 8.0, 1, true, 4, 1.0);
        expect(&mut g, 9.5, 1, true, 4, 1.0);
        expect(&mut g, 9.5, 0, true, 4, 1.0);
        expect(&mut g, 9.5, 2, true, 2, 3.0);
        let r = expect(&mut g, 9.5, 5, false, 2, 3.0);
        assert_eq!(r.retry_after, Some(d(3.0)));
    }
}
