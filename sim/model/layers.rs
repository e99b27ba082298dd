//! The resilience layers around calls and requests: instance picking (balancers, outlier
//! detection), bulkhead wake-ups, and the server side (rate limits, concurrency limits,
//! expired work, load shedding at dequeue).

use super::*;
use crate::policy::outlier::Change as HostChange;
use crate::policy::ratelimit::{Gcra, R4jLimiter, TokenBucket};

/// One rate limiter bucket of an instance.
#[derive(Clone, Debug)]
pub(super) enum RateLimiter {
    Bucket(TokenBucket),
    Gcra(Gcra),
    R4j(R4jLimiter),
}

impl RateLimiter {
    fn new(kind: &RateLimitKind) -> Self {
        match *kind {
            RateLimitKind::TokenBucket {
                max_tokens,
                tokens_per_fill,
                fill_interval,
            } => RateLimiter::Bucket(TokenBucket::new(max_tokens, tokens_per_fill, fill_interval)),
            RateLimitKind::Gcra { period, burst } => RateLimiter::Gcra(Gcra::new(1, period, burst)),
            RateLimitKind::Resilience4j {
                limit,
                period,
                timeout,
            } => RateLimiter::R4j(R4jLimiter::new(limit, period, timeout)),
        }
    }

    /// `Some(wait)`: allowed after `wait` (zero: at once); `None`: refused.
    fn allow(&mut self, now: SimTime) -> Option<SimDuration> {
        match self {
            RateLimiter::Bucket(b) => b.try_take(now).then_some(SimDuration::ZERO),
            RateLimiter::Gcra(g) => g.request(now, 1).allowed.then_some(SimDuration::ZERO),
            RateLimiter::R4j(l) => l.acquire(now, 1),
        }
    }
}

impl World<'_> {
    /// The instance an attempt on `edge` goes to, or `None` when no instance is usable
    /// (every one ejected and panic disabled: Envoy's "no healthy upstream").
    /// With zone-aware routing, only instances in the caller's `zone` are listed while at
    /// least `min_local` of them are usable (listed and not ejected); otherwise all are.
    pub(super) fn pick_host(
        &mut self,
        now: SimTime,
        edge: u32,
        key: u64,
        headers: u8,
        zone: u32,
    ) -> Option<u32> {
        let measured = now >= self.warmup;
        let to = self.edges[edge as usize].to as usize;
        let version = self.pick_version(to, key, headers);
        let e = &mut self.edges[edge as usize];
        let n = e.active.len() as u32;
        let Some(b) = e.balancer.as_mut() else {
            // Plain round robin, with no health to consult.
            let k = e.rr % n;
            e.rr = e.rr.wrapping_add(1);
            return Some(e.first_host + k);
        };
        e.hosts.clear();
        for k in 0..n as usize {
            let booted = self.insts[e.first_host as usize + k].booted_at;
            let ramp = match (e.slow_start, booted) {
                (Some((window, aggression, min)), Some(at)) => {
                    slow_start_factor(now.since(at), window, aggression, min)
                }
                _ => 1.0,
            };
            e.hosts.push(HostView {
                weight: e.weights.get(k).copied().unwrap_or(1),
                ramp,
                active: e.active[k],
                healthy: !e.outlier.as_ref().is_some_and(|d| d.is_ejected(k)),
                listed: match e.cache.get(k) {
                    Some(&listed) => listed,
                    // No registry: the caller knows which instances are in service.
                    None => {
                        let x = &self.insts[e.first_host as usize + k];
                        x.present && !x.draining
                    }
                },
            });
        }
        if let (Some(min_local), true) = (e.zone_aware, zone != NONE) {
            let first = e.first_host as usize;
            let local = |k: usize| self.insts[first + k].zone == zone;
            let usable_local = (0..n as usize)
                .filter(|&k| local(k) && e.hosts[k].listed && e.hosts[k].healthy)
                .count();
            if usable_local >= min_local as usize {
                for k in 0..n as usize {
                    e.hosts[k].listed &= local(k);
                }
            }
        }
        if let Some(canary) = version {
            // The traffic split: this request goes to one version, if it has a usable instance.
            let first = e.first_host as usize;
            let of = |k: usize| self.insts[first + k].v2 == canary;
            if (0..n as usize).any(|k| of(k) && e.hosts[k].listed && e.hosts[k].healthy) {
                for k in 0..n as usize {
                    e.hosts[k].listed &= of(k);
                }
            }
        }
        let before = b.panic_picks;
        let pick = b.pick(&e.hosts, key, &mut e.lb_rng).ok()?;
        if b.panic_picks > before && measured {
            e.stats.panic_picks += 1;
        }
        Some(e.first_host + pick as u32)
    }

    /// A call waiting for a bulkhead permit got one: send its attempt now.
    pub(super) fn wake(&mut self, now: SimTime, id: CallId) {
        let c = &mut self.calls[id];
        match c.bulkhead_wait.take() {
            Some(_) => {
                // The permit is held from now; the rest of the stack follows.
                let from = c.resume_layer as usize;
                let mut done = c.wait_done;
                if std::mem::take(&mut c.waiting_call) {
                    // A call-scoped permit: the call holds it across its attempts.
                    c.call_holds |= HOLD_BULKHEAD;
                    if self.pass_layers(now, id, Scope::Call, from, done).is_some() {
                        self.first_attempt(now, id);
                    }
                } else {
                    done.holds |= HOLD_BULKHEAD;
                    if let Some(done) = self.pass_layers(now, id, Scope::Attempt, from, done) {
                        self.dispatch(now, id, done);
                    }
                }
            }
            None => {
                // Nobody to hand the permit to after all: give it back.
                let edge = c.edge;
                if let Some(w) = self.edges[edge as usize]
                    .bulkhead
                    .as_mut()
                    .and_then(|b| b.release())
                {
                    self.woken.push(CallId(w));
                }
            }
        }
    }

    /// A bulkhead wait expired: the attempt is refused (semaphore: BulkheadFull; Envoy
    /// pending request: its timeout fired while pending).
    pub(super) fn on_bulkhead_wait(&mut self, now: SimTime, id: CallId) {
        let c = &self.calls[id];
        if c.bulkhead_wait != Some(now) || !self.free_calls_live(id) {
            return;
        }
        let site = c.site as usize;
        let edge = c.edge;
        let (done, started, measured) = (c.wait_done, c.attempt_started, c.measured);
        let e = &mut self.edges[edge as usize];
        let Some(b) = e.bulkhead.as_mut() else { return };
        if !b.give_up(id.0, true) {
            return;
        }
        let semaphore = b.max_retries().is_none();
        if measured {
            self.sites[site].stats.bulkhead_rejected += 1;
        }
        let c = &mut self.calls[id];
        c.bulkhead_wait = None;
        if std::mem::take(&mut c.waiting_call) {
            let outcome = if semaphore {
                Outcome::Rejected
            } else {
                Outcome::Timeout
            };
            self.finish_call(now, id, outcome);
            return;
        }
        let outcome = if semaphore {
            AttemptOutcome::Refused
        } else {
            AttemptOutcome::Timeout
        };
        self.attempt_done(now, id, None, outcome, 0, now.since(started).0, done);
    }

    /// An outlier detector's interval sweep.
    pub(super) fn on_outlier_sweep(&mut self, now: SimTime, edge: u32) {
        let e = &mut self.edges[edge as usize];
        let Some(d) = e.outlier.as_mut() else { return };
        let mut changes = Vec::new();
        d.sweep(now, &mut e.outlier_rng, &mut changes);
        let next = now.after(d.interval());
        self.engine.schedule_at(next, Ev::OutlierSweep { edge });
        for c in changes {
            self.outlier_changed(now, edge, c);
        }
    }

    /// Logs an ejection, an overflow or an unejection.
    pub(super) fn outlier_changed(&mut self, now: SimTime, edge: u32, change: HostChange) {
        let measured = now >= self.warmup;
        let e = &mut self.edges[edge as usize];
        let (host, detail) = match change {
            HostChange::Ejected(h, reason) => {
                if measured {
                    e.stats.ejections += 1;
                }
                (
                    h,
                    OutlierChange::Ejected {
                        reason: reason.name().into(),
                    },
                )
            }
            HostChange::Overflow(h, reason) => {
                if measured {
                    e.stats.ejection_overflows += 1;
                }
                (
                    h,
                    OutlierChange::Refused {
                        reason: reason.name().into(),
                    },
                )
            }
            HostChange::Unejected(h) => (h, OutlierChange::Unejected),
        };
        let spec = self.spec;
        self.log.push(StateEvent {
            t_s: secs(now),
            subject: format!("{}/{host}", e.name(spec)),
            change: results::events::Change::Outlier(detail),
        });
    }

    /// Server-side admission of a delivered request: expired deadline, rate limit, adaptive
    /// concurrency limit. Returns false when it was refused (and answered).
    pub(super) fn admit(&mut self, now: SimTime, id: ReqId) -> bool {
        let spec = self.spec;
        let r = &self.reqs[id];
        let (s, i) = (r.service as usize, r.instance as usize);
        let sspec = &spec.services[s];
        let refuse = if sspec.drop_expired && now >= r.deadline {
            Some(Code::Expired)
        } else if let Some(rl) = sspec.rate_limit.filter(|_| !r.rate_waited) {
            let policy = &spec.rate_limits[rl as usize];
            let key = match policy.key {
                LimitKey::Global => 0,
                LimitKey::Route => r.endpoint as u64,
                LimitKey::Client => match r.origin {
                    Origin::Call { call } => self.sites[self.calls[call].site as usize].from as u64,
                    _ => (1 << 40) | r.key,
                },
            };
            let limiter = self.insts[i]
                .limits
                .entry(key)
                .or_insert_with(|| RateLimiter::new(&policy.kind));
            match limiter.allow(now) {
                None => Some(Code::Limited),
                Some(wait) if wait.0 > 0 => {
                    // A reserved permission: the request waits for it, then is admitted.
                    self.reqs[id].rate_waited = true;
                    self.engine
                        .schedule_at(now.after(wait), Ev::Deliver { req: id });
                    return false;
                }
                Some(_) => None,
            }
        } else {
            None
        };
        let refuse = refuse.or_else(|| {
            let l = self.insts[i].limiter.as_mut()?;
            match l.try_acquire() {
                Some(n) => {
                    self.reqs[id].server_inflight = n;
                    None
                }
                None => Some(Code::ConcurrencyLimited),
            }
        });
        let Some(code) = refuse else { return true };
        let measured = self.reqs[id].measured;
        let svc = &mut self.svcs[s];
        if measured {
            svc.counts.rejected += 1;
            self.insts[i].tally.counts.rejected += 1;
            match code {
                Code::Expired => svc.drops.expired += 1,
                Code::Limited => svc.drops.rate_limited += 1,
                _ => svc.drops.concurrency_limited += 1,
            }
        }
        svc.bucket.rejected += 1;
        self.reqs[id].code = code;
        self.respond(now, id, Outcome::Rejected);
        false
    }

    /// Releases a request's slot at its server's concurrency limiter, with a sample.
    pub(super) fn release_server_limit(&mut self, now: SimTime, id: ReqId, outcome: Outcome) {
        let r = &mut self.reqs[id];
        let inflight = std::mem::take(&mut r.server_inflight);
        if inflight == 0 {
            return;
        }
        let (i, s, rtt) = (r.instance as usize, r.service as usize, now.since(r.born));
        let dropped = outcome != Outcome::Ok || r.abandoned;
        if let Some(l) = self.insts[i].limiter.as_mut() {
            l.release(rtt, inflight, dropped, false, &mut self.svcs[s].limit_rng);
        }
    }

    /// The next waiting work of instance `i` under its discipline, dropping work that waited
    /// too long (max wait, CoDel, adaptive LIFO timeouts) or whose deadline passed; the
    /// dropped requests are answered (rejected) once the chosen one has started.
    pub(super) fn next_work(&mut self, now: SimTime, i: usize) -> Option<ReqId> {
        let spec = self.spec;
        let s = self.insts[i].service as usize;
        let sspec = &spec.services[s];
        let mut shed = std::mem::take(&mut self.shed_buf);
        let inst = &mut self.insts[i];
        let reqs = &self.reqs;
        let next = loop {
            let (id, queue_timeout) = match sspec.discipline {
                Discipline::Fifo | Discipline::Priority => (inst.queue.pop_front(), None),
                Discipline::Lifo => (inst.queue.pop_back(), None),
                Discipline::AdaptiveLifo {
                    short_timeout,
                    long_timeout,
                } => {
                    if now.since(inst.last_empty) >= long_timeout {
                        (inst.queue.pop_back(), Some(short_timeout))
                    } else {
                        (inst.queue.pop_front(), Some(long_timeout))
                    }
                }
            };
            let Some(id) = id else { break None };
            let r = &reqs[id];
            let waited = now.since(r.enqueued);
            let too_long = queue_timeout.is_some_and(|t| waited > t)
                || sspec.shedding.max_wait.is_some_and(|t| waited > t);
            let codel = inst
                .codel
                .as_mut()
                .is_some_and(|c| c.should_drop(waited, now));
            if too_long || codel {
                shed.push((id, false));
                continue;
            }
            if sspec.drop_expired && now >= r.deadline {
                shed.push((id, true));
                continue;
            }
            break Some(id);
        };
        if inst.queue.is_empty() {
            inst.last_empty = now;
        }
        self.shed_buf = shed;
        next
    }

    /// Answers the requests `next_work` dropped (usually none: the check stays inline).
    #[inline]
    pub(super) fn answer_shed(&mut self, now: SimTime) {
        if !self.shed_buf.is_empty() {
            self.answer_shed_now(now);
        }
    }

    #[inline(never)]
    fn answer_shed_now(&mut self, now: SimTime) {
        for (id, expired) in std::mem::take(&mut self.shed_buf) {
            let r = &mut self.reqs[id];
            r.code = if expired { Code::Expired } else { Code::Shed };
            let (s, measured) = (r.service as usize, r.measured);
            if measured {
                let d = &mut self.svcs[s].drops;
                if expired {
                    d.expired += 1;
                } else {
                    d.shed += 1;
                }
            }
            self.complete(now, id);
        }
    }
}
