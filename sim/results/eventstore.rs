//! What a run's event stores and projections did: appends, applies, lag and stale reads.

use crate::metrics::LatencyMs;

/// One `[[event_store]]`.
#[derive(Clone, Debug, PartialEq)]
pub struct StoreResult {
    /// Its name.
    pub name: String,
    /// Events committed after warm-up.
    pub appended: u64,
    /// Appends refused because the log held `max_events` (after warm-up).
    pub refused_full: u64,
    /// Events in the log at the end (from the start of the run).
    pub events_at_end: u64,
}

/// One `[[projection]]`.
#[derive(Clone, Debug, PartialEq)]
pub struct ProjectionResult {
    /// Its name.
    pub name: String,
    /// When it started, s (`None`: after the end).
    pub started_at_s: Option<f64>,
    /// Events applied after warm-up.
    pub applied: u64,
    /// Applies that failed (the same event is tried again after `retry_delay`).
    pub failures: u64,
    /// Applies sent again after `timeout` without an answer.
    pub resends: u64,
    /// Events applied a second time (a resent apply whose first copy also succeeded).
    pub reapplied: u64,
    /// Its position (the next offset to apply) at the end.
    pub position: u64,
    /// Committed events not yet applied at the end.
    pub behind_at_end: u64,
    /// The most behind at any bucket's end (or the end).
    pub max_behind: u64,
    /// The first time after its start that it had applied every committed event, s (its
    /// start when it started with nothing to apply).
    pub caught_up_at_s: Option<f64>,
    /// Commit to apply, per event applied.
    pub lag: LatencyMs,
    /// Reads of its read model (after warm-up).
    pub reads: u64,
    /// Reads that missed an event of their key committed before the read was sent (a
    /// read-your-writes violation when keys are users or entities they own).
    pub stale_reads: u64,
    /// Per stale read: how long ago the oldest event it missed was committed.
    pub staleness: LatencyMs,
}
