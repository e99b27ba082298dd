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
//!
//! With third-party registration (`kind = "registrar"`) instances neither register nor
//! heartbeat: a registrar looks at them every poll interval and registers the ones running,
//! deregisters the ones gone (a paused process still looks alive to it).
//!
//! The registry can be down (an outage: no heartbeats, checks or refreshes; its health loop
//! stands still; on return every registration counts as renewed) or cut off from one service
//! (that service's heartbeats and checks are lost, and its own refreshes fail). A caller
//! whose refresh fails keeps its stale list. With `service = ...` the registry runs as that
//! service, and every registration, heartbeat, check result and refresh is a request to it
//! (`server.rs`).

mod actor;
mod server;

use super::*;
use crate::model::spec::RegistryOp;
use crate::policy::registry::{Change, Registry};
pub(super) use actor::Directory;
use actor::Looked;
pub(super) use server::{Answer, Clients};

/// The endpoint index that marks a health-check request.
pub(super) const PROBE: u32 = u32::MAX - 1;

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
            // The registry's own service is found by configuration: it does not register.
            let own = reg
                .server
                .as_ref()
                .is_some_and(|srv| srv.service.0 as usize == s);
            for k in (0..n).filter(|&k| self.insts[first + k].present && !own) {
                registry.register(SimTime::ZERO, k);
                // Instances were running before t = 0: they start passing.
                registry.assume_passing(k);
            }
            let mut rng = SimRng::for_component(seed, &format!("registry:{}", svc.name));
            let first = self.svcs[s].first_instance;
            for k in (0..n as u32).filter(|_| !own) {
                let at =
                    SimTime::ZERO.after(SimDuration((rng.unit() * reg.heartbeat.0 as f64) as u64));
                if self.self_registers() {
                    self.engine
                        .schedule_at(at, Ev::Heartbeat { inst: first + k });
                }
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
            self.directory.add(registry, rng);
        }
        if reg.server.is_some() {
            self.reg_clients = Some(Clients::new(self.insts.len(), self.edges.len(), seed));
        }
        for k in (0..self.edges.len()).filter(|&k| !self.pairs[k].per_instance) {
            let e = &mut self.edges[k];
            // Callers start knowing the registry as it is at t = 0.
            let to = e.to as usize;
            e.cache = (0..e.active.len())
                .map(|j| self.directory.routable(to, j))
                .collect();
            let at = SimTime::ZERO.after(SimDuration(
                (e.lb_rng.unit() * self.spec.services[e.from as usize].cache_ttl(reg).0 as f64)
                    as u64,
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
        if runs && reg.server.is_some() {
            // A request to the registry: the next heartbeat is due when it ends.
            self.registry_send(now, s, RegistryOp::Heartbeat, inst, false);
            return;
        }
        if runs && self.directory.reaches(s) {
            let c = self.directory.heartbeat(now, s, k, x.draining);
            self.registry_changed(now, s, c);
        }
        self.engine
            .schedule_at(now.after(reg.heartbeat), Ev::Heartbeat { inst });
    }

    /// A service's health loop.
    pub(super) fn on_registry_tick(&mut self, now: SimTime, svc: u32) {
        let reg = self.spec.registry.as_ref().expect("discovery on");
        let s = svc as usize;
        self.engine
            .schedule_at(now.after(reg.tick), Ev::RegistryTick { svc });
        if reg.server.is_some() {
            // Whether its service runs decides whether the registry is down.
            self.reach_registry(now, s);
        }
        if self.directory.is_down() {
            // Down: it stands still.
            return;
        }
        if !self.self_registers() {
            self.registrar_poll(now, s);
            return;
        }
        for c in self.directory.tick(now, s) {
            self.registry_changed(now, s, Some(c));
        }
    }

    /// Instances register and heartbeat themselves (not with a registrar).
    pub(super) fn self_registers(&self) -> bool {
        self.spec
            .registry
            .as_ref()
            .is_some_and(|r| r.leases != crate::policy::registry::Leases::Registrar)
    }

    /// Whether instance `i` tells the registry itself that it starts, drains or stops: it
    /// registers itself, and can reach the registry (a registrar notices on its own; an
    /// instance cut off from the registry cannot deregister and expires instead).
    pub(super) fn tells_registry(&self, i: usize) -> bool {
        let s = self.insts[i].service as usize;
        self.self_registers() && self.directory.reaches(s)
    }

    /// The registrar looks at service `s`'s instances and brings the registry in line: running
    /// ones registered, draining ones draining, stopped or crashed ones deregistered.
    fn registrar_poll(&mut self, now: SimTime, s: usize) {
        if self.directory.is_cut(s) {
            return;
        }
        let first = self.svcs[s].first_instance as usize;
        for k in 0..self.svcs[s].instances as usize {
            let x = &self.insts[first + k];
            let looked = Looked {
                running: x.present && !x.fault.down && x.booting.is_none(),
                draining: x.draining,
            };
            let c = self.directory.registrar_look(now, s, k, looked);
            self.registry_changed(now, s, c);
        }
    }

    /// A caller's cache refresh: it now sees what the registry lists as healthy.
    pub(super) fn on_cache_refresh(&mut self, now: SimTime, edge: u32) {
        let reg = self.spec.registry.as_ref().expect("discovery on");
        let from = self.edges[edge as usize].from as usize;
        if reg.server.is_some() {
            // A lookup request: the next refresh is due when it ends.
            self.registry_send(now, from, RegistryOp::Lookup, edge, false);
            return;
        }
        self.engine.schedule_at(
            now.after(self.spec.services[from].cache_ttl(reg)),
            Ev::CacheRefresh { edge },
        );
        if !self.directory.reaches(from) {
            // The refresh fails: the caller keeps its stale list.
            if now >= self.warmup {
                self.edges[edge as usize].stats.failed_refreshes += 1;
            }
            return;
        }
        self.refresh_cache(now, edge as usize);
    }

    /// Edge `edge`'s cache now lists what the registry lists as healthy.
    fn refresh_cache(&mut self, now: SimTime, edge: usize) {
        let e = &mut self.edges[edge];
        let to = e.to as usize;
        let mut changed = false;
        for k in 0..e.cache.len() {
            let listed = self.directory.routable(to, k);
            changed |= e.cache[k] != listed;
            e.cache[k] = listed;
        }
        if changed {
            let sees: Vec<u32> = (0..e.cache.len() as u32)
                .filter(|&k| e.cache[k as usize])
                .collect();
            let spec = self.spec;
            self.log.push(StateEvent {
                t_s: secs(now),
                subject: e.name(spec),
                change: results::events::Change::Discovery {
                    sees,
                    of: e.cache.len() as u32,
                },
            });
        }
    }

    /// A health check of instance `inst` is due: send it (a request to its health endpoint).
    pub(super) fn on_probe(&mut self, now: SimTime, inst: u32) {
        let reg = self.spec.registry.as_ref().expect("discovery on");
        let checks = reg.checks.as_ref().expect("checks on");
        let i = inst as usize;
        let (s, k) = self.local(i);
        self.engine
            .schedule_at(now.after(checks.interval), Ev::Probe { inst });
        if !self.directory.checked(s, k) || self.directory.is_down() {
            return;
        }
        if self.directory.is_cut(s) {
            // The checker cannot reach the instance: no answer, so the check fails when
            // its timeout expires, as a check lost on the network does.
            self.engine
                .schedule_at(now.after(checks.timeout), Ev::ProbeLost { inst });
            return;
        }
        let req = Req::new(
            now,
            s as u32,
            inst,
            PROBE,
            Origin::Probe,
            State::Sent,
            false,
        );
        let Some(id) = self.alloc(req) else { return };
        self.live_probes += 1;
        let lane = self.lane(Lane::Probe(s as u32));
        self.reqs[id].timeout = Some(self.engine.schedule_timer(
            lane,
            now.after(checks.timeout),
            Ev::Timeout { req: id },
        ));
        self.on_deliver(now, id);
    }

    /// A health check that never reached its instance timed out.
    pub(super) fn on_probe_lost(&mut self, now: SimTime, inst: u32) {
        let (s, k) = self.local(inst as usize);
        if !self.directory.checked(s, k) {
            return;
        }
        self.check_done(now, s, k, false);
    }

    /// A check of service `s`'s instance `k` ended: its result reaches the registry (as a
    /// request, with a registry service).
    fn check_done(&mut self, now: SimTime, s: usize, k: usize, ok: bool) {
        if self.registry_server().is_some() {
            let inst = self.svcs[s].first_instance + k as u32;
            self.registry_send(now, s, RegistryOp::Report, inst, ok);
            return;
        }
        let c = self.directory.registry(s).check_result(now, k, ok);
        self.registry_changed(now, s, c);
    }

    /// A health check ended: `ok` when it answered in time with a success.
    pub(super) fn probe_result(&mut self, now: SimTime, id: ReqId, ok: bool) {
        let i = self.reqs[id].instance as usize;
        let (s, k) = self.local(i);
        self.check_done(now, s, k, ok);
    }

    /// A restarted instance finished booting: it listens and registers.
    pub(super) fn on_boot(&mut self, now: SimTime, inst: u32) {
        let i = inst as usize;
        if self.insts[i].booting != Some(now) {
            return;
        }
        self.insts[i].booting = None;
        self.insts[i].booted_at = Some(now);
        self.insts[i].fault.down = false;
        let (s, k) = self.local(i);
        if self.self_registers() && self.registry_server().is_some() {
            if !self.is_registry_instance(i) {
                self.registry_send(now, s, RegistryOp::Register, inst, false);
            }
        } else if self.self_registers() && self.directory.reaches(s) {
            let c = self.directory.registry(s).register(now, k);
            self.registry_changed(now, s, c);
        }
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
            subject: format!("{}/{}", self.spec.services[s].name, c.instance),
            change: results::events::Change::Registry {
                from: c.from,
                to: c.to,
                why: c.why.into(),
            },
        });
        // A rolling update waits on readiness as the registry sees it.
        self.rollout_step(now, s);
    }
}
