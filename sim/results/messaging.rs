//! Broker queues' results and what became of the events services' writes committed.

use crate::metrics::LatencyMs;
use crate::time::SimDuration;

/// Per-queue counters beyond the state machine's.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueueCounters {
    /// Publishes refused: the queue was full.
    pub refused: u64,
    /// Deliveries of an id whose effect was already applied.
    pub duplicates: u64,
    /// Duplicates an idempotency store skipped.
    pub skipped: u64,
    /// Effects applied a second (or further) time.
    pub double_effects: u64,
    /// Effects applied (first time).
    pub applied: u64,
    /// Most messages waiting for a consumer at a poll.
    pub max_ready: u64,
    /// Oldest message age at a poll, ms.
    pub max_age_ms: u64,
}

/// A queue's results.
#[derive(Clone, Debug)]
pub struct QueueResult {
    /// Its name.
    pub name: String,
    /// The state machine's counters.
    pub stats: crate::policy::broker::Stats,
    /// The model's counters.
    pub counters: QueueCounters,
    /// Waiting for a consumer at the end.
    pub ready_at_end: u64,
    /// Delivered, not acknowledged, at the end.
    pub in_flight_at_end: u64,
    /// Present at the end (ready, delayed or in flight).
    pub present_at_end: u64,
    /// Publish to acknowledgement, of acknowledged messages.
    pub latency: LatencyMs,
    /// Per `visible_within` probe t: (t, messages stored after warmup and at least t before
    /// the horizon, those of them applied and acknowledged within t).
    pub visible_within: Vec<(SimDuration, u64, u64)>,
}

/// Events a service's writes committed, and what became of them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EventCounts {
    /// Database writes that committed an event.
    pub committed: u64,
    /// Events stored by the broker.
    pub published: u64,
    /// Committed, never published: the writer died or gave up between the two (dual write).
    pub lost: u64,
    /// Most events waiting in the outbox at a relay.
    pub outbox_max: u64,
    /// Events the outbox relay published again: it crashed after publishing them and
    /// before marking their rows sent (consumers see them twice).
    pub republished: u64,
}
