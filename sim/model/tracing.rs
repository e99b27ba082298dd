//! Request traces: a span per attempt, kept for a sample of root requests (the slowest,
//! the failed, and a random share), observed without touching any random stream.
//!
//! Every root request sent after warmup opens a trace; each attempt its handler makes
//! (retries and hedges included) is a span whose parent is the calling request's span.
//! When the root ends, its trace is kept if it is among the `slowest` so far, if it failed
//! (bottom-k by a hash of its id, so which failures are kept does not depend on how many
//! came before), or if the hash falls under the sample rate (also capped, by bottom-k).
//! Spans that start after their root ended are not recorded: the trace is closed.

use super::spec::TraceSpec;
use crate::time::SimTime;
use std::collections::{BTreeMap, BTreeSet};

pub use crate::results::trace::{Span, Trace, TraceStats, NONE};

/// A point on the server's side of a span.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mark {
    /// The request reached its instance.
    Arrived,
    /// Its first work step began.
    WorkStarted,
    /// The instance sent its answer.
    Answered,
}

struct Open {
    id: u64,
    generation: u32,
    workload: u32,
    spans: Vec<Span>,
    dropped: u64,
}

const SLOWEST: u8 = 1;
const FAILED: u8 = 2;
const SAMPLED: u8 = 4;

/// Records spans of the traces in progress and keeps the finished ones worth keeping.
pub struct Tracer {
    cfg: TraceSpec,
    seed: u64,
    next_id: u64,
    open: Vec<Open>,
    free: Vec<u32>,
    kept: BTreeMap<u64, (u8, Trace)>,
    /// (duration, trace id) of the slowest kept, smallest first.
    slowest: BTreeSet<(u64, std::cmp::Reverse<u64>)>,
    /// (hash, id) bottom-k sets.
    failed: BTreeSet<(u64, u64)>,
    sampled: BTreeSet<(u64, u64)>,
    failed_seen: u64,
    /// Kept traces whose root has ended, by the (slot, generation) their spans refer to:
    /// a callee that answers after its caller gave up (and after the root ended) still
    /// marks its answer on the kept copy, so the waterfall shows the work nobody used.
    ended: BTreeMap<(u32, u32), u64>,
}

/// Where a request's span is: (slot, generation, span index).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpanRef {
    slot: u32,
    generation: u32,
    span: u32,
}

impl SpanRef {
    /// Not traced.
    pub const NONE: SpanRef = SpanRef {
        slot: NONE,
        generation: 0,
        span: NONE,
    };
}

impl Tracer {
    /// A tracer, or `None` when the configuration keeps nothing.
    pub fn new(cfg: &TraceSpec, seed: u64) -> Option<Tracer> {
        if cfg.slowest == 0 && cfg.failed == 0 && (cfg.sample <= 0.0 || cfg.max_sampled == 0) {
            return None;
        }
        Some(Tracer {
            cfg: cfg.clone(),
            seed,
            next_id: 0,
            open: Vec::new(),
            free: Vec::new(),
            kept: BTreeMap::new(),
            slowest: BTreeSet::new(),
            failed: BTreeSet::new(),
            sampled: BTreeSet::new(),
            failed_seen: 0,
            ended: BTreeMap::new(),
        })
    }

    /// A deterministic hash of a trace id in [0, 2^64): the same trace always draws the same.
    fn hash(&self, id: u64) -> u64 {
        crate::rng::mix64(self.seed ^ id.wrapping_mul(crate::rng::GOLDEN))
    }

    /// Opens a trace for a root request; returns its root span.
    pub fn open(
        &mut self,
        workload: u32,
        service: u32,
        instance: u32,
        endpoint: u32,
        now: SimTime,
    ) -> SpanRef {
        self.next_id += 1;
        let root = Span {
            parent: NONE,
            service,
            instance,
            endpoint,
            attempt: 1,
            start: now,
            end: SimTime::MAX,
            outcome: "open",
            arrived: SimTime::MAX,
            work_started: SimTime::MAX,
            answered: SimTime::MAX,
        };
        let slot = match self.free.pop() {
            Some(s) => {
                let o = &mut self.open[s as usize];
                o.id = self.next_id;
                o.generation += 1;
                o.workload = workload;
                o.spans.clear();
                o.spans.push(root);
                o.dropped = 0;
                s
            }
            None => {
                self.open.push(Open {
                    id: self.next_id,
                    generation: 0,
                    workload,
                    spans: vec![root],
                    dropped: 0,
                });
                (self.open.len() - 1) as u32
            }
        };
        SpanRef {
            slot,
            generation: self.open[slot as usize].generation,
            span: 0,
        }
    }

    fn live(&mut self, r: SpanRef) -> Option<&mut Open> {
        if r.slot == NONE {
            return None;
        }
        let o = self.open.get_mut(r.slot as usize)?;
        (o.generation == r.generation && o.spans[0].end == SimTime::MAX).then_some(o)
    }

    /// Opens a child span under `parent` (which must still be live); `SpanRef::NONE` otherwise.
    #[allow(clippy::too_many_arguments)]
    pub fn child(
        &mut self,
        parent: SpanRef,
        service: u32,
        instance: u32,
        endpoint: u32,
        attempt: u32,
        now: SimTime,
    ) -> SpanRef {
        let max = self.cfg.max_spans;
        let Some(o) = self.live(parent) else {
            return SpanRef::NONE;
        };
        if o.spans.len() >= max {
            o.dropped += 1;
            return SpanRef::NONE;
        }
        o.spans.push(Span {
            parent: parent.span,
            service,
            instance,
            endpoint,
            attempt,
            start: now,
            end: SimTime::MAX,
            outcome: "open",
            arrived: SimTime::MAX,
            work_started: SimTime::MAX,
            answered: SimTime::MAX,
        });
        SpanRef {
            span: (o.spans.len() - 1) as u32,
            ..parent
        }
    }

    /// Records a point on the server's side of a span, the first time it happens (a
    /// request held by a delay fault arrives when it first reached the instance).
    #[inline]
    pub fn mark(&mut self, r: SpanRef, mark: Mark, now: SimTime) {
        if let Some(o) = self.live(r) {
            Self::set_mark(&mut o.spans[r.span as usize], mark, now);
        } else if r.slot != NONE {
            self.mark_ended(r, mark, now);
        }
    }

    /// A mark after the root ended (the caller gave up first): recorded on the kept copy,
    /// if the trace was kept.
    #[cold]
    fn mark_ended(&mut self, r: SpanRef, mark: Mark, now: SimTime) {
        let Some(id) = self.ended.get(&(r.slot, r.generation)) else {
            return;
        };
        if let Some(s) = self
            .kept
            .get_mut(id)
            .and_then(|(_, t)| t.spans.get_mut(r.span as usize))
        {
            Self::set_mark(s, mark, now);
        }
    }

    #[inline]
    fn set_mark(s: &mut Span, mark: Mark, now: SimTime) {
        let at = match mark {
            Mark::Arrived => &mut s.arrived,
            Mark::WorkStarted => &mut s.work_started,
            Mark::Answered => &mut s.answered,
        };
        if *at == SimTime::MAX {
            *at = now;
        }
    }

    /// Closes a non-root span.
    pub fn close(&mut self, r: SpanRef, now: SimTime, outcome: &'static str) {
        if r.span == 0 {
            return;
        }
        if let Some(o) = self.live(r) {
            let s = &mut o.spans[r.span as usize];
            if s.end == SimTime::MAX {
                s.end = now;
                s.outcome = outcome;
            }
        }
    }

    /// Ends a root request's trace and decides whether to keep it.
    pub fn finish(&mut self, r: SpanRef, now: SimTime, outcome: &'static str) {
        if self.live(r).is_none() || r.span != 0 {
            return;
        }
        let o = &mut self.open[r.slot as usize];
        o.spans[0].end = now;
        o.spans[0].outcome = outcome;
        let id = o.id;
        let duration = now.since(o.spans[0].start).0;
        let h = self.hash(id);
        let mut why = 0u8;
        if self.cfg.slowest > 0 {
            let key = (duration, std::cmp::Reverse(id));
            if self.slowest.len() < self.cfg.slowest {
                self.slowest.insert(key);
                why |= SLOWEST;
            } else if let Some(&min) = self.slowest.first() {
                if key > min {
                    self.slowest.remove(&min);
                    self.drop_reason(min.1 .0, SLOWEST);
                    self.slowest.insert(key);
                    why |= SLOWEST;
                }
            }
        }
        if outcome != "ok" {
            self.failed_seen += 1;
            let mut evicted = None;
            if Self::bottom_k(&mut self.failed, self.cfg.failed, (h, id), &mut evicted) {
                why |= FAILED;
            }
            if let Some(e) = evicted {
                self.drop_reason(e, FAILED);
            }
        }
        if self.cfg.sample > 0.0 && (h as f64) < self.cfg.sample * 18_446_744_073_709_551_616.0 {
            let mut evicted = None;
            if Self::bottom_k(
                &mut self.sampled,
                self.cfg.max_sampled,
                (h, id),
                &mut evicted,
            ) {
                why |= SAMPLED;
            }
            if let Some(e) = evicted {
                self.drop_reason(e, SAMPLED);
            }
        }
        if why != 0 {
            let o = &self.open[r.slot as usize];
            let trace = Trace {
                id,
                workload: o.workload,
                kept_for: Vec::new(),
                spans: o.spans.clone(),
                spans_dropped: o.dropped,
            };
            self.kept.insert(id, (why, trace));
            self.ended.insert((r.slot, r.generation), id);
        }
        self.free.push(r.slot);
    }

    /// Inserts `key` into a bottom-k set of size `k`; true if it stays. The evicted id, if
    /// any, goes to `evicted`.
    fn bottom_k(
        set: &mut BTreeSet<(u64, u64)>,
        k: usize,
        key: (u64, u64),
        evicted: &mut Option<u64>,
    ) -> bool {
        if k == 0 {
            return false;
        }
        if set.len() < k {
            set.insert(key);
            return true;
        }
        let &max = set.last().expect("k > 0");
        if key < max {
            set.remove(&max);
            *evicted = Some(max.1);
            set.insert(key);
            return true;
        }
        false
    }

    fn drop_reason(&mut self, id: u64, bit: u8) {
        if let Some((why, _)) = self.kept.get_mut(&id) {
            *why &= !bit;
            if *why == 0 {
                self.kept.remove(&id);
                self.ended.retain(|_, kept| *kept != id);
            }
        }
    }

    /// The kept traces, by id, with why each was kept, and the counts.
    pub fn into_traces(self) -> (Vec<Trace>, TraceStats) {
        let stats = TraceStats {
            traced: self.next_id,
            kept: self.kept.len() as u64,
            failed_not_kept: self.failed_seen - self.failed.len() as u64,
        };
        let traces = self
            .kept
            .into_values()
            .map(|(why, mut t)| {
                for (bit, name) in [
                    (SLOWEST, "slowest"),
                    (FAILED, "failed"),
                    (SAMPLED, "sampled"),
                ] {
                    if why & bit != 0 {
                        t.kept_for.push(name);
                    }
                }
                t
            })
            .collect();
        (traces, stats)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::SimDuration;

    fn cfg(sample: f64, max_sampled: usize, slowest: usize, failed: usize) -> TraceSpec {
        TraceSpec {
            sample,
            max_sampled,
            slowest,
            failed,
            max_spans: 4,
        }
    }

    fn at(ms: u64) -> SimTime {
        SimTime::ZERO.after(SimDuration::from_millis(ms))
    }

    /// Runs roots with the given (duration ms, outcome) and returns the kept ids.
    fn keep(t: &mut Tracer, roots: &[(u64, &'static str)]) {
        for &(d, outcome) in roots {
            let r = t.open(0, 0, 0, 0, at(0));
            t.finish(r, at(d), outcome);
        }
    }

    #[test]
    fn keeps_the_slowest_n() {
        let mut t = Tracer::new(&cfg(0.0, 0, 2, 0), 1).unwrap();
        keep(
            &mut t,
            &[(5, "ok"), (50, "ok"), (7, "ok"), (40, "ok"), (1, "ok")],
        );
        let (traces, stats) = t.into_traces();
        let ids: Vec<u64> = traces.iter().map(|t| t.id).collect();
        assert_eq!(ids, vec![2, 4]);
        assert_eq!(stats.traced, 5);
        assert!(traces.iter().all(|t| t.kept_for == vec!["slowest"]));
    }

    #[test]
    fn keeps_every_failure_up_to_the_cap_and_counts_the_rest() {
        let mut t = Tracer::new(&cfg(0.0, 0, 0, 3), 1).unwrap();
        let roots: Vec<(u64, &str)> = (0..10)
            .map(|k| (1, if k % 2 == 0 { "error" } else { "ok" }))
            .collect();
        keep(&mut t, &roots);
        let (traces, stats) = t.into_traces();
        assert_eq!(traces.len(), 3);
        assert!(traces.iter().all(|t| t.spans[0].outcome == "error"));
        assert_eq!(stats.failed_not_kept, 2);
    }

    #[test]
    fn sampling_keeps_about_the_rate_and_is_deterministic() {
        let run = |seed| {
            let mut t = Tracer::new(&cfg(0.1, 100_000, 0, 0), seed).unwrap();
            keep(&mut t, &vec![(1, "ok"); 20_000]);
            t.into_traces().0.iter().map(|t| t.id).collect::<Vec<_>>()
        };
        let a = run(7);
        // Binomial(20000, 0.1): sd 42; 5 sd either side.
        assert!((1790..=2210).contains(&a.len()), "{}", a.len());
        assert_eq!(a, run(7));
        assert_ne!(a, run(8));
    }

    #[test]
    fn spans_nest_close_and_stop_at_the_limit() {
        let mut t = Tracer::new(&cfg(1.0, 10, 0, 0), 1).unwrap();
        let root = t.open(0, 0, 0, 0, at(0));
        let a = t.child(root, 1, 0, 0, 1, at(1));
        let b = t.child(a, 2, 1, 0, 1, at(2));
        t.close(b, at(3), "timeout");
        let c = t.child(a, 2, 0, 0, 2, at(4));
        let d = t.child(a, 2, 0, 0, 3, at(5));
        assert_eq!(d, SpanRef::NONE, "max_spans 4");
        t.close(c, at(6), "ok");
        t.close(a, at(7), "ok");
        t.finish(root, at(8), "ok");
        // A late span of a closed trace is not recorded.
        assert_eq!(t.child(a, 1, 0, 0, 1, at(9)), SpanRef::NONE);
        let (traces, _) = t.into_traces();
        let s = &traces[0].spans;
        assert_eq!(s.len(), 4);
        assert_eq!(traces[0].spans_dropped, 1);
        assert_eq!((s[1].parent, s[2].parent, s[3].parent), (0, 1, 1));
        assert_eq!((s[2].outcome, s[3].attempt), ("timeout", 2));
        assert_eq!(traces[0].duration_ns(), 8_000_000);
    }

    #[test]
    fn server_marks_are_kept_once_even_after_the_trace_ends() {
        let mut t = Tracer::new(&cfg(1.0, 10, 0, 0), 1).unwrap();
        let root = t.open(0, 0, 0, 0, at(0));
        let a = t.child(root, 1, 0, 0, 1, at(1));
        t.mark(a, Mark::Arrived, at(2));
        // A delay fault delivers it again later: the first arrival stands.
        t.mark(a, Mark::Arrived, at(3));
        t.mark(a, Mark::WorkStarted, at(4));
        t.mark(a, Mark::WorkStarted, at(5));
        t.close(a, at(6), "timeout");
        t.finish(root, at(7), "error");
        // The callee answers after the caller gave up and the trace ended: the kept trace
        // records it (the waterfall draws the work nobody used), once.
        t.mark(a, Mark::Answered, at(9));
        t.mark(a, Mark::Answered, at(10));
        // A trace opened later in the same slot is another generation: untouched.
        let again = t.open(0, 0, 0, 0, at(11));
        let b = t.child(again, 1, 0, 0, 1, at(12));
        t.mark(a, Mark::Arrived, at(13));
        t.finish(again, at(14), "ok");
        let (traces, _) = t.into_traces();
        let s = &traces[0].spans[1];
        assert_eq!((s.arrived, s.work_started), (at(2), at(4)));
        assert_eq!(s.answered, at(9));
        assert_eq!(traces[0].spans[0].arrived, SimTime::MAX);
        let _ = b;
        assert_eq!(traces[1].spans[1].arrived, SimTime::MAX);
    }
}
