//! Discovery: each service's registry, its instances' heartbeats and boots, active health
//! checks as real requests, and the callers' cached instance lists.
//!
//! Instances renew their registration every `heartbeat` while they run (a crashed or paused
//! process does not). The registry's health loop turns stale ones unhealthy and reaps them.
//! Callers never read the registry: every edge keeps a cached list, refreshed every
//! `cache_ttl` (each edge at its own phase), and its balancer picks only among listed
//! instances, so a caller keeps calling an instance that died until its cache learns it.
//! A health check is a request to the instance's health endpoint: it waits for a worker like
//! any request, so a loaded instance can fail its checks.

use super::*;
use crate::policy::registry::{Change, Registry, Status};

/// The endpoint index that marks a health-check request.
pub(super) const PROBE: u32 = u32::MAX - 1;

/// Per-service discovery state.
pub(super) struct Discovery {
    pub(super) registry: Registry,
    pub(super) rng: SimRng,
}

impl World<'_> {
    /// Registers every instance at t = 0 and schedules heartbeats, health loops, checks and
    /// cache refreshes, each at its own random phase.
    pub(super) fn start_discovery(&mut self) {
        let Some(reg) = &self.spec.registry else {
            return;
        };
        let seed = self.spec.seed;
        for (s, svc) in self.spec.services.iter().enumerate() {
            let n = svc.slots() as usize;
            let mut registry =
                Registry::new(reg.leases, reg.checks.as_ref().map(|c| c.thresholds), n);
            // Slots not in service yet (an autoscaler's spares, a rollout's surge) are not
            // registered.
            let first = self.svcs[s].first_instance as usize;
            for k in (0..n).filter(|&k| self.insts[first + k].present) {
                registry.register(SimTime::ZERO, k);
                // Instances were running before t = 0: they start passing.
                registry.assume_passing(k);
            }
            let mut rng = SimRng::for_component(seed, &format!("registry:{}", svc.name));
            let first = self.svcs[s].first_instance;
            for k in 0..n as u32 {
                let at =
                    SimTime::ZERO.after(SimDuration((rng.unit() * reg.heartbeat.0 as f64) as u64));
                self.engine
                    .schedule_at(at, Ev::Heartbeat { inst: first + k });
                if let Some(c) = &reg.checks {
                    let at =
                        SimTime::ZERO.after(SimDuration((rng.unit() * c.interval.0 as f64) as u64));
                    self.engine.schedule_at(at, Ev::Probe { inst: first + k });
                }
            }
            self.engine.schedule_at(
                SimTime::ZERO.after(reg.tick),
                Ev::RegistryTick { svc: s as u32 },
            );
            self.discovery.push(Discovery { registry, rng });
        }
        for k in 0..self.edges.len() {
            let e = &mut self.edges[k];
            // Callers start knowing the registry as it is at t = 0.
            let d = &self.discovery[e.to as usize];
            e.cache = (0..e.active.len())
                .map(|j| d.registry.routable(j))
                .collect();
            let at = SimTime::ZERO.after(SimDuration(
                (e.lb_rng.unit() * reg.cache_ttl.0 as f64) as u64,
            ));
            self.engine
                .schedule_at(at, Ev::CacheRefresh { edge: k as u32 });
        }
    }

    /// Instance `inst`'s heartbeat is due: it renews if its process runs.
    pub(super) fn on_heartbeat(&mut self, now: SimTime, inst: u32) {
        let reg = self.spec.registry.as_ref().expect("discovery on");
        let i = inst as usize;
        let (s, k) = self.local(i);
        let x = &self.insts[i];
        let runs = x.present && !x.fault.down && x.paused_at.is_none();
        if runs {
            let c = self.discovery[s].registry.heartbeat(now, k);
            self.registry_changed(now, s, c);
        }
        self.engine
            .schedule_at(now.after(reg.heartbeat), Ev::Heartbeat { inst });
    }

    /// A service's health loop.
    pub(super) fn on_registry_tick(&mut self, now: SimTime, svc: u32) {
        let reg = self.spec.registry.as_ref().expect("discovery on");
        let s = svc as usize;
        let d = &mut self.discovery[s];
        let mut out = Vec::new();
        d.registry.tick(now, &mut d.rng, &mut out);
        for c in out {
            self.registry_changed(now, s, Some(c));
        }
        self.engine
            .schedule_at(now.after(reg.tick), Ev::RegistryTick { svc });
    }

    /// A caller's cache refresh: it now sees what the registry lists as healthy.
    pub(super) fn on_cache_refresh(&mut self, now: SimTime, edge: u32) {
        let reg = self.spec.registry.as_ref().expect("discovery on");
        let e = &mut self.edges[edge as usize];
        let d = &self.discovery[e.to as usize];
        let mut changed = false;
        for k in 0..e.cache.len() {
            let listed = d.registry.routable(k);
            changed |= e.cache[k] != listed;
            e.cache[k] = listed;
        }
        if changed {
            let seen: Vec<String> = (0..e.cache.len())
                .filter(|&k| e.cache[k])
                .map(|k| k.to_string())
                .collect();
            let spec = self.spec;
            self.log.push(StateEvent {
                t_s: secs(now),
                kind: "discovery",
                subject: format!(
                    "{}->{}",
                    spec.services[e.from as usize].name, spec.services[e.to as usize].name
                ),
                detail: format!("sees [{}] of {}", seen.join(" "), e.cache.len()),
            });
        }
        self.engine
            .schedule_at(now.after(reg.cache_ttl), Ev::CacheRefresh { edge });
    }

    /// A health check of instance `inst` is due: send it (a request to its health endpoint).
    pub(super) fn on_probe(&mut self, now: SimTime, inst: u32) {
        let reg = self.spec.registry.as_ref().expect("discovery on");
        let checks = reg.checks.as_ref().expect("checks on");
        let i = inst as usize;
        let (s, k) = self.local(i);
        self.engine
            .schedule_at(now.after(checks.interval), Ev::Probe { inst });
        if matches!(
            self.discovery[s].registry.status(k),
            Status::Gone | Status::Draining
        ) {
            return;
        }
        let mut req = Req::new(
            now,
            s as u32,
            inst,
            PROBE,
            NONE,
            NONE,
            NONE,
            State::Sent,
            false,
        );
        req.probe = true;
        let Some(id) = self.alloc(req) else { return };
        self.live_probes += 1;
        self.reqs[id as usize].timeout = Some(
            self.engine
                .schedule_at(now.after(checks.timeout), Ev::Timeout { req: id }),
        );
        self.on_deliver(now, id);
    }

    /// A health check ended: `ok` when it answered in time with a success.
    pub(super) fn probe_result(&mut self, now: SimTime, id: u32, ok: bool) {
        let i = self.reqs[id as usize].instance as usize;
        let (s, k) = self.local(i);
        let c = self.discovery[s].registry.check_result(now, k, ok);
        self.registry_changed(now, s, c);
    }

    /// A restarted instance finished booting: it listens and registers.
    pub(super) fn on_boot(&mut self, now: SimTime, inst: u32) {
        let i = inst as usize;
        if self.insts[i].booting != Some(now) {
            return;
        }
        self.insts[i].booting = None;
        self.insts[i].fault.down = false;
        let (s, k) = self.local(i);
        let c = self.discovery[s].registry.register(now, k);
        self.registry_changed(now, s, c);
        self.fill_workers(now, i);
    }

    /// (service, index within it) of instance `i`.
    pub(super) fn local(&self, i: usize) -> (usize, usize) {
        let s = self.insts[i].service as usize;
        (s, i - self.svcs[s].first_instance as usize)
    }

    pub(super) fn registry_changed(&mut self, now: SimTime, s: usize, c: Option<Change>) {
        let Some(c) = c else { return };
        if now >= self.warmup {
            self.svcs[s].registry_changes += 1;
        }
        self.log.push(StateEvent {
            t_s: secs(now),
            kind: "registry",
            subject: format!("{}/{}", self.spec.services[s].name, c.instance),
            detail: format!("{} -> {} ({})", c.from.name(), c.to.name(), c.why),
        });
        // A rolling update waits on readiness as the registry sees it.
        self.rollout_step(now, s);
    }
}
