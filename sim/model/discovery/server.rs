//! The registry as a service (`[registry] service = ...`): registrations, heartbeats, check
//! reports and cache refreshes become requests to that service's instances, so the registry
//! has a queue, workers and failures, and can be overloaded.
//!
//! A write (a registration, a renewal, a check's result) takes effect when a registry
//! instance handles it, whether or not its client still waits, as an HTTP server does with a
//! request whose client timed out. A lookup's answer is the registry as it is when handled,
//! and reaches its caller at once. The client's next heartbeat or refresh waits its period
//! after a success; after a failure it waits `retry` (or the period), and each consecutive
//! timeout doubles that wait up to `backoff_bound` times, as Eureka's `TimedSupervisorTask`
//! does. The registry's state survives its instances: while none runs, it stands still as
//! in an outage, and when one runs again every registration counts as renewed.

use super::super::*;
use crate::model::spec::RegistryOp;

/// How a request to the registry ended, as its client sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(in crate::model) enum Answer {
    Ok,
    /// Refused, rejected, failed, or never sent (no registry instance runs, or it is cut off).
    Error,
    Timeout,
}

/// Counts of one operation's requests (after warmup).
#[derive(Clone, Copy, Debug, Default)]
pub(in crate::model) struct OpCounts {
    pub(in crate::model) sent: u64,
    pub(in crate::model) ok: u64,
    pub(in crate::model) errors: u64,
    pub(in crate::model) timeouts: u64,
}

/// The clients' side of a registry service: their backoff state and the counts.
pub(in crate::model) struct Clients {
    /// Per instance (global index): consecutive timed-out heartbeats.
    beat_timeouts: Vec<u8>,
    /// Per edge (grown as per-instance edges appear): consecutive timed-out refreshes.
    refresh_timeouts: Vec<u8>,
    /// Picks the registry instance and samples the network delay.
    rng: SimRng,
    /// No registry instance ran when last looked: an outage is in force in the directory.
    down: bool,
    /// Per operation, in [`RegistryOp::ALL`] order.
    pub(in crate::model) counts: [OpCounts; 4],
}

impl Clients {
    pub(in crate::model) fn new(instances: usize, edges: usize, seed: u64) -> Self {
        Clients {
            beat_timeouts: vec![0; instances],
            refresh_timeouts: vec![0; edges],
            rng: SimRng::for_component(seed, "registry-clients"),
            down: false,
            counts: [OpCounts::default(); 4],
        }
    }
}

/// The wait before the next heartbeat or refresh, after `answer`: the period after a
/// success; after a failure `retry` (or the period) times 2^t, capped at `bound` times, where
/// t counts consecutive timeouts (an error keeps t; a success resets it).
pub(in crate::model) fn next_wait(
    period: SimDuration,
    retry: Option<SimDuration>,
    bound: u32,
    timeouts: &mut u8,
    answer: Answer,
) -> SimDuration {
    match answer {
        Answer::Ok => {
            *timeouts = 0;
            return period;
        }
        Answer::Timeout => *timeouts = timeouts.saturating_add(1),
        Answer::Error => {}
    }
    let factor = 1u64
        .checked_shl(u32::from(*timeouts))
        .unwrap_or(u64::MAX)
        .min(u64::from(bound));
    SimDuration(retry.unwrap_or(period).0.saturating_mul(factor))
}

impl World<'_> {
    /// Whether the registry runs as a service.
    pub(in crate::model) fn registry_server(&self) -> Option<&spec::RegistryServerSpec> {
        self.spec.registry.as_ref().and_then(|r| r.server.as_ref())
    }

    /// Whether service `s` can reach the registry now. With a registry service, first brings
    /// the directory in line with it: none of its instances running is an outage.
    pub(super) fn reach_registry(&mut self, now: SimTime, s: usize) -> bool {
        if let Some(srv) = self.registry_server() {
            let r = srv.service.0 as usize;
            let first = self.svcs[r].first_instance as usize;
            let up = (first..first + self.svcs[r].instances as usize)
                .any(|i| self.insts[i].present && !self.insts[i].fault.down);
            let c = self.reg_clients.as_mut().expect("with a registry service");
            if up == c.down {
                c.down = !up;
                self.directory.outage(now, !up);
            }
        }
        self.directory.reaches(s)
    }

    /// Whether instance `i` belongs to the registry's own service (found by configuration,
    /// it neither registers nor is checked).
    pub(super) fn is_registry_instance(&self, i: usize) -> bool {
        self.registry_server()
            .is_some_and(|srv| self.insts[i].service == srv.service.0)
    }

    /// Sends `op` about `subject` (an instance, or an edge for a lookup) from service `from`
    /// to a registry instance picked at random among those that run; when none can be
    /// reached, the client sees an error at once.
    pub(super) fn registry_send(
        &mut self,
        now: SimTime,
        from: usize,
        op: RegistryOp,
        subject: u32,
        passed: bool,
    ) {
        let measured = now >= self.warmup;
        let srv = self.registry_server().expect("a registry service").clone();
        if measured {
            self.reg_clients.as_mut().expect("clients").counts[op.index()].sent += 1;
        }
        if !self.reach_registry(now, from) {
            self.registry_answered(now, op, subject, Answer::Error);
            return;
        }
        let r = srv.service.0 as usize;
        let first = self.svcs[r].first_instance as usize;
        // Counted, then walked to the one drawn: no list of running instances is built
        // for each of thousands of requests a second.
        let all = first..first + self.svcs[r].instances as usize;
        let is_running = |i: &usize| self.insts[*i].present && !self.insts[*i].fault.down;
        let n = all.clone().filter(is_running).count();
        let c = self.reg_clients.as_mut().expect("clients");
        let k = (c.rng.unit() * n as f64) as usize % n;
        let target = all.filter(is_running).nth(k).expect("k < n running");
        let delay = self.spec.network.latency.sample(&mut c.rng);
        let req = Req::new(
            now,
            r as u32,
            target as u32,
            srv.endpoints[op.index()],
            Origin::Registry {
                op,
                subject,
                passed,
            },
            State::Sent,
            measured,
        );
        let Some(id) = self.alloc(req) else { return };
        self.live_probes += 1;
        let lane = self.lane(Lane::Probe(r as u32));
        self.reqs[id].timeout = Some(self.engine.schedule_timer(
            lane,
            now.after(srv.timeout),
            Ev::Timeout { req: id },
        ));
        self.engine
            .schedule_at(now.after(delay), Ev::Deliver { req: id });
    }

    /// A registry instance handled request `id` successfully: its write takes effect.
    pub(in crate::model) fn registry_handled(&mut self, now: SimTime, id: ReqId) {
        let Origin::Registry {
            op,
            subject,
            passed,
        } = self.reqs[id].origin
        else {
            unreachable!("a registry request")
        };
        let i = subject as usize;
        let c = match op {
            RegistryOp::Lookup => return,
            RegistryOp::Register => {
                let (s, k) = self.local(i);
                (s, self.directory.registry(s).register(now, k))
            }
            RegistryOp::Heartbeat => {
                let (s, k) = self.local(i);
                let draining = self.insts[i].draining;
                (s, self.directory.heartbeat(now, s, k, draining))
            }
            RegistryOp::Report => {
                let (s, k) = self.local(i);
                if !self.directory.checked(s, k) {
                    return;
                }
                (s, self.directory.registry(s).check_result(now, k, passed))
            }
        };
        self.registry_changed(now, c.0, c.1);
    }

    /// The client of a registry request hears `answer` (or gives up on it).
    pub(in crate::model) fn registry_answered(
        &mut self,
        now: SimTime,
        op: RegistryOp,
        subject: u32,
        answer: Answer,
    ) {
        let reg = self.spec.registry.as_ref().expect("discovery on");
        let srv = reg.server.as_ref().expect("a registry service");
        let c = self.reg_clients.as_mut().expect("clients");
        if now >= self.warmup {
            let n = &mut c.counts[op.index()];
            match answer {
                Answer::Ok => n.ok += 1,
                Answer::Error => n.errors += 1,
                Answer::Timeout => n.timeouts += 1,
            }
        }
        match op {
            RegistryOp::Register | RegistryOp::Report => {}
            RegistryOp::Heartbeat => {
                let wait = next_wait(
                    reg.heartbeat,
                    srv.retry,
                    srv.backoff_bound,
                    &mut c.beat_timeouts[subject as usize],
                    answer,
                );
                self.engine
                    .schedule_at(now.after(wait), Ev::Heartbeat { inst: subject });
            }
            RegistryOp::Lookup => {
                let from = self.edges[subject as usize].from as usize;
                let period = self.spec.services[from].cache_ttl(reg);
                // Edges of callers that keep their own state appear on their first call.
                let e = subject as usize;
                if c.refresh_timeouts.len() <= e {
                    c.refresh_timeouts.resize(e + 1, 0);
                }
                let wait = next_wait(
                    period,
                    srv.retry,
                    srv.backoff_bound,
                    &mut c.refresh_timeouts[e],
                    answer,
                );
                self.engine
                    .schedule_at(now.after(wait), Ev::CacheRefresh { edge: subject });
                if answer == Answer::Ok {
                    self.refresh_cache(now, subject as usize);
                } else if now >= self.warmup {
                    self.edges[subject as usize].stats.failed_refreshes += 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    #[test]
    fn timeouts_double_the_wait_up_to_the_bound_as_eurekas_supervisor_does() {
        // TimedSupervisorTask: delay = min(maxDelay, delay * 2) on a timeout, with
        // maxDelay = interval * expBackOffBound; a completed run resets it to the interval.
        let p = SimDuration(30 * S);
        let mut t = 0;
        let waits: Vec<u64> = [Answer::Timeout; 5]
            .iter()
            .map(|&a| next_wait(p, None, 10, &mut t, a).0 / S)
            .collect();
        assert_eq!(waits, [60, 120, 240, 300, 300]);
        assert_eq!(next_wait(p, None, 10, &mut t, Answer::Error).0 / S, 300);
        assert_eq!(next_wait(p, None, 10, &mut t, Answer::Ok).0 / S, 30);
        assert_eq!(t, 0);
    }

    #[test]
    fn without_backoff_a_failure_waits_the_retry_delay_every_time() {
        let (p, r) = (SimDuration(10 * S), Some(SimDuration(S)));
        let mut t = 0;
        for a in [
            Answer::Timeout,
            Answer::Error,
            Answer::Timeout,
            Answer::Timeout,
        ] {
            assert_eq!(next_wait(p, r, 1, &mut t, a), SimDuration(S));
        }
        assert_eq!(next_wait(p, r, 1, &mut t, Answer::Ok), p);
    }

    #[test]
    fn errors_keep_the_backoff_reached_and_many_timeouts_do_not_overflow() {
        let (p, r) = (SimDuration(10 * S), Some(SimDuration(S)));
        let mut t = 0;
        next_wait(p, r, 1000, &mut t, Answer::Timeout);
        next_wait(p, r, 1000, &mut t, Answer::Timeout);
        assert_eq!(
            next_wait(p, r, 1000, &mut t, Answer::Error),
            SimDuration(4 * S)
        );
        for _ in 0..300 {
            next_wait(p, r, 1000, &mut t, Answer::Timeout);
        }
        assert_eq!(
            next_wait(p, r, 1000, &mut t, Answer::Error),
            SimDuration(1000 * S)
        );
    }
}
