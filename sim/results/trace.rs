//! Kept request traces: spans per attempt, as the caller and the callee saw them.

use crate::time::SimTime;

/// "No such index".
pub const NONE: u32 = u32::MAX;

/// One span: an attempt at a service, as its caller saw it (the root: as the client saw it).
#[derive(Clone, Debug, PartialEq)]
pub struct Span {
    /// The parent span's index in its trace (NONE: the root).
    pub parent: u32,
    /// Callee service index.
    pub service: u32,
    /// Instance within the service (NONE: nothing was sent).
    pub instance: u32,
    /// Endpoint index (NONE: nothing was sent, no endpoint chosen).
    pub endpoint: u32,
    /// Attempt number of its call (1 the first; the root: 1).
    pub attempt: u32,
    /// Sent.
    pub start: SimTime,
    /// Answered, timed out or refused (SimTime::MAX while open).
    pub end: SimTime,
    /// How it ended, as the caller saw it: ok, error, timeout, rejected, refused,
    /// circuit_open, connect_failure, rate_limited; "open" if never closed.
    pub outcome: &'static str,
    /// The server's side (SimTime::MAX where it did not happen): the request reached
    /// its instance, its first work began (the time between is its queue wait), and
    /// the instance sent the answer, which may be after the caller stopped waiting.
    pub arrived: SimTime,
    /// See `arrived`.
    pub work_started: SimTime,
    /// See `arrived`.
    pub answered: SimTime,
}

/// A finished trace that was kept.
#[derive(Clone, Debug)]
pub struct Trace {
    /// Sequence number of its root among traced roots (1, 2, ...).
    pub id: u64,
    /// The workload that sent it.
    pub workload: u32,
    /// Why it was kept: any of "slowest", "failed", "sampled".
    pub kept_for: Vec<&'static str>,
    /// Spans in creation order; `spans[0]` is the root.
    pub spans: Vec<Span>,
    /// Spans not recorded because the trace reached `max_spans`.
    pub spans_dropped: u64,
}

impl Trace {
    /// Root duration, ns.
    pub fn duration_ns(&self) -> u64 {
        self.spans[0].end.since(self.spans[0].start).0
    }
}

/// What the tracer saw, for `summary.json`.
#[derive(Clone, Debug, Default)]
pub struct TraceStats {
    /// Roots traced.
    pub traced: u64,
    /// Traces kept.
    pub kept: u64,
    /// Failed roots that the cap on failed traces left out.
    pub failed_not_kept: u64,
}
