//! Canary deployments: a new version's instances beside the stable ones, a traffic weight
//! that follows a schedule, and an automatic rollback when the canary's error rate or p99
//! over a window crosses a threshold (the weight drops to 0 and stays there).

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

impl World<'_> {
    /// Sets up every canary: its first weight and its timers.
    pub(super) fn start_canaries(&mut self) {
        for (s, spec) in self.spec.services.iter().enumerate() {
            let Some(c) = &spec.canary else { continue };
            self.svcs[s].canary = Some(Canary {
                weight: 0.0,
                next_step: 0,
                rolled_back: None,
                rng: SimRng::for_component(
                    self.spec.seed,
                    &format!("service:{}:canary", spec.name),
                ),
                requests: 0,
                errors: 0,
                latency: Latency::new(2),
                total_requests: 0,
                total_errors: 0,
            });
            self.engine
                .schedule_at(c.weights[0].0, Ev::CanaryWeight { svc: s as u32 });
            if let Some(r) = &c.rollback {
                self.engine.schedule_at(
                    SimTime::ZERO.after(r.window),
                    Ev::CanaryCheck { svc: s as u32 },
                );
            }
        }
    }

    /// The canary's weight schedule moves on.
    pub(super) fn on_canary_weight(&mut self, now: SimTime, svc: u32) {
        let s = svc as usize;
        let spec = self.spec.services[s].canary.as_ref().expect("canary");
        let c = self.svcs[s].canary.as_mut().expect("canary");
        let (_, w) = spec.weights[c.next_step];
        c.next_step += 1;
        if let Some(&(at, _)) = spec.weights.get(c.next_step) {
            self.engine.schedule_at(at, Ev::CanaryWeight { svc });
        }
        if c.rolled_back.is_some() || c.weight == w {
            return;
        }
        let from = c.weight;
        c.weight = w;
        self.log.push(StateEvent {
            t_s: secs(now),
            kind: "canary",
            subject: self.spec.services[s].name.clone(),
            detail: format!("weight {from}% -> {w}%"),
        });
    }

    /// The rollback check at the end of a window.
    pub(super) fn on_canary_check(&mut self, now: SimTime, svc: u32) {
        let s = svc as usize;
        let spec = self.spec.services[s].canary.as_ref().expect("canary");
        let r = spec.rollback.expect("rollback");
        let c = self.svcs[s].canary.as_mut().expect("canary");
        let (requests, errors) = (
            std::mem::take(&mut c.requests),
            std::mem::take(&mut c.errors),
        );
        let p99_ms = c.latency.percentile_ns(99.0) as f64 / 1e6;
        c.latency.reset();
        if c.rolled_back.is_some() {
            return;
        }
        self.engine
            .schedule_at(now.after(r.window), Ev::CanaryCheck { svc });
        if requests < r.min_requests {
            return;
        }
        let rate = errors as f64 / requests as f64;
        let why = match (r.error_rate, r.p99) {
            (Some(t), _) if rate > t => format!("error rate {rate:.3} > {t} over {}", r.window),
            (_, Some(t)) if p99_ms > t.0 as f64 / 1e6 => {
                format!("p99 {p99_ms:.1} ms > {t} over {}", r.window)
            }
            _ => return,
        };
        c.rolled_back = Some(now);
        c.weight = 0.0;
        self.log.push(StateEvent {
            t_s: secs(now),
            kind: "canary",
            subject: self.spec.services[s].name.clone(),
            detail: format!("rolled back: {why} ({requests} requests)"),
        });
    }

    /// Records a request the canary answered.
    pub(super) fn canary_request(&mut self, s: usize, outcome: Outcome, latency_ns: u64) {
        if let Some(c) = self.svcs[s].canary.as_mut() {
            c.requests += 1;
            c.total_requests += 1;
            if outcome != Outcome::Ok {
                c.errors += 1;
                c.total_errors += 1;
            }
            c.latency.record(latency_ns);
        }
    }

    /// Which version a new request to service `s` goes to: true for the canary.
    pub(super) fn pick_version(&mut self, s: usize) -> Option<bool> {
        let c = self.svcs[s].canary.as_mut()?;
        Some(c.rng.chance(c.weight / 100.0))
    }
}
