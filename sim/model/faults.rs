//! Instance faults that change what is in flight: crashes that lose running work, pauses that
//! freeze an instance, and random failure processes.
//!
//! A crash tells each caller at once that its connection was reset (a process that dies gets
//! its sockets closed by the kernel), and whatever the instance was doing is dropped at once:
//! queued and running work, requests waiting on calls (their calls' answers are ignored). A pause holds deliveries, completions and resumed handlers until it ends
//! and stretches running work by the time paused; timers of calls the paused instance made
//! still fire (a simplification: the caller's clock keeps running).

use super::*;

/// Something a paused instance will do when it resumes.
#[derive(Clone, Copy, Debug)]
pub(super) enum Frozen {
    /// A request arrived.
    Deliver(ReqId),
    /// A work step had this much left when the pause began, ns.
    Work(ReqId, u64),
    /// A request's calls all finished: continue its handler.
    Advance(ReqId),
}

impl World<'_> {
    /// Crashes (`down`) or restarts instance `i`.
    pub(super) fn set_down(&mut self, now: SimTime, i: usize, down: bool) {
        let was = self.insts[i].fault.down;
        if let (false, true, Some(reg)) = (down, was, self.spec.registry.as_ref()) {
            // A restart: the process boots, then listens and registers.
            let at = now.after(reg.startup);
            self.insts[i].booting = Some(at);
            self.engine.schedule_at(at, Ev::Boot { inst: i as u32 });
            return;
        }
        if down {
            self.insts[i].booting = None;
        } else if was {
            // Restarted (no registry: it serves at once), cold.
            self.insts[i].booted_at = Some(now);
        }
        self.insts[i].fault.down = down;
        if down && !was {
            self.insts[i].epoch += 1;
            // A crashed process is no longer paused: what the pause held is resolved below.
            if let Some(since) = self.insts[i].paused_at.take() {
                self.insts[i].paused_ns += now.since(since).0;
            }
            self.kill_in_flight(now, i);
            if !self.spec.transactions.is_empty() {
                self.tx_coordinator_crashed(now, i);
            }
        }
    }

    /// Drops everything instance `i` holds; callers see a connection reset now. Workers,
    /// threads and queue places are given back at once; a dropped request's slot is freed as
    /// soon as no event refers to it any more (its work's end, its calls' answers).
    pub(super) fn kill_in_flight(&mut self, now: SimTime, i: usize) {
        let frozen = std::mem::take(&mut self.insts[i].frozen);
        let mut free_now: Vec<ReqId> = self.insts[i].queue.drain().collect();
        free_now.extend(self.insts[i].admit.drain());
        for f in &frozen {
            if let Frozen::Work(id, _) | Frozen::Advance(id) = *f {
                free_now.push(id);
            }
        }
        let victims: Vec<ReqId> = self
            .reqs
            .iter_ids()
            .filter(|&(_, r)| {
                r.instance as usize == i
                    && r.state == State::Running
                    && !r.killed
                    // A saga's carrier is the orchestrator's durable state, not a process.
                    && !matches!(
                        r.origin,
                        Origin::SagaCarrier { .. } | Origin::CacheFill | Origin::TxCarrier { .. }
                    )
            })
            .map(|(id, _)| id)
            .collect();
        let s = self.insts[i].service as usize;
        let threads = self.spec.services[s].threads.is_some();
        for &id in &victims {
            self.writer_died(id);
            let r = &mut self.reqs[id];
            r.killed = true;
            if !r.abandoned {
                r.abandoned = true;
                if let Some(k) = r.timeout.take() {
                    self.engine.cancel(k);
                }
                let (origin, sent) = (r.origin, r.sent);
                match origin {
                    Origin::Probe => self.probe_result(now, id, false),
                    Origin::Registry { op, subject, .. } => {
                        self.registry_answered(now, op, subject, discovery::Answer::Error);
                    }
                    Origin::Delivery { .. } => self.delivery_done(now, id, Outcome::Error, true),
                    Origin::Projection { .. } => {
                        self.projection_applied(now, id, false);
                    }
                    // A one-way message (fire and forget): lost, and nobody knows.
                    Origin::OneWay
                    | Origin::SagaCarrier { .. }
                    | Origin::CacheFill
                    | Origin::TxCarrier { .. } => {}
                    Origin::Client { .. } => self.client_account(now, id, Outcome::Error),
                    Origin::Call { call: parent } => {
                        let r = &mut self.reqs[id];
                        let done = r.take_done(Code::Refused);
                        self.attempt_done(
                            now,
                            parent,
                            Some(id),
                            AttemptOutcome::ConnectFailure,
                            0,
                            now.since(sent).0,
                            done,
                        );
                    }
                }
            }
            if std::mem::take(&mut self.reqs[id].admitted) {
                self.insts[i].in_flight -= 1;
                self.held_change(s, now, -1);
                if threads {
                    self.insts[i].threads_busy -= 1;
                }
            }
            let r = &mut self.reqs[id];
            let working = std::mem::take(&mut r.working);
            if working {
                r.work_ns += now.since(r.work_started).0;
            }
            let work = r.work_ns;
            if working {
                self.account_busy(s, now);
                self.svcs[s].busy -= 1;
                self.insts[i].busy -= 1;
                if self.host_drop(now, i, id) {
                    // Off its host's CPU: no end of work will come for it.
                    free_now.push(id);
                }
            }
            self.svcs[s].wasted_ns += work as u128;
            self.release_server_limit(now, id, Outcome::Error);
            if free_now.contains(&id) {
                self.release(id);
            }
        }
        for f in frozen {
            if let Frozen::Deliver(id) = f {
                // Held at the door: now refused like any new connection.
                self.on_deliver(now, id);
            }
        }
    }

    /// A pause of instance `i` starts or ends.
    pub(super) fn set_paused(&mut self, now: SimTime, i: usize, on: bool) {
        let inst = &mut self.insts[i];
        if on {
            if inst.paused_at.is_none() {
                inst.paused_at = Some(now);
            }
            return;
        }
        let Some(since) = inst.paused_at.take() else {
            return;
        };
        inst.paused_ns += now.since(since).0;
        let mark = inst.paused_ns;
        for f in std::mem::take(&mut inst.frozen) {
            match f {
                Frozen::Deliver(id) => self.on_deliver(now, id),
                Frozen::Work(id, left_ns) => {
                    self.reqs[id].pause_mark = mark;
                    self.engine
                        .schedule_at(now.after(SimDuration(left_ns)), Ev::WorkDone { req: id });
                }
                Frozen::Advance(id) => self.resume_after_calls(now, id),
            }
        }
    }

    /// The random stream name of fault `idx` on instance `i`: "fault:IDX:SERVICE/K".
    fn fault_stream(&self, idx: u32, i: usize) -> String {
        let s = self.insts[i].service as usize;
        let k = i as u32 - self.svcs[s].first_instance;
        format!("fault:{idx}:{}/{k}", self.spec.services[s].name)
    }

    /// Starts or stops the pauses of a `gc` fault (`idx`) on instance `i`.
    pub(super) fn set_gc(&mut self, now: SimTime, idx: u32, i: usize, on: bool) {
        let FaultKind::Gc {
            every, periodic, ..
        } = self.spec.faults[idx as usize].kind
        else {
            return;
        };
        if on {
            let name = format!("{}:gc", self.fault_stream(idx, i));
            let mut rng = SimRng::for_component(self.spec.seed, &name);
            // Instances do not collect in step: a periodic one starts at a random phase.
            let first = if periodic {
                (rng.unit() * every.0 as f64) as u64
            } else {
                exp_gap(every, &mut rng)
            };
            self.gcs.insert(
                i,
                Gc {
                    fault: idx,
                    rng,
                    started: now,
                    pausing: false,
                },
            );
            let inst = i as u32;
            self.engine
                .schedule_at(now.after(SimDuration(first)), Ev::GcPause { inst });
        } else if let Some(g) = self.gcs.remove(&i) {
            if g.pausing {
                self.set_paused(now, i, false);
            }
        }
    }

    /// A `gc` pause starts (`pause`) or ends on instance `inst`.
    pub(super) fn on_gc(&mut self, now: SimTime, inst: u32, pause: bool) {
        let i = inst as usize;
        let Some(g) = self.gcs.get_mut(&i) else {
            return;
        };
        let FaultKind::Gc {
            every,
            pause: length,
            periodic,
        } = self.spec.faults[g.fault as usize].kind
        else {
            return;
        };
        if pause {
            g.pausing = true;
            g.started = now;
            self.engine
                .schedule_at(now.after(length), Ev::GcResume { inst });
            self.set_paused(now, i, true);
        } else {
            g.pausing = false;
            let next = if periodic {
                g.started.after(every)
            } else {
                now.after(SimDuration(exp_gap(every, &mut g.rng)))
            };
            self.engine.schedule_at(next, Ev::GcPause { inst });
            self.set_paused(now, i, false);
        }
    }

    /// Starts or stops a random failure process (fault `idx`) on instance `i`.
    pub(super) fn set_random(&mut self, now: SimTime, idx: u32, i: usize, on: bool) {
        if on {
            let name = self.fault_stream(idx, i);
            self.randoms
                .insert(i, (idx, SimRng::for_component(self.spec.seed, &name)));
            self.schedule_random(now, i, true);
        } else if self.randoms.remove(&i).is_some() && self.insts[i].fault.down {
            self.set_down(now, i, false);
            self.log_instance(now, i, InstanceState::Up, "repaired (random failures end)");
        }
    }

    /// Schedules the next failure (`fail`) or repair of instance `i`.
    fn schedule_random(&mut self, now: SimTime, i: usize, fail: bool) {
        let Some((idx, rng)) = self.randoms.get_mut(&i) else {
            return;
        };
        let FaultKind::RandomCrash { mttf, mttr } = self.spec.faults[*idx as usize].kind else {
            return;
        };
        let mean = if fail { mttf } else { mttr };
        let gap = Exp::new(1.0 / mean.0 as f64)
            .expect("validated mean > 0")
            .sample(rng);
        let at = now.after(SimDuration(gap.round() as u64));
        let inst = i as u32;
        self.engine.schedule_at(
            at,
            if fail {
                Ev::Fail { inst }
            } else {
                Ev::Repair { inst }
            },
        );
    }

    /// A random failure (`fail`) or repair is due on instance `inst`.
    pub(super) fn on_random_fail(&mut self, now: SimTime, inst: u32, fail: bool) {
        let i = inst as usize;
        let Some((idx, _)) = self.randoms.get(&i) else {
            return;
        };
        if now >= self.spec.faults[*idx as usize].until {
            return;
        }
        self.set_down(now, i, fail);
        let (to, why) = if fail {
            (InstanceState::Down, "random failure: in-flight work lost")
        } else {
            (InstanceState::Up, "repaired")
        };
        self.log_instance(now, i, to, why);
        self.schedule_random(now, i, !fail);
    }

    pub(super) fn log_instance(
        &mut self,
        now: SimTime,
        i: usize,
        to: InstanceState,
        why: &'static str,
    ) {
        let s = self.insts[i].service as usize;
        let k = i as u32 - self.svcs[s].first_instance;
        self.log.push(StateEvent {
            t_s: secs(now),
            subject: format!("{}/{k}", self.spec.services[s].name),
            change: Change::Instance {
                to,
                why: why.into(),
            },
        });
    }
}

impl World<'_> {
    /// Starts (`on`) or ends a fault, and logs it.
    pub(super) fn set_fault(&mut self, now: SimTime, idx: u32, on: bool) {
        let f = &self.spec.faults[idx as usize];
        let svc = &self.svcs[f.target.0 as usize];
        let (first, n) = (svc.first_instance, svc.instances);
        let instances = match f.instance {
            Some(k) => first + k..first + k + 1,
            None => first..first + n,
        };
        let subject;
        match f.kind {
            FaultKind::ZoneOutage(z) => {
                for i in 0..self.insts.len() {
                    if self.insts[i].zone == z {
                        self.set_down(now, i, on);
                    }
                }
                subject = format!("zone {}", self.spec.zones[z as usize]);
            }
            FaultKind::HostOutage(h) => {
                for i in 0..self.insts.len() {
                    if self.insts[i].host == h {
                        self.set_down(now, i, on);
                    }
                }
                subject = format!("host {}", self.spec.hosts[h as usize].name);
            }
            FaultKind::CpuHog { host, threads } => {
                self.host_hog(now, host, threads, on);
                subject = format!("host {}", self.spec.hosts[host as usize].name);
            }
            FaultKind::RegistryOutage => {
                self.directory.outage(now, on);
                subject = "registry".into();
            }
            FaultKind::RegistryPartition => {
                let s = f.target.0 as usize;
                self.directory.partition(s, on);
                subject = format!("{}<->registry", self.spec.services[s].name);
            }
            FaultKind::ZonePartition(a, b) => {
                self.net.cut_zones(a, b, on);
                subject = format!(
                    "zones {}<->{}",
                    self.spec.zones[a as usize], self.spec.zones[b as usize]
                );
            }
            FaultKind::Partition | FaultKind::Reset | FaultKind::Loss(_) => {
                let peer = f.peer.expect("validated").0 as usize;
                let a = f.target.0 as usize;
                let value = match (on, f.kind) {
                    (false, _) => LinkFault::None,
                    (true, FaultKind::Partition) => LinkFault::Partition,
                    (true, FaultKind::Reset) => LinkFault::Reset,
                    (true, FaultKind::Loss(p)) => LinkFault::Loss(p),
                    _ => unreachable!("link faults only"),
                };
                self.net.set_link_fault(a, peer, value);
                subject = format!(
                    "{}<->{}",
                    self.spec.services[a].name, self.spec.services[peer].name
                );
            }
            kind => {
                for i in instances {
                    let fault = &mut self.insts[i as usize].fault;
                    match kind {
                        FaultKind::Crash => self.set_down(now, i as usize, on),
                        FaultKind::ProxyCrash => {
                            // The sidecar's connections die with it, both ways.
                            self.insts[i as usize].epoch += 1;
                            if let Some(m) = self.mesh.as_mut() {
                                m.set_down(i, on);
                            }
                        }
                        FaultKind::Pause => self.set_paused(now, i as usize, on),
                        FaultKind::RandomCrash { .. } => self.set_random(now, idx, i as usize, on),
                        FaultKind::Gc { .. } => self.set_gc(now, idx, i as usize, on),
                        FaultKind::Abort(code) => {
                            fault.abort = if on { f.p } else { 0.0 };
                            fault.abort_code = code;
                        }
                        FaultKind::Delay(add) => fault.delay = on.then_some((add, f.p)),
                        FaultKind::Slow { multiply, workers } => {
                            fault.slow = if on { multiply } else { 1.0 };
                            fault.slow_p = f.p;
                            fault.workers = if on { workers } else { None };
                            if !on {
                                // Workers are back: start waiting work on them.
                                self.fill_workers(now, i as usize);
                            }
                        }
                        _ => unreachable!("instance faults only"),
                    }
                }
                let name = &self.spec.services[f.target.0 as usize].name;
                subject = match f.instance {
                    Some(k) => format!("{name}/{k}"),
                    None => name.clone(),
                };
            }
        }
        let detail = match f.kind {
            FaultKind::Delay(d) => format!("latency +{d} for {}% of requests", f.p * 100.0),
            FaultKind::Abort(code) => {
                format!("{} for {}% of requests", code.status().name(), f.p * 100.0)
            }
            FaultKind::Slow { multiply, workers } => match workers {
                Some(w) => format!("work x{multiply}, {w} workers"),
                None => format!("work x{multiply}"),
            },
            FaultKind::Crash => "crash: in-flight work lost, connections refused".into(),
            FaultKind::ProxyCrash => {
                "sidecar crash: the instance is unreachable and cannot call out".into()
            }
            FaultKind::Pause => "pause: the instance freezes".into(),
            FaultKind::ZoneOutage(_) => "zone outage: every instance in it down".into(),
            FaultKind::HostOutage(_) => "host outage: every instance on it down".into(),
            FaultKind::CpuHog { threads, .. } => {
                format!("cpu hog: {threads} more runnable threads share its cores")
            }
            FaultKind::ZonePartition(..) => "zone partition: messages between them dropped".into(),
            FaultKind::RegistryOutage => {
                "registry outage: no heartbeats, checks or cache refreshes".into()
            }
            FaultKind::RegistryPartition => {
                "cut off from the registry: its heartbeats and refreshes fail".into()
            }
            FaultKind::RandomCrash { mttf, mttr } => {
                format!("random failures: mean {mttf} up, {mttr} down")
            }
            FaultKind::Gc {
                every,
                pause,
                periodic,
            } => {
                let how = if periodic { "every" } else { "mean gap" };
                format!("stop-the-world pauses of {pause}, {how} {every}")
            }
            FaultKind::Partition => "partition: messages dropped".into(),
            FaultKind::Reset => "reset: connections fail fast".into(),
            FaultKind::Loss(p) => format!("loss {p}"),
        };
        if let (true, Some(t)) = (on, self.recovery.as_mut()) {
            t.describe(&format!("fault{idx}"), || {
                format!("{} {subject}", Change::fault_label(&detail))
            });
        }
        self.log.push(StateEvent {
            t_s: secs(now),
            subject,
            change: Change::Fault {
                on,
                what: detail.into(),
            },
        });
    }
}

/// One instance's `gc` pause process.
pub(super) struct Gc {
    /// The fault.
    fault: u32,
    rng: SimRng,
    /// When the current or last pause started.
    started: SimTime,
    /// Paused by it now.
    pausing: bool,
}

/// An exponential gap of mean `mean`, in ns.
fn exp_gap(mean: SimDuration, rng: &mut SimRng) -> u64 {
    Exp::new(1.0 / mean.0 as f64)
        .expect("validated mean > 0")
        .sample(rng)
        .round() as u64
}
