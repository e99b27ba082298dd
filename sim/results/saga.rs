//! Sagas' results: how each definition's runs ended, and whether their effects agree.

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
}
