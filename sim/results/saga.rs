//! Sagas' and two-phase commits' results: how each definition's runs ended, and whether their effects agree or their participants waited.

use crate::metrics::LatencyMs;

/// Per saga definition: outcomes and consistency.
#[derive(Clone, Debug)]
pub struct SagaResult {
    /// Its name.
    pub name: String,
    /// Started.
    pub started: u64,
    /// Ends: completed, compensated, failed, stuck.
    pub completed: u64,
    /// Rolled back.
    pub compensated: u64,
    /// A compensation failed with no retry.
    pub failed: u64,
    /// Gave up.
    pub stuck: u64,
    /// Not ended at the end of the run.
    pub running_at_end: u64,
    /// Could not start: the run's request limit.
    pub refused: u64,
    /// Judged consistent / inconsistent (ended ones).
    pub consistent: u64,
    /// Judged inconsistent.
    pub inconsistent: u64,
    /// Per step: (name, applied once in a completed saga, compensated, applied twice or more,
    /// applied and never compensated in a rolled-back saga, missing in a completed saga).
    pub steps: Vec<StepEffects>,
    /// First to last effect of consistent sagas: how long participants disagreed.
    pub disagreement: LatencyMs,
    /// Start to end of ended sagas.
    pub duration: LatencyMs,
}

/// Final effect states of one step across sagas.
#[derive(Clone, Debug, Default)]
pub struct StepEffects {
    /// Step name.
    pub name: String,
    /// Applied exactly once and not undone (completed sagas).
    pub applied: u64,
    /// Applied and undone.
    pub compensated: u64,
    /// Applied more often than undone, by two or more, or twice in a completed saga.
    pub applied_twice: u64,
    /// Applied in a rolled-back saga and never undone.
    pub leaked: u64,
    /// Not applied in a completed saga.
    pub missing: u64,
    /// Undone more often than applied, once applied (a compensation that ran twice).
    pub undone_twice: u64,
}

/// What became of one definition's transactions.
#[derive(Clone, Debug, Default)]
pub struct TxResult {
    /// Its name.
    pub name: String,
    /// Started after warm-up.
    pub started: u64,
    /// Decided commit.
    pub committed: u64,
    /// Decided abort.
    pub aborted: u64,
    /// Decided only once the coordinator recovered (participants in doubt meanwhile).
    pub blocked: u64,
    /// PREPAREs that voted NO because another transaction held the key.
    pub lock_conflicts: u64,
    /// Not started (too many in flight).
    pub refused: u64,
    /// Decisions sent again.
    pub resends: u64,
    /// Undecided or unacknowledged at the end.
    pub running_at_end: u64,
    /// Participant locks still held at the end (in doubt).
    pub locks_at_end: u64,
    /// Participants' in-doubt windows: YES vote to the decision's arrival.
    pub in_doubt: LatencyMs,
    /// Start to decision (what the waiting client pays).
    pub duration: LatencyMs,
}
