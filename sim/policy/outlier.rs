//! Envoy outlier detection (POLICIES.md §12.1): consecutive 5xx and gateway errors, interval
//! sweeps, ejection time growing with the ejection count, max ejection percent, success-rate
//! and failure-percentage ejection.
//!
//! The caller reports each attempt's result for a host and runs [`Detector::sweep`] every
//! `interval`; the detector answers which hosts are ejected. Ejection never touches in-flight
//! requests: only new balancer picks skip ejected hosts (unless the balancer is in panic).

use crate::rng::SimRng;
use crate::time::{SimDuration, SimTime};

/// Parameters, Envoy defaults in [`Config::default`].
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// consecutive_5xx (0 disables).
    pub consecutive_5xx: u32,
    /// enforcing_consecutive_5xx, percent.
    pub enforcing_consecutive_5xx: f64,
    /// consecutive_gateway_failure (0 disables).
    pub consecutive_gateway: u32,
    /// enforcing_consecutive_gateway_failure, percent (Envoy default 0: detected, not enforced).
    pub enforcing_consecutive_gateway: f64,
    /// Sweep period.
    pub interval: SimDuration,
    /// base_ejection_time.
    pub base_ejection: SimDuration,
    /// max_ejection_time.
    pub max_ejection: SimDuration,
    /// max_ejection_percent.
    pub max_ejection_percent: f64,
    /// always_eject_one_host (Envoy ≥ 2024; false keeps the strict check).
    pub always_eject_one_host: bool,
    /// success_rate_minimum_hosts.
    pub success_rate_minimum_hosts: u32,
    /// success_rate_request_volume.
    pub success_rate_request_volume: u64,
    /// success_rate_stdev_factor / 1000.
    pub success_rate_stdev_factor: f64,
    /// enforcing_success_rate, percent.
    pub enforcing_success_rate: f64,
    /// failure_percentage_threshold.
    pub failure_percentage_threshold: f64,
    /// failure_percentage_minimum_hosts.
    pub failure_percentage_minimum_hosts: u32,
    /// failure_percentage_request_volume.
    pub failure_percentage_request_volume: u64,
    /// enforcing_failure_percentage, percent (default 0: off).
    pub enforcing_failure_percentage: f64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            consecutive_5xx: 5,
            enforcing_consecutive_5xx: 100.0,
            consecutive_gateway: 5,
            enforcing_consecutive_gateway: 0.0,
            interval: SimDuration::from_secs(10),
            base_ejection: SimDuration::from_secs(30),
            max_ejection: SimDuration::from_secs(300),
            max_ejection_percent: 10.0,
            always_eject_one_host: false,
            success_rate_minimum_hosts: 5,
            success_rate_request_volume: 100,
            success_rate_stdev_factor: 1.9,
            enforcing_success_rate: 100.0,
            failure_percentage_threshold: 85.0,
            failure_percentage_minimum_hosts: 5,
            failure_percentage_request_volume: 50,
            enforcing_failure_percentage: 0.0,
        }
    }
}

/// An attempt's result as outlier detection sees it (an HTTP status class).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Not 5xx (2xx, 4xx including 429).
    Ok,
    /// 5xx other than 502/503/504 (e.g. 500).
    Error5xx,
    /// 502/503/504: the upstream timed out, refused the connection or was overloaded.
    Gateway,
}

/// Why a host was ejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// consecutive_5xx.
    Consecutive5xx,
    /// consecutive_gateway_failure.
    ConsecutiveGateway,
    /// Success rate below mean − factor · stdev.
    SuccessRate,
    /// Failure percentage at or above the threshold.
    FailurePercentage,
}

impl Reason {
    /// The detector's name, as in Envoy's configuration.
    pub fn name(self) -> &'static str {
        match self {
            Reason::Consecutive5xx => "consecutive_5xx",
            Reason::ConsecutiveGateway => "consecutive_gateway_failure",
            Reason::SuccessRate => "success_rate",
            Reason::FailurePercentage => "failure_percentage",
        }
    }
}

/// A change in a host's ejection state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// The host is ejected.
    Ejected(usize, Reason),
    /// An ejection was detected but the max-ejection-percent rule refused it.
    Overflow(usize, Reason),
    /// The host is back.
    Unejected(usize),
}

#[derive(Clone, Debug, Default)]
struct Host {
    consecutive_5xx: u32,
    consecutive_gateway: u32,
    ejected: bool,
    ejected_at: SimTime,
    /// Ejection multiplier (0 until the first ejection).
    backoff: u64,
    last_unejected: Option<SimTime>,
    /// Success-rate bucket being filled (ok, total) and the one last swapped out.
    current: (u64, u64),
    evaluated: (u64, u64),
}

/// Outlier detection over one cluster (one caller's view of one callee's hosts).
#[derive(Clone, Debug)]
pub struct Detector {
    cfg: Config,
    hosts: Vec<Host>,
    ejected: usize,
    /// Ejections refused by max_ejection_percent.
    pub overflows: u64,
    /// Ejections enforced.
    pub ejections: u64,
}

impl Detector {
    /// A detector for `hosts` hosts.
    pub fn new(cfg: Config, hosts: usize) -> Self {
        Detector {
            cfg,
            hosts: vec![Host::default(); hosts],
            ejected: 0,
            overflows: 0,
            ejections: 0,
        }
    }

    /// The sweep period.
    pub fn interval(&self) -> SimDuration {
        self.cfg.interval
    }

    /// Whether `host` is ejected.
    pub fn is_ejected(&self, host: usize) -> bool {
        self.hosts[host].ejected
    }

    /// Hosts currently ejected.
    pub fn ejected_count(&self) -> usize {
        self.ejected
    }

    /// Records one attempt's result on `host`; returns the ejections (or overflows) of the
    /// consecutive counters that reached their thresholds.
    ///
    /// As Envoy's `putHttpResponseCode`, the gateway-failure and 5xx counters are checked
    /// independently, and a gateway failure's detection is handled first: when one result
    /// brings both to their thresholds and the gateway ejection is enforced, the host is
    /// ejected for it (the 5xx detection then finds it ejected); when it is not enforced,
    /// the 5xx detection still decides.
    pub fn on_result(
        &mut self,
        now: SimTime,
        host: usize,
        status: Status,
        rng: &mut SimRng,
    ) -> [Option<Change>; 2] {
        let cfg = &self.cfg;
        let h = &mut self.hosts[host];
        h.current.1 += 1;
        let (mut gateway, mut five) = (None, None);
        match status {
            Status::Ok => {
                h.current.0 += 1;
                h.consecutive_5xx = 0;
                h.consecutive_gateway = 0;
            }
            Status::Error5xx | Status::Gateway => {
                if status == Status::Gateway {
                    h.consecutive_gateway += 1;
                    if cfg.consecutive_gateway > 0
                        && h.consecutive_gateway == cfg.consecutive_gateway
                    {
                        gateway = Some(cfg.enforcing_consecutive_gateway);
                    }
                } else {
                    h.consecutive_gateway = 0;
                }
                h.consecutive_5xx += 1;
                if cfg.consecutive_5xx > 0 && h.consecutive_5xx == cfg.consecutive_5xx {
                    five = Some(cfg.enforcing_consecutive_5xx);
                }
            }
        }
        let mut out = [None, None];
        for (k, (reason, enforcing)) in [
            (Reason::ConsecutiveGateway, gateway),
            (Reason::Consecutive5xx, five),
        ]
        .into_iter()
        .enumerate()
        {
            let Some(enforcing) = enforcing else { continue };
            if self.hosts[host].ejected {
                // Envoy's onConsecutiveErrorWorker: an ejected host is left alone, and its
                // counter is not reset.
                continue;
            }
            match reason {
                Reason::ConsecutiveGateway => self.hosts[host].consecutive_gateway = 0,
                _ => self.hosts[host].consecutive_5xx = 0,
            }
            out[k] = self.eject(now, host, reason, enforcing, rng);
        }
        out
    }

    /// ejectHost: the max-ejection-percent rule, then enforcement with probability `enforcing`.
    fn eject(
        &mut self,
        now: SimTime,
        host: usize,
        reason: Reason,
        enforcing: f64,
        rng: &mut SimRng,
    ) -> Option<Change> {
        let total = self.hosts.len() as f64;
        let allowed = 100.0 * (self.ejected as f64 + 1.0) / total <= self.cfg.max_ejection_percent
            || (self.cfg.always_eject_one_host && self.ejected == 0);
        if !allowed {
            self.overflows += 1;
            return Some(Change::Overflow(host, reason));
        }
        if !rng.chance(enforcing / 100.0) {
            return None;
        }
        let (base, max) = (self.cfg.base_ejection.0, self.cfg.max_ejection.0);
        let h = &mut self.hosts[host];
        h.ejected = true;
        h.ejected_at = now;
        if h.backoff.saturating_mul(base) < max.saturating_add(base) {
            h.backoff += 1;
        }
        self.ejected += 1;
        self.ejections += 1;
        Some(Change::Ejected(host, reason))
    }

    /// The ejection length of `host` as it stands: min(base · backoff, max).
    pub fn ejection_time(&self, host: usize) -> SimDuration {
        let h = &self.hosts[host];
        SimDuration(
            (self.cfg.base_ejection.0.saturating_mul(h.backoff))
                .min(self.cfg.max_ejection.0.max(self.cfg.base_ejection.0)),
        )
    }

    /// The interval sweep: unejections, bucket swap, success-rate and failure-percentage
    /// passes, backoff decay. Changes are appended to `out`.
    pub fn sweep(&mut self, now: SimTime, rng: &mut SimRng, out: &mut Vec<Change>) {
        for i in 0..self.hosts.len() {
            if self.hosts[i].ejected && now.since(self.hosts[i].ejected_at) >= self.ejection_time(i)
            {
                let h = &mut self.hosts[i];
                h.ejected = false;
                h.consecutive_5xx = 0;
                h.consecutive_gateway = 0;
                h.last_unejected = Some(now);
                self.ejected -= 1;
                out.push(Change::Unejected(i));
            }
        }
        for h in &mut self.hosts {
            h.evaluated = std::mem::take(&mut h.current);
        }
        let rates = |min_volume: u64, hosts: &[Host]| -> Vec<(usize, f64)> {
            hosts
                .iter()
                .enumerate()
                .filter(|(_, h)| !h.ejected && h.evaluated.1 >= min_volume && h.evaluated.1 > 0)
                .map(|(i, h)| (i, 100.0 * h.evaluated.0 as f64 / h.evaluated.1 as f64))
                .collect()
        };
        let cfg = self.cfg.clone();
        let sr = rates(cfg.success_rate_request_volume, &self.hosts);
        if sr.len() >= cfg.success_rate_minimum_hosts as usize && !sr.is_empty() {
            let n = sr.len() as f64;
            let mean = sr.iter().map(|r| r.1).sum::<f64>() / n;
            let var = sr.iter().map(|r| (r.1 - mean).powi(2)).sum::<f64>() / n;
            let threshold = mean - cfg.success_rate_stdev_factor * var.sqrt();
            for &(i, rate) in &sr {
                if rate < threshold && !self.hosts[i].ejected {
                    if let Some(c) =
                        self.eject(now, i, Reason::SuccessRate, cfg.enforcing_success_rate, rng)
                    {
                        out.push(c);
                    }
                }
            }
        }
        let fp = rates(cfg.failure_percentage_request_volume, &self.hosts);
        if fp.len() >= cfg.failure_percentage_minimum_hosts as usize {
            for &(i, rate) in &fp {
                if 100.0 - rate >= cfg.failure_percentage_threshold && !self.hosts[i].ejected {
                    if let Some(c) = self.eject(
                        now,
                        i,
                        Reason::FailurePercentage,
                        cfg.enforcing_failure_percentage,
                        rng,
                    ) {
                        out.push(c);
                    }
                }
            }
        }
        for h in &mut self.hosts {
            if !h.ejected && h.backoff > 0 {
                if let Some(t) = h.last_unejected {
                    if now.since(t) >= cfg.interval {
                        h.backoff -= 1;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: u64) -> SimTime {
        SimTime::ZERO.after(SimDuration::from_secs(s))
    }

    fn rng() -> SimRng {
        SimRng::for_component(1, "outlier")
    }

    #[test]
    fn s12_b1_a_success_resets_the_consecutive_count() {
        let mut d = Detector::new(Config::default(), 10);
        let mut r = rng();
        let now = t(1);
        for _ in 0..4 {
            assert_eq!(d.on_result(now, 0, Status::Error5xx, &mut r), [None, None]);
        }
        d.on_result(now, 0, Status::Ok, &mut r);
        for _ in 0..4 {
            assert_eq!(d.on_result(now, 0, Status::Error5xx, &mut r), [None, None]);
        }
        assert!(!d.is_ejected(0));
        let c = d.on_result(now, 0, Status::Error5xx, &mut r);
        assert_eq!(c, [None, Some(Change::Ejected(0, Reason::Consecutive5xx))]);
        assert!(d.is_ejected(0));
    }

    #[test]
    fn s12_b2_second_ejection_over_ten_percent_overflows() {
        let mut d = Detector::new(Config::default(), 10);
        let mut r = rng();
        for _ in 0..5 {
            d.on_result(t(1), 0, Status::Error5xx, &mut r);
        }
        assert!(d.is_ejected(0));
        let mut last = [None, None];
        for _ in 0..5 {
            last = d.on_result(t(1), 1, Status::Error5xx, &mut r);
        }
        assert_eq!(
            last,
            [None, Some(Change::Overflow(1, Reason::Consecutive5xx))]
        );
        assert!(!d.is_ejected(1));
        assert_eq!(d.overflows, 1);
    }

    #[test]
    fn s12_b3_small_clusters_never_eject_unless_always_eject_one() {
        let mut d = Detector::new(Config::default(), 5);
        let mut r = rng();
        for _ in 0..50 {
            d.on_result(t(1), 0, Status::Error5xx, &mut r);
        }
        assert!(!d.is_ejected(0));
        let cfg = Config {
            always_eject_one_host: true,
            ..Config::default()
        };
        let mut d = Detector::new(cfg, 5);
        for _ in 0..5 {
            d.on_result(t(1), 0, Status::Error5xx, &mut r);
        }
        assert!(d.is_ejected(0));
    }

    #[test]
    fn s12_b4_ejection_ends_at_a_sweep_and_grows_with_each_ejection() {
        let mut d = Detector::new(Config::default(), 10);
        let mut r = rng();
        let eject = |d: &mut Detector, r: &mut SimRng, at: SimTime| {
            for _ in 0..5 {
                d.on_result(at, 0, Status::Error5xx, r);
            }
            assert!(d.is_ejected(0));
        };
        eject(
            &mut d,
            &mut r,
            SimTime::ZERO.after(SimDuration::from_secs(3)),
        );
        let mut out = Vec::new();
        let mut unejected_at = None;
        for k in 1..=30 {
            d.sweep(t(10 * k), &mut r, &mut out);
            if !d.is_ejected(0) {
                unejected_at = Some(10 * k);
                break;
            }
        }
        assert_eq!(unejected_at, Some(40));
        // Ejected again at once: the multiplier is now 2, then 3...
        eject(&mut d, &mut r, t(40));
        assert_eq!(d.ejection_time(0), SimDuration::from_secs(60));
        let mut k = 5;
        while d.is_ejected(0) {
            d.sweep(t(10 * k), &mut r, &mut out);
            k += 1;
        }
        assert_eq!(10 * (k - 1), 100);
        eject(&mut d, &mut r, t(100));
        assert_eq!(d.ejection_time(0), SimDuration::from_secs(90));
        for _ in 0..20 {
            // Repeated ejections cap at max_ejection_time.
            let mut k = 0;
            while d.is_ejected(0) {
                k += 1;
                d.sweep(t(100 + 10 * k), &mut r, &mut out);
            }
            eject(&mut d, &mut r, t(100 + 10 * k));
        }
        assert_eq!(d.ejection_time(0), SimDuration::from_secs(300));
    }

    fn feed(d: &mut Detector, host: usize, ok: u64, total: u64, r: &mut SimRng) {
        for k in 0..total {
            let s = if k < ok { Status::Ok } else { Status::Error5xx };
            let _ = d.on_result(t(1), host, s, r);
        }
    }

    #[test]
    fn s12_b5_success_rate_outlier() {
        let cfg = Config {
            consecutive_5xx: 0,
            consecutive_gateway: 0,
            ..Config::default()
        };
        let mut r = rng();
        // Defaults: 1 of 5 hosts is 20 % > 10 % → overflow instead of ejection.
        let mut d = Detector::new(cfg.clone(), 5);
        feed(&mut d, 0, 50, 100, &mut r);
        for h in 1..5 {
            feed(&mut d, h, 100, 100, &mut r);
        }
        let mut out = Vec::new();
        d.sweep(t(10), &mut r, &mut out);
        assert_eq!(out, vec![Change::Overflow(0, Reason::SuccessRate)]);
        // With max_ejection_percent 20 it is ejected (mean 90, stdev 20, threshold 52).
        let mut d = Detector::new(
            Config {
                max_ejection_percent: 20.0,
                ..cfg.clone()
            },
            5,
        );
        feed(&mut d, 0, 50, 100, &mut r);
        for h in 1..5 {
            feed(&mut d, h, 100, 100, &mut r);
        }
        out.clear();
        d.sweep(t(10), &mut r, &mut out);
        assert_eq!(out, vec![Change::Ejected(0, Reason::SuccessRate)]);
    }

    #[test]
    fn s12_b6_too_few_hosts_with_volume_no_success_rate_ejection() {
        let cfg = Config {
            consecutive_5xx: 0,
            consecutive_gateway: 0,
            max_ejection_percent: 100.0,
            ..Config::default()
        };
        let mut r = rng();
        let mut d = Detector::new(cfg, 5);
        feed(&mut d, 0, 50, 100, &mut r);
        for h in 1..4 {
            feed(&mut d, h, 100, 100, &mut r);
        }
        feed(&mut d, 4, 99, 99, &mut r);
        let mut out = Vec::new();
        d.sweep(t(10), &mut r, &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn gateway_failures_are_detected_but_not_enforced_by_default() {
        let cfg = Config {
            consecutive_5xx: 0,
            ..Config::default()
        };
        let mut d = Detector::new(cfg, 10);
        let mut r = rng();
        for _ in 0..20 {
            d.on_result(t(1), 0, Status::Gateway, &mut r);
        }
        assert!(!d.is_ejected(0));
    }

    /// Envoy's OutlierDetectorImplTest.BasicFlowGatewayFailure: with
    /// enforcing_consecutive_gateway_failure = 100 and both thresholds at 5, five gateway
    /// failures bring both counters to their thresholds at once; the gateway ejection is
    /// enforced (and handled first), so the host is ejected for a gateway failure.
    #[test]
    fn s12_gateway_ejection_is_not_swallowed_by_the_5xx_detection() {
        let cfg = Config {
            enforcing_consecutive_gateway: 100.0,
            ..Config::default()
        };
        let mut d = Detector::new(cfg, 10);
        let mut r = rng();
        let mut changes = Vec::new();
        for _ in 0..5 {
            changes.extend(
                d.on_result(t(1), 0, Status::Gateway, &mut r)
                    .into_iter()
                    .flatten(),
            );
        }
        assert!(d.is_ejected(0));
        assert_eq!(changes.len(), 1, "{changes:?}");
        assert!(
            matches!(changes[0], Change::Ejected(0, Reason::ConsecutiveGateway)),
            "{changes:?}"
        );
        // With the gateway detection unenforced (Envoy's default), the 5xx detection ejects.
        let mut d = Detector::new(Config::default(), 10);
        let mut changes = Vec::new();
        for _ in 0..5 {
            changes.extend(
                d.on_result(t(1), 0, Status::Gateway, &mut r)
                    .into_iter()
                    .flatten(),
            );
        }
        assert!(
            matches!(changes[..], [Change::Ejected(0, Reason::Consecutive5xx)]),
            "{changes:?}"
        );
    }
}
