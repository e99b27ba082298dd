//! Load shedding (POLICIES.md §14): folly's CoDel for request queues, Facebook's controlled
//! delay with adaptive LIFO, and client-side adaptive throttling (Envoy admission control,
//! which generalises the Google SRE formula).

use crate::time::{SimDuration, SimTime};
use std::collections::VecDeque;

/// folly::Codel: feed each dequeued request's queueing delay; it says whether to drop it.
#[derive(Clone, Debug)]
pub struct Codel {
    interval: SimDuration,
    target: SimDuration,
    interval_end: SimTime,
    reset_due: bool,
    min_delay: SimDuration,
    overloaded: bool,
}

impl Codel {
    /// folly defaults: interval 100 ms, target 5 ms. As folly, the interval clock starts at
    /// construction (`now`): the first interval has already ended when the second request
    /// comes, and is judged by the first request's delay.
    pub fn new(target: SimDuration, interval: SimDuration, now: SimTime) -> Self {
        Codel {
            interval,
            target,
            interval_end: now,
            // As folly: the very first request only sets the minimum.
            reset_due: true,
            min_delay: SimDuration::ZERO,
            overloaded: false,
        }
    }

    /// Whether a request that waited `delay` and is dequeued at `now` should be dropped.
    pub fn should_drop(&mut self, delay: SimDuration, now: SimTime) -> bool {
        if now > self.interval_end && !self.reset_due {
            // An interval ended: judge it by the smallest delay seen, and start the next.
            // (folly skips this while a reset is pending: the interval's minimum is not
            // known before a request has set it.)
            self.reset_due = true;
            self.overloaded = self.min_delay > self.target;
            self.interval_end = now.after(self.interval);
        }
        if self.reset_due {
            // The first request of an interval only resets the minimum; never dropped.
            self.reset_due = false;
            self.min_delay = delay;
            return false;
        }
        if delay < self.min_delay {
            self.min_delay = delay;
        }
        self.overloaded && delay.0 > 2 * self.target.0
    }

    /// folly's load estimate: min(100, 100 · minDelay / (2 · target)).
    pub fn load(&self) -> u32 {
        ((100 * self.min_delay.0) / (2 * self.target.0).max(1)).min(100) as u32
    }
}

/// Facebook's controlled delay with adaptive LIFO: while a standing queue exists (the queue
/// has not been empty for `standing_after`), serve newest first and time queued requests out
/// after `short_timeout`; otherwise FIFO with `long_timeout`.
#[derive(Clone, Debug)]
pub struct AdaptiveLifo {
    /// M: queue timeout under a standing queue (article: 5 ms).
    pub short_timeout: SimDuration,
    /// N: queue timeout otherwise, and how long the queue must stay non-empty to be standing
    /// (article: 100 ms).
    pub long_timeout: SimDuration,
    last_empty: SimTime,
}

impl AdaptiveLifo {
    /// With the article's M and N.
    pub fn new(short_timeout: SimDuration, long_timeout: SimDuration) -> Self {
        AdaptiveLifo {
            short_timeout,
            long_timeout,
            last_empty: SimTime::ZERO,
        }
    }

    /// Tells it the queue is empty at `now`.
    pub fn on_empty(&mut self, now: SimTime) {
        self.last_empty = now;
    }

    /// Whether a standing queue exists at `now` (the queue is not empty now).
    pub fn standing(&self, now: SimTime) -> bool {
        now.since(self.last_empty) >= self.long_timeout
    }

    /// The next request to serve from `queue` (entries: (id, enqueued)), dropping expired ones
    /// into `expired`.
    pub fn pop(
        &mut self,
        now: SimTime,
        queue: &mut VecDeque<(u32, SimTime)>,
        expired: &mut Vec<u32>,
    ) -> Option<u32> {
        let standing = self.standing(now);
        let timeout = if standing {
            self.short_timeout
        } else {
            self.long_timeout
        };
        let next = loop {
            let item = if standing {
                queue.pop_back()
            } else {
                queue.pop_front()
            };
            match item {
                None => break None,
                Some((id, at)) if now.since(at) > timeout => expired.push(id),
                Some((id, _)) => break Some(id),
            }
        };
        if queue.is_empty() {
            self.last_empty = now;
        }
        next
    }
}

/// Client-side adaptive throttling (Envoy admission control / Google SRE): over a sliding
/// window, reject locally with P = ((total − successes/threshold) / (total + 1))^(1/aggression),
/// capped at `max_p`.
#[derive(Clone, Debug)]
pub struct Admission {
    /// Minimum success rate that causes no rejection (SRE: 1/K; K = 2 → 0.5).
    pub threshold: f64,
    /// 1 = linear.
    pub aggression: f64,
    /// Cap of the rejection probability.
    pub max_p: f64,
    /// No rejection below this many requests per second in the window.
    pub rps_threshold: f64,
    window: SimDuration,
    /// (slice index, requests, successes), ten slices per window, oldest first.
    slices: VecDeque<(u64, u64, u64)>,
}

impl Admission {
    /// SRE's client-side throttling: K = 2 over a 2-minute window.
    pub fn sre(k: f64, window: SimDuration) -> Self {
        Admission {
            threshold: 1.0 / k,
            aggression: 1.0,
            max_p: 1.0,
            rps_threshold: 0.0,
            window,
            slices: VecDeque::new(),
        }
    }

    /// With every Envoy parameter.
    pub fn new(
        threshold: f64,
        aggression: f64,
        max_p: f64,
        rps_threshold: f64,
        window: SimDuration,
    ) -> Self {
        Admission {
            threshold,
            aggression,
            max_p,
            rps_threshold,
            window,
            slices: VecDeque::new(),
        }
    }

    fn slice(&mut self, now: SimTime) -> &mut (u64, u64, u64) {
        let width = (self.window.0 / 10).max(1);
        let k = now.0 / width;
        while let Some(&(s, _, _)) = self.slices.front() {
            if s + 10 <= k {
                self.slices.pop_front();
            } else {
                break;
            }
        }
        if self.slices.back().map(|s| s.0) != Some(k) {
            self.slices.push_back((k, 0, 0));
        }
        self.slices.back_mut().expect("just pushed")
    }

    /// (requests, successes) in the window.
    pub fn totals(&mut self, now: SimTime) -> (u64, u64) {
        self.slice(now);
        self.slices
            .iter()
            .fold((0, 0), |(r, s), x| (r + x.1, s + x.2))
    }

    /// The rejection probability at `now`.
    pub fn p_reject(&mut self, now: SimTime) -> f64 {
        let (total, ok) = self.totals(now);
        if (total as f64) < self.rps_threshold * self.window.as_secs_f64() {
            return 0.0;
        }
        let s = ok as f64 / self.threshold;
        let p = ((total as f64 - s) / (total as f64 + 1.0)).max(0.0);
        p.powf(1.0 / self.aggression).min(self.max_p)
    }

    /// Records a request's outcome (SRE counts every request the client wanted to send,
    /// rejected locally or not; successes are what the backend accepted).
    pub fn record(&mut self, now: SimTime, success: bool) {
        self.on_request(now);
        if success {
            self.on_accept(now);
        }
    }

    /// Counts a request the client wanted to send (whether or not it is then rejected locally).
    pub fn on_request(&mut self, now: SimTime) {
        self.slice(now).1 += 1;
    }

    /// Counts a request the backend accepted (answered successfully).
    pub fn on_accept(&mut self, now: SimTime) {
        self.slice(now).2 += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(x: u64) -> SimTime {
        SimTime::ZERO.after(SimDuration::from_millis(x))
    }
    fn d(x: u64) -> SimDuration {
        SimDuration::from_millis(x)
    }

    /// folly's own `CodelTest.Basic`, its sleeps as virtual time (target 5 ms, interval
    /// 100 ms, constructed at 0).
    #[test]
    fn s14_1_b1_folly_codel_test_basic() {
        let mut c = Codel::new(d(5), d(100), ms(0));
        // This interval is overloaded (the first request only sets the minimum).
        assert!(!c.should_drop(d(100), ms(110)));
        // At least two requests must happen in an interval before they will fail.
        assert!(!c.should_drop(d(50), ms(200)));
        assert!(c.should_drop(d(50), ms(200)));
        // Previous interval is overloaded, but 2 ms isn't enough to fail.
        assert!(!c.should_drop(d(2), ms(310)));
        // 20 ms > target * 2.
        assert!(c.should_drop(d(20), ms(400)));
    }

    /// The interval is judged only once a request has set its minimum: a pending reset
    /// postpones the judgement (folly), so the 6 ms standing delay of the first interval
    /// makes the next one overloaded and the 12 ms request is dropped.
    #[test]
    fn s14_1_b1_codel_judges_an_interval_only_after_its_minimum_was_set() {
        let mut c = Codel::new(d(5), d(100), ms(0));
        assert!(!c.should_drop(d(6), ms(10))); // sets the minimum
        assert!(!c.should_drop(d(6), ms(20))); // interval [0, 20] judged overloaded; resets
        for t in [50, 90, 101] {
            assert!(!c.should_drop(d(6), ms(t)), "6 ms is under 2 x target");
        }
        assert!(c.should_drop(d(12), ms(110)));
        assert!(!c.should_drop(d(8), ms(119)));
        // At 150 ms the interval [20, 120] ends with minimum 6 ms: still overloaded; the
        // 3 ms request resets the minimum, so the interval to 250 ms is judged by it.
        assert!(!c.should_drop(d(3), ms(150)));
        assert!(c.should_drop(d(50), ms(202)));
        assert!(!c.should_drop(d(3), ms(251))); // judged: 3 ms, not overloaded; resets
        assert!(!c.should_drop(d(50), ms(260)));
        assert!(c.load() <= 100);
    }

    #[test]
    fn s14_2_adaptive_lifo_serves_newest_under_a_standing_queue() {
        let mut a = AdaptiveLifo::new(d(5), d(100));
        let mut q: VecDeque<(u32, SimTime)> = VecDeque::new();
        let mut expired = Vec::new();
        // No standing queue: FIFO.
        q.extend([(1, ms(0)), (2, ms(1))]);
        assert_eq!(a.pop(ms(2), &mut q, &mut expired), Some(1));
        // The queue stays non-empty to 150 ms: standing → LIFO, and the 5 ms timeout drops the old.
        q.extend([(3, ms(140)), (4, ms(148))]);
        assert_eq!(a.pop(ms(150), &mut q, &mut expired), Some(4));
        assert_eq!(a.pop(ms(150), &mut q, &mut expired), None);
        assert_eq!(expired, vec![3, 2]);
    }

    #[test]
    fn s14_3_b1_admission_control_probability() {
        let mut a = Admission::new(0.95, 1.0, 1.0, 0.0, SimDuration::from_secs(30));
        for k in 0..100 {
            a.record(ms(0), k < 95);
        }
        assert_eq!(a.p_reject(ms(0)), 0.0);
        let mut a = Admission::new(0.95, 1.0, 1.0, 0.0, SimDuration::from_secs(30));
        for k in 0..100 {
            a.record(ms(0), k < 50);
        }
        let p = a.p_reject(ms(0));
        assert!((p - (100.0 - 50.0 / 0.95) / 101.0).abs() < 1e-12, "{p}");
        assert!((p - 0.469).abs() < 0.001);
    }

    #[test]
    fn sre_formula_with_k_2_and_the_window_forgets() {
        let mut a = Admission::sre(2.0, SimDuration::from_secs(120));
        for k in 0..1000 {
            a.record(ms(k), k % 4 == 0);
        }
        // requests 1000, accepts 250: (1000 − 500) / 1001.
        assert!((a.p_reject(ms(1000)) - 500.0 / 1001.0).abs() < 1e-12);
        assert_eq!(a.p_reject(ms(200_000)), 0.0);
    }
}
