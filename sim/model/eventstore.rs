//! Event sourcing and CQRS: event stores (append-only logs) and projections that apply them, in order, to read models.
//!
//! An append is a call to the store's service; when its handler succeeds the event is
//! committed at the log's next offset, in the stream of the request's key. A projection is
//! a catch-up subscription (EventStoreDB's, or a Kafka consumer with one partition): a
//! projector on the first running instance of its service applies the event at its
//! position as a request to its endpoint, and moves on when that request succeeds; a
//! failure tries the same event again after `retry_delay` (a poison event stops it, as it
//! does a real projection), an apply with no answer after `timeout` is sent again (its
//! instance may have died; if the first copy also succeeds, the event was applied twice).
//!
//! A call that `reads` a projection is judged when the read model's handler answers it:
//! the read is stale when the log holds an event of the request's key, committed before
//! the read was sent, that the projection has not applied yet; its staleness is the age of
//! the oldest such event (recorded for stale reads only: `stale_reads / reads` is the share). With keys standing for users (or the entities they own), a stale
//! read is a read-your-writes violation: the user's acknowledged write is missing.

use super::*;
use crate::ids::LookupMap;
pub use crate::results::eventstore::{ProjectionResult, StoreResult};

/// One event store's log: every committed event's key and commit time, by offset, and each
/// key's offsets in order (for a read's question "which of my key's events are missing?").
struct Log {
    entries: Vec<(u64, SimTime)>,
    by_key: LookupMap<u64, Vec<u32>>,
    appended: u64,
    refused_full: u64,
    /// Committed during the current bucket.
    bucket_appended: u64,
}

/// One projection's projector and read-model statistics.
struct Projection {
    started: bool,
    /// The next offset to apply.
    position: u64,
    /// The apply in flight: its offset and token (a resent apply gets a new token).
    inflight: Option<(u64, u32)>,
    token: u32,
    /// The pending wake-up (start, retry after a failure, apply timeout).
    timer: Option<EventKey>,
    caught_up_at: Option<SimTime>,
    rng: SimRng,
    applied: u64,
    failures: u64,
    resends: u64,
    reapplied: u64,
    max_behind: u64,
    lag: Latency,
    reads: u64,
    stale_reads: u64,
    staleness: Latency,
    bucket: Counts,
    bucket_lag: Latency,
}

/// Every store and projection of a run.
pub(super) struct EventStores {
    logs: Vec<Log>,
    projections: Vec<Projection>,
}

impl EventStores {
    pub(super) fn new(spec: &SystemSpec) -> Self {
        EventStores {
            logs: spec
                .event_stores
                .iter()
                .map(|_| Log {
                    entries: Vec::new(),
                    by_key: LookupMap::default(),
                    appended: 0,
                    refused_full: 0,
                    bucket_appended: 0,
                })
                .collect(),
            projections: spec
                .projections
                .iter()
                .map(|p| Projection {
                    started: false,
                    position: 0,
                    inflight: None,
                    token: 0,
                    timer: None,
                    caught_up_at: None,
                    rng: SimRng::for_component(spec.seed, &format!("projection:{}", p.name)),
                    applied: 0,
                    failures: 0,
                    resends: 0,
                    reapplied: 0,
                    max_behind: 0,
                    lag: Latency::new(3),
                    reads: 0,
                    stale_reads: 0,
                    staleness: Latency::new(3),
                    bucket: Counts::default(),
                    bucket_lag: Latency::new(2),
                })
                .collect(),
        }
    }

    /// Committed events projection `p` has not applied.
    fn behind(&self, spec: &SystemSpec, p: usize) -> u64 {
        let log = &self.logs[spec.projections[p].store as usize];
        (log.entries.len() as u64).saturating_sub(self.projections[p].position)
    }
}

impl World<'_> {
    /// Schedules every projection's start.
    pub(super) fn start_projections(&mut self) {
        for (p, ps) in self.spec.projections.iter().enumerate() {
            let t = self
                .engine
                .schedule_at(ps.start, Ev::Projection { proj: p as u32 });
            self.es.projections[p].timer = Some(t);
        }
    }

    /// The store's handler for an append succeeded: commit the event. False when the log
    /// is full (the append is refused).
    pub(super) fn append_event(&mut self, now: SimTime, store: u32, key: u64) -> bool {
        let spec = self.spec;
        let measured = now >= self.warmup;
        let log = &mut self.es.logs[store as usize];
        if log.entries.len() as u64 >= spec.event_stores[store as usize].max_events {
            log.refused_full += measured as u64;
            return false;
        }
        let offset = log.entries.len() as u32;
        log.entries.push((key, now));
        log.by_key.entry(key).or_default().push(offset);
        log.appended += measured as u64;
        log.bucket_appended += 1;
        for p in 0..spec.projections.len() {
            if spec.projections[p].store == store {
                self.project(now, p);
            }
        }
        true
    }

    /// The read model's handler answered a read of projection `p` for `key`, sent at `sent`.
    pub(super) fn judge_read(&mut self, now: SimTime, p: u32, key: u64, sent: SimTime) {
        if now < self.warmup {
            return;
        }
        let spec = self.spec;
        let pr = &self.es.projections[p as usize];
        let log = &self.es.logs[spec.projections[p as usize].store as usize];
        let position = pr.position;
        // The oldest event of this key the model has not applied, if committed before the read.
        let missed = log.by_key.get(&key).and_then(|offsets| {
            let i = offsets.partition_point(|&o| u64::from(o) < position);
            let (_, at) = log.entries[*offsets.get(i)? as usize];
            (at < sent).then_some(at)
        });
        let pr = &mut self.es.projections[p as usize];
        pr.reads += 1;
        if let Some(at) = missed {
            pr.stale_reads += 1;
            pr.staleness.record(now.since(at).0);
        }
    }

    /// A projection's wake-up: its start, the end of a retry delay, or an apply's timeout.
    pub(super) fn on_projection(&mut self, now: SimTime, p: u32) {
        let p = p as usize;
        let ps = &self.spec.projections[p];
        let len = self.es.logs[ps.store as usize].entries.len() as u64;
        let pr = &mut self.es.projections[p];
        pr.timer = None;
        if !pr.started {
            pr.started = true;
            pr.position = ps.from.unwrap_or(len);
        }
        if pr.inflight.take().is_some() {
            // No answer in time: send the same event again.
            pr.resends += 1;
            pr.bucket.timeouts += 1;
        }
        self.project(now, p);
    }

    /// Sends the next event to apply, if the projector is idle and behind.
    fn project(&mut self, now: SimTime, p: usize) {
        let spec = self.spec;
        let ps = &spec.projections[p];
        let len = self.es.logs[ps.store as usize].entries.len() as u64;
        let pr = &mut self.es.projections[p];
        if !pr.started || pr.inflight.is_some() || pr.timer.is_some() {
            return;
        }
        if pr.position >= len {
            if pr.caught_up_at.is_none() && pr.position == len {
                pr.caught_up_at = Some(now);
            }
            return;
        }
        // The projector runs on the service's first running instance.
        let s = ps.service.0 as usize;
        let runner = self.first_running(s);
        let offset = self.es.projections[p].position;
        let key = self.es.logs[ps.store as usize].entries[offset as usize].0;
        let sent = runner.and_then(|i| {
            let pr = &mut self.es.projections[p];
            pr.token = pr.token.wrapping_add(1);
            let mut req = Req::new(
                now,
                s as u32,
                i as u32,
                ps.endpoint,
                Origin::Projection {
                    proj: p as u32,
                    token: pr.token,
                },
                State::Sent,
                now >= self.warmup,
            );
            req.key = key;
            self.alloc(req)
        });
        let pr = &mut self.es.projections[p];
        let Some(id) = sent else {
            // Nowhere to run (or the run's request limit): try again later.
            let t = self
                .engine
                .schedule_at(now.after(ps.retry_delay), Ev::Projection { proj: p as u32 });
            pr.timer = Some(t);
            return;
        };
        pr.inflight = Some((offset, pr.token));
        let delay = spec.network.latency.sample(&mut pr.rng);
        let t = self
            .engine
            .schedule_at(now.after(ps.timeout), Ev::Projection { proj: p as u32 });
        pr.timer = Some(t);
        self.engine
            .schedule_at(now.after(delay), Ev::Deliver { req: id });
    }

    /// An apply request ended (answered, or its instance crashed under it).
    pub(super) fn projection_applied(&mut self, now: SimTime, id: ReqId, ok: bool) {
        let Origin::Projection { proj, token } = self.reqs[id].origin else {
            unreachable!("an apply's request")
        };
        let p = proj as usize;
        let spec = self.spec;
        let measured = now >= self.warmup;
        let pr = &mut self.es.projections[p];
        let current = pr.inflight.is_some_and(|(_, t)| t == token);
        if !current {
            // A resent apply's first copy: if it succeeded, the event was applied twice.
            pr.reapplied += (ok && measured) as u64;
            return;
        }
        let (offset, _) = pr.inflight.take().expect("current");
        if let Some(t) = pr.timer.take() {
            self.engine.cancel(t);
        }
        let pr = &mut self.es.projections[p];
        if !ok {
            pr.failures += measured as u64;
            pr.bucket.errors += 1;
            let t = self.engine.schedule_at(
                now.after(spec.projections[p].retry_delay),
                Ev::Projection { proj },
            );
            pr.timer = Some(t);
            return;
        }
        let at = self.es.logs[spec.projections[p].store as usize].entries[offset as usize].1;
        let pr = &mut self.es.projections[p];
        pr.position = offset + 1;
        let lag = now.since(at).0;
        if measured {
            pr.applied += 1;
            pr.lag.record(lag);
        }
        pr.bucket.ok += 1;
        pr.bucket_lag.record(lag);
        self.project(now, p);
    }

    /// One `projection` row per started projection for the bucket that closes at `now`: requests:
    /// events committed to its store, ok: applied, errors: failed applies, timeouts:
    /// resent, latency: commit to apply, queue_depth: events behind, oldest_age_s: the age
    /// of the oldest event not applied.
    pub(super) fn projections_bucket(&mut self, now: SimTime, t_s: f64, sink: &mut dyn Sink) {
        let spec = self.spec;
        for p in 0..spec.projections.len() {
            if !self.es.projections[p].started {
                // A consumer that has not joined yet has no read model to be behind.
                continue;
            }
            let store = spec.projections[p].store as usize;
            let behind = self.es.behind(spec, p);
            let log = &self.es.logs[store];
            let oldest = (behind > 0).then(|| {
                let at = log.entries[self.es.projections[p].position as usize].1;
                now.since(at).as_secs_f64()
            });
            let pr = &mut self.es.projections[p];
            pr.bucket.requests = log.bucket_appended;
            pr.max_behind = pr.max_behind.max(behind);
            let mut row = accounting::row(
                t_s,
                "projection",
                &spec.projections[p].name,
                &pr.bucket,
                &pr.bucket_lag,
                0,
                behind,
                0.0,
            );
            row.oldest_age_s = oldest.unwrap_or(0.0);
            sink.series(&row);
            pr.bucket = Counts::default();
            pr.bucket_lag.reset();
        }
        for log in &mut self.es.logs {
            log.bucket_appended = 0;
        }
    }

    /// Every store's and projection's figures at the end.
    pub(super) fn event_store_results(&self) -> (Vec<StoreResult>, Vec<ProjectionResult>) {
        let spec = self.spec;
        let stores = spec
            .event_stores
            .iter()
            .zip(&self.es.logs)
            .map(|(s, log)| StoreResult {
                name: s.name.clone(),
                appended: log.appended,
                refused_full: log.refused_full,
                events_at_end: log.entries.len() as u64,
            })
            .collect();
        let projections = spec
            .projections
            .iter()
            .enumerate()
            .map(|(p, ps)| {
                let pr = &self.es.projections[p];
                let behind = if pr.started {
                    self.es.behind(spec, p)
                } else {
                    0
                };
                ProjectionResult {
                    name: ps.name.clone(),
                    started_at_s: pr.started.then(|| ps.start.as_secs_f64()),
                    applied: pr.applied,
                    failures: pr.failures,
                    resends: pr.resends,
                    reapplied: pr.reapplied,
                    position: pr.position,
                    behind_at_end: behind,
                    max_behind: pr.max_behind.max(behind),
                    caught_up_at_s: pr.caught_up_at.map(|t| t.as_secs_f64()),
                    lag: pr.lag.summary(),
                    reads: pr.reads,
                    stale_reads: pr.stale_reads,
                    staleness: pr.staleness.summary(),
                }
            })
            .collect();
        (stores, projections)
    }
}
