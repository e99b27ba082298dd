//! Calls: a request's logical call to a callee, its attempts through the caller's layers, and the policy commands the model carries out.

use super::*;

/// A logical call from a request to a callee: one or more attempts under its policies.
pub(super) struct Call {
    /// The calling request.
    pub(super) parent: ReqId,
    /// The call is under way (false: finished, its slot free or about to be).
    pub(super) live: bool,
    pub(super) site: u32,
    /// The caller-side state it uses (`World::edges`): its pair's, or its caller instance's.
    pub(super) edge: u32,
    pub(super) attempt: u32,
    pub(super) attempt_started: SimTime,
    /// The call's own deadline and the one it inherited.
    pub(super) deadlines: Deadlines,
    /// Back-off memory and standing with the edge's retry budget.
    pub(super) retry: RetryState,
    /// Attempts in flight (child request ids). Hedging keeps several.
    pub(super) outstanding: [Option<ReqId>; 5],
    /// The next hedge's timer.
    pub(super) hedge_timer: Option<EventKey>,
    /// Waiting for a bulkhead permit until this time (SimTime::MAX: no own timer).
    pub(super) bulkhead_wait: Option<SimTime>,
    /// What the waiting attempt already holds.
    pub(super) wait_done: Done,
    /// The last attempt was refused by the breaker (for fallbacks on open).
    pub(super) last_open: bool,
    /// Already answered by its fallback.
    pub(super) fell_back: bool,
    /// When the call started.
    pub(super) started: SimTime,
    /// Call-scoped resources it holds (a bulkhead permit).
    pub(super) call_holds: u8,
    /// Where a call or attempt waiting for a bulkhead permit resumes in the layer stack.
    pub(super) resume_layer: u8,
    /// Its bulkhead wait is call-scoped (no attempt made yet).
    pub(super) waiting_call: bool,
    /// Bumped each time the slot is reused, to tell a live call from a finished one.
    pub(super) generation: u32,
    pub(super) measured: bool,
    pub(super) work_ns: u64,
    /// A publish call's message id (retries send the same message again).
    pub(super) msg: u64,
    /// A cache's fetch: the version of the data it reads (`cache::UPDATE`: an update of a
    /// cache's data; `cache::NO_FETCH`: neither). Cleared when the call first ends.
    pub(super) fetch_version: u64,
}

impl World<'_> {
    /// Sends one attempt of `call_id` to instance `done.host` over the network (leaving the
    /// caller's sidecar at `leave`), timing it out at `until`.
    pub(super) fn send_attempt(
        &mut self,
        now: SimTime,
        call_id: CallId,
        mut done: Done,
        until: SimTime,
        leave: SimTime,
    ) {
        let instance = done.host.expect("picked");
        let c = &self.calls[call_id];
        let (parent_req, site) = (c.parent, &self.sites[c.site as usize]);
        let (from, to, fixed_endpoint) = (site.from, site.spec.to.0, site.spec.endpoint);
        let (key, headers) = (self.reqs[parent_req].key, self.reqs[parent_req].headers);
        let crit = site.spec.criticality.unwrap_or(self.reqs[parent_req].crit);
        let from_zone = self.insts[self.reqs[parent_req].instance as usize].zone;
        let to_zone = self.insts[instance as usize].zone;
        let endpoint = self.pick_endpoint(to, fixed_endpoint, Chooser::Service(from));
        let (hop, _) = self
            .net
            .transmit(from as usize, to as usize, from_zone, to_zone, true);
        done.code = Code::Refused;
        let (holds, inflight) = (done.holds, done.inflight);
        let callee_proxy = match self.mesh.as_ref() {
            Some(m) if m.down(instance) => {
                // The callee's sidecar is gone: its port refuses connections.
                self.mesh.as_mut().expect("mesh").tally[to as usize].unreachable += 1;
                let outcome = AttemptOutcome::ConnectFailure;
                self.attempt_done(now, call_id, None, outcome, 0, 0, done);
                return;
            }
            Some(m) => m.has(instance),
            None => false,
        };
        let (lost, delay) = match hop {
            Hop::Reset => {
                // The connection is reset at once: a fast failure, nothing reaches the callee.
                self.attempt_done(
                    now,
                    call_id,
                    None,
                    AttemptOutcome::ConnectFailure,
                    0,
                    0,
                    done,
                );
                return;
            }
            Hop::Lost => (true, SimDuration::ZERO),
            Hop::Arrives(d) => (false, d),
        };
        // Its connection (when the edge pools them): reused, or opened first.
        let (sent_at, conn, connect_fails) =
            self.connection(leave, call_id, instance, (!lost).then_some(delay));
        let (lost, delay) = (
            lost || connect_fails.is_some(),
            sent_at.since(now).0 + delay.0,
        );
        let delay = SimDuration(delay);
        let mut req = Req::new(
            now,
            to,
            instance,
            endpoint,
            Origin::Call { call: call_id },
            if lost { State::Lost } else { State::Sent },
            false,
        );
        req.key = key;
        req.headers = headers;
        req.crit = crit;
        req.deadline = until;
        if let Some((dest, outbox)) = self.sites[self.calls[call_id].site as usize].spec.write {
            // A database write carrying an event: the database learns where it goes.
            req.cargo = Cargo::Write {
                dest,
                outbox,
                writer: from,
            };
        }
        if matches!(
            self.reqs[parent_req].origin,
            Origin::SagaCarrier { .. } | Origin::TxCarrier { .. }
        ) {
            req.saga_step = Some(self.carrier_step_ref(parent_req));
        }
        let spec_call = &self.sites[self.calls[call_id].site as usize].spec;
        if let Some(store) = spec_call.append {
            req.cargo = Cargo::Append { store };
        } else if let Some(proj) = spec_call.reads {
            req.cargo = Cargo::Read { proj };
        }
        if let Some(p) = self.sites[self.calls[call_id].site as usize].spec.publish {
            req.cargo = Cargo::Publish {
                dest: p.dest,
                msg: self.calls[call_id].msg,
            };
        }
        req.holds = holds;
        req.inflight = inflight;
        req.conn = conn;
        req.proxy_in = callee_proxy;
        req.connect_fail = connect_fails.is_some();
        let parent_span = self.reqs[parent_req].span;
        if let (false, Some(tr)) = (parent_span == tracing::SpanRef::NONE, self.tracer.as_mut()) {
            let k = instance - self.svcs[to as usize].first_instance;
            let attempt = self.calls[call_id].attempt;
            req.span = tr.child(parent_span, to, k, endpoint, attempt, now);
        }
        let Some(id) = self.alloc(req) else {
            return;
        };
        if let Some(slot) = self.calls[call_id]
            .outstanding
            .iter_mut()
            .find(|s| s.is_none())
        {
            *slot = Some(id);
        }
        let until = match connect_fails {
            // The connection fails before the attempt would time out: a connect failure.
            Some(at) if at < until => at,
            _ => {
                self.reqs[id].connect_fail = false;
                until
            }
        };
        if until != SimTime::MAX {
            let lane = self.lane(Lane::Site(self.calls[call_id].site));
            self.reqs[id].timeout = Some(self.engine.schedule_timer(
                lane,
                until,
                Ev::Timeout { req: id },
            ));
        }
        if !lost {
            self.engine
                .schedule_at(now.after(delay), Ev::Deliver { req: id });
        }
    }

    /// A request starts a logical call at `site`.
    pub(super) fn start_call(&mut self, now: SimTime, parent: ReqId, site: u32) {
        let s = &self.sites[site as usize].spec;
        let fetch = match (s.cache, s.updates) {
            (None, None) => cache::NO_FETCH,
            (Some(policy), _) => match self.cache_lookup(now, parent, site, policy) {
                Some(version) => version,
                None => return, // answered by the cache, or waiting for another's fetch
            },
            (None, Some(_)) => cache::UPDATE,
        };
        self.start_call_fetching(now, parent, site, fetch);
    }

    /// Starts a call (a cache's fetch of data version `fetch`, or `cache::NO_FETCH`).
    pub(super) fn start_call_fetching(
        &mut self,
        now: SimTime,
        parent: ReqId,
        site: u32,
        fetch: u64,
    ) {
        let spec = self.spec;
        let caller = self.reqs[parent].instance;
        let pair = self.sites[site as usize].edge;
        let edge = self.edge_state(now, pair, caller) as usize;
        let s = &self.sites[site as usize];
        let retry = s.spec.retry.map(|r| &spec.retries[r as usize]);
        let deadlines = Deadlines::start(
            now,
            retry.and_then(|r| r.overall_timeout),
            spec.services[s.from as usize].propagate_deadline,
            self.reqs[parent].deadline,
        );
        let measured = now >= self.warmup;
        self.edges[edge].budget.on_call_start(now);
        if measured {
            self.sites[site as usize].stats.calls += 1;
        }
        let call = Call {
            parent,
            live: true,
            site,
            edge: edge as u32,
            attempt: 0,
            attempt_started: now,
            deadlines,
            retry: RetryState::default(),
            outstanding: [None; 5],
            hedge_timer: None,
            bulkhead_wait: None,
            wait_done: Done::LOCAL,
            last_open: false,
            fell_back: false,
            started: now,
            call_holds: 0,
            resume_layer: 0,
            waiting_call: false,
            generation: 0,
            measured,
            work_ns: 0,
            msg: 0,
            fetch_version: fetch,
        };
        let publish = self.sites[site as usize].spec.publish;
        let call = match publish {
            Some(p) => Call {
                msg: self.msg.new_message_id(p.poison),
                ..call
            },
            None => call,
        };
        if self.sites[site as usize].spec.after_write {
            self.dual_publish(parent, call.msg);
        }
        let id = match self.free_calls.pop() {
            Some(i) => {
                let generation = self.calls[i].generation.wrapping_add(1);
                self.calls[i] = Call { generation, ..call };
                i
            }
            None => self.calls.push(call),
        };
        if self
            .pass_layers(now, id, Scope::Call, 0, Done::LOCAL)
            .is_some()
        {
            self.first_attempt(now, id);
        }
    }

    /// Sends a call's first attempt and, when it hedges, arms the next.
    pub(super) fn first_attempt(&mut self, now: SimTime, id: CallId) {
        // The first attempt may end the call at once (a reset link, a refusing layer), and
        // the slot may even hold a new call by then: `run_commands` stops there.
        let mut out = Commands::default();
        out.push(CallCommand::SendAttempt);
        if self.sites[self.calls[id].site as usize]
            .spec
            .hedge
            .is_some()
        {
            out.push(CallCommand::ArmHedge);
        }
        self.run_commands(now, id, out);
    }

    /// A call's back-off is over: retry, unless its deadline came first.
    pub(super) fn on_retry(&mut self, now: SimTime, id: CallId) {
        if now >= self.call_deadline(id) {
            let c = &mut self.calls[id];
            let edge = c.edge;
            self.edges[edge as usize]
                .budget
                .end_retry(&mut c.retry.ticket);
            self.finish_call(now, id, Outcome::Timeout);
        } else {
            self.attempt(now, id);
        }
    }

    /// Schedules the next hedge of a live hedged call, if it has attempts left.
    pub(super) fn arm_hedge(&mut self, now: SimTime, id: CallId) {
        let spec = self.spec;
        let c = &self.calls[id];
        let site = &self.sites[c.site as usize];
        let h = &spec.hedges[site.spec.hedge.expect("hedged") as usize];
        if !h.next_due(c.attempt, c.hedge_timer.is_some()) {
            return;
        }
        let delay = match &self.edges[c.edge as usize].attempt_latency {
            Some(seen) => h.delay(seen.count(), |q| SimDuration(seen.percentile_ns(q))),
            None => h.delay(0, |_| unreachable!("a fixed delay asks no percentile")),
        };
        let lane = self.lane(Lane::Hedge(c.site));
        let key = self
            .engine
            .schedule_timer(lane, now.after(delay), Ev::Hedge { call: id });
        self.calls[id].hedge_timer = Some(key);
    }

    /// A hedge timer fired: send one more attempt.
    pub(super) fn on_hedge(&mut self, now: SimTime, id: CallId) {
        self.calls[id].hedge_timer = None;
        let mut out = Commands::default();
        if self.calls[id].bulkhead_wait.is_none() {
            out.push(CallCommand::SendAttempt);
        }
        // (While the previous attempt still waits for a bulkhead permit, hedging cannot add
        // load: only the timer is re-armed.)
        out.push(CallCommand::ArmHedge);
        self.run_commands(now, id, out);
    }

    /// Whether call slot `id` holds a live call (not on the free list).
    pub(super) fn free_calls_live(&self, id: CallId) -> bool {
        self.calls[id].live
    }

    /// Abandons every attempt of a call still in flight (the losers of a hedge), releasing
    /// what they hold at the caller; nothing is reported about them.
    pub(super) fn cancel_attempts(&mut self, now: SimTime, id: CallId) {
        let (edge, site, measured) = {
            let c = &self.calls[id];
            (c.edge, c.site as usize, c.measured)
        };
        let outstanding = std::mem::take(&mut self.calls[id].outstanding);
        for child in outstanding.into_iter().flatten() {
            if measured {
                // Counted as answered by nothing: the call stopped waiting for it.
                self.sites[site].stats.responses.counts[7] += 1;
            }
            let r = &mut self.reqs[child];
            r.abandoned = true;
            let done = r.take_done(Code::None);
            if let Some(k) = r.timeout.take() {
                self.engine.cancel(k);
            }
            if r.state == State::Lost {
                // Nothing will come back: free it now.
                let (s, work, arrived) = (r.service as usize, r.work_ns, r.arrived);
                if arrived {
                    self.svcs[s].wasted_ns += work as u128;
                }
                self.release(child);
            }
            self.release_attempt(now, edge, AttemptOutcome::Timeout, 0, done, false);
        }
    }

    /// Makes the next attempt of a call through its client layers, outermost first
    /// (POLICIES.md §19): breaker ⊃ adaptive throttle ⊃ concurrency limit ⊃ bulkhead ⊃
    /// balancer pick ⊃ send. A layer that refuses ends the attempt locally.
    pub(super) fn attempt(&mut self, now: SimTime, id: CallId) {
        let c = &mut self.calls[id];
        c.attempt += 1;
        c.attempt_started = now;
        c.last_open = false;
        if let Some(done) = self.pass_layers(now, id, Scope::Attempt, 0, Done::LOCAL) {
            self.dispatch(now, id, done);
        }
    }

    /// The end of call `id` as a whole: its retry policy's overall timeout, and the calling
    /// request's deadline when its service propagates deadlines.
    pub(super) fn call_deadline(&self, id: CallId) -> SimTime {
        self.calls[id].deadlines.call_end()
    }

    /// When the current attempt of call `id` times out: its per-try timeout within the call's
    /// overall deadline, and within the calling request's deadline when its service propagates it.
    pub(super) fn attempt_deadline(&self, now: SimTime, id: CallId) -> SimTime {
        let c = &self.calls[id];
        let per_try = self.sites[c.site as usize].spec.timeout;
        c.deadlines.attempt_end(now, per_try)
    }

    /// The attempt passed its caller-side limits: pick an instance and send.
    pub(super) fn dispatch(&mut self, now: SimTime, id: CallId, mut done: Done) {
        let c = &self.calls[id];
        let (site, attempt, measured) = (c.site, c.attempt, c.measured);
        let edge = c.edge;
        let until = self.attempt_deadline(now, id);
        if until <= now {
            // The deadline has already passed: DEADLINE_EXCEEDED without sending.
            self.attempt_done(now, id, None, AttemptOutcome::Timeout, 0, 0, done);
            return;
        }
        let parent = &self.reqs[c.parent];
        let (key, headers, zone) = (
            parent.key,
            parent.headers,
            self.insts[parent.instance as usize].zone,
        );
        // The caller's own sidecar first: the application hands it the request.
        let leave = match self.outbound_proxy(now, id) {
            Ok(t) => t,
            Err(outcome) => {
                self.attempt_done(now, id, None, outcome, 0, 0, done);
                return;
            }
        };
        let Some(host) = self.pick_host(now, edge, key, headers, zone) else {
            if measured {
                self.sites[site as usize].stats.no_healthy_upstream += 1;
            }
            self.attempt_done(now, id, None, AttemptOutcome::Refused, 0, 0, done);
            return;
        };
        let hedged = self.sites[site as usize].spec.hedge.is_some();
        // Down, or no longer (or not yet) in service.
        let dead = self.insts[host as usize].fault.down || !self.insts[host as usize].present;
        let e = &mut self.edges[edge as usize];
        e.active[(host - e.first_host) as usize] += 1;
        if measured {
            let st = &mut self.sites[site as usize].stats;
            st.calls_to_dead += dead as u64;
            st.attempts += 1;
            if attempt > 1 {
                if hedged {
                    st.hedges += 1;
                } else {
                    st.retries += 1;
                }
            }
        }
        done.host = Some(host);
        self.send_attempt(now, id, done, until, leave);
    }

    /// An attempt ended: release what it held, record it, then retry or finish the call.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn attempt_done(
        &mut self,
        now: SimTime,
        id: CallId,
        child: Option<ReqId>,
        outcome: AttemptOutcome,
        work_ns: u64,
        attempt_ns: u64,
        done: Done,
    ) {
        let spec = self.spec;
        if let (None, Some(tr)) = (child, self.tracer.as_mut()) {
            // Nothing was sent: an instant span says why.
            let c = &self.calls[id];
            let (parent_span, attempt) = (self.reqs[c.parent].span, c.attempt);
            let to = self.sites[c.site as usize].spec.to.0;
            let k = done.host.map_or(tracing::NONE, |host| {
                host - self.svcs[to as usize].first_instance
            });
            let s = tr.child(parent_span, to, k, tracing::NONE, attempt, now);
            tr.close(s, now, outcome.name());
        }
        let c = &mut self.calls[id];
        c.work_ns += work_ns;
        if child.is_some() {
            if let Some(slot) = c.outstanding.iter_mut().find(|s| **s == child) {
                *slot = None;
            }
        }
        c.last_open = outcome == AttemptOutcome::CircuitOpen;
        // Every attempt sent got an answer or none (a connection that failed before anything
        // was sent counts too): the counts add up to `attempts`.
        if c.measured && (child.is_some() || outcome == AttemptOutcome::ConnectFailure) {
            count_response(
                &mut self.sites[c.site as usize].stats.responses,
                outcome,
                done.code,
            );
        }
        let c = &mut self.calls[id];
        let edge = c.edge;
        let site = &self.sites[c.site as usize];
        let retry = site.spec.retry.map(|r| &spec.retries[r as usize]);
        self.release_attempt(now, edge, outcome, attempt_ns, done, true);
        let c = &mut self.calls[id];
        let e = &mut self.edges[edge as usize];
        e.budget.end_retry(&mut c.retry.ticket);
        if outcome != AttemptOutcome::CircuitOpen {
            if let Some(b) = e.breaker.as_mut().filter(|_| !e.breaker_per_call) {
                let result = breaker::classify(outcome, e.record, e.ignore);
                let t = b.on_result(now, result, SimDuration(attempt_ns));
                self.breaker_changed(now, edge, t);
            }
            if outcome == AttemptOutcome::Ok {
                if let Some(l) = self.edges[edge as usize].attempt_latency.as_mut() {
                    l.record(attempt_ns);
                }
            }
        }
        if let Some(h) = self.sites[self.calls[id].site as usize].spec.hedge {
            let h = &spec.hedges[h as usize];
            let c = &self.calls[id];
            let outstanding = c.outstanding.iter().flatten().count();
            let mut out = Commands::default();
            h.on_attempt_done(outcome, c.attempt, outstanding, &mut out);
            self.run_commands(now, id, out);
            return;
        }
        let deadline = self.call_deadline(id);
        let e = &mut self.edges[edge as usize];
        let c = &mut self.calls[id];
        let local_refusal = matches!(
            outcome,
            AttemptOutcome::CircuitOpen | AttemptOutcome::Refused
        );
        e.budget.on_attempt_result(
            outcome == AttemptOutcome::Ok,
            local_refusal,
            &c.retry.ticket,
        );
        let max_retries = e.bulkhead.as_ref().and_then(|b| b.max_retries());
        let decision = match retry {
            Some(r) => r.decide(
                now,
                c.attempt,
                outcome,
                done.status(),
                deadline,
                &mut c.retry,
                &mut e.budget,
                max_retries,
                &mut e.rng,
            ),
            None => retry::no_retry(outcome),
        };
        match decision {
            RetryDecision::RetryAt(at) => {
                self.engine.schedule_at(at, Ev::Retry { call: id });
            }
            RetryDecision::Finish {
                outcome,
                budget_denied,
            } => {
                if budget_denied && c.measured {
                    self.sites[c.site as usize].stats.budget_denied += 1;
                }
                self.finish_call(now, id, outcome);
            }
        }
    }

    /// Carries out the commands a call machine wrote, in order, until the call ends (a
    /// command may end it: an attempt refused at once, a finish).
    pub(super) fn run_commands(&mut self, now: SimTime, id: CallId, out: Commands) {
        let generation = self.calls[id].generation;
        for &cmd in out.as_slice() {
            if self.calls[id].generation != generation || !self.free_calls_live(id) {
                return;
            }
            match cmd {
                CallCommand::CancelOutstanding => self.cancel_attempts(now, id),
                CallCommand::CancelHedgeTimer => {
                    if let Some(k) = self.calls[id].hedge_timer.take() {
                        self.engine.cancel(k);
                    }
                }
                CallCommand::SendAttempt => self.attempt(now, id),
                CallCommand::ArmHedge => self.arm_hedge(now, id),
                CallCommand::Finish(outcome) => self.finish_call(now, id, outcome),
            }
        }
    }

    /// A logical call ended: tell the calling request (or answer with the breaker's fallback).
    pub(super) fn finish_call(&mut self, now: SimTime, id: CallId, outcome: Outcome) {
        if self.calls[id].fetch_version != cache::NO_FETCH {
            self.cache_call_ended(now, id, outcome);
        }
        let edge = self.calls[id].edge;
        if self.calls[id].bulkhead_wait.take().is_some() {
            // A hedged attempt still waiting for a permit stops waiting.
            let done = self.calls[id].wait_done;
            if let Some(b) = self.edges[edge as usize].bulkhead.as_mut() {
                b.give_up(id.0, false);
            }
            self.release_attempt(now, edge, AttemptOutcome::Timeout, 0, done, false);
        }
        let c = &mut self.calls[id];
        let (holds, started) = (std::mem::take(&mut c.call_holds), c.started);
        // A call-scoped breaker sees one result per call, after all its retries.
        let how = Ended {
            outcome: AttemptOutcome::from(outcome),
            elapsed: now.since(started),
            inflight: 0,
            sample: false,
        };
        self.release_holds(now, edge, holds, how);
        let c = &mut self.calls[id];
        let fallback = self.edges[edge as usize].fallback;
        if let Some(at) = fallback.and_then(|f| f.answer_at(now, outcome, c.last_open, c.fell_back))
        {
            c.fell_back = true;
            if c.measured {
                self.sites[c.site as usize].stats.fallbacks += 1;
            }
            if let Some(k) = c.hedge_timer.take() {
                self.engine.cancel(k);
            }
            self.engine.schedule_at(at, Ev::Fallback { call: id });
            return;
        }
        let c = &self.calls[id];
        let (parent, work, measured) = (c.parent, c.work_ns, c.measured);
        if outcome != Outcome::Ok && self.sites[c.site as usize].spec.after_write {
            let msg = c.msg;
            self.msg.dual_publish_failed(now, msg);
        }
        let c = &self.calls[id];
        let site = c.site as usize;
        let (edge, required) = (c.edge as usize, self.sites[site].spec.required);
        if let Some(k) = self.calls[id].hedge_timer.take() {
            self.engine.cancel(k);
        }
        self.calls[id].live = false;
        self.edges[edge].budget.on_call_end();
        if measured {
            let st = &mut self.sites[site].stats;
            if outcome == Outcome::Ok {
                st.ok += 1;
            } else {
                st.failed += 1;
            }
        }
        if let Some(m) = self.sites[site].migration {
            let took = now.since(self.calls[id].started).0;
            self.migrations[m as usize].record(outcome, took);
        }
        self.free_calls.push(id);
        self.call_result(now, parent, outcome, required, work);
    }

    pub(super) fn on_respond(&mut self, now: SimTime, id: ReqId) {
        let r = &mut self.reqs[id];
        if r.abandoned {
            // The caller timed out while the answer travelled.
            let (s, work) = (r.service as usize, r.work_ns);
            self.svcs[s].wasted_ns += work as u128;
            self.release(id);
            return;
        }
        if let Some(k) = r.timeout.take() {
            self.engine.cancel(k);
        }
        let Origin::Call { call } = r.origin else {
            unreachable!("only attempts are answered over the network")
        };
        let (outcome, work, sent) = (r.outcome, r.work_ns, r.sent);
        let code = r.code;
        let done = r.take_done(code);
        let span = r.span;
        self.release(id);
        let attempt = match done.code {
            Code::Refused => AttemptOutcome::ConnectFailure,
            Code::Forbidden => AttemptOutcome::Forbidden,
            Code::Limited => AttemptOutcome::RateLimited,
            Code::Status(s) => match s.status().attempt_outcome() {
                a @ (AttemptOutcome::RateLimited | AttemptOutcome::Forbidden) => a,
                _ => AttemptOutcome::from(outcome),
            },
            _ => AttemptOutcome::from(outcome),
        };
        if let Some(tr) = self.tracer.as_mut() {
            tr.close(span, now, attempt.name());
        }
        self.attempt_done(now, call, Some(id), attempt, work, now.since(sent).0, done);
    }

    /// A call of `parent` ended with `outcome`. Inlined: it sits on every call's path.
    #[inline(always)]
    pub(super) fn call_result(
        &mut self,
        now: SimTime,
        parent: ReqId,
        outcome: Outcome,
        required: bool,
        work_ns: u64,
    ) {
        if matches!(
            self.reqs[parent].origin,
            Origin::SagaCarrier { .. } | Origin::CacheFill | Origin::TxCarrier { .. }
        ) {
            self.carrier_result(now, parent, outcome);
            return;
        }
        let p = &mut self.reqs[parent];
        p.work_ns += work_ns;
        p.pending -= 1;
        if outcome != Outcome::Ok && required {
            p.failed = true;
        }
        if p.pending > 0 {
            return;
        }
        if p.killed {
            // Its instance crashed while it waited: nobody needs these answers.
            self.release(parent);
            return;
        }
        let i = p.instance as usize;
        if self.insts[i].paused_at.is_some() {
            self.insts[i].frozen.push(faults::Frozen::Advance(parent));
            return;
        }
        self.resume_after_calls(now, parent);
    }

    /// Which step of which saga or transaction a call of `carrier` makes: its participant's
    /// request carries it. (Out of line: most calls have no carrier.)
    #[cold]
    #[inline(never)]
    fn carrier_step_ref(&self, carrier: ReqId) -> SagaStepRef {
        let c = &self.reqs[carrier];
        match c.origin {
            Origin::SagaCarrier { saga } => SagaStepRef {
                saga,
                code: self.saga_step_code(saga, c.step),
            },
            Origin::TxCarrier { tx } => SagaStepRef {
                saga: tx,
                code: self.tx_code(tx, c.step),
            },
            _ => unreachable!("only carriers"),
        }
    }

    /// A carrier's call ended: a saga's orchestrator decides; a cache refresh's carrier has
    /// done its work (the cache filled itself as the call ended).
    #[cold]
    #[inline(never)]
    fn carrier_result(&mut self, now: SimTime, carrier: ReqId, outcome: Outcome) {
        match self.reqs[carrier].origin {
            Origin::SagaCarrier { .. } => self.saga_reply(now, carrier, outcome),
            Origin::TxCarrier { .. } => self.tx_reply(now, carrier, outcome),
            _ => self.release(carrier),
        }
    }

    /// All calls of a step answered: fail the request or go on with its handler.
    pub(super) fn resume_after_calls(&mut self, now: SimTime, id: ReqId) {
        let p = &mut self.reqs[id];
        if p.failed {
            self.complete(now, id);
        } else {
            p.step += 1;
            self.advance(now, id);
        }
    }

    pub(super) fn on_timeout(&mut self, now: SimTime, id: ReqId) {
        let r = &mut self.reqs[id];
        r.timeout = None;
        r.abandoned = true;
        let (s, measured, arrived, origin) = (r.service as usize, r.measured, r.arrived, r.origin);
        // The callee counts requests it received whose caller gave up on them.
        if arrived {
            if measured {
                self.svcs[s].counts.timeouts += 1;
                self.insts[self.reqs[id].instance as usize]
                    .tally
                    .counts
                    .timeouts += 1;
            }
            self.svcs[s].bucket.timeouts += 1;
        }
        if origin == Origin::Probe {
            self.probe_result(now, id, false);
        } else if let Origin::Registry { op, subject, .. } = origin {
            self.registry_answered(now, op, subject, discovery::Answer::Timeout);
        } else if let Origin::Call { call } = origin {
            let r = &mut self.reqs[id];
            let sent = r.sent;
            let done = r.take_done(Code::None);
            let outcome = if std::mem::take(&mut r.connect_fail) {
                AttemptOutcome::ConnectFailure
            } else {
                AttemptOutcome::Timeout
            };
            if let Some(tr) = self.tracer.as_mut() {
                tr.close(r.span, now, outcome.name());
            }
            self.attempt_done(now, call, Some(id), outcome, 0, now.since(sent).0, done);
        } else {
            // Only clients, calls and health checks set timeouts.
            self.client_result(now, id, Outcome::Timeout);
        }
        let r = &self.reqs[id];
        match r.state {
            // Never arrived, or its answer was lost: nothing will come back.
            State::Lost => {
                if r.arrived {
                    let work = r.work_ns;
                    self.svcs[s].wasted_ns += work as u128;
                }
                self.release(id);
            }
            // Still working, or its answer is on the way: freed when that ends.
            State::Sent | State::Running | State::Responding | State::Free => {}
        }
    }
}

/// Counts one attempt's answer by status: the one a fault chose, else its outcome's.
fn count_response(r: &mut crate::results::Responses, outcome: AttemptOutcome, code: Code) {
    let k = match (outcome, code) {
        (AttemptOutcome::Ok, _) => 0,
        (_, Code::Status(s)) => {
            r.add_chosen(s, 1);
            return;
        }
        (AttemptOutcome::Forbidden, _) => 1,
        (AttemptOutcome::RateLimited, _) => 2,
        (AttemptOutcome::Error, _) => 3,
        (AttemptOutcome::Rejected, _) => 4,
        (AttemptOutcome::ConnectFailure, _) => 5,
        (AttemptOutcome::Timeout, _) => 6,
        // Refused by the caller's own layers: counted by layer, no answer to count.
        (AttemptOutcome::CircuitOpen | AttemptOutcome::Refused, _) => return,
    };
    r.counts[k] += 1;
}
