//! Adaptive concurrency limits (POLICIES.md §13, Netflix concurrency-limits): AIMD (loss based),
//! Vegas and Gradient2 (delay based), enforced by a simple limiter that rejects at the limit.

use crate::rng::SimRng;
use crate::time::SimDuration;

/// A limit algorithm and its state.
#[derive(Clone, Debug)]
pub enum Algorithm {
    /// AIMDLimit: ×backoff on a drop or an RTT above `timeout`; +1 when at least half used.
    Aimd {
        /// backoffRatio (default 0.9).
        backoff: f64,
        /// A sample slower than this counts as a drop (default 5 s).
        timeout: SimDuration,
    },
    /// VegasLimit with the log10 root functions.
    Vegas {
        /// smoothing (default 1.0).
        smoothing: f64,
        /// rtt_noload, ns (0 = unset).
        rtt_noload: u64,
        /// Samples since the last probe.
        probe_count: u64,
        /// Jitter of the current probe period, in [0.5, 1).
        probe_jitter: f64,
    },
    /// Gradient2Limit.
    Gradient2 {
        /// smoothing (default 0.2).
        smoothing: f64,
        /// queueSize (default 4).
        queue_size: f64,
        /// rttTolerance (default 1.5).
        tolerance: f64,
        /// longWindow (default 600).
        long_window: u32,
        /// Long RTT average, ns, and samples seen.
        long_rtt: f64,
        /// Samples in the long average so far.
        samples: u32,
    },
}

/// A limit between `min` and `max` and the in-flight count it guards.
#[derive(Clone, Debug)]
pub struct Limiter {
    algo: Algorithm,
    limit: f64,
    min: f64,
    max: f64,
    inflight: u32,
    /// Requests rejected at the limit.
    pub rejected: u64,
}

/// A limit's defaults: (initial, min, max).
pub const AIMD_DEFAULTS: (f64, f64, f64) = (20.0, 20.0, 200.0);
/// Vegas: initial 20, max concurrency 1000.
pub const VEGAS_DEFAULTS: (f64, f64, f64) = (20.0, 1.0, 1000.0);
/// Gradient2: initial 20, min 20, max 200.
pub const GRADIENT2_DEFAULTS: (f64, f64, f64) = (20.0, 20.0, 200.0);

fn log10_root(x: f64) -> f64 {
    (x.log10().floor()).max(1.0)
}

impl Limiter {
    /// A limiter starting at `initial`, kept within [min, max].
    pub fn new(algo: Algorithm, initial: f64, min: f64, max: f64) -> Self {
        Limiter {
            algo,
            limit: initial,
            min,
            max,
            inflight: 0,
            rejected: 0,
        }
    }

    /// The current limit (whole requests).
    pub fn limit(&self) -> u32 {
        self.limit as u32
    }

    /// Requests admitted and not yet finished.
    pub fn inflight(&self) -> u32 {
        self.inflight
    }

    /// Admits one request, returning the in-flight count at its start (itself included), or
    /// `None` at the limit.
    pub fn try_acquire(&mut self) -> Option<u32> {
        if self.inflight >= self.limit() {
            self.rejected += 1;
            None
        } else {
            self.inflight += 1;
            Some(self.inflight)
        }
    }

    /// A request admitted with `inflight_at_start` ended after `rtt`; `dropped` when it timed
    /// out or was rejected downstream. `ignore` releases without a sample.
    pub fn release(
        &mut self,
        rtt: SimDuration,
        inflight_at_start: u32,
        dropped: bool,
        ignore: bool,
        rng: &mut SimRng,
    ) {
        self.inflight -= 1;
        if !ignore {
            self.on_sample(rtt, inflight_at_start, dropped, rng);
        }
    }

    /// Feeds one sample to the algorithm.
    pub fn on_sample(&mut self, rtt: SimDuration, inflight: u32, dropped: bool, rng: &mut SimRng) {
        let l = self.limit;
        let inflight = inflight as f64;
        let new = match &mut self.algo {
            Algorithm::Aimd { backoff, timeout } => {
                if dropped || rtt > *timeout {
                    (l * *backoff).floor()
                } else if inflight * 2.0 >= l {
                    l + 1.0
                } else {
                    l
                }
            }
            Algorithm::Vegas {
                smoothing,
                rtt_noload,
                probe_count,
                probe_jitter,
            } => {
                *probe_count += 1;
                if *probe_jitter == 0.0 {
                    *probe_jitter = 0.5 + 0.5 * rng.unit();
                }
                let rtt = rtt.0;
                if (*probe_count as f64) >= *probe_jitter * 30.0 * l {
                    *probe_count = 0;
                    *probe_jitter = 0.5 + 0.5 * rng.unit();
                    *rtt_noload = rtt;
                    return;
                }
                if *rtt_noload == 0 || rtt < *rtt_noload {
                    *rtt_noload = rtt;
                    return;
                }
                let f = log10_root(l);
                let (alpha, beta, threshold) = (3.0 * f, 6.0 * f, f);
                let queue = (l * (1.0 - *rtt_noload as f64 / rtt as f64)).ceil();
                let target = if dropped {
                    l - f
                } else if inflight * 2.0 < l {
                    return;
                } else if queue <= threshold {
                    l + beta
                } else if queue < alpha {
                    l + f
                } else if queue > beta {
                    l - f
                } else {
                    return;
                };
                let target = target.clamp(1.0, self.max);
                (1.0 - *smoothing) * l + *smoothing * target
            }
            Algorithm::Gradient2 {
                smoothing,
                queue_size,
                tolerance,
                long_window,
                long_rtt,
                samples,
            } => {
                let short = rtt.0 as f64;
                *samples += 1;
                if *samples <= 10 {
                    *long_rtt += (short - *long_rtt) / *samples as f64;
                } else {
                    let f = 2.0 / (*long_window as f64 + 1.0);
                    *long_rtt = *long_rtt * (1.0 - f) + short * f;
                }
                if *long_rtt / short > 2.0 {
                    *long_rtt *= 0.95;
                }
                if inflight < l / 2.0 {
                    return;
                }
                let gradient = (*tolerance * *long_rtt / short).clamp(0.5, 1.0);
                let new = l * gradient + *queue_size;
                l * (1.0 - *smoothing) + new * *smoothing
            }
        };
        self.limit = new.clamp(self.min, self.max);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(x: u64) -> SimDuration {
        SimDuration::from_millis(x)
    }
    fn aimd(limit: f64) -> Limiter {
        let (_, min, max) = AIMD_DEFAULTS;
        Limiter::new(
            Algorithm::Aimd {
                backoff: 0.9,
                timeout: SimDuration::from_secs(5),
            },
            limit,
            min,
            max,
        )
    }

    #[test]
    fn s13_b1_aimd_drop_from_100_gives_90() {
        let mut l = aimd(100.0);
        let mut r = SimRng::for_component(1, "cl");
        l.on_sample(ms(10), 50, true, &mut r);
        assert_eq!(l.limit(), 90);
    }

    #[test]
    fn s13_b2_aimd_clamped_back_to_min() {
        let mut l = aimd(20.0);
        let mut r = SimRng::for_component(1, "cl");
        l.on_sample(ms(10), 10, true, &mut r);
        assert_eq!(l.limit(), 20);
    }

    #[test]
    fn s13_b3_aimd_grows_only_when_half_used() {
        let mut r = SimRng::for_component(1, "cl");
        let mut l = aimd(20.0);
        l.on_sample(ms(10), 10, false, &mut r);
        assert_eq!(l.limit(), 21);
        let mut l = aimd(20.0);
        l.on_sample(ms(10), 9, false, &mut r);
        assert_eq!(l.limit(), 20);
    }

    fn vegas() -> Limiter {
        let (init, min, max) = VEGAS_DEFAULTS;
        Limiter::new(
            Algorithm::Vegas {
                smoothing: 1.0,
                rtt_noload: 0,
                probe_count: 0,
                // Pinned so the probe does not fire in these few samples.
                probe_jitter: 0.99,
            },
            init,
            min,
            max,
        )
    }

    #[test]
    fn s13_b4_vegas() {
        let mut r = SimRng::for_component(1, "cl");
        let mut l = vegas();
        l.on_sample(ms(10), 20, false, &mut r);
        assert_eq!(l.limit(), 20, "the first sample only sets rtt_noload");
        l.on_sample(ms(10), 20, false, &mut r);
        assert_eq!(l.limit(), 26);
        let mut l = vegas();
        l.on_sample(ms(10), 20, false, &mut r);
        l.on_sample(ms(20), 20, false, &mut r);
        assert_eq!(l.limit(), 19);
        let mut l = vegas();
        l.on_sample(ms(10), 20, false, &mut r);
        l.on_sample(ms(20), 5, false, &mut r);
        assert_eq!(l.limit(), 20);
    }

    fn gradient2(long: f64) -> Limiter {
        let (init, min, max) = GRADIENT2_DEFAULTS;
        Limiter::new(
            Algorithm::Gradient2 {
                smoothing: 0.2,
                queue_size: 4.0,
                tolerance: 1.5,
                long_window: 600,
                long_rtt: long,
                samples: 100,
            },
            init,
            min,
            max,
        )
    }

    #[test]
    fn s13_b5_gradient2() {
        let mut r = SimRng::for_component(1, "cl");
        let mut l = gradient2(10e6);
        l.on_sample(ms(10), 10, false, &mut r);
        assert!((l.limit - 20.8).abs() < 1e-9, "{}", l.limit);
        // short = 3 · long → gradient 0.5 → 14 → 18.8 → clamped to 20.
        let mut l = gradient2(10e6);
        l.on_sample(ms(30), 10, false, &mut r);
        assert_eq!(l.limit, 20.0);
    }

    #[test]
    fn limiter_rejects_at_the_limit() {
        let mut l = aimd(20.0);
        for _ in 0..20 {
            assert!(l.try_acquire().is_some());
        }
        assert_eq!(l.try_acquire(), None);
        assert_eq!(l.rejected, 1);
    }
}
