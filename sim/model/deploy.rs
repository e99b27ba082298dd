//! Deployments. A canary: a new version's instances beside the stable ones, a traffic weight
//! that follows a schedule (a fixed split, or a blue-green switch, are schedules too), routes
//! by header or key, and an automatic rollback when the canary's error rate or p99 over a
//! window crosses a threshold (the weight drops to 0 and stays there). A rolling update:
//! new-version instances replace the old ones in batches bounded by max surge and max
//! unavailable, each old one draining (or not) before it stops.

use super::*;

/// Per-service canary state.
pub(super) struct Canary {
    /// Percent of traffic to the canary now.
    pub(super) weight: f64,
    /// The next weight step.
    next_step: usize,
    pub(super) rolled_back: Option<SimTime>,
    pub(super) rng: SimRng,
    /// The current window: requests, errors, latency.
    requests: u64,
    errors: u64,
    latency: Latency,
    /// Since t = 0.
    pub(super) total_requests: u64,
    pub(super) total_errors: u64,
}

/// Whose traffic shift: a service's canary, or a migration.
#[derive(Clone, Copy, Debug)]
pub(super) enum Shifter {
    Canary(u32),
    Migration(u32),
}

impl Canary {
    fn new(seed: u64, stream: &str) -> Self {
        Canary {
            weight: 0.0,
            next_step: 0,
            rolled_back: None,
            rng: SimRng::for_component(seed, stream),
            requests: 0,
            errors: 0,
            latency: Latency::new(2),
            total_requests: 0,
            total_errors: 0,
        }
    }

    /// Where the split ended.
    pub(super) fn result(&self) -> CanaryResult {
        CanaryResult {
            weight_pct: self.weight,
            rolled_back_at_s: self.rolled_back.map(secs),
            requests: self.total_requests,
            failed: self.total_errors,
        }
    }

    /// Records a request the new side answered.
    pub(super) fn record(&mut self, outcome: Outcome, latency_ns: u64) {
        self.requests += 1;
        self.total_requests += 1;
        if outcome != Outcome::Ok {
            self.errors += 1;
            self.total_errors += 1;
        }
        self.latency.record(latency_ns);
    }

    /// Whether a request with `key` and `headers` goes to the new side: the first route
    /// that matches decides; otherwise the weight does.
    fn pick(&mut self, spec: &ShiftSpec, key: u64, headers: u8) -> bool {
        for r in &spec.routes {
            let hit = match r.matches {
                RouteMatch::Header(bit) => headers & (1 << bit) != 0,
                RouteMatch::Keys(lo, hi) => (lo..=hi).contains(&key),
            };
            // A rolled-back shift sends nothing to the new side, routed or not.
            if hit {
                return r.canary && self.rolled_back.is_none();
            }
        }
        self.rng.chance(self.weight / 100.0)
    }
}

impl World<'_> {
    /// Sets up every canary and migration: its first weight and its timers.
    pub(super) fn start_canaries(&mut self) {
        let seed = self.spec.seed;
        for (s, spec) in self.spec.services.iter().enumerate() {
            if spec.canary.is_some() {
                let stream = format!("service:{}:canary", spec.name);
                self.svcs[s].canary = Some(Canary::new(seed, &stream));
                self.start_shift(Shifter::Canary(s as u32));
            }
        }
        for (m, spec) in self.spec.migrations.iter().enumerate() {
            let stream = format!("migration:{}", spec.name);
            self.migrations.push(Canary::new(seed, &stream));
            self.start_shift(Shifter::Migration(m as u32));
        }
    }

    fn start_shift(&mut self, who: Shifter) {
        let (spec, _, _) = self.shift(who);
        let (first, window) = (spec.weights[0].0, spec.rollback.map(|r| r.window));
        self.engine.schedule_at(first, who.weight_event());
        if let Some(w) = window {
            self.engine
                .schedule_at(SimTime::ZERO.after(w), who.check_event());
        }
    }

    /// A shift's spec, state and name (the service's, or the migration's).
    fn shift(&mut self, who: Shifter) -> (&ShiftSpec, &mut Canary, &str) {
        let spec = self.spec;
        match who {
            Shifter::Canary(s) => {
                let s = s as usize;
                (
                    &spec.services[s].canary.as_ref().expect("canary").shift,
                    self.svcs[s].canary.as_mut().expect("canary"),
                    &spec.services[s].name,
                )
            }
            Shifter::Migration(m) => {
                let m = m as usize;
                (
                    &spec.migrations[m].shift,
                    &mut self.migrations[m],
                    &spec.migrations[m].label,
                )
            }
        }
    }

    /// A canary's or migration's weight schedule moves on.
    pub(super) fn on_shift_weight(&mut self, now: SimTime, who: Shifter) {
        let (spec, c, name) = self.shift(who);
        let (_, w) = spec.weights[c.next_step];
        c.next_step += 1;
        let next = spec.weights.get(c.next_step).map(|&(at, _)| at);
        let moved = (c.rolled_back.is_none() && c.weight != w).then(|| {
            let from = std::mem::replace(&mut c.weight, w);
            StateEvent {
                t_s: secs(now),
                subject: name.to_string(),
                change: Change::CanaryWeight {
                    from_pct: from,
                    to_pct: w,
                },
            }
        });
        if let Some(at) = next {
            self.engine.schedule_at(at, who.weight_event());
        }
        self.log.extend(moved);
    }

    /// The rollback check at the end of a window: judges the window, then starts the next
    /// (none once rolled back).
    pub(super) fn on_shift_check(&mut self, now: SimTime, who: Shifter) {
        let (spec, c, name) = self.shift(who);
        let r = spec.rollback.expect("rollback");
        let (requests, errors) = (
            std::mem::take(&mut c.requests),
            std::mem::take(&mut c.errors),
        );
        let p99_ms = c.latency.percentile_ns(99.0) as f64 / 1e6;
        c.latency.reset();
        if c.rolled_back.is_some() {
            return;
        }
        let rate = errors as f64 / requests.max(1) as f64;
        let why = match (r.error_rate, r.p99) {
            _ if requests < r.min_requests => None,
            (Some(t), _) if rate > t => {
                Some(format!("error rate {rate:.3} > {t} over {}", r.window))
            }
            (_, Some(t)) if p99_ms > t.0 as f64 / 1e6 => {
                Some(format!("p99 {p99_ms:.1} ms > {t} over {}", r.window))
            }
            _ => None,
        };
        let rolled_back = why.map(|why| {
            c.rolled_back = Some(now);
            c.weight = 0.0;
            StateEvent {
                t_s: secs(now),
                subject: name.to_string(),
                change: Change::CanaryRollback {
                    why: why.into(),
                    requests,
                },
            }
        });
        self.engine
            .schedule_at(now.after(r.window), who.check_event());
        self.log.extend(rolled_back);
    }

    /// Records a request the canary answered.
    pub(super) fn canary_request(&mut self, s: usize, outcome: Outcome, latency_ns: u64) {
        if let Some(c) = self.svcs[s].canary.as_mut() {
            c.record(outcome, latency_ns);
        }
    }

    /// Which version a new request to service `s` goes to: true for the canary. The first
    /// route that matches the request's key or headers decides; otherwise the weight does.
    pub(super) fn pick_version(&mut self, s: usize, key: u64, headers: u8) -> Option<bool> {
        let c = self.svcs[s].canary.as_mut()?;
        let spec = &self.spec.services[s].canary.as_ref().expect("canary").shift;
        Some(c.pick(spec, key, headers))
    }

    /// Whether migration `m` sends this call to the replacement.
    pub(super) fn pick_side(&mut self, m: usize, key: u64, headers: u8) -> bool {
        let spec = &self.spec.migrations[m].shift;
        self.migrations[m].pick(spec, key, headers)
    }
}

impl Shifter {
    fn weight_event(self) -> Ev {
        match self {
            Shifter::Canary(svc) => Ev::CanaryWeight { svc },
            Shifter::Migration(m) => Ev::MigrationWeight { m },
        }
    }

    fn check_event(self) -> Ev {
        match self {
            Shifter::Canary(svc) => Ev::CanaryCheck { svc },
            Shifter::Migration(m) => Ev::MigrationCheck { m },
        }
    }
}

/// Per-service rolling-update state.
#[derive(Clone, Debug, Default)]
pub(super) struct Rollout {
    pub(super) started: Option<SimTime>,
    pub(super) finished: Option<SimTime>,
    /// Old instances stopped so far.
    pub(super) replaced: u32,
    /// A reconciliation is running (stopping an instance changes the registry, which asks
    /// for another).
    in_step: bool,
}

impl World<'_> {
    /// Schedules every rolling update's start.
    pub(super) fn start_rollouts(&mut self) {
        for (s, spec) in self.spec.services.iter().enumerate() {
            if let Some(r) = &spec.rollout {
                self.svcs[s].rollout = Some(Rollout::default());
                self.engine
                    .schedule_at(r.at, Ev::RolloutStart { svc: s as u32 });
            }
        }
    }

    pub(super) fn on_rollout_start(&mut self, now: SimTime, svc: u32) {
        let s = svc as usize;
        self.svcs[s].rollout.as_mut().expect("rollout").started = Some(now);
        let r = self.spec.services[s].rollout.as_ref().expect("rollout");
        self.log.push(StateEvent {
            t_s: secs(now),
            subject: self.spec.services[s].name.clone(),
            change: Change::RolloutStarted {
                max_surge: r.max_surge,
                max_unavailable: r.max_unavailable,
                drain: r.drain.then_some(r.grace),
            },
        });
        self.rollout_step(now, s);
    }

    /// A new-version instance has booted: it serves (and registers, with a registry).
    pub(super) fn on_started(&mut self, now: SimTime, inst: u32) {
        let i = inst as usize;
        let s = self.insts[i].service as usize;
        let x = &mut self.insts[i];
        x.provisioning = false;
        x.present = true;
        x.booted_at = Some(now);
        if self.tells_registry(i) {
            let (s, k) = self.local(i);
            let c = self.directory.registry(s).register(now, k);
            self.registry_changed(now, s, c);
        }
        self.log_instance(
            now,
            i,
            InstanceState::Up,
            "new version started by the rollout",
        );
        self.rollout_step(now, s);
    }

    /// Ready to take traffic: serving, and listed by the registry when there is one.
    fn ready(&self, i: usize) -> bool {
        let x = &self.insts[i];
        x.present
            && !x.draining
            && match self.directory.on() {
                false => true,
                true => {
                    let (s, k) = self.local(i);
                    self.directory.routable(s, k)
                }
            }
    }

    /// Kubernetes' Deployment controller, one reconciliation: start new instances while the
    /// total stays within replicas + max surge, stop old ones while the ready count stays at
    /// least replicas − max unavailable; repeat until nothing moves.
    pub(super) fn rollout_step(&mut self, now: SimTime, s: usize) {
        let Some(state) = &self.svcs[s].rollout else {
            return;
        };
        if state.started.is_none() || state.finished.is_some() || state.in_step {
            return;
        }
        self.svcs[s].rollout.as_mut().expect("rollout").in_step = true;
        let spec = &self.spec.services[s];
        let r = spec.rollout.as_ref().expect("rollout");
        let first = self.svcs[s].first_instance as usize;
        let slots = first..first + spec.slots() as usize;
        let replicas = spec.replicas;
        loop {
            let mut moved = false;
            let count = |f: &dyn Fn(usize) -> bool| slots.clone().filter(|&i| f(i)).count() as u32;
            let old = count(&|i| self.insts[i].present && !self.insts[i].v2);
            let new = count(&|i| {
                self.insts[i].v2 && (self.insts[i].present || self.insts[i].provisioning)
            });
            let ready = count(&|i| self.ready(i));
            let free = (first + spec.stable_slots() as usize..slots.end)
                .find(|&i| !self.insts[i].present && !self.insts[i].provisioning);
            if let (true, Some(i)) = (new < replicas && old + new < replicas + r.max_surge, free) {
                let x = &mut self.insts[i];
                x.provisioning = true;
                x.v2 = true;
                self.engine
                    .schedule_at(now.after(r.startup), Ev::Started { inst: i as u32 });
                moved = true;
            } else {
                // Stop one old instance that still serves (draining ones are already going):
                // an unready one first, which costs no availability, else a ready one while
                // the ready count stays at least replicas − max unavailable.
                let serving = |i: usize| {
                    self.insts[i].present && !self.insts[i].v2 && !self.insts[i].draining
                };
                let unready = slots.clone().find(|&i| serving(i) && !self.ready(i));
                let min_ready = replicas.saturating_sub(r.max_unavailable);
                let pick = unready.or_else(|| {
                    (ready > min_ready)
                        .then(|| slots.clone().find(|&i| serving(i)))
                        .flatten()
                });
                if let Some(i) = pick {
                    self.stop_old(now, i, r.drain, r.grace);
                    self.svcs[s].rollout.as_mut().expect("rollout").replaced += 1;
                    moved = true;
                }
            }
            if !moved {
                break;
            }
        }
        self.svcs[s].rollout.as_mut().expect("rollout").in_step = false;
        let new_ready = slots
            .clone()
            .filter(|&i| self.insts[i].v2 && self.ready(i))
            .count() as u32;
        let old = slots
            .clone()
            .filter(|&i| self.insts[i].present && !self.insts[i].v2)
            .count();
        if old == 0 && new_ready >= replicas {
            let state = self.svcs[s].rollout.as_mut().expect("rollout");
            state.finished = Some(now);
            let took = now.since(state.started.expect("started"));
            self.log.push(StateEvent {
                t_s: secs(now),
                subject: self.spec.services[s].name.clone(),
                change: Change::RolloutFinished { replicas, took },
            });
        }
    }

    /// An old instance leaves: drained (deregistered, serving what still comes for `grace`,
    /// then gone), or stopped at once (deregistered; what it holds is dropped, and callers
    /// whose caches still list it are refused).
    fn stop_old(&mut self, now: SimTime, i: usize, drain: bool, grace: SimDuration) {
        if drain {
            self.log_instance(now, i, InstanceState::Draining, "replaced by the rollout");
            self.start_drain(now, i, grace);
            return;
        }
        self.take_out(now, i);
        self.log_instance(
            now,
            i,
            InstanceState::Down,
            "stopped by the rollout without draining",
        );
    }
}
