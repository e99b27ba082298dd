//! A service registry (POLICIES.md §15): self-registration, heartbeats with a health loop (the
//! articles', Consul TTL checks), Eureka leases with eviction and self-preservation, active
//! check thresholds (Consul `failures_before_critical`, Kubernetes readiness), and the reaper
//! that removes instances long critical.
//!
//! The registry knows instances by index. The model tells it what happens (an instance
//! starts, registers, heartbeats, answers a check, drains, leaves) and calls [`Registry::tick`]
//! on its health-loop period; the registry answers with status changes. Callers never read it
//! directly: they read snapshots ([`Registry::routable`]) into their discovery caches.

use crate::rng::SimRng;
use crate::time::{SimDuration, SimTime};
use std::collections::VecDeque;

/// An instance's status in the registry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Not registered (never started, or removed).
    Gone,
    /// Registered, not yet passing (startup, or waiting for its first successful checks).
    Starting,
    /// Passing: callers may route to it.
    Healthy,
    /// Critical: heartbeats stopped or checks failed; still registered until removed.
    Unhealthy,
    /// Shutting down cleanly: no new traffic, still registered.
    Draining,
}

impl Status {
    /// Its name in events.csv.
    pub fn name(self) -> &'static str {
        match self {
            Status::Gone => "gone",
            Status::Starting => "starting",
            Status::Healthy => "healthy",
            Status::Unhealthy => "unhealthy",
            Status::Draining => "draining",
        }
    }
}

/// How heartbeats expire.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Leases {
    /// The articles' and Consul's TTL: unhealthy once the last heartbeat is older than
    /// `unhealthy_after` (seen at the next health-loop tick); removed `remove_after` later (at
    /// the next reaper tick).
    Ttl {
        /// Heartbeat age that makes an instance unhealthy (the articles: 30 s).
        unhealthy_after: SimDuration,
        /// Time unhealthy before removal (Consul deregister_critical_service_after).
        remove_after: SimDuration,
        /// The reaper's period (Consul: 30 s).
        reap_interval: SimDuration,
    },
    /// Eureka: leases of `duration`, renewed by heartbeats; expired leases are evicted by a task
    /// every `eviction_interval`, at most 15 % of the registry per run, and not at all while
    /// self-preservation holds.
    Eureka {
        /// leaseExpirationDurationInSeconds (90 s).
        duration: SimDuration,
        /// evictionIntervalTimerInMs (60 s).
        eviction_interval: SimDuration,
        /// enableSelfPreservation (true).
        self_preservation: bool,
        /// renewalPercentThreshold (0.85).
        renewal_threshold: f64,
        /// Eureka's renew() sets lastUpdate = now + duration, so a lease lasts 2 × duration
        /// (true, as Eureka does; false for the documented duration).
        double_duration_quirk: bool,
        /// The clients' renewal interval (30 s): sets the expected renewals per minute.
        renewal_interval: SimDuration,
    },
    /// Third-party registration (Registrator, Kubernetes' endpoints controller): a registrar
    /// registers and deregisters instances as it sees them start and stop; there are no
    /// heartbeats and nothing expires.
    Registrar,
}

/// Thresholds of active checks (Consul success_before_passing / failures_before_critical,
/// Kubernetes successThreshold / failureThreshold).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Thresholds {
    /// Consecutive failures that make a passing instance critical (≥ 1).
    pub failures: u32,
    /// Consecutive successes that make a critical or starting instance passing (≥ 1).
    pub successes: u32,
}

/// A status change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Change {
    /// The instance.
    pub instance: usize,
    /// Its old status.
    pub from: Status,
    /// Its new status.
    pub to: Status,
    /// Why.
    pub why: &'static str,
}

#[derive(Clone, Debug)]
struct Entry {
    status: Status,
    /// Last heartbeat (Eureka: lastUpdate, which the quirk moves a duration ahead).
    last: SimTime,
    since: SimTime,
    fails: u32,
    passes: u32,
}

/// The registry of one service's instances.
#[derive(Clone, Debug)]
pub struct Registry {
    leases: Leases,
    checks: Option<Thresholds>,
    entries: Vec<Entry>,
    /// Renewal times in the last minute (Eureka self-preservation).
    renewals: VecDeque<SimTime>,
    next_reap: SimTime,
    next_eviction: SimTime,
    /// Evictions refused by self-preservation (runs with expired leases left alone).
    pub preserved_runs: u64,
}

impl Registry {
    /// A registry of `instances` instances, all gone.
    pub fn new(leases: Leases, checks: Option<Thresholds>, instances: usize) -> Self {
        let (reap, evict) = match leases {
            Leases::Ttl { reap_interval, .. } => (reap_interval, SimDuration::ZERO),
            Leases::Eureka {
                eviction_interval, ..
            } => (SimDuration::ZERO, eviction_interval),
            Leases::Registrar => (SimDuration::ZERO, SimDuration::ZERO),
        };
        Registry {
            leases,
            checks,
            entries: vec![
                Entry {
                    status: Status::Gone,
                    last: SimTime::ZERO,
                    since: SimTime::ZERO,
                    fails: 0,
                    passes: 0,
                };
                instances
            ],
            renewals: VecDeque::new(),
            next_reap: SimTime::ZERO.after(reap),
            next_eviction: SimTime::ZERO.after(evict),
            preserved_runs: 0,
        }
    }

    /// Instances known.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether it knows no instance.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The status of instance `i`.
    pub fn status(&self, i: usize) -> Status {
        self.entries[i].status
    }

    /// Whether callers may route to instance `i` (healthy in the registry).
    pub fn routable(&self, i: usize) -> bool {
        self.entries[i].status == Status::Healthy
    }

    fn set(&mut self, now: SimTime, i: usize, to: Status, why: &'static str) -> Option<Change> {
        let e = &mut self.entries[i];
        if e.status == to {
            return None;
        }
        let from = e.status;
        e.status = to;
        e.since = now;
        Some(Change {
            instance: i,
            from,
            to,
            why,
        })
    }

    /// Instance `i` registers itself (its startup is over). With active checks it stays
    /// starting until it passes them; without, it is healthy at once.
    pub fn register(&mut self, now: SimTime, i: usize) -> Option<Change> {
        let e = &mut self.entries[i];
        e.fails = 0;
        e.passes = 0;
        self.renew(now, i);
        if self.checks.is_some() {
            self.set(now, i, Status::Starting, "registered, waiting for checks")
        } else {
            self.set(now, i, Status::Healthy, "registered")
        }
    }

    /// Marks a registered instance passing without checks (instances running before the run
    /// starts).
    pub fn assume_passing(&mut self, i: usize) {
        if self.entries[i].status != Status::Gone {
            self.entries[i].status = Status::Healthy;
        }
    }

    /// A heartbeat (lease renewal) from instance `i`.
    pub fn heartbeat(&mut self, now: SimTime, i: usize) -> Option<Change> {
        if self.entries[i].status == Status::Gone {
            return None;
        }
        self.renew(now, i);
        // A TTL check passes again on a heartbeat (Consul); without active checks, so does the
        // instance.
        if self.entries[i].status == Status::Unhealthy && self.checks.is_none() {
            return self.set(now, i, Status::Healthy, "heartbeat resumed");
        }
        None
    }

    fn renew(&mut self, now: SimTime, i: usize) {
        let last = match self.leases {
            Leases::Eureka {
                duration,
                double_duration_quirk: true,
                ..
            } => now.after(duration),
            _ => now,
        };
        self.entries[i].last = last;
        if let Leases::Eureka { .. } = self.leases {
            self.renewals.push_back(now);
        }
    }

    /// The registry is back after an outage: every registered instance counts as renewed now,
    /// as Consul's anti-entropy re-syncs each agent's services and restarts their TTLs (and
    /// Eureka's self-preservation would hold off a mass eviction). Instances that died
    /// meanwhile expire one TTL later.
    pub fn resync(&mut self, now: SimTime) {
        let ahead = match self.leases {
            Leases::Eureka {
                duration,
                double_duration_quirk: true,
                ..
            } => now.after(duration),
            _ => now,
        };
        for e in &mut self.entries {
            if e.status != Status::Gone {
                e.last = e.last.max(ahead);
            }
        }
    }

    /// Instance `i` starts draining (a clean shutdown began): no new traffic.
    pub fn drain(&mut self, now: SimTime, i: usize) -> Option<Change> {
        if self.entries[i].status == Status::Gone {
            return None;
        }
        self.set(now, i, Status::Draining, "draining")
    }

    /// Instance `i` deregisters (a clean shutdown ended).
    pub fn deregister(&mut self, now: SimTime, i: usize) -> Option<Change> {
        self.set(now, i, Status::Gone, "deregistered")
    }

    /// The result of an active check of instance `i` (ok: passing).
    pub fn check_result(&mut self, now: SimTime, i: usize, ok: bool) -> Option<Change> {
        let th = self.checks?;
        let e = &mut self.entries[i];
        if matches!(e.status, Status::Gone | Status::Draining) {
            return None;
        }
        if ok {
            e.passes += 1;
            e.fails = 0;
            if e.passes >= th.successes && e.status != Status::Healthy {
                return self.set(now, i, Status::Healthy, "checks passing");
            }
        } else {
            e.fails += 1;
            e.passes = 0;
            if e.fails >= th.failures && e.status == Status::Healthy {
                return self.set(now, i, Status::Unhealthy, "checks failing");
            }
        }
        None
    }

    /// The health loop at `now`: expire heartbeats, reap long-critical instances, evict
    /// expired Eureka leases. `rng` picks which expired leases Eureka evicts.
    pub fn tick(&mut self, now: SimTime, rng: &mut SimRng, out: &mut Vec<Change>) {
        match self.leases {
            Leases::Ttl {
                unhealthy_after,
                remove_after,
                reap_interval,
            } => {
                for i in 0..self.entries.len() {
                    let e = &self.entries[i];
                    let live = matches!(e.status, Status::Healthy | Status::Starting);
                    if live && now.since(e.last) >= unhealthy_after && now > e.last {
                        out.extend(self.set(now, i, Status::Unhealthy, "heartbeat expired"));
                    }
                }
                while now >= self.next_reap {
                    self.next_reap = self.next_reap.after(reap_interval);
                    for i in 0..self.entries.len() {
                        let e = &self.entries[i];
                        if e.status == Status::Unhealthy && now.since(e.since) >= remove_after {
                            out.extend(self.set(now, i, Status::Gone, "reaped"));
                        }
                    }
                }
            }
            Leases::Eureka {
                duration,
                eviction_interval,
                self_preservation,
                renewal_threshold,
                renewal_interval,
                ..
            } => {
                while now >= self.next_eviction {
                    self.next_eviction = self.next_eviction.after(eviction_interval);
                    self.evict(
                        now,
                        duration,
                        self_preservation,
                        renewal_threshold,
                        renewal_interval,
                        rng,
                        out,
                    );
                }
            }
            Leases::Registrar => {}
        }
    }

    /// Eureka's eviction task.
    #[allow(clippy::too_many_arguments)]
    fn evict(
        &mut self,
        now: SimTime,
        duration: SimDuration,
        self_preservation: bool,
        renewal_threshold: f64,
        renewal_interval: SimDuration,
        rng: &mut SimRng,
        out: &mut Vec<Change>,
    ) {
        let minute = SimDuration::from_secs(60);
        while self
            .renewals
            .front()
            .is_some_and(|&t| now.since(t) >= minute && now > t)
        {
            self.renewals.pop_front();
        }
        let registered = self
            .entries
            .iter()
            .filter(|e| e.status != Status::Gone)
            .count();
        let per_minute = 60.0 / renewal_interval.as_secs_f64().max(1e-9);
        let threshold = (registered as f64 * per_minute * renewal_threshold) as usize;
        if self_preservation && (threshold == 0 || self.renewals.len() <= threshold) {
            if self.entries.iter().any(|e| expired(e, now, duration)) {
                self.preserved_runs += 1;
            }
            return;
        }
        let mut expired: Vec<usize> = (0..self.entries.len())
            .filter(|&i| expired(&self.entries[i], now, duration))
            .collect();
        let limit = registered - (registered as f64 * renewal_threshold) as usize;
        // Evict a random `limit` of them (Eureka shuffles with a random index per pick).
        let n = expired.len().min(limit);
        for k in 0..n {
            let j = k + rng.index(expired.len() - k);
            expired.swap(k, j);
            out.extend(self.set(now, expired[k], Status::Gone, "lease expired, evicted"));
        }
    }
}

fn expired(e: &Entry, now: SimTime, duration: SimDuration) -> bool {
    e.status != Status::Gone && now > e.last.after(duration)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: u64) -> SimTime {
        SimTime::ZERO.after(SimDuration::from_secs(x))
    }
    fn d(x: u64) -> SimDuration {
        SimDuration::from_secs(x)
    }
    fn rng() -> SimRng {
        SimRng::for_component(1, "registry")
    }
    fn ttl(unhealthy: u64, remove: u64, reap: u64) -> Leases {
        Leases::Ttl {
            unhealthy_after: d(unhealthy),
            remove_after: d(remove),
            reap_interval: d(reap),
        }
    }
    fn eureka() -> Leases {
        eureka_with(true)
    }
    fn eureka_with(self_preservation: bool) -> Leases {
        Leases::Eureka {
            duration: d(90),
            eviction_interval: d(60),
            self_preservation,
            renewal_threshold: 0.85,
            double_duration_quirk: true,
            renewal_interval: d(30),
        }
    }

    #[test]
    fn s15_1_b1_third_failed_check_turns_critical() {
        let th = Thresholds {
            failures: 3,
            successes: 1,
        };
        let mut r = Registry::new(ttl(3600, 3600, 3600), Some(th), 1);
        r.register(s(0), 0);
        assert_eq!(
            r.check_result(s(0), 0, true).map(|c| c.to),
            Some(Status::Healthy)
        );
        // Crash at 0; checks at 5, 15, 25 s fail.
        assert_eq!(r.check_result(s(5), 0, false), None);
        assert_eq!(r.check_result(s(15), 0, false), None);
        let c = r.check_result(s(25), 0, false).unwrap();
        assert_eq!((c.to, c.why), (Status::Unhealthy, "checks failing"));
        // One success brings it back (successes 1).
        assert_eq!(
            r.check_result(s(35), 0, true).map(|c| c.to),
            Some(Status::Healthy)
        );
    }

    #[test]
    fn s15_1_b2_ttl_expiry_then_reaper() {
        // TTL 15 s, deregister after 1 min, reaper every 30 s, health loop every second.
        let mut r = Registry::new(ttl(15, 60, 30), None, 1);
        let mut rng = rng();
        r.register(s(0), 0);
        let mut changes = Vec::new();
        for t in 1..=120 {
            let mut out = Vec::new();
            r.tick(s(t), &mut rng, &mut out);
            changes.extend(out.into_iter().map(|c| (t, c.to)));
        }
        assert_eq!(changes, vec![(15, Status::Unhealthy), (90, Status::Gone)]);
    }

    #[test]
    fn resync_after_an_outage_restarts_every_ttl() {
        // TTL 15 s; the last heartbeat at 0, the registry back at 40 s: expiry at 55 s, not
        // at the first tick after the outage.
        let mut r = Registry::new(ttl(15, 60, 30), None, 2);
        let mut rng = rng();
        r.register(s(0), 0);
        r.resync(s(40));
        let mut out = Vec::new();
        r.tick(s(54), &mut rng, &mut out);
        assert!(out.is_empty());
        r.tick(s(55), &mut rng, &mut out);
        assert_eq!((out[0].instance, out[0].to), (0, Status::Unhealthy));
        // A removed instance stays removed.
        assert_eq!(r.status(1), Status::Gone);
    }

    #[test]
    fn registrar_entries_never_expire() {
        let mut r = Registry::new(Leases::Registrar, None, 1);
        let mut rng = rng();
        r.register(s(0), 0);
        let mut out = Vec::new();
        r.tick(s(1_000_000), &mut rng, &mut out);
        assert!(out.is_empty());
        assert!(r.routable(0));
        assert_eq!(
            r.deregister(s(1_000_001), 0).map(|c| c.to),
            Some(Status::Gone)
        );
    }

    #[test]
    fn articles_heartbeat_loop_marks_unhealthy_within_one_check() {
        // Heartbeats every 10 s until a crash at 42 s; loop every 10 s; unhealthy after 30 s.
        let mut r = Registry::new(ttl(30, 60, 10), None, 1);
        let mut rng = rng();
        r.register(s(0), 0);
        let mut first = None;
        for t in (10..=200).step_by(10) {
            if t <= 40 {
                r.heartbeat(s(t), 0);
            }
            let mut out = Vec::new();
            r.tick(s(t), &mut rng, &mut out);
            if let Some(c) = out.first() {
                first.get_or_insert((t, c.to));
            }
        }
        // Last heartbeat at 40 s: 30 s old at 70 s.
        assert_eq!(first, Some((70, Status::Unhealthy)));
        assert_eq!(r.status(0), Status::Gone);
    }

    #[test]
    fn s15_2_b1_eureka_lease_lasts_twice_its_duration() {
        let mut r = Registry::new(eureka(), None, 1);
        let no_preservation = eureka_with(false);
        r.leases = no_preservation;
        let mut rng = rng();
        r.register(s(0), 0);
        let mut gone_at = None;
        for t in (60..=300).step_by(60) {
            let mut out = Vec::new();
            r.tick(s(t), &mut rng, &mut out);
            if !out.is_empty() {
                gone_at.get_or_insert(t);
            }
        }
        // Expired for t > 180 s: the tick at 180 keeps it, the one at 240 evicts it.
        assert_eq!(gone_at, Some(240));
    }

    #[test]
    fn s15_2_b2_self_preservation_stops_evictions() {
        let mut r = Registry::new(eureka(), None, 20);
        let mut rng = rng();
        for i in 0..20 {
            r.register(s(0), i);
        }
        // Threshold int(20 · 2 · 0.85) = 34 renewals a minute; only 30 arrive in the minute
        // before the tick at 300 s (15 instances renewing twice), 5 instances dead since 0.
        r.renewals.clear();
        for i in 0..15 {
            r.heartbeat(s(250), i);
            r.heartbeat(s(280), i);
        }
        r.next_eviction = s(300);
        let mut out = Vec::new();
        r.tick(s(300), &mut rng, &mut out);
        assert!(out.is_empty(), "{out:?}");
        assert_eq!(r.preserved_runs, 1);
        assert!((15..20).all(|i| r.status(i) == Status::Healthy));
    }

    #[test]
    fn s15_2_b3_one_run_evicts_at_most_fifteen_percent() {
        let leases = eureka_with(false);
        let mut r = Registry::new(leases, None, 100);
        let mut rng = rng();
        for i in 0..100 {
            r.register(s(0), i);
        }
        for i in 30..100 {
            r.heartbeat(s(200), i);
        }
        r.next_eviction = s(240);
        let mut out = Vec::new();
        r.tick(s(240), &mut rng, &mut out);
        assert_eq!(out.len(), 15);
        assert!(out.iter().all(|c| c.instance < 30 && c.to == Status::Gone));
    }

    #[test]
    fn s15_3_b1_readiness_removed_after_three_failures_readded_after_one_success() {
        let th = Thresholds {
            failures: 3,
            successes: 1,
        };
        let mut r = Registry::new(ttl(3600, 3600, 3600), Some(th), 1);
        r.register(s(0), 0);
        assert!(!r.routable(0), "not ready before the first success");
        r.check_result(s(0), 0, true);
        assert!(r.routable(0));
        // Unresponsive from 0: probes at 10, 20, 30 s time out at 11, 21, 31 s.
        for t in [11, 21] {
            r.check_result(s(t), 0, false);
            assert!(r.routable(0));
        }
        r.check_result(s(31), 0, false);
        assert!(!r.routable(0));
        r.check_result(s(41), 0, true);
        assert!(r.routable(0));
    }

    #[test]
    fn draining_and_deregistering_stop_traffic() {
        let mut r = Registry::new(ttl(30, 60, 10), None, 1);
        r.register(s(0), 0);
        assert!(r.routable(0));
        assert_eq!(r.drain(s(5), 0).map(|c| c.to), Some(Status::Draining));
        assert!(!r.routable(0));
        assert_eq!(r.deregister(s(6), 0).map(|c| c.to), Some(Status::Gone));
        assert_eq!(
            r.heartbeat(s(7), 0),
            None,
            "a gone instance's heartbeat is ignored"
        );
    }

    proptest::proptest! {
        /// Whatever happens, an instance has exactly one status, and only a healthy one is
        /// routable (never "healthy and gone").
        #[test]
        fn routable_iff_healthy(ops in proptest::collection::vec((0u8..6, 0usize..4, 0u64..400), 1..300)) {
            let th = Thresholds { failures: 2, successes: 2 };
            for leases in [ttl(30, 60, 10), eureka()] {
                let mut r = Registry::new(leases, Some(th), 4);
                let mut rng = rng();
                let mut ops = ops.clone();
                ops.sort_by_key(|o| o.2);
                for (op, i, t) in ops {
                    let now = s(t);
                    let mut out = Vec::new();
                    match op {
                        0 => { r.register(now, i); }
                        1 => { r.heartbeat(now, i); }
                        2 => { r.check_result(now, i, t % 3 != 0); }
                        3 => { r.drain(now, i); }
                        4 => { r.deregister(now, i); }
                        _ => r.tick(now, &mut rng, &mut out),
                    }
                    for c in &out {
                        proptest::prop_assert_ne!(c.from, c.to);
                    }
                    for k in 0..4 {
                        proptest::prop_assert_eq!(r.routable(k), r.status(k) == Status::Healthy);
                    }
                }
            }
        }
    }
}
