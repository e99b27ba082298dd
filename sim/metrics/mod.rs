//! Counters, HDR latency histograms and time-series rows; memory is fixed whatever the simulated duration.

mod loglinear;

pub use loglinear::LogLinear;

use crate::time::{SimTime, NS_PER_MS};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;

/// Largest latency a histogram tracks exactly (1 hour); longer ones are clamped to it.
pub const LATENCY_MAX_NS: u64 = 3_600_000_000_000;
/// Smallest latency resolved (1 µs): coarser at the bottom keeps the histogram
/// small and cache-resident; means and maxima stay exact (kept beside it).
pub const LATENCY_LOW_NS: u64 = 1_000;

/// A latency recorder: an HDR histogram (for percentiles) plus an exact sum (for the mean).
#[derive(Clone, Debug)]
pub struct Latency {
    /// Allocated at the first value and grown to the largest value seen (HDR's
    /// auto-resize: the same buckets as a histogram made for the full range, so the same
    /// percentiles), so that an idle service costs nothing and a busy one only the octaves
    /// it uses. A histogram made for the full hour at 3 digits is 196 KB; at 2 ms to
    /// 200 ms, 40 KB.
    hist: LogLinear,
    sum_ns: u128,
    count: u64,
    min_ns: u64,
    max_ns: u64,
}

/// Latency summary in milliseconds, as written to `summary.json`.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct LatencyMs {
    /// Exact minimum.
    pub min: f64,
    /// Exact mean.
    pub mean: f64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Exact maximum.
    pub max: f64,
}

fn ms(ns: u64) -> f64 {
    ns as f64 / NS_PER_MS as f64
}

impl Latency {
    /// A recorder with `sigfig` significant decimal digits (3 for summaries, 2 for per-bucket series).
    pub fn new(sigfig: u8) -> Self {
        Latency {
            hist: LogLinear::new(LATENCY_LOW_NS, sigfig),
            sum_ns: 0,
            count: 0,
            min_ns: u64::MAX,
            max_ns: 0,
        }
    }

    /// Records one value in nanoseconds.
    #[inline]
    pub fn record(&mut self, ns: u64) {
        self.hist.record(ns.min(LATENCY_MAX_NS));
        self.sum_ns += ns as u128;
        self.count += 1;
        self.min_ns = self.min_ns.min(ns);
        self.max_ns = self.max_ns.max(ns);
    }

    /// Values recorded.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Exact mean in nanoseconds (0 when empty).
    pub fn mean_ns(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.sum_ns as f64 / self.count as f64
        }
    }

    /// A percentile (0–100) in nanoseconds (0 when empty), within the exact range recorded:
    /// the histogram answers with the top of a bucket, which can lie above the largest
    /// value (or below the smallest) actually seen.
    pub fn percentile_ns(&self, q: f64) -> u64 {
        if self.count == 0 {
            0
        } else {
            self.hist
                .value_at_quantile(q / 100.0, self.count)
                .clamp(self.min_ns, self.max_ns)
        }
    }

    /// Several percentiles (0–100, ascending) in nanoseconds, in one pass: each the same as
    /// [`Latency::percentile_ns`]'s.
    pub fn percentiles_ns<const N: usize>(&self, qs: [f64; N]) -> [u64; N] {
        if self.count == 0 {
            return [0; N];
        }
        self.hist
            .values_at_quantiles(qs.map(|q| q / 100.0), self.count)
            .map(|v| v.clamp(self.min_ns, self.max_ns))
    }

    /// The summary in milliseconds.
    pub fn summary(&self) -> LatencyMs {
        let [p50, p90, p99, p999] = self.percentiles_ns([50.0, 90.0, 99.0, 99.9]);
        LatencyMs {
            min: if self.count == 0 {
                0.0
            } else {
                ms(self.min_ns)
            },
            mean: self.mean_ns() / NS_PER_MS as f64,
            p50: ms(p50),
            p90: ms(p90),
            p99: ms(p99),
            p999: ms(p999),
            max: ms(self.max_ns),
        }
    }

    /// Points for a CDF plot, `(latency ms, fraction of values at or below it)`: one per
    /// half-percent, then the tail at 99.9, 99.95, 99.99 % and the maximum. Empty when
    /// nothing was recorded.
    pub fn cdf_ms(&self) -> Vec<(f64, f64)> {
        if self.count == 0 {
            return Vec::new();
        }
        let mut q: Vec<f64> = (1..200).map(|k| k as f64 * 0.005).collect();
        q.extend([0.999, 0.9995, 0.9999]);
        let mut points: Vec<(f64, f64)> = q
            .into_iter()
            .map(|q| {
                let ns = self
                    .hist
                    .value_at_quantile(q, self.count)
                    .clamp(self.min_ns, self.max_ns);
                (ms(ns), q)
            })
            .collect();
        points.push((ms(self.max_ns), 1.0));
        points
    }

    /// Forgets everything (for per-bucket recorders).
    pub fn reset(&mut self) {
        self.hist.reset();
        self.sum_ns = 0;
        self.count = 0;
        self.min_ns = u64::MAX;
        self.max_ns = 0;
    }
}

pub use crate::policy::outcome::Outcome;

/// Outcome counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Requests that arrived (services) or were sent (workloads).
    pub requests: u64,
    /// Answered ok.
    pub ok: u64,
    /// Answered with an error.
    pub errors: u64,
    /// Refused.
    pub rejected: u64,
    /// The caller gave up.
    pub timeouts: u64,
}

impl Counts {
    /// Counts one outcome.
    #[inline]
    pub fn add(&mut self, o: Outcome) {
        match o {
            Outcome::Ok => self.ok += 1,
            Outcome::Error => self.errors += 1,
            Outcome::Rejected => self.rejected += 1,
            Outcome::Timeout => self.timeouts += 1,
        }
    }

    /// Failed outcomes of any kind.
    pub fn failed(&self) -> u64 {
        self.errors + self.rejected + self.timeouts
    }
}

/// One row of `instances.csv`: one instance of a service with several, during one bucket.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct InstanceRow {
    /// Bucket start, seconds.
    pub t_s: f64,
    /// Its service.
    pub service: String,
    /// Its index within the service.
    pub instance: u32,
    /// Requests that arrived at it during the bucket (health checks excluded).
    pub requests: u64,
    /// Requests inside it at the bucket's end.
    pub in_flight: u64,
}

/// One row of `timeseries.csv`: one component during one bucket. The same struct writes
/// the file during a run and reads it back for the charts.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SeriesRow {
    /// Bucket start, seconds.
    pub t_s: f64,
    /// "service", "workload" or "queue" (requests: published, ok: acknowledged, errors:
    /// dead-lettered, timeouts: redelivered, latency: publish to acknowledgement, in_flight:
    /// delivered and not acknowledged, queue_depth: waiting for a consumer).
    pub kind: Cow<'static, str>,
    /// Component name.
    pub name: String,
    /// Arrivals (services) or sends (workloads) during the bucket.
    pub requests: u64,
    /// Completed ok during the bucket.
    pub ok: u64,
    /// Completed with an error.
    pub errors: u64,
    /// Rejected.
    pub rejected: u64,
    /// Timed out.
    pub timeouts: u64,
    /// Latency of requests completed during the bucket, ms.
    pub latency_p50_ms: f64,
    /// 90th percentile, ms.
    pub latency_p90_ms: f64,
    /// 99th percentile, ms.
    pub latency_p99_ms: f64,
    /// 99.9th percentile, ms.
    pub latency_p999_ms: f64,
    /// Requests inside the component at the bucket's end (services only).
    pub in_flight: u64,
    /// Work waiting for a worker at the bucket's end (services only).
    pub queue_depth: u64,
    /// Share of worker time busy during the bucket (services only).
    pub utilization: f64,
    /// Age of the oldest message waiting at the bucket's end, seconds (queues only).
    pub oldest_age_s: f64,
}

pub use crate::results::events::StateEvent;

/// Where a run streams its time series and state changes as they happen, so that
/// nothing accumulates in memory over a long run.
pub trait Sink {
    /// One closed bucket of one component.
    fn series(&mut self, row: &SeriesRow);
    /// One state change.
    fn event(&mut self, event: &StateEvent);
    /// One closed bucket of one instance (services with several instances). Required, so
    /// that a wrapping sink cannot drop the rows by forgetting to pass them on.
    fn instance(&mut self, row: &InstanceRow);
    /// Every [`PULSE_EVENTS`] events: the simulated time, so that a progress display moves
    /// even while one bucket takes minutes of wall time. It must not change results.
    fn pulse(&mut self, _now: SimTime) {}
}

/// How many events pass between two [`Sink::pulse`] calls (a power of two).
pub const PULSE_EVENTS: u64 = 1 << 20;

/// A sink that keeps everything in memory (tests, small runs).
#[derive(Default, Debug)]
pub struct MemorySink {
    /// Rows received.
    pub rows: Vec<SeriesRow>,
    /// Events received.
    pub events: Vec<StateEvent>,
    /// Per-instance rows received.
    pub instances: Vec<InstanceRow>,
}

impl Sink for MemorySink {
    fn series(&mut self, row: &SeriesRow) {
        self.rows.push(row.clone());
    }
    fn event(&mut self, event: &StateEvent) {
        self.events.push(event.clone());
    }
    fn instance(&mut self, row: &InstanceRow) {
        self.instances.push(row.clone());
    }
}

/// A sink that drops everything (benchmarks measuring the engine alone still compute the rows).
#[derive(Default, Debug)]
pub struct NullSink;

impl Sink for NullSink {
    fn series(&mut self, _: &SeriesRow) {}
    fn event(&mut self, _: &StateEvent) {}
    fn instance(&mut self, _: &InstanceRow) {}
}

/// Seconds of a time, for rows.
pub fn secs(t: SimTime) -> f64 {
    t.as_secs_f64()
}

#[cfg(test)]
mod tests {
    use super::*;
    use hdrhistogram::Histogram;

    #[test]
    fn a_histogram_grown_on_demand_answers_as_one_made_for_the_hour() {
        // The lazy, auto-resized histogram must give the percentiles of the full-range one
        // that the gallery's bytes were made with: same buckets, same answers.
        for sigfig in [2, 3] {
            let mut lazy = Latency::new(sigfig);
            assert_eq!(
                lazy.hist.heap_bytes(),
                0,
                "nothing allocated before a value"
            );
            let mut full =
                Histogram::<u64>::new_with_bounds(LATENCY_LOW_NS, LATENCY_MAX_NS, sigfig).unwrap();
            let mut x: u64 = 12345;
            for i in 0..20_000u64 {
                x = crate::rng::mix64(x);
                // From under a microsecond to past the hour, mostly milliseconds.
                let v = match i % 10 {
                    0 => x % 2_000,
                    1 => x % (2 * LATENCY_MAX_NS),
                    _ => 500_000 + x % 50_000_000,
                };
                lazy.record(v);
                full.saturating_record(v.min(LATENCY_MAX_NS));
            }
            for q in [0.0, 1.0, 10.0, 50.0, 90.0, 99.0, 99.9, 99.99, 100.0] {
                let want = full
                    .value_at_quantile(q / 100.0)
                    .clamp(lazy.min_ns, lazy.max_ns);
                assert_eq!(lazy.percentile_ns(q), want, "sigfig {sigfig}, q {q}");
            }
        }
    }

    #[test]
    fn percentiles_stay_within_the_recorded_range() {
        // A bucket's top lies above 1000 ms: before clamping, p99 read 1000.34 ms.
        let mut l = Latency::new(3);
        for _ in 0..100 {
            l.record(1_000 * NS_PER_MS);
        }
        let s = l.summary();
        assert_eq!(
            (s.p50, s.p99, s.p999, s.max),
            (1000.0, 1000.0, 1000.0, 1000.0)
        );
        assert!(l.cdf_ms().iter().all(|&(v, _)| v <= 1000.0));
        // Nothing waited: every percentile of the zero waits is zero.
        let mut w = Latency::new(3);
        for _ in 0..10 {
            w.record(0);
        }
        assert_eq!(w.percentile_ns(99.0), 0);
    }

    #[test]
    fn latency_summary_is_exact_for_mean_and_max() {
        let mut l = Latency::new(3);
        for ms_ in 1..=100u64 {
            l.record(ms_ * NS_PER_MS);
        }
        let s = l.summary();
        assert_eq!(s.mean, 50.5);
        assert_eq!(s.max, 100.0);
        assert!((s.p50 - 50.0).abs() < 0.1, "{}", s.p50);
        assert!((s.p99 - 99.0).abs() < 0.1, "{}", s.p99);
        l.reset();
        assert_eq!(l.summary(), LatencyMs::default());
    }
}
