//! Accounting: busy and present integrals, time-series buckets.

use super::*;

#[allow(clippy::too_many_arguments)]
pub(super) fn row(
    t_s: f64,
    kind: &'static str,
    name: &str,
    c: &Counts,
    l: &Latency,
    in_flight: u64,
    queue_depth: u64,
    utilization: f64,
) -> SeriesRow {
    let [p50, p90, p99, p999] = l
        .percentiles_ns([50.0, 90.0, 99.0, 99.9])
        .map(|ns| ns as f64 / 1e6);
    SeriesRow {
        t_s,
        kind: kind.into(),
        name: name.to_string(),
        requests: c.requests,
        ok: c.ok,
        errors: c.errors,
        rejected: c.rejected,
        timeouts: c.timeouts,
        latency_p50_ms: p50,
        latency_p90_ms: p90,
        latency_p99_ms: p99,
        latency_p999_ms: p999,
        in_flight,
        queue_depth,
        utilization,
        oldest_age_s: 0.0,
    }
}

impl World<'_> {
    /// Integrates busy workers up to `now` (only after warmup counts for the summary).
    #[inline]
    pub(super) fn account_busy(&mut self, s: usize, now: SimTime) {
        let svc = &mut self.svcs[s];
        let from = svc.busy_since.max(self.bucket_start);
        if now > from {
            svc.bucket_busy_ns += svc.busy as u128 * now.since(from).0 as u128;
        }
        let from = svc.busy_since.max(self.warmup);
        if now > from {
            svc.busy_ns += svc.busy as u128 * now.since(from).0 as u128;
        }
        if let Some(sc) = svc.scaler.as_mut() {
            sc.busy_ns += svc.busy as u128 * now.since(svc.busy_since).0 as u128;
        }
        svc.busy_since = now;
    }

    /// Integrates the requests held by service `s` up to `now`, then changes the count by
    /// `delta` (admitted +1, answered or dropped −1).
    pub(super) fn held_change(&mut self, s: usize, now: SimTime, delta: i32) {
        self.account_held(s, now);
        let svc = &mut self.svcs[s];
        svc.held = svc.held.wrapping_add_signed(delta);
    }

    pub(super) fn account_held(&mut self, s: usize, now: SimTime) {
        let svc = &mut self.svcs[s];
        let from = svc.held_since.max(self.warmup);
        if now > from {
            svc.held_ns += svc.held as u128 * now.since(from).0 as u128;
        }
        svc.held_since = now;
    }

    /// A time-series bucket ends: its rows go to the sink, and the next one starts.
    pub(super) fn on_bucket(&mut self, now: SimTime, sink: &mut dyn Sink) {
        self.close_bucket(now, sink);
        self.engine
            .schedule_at(now.after(self.spec.bucket), Ev::Bucket);
    }

    /// The warm-up ends: busy and held integrals restart from here.
    pub(super) fn on_warmup_end(&mut self, now: SimTime, sink: &mut dyn Sink) {
        for i in 0..self.svcs.len() {
            self.account_busy(i, now);
            self.svcs[i].busy_ns = 0;
            self.account_held(i, now);
            self.svcs[i].held_ns = 0;
        }
        self.hosts_warmup_end(now);
        sink.event(&StateEvent {
            t_s: secs(now),
            subject: self.spec.name.clone(),
            change: Change::WarmupEnd,
        });
    }

    pub(super) fn close_bucket(&mut self, now: SimTime, sink: &mut dyn Sink) {
        let t_s = secs(self.bucket_start);
        let width = now.since(self.bucket_start).0 as f64;
        for s in 0..self.svcs.len() {
            self.account_busy(s, now);
            let first = self.svcs[s].first_instance as usize;
            let n = self.svcs[s].instances as usize;
            let (in_flight, queue_depth) =
                self.insts[first..first + n]
                    .iter()
                    .fold((0u64, 0u64), |(f, q), i| {
                        (
                            f + i.in_flight as u64,
                            q + (i.queue.len() + i.admit.len()) as u64,
                        )
                    });
            let svc = &mut self.svcs[s];
            let capacity = svc.workers as f64 * n as f64 * width;
            sink.series(&row(
                t_s,
                "service",
                &self.spec.services[s].name,
                &svc.bucket,
                &svc.bucket_latency,
                in_flight,
                queue_depth,
                svc.bucket_busy_ns as f64 / capacity.max(1.0),
            ));
            svc.bucket = Counts::default();
            svc.bucket_latency.reset();
            svc.bucket_busy_ns = 0;
            if n > 1 {
                // Each instance's arrivals: the spread a balancer achieves, over time.
                for (k, x) in self.insts[first..first + n].iter_mut().enumerate() {
                    if x.present || x.bucket_requests > 0 {
                        sink.instance(&InstanceRow {
                            t_s,
                            service: self.spec.services[s].name.clone(),
                            instance: k as u32,
                            requests: x.bucket_requests as u64,
                            in_flight: x.in_flight as u64,
                        });
                    }
                    x.bucket_requests = 0;
                }
            }
        }
        let end_s = secs(now);
        for (k, (w, spec)) in self.wls.iter_mut().zip(&self.spec.workloads).enumerate() {
            let r = row(
                t_s,
                "workload",
                &spec.name,
                &w.bucket,
                &w.bucket_latency,
                0,
                0,
                0.0,
            );
            sink.series(&r);
            if let Some(t) = self.recovery.as_mut() {
                t.observe(k, t_s, end_s, r.requests, r.ok, r.latency_p99_ms);
            }
            w.bucket = Counts::default();
            w.bucket_latency.reset();
        }
        self.msg.queue_rows(self.spec, now, t_s, sink);
        self.hosts_bucket(now, t_s, sink);
        self.projections_bucket(now, t_s, sink);
        self.msg.sweep_awaiting(now, false);
        self.bucket_start = now;
    }
}
