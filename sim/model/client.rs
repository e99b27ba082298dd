//! The client side: workloads and their arrivals, root requests, and what clients see.

use super::*;

pub(super) struct Wl {
    pub(super) rng: SimRng,
    pub(super) think_rng: SimRng,
    /// Endpoint choice, apart from arrivals so endpoint weights never move arrival times.
    pub(super) endpoint_rng: SimRng,
    /// Request keys (user ids).
    pub(super) key_rng: SimRng,
    /// Zipf popularity over ranks 1..=keys (key k is rank k + 1), made once.
    pub(super) zipf: Option<rand_distr::Zipf<f64>>,
    pub(super) rr: u32,
    /// Exponential gaps at the profile's maximum rate, per ns (thinning).
    pub(super) gap: Option<Exp<f64>>,
    /// Sent but not yet answered or timed out, since t = 0 (warmup included).
    pub(super) pending: u64,
    pub(super) counts: Counts,
    pub(super) bucket: Counts,
    pub(super) latency: Latency,
    pub(super) bucket_latency: Latency,
    /// Bursts sent so far (burst arrivals).
    pub(super) bursts: u32,
    /// The key the request being sent carries, overriding `keys` (a burst's own key).
    pub(super) key_override: Option<u64>,
}

impl Wl {
    /// Workload `w`'s state at t = 0, its streams drawn from the scenario `seed`.
    pub(super) fn new(seed: u64, w: &WorkloadSpec) -> Self {
        let stream =
            |part: &str| SimRng::for_component(seed, &format!("workload:{}:{part}", w.name));
        let gap = match &w.arrivals {
            Arrivals::Open {
                profile,
                poisson: true,
            } => {
                let max = profile.max_rate();
                (max > 0.0).then(|| Exp::new(max / NS_PER_S as f64).expect("positive rate"))
            }
            _ => None,
        };
        Wl {
            rng: stream("arrivals"),
            think_rng: stream("think"),
            endpoint_rng: stream("endpoint"),
            key_rng: stream("keys"),
            zipf: w
                .zipf
                .filter(|_| w.keys > 0)
                .map(|s| rand_distr::Zipf::new(w.keys as f64, s).expect("validated")),
            rr: 0,
            gap,
            pending: 0,
            counts: Counts::default(),
            bucket: Counts::default(),
            latency: Latency::new(3),
            bucket_latency: Latency::new(2),
            bursts: 0,
            key_override: None,
        }
    }

    /// Schedules workload `i`'s first arrival (open, burst) or every user's first send
    /// (closed: each user's index is pushed on `users`).
    pub(super) fn schedule_first(
        &mut self,
        spec: &SystemSpec,
        w: &WorkloadSpec,
        i: u32,
        engine: &mut Engine<Ev>,
        users: &mut Vec<u32>,
    ) {
        match &w.arrivals {
            Arrivals::Open { profile, poisson } => {
                if let Some(t) = next_arrival(
                    profile,
                    *poisson,
                    self.gap.as_ref(),
                    &mut self.rng,
                    SimTime::ZERO,
                    spec.horizon(),
                    true,
                ) {
                    engine.schedule_at(t, Ev::Arrive { wl: i });
                }
            }
            Arrivals::Closed { users: n, think } => {
                for _ in 0..*n {
                    let t = SimTime::ZERO.after(think.sample(&mut self.think_rng));
                    engine.schedule_at(
                        t,
                        Ev::UserSend {
                            user: users.len() as u32,
                        },
                    );
                    users.push(i);
                }
            }
            Arrivals::Burst { at, .. } => {
                if *at < spec.horizon() {
                    engine.schedule_at(*at, Ev::Arrive { wl: i });
                }
            }
        }
    }
}

#[derive(Clone, Copy)]
pub(super) enum Chooser {
    Service(u32),
    Workload(u32),
}

/// The next arrival strictly after `now` (or at `now` for the very first uniform one),
/// or `None` past the horizon (a uniform arrival may land just past it; the engine never
/// delivers events after the horizon). Poisson arrivals with a varying rate use thinning
/// (Lewis & Shedler): candidates at the maximum rate, each kept with probability
/// rate(t)/max. Uniform arrivals step by 1/rate(t); a zero rate is skipped in 1 ms steps.
pub(super) fn next_arrival(
    profile: &RateProfile,
    poisson: bool,
    gap: Option<&Exp<f64>>,
    rng: &mut SimRng,
    now: SimTime,
    horizon: SimTime,
    first: bool,
) -> Option<SimTime> {
    let mut t = now;
    if poisson {
        let gap = gap?;
        let max = profile.max_rate();
        loop {
            t = t.after(SimDuration(gap.sample(rng).round().max(0.0) as u64));
            if t > horizon {
                return None;
            }
            if matches!(profile, RateProfile::Flat(_)) || rng.unit() * max < profile.rate_at(t) {
                return Some(t);
            }
        }
    }
    loop {
        if t > horizon {
            return None;
        }
        let rate = profile.rate_at(t);
        if rate > 0.0 {
            if first && t == SimTime::ZERO {
                return Some(t);
            }
            let step = SimDuration((NS_PER_S as f64 / rate).round().max(1.0) as u64);
            let next = t.after(step);
            if next <= horizon && profile.rate_at(next) <= 0.0 {
                // The gap ends where the rate is zero: nothing arrives there; go on from it.
                t = next;
                continue;
            }
            return Some(next);
        }
        t = t.after(SimDuration::from_millis(1));
    }
}

impl World<'_> {
    pub(super) fn pick_endpoint(
        &mut self,
        service: u32,
        fixed: Option<u32>,
        chooser: Chooser,
    ) -> u32 {
        if let Some(e) = fixed {
            return e;
        }
        let cum = &self.svcs[service as usize].endpoint_cum;
        if cum[0] >= 1.0 {
            // The first endpoint takes all the weight.
            return 0;
        }
        let u = match chooser {
            Chooser::Service(s) => self.svcs[s as usize].endpoint_rng.unit(),
            Chooser::Workload(w) => self.wls[w as usize].endpoint_rng.unit(),
        };
        let cum = &self.svcs[service as usize].endpoint_cum;
        cum.partition_point(|&c| c <= u).min(cum.len() - 1) as u32
    }

    pub(super) fn on_arrive(&mut self, now: SimTime, wl: u32) {
        if let Arrivals::Burst {
            size,
            every,
            count,
            same_key,
            ..
        } = self.spec.workloads[wl as usize].arrivals
        {
            return self.on_burst(now, wl, size, every, count, same_key);
        }
        self.send_root(now, wl, None);
        if self.stop.is_some() {
            return;
        }
        let Arrivals::Open { profile, poisson } = &self.spec.workloads[wl as usize].arrivals else {
            unreachable!("open loop")
        };
        let w = &mut self.wls[wl as usize];
        if let Some(t) = next_arrival(
            profile,
            *poisson,
            w.gap.as_ref(),
            &mut w.rng,
            now,
            self.spec.horizon(),
            false,
        ) {
            self.engine.schedule_at(t, Ev::Arrive { wl });
        }
    }

    /// A burst: `size` requests at once, then the next burst if any is left.
    pub(super) fn on_burst(
        &mut self,
        now: SimTime,
        wl: u32,
        size: u32,
        every: Option<SimDuration>,
        count: u32,
        same_key: bool,
    ) {
        let w = &mut self.wls[wl as usize];
        let burst = w.bursts;
        w.bursts += 1;
        // A key no other burst or workload uses: the workload in the high bits.
        w.key_override = same_key.then_some((wl as u64) << 40 | burst as u64);
        for _ in 0..size {
            if self.stop.is_some() {
                break;
            }
            self.send_root(now, wl, None);
        }
        self.wls[wl as usize].key_override = None;
        if let (Some(every), true, None) = (every, burst + 1 < count, self.stop) {
            let next = now.after(every);
            if next < self.spec.horizon() {
                self.engine.schedule_at(next, Ev::Arrive { wl });
            }
        }
    }

    /// A client sends a request straight to the target (clients sit at the edge: no network hop).
    pub(super) fn send_root(&mut self, now: SimTime, wl: u32, user: Option<u32>) {
        let spec = &self.spec.workloads[wl as usize];
        let target = spec.target.0;
        let endpoint = self.pick_endpoint(target, spec.endpoint, Chooser::Workload(wl));
        let w = &mut self.wls[wl as usize];
        let key = if let Some(k) = w.key_override {
            k
        } else if spec.keys > 0 {
            match w.zipf {
                // Key 0 is the most popular.
                Some(zipf) => {
                    (rand::Rng::sample(&mut w.key_rng, zipf) as u64).clamp(1, spec.keys) - 1
                }
                None => w.key_rng.index(spec.keys as usize) as u64,
            }
        } else {
            0
        };
        let mut headers = 0u8;
        for &(bit, share) in &spec.headers {
            if w.key_rng.chance(share) {
                headers |= 1 << bit;
            }
        }
        let version = self.pick_version(target as usize, key, headers);
        let svc = &self.svcs[target as usize];
        let w = &mut self.wls[wl as usize];
        let (first, n) = (svc.first_instance, svc.instances);
        let rr = w.rr;
        w.rr = w.rr.wrapping_add(1);
        // Clients come through an edge load balancer: round robin over the instances it
        // knows to serve (those the registry lists, or the autoscaler runs), or all of them.
        let eligible = |j: u32| -> bool {
            match self.directory.get(target as usize) {
                Some(registry) => registry.routable(j as usize),
                None => {
                    let x = &self.insts[(first + j) as usize];
                    x.present && !x.draining
                }
            }
        };
        // The traffic split picks a version first, when it has an instance to take the request.
        let of_version =
            |j: u32| version.map_or(true, |c| self.insts[(first + j) as usize].v2 == c);
        let split = |j: u32| eligible(j) && of_version(j);
        let any_split = (0..n).any(split);
        let eligible = |j: u32| if any_split { split(j) } else { eligible(j) };
        let k = if !self.directory.on() && svc.scaler.is_none() && version.is_none() {
            rr % n
        } else {
            let count = (0..n).filter(|&j| eligible(j)).count() as u32;
            if count == 0 {
                rr % n
            } else {
                (0..n)
                    .filter(|&j| eligible(j))
                    .nth((rr % count) as usize)
                    .expect("count > 0")
            }
        };
        let instance = svc.first_instance + k;
        let measured = now >= self.warmup;
        if measured {
            w.counts.requests += 1;
        }
        w.bucket.requests += 1;
        w.pending += 1;
        if self.arrivals.len() < self.opts.record_arrivals {
            self.arrivals.push(now);
        }
        let (timeout, crit) = (spec.timeout, spec.criticality);
        let mut req = Req::new(
            now,
            target,
            instance,
            endpoint,
            Origin::Client { workload: wl, user },
            State::Sent,
            measured,
        );
        req.key = key;
        req.headers = headers;
        req.crit = crit;
        if let Some(t) = timeout {
            req.deadline = now.after(t);
        }
        if let (true, Some(tr)) = (measured, self.tracer.as_mut()) {
            req.span = tr.open(wl, target, k, endpoint, now);
        }
        let Some(id) = self.alloc(req) else {
            return;
        };
        if let Some(t) = timeout {
            let lane = self.lane(Lane::Workload(wl));
            self.reqs[id].timeout = Some(self.engine.schedule_timer(
                lane,
                now.after(t),
                Ev::Timeout { req: id },
            ));
        }
        self.on_deliver(now, id);
    }

    /// A root request ended for its client (answered, or the client gave up).
    pub(super) fn client_result(&mut self, now: SimTime, id: ReqId, outcome: Outcome) {
        let r = &self.reqs[id];
        if outcome != Outcome::Timeout {
            if let Some(k) = r.timeout {
                self.engine.cancel(k);
            }
            self.client_account(now, id, outcome);
            self.release(id);
        } else {
            self.client_account(now, id, outcome);
        }
    }

    /// Counts a root request's end for its workload and lets a closed-loop user think.
    pub(super) fn client_account(&mut self, now: SimTime, id: ReqId, outcome: Outcome) {
        let r = &self.reqs[id];
        let Origin::Client { workload: wl, user } = r.origin else {
            unreachable!("only a client's request is counted for its workload")
        };
        let (measured, sent) = (r.sent >= self.warmup, r.sent);
        if let Some(tr) = self.tracer.as_mut() {
            tr.finish(r.span, now, outcome.name());
        }
        let w = &mut self.wls[wl as usize];
        w.pending -= 1;
        let latency = now.since(sent).0;
        if measured {
            w.counts.add(outcome);
            if matches!(outcome, Outcome::Ok | Outcome::Error) {
                w.latency.record(latency);
            }
        }
        w.bucket.add(outcome);
        if matches!(outcome, Outcome::Ok | Outcome::Error) {
            w.bucket_latency.record(latency);
        }
        if let Some(user) = user {
            if let Arrivals::Closed { think, .. } = &self.spec.workloads[wl as usize].arrivals {
                let t = now.after(think.sample(&mut w.think_rng));
                self.engine.schedule_at(t, Ev::UserSend { user });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = NS_PER_S;

    /// Every arrival of `profile` in [0, horizon], as the model draws them.
    fn arrivals(profile: &RateProfile, poisson: bool, horizon_s: u64) -> Vec<SimTime> {
        let mut rng = SimRng::for_component(7, "workload:t:arrivals");
        let max = profile.max_rate();
        let gap = (max > 0.0).then(|| Exp::new(max / S as f64).expect("positive rate"));
        let horizon = SimTime(horizon_s * S);
        let mut out = Vec::new();
        let mut next = next_arrival(
            profile,
            poisson,
            gap.as_ref(),
            &mut rng,
            SimTime::ZERO,
            horizon,
            true,
        );
        // A uniform arrival may land past the horizon; the engine never delivers it.
        while let Some(t) = next.filter(|&t| t <= horizon) {
            out.push(t);
            next = next_arrival(profile, poisson, gap.as_ref(), &mut rng, t, horizon, false);
        }
        out
    }

    #[test]
    fn uniform_arrivals_are_evenly_spaced_from_zero() {
        let a = arrivals(&RateProfile::Flat(4.0), false, 2);
        let expect: Vec<SimTime> = (0..=8).map(|k| SimTime(k * S / 4)).collect();
        assert_eq!(a, expect);
    }

    #[test]
    fn poisson_arrivals_have_the_rate_asked_for() {
        // 100/s for 1,000 s: a Poisson count with mean 100,000 and sd 316; 5 sd either way.
        let n = arrivals(&RateProfile::Flat(100.0), true, 1_000).len() as i64;
        assert!((n - 100_000).abs() < 1_580, "{n}");
    }

    #[test]
    fn thinning_follows_a_step_profile() {
        // 0/s for the first 100 s, then 200/s for 100 s: nothing before 100 s, and about
        // 20,000 after (sd 141; 5 sd).
        let steps = RateProfile::Steps(vec![(SimTime(100 * S), 200.0)]);
        let a = arrivals(&steps, true, 200);
        assert!(a.iter().all(|t| t.0 >= 100 * S), "an arrival at zero rate");
        assert!((a.len() as i64 - 20_000).abs() < 710, "{}", a.len());
        // Uniform gaps skip the zero-rate stretch in 1 ms steps, then keep 5 ms spacing.
        let u = arrivals(&steps, false, 101);
        assert!(
            u[0].0 >= 100 * S && u[0].0 <= 100 * S + 6_000_000,
            "{:?}",
            u[0]
        );
        assert!(u.windows(2).all(|w| w[1].0 - w[0].0 == 5_000_000));
    }
}
