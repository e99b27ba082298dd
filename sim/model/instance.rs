//! Instances: admission, queues, workers, work, optimistic writes and the answer sent back.

use super::*;

/// What one instance did after warmup (the service's figures, per instance).
#[derive(Clone, Debug, Default)]
pub(super) struct Tally {
    pub(super) counts: Counts,
    /// Requests it completed, and the sum of their latencies.
    pub(super) completed: u64,
    pub(super) latency_ns: u128,
    /// Worker time spent on work.
    pub(super) work_ns: u128,
}

pub(super) struct Instance {
    pub(super) service: u32,
    /// Its own counters, for per-instance output.
    pub(super) tally: Tally,
    pub(super) busy: u32,
    pub(super) in_flight: u32,
    /// Work waiting for a worker, in the service's discipline's order (one level unless the
    /// discipline is `priority`).
    pub(super) queue: LeveledQueue<ReqId>,
    /// Threads held (thread-per-request services only).
    pub(super) threads_busy: u32,
    /// Requests waiting for a thread.
    pub(super) admit: LeveledQueue<ReqId>,
    /// Faults in force on this instance.
    pub(super) fault: InstanceFault,
    /// When the work queue was last empty (adaptive LIFO).
    pub(super) last_empty: SimTime,
    pub(super) codel: Option<Codel>,
    /// Rate limiters by key (looked up, never iterated).
    pub(super) limits: crate::ids::LookupMap<u64, layers::RateLimiter>,
    /// Adaptive concurrency limit on arrivals.
    pub(super) limiter: Option<Limiter>,
    /// Paused since (a pause fault).
    pub(super) paused_at: Option<SimTime>,
    /// Total time paused so far, ns.
    pub(super) paused_ns: u64,
    /// What to resume when the pause ends.
    pub(super) frozen: Vec<faults::Frozen>,
    /// Restarted, booting until this time (down until then).
    pub(super) booting: Option<SimTime>,
    /// Its zone (NONE without zones).
    pub(super) zone: u32,
    /// Its host (NONE without hosts).
    pub(super) host: u32,
    /// In service (autoscaled services keep absent slots up to their maximum).
    pub(super) present: bool,
    /// Asked for by the autoscaler, not yet serving.
    pub(super) provisioning: bool,
    /// Scaled in: no new traffic, gone after a grace period.
    pub(super) draining: bool,
    /// Runs the service's new version (a canary's, a rollout's).
    pub(super) v2: bool,
    /// When it last booted (`None`: running since before t = 0): cold start and slow start.
    pub(super) booted_at: Option<SimTime>,
    /// Its incarnation: bumped when it crashes, its sidecar crashes or it leaves, so that
    /// connections made to (or by) an earlier one are known dead.
    pub(super) epoch: u32,
    /// Requests that arrived during the current bucket.
    pub(super) bucket_requests: u32,
}

/// The effect of the faults in force on one instance.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct InstanceFault {
    pub(super) down: bool,
    pub(super) delay: Option<(SimDuration, f64)>,
    /// Share of requests aborted, and with which status.
    pub(super) abort: f64,
    pub(super) abort_code: ErrorStatus,
    /// Work multiplier, for a share of requests.
    pub(super) slow: f64,
    pub(super) slow_p: f64,
    /// Workers while a slow fault holds.
    pub(super) workers: Option<u32>,
}

impl InstanceFault {
    pub(super) const NONE: InstanceFault = InstanceFault {
        down: false,
        delay: None,
        abort: 0.0,
        abort_code: ErrorStatus::INTERNAL,
        slow: 1.0,
        slow_p: 1.0,
        workers: None,
    };
}

pub(super) struct Svc {
    pub(super) first_instance: u32,
    pub(super) instances: u32,
    pub(super) workers: u32,
    pub(super) work_rng: SimRng,
    pub(super) error_rng: SimRng,
    pub(super) branch_rng: SimRng,
    pub(super) fault_rng: SimRng,
    /// Endpoint choice for this service's calls, apart from `branch_rng` so that a call's
    /// probability never shifts which endpoints later calls pick.
    pub(super) endpoint_rng: SimRng,
    /// Cumulative endpoint weights (normalised).
    pub(super) endpoint_cum: Vec<f64>,
    pub(super) busy: u32,
    pub(super) busy_since: SimTime,
    pub(super) busy_ns: u128,
    pub(super) bucket_busy_ns: u128,
    /// Requests admitted at this service's instances (queued, working or waiting on calls).
    pub(super) held: u32,
    pub(super) held_since: SimTime,
    /// ∫ held dt after warmup, for the time-average number in the service (Little's L).
    pub(super) held_ns: u128,
    pub(super) counts: Counts,
    pub(super) bucket: Counts,
    pub(super) latency: Latency,
    pub(super) bucket_latency: Latency,
    pub(super) queue_wait: Latency,
    pub(super) wasted_ns: u128,
    /// Requests refused or dropped by server-side layers, after warmup.
    pub(super) drops: Drops,
    /// Draws of the server's adaptive concurrency limit (Vegas probes).
    pub(super) limit_rng: SimRng,
    /// Registry status changes of its instances, after warmup.
    pub(super) registry_changes: u64,
    /// The autoscaler, if any.
    pub(super) scaler: Option<scaling::Scaler>,
    /// The canary, if any.
    pub(super) canary: Option<deploy::Canary>,
    /// A rolling update, if any.
    pub(super) rollout: Option<deploy::Rollout>,
    /// Instance-time present after warmup, ns (autoscaled services' capacity).
    pub(super) present_ns: u128,
    pub(super) present_since: SimTime,
    /// `occ` services: per key with open readers, (version, readers). A key nobody holds a
    /// read of is forgotten: its version only matters to requests that read it.
    pub(super) occ_rows: std::collections::BTreeMap<u64, (u32, u32)>,
    /// Commits refused because the key changed since the read, after warmup.
    pub(super) conflicts: u64,
    /// Outcomes by the requests' criticality (when the system uses it), after warmup.
    pub(super) by_crit: Option<Box<[Counts; LEVELS]>>,
}

impl Instance {
    /// Slot `k` of service `i`, as it stands at t = 0.
    pub(super) fn new(spec: &SystemSpec, i: usize, k: u32) -> Self {
        let s = &spec.services[i];
        Instance {
            tally: Tally::default(),
            // Canary slots serve from the start; a rollout's surge slots wait for it.
            present: k < s.replicas || (k >= s.stable_slots() && s.canary.is_some()),
            v2: k >= s.stable_slots() && s.canary.is_some(),
            booted_at: None,
            epoch: 0,
            bucket_requests: 0,
            provisioning: false,
            draining: false,
            service: i as u32,
            busy: 0,
            in_flight: 0,
            queue: LeveledQueue::new(),
            threads_busy: 0,
            admit: LeveledQueue::new(),
            fault: InstanceFault::NONE,
            last_empty: SimTime::ZERO,
            codel: s
                .shedding
                .codel
                .map(|(target, interval)| Codel::new(target, interval, SimTime::ZERO)),
            limits: Default::default(),
            limiter: s.concurrency.map(|c| {
                let p = &spec.concurrency[c as usize];
                Limiter::new(p.algorithm.clone(), p.initial, p.min, p.max)
            }),
            paused_at: None,
            paused_ns: 0,
            frozen: Vec::new(),
            booting: None,
            zone: s.zones.get(k as usize).copied().unwrap_or(NONE),
            host: s.hosts.get(k as usize).copied().unwrap_or(NONE),
        }
    }
}

impl Svc {
    /// Service `s`'s runtime state, its instances starting at `first`; `by_crit`: it counts
    /// outcomes by criticality.
    pub(super) fn new(seed: u64, s: &ServiceSpec, first: u32, by_crit: bool) -> Self {
        let total: f64 = s.endpoints.iter().map(|e| e.weight).sum();
        let mut acc = 0.0;
        // Endpoints of weight 0 (a saga's calls, held by its orchestrator, come last) are
        // never picked by weight.
        let mut endpoint_cum: Vec<f64> = s
            .endpoints
            .iter()
            .map(|e| {
                acc += e.weight / total;
                acc
            })
            .collect();
        if let Some(last) = endpoint_cum.last_mut() {
            *last = 1.0;
        }
        Svc {
            first_instance: first,
            instances: s.slots(),
            workers: s.workers,
            work_rng: SimRng::for_component(seed, &format!("service:{}:work", s.name)),
            error_rng: SimRng::for_component(seed, &format!("service:{}:error", s.name)),
            branch_rng: SimRng::for_component(seed, &format!("service:{}:branch", s.name)),
            fault_rng: SimRng::for_component(seed, &format!("service:{}:faults", s.name)),
            endpoint_rng: SimRng::for_component(seed, &format!("service:{}:endpoint", s.name)),
            endpoint_cum,
            busy: 0,
            busy_since: SimTime::ZERO,
            busy_ns: 0,
            bucket_busy_ns: 0,
            held: 0,
            held_since: SimTime::ZERO,
            held_ns: 0,
            counts: Counts::default(),
            bucket: Counts::default(),
            latency: Latency::new(3),
            bucket_latency: Latency::new(2),
            queue_wait: Latency::new(3),
            wasted_ns: 0,
            drops: Drops::default(),
            limit_rng: SimRng::for_component(seed, &format!("service:{}:limit", s.name)),
            registry_changes: 0,
            scaler: None,
            canary: None,
            rollout: None,
            present_ns: 0,
            present_since: SimTime::ZERO,
            occ_rows: std::collections::BTreeMap::new(),
            conflicts: 0,
            by_crit: by_crit.then(Box::default),
        }
    }
}

/// Whether an arrival of level `crit` finds room in a queue of service `sspec`'s (every
/// worker busy): below its level's threshold, or by pushing out a lower level.
enum Room {
    Free,
    /// The queue was full; this request of a lower level made way.
    PushedOut(ReqId),
    Refused,
}

#[inline]
fn room(queue: &mut LeveledQueue<ReqId>, sspec: &ServiceSpec, crit: Criticality) -> Room {
    let (len, capacity) = (queue.len(), sspec.queue_capacity as usize);
    let limit = sspec
        .criticality_shed
        .map_or(capacity, |t| t.limit(crit) as usize);
    if len < limit {
        return Room::Free;
    }
    // Only a full queue pushes out, and only for a level not shed before it is full.
    if sspec.discipline == Discipline::Priority && len >= capacity && limit >= capacity {
        if let Some(v) = queue.push_out(crit) {
            return Room::PushedOut(v);
        }
    }
    Room::Refused
}

impl Discipline {
    /// The next request waiting for a thread under this discipline (adaptive LIFO and
    /// shedding act on the work queue; the thread queue is served FIFO under it).
    pub(super) fn pop(self, queue: &mut LeveledQueue<ReqId>) -> Option<ReqId> {
        match self {
            Discipline::Fifo | Discipline::AdaptiveLifo { .. } | Discipline::Priority => {
                queue.pop_front()
            }
            Discipline::Lifo => queue.pop_back(),
        }
    }

    /// The level a request of criticality `c` waits at: its own in a priority queue, one
    /// level for all in the others (which keeps them in arrival order).
    #[inline]
    pub(super) fn level(self, c: Criticality) -> Criticality {
        if self == Discipline::Priority {
            c
        } else {
            Criticality::Critical
        }
    }
}

/// The steps a request runs: its endpoint's, or a health check's.
pub(super) fn steps_of(spec: &SystemSpec, service: u32, endpoint: u32) -> &[Step] {
    if endpoint == discovery::PROBE {
        &spec
            .registry
            .as_ref()
            .and_then(|r| r.checks.as_ref())
            .expect("probes only with checks")
            .steps
    } else {
        &spec.services[service as usize].endpoints[endpoint as usize].steps
    }
}

impl World<'_> {
    pub(super) fn on_deliver(&mut self, now: SimTime, id: ReqId) {
        if self.reqs[id].killed {
            // Held by a delay fault when its instance crashed.
            self.release(id);
            return;
        }
        let i = self.reqs[id].instance as usize;
        if self.insts[i].paused_at.is_some() && !self.insts[i].fault.down {
            // A frozen process accepts nothing until it resumes.
            self.insts[i].frozen.push(faults::Frozen::Deliver(id));
            return;
        }
        self.trace_mark(id, tracing::Mark::Arrived, now);
        if !self.inbound_proxy(now, id) {
            return;
        }
        let r = &mut self.reqs[id];
        r.state = State::Running;
        r.arrived = true;
        r.born = now;
        // Health checks are not traffic: they use workers but stay out of the statistics.
        r.measured = r.origin != Origin::Probe && now >= self.warmup;
        let (s, i, measured, delayed) = (
            r.service as usize,
            r.instance as usize,
            r.measured,
            r.delayed,
        );
        let fault = self.insts[i].fault;
        if !self.insts[i].present {
            // A slot the autoscaler does not use (or one it scaled in): nothing listens.
            self.reqs[id].code = Code::Refused;
            self.respond(now, id, Outcome::Error);
            return;
        }
        if fault != InstanceFault::NONE {
            if fault.down {
                // Connection refused: a fast error, the service never sees the request.
                self.reqs[id].code = Code::Refused;
                self.respond(now, id, Outcome::Error);
                return;
            }
            if let Some((add, p)) = fault.delay {
                if !delayed && self.svcs[s].fault_rng.chance(p) {
                    self.reqs[id].delayed = true;
                    self.engine
                        .schedule_at(now.after(add), Ev::Deliver { req: id });
                    return;
                }
            }
        }
        let svc = &mut self.svcs[s];
        let waited = self.reqs[id].rate_waited;
        if !waited && measured {
            svc.counts.requests += 1;
            self.insts[i].tally.counts.requests += 1;
            if self.by_crit {
                if let Some(b) = svc.by_crit.as_mut() {
                    b[self.reqs[id].crit.index()].requests += 1;
                }
            }
        }
        let probe = self.reqs[id].origin == Origin::Probe;
        if !waited && !probe {
            svc.bucket.requests += 1;
            self.insts[i].bucket_requests += 1;
        }
        if !waited && fault.abort > 0.0 && svc.fault_rng.chance(fault.abort) {
            let status = fault.abort_code;
            // A 5xx other than a gateway error is an error; every other status a refusal.
            let outcome = match status.status().attempt_outcome() {
                AttemptOutcome::Error => Outcome::Error,
                _ => Outcome::Rejected,
            };
            let code = Code::Status(status);
            if measured {
                svc.counts.add(outcome);
            }
            svc.bucket.add(outcome);
            self.reqs[id].code = code;
            self.respond(now, id, outcome);
            return;
        }
        if !self.admit(now, id) {
            return;
        }
        let spec = self.spec;
        let sspec = &spec.services[s];
        let crit = self.reqs[id].crit;
        let inst = &mut self.insts[i];
        if let Some(threads) = sspec.threads {
            if inst.threads_busy >= threads {
                match room(&mut inst.admit, sspec, crit) {
                    Room::Refused => self.refuse_full(now, id),
                    room => {
                        if let Room::PushedOut(v) = room {
                            // Waiting for a thread, it was not admitted yet: refused as
                            // an arrival would be.
                            self.reqs[v].code = Code::Shed;
                            self.refuse_full(now, v);
                        }
                        self.insts[i].admit.push(sspec.discipline.level(crit), id);
                        self.reqs[id].enqueued = now;
                    }
                }
                return;
            }
            inst.threads_busy += 1;
        }
        let workers = self.svcs[s].workers;
        let inst = &mut self.insts[i];
        if inst.busy >= workers {
            match room(&mut inst.queue, sspec, crit) {
                Room::Free => {}
                Room::PushedOut(v) => {
                    // A more critical arrival takes its place: shed as CoDel would.
                    self.shed_buf.push((v, false));
                    self.answer_shed(now);
                }
                Room::Refused => {
                    if sspec.threads.is_some() {
                        self.insts[i].threads_busy -= 1;
                    }
                    // Admission control: a full queue refuses at once.
                    self.refuse_full(now, id);
                    return;
                }
            }
        }
        self.insts[i].in_flight += 1;
        self.reqs[id].admitted = true;
        self.held_change(s, now, 1);
        self.advance(now, id);
    }

    /// Runs steps until one has to wait (work or calls) or the handler ends.
    pub(super) fn advance(&mut self, now: SimTime, id: ReqId) {
        let spec = self.spec;
        loop {
            let r = &self.reqs[id];
            let steps = steps_of(spec, r.service, r.endpoint);
            let Some(step) = steps.get(r.step as usize) else {
                self.complete(now, id);
                return;
            };
            let service = r.service as usize;
            if spec.services[service].drop_expired && now >= r.deadline {
                // Nobody waits for the answer any more: stop here (gRPC server cancellation).
                if r.measured {
                    self.svcs[service].drops.expired += 1;
                }
                self.reqs[id].code = Code::Expired;
                self.complete(now, id);
                return;
            }
            match step {
                Step::Work(_) => {
                    let inst = &mut self.insts[r.instance as usize];
                    let free = inst.busy < inst.fault.workers.unwrap_or(self.svcs[service].workers);
                    if !free {
                        if inst.queue.is_empty() {
                            inst.last_empty = now;
                        }
                        let level = spec.services[service].discipline.level(r.crit);
                        inst.queue.push(level, id);
                    }
                    self.reqs[id].enqueued = now;
                    if free {
                        self.start_work(now, id);
                    }
                    return;
                }
                Step::Call(c) if c.publish.is_some() && !c.wait => {
                    if self.svcs[service].branch_rng.chance(c.probability) {
                        self.fire_and_forget(now, id, c);
                    }
                }
                Step::Call(c) => {
                    if self.svcs[service].branch_rng.chance(c.probability) {
                        let site = self.site_index[service][r.endpoint as usize][r.step as usize];
                        self.reqs[id].pending = 1;
                        self.start_call(now, id, site);
                        return;
                    }
                }
                Step::Migrate(m, cs) => {
                    if self.svcs[service].branch_rng.chance(cs[0].probability) {
                        let (key, headers) = (r.key, r.headers);
                        let first = self.site_index[service][r.endpoint as usize][r.step as usize];
                        let new = self.pick_side(*m as usize, key, headers);
                        self.reqs[id].pending = 1;
                        self.start_call(now, id, first + new as u32);
                        return;
                    }
                }
                Step::Tx(def) => {
                    if !self.start_tx(now, id, *def) {
                        // No room for another transaction: the request fails.
                        self.reqs[id].failed = true;
                        self.complete(now, id);
                    }
                    return;
                }
                Step::Saga(def, wait) => {
                    let started = self.start_saga(now, id, *def, *wait);
                    if *wait {
                        if !started {
                            // No saga to wait for: the request fails (the API's 500).
                            self.reqs[id].failed = true;
                            self.complete(now, id);
                        }
                        return;
                    }
                }
                Step::Parallel(cs) => {
                    let first = self.site_index[service][r.endpoint as usize][r.step as usize];
                    // Decide every member first and set `pending` to the total before any call
                    // starts: a call can finish at once (breaker open, reset link), and the
                    // request must not move on until the whole group is done.
                    let mut chosen = std::mem::take(&mut self.chosen);
                    chosen.clear();
                    for (k, c) in cs.iter().enumerate() {
                        if self.svcs[service].branch_rng.chance(c.probability) {
                            chosen.push(first + k as u32);
                        }
                    }
                    if !chosen.is_empty() {
                        self.reqs[id].pending = chosen.len() as u32;
                        for &site in &chosen {
                            self.start_call(now, id, site);
                        }
                        self.chosen = chosen;
                        return;
                    }
                    self.chosen = chosen;
                }
            }
            self.reqs[id].step += 1;
        }
    }

    pub(super) fn start_work(&mut self, now: SimTime, id: ReqId) {
        self.trace_mark(id, tracing::Mark::WorkStarted, now);
        let spec = self.spec;
        let r = &mut self.reqs[id];
        let Step::Work(dist) = &steps_of(spec, r.service, r.endpoint)[r.step as usize] else {
            unreachable!("start_work on a work step")
        };
        let step = if r.origin == Origin::Probe {
            u32::MAX
        } else {
            r.step
        };
        r.work_started = now;
        r.working = true;
        r.pause_mark = self.insts[r.instance as usize].paused_ns;
        let (s, i, measured, waited) = (
            r.service as usize,
            r.instance as usize,
            r.measured,
            now.since(r.enqueued),
        );
        self.account_busy(s, now);
        let svc = &mut self.svcs[s];
        svc.busy += 1;
        self.insts[i].busy += 1;
        if measured {
            svc.queue_wait.record(waited.0);
        }
        // The canary version brings its own local work (replacing the first work step).
        let dist = match (spec.services[s].new_version(), self.insts[i].v2, step) {
            (Some((Some(work), _)), true, 0) => work,
            _ => dist,
        };
        let mut d = dist.sample(&mut svc.work_rng);
        if let (Some(c), Some(at)) = (&spec.services[s].cold_start, self.insts[i].booted_at) {
            // Cold: slower by a factor falling linearly to 1 over the cold-start period.
            let age = now.since(at);
            if age < c.duration {
                let left = 1.0 - age.0 as f64 / c.duration.0 as f64;
                d = SimDuration((d.0 as f64 * (1.0 + (c.multiply - 1.0) * left)) as u64);
            }
        }
        if spec.services[s].occ && self.reqs[id].occ_seen.is_none() && step != u32::MAX {
            // Optimistic concurrency: the read happens as the handler starts.
            let key = self.reqs[id].key;
            let row = svc.occ_rows.entry(key).or_insert((0, 0));
            row.1 += 1;
            self.reqs[id].occ_seen = Some(row.0);
        }
        let fault = self.insts[i].fault;
        if fault.slow != 1.0 && svc.fault_rng.chance(fault.slow_p) {
            d = SimDuration((d.0 as f64 * fault.slow) as u64);
        }
        match self.insts[i].host {
            NONE => {
                self.engine
                    .schedule_at(now.after(d), Ev::WorkDone { req: id });
            }
            h => self.host_start(now, h, id, d),
        }
    }

    pub(super) fn on_work_done(&mut self, now: SimTime, id: ReqId) {
        let r = &mut self.reqs[id];
        if r.killed {
            // Its worker was given back when the instance crashed.
            self.release(id);
            return;
        }
        let i = r.instance as usize;
        let inst = &mut self.insts[i];
        {
            if let Some(since) = inst.paused_at {
                // Frozen mid-work: the rest runs after the pause.
                let left = now.since(since).0;
                inst.frozen.push(faults::Frozen::Work(id, left));
                return;
            }
            if inst.paused_ns > r.pause_mark {
                // A pause came and went while it worked: it ends that much later.
                let extra = inst.paused_ns - r.pause_mark;
                r.pause_mark = inst.paused_ns;
                self.engine
                    .schedule_at(now.after(SimDuration(extra)), Ev::WorkDone { req: id });
                return;
            }
        }
        r.work_ns += now.since(r.work_started).0;
        if now > self.warmup {
            let from = r.work_started.max(self.warmup);
            self.insts[i].tally.work_ns += now.since(from).0 as u128;
        }
        r.working = false;
        r.step += 1;
        let s = r.service as usize;
        self.account_busy(s, now);
        self.svcs[s].busy -= 1;
        self.insts[i].busy -= 1;
        self.fill_workers(now, i);
        self.advance(now, id);
    }

    /// Starts waiting work on every free worker of instance `i`.
    pub(super) fn fill_workers(&mut self, now: SimTime, i: usize) {
        let s = self.insts[i].service as usize;
        let workers = self.insts[i].fault.workers.unwrap_or(self.svcs[s].workers);
        while self.insts[i].busy < workers {
            match self.next_work(now, i) {
                Some(n) => self.start_work(now, n),
                None => break,
            }
        }
        self.answer_shed(now);
    }

    /// The handler ran all its steps (or a required call failed): decide the outcome and answer.
    pub(super) fn complete(&mut self, now: SimTime, id: ReqId) {
        let r = &self.reqs[id];
        let (s, i) = (r.service as usize, r.instance as usize);
        let svc = &mut self.svcs[s];
        let canary = self.insts[i].v2;
        let error_rate = match (self.spec.services[s].new_version(), canary) {
            (Some((_, rate)), true) => rate,
            _ => self.spec.services[s].error_rate,
        };
        let delivery = matches!(r.origin, Origin::Delivery { .. });
        let poison = matches!(r.cargo, Cargo::Delivery { msg } if msg & messaging::POISON != 0);
        let mut outcome = if matches!(r.code, Code::Shed | Code::Expired) {
            Outcome::Rejected
        } else if r.failed || poison || svc.error_rng.chance(error_rate) {
            Outcome::Error
        } else {
            Outcome::Ok
        };
        if self.occ_close(id, outcome == Outcome::Ok) == Some(false) {
            outcome = Outcome::Error;
        }
        let r = &self.reqs[id];
        let (cargo, key) = (r.cargo, r.key);
        if let (Outcome::Ok, Some(part)) = (outcome, r.saga_step) {
            if part.code & twopc::TX != 0 && !self.tx_participant(now, id, part.saga, part.code) {
                // A PREPARE that finds the key locked by another transaction votes NO.
                outcome = Outcome::Error;
            }
        }
        match cargo {
            Cargo::Write { .. } if outcome == Outcome::Ok => self.write_committed(id),
            Cargo::Append { store }
                if outcome == Outcome::Ok && !self.append_event(now, store, key) =>
            {
                // The log holds max_events: the append is refused.
                outcome = Outcome::Rejected;
            }
            Cargo::Read { proj } if outcome == Outcome::Ok => {
                let sent = self.reqs[id].sent;
                self.judge_read(now, proj, key, sent);
            }
            Cargo::Publish { dest, msg }
                if outcome == Outcome::Ok && !self.store_message(now, dest, msg, key) =>
            {
                // The broker's queue is full: the publish is refused.
                outcome = Outcome::Rejected;
            }
            _ => {}
        }
        let r = &self.reqs[id];
        let (born, measured, probe) = (r.born, r.measured, r.origin == Origin::Probe);
        // (A choreographed step's effect is judged with its message, in `delivery_done`.)
        if let (Outcome::Ok, Some(part), false) = (outcome, r.saga_step, delivery) {
            if part.code & twopc::TX == 0 {
                self.saga_effect(now, part.saga, part.code);
            }
        }
        self.release_server_limit(now, id, outcome);
        self.held_change(s, now, -1);
        let svc = &mut self.svcs[s];
        self.insts[i].in_flight -= 1;
        self.reqs[id].admitted = false;
        let latency = now.since(born).0;
        if measured {
            svc.counts.add(outcome);
            svc.latency.record(latency);
            let t = &mut self.insts[i].tally;
            t.counts.add(outcome);
            t.completed += 1;
            t.latency_ns += latency as u128;
        }
        if !probe {
            svc.bucket.add(outcome);
            svc.bucket_latency.record(latency);
            if canary {
                self.canary_request(s, outcome, latency);
            }
        }
        self.respond(now, id, outcome);
        if self.spec.services[s].threads.is_some() {
            let inst = &mut self.insts[i];
            inst.threads_busy -= 1;
            let next = self.spec.services[s].discipline.pop(&mut inst.admit);
            if let Some(n) = next {
                inst.threads_busy += 1;
                inst.in_flight += 1;
                self.reqs[n].admitted = true;
                self.held_change(s, now, 1);
                self.advance(now, n);
            }
        }
    }

    /// Ends request `id`'s hold on its `occ` row, committing if `commit`: Some(true) when the
    /// commit went through, Some(false) on a conflict (another request committed the key
    /// since this one read it), None when there is nothing to commit or none was asked.
    pub(super) fn occ_close(&mut self, id: ReqId, commit: bool) -> Option<bool> {
        let r = &mut self.reqs[id];
        let seen = r.occ_seen.take()?;
        let (key, measured) = (r.key, r.measured);
        let svc = &mut self.svcs[r.service as usize];
        let row = svc.occ_rows.get_mut(&key).expect("a read row is held");
        let verdict = commit.then(|| {
            let ok = row.0 == seen;
            if ok {
                row.0 = (row.0 + 1) & 0x7fff_ffff;
            }
            ok
        });
        row.1 -= 1;
        if row.1 == 0 {
            svc.occ_rows.remove(&key);
        }
        if verdict == Some(false) && measured {
            svc.conflicts += 1;
        }
        verdict
    }

    /// Refuses `id` at its instance's door (a full queue, or its level's share of it).
    fn refuse_full(&mut self, now: SimTime, id: ReqId) {
        let r = &self.reqs[id];
        let (s, i, measured) = (r.service as usize, r.instance as usize, r.measured);
        let svc = &mut self.svcs[s];
        if measured {
            svc.counts.rejected += 1;
            self.insts[i].tally.counts.rejected += 1;
        }
        svc.bucket.rejected += 1;
        self.release_server_limit(now, id, Outcome::Rejected);
        self.respond(now, id, Outcome::Rejected);
    }

    /// Sends the answer of `id` back to whoever waits for it.
    pub(super) fn respond(&mut self, now: SimTime, id: ReqId, outcome: Outcome) {
        self.trace_mark(id, tracing::Mark::Answered, now);
        if outcome == Outcome::Ok && matches!(self.reqs[id].origin, Origin::Registry { .. }) {
            // A write takes effect at the registry whether or not its client still waits.
            self.registry_handled(now, id);
        }
        let r = &mut self.reqs[id];
        r.outcome = outcome;
        if self.by_crit && r.measured {
            if let Some(b) = self.svcs[r.service as usize].by_crit.as_mut() {
                b[r.crit.index()].add(outcome);
            }
        }
        if r.abandoned {
            // Nobody waits: all the work done for it was wasted.
            let (s, work) = (r.service as usize, r.work_ns);
            self.svcs[s].wasted_ns += work as u128;
            if r.timeout.is_none() {
                self.release(id);
            }
            return;
        }
        let call = match r.origin {
            Origin::Probe => {
                // The checker (a local agent) sees the answer at once.
                if let Some(k) = r.timeout.take() {
                    self.engine.cancel(k);
                }
                self.probe_result(now, id, outcome == Outcome::Ok);
                self.release(id);
                return;
            }
            Origin::Delivery { .. } => {
                self.delivery_done(now, id, outcome, false);
                return;
            }
            Origin::Projection { .. } => {
                self.projection_applied(now, id, outcome == Outcome::Ok);
                self.release(id);
                return;
            }
            Origin::Registry { op, subject, .. } => {
                // The answer reaches its client at once.
                if let Some(k) = r.timeout.take() {
                    self.engine.cancel(k);
                }
                let answer = if outcome == Outcome::Ok {
                    discovery::Answer::Ok
                } else {
                    discovery::Answer::Error
                };
                self.registry_answered(now, op, subject, answer);
                self.release(id);
                return;
            }
            Origin::OneWay
            | Origin::SagaCarrier { .. }
            | Origin::CacheFill
            | Origin::TxCarrier { .. } => {
                // A one-way message (a fire-and-forget publish): nobody hears the answer.
                self.release(id);
                return;
            }
            Origin::Client { .. } => {
                self.client_result(now, id, outcome);
                return;
            }
            Origin::Call { call } => call,
        };
        let (service, callee) = (r.service as usize, r.instance);
        let parent_service = self.sites[self.calls[call].site as usize].from as usize;
        let caller = self.reqs[self.calls[call].parent].instance;
        let (from_zone, to_zone) = (
            self.insts[callee as usize].zone,
            self.insts[caller as usize].zone,
        );
        let (hop, reset) = self
            .net
            .transmit(service, parent_service, from_zone, to_zone, false);
        let r = &mut self.reqs[id];
        if reset {
            // The answer's connection was reset: the caller sees a connection failure.
            r.outcome = Outcome::Error;
            r.code = Code::Refused;
        }
        let Hop::Arrives(delay) = hop else {
            r.state = State::Lost;
            return;
        };
        r.state = State::Responding;
        self.engine
            .schedule_at(now.after(delay), Ev::Respond { req: id });
    }

    /// Records a point on the server's side of request `id`'s span, if it is traced.
    #[inline]
    pub(super) fn trace_mark(&mut self, id: ReqId, mark: tracing::Mark, now: SimTime) {
        let span = self.reqs[id].span;
        if span != tracing::SpanRef::NONE {
            if let Some(tr) = self.tracer.as_mut() {
                tr.mark(span, mark, now);
            }
        }
    }
}
