//! Hosts: the CPUs co-located instances share. A work step of an instance placed on a host is a job on the host's processor-sharing CPU (`policy::cpu`), which decides when it ends.
//!
//! Only work steps use CPU: a request waiting on its calls, in a queue or on the network
//! holds none. A crash removes its instance's running work from the host at once; a pause
//! stretches work that ends while it holds (as without hosts) but does not take it off the
//! CPU (a collector's own threads keep the cores busy).

use super::*;
use crate::policy::cpu::SharedCpu;
use crate::results::HostResult;

/// A work step running on a host.
#[derive(Clone, Copy, Debug)]
pub(super) struct Job {
    req: ReqId,
    started: SimTime,
    work_ns: u64,
}

/// One host's runtime state.
pub(super) struct Host {
    cpu: SharedCpu<Job>,
    /// Its next job end, scheduled (cancelled and rescheduled whenever the set changes).
    tick: Option<EventKey>,
    /// After warm-up: jobs ended, their CPU and wall time, ns.
    bursts: u64,
    cpu_ns: u128,
    wall_ns: u128,
    /// `cpu.core_ns` and `bursts` when the current bucket started.
    bucket_core_ns: f64,
    bucket_bursts: u64,
}

/// Every host (empty without `[[host]]`), and scratch for the jobs a tick ends.
#[derive(Default)]
pub(super) struct Hosts {
    hosts: Vec<Host>,
    done: Vec<Job>,
}

impl Hosts {
    pub(super) fn new(spec: &SystemSpec) -> Hosts {
        let hosts = spec
            .hosts
            .iter()
            .map(|h| Host {
                cpu: SharedCpu::new(h.cores, SimTime::ZERO),
                tick: None,
                bursts: 0,
                cpu_ns: 0,
                wall_ns: 0,
                bucket_core_ns: 0.0,
                bucket_bursts: 0,
            })
            .collect();
        Hosts {
            hosts,
            done: Vec::new(),
        }
    }
}

impl World<'_> {
    /// Runs `work` of request `id` on host `h`. (Kept out of line: most scenarios have no
    /// hosts, and `start_work` is on every request's path.)
    #[inline(never)]
    pub(super) fn host_start(&mut self, now: SimTime, h: u32, id: ReqId, work: SimDuration) {
        let job = Job {
            req: id,
            started: now,
            work_ns: work.0,
        };
        self.hosts.hosts[h as usize].cpu.admit(now, work.0, job);
        self.host_reschedule(h);
    }

    /// Schedules host `h`'s next job end afresh.
    fn host_reschedule(&mut self, h: u32) {
        let host = &mut self.hosts.hosts[h as usize];
        if let Some(k) = host.tick.take() {
            self.engine.cancel(k);
        }
        if let Some(at) = host.cpu.next_done() {
            host.tick = Some(self.engine.schedule_at(at, Ev::HostTick { host: h }));
        }
    }

    /// Host `h`'s next job end: finish what is done and carry on.
    #[inline(never)]
    pub(super) fn on_host_tick(&mut self, now: SimTime, h: u32) {
        let mut done = std::mem::take(&mut self.hosts.done);
        let host = &mut self.hosts.hosts[h as usize];
        host.tick = None;
        host.cpu.take_done(now, &mut done);
        if now > self.warmup {
            for j in &done {
                host.bursts += 1;
                host.cpu_ns += j.work_ns as u128;
                host.wall_ns += now.since(j.started).0 as u128;
            }
        }
        self.host_reschedule(h);
        for j in done.drain(..) {
            self.on_work_done(now, j.req);
        }
        self.hosts.done = done;
    }

    /// Takes request `id`'s running work off instance `i`'s host (its instance crashed);
    /// whether it was there (then no end of work will come for it).
    pub(super) fn host_drop(&mut self, now: SimTime, i: usize, id: ReqId) -> bool {
        let h = self.insts[i].host;
        if h == NONE {
            return false;
        }
        let found = self.hosts.hosts[h as usize]
            .cpu
            .remove(now, |j| j.req == id)
            .is_some();
        if found {
            self.host_reschedule(h);
        }
        found
    }

    /// A `cpu_hog` fault adds (`on`) or takes back `threads` outside threads on host `h`.
    pub(super) fn host_hog(&mut self, now: SimTime, h: u32, threads: u32, on: bool) {
        let cpu = &mut self.hosts.hosts[h as usize].cpu;
        let hog = if on {
            cpu.hog() + threads
        } else {
            cpu.hog().saturating_sub(threads)
        };
        cpu.set_hog(now, hog);
        self.host_reschedule(h);
    }

    /// The warm-up ends: the hosts' integrals restart.
    pub(super) fn hosts_warmup_end(&mut self, now: SimTime) {
        for host in &mut self.hosts.hosts {
            host.cpu.reset_integrals(now);
            host.bucket_core_ns = 0.0;
        }
    }

    /// One series row per host for the bucket that ends at `now`: bursts ended, runnable
    /// threads at its end (`in_flight`), and core utilisation.
    pub(super) fn hosts_bucket(&mut self, now: SimTime, t_s: f64, sink: &mut dyn Sink) {
        if self.hosts.hosts.is_empty() {
            return;
        }
        let width = now.since(self.bucket_start).0 as f64;
        let empty = Latency::new(1);
        for (h, host) in self.hosts.hosts.iter_mut().enumerate() {
            host.cpu.advance(now);
            let used = host.cpu.core_ns - host.bucket_core_ns;
            host.bucket_core_ns = host.cpu.core_ns;
            let counts = Counts {
                requests: host.bursts.saturating_sub(host.bucket_bursts),
                ..Counts::default()
            };
            host.bucket_bursts = host.bursts;
            let cores = host.cpu.cores() as f64;
            sink.series(&accounting::row(
                t_s,
                "host",
                &self.spec.hosts[h].name,
                &counts,
                &empty,
                host.cpu.runnable() as u64,
                0,
                used / (cores * width).max(1.0),
            ));
        }
    }

    /// Every host's figures at the end of the run.
    pub(super) fn host_results(&mut self, end: SimTime) -> Vec<HostResult> {
        let measured = end.since(self.warmup).0.max(1) as f64;
        let spec = self.spec;
        let mut placed: Vec<Vec<String>> = vec![Vec::new(); spec.hosts.len()];
        let mut requested = vec![0.0; spec.hosts.len()];
        for s in &spec.services {
            for (k, &h) in s.hosts.iter().enumerate() {
                placed[h as usize].push(format!("{}/{k}", s.name));
                requested[h as usize] += s.cpu;
            }
        }
        self.hosts
            .hosts
            .iter_mut()
            .zip(&spec.hosts)
            .zip(placed)
            .zip(requested)
            .map(|(((host, h), instances), requested_cpu)| {
                host.cpu.advance(end);
                HostResult {
                    name: h.name.clone(),
                    cores: h.cores,
                    zone: (h.zone != NONE).then(|| spec.zones[h.zone as usize].clone()),
                    instances,
                    requested_cpu,
                    utilization: host.cpu.core_ns / (h.cores as f64 * measured),
                    load: host.cpu.runnable_ns / measured,
                    bursts: host.bursts,
                    stretch: (host.cpu_ns > 0).then(|| host.wall_ns as f64 / host.cpu_ns as f64),
                }
            })
            .collect()
    }
}
