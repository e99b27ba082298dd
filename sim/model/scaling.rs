//! Horizontal autoscaling (Kubernetes HPA semantics): every `interval`, desired =
//! ceil(current · metric / target), left alone within the tolerance, clamped to [min, max];
//! scale-ups start at once (instances serve after `provision`), scale-downs follow the highest
//! recommendation of the stabilization window and drain before they go.
//!
//! A service with an autoscaler owns `max` instance slots; the ones not in use are absent:
//! not listed by callers, refusing connections. A draining instance is no longer listed
//! (with a registry: deregistered, so callers' caches drop it) but finishes what it holds for
//! a grace period (30 s, Kubernetes' terminationGracePeriodSeconds) before it goes.

use super::*;

/// Kubernetes' default termination grace period.
const GRACE: SimDuration = SimDuration::from_secs(30);

/// Per-service autoscaler state.
#[derive(Clone, Debug, Default)]
pub(super) struct Scaler {
    /// (time, recommendation) over the stabilization window.
    recommendations: VecDeque<(SimTime, u32)>,
    /// Busy worker-time since the last evaluation, ns.
    pub(super) busy_ns: u128,
    pub(super) scale_ups: u64,
    pub(super) scale_downs: u64,
    pub(super) max_seen: u32,
}

impl World<'_> {
    /// Schedules every autoscaler's first evaluation.
    pub(super) fn start_scaling(&mut self) {
        for (s, spec) in self.spec.services.iter().enumerate() {
            if let Some(a) = &spec.autoscale {
                self.svcs[s].scaler = Some(Scaler {
                    max_seen: spec.replicas,
                    ..Scaler::default()
                });
                self.engine.schedule_at(
                    SimTime::ZERO.after(a.interval),
                    Ev::Autoscale { svc: s as u32 },
                );
            }
        }
    }

    /// The stable version's slots (the ones the autoscaler manages).
    fn slots(&self, s: usize) -> std::ops::Range<usize> {
        let first = self.svcs[s].first_instance as usize;
        first..first + self.spec.services[s].stable_slots() as usize
    }

    /// One evaluation of service `svc`'s autoscaler.
    pub(super) fn on_autoscale(&mut self, now: SimTime, svc: u32) {
        let s = svc as usize;
        let a = self.spec.services[s]
            .autoscale
            .as_ref()
            .expect("autoscaled");
        self.engine
            .schedule_at(now.after(a.interval), Ev::Autoscale { svc });
        self.account_busy(s, now);
        let slots = self.slots(s);
        let serving = slots
            .clone()
            .filter(|&i| self.insts[i].present && !self.insts[i].draining);
        let serving_n = serving.clone().count() as u32;
        let current = serving_n
            + slots
                .clone()
                .filter(|&i| self.insts[i].provisioning)
                .count() as u32;
        let (metric, target, name) = match a.target {
            ScaleTarget::Utilization(t) => {
                let busy =
                    std::mem::take(&mut self.svcs[s].scaler.as_mut().expect("scaler").busy_ns);
                // As the HPA does, instances not ready yet count with zero usage: otherwise every
                // round would ask again for what is already on its way.
                let cap = self.svcs[s].workers as f64 * current.max(1) as f64 * a.interval.0 as f64;

                (busy as f64 / cap, t, "utilization")
            }
            ScaleTarget::InFlight(t) => {
                let inflight: u32 = serving.map(|i| self.insts[i].in_flight).sum();
                (
                    inflight as f64 / current.max(1) as f64,
                    t,
                    "in flight per instance",
                )
            }
        };
        let ratio = metric / target;
        let mut desired = if (ratio - 1.0).abs() <= a.tolerance {
            current
        } else {
            (current as f64 * ratio).ceil() as u32
        };
        desired = desired.clamp(a.min, a.max);
        let window = a.scale_down_window;
        let sc = self.svcs[s].scaler.as_mut().expect("scaler");
        sc.recommendations.push_back((now, desired));
        while sc
            .recommendations
            .front()
            .is_some_and(|&(t, _)| now.since(t) > window)
        {
            sc.recommendations.pop_front();
        }
        if desired < current {
            // Scale down only as far as the highest recommendation in the window allows.
            desired = sc
                .recommendations
                .iter()
                .map(|r| r.1)
                .max()
                .unwrap_or(desired)
                .min(current);
        }
        if desired == current {
            return;
        }
        if desired > current {
            sc.scale_ups += 1;
        } else {
            sc.scale_downs += 1;
        }
        self.log.push(StateEvent {
            t_s: secs(now),
            subject: self.spec.services[s].name.clone(),
            change: Change::Autoscale {
                from: current,
                to: desired,
                metric: name.into(),
                value: metric,
                target,
            },
        });
        if desired > current {
            let provision = a.provision;
            let mut need = desired - current;
            for i in slots.clone() {
                let inst = &mut self.insts[i];
                if need == 0 {
                    break;
                }
                if !inst.present && !inst.provisioning {
                    inst.provisioning = true;
                    need -= 1;
                    self.engine
                        .schedule_at(now.after(provision), Ev::Provisioned { inst: i as u32 });
                }
            }
        } else {
            let mut extra = current - desired;
            for i in slots.rev() {
                if extra == 0 {
                    break;
                }
                if self.insts[i].present && !self.insts[i].draining {
                    extra -= 1;
                    self.start_drain(now, i, GRACE);
                }
            }
        }
    }

    /// A new instance is provisioned: it serves (and registers, with a registry).
    pub(super) fn on_provisioned(&mut self, now: SimTime, inst: u32) {
        let i = inst as usize;
        let s = self.insts[i].service as usize;
        self.account_present(s, now);
        let x = &mut self.insts[i];
        x.provisioning = false;
        x.present = true;
        x.booted_at = Some(now);
        let present = self.slots(s).filter(|&j| self.insts[j].present).count() as u32;
        let sc = self.svcs[s].scaler.as_mut().expect("scaler");
        sc.max_seen = sc.max_seen.max(present);
        if self.tells_registry(i) {
            let (s, k) = self.local(i);
            let c = self.directory.registry(s).register(now, k);
            self.registry_changed(now, s, c);
        }
        self.log_instance(now, i, InstanceState::Up, "provisioned by the autoscaler");
    }

    /// Instance `i` stops taking new traffic and goes after the grace period.
    pub(super) fn start_drain(&mut self, now: SimTime, i: usize, grace: SimDuration) {
        self.insts[i].draining = true;
        if self.tells_registry(i) {
            let (s, k) = self.local(i);
            let c = self.directory.registry(s).drain(now, k);
            self.registry_changed(now, s, c);
        }
        self.engine
            .schedule_at(now.after(grace), Ev::Drained { inst: i as u32 });
    }

    /// A draining instance's grace period is over: it goes (whatever it still holds is lost).
    pub(super) fn on_drained(&mut self, now: SimTime, inst: u32) {
        let i = inst as usize;
        if !self.insts[i].draining {
            return;
        }
        let s = self.insts[i].service as usize;
        self.account_present(s, now);
        self.insts[i].draining = false;
        self.take_out(now, i);
        if self.svcs[s].rollout.is_some() {
            self.log_instance(
                now,
                i,
                InstanceState::Down,
                "drained, replaced by the rollout",
            );
            self.rollout_step(now, s);
        } else {
            self.log_instance(now, i, InstanceState::Down, "scaled in");
        }
    }

    /// Instance `i` leaves service: no longer present, deregistered (when it tells the registry
    /// itself), and whatever it still holds is dropped.
    pub(super) fn take_out(&mut self, now: SimTime, i: usize) {
        self.insts[i].present = false;
        self.insts[i].epoch += 1;
        if self.tells_registry(i) {
            let (s, k) = self.local(i);
            let c = self.directory.registry(s).deregister(now, k);
            self.registry_changed(now, s, c);
        }
        self.kill_in_flight(now, i);
    }

    /// Integrates the instances present up to `now` (the denominator of utilization).
    pub(super) fn account_present(&mut self, s: usize, now: SimTime) {
        let present = self.slots(s).filter(|&i| self.insts[i].present).count() as u128;
        let svc = &mut self.svcs[s];
        let from = svc.present_since.max(self.warmup);
        if now > from {
            svc.present_ns += present * now.since(from).0 as u128;
        }
        svc.present_since = now;
    }
}
